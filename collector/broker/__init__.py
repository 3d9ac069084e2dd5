"""The collector's side of the broker: brokers it can start itself (``embedded``:
amqtt in-process for the demo, a private Mosquitto), its MQTT ``connection``, and the
remote ``commands`` it sends to devices. A new broker kind is a class with
``start()``, ``url`` and ``cleanup()`` in ``embedded``.
"""
