"""Ingest: messages from the broker into the store, validated.

``collector.Collector`` subscribes, queues messages from the MQTT callback and
stores them in batches from one writer thread, acknowledging each only after it
is stored; ``validate`` checks every message against agent/wire/protocol.py and
gives each rejection a reason code. A new message kind needs no code here beyond
its schema in the protocol and its rows in the store.
"""
