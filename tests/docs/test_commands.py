"""Every command in README.md and docs/*.md works as written.

The fenced ``sh`` blocks of the README and of every page under docs/ are what a user types. Each
page's blocks run in order, as a reader following the page would run them, in a fresh temporary
working folder that stands for the checkout: it holds copies of ``models/`` and ``deploy/`` (so
``models/shapes_int8.tflite`` and ``sh deploy/central/setup.sh`` mean what they say), and the
venv's ``bin`` comes first on PATH. HOME, the agent's state folder and the model cache point
inside the working folder and the other ``EDGEBENCH_*`` variables are dropped, so a page can
neither see nor touch anything outside it. Each block runs under ``bash -e -o pipefail`` (every
line of it must succeed) and must exit 0.

A block that cannot run here (a camera, a board, root, network, a real broker host, a Docker
engine, a server that runs until stopped) is marked in the markdown by an HTML comment among
the comment lines right before its fence::

    <!-- not run by tests: needs a camera -->

Each marked block is reported as a skip with its page, line and reason, so the count is in
pytest's summary; an unmarked block that fails is a failure. Fences are ``sh`` (commands) or
``yaml`` (agent configs, which must pass the agent's own config validation); any other fence
is refused, so no command hides from this test under another name.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgebench.agent.errors import UserError
from edgebench.agent.options import config
from tests.support.paths import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*```\s*([\w+-]*)\s*$")
COMMENT = re.compile(r"^\s*<!--.*-->\s*$")
NOT_RUN = re.compile(r"<!--\s*not run by tests:\s*(.*?)\s*-->")
LANGUAGES = ("sh", "yaml")
#: seconds one block may take (the whole file runs in about half a minute on 2 shared cores)
BLOCK_TIMEOUT = 120


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    not_run: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _marker(lines: list[str], fence: int) -> str | None:
    """The not-run reason among the HTML comment lines right before the fence, if any."""
    i = fence - 1
    while i >= 0 and COMMENT.match(lines[i]):
        m = NOT_RUN.search(lines[i])
        if m:
            return m.group(1)
        i -= 1
    return None


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        i += 1
        while i < len(lines) and not FENCE.match(lines[i]):
            i += 1
        if i >= len(lines):
            raise AssertionError(f"{page.relative_to(ROOT)}:{start + 1}: a fence that is never closed")
        body = "\n".join(lines[start + 1 : i]) + "\n"
        out.append(Block(page, start + 1, m.group(1), body, _marker(lines, start)))
        i += 1
    return out


ALL = [b for page in PAGES for b in blocks(page)]


def _id(item) -> str:
    return item.where if isinstance(item, Block) else item.name


# ----------------------------------------------------------------------------- the working folder
def _bin_dir() -> Path:
    d = Path(sysconfig.get_path("scripts"))
    assert (d / "edgebench").exists() and (d / "edgebench-collector").exists(), (
        f"{d} has no edgebench commands: run the tests with the venv's python (pip install -e '.[dev]')"
    )
    return d


def _workdir(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    work = tmp_path / "checkout"
    work.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "secrets", ".env")
    for folder in ("models", "deploy"):
        shutil.copytree(ROOT / folder, work / folder, ignore=skip)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEBENCH_")}
    env.update(
        PATH=f"{_bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
        HOME=str(tmp_path / "home"),
        EDGEBENCH_STATE_DIR=str(tmp_path / "state"),
        EDGEBENCH_CACHE_DIR=str(tmp_path / "model-cache"),
    )
    (tmp_path / "home").mkdir()
    return work, env


def _run(block: Block, work: Path, env: dict[str, str]) -> str | None:
    """Run one block; None when it exits 0, else what went wrong."""
    try:
        p = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", block.text],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return f"{block.where}: still running after {BLOCK_TIMEOUT} s:\n{block.text}"
    if p.returncode == 0:
        return None
    return (
        f"{block.where}: exit {p.returncode}:\n{block.text}"
        f"--- stdout (end)\n{p.stdout[-1500:]}\n--- stderr (end)\n{p.stderr[-1500:]}"
    )


# ----------------------------------------------------------------------------- the tests
@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_every_unmarked_command_of_the_page_runs(page, tmp_path):
    """The page's sh blocks, in order, in one working folder: each exits 0."""
    runnable = [b for b in blocks(page) if b.lang == "sh" and b.not_run is None]
    work, env = _workdir(tmp_path)
    failures = [f for f in (_run(b, work, env) for b in runnable) if f]
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("block", [b for b in ALL if b.not_run is not None], ids=_id)
def test_marked_block_is_reported(block):
    """A block marked `not run by tests` is a skip that names its page, line and reason."""
    assert block.lang == "sh", f"{block.where}: only sh blocks can be marked not run"
    assert len(block.not_run.split()) >= 2, f"{block.where}: give the reason it cannot run here"
    pytest.skip(f"{block.where} not run by tests: {block.not_run}")


def test_pages_have_runnable_commands_and_only_known_fences():
    langs = {b.where: b.lang for b in ALL if b.lang not in LANGUAGES}
    assert not langs, f"fences other than {LANGUAGES} (commands go in sh blocks, so they are run): {langs}"
    runnable = [b for b in ALL if b.lang == "sh" and b.not_run is None]
    # the README's paths and the reference's examples: most commands run here
    assert len(runnable) >= 20, [b.where for b in runnable]
    assert any(b.page.name == "README.md" for b in runnable)


def test_every_not_run_marker_is_attached_to_a_block():
    """A marker separated from its block (by text or a blank line) would silently mark nothing."""
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        marked_fences = {b.line - 1 for b in blocks(page) if b.not_run is not None}
        for i, line in enumerate(lines):
            if not NOT_RUN.search(line):
                continue
            j = i + 1
            while j < len(lines) and COMMENT.match(lines[j]):
                j += 1
            assert j in marked_fences, f"{page.relative_to(ROOT)}:{i + 1}: marker not right before a fence"


@pytest.mark.parametrize("block", [b for b in ALL if b.lang == "yaml"], ids=_id)
def test_yaml_examples_are_valid_agent_configs(block, tmp_path):
    path = tmp_path / "agent.yaml"
    path.write_text(block.text, encoding="utf-8")
    try:
        cfg = config.load(str(path))
    except UserError as e:
        pytest.fail(f"{block.where}: {e}")
    assert cfg, f"{block.where}: an empty config"
