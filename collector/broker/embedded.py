"""Brokers the collector can start for itself: an embedded one (amqtt, in-process,
MQTT 3.1.1, for the demo) or a real Mosquitto on a free port (subprocess)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from edgebench.agent.errors import UserError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _quiet_loop_error(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    logging.getLogger("edgebench.broker").debug(
        "embedded broker: %s", context.get("message"), exc_info=context.get("exception")
    )


class EmbeddedBroker:
    """amqtt running on its own asyncio loop in a daemon thread."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> "EmbeddedBroker":
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            from amqtt.broker import Broker
        except ImportError:
            raise UserError("the embedded broker needs amqtt: pip install 'edgebench[collector]'") from None
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            # amqtt 0.12 lets an exception escape a client's connection task now and then (a
            # client that leaves mid-handshake; seen as "changed size during iteration" on a
            # busy machine); asyncio would print its traceback. The client reconnects; keep it
            # in the debug log.
            self._loop.set_exception_handler(_quiet_loop_error)
            try:
                self._broker = Broker(config, loop=self._loop)
                self._loop.run_until_complete(self._broker.start())
            except BaseException as e:  # reported by start()
                self._error = e
                self._ready.set()
                return
            self._ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._broker.shutdown())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="edgebench-embedded-broker", daemon=True)
        self._thread.start()
        self._ready.wait(15)
        if self._error or not wait_port("127.0.0.1", self.port, 10):
            raise UserError(f"the embedded MQTT broker could not start on port {self.port}: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class MosquittoBroker:
    """A private Mosquitto on a free loopback port, with its own config file."""

    def __init__(self, port: int | None = None, extra_config: str = "", binary: str | None = None):
        self.port = port or free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.extra_config = extra_config
        self.binary = (
            binary
            or shutil.which("mosquitto")
            or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
        )
        self.proc: subprocess.Popen | None = None
        self.dir = tempfile.mkdtemp(prefix="edgebench-mosquitto-")

    def config_text(self) -> str:
        # Started as root, mosquitto drops to the `mosquitto` user, which cannot
        # write the persistence file (nor read password files) in our private,
        # root-only folder: it would silently lose every session on restart.
        stay = "user root\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
        return (
            stay + f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "max_queued_messages 0\n"
            # The collector acknowledges a message only once it is stored; at Mosquitto's
            # default of 20 unacknowledged messages in flight per client it would idle
            # between batches. 0 = no limit.
            "max_inflight_messages 0\n"
            f"persistence true\npersistence_location {self.dir}/\n" + self.extra_config
        )

    def start(self) -> "MosquittoBroker":
        if not self.binary:
            raise UserError("mosquitto is not installed: apt-get install -y mosquitto (or use the embedded broker)")
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(self.config_text())
        self.log = open(os.path.join(self.dir, "mosquitto.log"), "ab")
        self.proc = subprocess.Popen([self.binary, "-c", conf], stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_port("127.0.0.1", self.port, 10):
            self.stop()
            raise UserError(f"mosquitto did not start on port {self.port}; see {self.dir}/mosquitto.log")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
