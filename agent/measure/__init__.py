"""Measurement: the timed part and the documents it produces.

* ``loop``: capture -> preprocess -> invoke -> postprocess per frame, timed per stage
  (the hot loop: it hands frame batches to a sink and never touches MQTT);
* ``run``: one benchmark run from options to an ``edgebench.result/1`` document;
* ``workload``, ``sweep``: batch sizes x threads x instances (``edgebench.sweep/1``);
* ``scenarios``, ``scenario_run``: MLPerf LoadGen-style scenarios (``edgebench.scenario/1``);
* ``accuracy``: top-1/top-5 on labelled images through the same pipeline;
* ``result``: building and writing the result document.

A new kind of measurement is a module here that returns a document whose schema
lives in agent/wire/protocol.py.
"""
