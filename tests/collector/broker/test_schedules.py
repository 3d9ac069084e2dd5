"""Schedules in the store (SQLite and PostgreSQL): stored, sent when due and only then,
moved on by whole periods, a failed send said and retried next period."""

from __future__ import annotations

import pytest

from edgebench.agent.errors import UserError
from edgebench.collector.broker import schedules


def test_due_schedules_are_sent_once_per_period(store, monkeypatch):
    schedules.add(store, "canary", ["pi-*"], {"model": "m", "frames": 10}, 3600.0, first_at=1000.0)
    schedules.add(store, "later", ["pi-b"], {"model": "m"}, 600.0, first_at=14_000.0)
    with pytest.raises(UserError, match="a schedule named 'canary' exists"):
        schedules.add(store, "canary", ["x"], {"model": "m"}, 3600.0, None)
    sent_to = []

    def send(globs, job):
        sent_to.append((globs, job))
        return "pi-a accepted"

    # 3 periods late: sent once, next due in whole periods from the first due time
    done = schedules.send_due(store, send, now=1000.0 + 3 * 3600 + 5)
    assert [r["name"] for r in done] == ["canary"] and sent_to == [(["pi-*"], {"frames": 10, "model": "m"})]
    row = {r["name"]: r for r in schedules.rows(store)}["canary"]
    assert row["next_at"] == 1000.0 + 4 * 3600 and row["last_result"] == "pi-a accepted"
    assert schedules.send_due(store, send, now=1000.0 + 3 * 3600 + 6) == [] and len(sent_to) == 1
    # another collector on this database read the row before this one moved it on: it does not send again
    stale = {r["name"]: r for r in schedules.rows(store)}
    stale["canary"]["next_at"] = 1000.0
    monkeypatch.setattr(schedules, "rows", lambda st: [stale["canary"]])
    assert schedules.send_due(store, send, now=1000.0 + 4 * 3600) == [] and len(sent_to) == 1
    monkeypatch.undo()

    def refused(globs, job):
        raise UserError("no device matches pi-b")

    done = schedules.send_due(store, refused, now=14_000.0)
    assert [(r["name"], r["last_result"]) for r in done] == [("later", "not sent: no device matches pi-b")]
    assert {r["name"]: r for r in schedules.rows(store)}["later"]["next_at"] == 14_600.0
    schedules.remove(store, "later")
    assert [r["name"] for r in schedules.rows(store)] == ["canary"]
    with pytest.raises(UserError, match="no schedule named 'later' \\(schedules: canary\\)"):
        schedules.remove(store, "later")
