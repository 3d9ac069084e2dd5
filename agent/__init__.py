"""edgebench agent: what runs on a board.

Kept light on purpose: importing `agent` imports nothing heavy (no numpy, no
runtime, no MQTT); each command imports what it needs.
"""

__version__ = "0.1.0"
