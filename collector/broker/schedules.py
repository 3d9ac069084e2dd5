"""Recurring jobs: the collector sends a stored job to a device group every N hours.

``edgebench-collector jobs schedule --name canary --every 24h --device 'pi-*' --model M ...``
stores one row in ``schedules`` (the job as the ``cmd run``/``cmd tune`` flags make it, the
device globs, the period, when it is next due). ``serve`` looks every
:data:`CHECK_EVERY_S` seconds for what is due and sends it with the same
:class:`~edgebench.collector.broker.commands.Commander` as ``cmd run`` (online devices
matching the globs; the device validates the job against its options table and answers
``accepted`` or ``rejected``); ``jobs send-due`` does the same once (for cron, or a
collector without ``serve``). Each send records the answers in ``last_result`` and moves
``next_at`` on by whole periods past now: a collector that was down for three periods
sends once, not three times. Collectors sharing one database (``serve --share``) each
check, and the one whose update moves ``next_at`` on first sends it. The runs arrive as usual and the regression watch judges them
as they are stored, which makes the watch continuous.

Hand-written rather than a scheduler library (APScheduler, cron): the state is one table in
the store the collector already has (SQLite or PostgreSQL), so schedules survive restarts
and every collector sharing the database sees the same ones.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any, Callable

from edgebench.agent.errors import UserError

#: how often ``serve`` looks for due schedules
CHECK_EVERY_S = 30.0
#: the shortest period accepted (a recurring job is a canary, not a load test)
MIN_EVERY_S = 60.0
#: how long a send waits for the devices' ``accepted``
ACCEPT_TIMEOUT_S = 15.0
_PERIOD = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def parse_period(text: str) -> float:
    """``90m``, ``24h``, ``7d``, ``1w`` or seconds; at least MIN_EVERY_S."""
    m = _PERIOD.match(text.strip())
    try:
        s = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)] if m else float(text)
    except ValueError:
        raise UserError(f"--every {text!r}: expected a period such as 30m, 24h, 7d or seconds") from None
    if s < MIN_EVERY_S:
        raise UserError(f"--every {text!r}: a recurring job runs at most once a minute (give 1m or more)")
    return s


def add(store, name: str, devices: list[str], job: dict[str, Any], every_s: float, first_at: float | None) -> None:
    if not _NAME.match(name):
        raise UserError(
            f"--name {name!r}: letters, digits, '.', '_' and '-', up to 64, starting with one of the first two"
        )
    if store.query("SELECT 1 FROM schedules WHERE name = ?", (name,)):
        raise UserError(f"a schedule named {name!r} exists (`jobs remove --name {name}` first)")
    now = time.time()
    store.execute(
        "INSERT INTO schedules (name, devices, job, every_s, next_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (
            name,
            json.dumps(devices),
            json.dumps(job, sort_keys=True),
            every_s,
            now if first_at is None else first_at,
            now,
        ),
    )


def rows(store) -> list[dict[str, Any]]:
    out = []
    for name, devs, job, every, nxt, created, sent, result in store.query(
        "SELECT name, devices, job, every_s, next_at, created_at, last_sent_at, last_result FROM schedules ORDER BY name"
    ):
        out.append(
            {
                "name": name,
                "devices": json.loads(devs),
                "job": json.loads(job),
                "every_s": every,
                "next_at": nxt,
                "created_at": created,
                "last_sent_at": sent,
                "last_result": result,
            }
        )
    return out


def remove(store, name: str) -> None:
    if not store.execute("DELETE FROM schedules WHERE name = ?", (name,)):
        known = ", ".join(r["name"] for r in rows(store)) or "none"
        raise UserError(f"no schedule named {name!r} (schedules: {known})")


def next_after(next_at: float, every_s: float, now: float) -> float:
    """The next due time after ``now``, in whole periods from ``next_at`` (missed ones skipped)."""
    missed = max(0, int((now - next_at) // every_s) + 1)
    return next_at + missed * every_s


Sender = Callable[[list[str], dict[str, Any]], str]


def send_due(store, send: Sender, now: float | None = None) -> list[dict[str, Any]]:
    """Send every schedule due at ``now``; ``send(globs, job)`` returns what the devices
    answered, in words. Returns the schedules sent, each with its ``last_result``."""
    now = time.time() if now is None else now
    sent = []
    for r in rows(store):
        if r["next_at"] > now:
            continue
        nxt = next_after(r["next_at"], r["every_s"], now)
        # claimed by moving next_at on, only if no other collector on this database did first
        claim = "UPDATE schedules SET next_at = ? WHERE name = ? AND next_at = ?"
        if store.execute(claim, (nxt, r["name"], r["next_at"])) != 1:
            continue
        try:
            result = send(r["devices"], r["job"])
        except UserError as e:  # no device matches, the broker refused...: said, and tried next period
            result = f"not sent: {e}"
        store.execute(
            "UPDATE schedules SET last_sent_at = ?, last_result = ? WHERE name = ?", (now, result[:2000], r["name"])
        )
        sent.append({**r, "next_at": nxt, "last_sent_at": now, "last_result": result})
    return sent


def commander_sender(settings) -> Sender:
    """``send`` over MQTT: the online devices matching the globs, each one's answer in words."""
    import fnmatch

    from edgebench.collector.broker.commands import Commander

    def send(globs: list[str], job: dict[str, Any]) -> str:
        with Commander(settings) as cmd:
            fleet = cmd.fleet()
            matched = sorted(d for d in fleet if any(fnmatch.fnmatchcase(d, g) for g in globs))
            online = [d for d in matched if fleet[d].get("state") == "online"]
            words = [f"{d} skipped ({fleet[d].get('state', 'unknown')})" for d in matched if d not in online]
            if not online:
                return "; ".join(words) or f"no device matches {' '.join(globs)}"
            answers = cmd.send_run(online, job, ttl_s=600.0)
            cmd.wait(answers, ("accepted",), ACCEPT_TIMEOUT_S)
        for d in online:
            last = answers[d].last
            if last is None:
                words.append(f"{d} no answer")
            else:
                words.append(f"{d} {last['state']}" + (f": {last['reason']}" if last.get("reason") else ""))
        return "; ".join(sorted(words))

    return send


class Scheduler:
    """``serve``'s thread: every ``check_s`` seconds, send what is due."""

    def __init__(self, store, send: Sender, check_s: float = CHECK_EVERY_S, log: Callable[[str], None] = print):
        self.store, self.send, self.check_s, self.log = store, send, check_s, log
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="edgebench-schedules", daemon=True)

    def start(self) -> "Scheduler":
        self.thread.start()
        return self

    def _loop(self) -> None:
        while True:
            try:
                for r in send_due(self.store, self.send):
                    self.log(f"collector: schedule {r['name']} sent: {r['last_result']}")
            except Exception as e:  # a database or broker hiccup: said, and tried again next check
                self.log(f"collector: schedules not checked: {type(e).__name__}: {e}")
            if self.stop_event.wait(self.check_s):
                return

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)
