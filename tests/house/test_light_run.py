"""The agent stays light: `edgebench run` (and its --csv, and `edgebench compare`) never loads
matplotlib; only --plot and `report --html` do. Checked by running the command in a fresh
interpreter and looking at what it imported (the import-graph rules in test_layers.py cover
the measured loop; this covers the whole command as a user runs it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.paths import ROOT, SHAPES_MODEL

HEAVY = ("matplotlib", "edgebench.agent.report.plots", "jinja2", "edgebench.collector")


def loaded_after(argv: list[str]) -> set[str]:
    """The HEAVY modules loaded once ``edgebench argv`` has run (its exit must be 0)."""
    code = (
        "import sys\n"
        "from edgebench.agent.cli import main\n"
        f"rc = main({argv!r})\n"
        f"print('LOADED', ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
        "sys.exit(rc)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert p.returncode == 0, p.stderr
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("LOADED")][-1]
    return set(filter(None, line.split(" ", 1)[1].split(",")))


def test_run_without_plot_never_imports_matplotlib(tmp_path):
    out = tmp_path / "r.json"
    args = ["run", "--model", str(SHAPES_MODEL), "--frames", "20", "--json", str(out), "-q"]
    assert loaded_after(args) == set()
    assert loaded_after([*args, "--csv", str(tmp_path / "r.csv")]) == set()
    assert loaded_after(["compare", str(out), str(out)]) == set()
    assert loaded_after(["report", str(out), "--md"]) == set()


@pytest.mark.slow
def test_the_check_sees_matplotlib_when_asked_for(tmp_path):
    """The check above can fail: --plot does load matplotlib."""
    args = ["run", "--model", str(SHAPES_MODEL), "--frames", "20", "-q", "--plot", str(tmp_path)]
    assert {"matplotlib", "edgebench.agent.report.plots"} <= loaded_after(args)
