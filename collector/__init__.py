"""edgebench collector: ingest a fleet's results over MQTT, store, aggregate, show."""

from edgebench.agent import __version__  # one distribution, one version

__all__ = ["__version__"]
