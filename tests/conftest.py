"""Shared fixtures: real brokers, real models, the refdata folder when present."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFDATA = Path(os.environ.get("EDGEBENCH_REFDATA", ROOT.parent / "shared" / "refdata"))
SHAPES_MODEL = ROOT / "models" / "shapes_int8.tflite"
SHAPES_LABELS = ROOT / "models" / "shapes_labels.txt"
SHAPES_TESTSET = ROOT / "models" / "testsets" / "shapes"


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


def run_cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `edgebench ...` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "edgebench.agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def run_collector_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgebench.collector.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
