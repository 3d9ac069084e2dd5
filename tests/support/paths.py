"""Where things are, and how a test runs the two commands as a user would (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFDATA = Path(os.environ.get("EDGEBENCH_REFDATA", ROOT.parent / "shared" / "refdata"))
SHAPES_MODEL = ROOT / "models" / "shapes_int8.tflite"
SHAPES_LABELS = ROOT / "models" / "shapes_labels.txt"
SHAPES_TESTSET = ROOT / "models" / "testsets" / "shapes"


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
    """Run `edgebench-collector ...` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "edgebench.collector.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
