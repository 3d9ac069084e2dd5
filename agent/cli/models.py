"""``edgebench models``: list, info, fetch and verify the models the project knows.

    edgebench models list                 # bundled and fetchable models
    edgebench models info FILE|NAME       # inputs, outputs, quantization, operators, Edge TPU
    edgebench models ops FILE|NAME [--times]  # which operator runs where (and how long: --times)
    edgebench models fetch NAME           # download a public model, check its sha256, cache it
    edgebench models verify [NAME|FILE ...]  # bundled, cached or any model file against the sha256

Fetched files go to $EDGEBENCH_CACHE_DIR, else ~/.cache/edgebench/models.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from edgebench.agent.errors import ModelError, UserError
from edgebench.agent.runtime.fetch import FetchError, fetch  # noqa: F401 - FetchError: its exit code is documented here


def add_parser(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("models", help="bundled and public models: list, info, fetch, verify")
    ms = m.add_subparsers(dest="models_command", metavar="ACTION")
    ms.required = True
    ls = ms.add_parser("list", help="every model in the registry and where it is")
    ls.add_argument("--json", action="store_true", help="print the entries as JSON")
    info = ms.add_parser("info", help="what is inside a .tflite file (or a registry model by name)")
    info.add_argument("target", metavar="FILE|NAME")
    info.add_argument("--json", action="store_true", help="print the details as JSON")
    ops = ms.add_parser(
        "ops",
        help="which operator runs where: backend, delegate partitions, GPU compatibility; with --times each "
        "operator's time (the default threads and XNNPACK; `edgebench run --ops` for others)",
    )
    ops.add_argument("target", metavar="FILE|NAME")
    ops.add_argument("--times", action="store_true", help="time every operator alone (docs/accelerators.md)")
    ops.add_argument("--json", action="store_true", help="print the op table as JSON")
    f = ms.add_parser("fetch", help="download a public model, check its sha256 and cache it")
    f.add_argument("names", nargs="+", metavar="NAME")
    f.add_argument("--force", action="store_true", help="download again even when a good copy is cached")
    f.add_argument("--timeout", type=float, default=30.0, metavar="S", help="network timeout in seconds (default 30)")
    v = ms.add_parser("verify", help="check bundled and cached model files against their sha256")
    v.add_argument(
        "names",
        nargs="*",
        metavar="NAME|FILE",
        help="only these entries, or model files anywhere, known by their sha256 (default: every entry)",
    )


def _models():
    from edgebench import models

    return models


def _entries() -> list[dict[str, Any]]:
    from edgebench.agent.runtime.registry import load

    return load()


def _entry(name: str) -> dict[str, Any]:
    es = _entries()
    for e in es:
        if e["name"] == name:
            return e
    import difflib

    close = difflib.get_close_matches(name, [e["name"] for e in es], n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UserError(f"no model named {name!r} in the registry{hint}; `edgebench models list` shows them")


def _sha256(path: Path) -> str:
    return _models().file_sha256(path)


# ------------------------------------------------------------------------- list
def _where(e: dict[str, Any]) -> str:
    p = _models().local_path(e)
    if "file" in e:
        return "bundled" if p.is_file() else "bundled (MISSING)"
    return "cached" if p.is_file() else "remote"


def _status(e: dict[str, Any]) -> str:
    if e.get("task") == "labels":
        return "-"
    return "trained" if e.get("trained") else "latency only"


def _input(e: dict[str, Any]) -> str:
    i = e.get("input") or {}
    size = "x".join(str(v) for v in i.get("size", [])) or "?"
    return f"{size} {i.get('dtype', '')}".strip() if i else "-"


def _batch(e: dict[str, Any]) -> str:
    if "batch_resizable" not in e:
        return "-"
    return "resizable" if e["batch_resizable"] else "fixed"


def cmd_list(args, out: Callable[[str], None]) -> int:
    es = _entries()
    if args.json:
        m = _models()
        docs = [{**m.public(e), "local_path": str(m.local_path(e)), "where": _where(e)} for e in es]
        out(json.dumps(docs, indent=2))
        return 0
    rows = [("NAME", "TASK", "WEIGHTS", "INPUT", "BATCH", "WHERE")]
    rows += [(e["name"], e.get("task", "?"), _status(e), _input(e), _batch(e), _where(e)) for e in es]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    out(f"cache: {_models().cache_dir()}  (`edgebench models fetch NAME` downloads a remote one)")
    return 0


# ------------------------------------------------------------------------- info
def cmd_info(args, out: Callable[[str], None]) -> int:
    from edgebench.agent.runtime.modelinfo import format_info, inspect
    from edgebench.agent.runtime.registry import describe, lookup

    target = _target(args.target)
    info = inspect(target)
    known = lookup(info["sha256"])
    if args.json:
        info["registry"] = describe(known) if known else None
        out(json.dumps(info, indent=2))
    else:
        out(format_info(info, known))
    return 0


def _target(target: str) -> str:
    """A model file, or the local file of a registry model by name."""
    if not os.path.exists(target):
        names = {e["name"]: e for e in _entries()}
        if target in names:
            p = _models().local_path(names[target])
            if not p.is_file():
                raise UserError(f"{target} is not on this machine yet: edgebench models fetch {target}")
            target = str(p)
    return target


def cmd_ops(args, out: Callable[[str], None]) -> int:
    """The op table of the model under the Interpreter (edgebench.agent.runtime.optime)."""
    from edgebench.agent.runtime import interpreter as rtmod
    from edgebench.agent.runtime import optime

    rt = rtmod.load(_target(args.target))
    table = optime.diagnose(rt, times=args.times)
    if table is None:
        raise UserError(f"{rt.name} {rt.version} does not expose its graph (_get_ops_details): no op table here")
    out(json.dumps(table, indent=2) if args.json else optime.format_table(table))
    return 0


# ------------------------------------------------------------------------ fetch
def cmd_fetch(args, out: Callable[[str], None]) -> int:
    es = {e["name"]: e for e in _entries()}
    for name in args.names:
        e = _entry(name)
        fetch(e, timeout=args.timeout, force=args.force, out=out)
        labels = e.get("labels")
        if labels in es and labels != name:
            fetch(es[labels], timeout=args.timeout, force=args.force, out=out)
    return 0


# ----------------------------------------------------------------------- verify
def cmd_verify(args, out: Callable[[str], None]) -> int:
    """Check files against the registry's sha256: every bundled and cached entry, or the
    entries named, or model FILES wherever they are (known by their bytes, as `models info`
    knows them)."""
    files = [n for n in args.names if os.path.isfile(n)]
    es = [_entry(n) for n in args.names if n not in files] if args.names else _entries()
    bad: list[str] = []
    counts = {"ok": 0, "not cached": 0}
    w = max((len(e["name"]) for e in es), default=0)
    for e in es:
        _verify_entry(e, w, counts, bad, out)
    for f in files:
        _verify_file(Path(f), counts, bad, out)
    out(
        f"{counts['ok']} file(s) match their sha256, {counts['not cached']} remote model(s) not in the cache "
        f"(edgebench models fetch NAME), {len(bad)} bad"
    )
    if bad:
        raise ModelError(f"{len(bad)} model file(s) do not match the registry: {'; '.join(bad)}")
    return 0


def _verify_entry(e: dict[str, Any], w: int, counts: dict[str, int], bad: list[str], out) -> None:
    p = _models().local_path(e)
    name = e["name"].ljust(w)
    if not p.is_file():
        if "file" in e:
            bad.append(f"{e['name']} (missing: {p})")
            out(f"MISSING   {name}  {p}")
        else:
            counts["not cached"] += 1
            out(f"remote    {name}  not in the cache {p.parent} (a copy elsewhere: models verify FILE)")
        return
    got = _sha256(p)
    if got == e["sha256"]:
        counts["ok"] += 1
        out(f"ok        {name}  {p}")
    else:
        bad.append(f"{e['name']} ({p} has sha256 {got})")
        out(f"MISMATCH  {name}  {p}  sha256 {got}, registry {e['sha256']}")


def _verify_file(path: Path, counts: dict[str, int], bad: list[str], out) -> None:
    """A file anywhere: ok when its bytes are a registry entry's (the entry named)."""
    from edgebench.agent.runtime.registry import lookup

    got = _sha256(path)
    known = lookup(got)
    if known is not None:
        counts["ok"] += 1
        out(f"ok        {known['name']}  {path} (known by its sha256)")
        return
    bad.append(f"{path} (sha256 {got} is no registry entry's)")
    out(f"UNKNOWN   {path}  sha256 {got}: no registry entry has these bytes")


def cmd_models(args: argparse.Namespace, out: Callable[[str], None] | None = None) -> int:
    out = out or (lambda s: print(s, file=sys.stdout))
    return {"list": cmd_list, "info": cmd_info, "ops": cmd_ops, "fetch": cmd_fetch, "verify": cmd_verify}[
        args.models_command
    ](args, out)
