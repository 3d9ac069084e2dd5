"""edgebench collector: ingest a fleet's results over MQTT, store, aggregate, show.

The folders follow the data path from the broker on: ``broker`` (brokers we start,
the MQTT connection, commands to devices) -> ``ingest`` (validate, batch) -> ``store``
(SQLite, PostgreSQL) -> ``aggregate`` (fleet percentiles, comparisons) -> ``views``
(terminal, web, Prometheus, exports); ``cli`` drives them. Of the agent, only
``edgebench.agent.wire`` (the protocol) and ``edgebench.agent.errors`` are imported
(tests/house/test_layers.py checks).
"""

from edgebench.agent import __version__  # one distribution, one version

__all__ = ["__version__"]
