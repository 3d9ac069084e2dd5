"""The layers hold: no import cycle, the collector imports nothing of the agent but its
wire contract and errors, the wire contract imports nothing beyond itself, the agent
never imports the collector, and the measured loop reaches neither publishing, the
collector nor a plotting stack. The rules are in tests/support/layers.py; the second
test proves they fail on a tree where each is broken on purpose."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

from tests.support.layers import violations
from tests.support.paths import ROOT


def test_the_layers_hold():
    assert violations("edgebench") == []


def _copy_tree(dst, root: str) -> None:
    """The three packages under a namespace of another name, imports renamed to match."""
    for name in ("agent", "collector", "models"):
        shutil.copytree(ROOT / name, dst / root / name, ignore=shutil.ignore_patterns("__pycache__", "*.tflite"))
    for py in (dst / root).rglob("*.py"):
        py.write_text(py.read_text().replace("edgebench.", f"{root}."))


def test_the_checks_fail_on_a_tree_that_breaks_each_rule(tmp_path):
    root = "ebcopy"
    _copy_tree(tmp_path, root)
    pkg = tmp_path / root
    # a cycle hidden inside a function, as the old cli <-> sweep_cli one was
    with open(pkg / "agent" / "options" / "kinds.py", "a") as f:
        f.write("\n\ndef _late():\n    from ebcopy.agent.cli import sweep  # noqa\n")
    # the collector reaching into the agent's measurement
    with open(pkg / "collector" / "views" / "report.py", "a") as f:
        f.write("\n\ndef _peek():\n    from ebcopy.agent.measure.run import run  # noqa\n")
    # the measured loop importing publishing
    with open(pkg / "agent" / "measure" / "loop.py", "a") as f:
        f.write("\n\ndef _send():\n    from ebcopy.agent.publish import publisher  # noqa\n")
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        sys.path.insert(0, {str(ROOT)!r})
        from tests.support.layers import violations
        print("\\n".join(violations({root!r})))
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert any(ln.startswith("import cycle:") and "ebcopy.agent.options.kinds" in ln for ln in lines), lines
    assert (
        "the collector imports the agent beyond its wire contract: ebcopy.collector.views.report -> ebcopy.agent.measure.run"
        in lines
    )
    assert any(
        ln.startswith("the measured loop (ebcopy.agent.measure.loop) reaches ebcopy.agent.publish") for ln in lines
    ), lines


def test_nothing_imports_the_old_names():
    """``agent``, ``collector`` and ``models`` were top-level packages before the edgebench
    namespace; a checkout on sys.path still resolves them, an installed edgebench does not.
    (ruff's banned-api rule says the same in the lint; this runs with the tests.)"""
    import ast

    old = {"agent", "collector", "models"}
    bad = []
    for top in ("agent", "collector", "models", "tests"):
        for py in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(py.read_text(), str(py))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                bad += [f"{py.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if n.split(".")[0] in old]
    assert bad == []
