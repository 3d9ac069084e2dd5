"""Reading result documents back from disk: a run (``edgebench.result/1``), a sweep
(``edgebench.sweep/1``) or a scenario result (``edgebench.scenario/1``), as ``--json`` wrote
them, and the per-frame CSV a run's document names (``samples_csv``, written by
``edgebench run --json R.json --csv R.csv``).

The agent carries no JSON Schema validator (a board installs as little as it can), so a
document is checked for what the report and the comparison read: its ``schema`` and the
top-level fields its schema requires. A file that is not one is one line saying so.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.wire import protocol

#: the document kinds by schema, as the report and the comparison name them
KINDS = {protocol.RESULT_SCHEMA: "run", protocol.SWEEP_SCHEMA: "sweep", protocol.SCENARIO_SCHEMA: "scenario"}
_SCHEMAS = {
    protocol.RESULT_SCHEMA: protocol.RESULT_JSON_SCHEMA,
    protocol.SWEEP_SCHEMA: protocol.SWEEP_JSON_SCHEMA,
    protocol.SCENARIO_SCHEMA: protocol.SCENARIO_JSON_SCHEMA,
}


@dataclass
class Document:
    path: str
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return KINDS[self.doc["schema"]]

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def samples_path(self) -> str | None:
        """Where the run's per-frame CSV is (its ``samples_csv``, relative to this file), if named."""
        rel = self.doc.get("samples_csv")
        if not isinstance(rel, str) or not rel:
            return None
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(self.path)), rel))


def load(path: str) -> Document:
    """The document at ``path``; UserError when it cannot be read or is not an edgebench result."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise UserError(f"no such file: {path}") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not JSON ({e}): give a document written by --json") from None
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema not in _SCHEMAS:
        raise UserError(
            f"{path} is not an edgebench result (its schema is {schema!r}; expected one of "
            f"{', '.join(protocol.RESULT_SCHEMAS)}): give a document written by `edgebench run/sweep --json`"
        )
    missing = [k for k in _SCHEMAS[schema]["required"] if k not in doc]
    if missing:
        raise UserError(f"{path}: a {schema} document without {', '.join(missing)} (cut short or edited?)")
    return Document(path, doc)


def per_frame(d: Document) -> tuple[dict[str, Any] | None, str]:
    """(the run's per-frame samples, read_samples_csv's shape, or None; where they came
    from, or why there are none), for a run document."""
    from edgebench.agent.report.samples import read_samples_csv

    where = d.samples_path()
    if where is None:
        return None, f"{d.name} names no per-frame CSV (run with --json and --csv to keep every frame)"
    if not os.path.exists(where):
        return None, f"{d.name} names the per-frame CSV {where}, which is not there"
    samples = read_samples_csv(where)
    if samples["frames"] != d.doc["frames"]:
        raise UserError(
            f"{where} holds {samples['frames']} frames but {d.name} says {d.doc['frames']}: not this run's CSV?"
        )
    return samples, f"{d.name}: {samples['frames']} frames from {os.path.relpath(where)}"
