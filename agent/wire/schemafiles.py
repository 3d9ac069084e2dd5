"""The JSON Schemas of every edgebench document and wire message, as published files.

The schemas are code (edgebench.agent.wire.protocol: the collector validates with them,
the agent's tests check its documents with them). This module turns each into a
stand-alone file for other tools, with the JSON Schema dialect, a title (the ``schema``
value a document carries) and a description added: ``docs/schemas/<name>.v<major>.schema.json``.

``edgebench schema`` lists them, ``edgebench schema NAME`` prints one, and ``edgebench
schema --write DIR`` writes them all; tests/agent/wire/test_schemafiles.py fails when the
files under docs/schemas/ differ from what the code gives (regenerate them with
``edgebench schema --write docs/schemas``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.wire import protocol

DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: what each document or message is, for the file's ``description``
DESCRIPTIONS = {
    protocol.RESULT_SCHEMA: "One benchmark run: latency per stage (ms), FPS, power, thermal and board facts "
    "(edgebench run --json; the `result` of a run's summary message).",
    protocol.SWEEP_SCHEMA: "A sweep over batch sizes, threads and instances: one entry per grid point "
    "(edgebench sweep --json).",
    protocol.SCENARIO_SCHEMA: "A LoadGen-style scenario result with its verdict and headline "
    "(edgebench run --scenario ... --json).",
    protocol.TUNE_SCHEMA: "edgebench tune's search run as an agent job: the points measured, what was pruned and "
    "why, the best configuration under the latency bound, the runner-up and the verdict.",
}
_TOPICS = {schema: kind for kind, schema in protocol.KIND_SCHEMA.items()}


def _description(schema: str) -> str:
    if schema in DESCRIPTIONS:
        return DESCRIPTIONS[schema]
    kind = _TOPICS.get(schema)
    if kind is not None:
        return f"The `{kind}` message a device publishes (see agent/wire/protocol.md)."
    if schema == protocol.CMD_RUN_SCHEMA:
        return "A job the collector sends a device on edgebench/v1/<device>/cmd/run."
    return f"The {schema} message (see agent/wire/protocol.md)."


def sources() -> dict[str, dict[str, Any]]:
    """Every schema by its name (``edgebench.result/1``...): the documents, then the messages."""
    out = {
        protocol.RESULT_SCHEMA: protocol.RESULT_JSON_SCHEMA,
        protocol.SWEEP_SCHEMA: protocol.SWEEP_JSON_SCHEMA,
        protocol.SCENARIO_SCHEMA: protocol.SCENARIO_JSON_SCHEMA,
        protocol.TUNE_SCHEMA: protocol.TUNE_JSON_SCHEMA,
    }
    out.update(protocol.SCHEMAS)
    return out


def short_name(schema: str) -> str:
    """``result`` for ``edgebench.result/1``."""
    return schema.split("/")[0].removeprefix(f"{protocol.TOPIC_ROOT}.")


def file_name(schema: str) -> str:
    """``edgebench.result.v1.schema.json`` for ``edgebench.result/1``."""
    name, _, major = schema.partition("/")
    return f"{name}.v{major}.schema.json"


def published(schema: str) -> dict[str, Any]:
    """The schema as a stand-alone file: dialect, title and description, then the schema."""
    return {"$schema": DIALECT, "title": schema, "description": _description(schema), **sources()[schema]}


def text(schema: str) -> str:
    return json.dumps(published(schema), indent=2, ensure_ascii=False) + "\n"


def find(name: str) -> str:
    """The schema called ``name``: its short name (``result``), its title (``edgebench.result/1``)
    or its file name; UserError listing the names otherwise."""
    for schema in sources():
        if name in (schema, short_name(schema), file_name(schema), schema.split("/")[0]):
            return schema
    names = ", ".join(short_name(s) for s in sources())
    raise UserError(f"no schema named {name!r}: use one of {names}")


def write_all(folder: str) -> list[str]:
    """Write every schema file into ``folder``, removing stale ``*.schema.json`` ones; returns the paths."""
    try:
        os.makedirs(folder, exist_ok=True)
        want = {file_name(s): text(s) for s in sources()}
        for old in os.listdir(folder):
            if old.endswith(".schema.json") and old not in want:
                os.remove(os.path.join(folder, old))
        paths = []
        for name, body in want.items():
            path = os.path.join(folder, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(body)
            paths.append(path)
    except OSError as e:
        raise UserError(f"cannot write the schemas into {folder}: {e.strerror or e}") from None
    return paths
