"""Frame sources: where frames come from, each yielding BGR uint8 frames with a name.

``open.open_source(spec)`` turns a ``--source`` spelling into a source: synthetic
frames, an image, a folder, a video, a V4L2 camera, a GStreamer pipeline or a
network stream; live ones drop all but the newest frame and count what they drop.
To add a kind of source: a ``Source`` subclass (``read()`` returns a ``Frame`` or
None at the end, ``describe()`` says what it is), and one branch in
``open_source`` for its spelling; tests in tests/agent/sources/.
"""
