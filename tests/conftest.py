"""Shared fixtures: real brokers, the refdata folder when present, a private state folder.

Helpers that tests import live in the ``tests.support`` package, not here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import REFDATA

#: fixtures shared by the collector tests: a throwaway PostgreSQL database, a store over both dialects
pytest_plugins = ("tests.support.fleet",)


@pytest.fixture(autouse=True)
def _state_dir(tmp_path, monkeypatch):
    """Keep each test's session counters and outboxes out of the user's home."""
    d = tmp_path / "state"
    monkeypatch.setenv("EDGEBENCH_STATE_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def refdata() -> Path:
    if not REFDATA.is_dir():
        pytest.skip(f"reference data folder {REFDATA} is absent (set EDGEBENCH_REFDATA to use another)")
    return REFDATA


def _broker():
    """Start a real Mosquitto on a free port; yield it; clean it up."""
    from edgebench.collector.broker.embedded import MosquittoBroker

    b = MosquittoBroker()
    if not b.binary:
        pytest.fail("mosquitto is not installed; the README's test command installs it (apt-get install -y mosquitto)")
    b.start()
    yield b
    b.cleanup()


@pytest.fixture(scope="session")
def mosquitto():
    """A private, real Mosquitto on a free port for the whole session."""
    yield from _broker()


@pytest.fixture
def private_mosquitto():
    """A Mosquitto of this test's own: nothing retained or queued by other tests."""
    yield from _broker()
