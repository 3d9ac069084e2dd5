"""Publishing: everything a device sends goes through its on-disk outbox first.

* ``outbox``: the SQLite outbox (sequence numbers, lanes, the size bound);
* ``link``: the MQTT connection that moves the outbox to the broker;
* ``publisher``: ``Publisher`` and ``RunStream`` (a run streamed while measured);
* ``documents``: sweep and scenario documents as one summary message;
* ``state``: the agent's state folder and its session counter.

A new kind of message gets its topic and schema in agent/wire/protocol.py and a
method on ``Publisher`` that hands it to the outbox (never a direct MQTT call).
"""
