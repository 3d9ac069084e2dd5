"""The README is the door, docs/ the reference: the README stays short and links every page,
every relative link of the pages leads somewhere that exists (the anchor too), every flag of
both command lines is documented under docs/, and the README's two commands stay where
``.ci/run`` (the test command) and readers (the demo command) find them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from edgebench.agent.cli import build_parser as agent_parser
from edgebench.collector.cli import build_parser as collector_parser
from tests.support.paths import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_LINES = 260
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    in_fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else HEADING.match(line)
        if m:
            s = _slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def test_docs_exist():
    names = {p.name for p in DOCS}
    assert {"agent.md", "collector.md", "deploy.md", "errors.md", "layout.md"} <= names, names


def test_readme_is_short_and_links_every_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < MAX_README_LINES, f"README.md has {len(lines)} lines: reference belongs in docs/"
    targets = {t.split("#")[0] for t in LINK.findall(README.read_text(encoding="utf-8"))}
    missing = [f"docs/{p.name}" for p in DOCS if f"docs/{p.name}" not in targets]
    assert not missing, f"README.md does not link {missing}"
    assert "agent/wire/protocol.md" in targets


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    bad = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not bad, f"{page.relative_to(ROOT)}: {bad}"


def _flags(parser: argparse.ArgumentParser, path: tuple[str, ...]):
    """(command path, option string) for every option of a parser and its sub-commands; hidden
    options (help=SUPPRESS, internal plumbing) are not the user's to know."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _flags(sub, (*path, name))
        elif not isinstance(action, argparse._HelpAction) and action.help != argparse.SUPPRESS:
            for opt in action.option_strings:
                yield path, opt


@pytest.mark.parametrize("parser,prog", [(agent_parser, "edgebench"), (collector_parser, "edgebench-collector")])
def test_every_flag_is_documented(parser, prog):
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS)
    flags = list(_flags(parser(), (prog,)))
    assert len(flags) > 30
    missing = sorted(
        {
            f"{' '.join(path)} {opt}"
            for path, opt in flags
            if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text)
        }
    )
    assert not missing, f"flags no page under docs/ mentions: {missing}"


def _command_after(marker: str) -> str:
    lines = README.read_text(encoding="utf-8").splitlines()
    i = lines.index(marker)
    assert lines[i + 1] == "```sh", f"{marker} must sit right before its ```sh fence"
    end = lines.index("```", i + 2)
    return "\n".join(lines[i + 2 : end])


def test_the_two_commands_stay_first():
    demo = _command_after("<!-- demo-command -->")
    test = _command_after("<!-- test-command -->")
    assert demo.endswith("edgebench-collector demo")
    assert "pytest" in test  # .ci/run refuses a test command without it
    first = README.read_text(encoding="utf-8").split("\n## ")[1]  # the first section
    assert first.startswith("Two commands\n")
    assert first.index("<!-- demo-command -->") < first.index("<!-- test-command -->")
