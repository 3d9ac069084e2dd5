"""Runtimes and model files: what runs the model, and what a model file holds.

* ``interpreter``: the TFLite Interpreter of ai-edge-litert, tflite-runtime or
  tensorflow.lite behind one flat adapter (after pycoral): load, allocate, set
  input, invoke, read output; delegates; one-line ModelErrors;
* ``modelinfo``, ``tflite_meta``: what a .tflite file holds (operators,
  quantization, Edge TPU ops, TFLite metadata), read without running it;
* ``registry``: the models edgebench knows by sha256 (normalization, labels);
* ``postprocess``: decoding outputs (top-k, SSD detections, output summaries).

A new runtime API is one module exposing the same adapter (``inputs``,
``outputs``, ``set_input``, ``invoke``, ``describe``), chosen in ``interpreter.load``.
"""
