"""One distribution, one distinctive package: ``pip install`` puts ``edgebench/`` (and its
dist-info) into site-packages and nothing else, so another distribution that ships its
own top-level ``agent`` or ``models`` can neither overwrite edgebench nor be overwritten.

The wheel is built from this checkout and installed into a fresh virtual environment
beside a throwaway distribution that ships top-level ``agent`` and ``models`` packages.
The fresh environment gets edgebench's dependencies by a path entry to the test
environment's site-packages (appended after its own, so nothing there shadows what is
installed), which keeps the test offline and fast.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import ROOT, SHAPES_MODEL

pytestmark = pytest.mark.slow


def _run(*cmd, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def _throwaway_dist(tmp: Path) -> Path:
    """A distribution 'collider' with top-level agent/ and models/ packages (as a real one did)."""
    src = tmp / "collider"
    for pkg in ("agent", "models"):
        (src / pkg).mkdir(parents=True)
        (src / pkg / "__init__.py").write_text(f"WHO = 'collider {pkg}'\n")
    (src / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "collider"
        version = "1.0"
        [tool.setuptools]
        packages = ["agent", "models"]
        """)
    )
    return src


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    for name, src in (("edgebench", ROOT), ("collider", _throwaway_dist(out))):
        r = _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out / name, src)
        assert r.returncode == 0, r.stderr[-2000:]
    return {name: next((out / name).glob("*.whl")) for name in ("edgebench", "collider")}


def test_the_wheel_holds_only_the_edgebench_package(wheels):
    with zipfile.ZipFile(wheels["edgebench"]) as z:
        tops = {n.split("/")[0] for n in z.namelist()}
        names = set(z.namelist())
    assert tops == {"edgebench", next(t for t in tops if t.endswith(".dist-info"))}
    assert {"edgebench/agent/__init__.py", "edgebench/collector/__init__.py", "edgebench/models/__init__.py"} <= names
    assert "edgebench/__init__.py" not in names  # a namespace: nothing to overwrite or be overwritten
    assert "edgebench/models/shapes_int8.tflite" in names and "edgebench/agent/wire/protocol.md" in names


def test_every_package_folder_is_in_the_wheel(wheels):
    with zipfile.ZipFile(wheels["edgebench"]) as z:
        names = set(z.namelist())
    for top in ("agent", "collector", "models"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.relative_to(ROOT).as_posix()
            assert f"edgebench/{rel}" in names, f"{rel}: a package folder missing from [tool.setuptools] packages"


def test_installed_beside_a_colliding_distribution_edgebench_still_runs(wheels, tmp_path):
    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", "--without-pip", venv).returncode == 0
    py = venv / "bin" / "python"
    site = Path(_run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    # edgebench's dependencies from the test environment, after the venv's own packages
    (site / "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index"]
    before = set(p.name for p in site.iterdir())
    r = _run(*pip, wheels["edgebench"])
    assert r.returncode == 0, r.stderr
    ours = set(p.name for p in site.iterdir()) - before
    assert {n for n in ours if not n.endswith(".dist-info")} == {"edgebench"}, ours
    assert sorted(p.name for p in (site / "edgebench").iterdir() if p.name != "__pycache__") == [
        "agent",
        "collector",
        "models",
    ]
    r = _run(*pip, wheels["collider"])  # after edgebench, as the report had it
    assert r.returncode == 0, r.stderr
    check = textwrap.dedent("""
        import importlib
        import edgebench.models
        from edgebench.agent.cli import main
        # the collider's own top-level packages, by their generic names, beside ours
        agent, models = importlib.import_module("agent"), importlib.import_module("models")
        assert agent.WHO == "collider agent" and models.WHO == "collider models"
        assert edgebench.models.path_of("shapes-int8").is_file(), "the bundled model"
        assert main(["run", "--model", str(edgebench.models.path_of("shapes-int8")), "--frames", "5", "-q"]) == 0
        print(edgebench.models.__file__)
    """)
    r = _run(py, "-c", check, cwd=tmp_path)  # not the checkout: it must be the installed copy
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().startswith(str(site / "edgebench" / "models"))
    r = _run(*[sys.executable, "-m", "pip", "--python", py, "uninstall", "-q", "-y", "collider"])
    assert r.returncode == 0, r.stderr
    r = _run(venv / "bin" / "edgebench", "run", "--model", SHAPES_MODEL, "--frames", "5", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    r = _run(venv / "bin" / "edgebench-collector", "--version", cwd=tmp_path)
    assert r.returncode == 0 and "0." in r.stdout + r.stderr, r.stderr
