"""Messages that must say what happened, and only that (issue 16, items 7 to 14)."""

from __future__ import annotations

import io
import json

from edgebench.agent.cli.sweep import print_sweep
from tests.support.paths import ROOT, run_cli

FIXED_BATCH = ROOT / "models" / "shapes_int8_fixed_batch.tflite"


def test_a_sweep_gives_one_reason_per_unsupported_batch_size(tmp_path):
    out = tmp_path / "s.json"
    p = run_cli(
        "sweep", "--model", str(FIXED_BATCH), "--batch", "1,2", "--threads", "1,2", "--frames", "5",
        "--json", str(out), "--power", "none",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    reason = doc["unsupported_batches"]["2"]
    # the runtime's two messages, told apart, not glued ("...reshape runtimeNode number 8...")
    assert "runtimeNode" not in reason and "; Node number" in reason, reason
    buf = io.StringIO()
    print_sweep(doc, buf)
    text = buf.getvalue()
    assert text.count(reason) == 1, text
    assert text.count("unsupported (batch 2: see below)") == 2
    assert f"batch 2 unsupported: {reason}" in text
