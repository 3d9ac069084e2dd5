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
#: what a board pays for at start-up (numpy and OpenCV are most of a cold start under
#: emulation or on a Pi Zero), needed by a run but not by --help or most of `info`
BOARD_HEAVY = ("numpy", "cv2", "ai_edge_litert", "tflite_runtime", "paho", "yaml")


def loaded_after(argv: list[str], heavy: tuple[str, ...] = HEAVY) -> set[str]:
    """The ``heavy`` modules loaded once ``edgebench argv`` has run (its exit must be 0)."""
    code = (
        "import sys\n"
        "from edgebench.agent.cli import main\n"
        "try:\n"
        f"    rc = main({argv!r})\n"
        "except SystemExit as e:  # --help\n"
        "    rc = e.code\n"
        f"print('LOADED', ','.join(m for m in {heavy!r} if m in sys.modules))\n"
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


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["run", "--help"],
        ["sweep", "--help"],
        ["info", "--help"],
        ["agent", "--help"],
        ["info", "agent", "board"],
    ],
)
def test_help_and_the_light_info_sections_load_neither_numpy_nor_opencv(argv):
    assert loaded_after(argv, BOARD_HEAVY) == set()


def test_the_check_sees_opencv_and_the_runtime_when_a_section_needs_them():
    """The check above can fail: `info sources` reads OpenCV's build, `info runtimes` imports the runtimes."""
    assert {"cv2", "numpy"} <= loaded_after(["info", "sources"], BOARD_HEAVY)
    assert "ai_edge_litert" in loaded_after(["info", "runtimes"], BOARD_HEAVY)
