"""What ``edgebench run`` and ``edgebench sweep`` share on the command line: reading the
config file and the flags into the config's shape (agent/options), and the publishing
settings a command hands down (agent/publish/documents.py ``PublishSettings``). The
argparse Namespace stops here."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from edgebench.agent.cli.flags import given
from edgebench.agent.options.table import section_values

if TYPE_CHECKING:
    from edgebench.agent.publish.documents import PublishSettings


def read_settings(args: argparse.Namespace, command: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the --config file, checked; the flags given, checked), both in the config's shape.
    The problems of both are reported together, every one on its own line."""
    from edgebench.agent.errors import UserError
    from edgebench.agent.options import config as cfgmod

    problems: list[str] = []
    cfg: dict[str, Any] = {}
    flags: dict[str, Any] = {}
    try:
        cfg = cfgmod.load(args.config) if args.config else {}
    except UserError as e:
        problems += str(e).splitlines()
    try:
        flags = given(args, command)
    except UserError as e:
        problems += str(e).splitlines()
    if problems:
        raise UserError("\n".join(problems))
    return cfg, flags


def publish_settings(merged: dict[str, Any], args: argparse.Namespace, command: str) -> PublishSettings | None:
    """PublishSettings when there is a broker (``--mqtt`` or ``mqtt.url``), else None.
    A bad broker URL is a user error now, before, not after, the run."""
    mqtt = merged.get("mqtt") or {}
    if not mqtt.get("url"):
        return None
    from edgebench.agent.publish.documents import PublishSettings
    from edgebench.agent.wire.transport import parse_url

    parse_url(mqtt["url"])
    return PublishSettings(
        mqtt=mqtt,
        wait_s=section_values(merged, "outbox", command)["drain_wait_s"],
        outbox=merged.get("outbox") or {},
        keep=args.json,
        quiet=args.quiet,
        verbose=args.verbose,
    )


def strict_problems(doc: dict[str, Any]) -> list[str]:
    """What ``--strict`` fails on: an INVALID verdict (with its reasons), a missed latency
    bound, a sweep point that did not run or is INVALID; [] when there is nothing."""
    if "points" in doc:  # a sweep
        return [
            f"batch {p['batch']} threads {p['threads']} instances {p['instances']}: "
            + (f"{p['status']}: {p.get('reason', '')}" if p["status"] != "ok" else "; ".join(p["reasons"]))
            for p in doc["points"]
            if p["status"] != "ok" or p.get("verdict") != "VALID"
        ]
    v = doc.get("validity") or doc  # a run's validity section, or a scenario document
    problems = list(v.get("reasons") or []) if v.get("verdict") == "INVALID" else []
    if doc.get("within_bound") is False and not any("bound" in r for r in problems):
        problems.append(f"p99 not within the {doc.get('latency_bound_ms')} ms latency bound")
    return problems


def strict_check(doc: dict[str, Any]) -> None:
    """``--strict``: after the result is written and published, exit 8 (StrictError) when
    ``strict_problems`` finds any, on one line."""
    from edgebench.agent.errors import StrictError

    problems = strict_problems(doc)
    if problems:
        what = "sweep has points that are not ok and VALID" if "points" in doc else "result is INVALID"
        raise StrictError(f"--strict: the {what}: {'; '.join(problems)}")


def model_file(spec: str, quiet: bool = False) -> str:
    """The file of a model given as a path or a registry name, fetched when needed
    (edgebench.agent.runtime.fetch); what the fetch does is said on stderr unless quiet."""
    import sys

    from edgebench.agent.runtime.fetch import resolve_model

    return resolve_model(spec, out=(lambda s: None) if quiet else (lambda s: print(s, file=sys.stderr)))


def check_writable(path: str | None, what: str = "result") -> None:
    """A --json path that can be written, before, not after, the run: its folder made, the
    path not a folder, a file creatable beside it (tried, then removed). A user error if not."""
    import os

    from edgebench.agent.errors import UserError

    if not path:
        return
    full = os.path.abspath(path)
    if os.path.isdir(full):
        raise UserError(f"cannot write the {what} to {path}: it is a folder; give a file name (e.g. {path}/run.json)")
    probe = os.path.join(os.path.dirname(full), f".{os.path.basename(full)}.edgebench-check-{os.getpid()}")
    try:
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(probe, "w", encoding="utf-8"):
            pass
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"cannot write the {what} to {path}: {e.strerror or e}; give a writable path") from None


def write_or_keep(path: str, doc: dict[str, Any], what: str = "result") -> str | None:
    """Write ``doc`` to ``path``; if that fails after all (the disk filled, the folder went
    away during the run), keep it in the state folder (else the temporary folder) and return
    the one line saying so, for an OutputError (exit 9) once everything else is done."""
    import os
    import tempfile

    from edgebench.agent.measure.result import write_json

    try:
        write_json(path, doc)
        return None
    except OSError as e:
        why = e.strerror or str(e)
    name = f"edgebench-{what}-{doc.get('run_id', 'unknown')}.json"
    for folder in _keep_folders():
        kept = os.path.join(folder, name)
        try:
            write_json(kept, doc)
        except OSError:
            continue
        return f"cannot write the {what} to {path} ({why}); it is kept in {kept}"
    return (
        f"cannot write the {what} to {path} ({why}), nor into the state or temporary folder ({tempfile.gettempdir()})"
    )


def _keep_folders() -> list[str]:
    import os
    import tempfile

    try:
        from edgebench.agent.publish.state import state_dir

        folders = [os.path.join(str(state_dir()), "results")]
    except Exception:  # the state folder itself is unusable
        folders = []
    return folders + [tempfile.gettempdir()]
