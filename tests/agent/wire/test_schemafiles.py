"""The JSON Schemas published under docs/schemas/ are the code's: one file per document and
wire message, each what ``edgebench schema NAME`` prints, each a valid JSON Schema; a change
to a schema in the code without regenerating the files fails here."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest

from edgebench.agent.errors import UserError
from edgebench.agent.wire import protocol, schemafiles
from tests.support.paths import ROOT, run_cli

FOLDER = ROOT / "docs" / "schemas"
REGENERATE = "regenerate them: edgebench schema --write docs/schemas"


def test_every_schema_of_the_code_has_its_file_and_no_other_file_is_there():
    want = {schemafiles.file_name(s) for s in schemafiles.sources()}
    have = {p.name for p in FOLDER.glob("*.schema.json")}
    assert have == want, (
        f"files differ from the code's schemas ({REGENERATE}): missing {want - have}, stale {have - want}"
    )
    # the documents and every message kind the collector validates are there
    assert {protocol.RESULT_SCHEMA, protocol.SWEEP_SCHEMA, protocol.SCENARIO_SCHEMA} <= set(schemafiles.sources())
    assert set(protocol.SCHEMAS) <= set(schemafiles.sources())


@pytest.mark.parametrize("schema", list(schemafiles.sources()))
def test_the_file_is_what_the_code_gives(schema):
    path = FOLDER / schemafiles.file_name(schema)
    assert path.read_text(encoding="utf-8") == schemafiles.text(schema), f"{path.name} is out of date: {REGENERATE}"
    published = json.loads(path.read_text(encoding="utf-8"))
    assert jsonschema_rs.meta.is_valid(published), f"{path.name} is not a valid JSON Schema"
    assert published["title"] == schema and published["$schema"] == schemafiles.DIALECT


def test_a_changed_schema_is_caught(monkeypatch):
    """The check above fails when the code's schema changes and the files do not."""
    changed = {**protocol.RESULT_JSON_SCHEMA, "required": [*protocol.RESULT_JSON_SCHEMA["required"], "new_field"]}
    monkeypatch.setattr(protocol, "RESULT_JSON_SCHEMA", changed)
    path = FOLDER / schemafiles.file_name(protocol.RESULT_SCHEMA)
    assert path.read_text(encoding="utf-8") != schemafiles.text(protocol.RESULT_SCHEMA)


def test_a_published_schema_validates_what_the_agent_writes(tmp_path):
    from tests.support.paths import SHAPES_MODEL

    out = tmp_path / "r.json"
    p = run_cli("run", "--model", str(SHAPES_MODEL), "--frames", "20", "--json", str(out), "-q")
    assert p.returncode == 0, p.stderr
    schema = json.loads((FOLDER / "edgebench.result.v1.schema.json").read_text())
    jsonschema_rs.validator_for(schema).validate(json.loads(out.read_text()))
    bad = {**json.loads(out.read_text()), "frames": -1}
    assert not jsonschema_rs.validator_for(schema).is_valid(bad)


def test_schema_command_lists_prints_and_writes(tmp_path):
    p = run_cli("schema")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert len(lines) == len(schemafiles.sources())
    assert lines[0].split() == ["result", "edgebench.result/1", "edgebench.result.v1.schema.json"]
    for name in ("frames", "edgebench.frames/1", "edgebench.frames.v1.schema.json"):
        p = run_cli("schema", name)
        assert p.returncode == 0 and json.loads(p.stdout)["title"] == "edgebench.frames/1"
    (tmp_path / "edgebench.gone.v1.schema.json").write_text("{}")
    (tmp_path / "keep.txt").write_text("not ours")
    p = run_cli("schema", "--write", str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == sorted(
        [schemafiles.file_name(s) for s in schemafiles.sources()] + ["keep.txt"]
    )


def test_an_unknown_schema_name_is_one_line():
    p = run_cli("schema", "resutl")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.startswith("edgebench: error: no schema named 'resutl': use one of result, sweep")
    with pytest.raises(UserError):
        schemafiles.find("nope")
