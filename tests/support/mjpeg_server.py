"""A real MJPEG-over-HTTP camera on loopback, for source tests.

Modes:
  steady  - frames at ``fps`` until the client goes away
  ending  - ``frames`` frames, then the connection closes; later connections get 404
  stall   - ``frames`` frames, then silence with the connection held open
  drop    - ``frames`` frames, then the connection closes; later connections stream again
"""

from __future__ import annotations

import http.server
import socketserver
import threading
import time

import cv2
import numpy as np


def jpeg_frames(n: int = 8, size=(160, 120)) -> list[bytes]:
    rng = np.random.default_rng(3)
    out = []
    for _ in range(n):
        img = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        ok, buf = cv2.imencode(".jpg", img)
        assert ok
        out.append(buf.tobytes())
    return out


class MJPEGServer:
    def __init__(self, mode: str = "steady", frames: int = 50, fps: float = 50.0):
        self.mode, self.frames, self.fps = mode, frames, fps
        self.connections = 0
        self._jpegs = jpeg_frames()
        self._stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.connections += 1
                if server.mode == "ending" and server.connections > 1:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                limit = None if server.mode == "steady" else server.frames
                i = 0
                try:
                    while not server._stop.is_set() and (limit is None or i < limit):
                        jpg = server._jpegs[i % len(server._jpegs)]
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                            + str(len(jpg)).encode()
                            + b"\r\n\r\n"
                            + jpg
                            + b"\r\n"
                        )
                        self.wfile.flush()
                        i += 1
                        time.sleep(1.0 / server.fps)
                    if server.mode == "stall":
                        server._stop.wait(120)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
