"""The wire contract, defined once: the only part of the agent the collector imports.

* ``protocol``: topics, schema names and JSON Schemas of every message and document,
  message builders and the checks beyond the schemas (``protocol.md`` documents it);
* ``transport``: how to reach a broker (URL, credentials, TLS, protocol version) and
  the compact JSON every message is;
* ``stats``: the statistics method every figure uses (percentile definition,
  histograms, the streaming summary, the latency/throughput frontier);
* ``compare``: the block-bootstrap verdict (faster, slower, within noise).

Pure Python plus numpy: nothing here imports paho, a runtime or the rest of the
agent (but ``errors``). A new message kind is a schema and a builder in
``protocol``, documented in ``protocol.md``; the collector validates it from there.
"""
