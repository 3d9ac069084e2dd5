"""edgebench agent: what runs on a board.

The folders are the stages of the data path, in order; each module imports only
from stages before it (and from ``wire``), never from ``publish`` inside the
measured loop and never from the collector (tests/house/test_layers.py checks):

* ``sources``: frames in (files, cameras, GStreamer, network streams, synthetic)
* ``preprocess``: a frame into exactly the tensor the model wants
* ``runtime``: the TFLite runtimes behind one flat adapter; what a model file holds
* ``measure``: the timed loop, the run plan, sweeps, LoadGen-style scenarios, results
* ``probes``: power, temperature, throttling and board facts (one module per facet)
* ``publish``: the on-disk outbox and the MQTT link to the collector
* ``report``: what a person reads locally (PNG curves)
* ``wire``: the protocol both sides share (the only part the collector imports)
* ``options``, ``cli``, ``service``: how a user or a config drives the stages

Kept light on purpose: importing ``edgebench.agent`` imports nothing heavy (no
numpy, no runtime, no MQTT); each command imports what it needs.
"""

__version__ = "0.1.0"
