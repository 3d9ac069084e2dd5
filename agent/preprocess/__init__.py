"""Preprocessing: a frame into exactly what the model's input tensor wants.

``image.Preprocessor`` derives size, layout, dtype, quantization and normalization
from the model and applies them through per-channel lookup tables; the run plan
(agent/measure/plan.py) decides which normalization applies. A new kind of
input (e.g. audio) is a new module here with the same shape: built once from the
tensor's facts, called once per frame.
"""
