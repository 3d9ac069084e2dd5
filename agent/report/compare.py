"""``edgebench compare BASELINE.json RUN.json``: is a run faster or slower than a baseline,
beyond noise, without a collector.

The verdict is the collector's: the shared method of edgebench.agent.wire.compare (a 95 %
confidence interval of the change from a circular block bootstrap of each run's per-frame
samples). A result document carries each stage's summary and a histogram, not its frames,
and a block bootstrap needs the frames in their order; so the frames come from the per-frame
CSV the run wrote beside its document (``edgebench run --json R.json --csv R.csv`` records
the CSV in the document as ``samples_csv``). Without it the figures are still compared
(p50, p99 and FPS from the documents) but no change is called beyond noise: the output
says so, per metric, and ``--strict`` refuses to pass a comparison it could not judge.

Besides the figures, what differs between the two runs' configurations (model file,
runtime, delegate, threads, board, the options they ran with) is listed: a change in
latency means little until one knows what else changed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgebench.agent.errors import UserError
from edgebench.agent.report.documents import Document, per_frame
from edgebench.agent.wire.compare import CRITERION, compare_samples, judge
from edgebench.agent.wire.words import flatten, number

#: metrics where a higher value is better (the rest, latency and energy, are better lower)
HIGHER_IS_BETTER = ("fps",)
#: what a comparison without per-frame samples can still say
NO_SAMPLES = (
    "figures from the two documents only: a result holds each stage's summary, not its frames, so no "
    "change is judged against noise (keep the frames with --csv beside --json)"
)


def _fps_energy(doc: dict[str, Any]) -> tuple[float | None, float | None]:
    e = ((doc.get("power") or {}).get("energy_per_inference_mj") or {}).get("gross")
    return doc.get("fps"), e


def _from_summaries(run: dict[str, Any], base: dict[str, Any], stage: str) -> dict[str, Any]:
    """The metrics of compare_samples from the documents' summaries: values, no noise judged."""
    empty = np.empty(0)
    metrics = []
    for st in dict.fromkeys([stage, "inference"]):
        for q in (50, 99):
            c = (run["latency_ms"].get(st) or {}).get(f"p{q}")
            b = (base["latency_ms"].get(st) or {}).get(f"p{q}")
            metrics.append(judge(f"{st} p{q}", "ms", None, empty, empty, c, b, q))
    (cf, ce), (bf, be) = _fps_energy(run), _fps_energy(base)
    metrics.append(judge("fps", "frames/s", None, empty, empty, cf, bf))
    metrics.append(judge("energy per inference (gross)", "mJ", None, empty, empty, ce, be))
    for m in metrics[:-1]:
        m["note"] = "no per-frame samples to judge noise"
    return {"frames": {"run": run["frames"], "baseline": base["frames"]}, "criterion": CRITERION, "metrics": metrics}


def direction(m: dict[str, Any]) -> str:
    """``worse``, ``better`` (both beyond noise), ``within noise``, or ``not judged``."""
    if m.get("baseline") is None and m.get("run") is None:
        return "not measured"
    if m.get("beyond_noise") is None:
        return "not judged"
    if not m["beyond_noise"]:
        return "within noise"
    up = (m.get("change") or 0) > 0
    return "better" if up == (m["metric"] in HIGHER_IS_BETTER) else "worse"


def _setup(doc: dict[str, Any]) -> dict[str, Any]:
    """What a run ran with and on, flattened: the facts worth listing when they differ."""
    board = doc.get("board") or {}
    cpu = board.get("cpu") or {}
    src = doc.get("source")
    return {
        "device": doc.get("device_id"),
        "agent version": doc.get("agent_version"),
        "model file": doc["model"].get("name"),
        "model sha256": doc["model"].get("sha256"),
        **{f"runtime.{k}": v for k, v in (doc.get("runtime") or {}).items() if not isinstance(v, (dict, list))},
        "board.model": board.get("model"),
        "board.soc": board.get("soc"),
        "board.cpu": cpu.get("model"),
        "board.cores": cpu.get("cores"),
        "board.os": (board.get("os") or {}).get("name"),
        "board.kernel": board.get("kernel"),
        "board.python": board.get("python"),
        "source": src.get("kind") if isinstance(src, dict) else src,
        "mode": doc.get("mode"),
        "pacing": doc.get("pacing"),
        **{f"config.{k}": v for k, v in flatten(doc.get("config") or {}).items() if k != "model"},
    }


def config_differences(base: dict[str, Any], run: dict[str, Any]) -> list[dict[str, Any]]:
    """Every fact of :func:`_setup` that differs: ``{"what", "baseline", "run"}``."""
    a, b = _setup(base), _setup(run)
    return [{"what": k, "baseline": a.get(k), "run": b.get(k)} for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]


def compare(base: Document, run: Document, stage: str = "e2e") -> dict[str, Any]:
    """``run`` against ``base`` (both per-frame run documents): the shared method's metrics
    with a ``verdict`` each, where the samples came from (``method``), the configuration
    differences, and the regressions and improvements beyond noise."""
    for d in (base, run):
        if d.kind != "run":
            raise UserError(
                f"{d.name} is a {d.kind} result: compare takes two per-frame runs (edgebench run --json); "
                f"`edgebench report A.json B.json` shows {d.kind}s side by side"
            )
        if stage not in d.doc["latency_ms"]:
            raise UserError(f"{d.name} has no stage {stage!r} (it has {', '.join(d.doc['latency_ms'])})")
    bs, bwhy = per_frame(base)
    rs, rwhy = per_frame(run)
    if bs is not None and rs is not None:
        (rf, re_), (bf, be) = _fps_energy(run.doc), _fps_energy(base.doc)
        out = compare_samples(rs["stages"], bs["stages"], stage=stage, fps=(rf, bf), energy_mj=(re_, be))
        method = f"per-frame samples: {bwhy}; {rwhy}"
    else:
        out = _from_summaries(run.doc, base.doc, stage)
        method = f"{NO_SAMPLES}. {'; '.join(w for s, w in ((bs, bwhy), (rs, rwhy)) if s is None)}"
    for m in out["metrics"]:
        m["verdict"] = direction(m)
    judged = any(m["beyond_noise"] is not None for m in out["metrics"])
    return {
        "baseline": {"file": base.path, "run_id": base.doc["run_id"], "device_id": base.doc["device_id"]},
        "run": {"file": run.path, "run_id": run.doc["run_id"], "device_id": run.doc["device_id"]},
        "stage": stage,
        "method": method,
        "judged": judged,
        **out,
        "regressions": [m["metric"] for m in out["metrics"] if m["verdict"] == "worse"],
        "improvements": [m["metric"] for m in out["metrics"] if m["verdict"] == "better"],
        "config_differences": config_differences(base.doc, run.doc),
    }


# ------------------------------------------------------------------------------- rendering
def _num(v: Any, sign: bool = False) -> str:
    """4 significant digits, no exponent (``14329.1``, ``0.0628``), a sign on changes."""
    text = number(v)
    return f"+{text}" if sign and v is not None and v > 0 else text


def rows(c: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The metrics as a table: heading and rows of text."""
    head = ["metric", "baseline", "run", "change", "change %", "95% CI of change", "verdict"]
    body = []
    for m in c["metrics"]:
        ci = m.get("ci95")
        verdict = m["verdict"] + (f" ({m['note']})" if m["verdict"] == "not judged" and m.get("note") else "")
        body.append(
            [
                f"{m['metric']} ({m['unit']})",
                _num(m["baseline"]),
                _num(m["run"]),
                _num(m["change"], sign=True),
                "-" if m["change_pct"] is None else f"{m['change_pct']:+.1f}",
                f"[{_num(ci[0], sign=True)}, {_num(ci[1], sign=True)}]" if ci else "-",
                verdict,
            ]
        )
    return head, body


def _value(v: Any) -> str:
    return "(not set)" if v is None else str(v)


def summary_line(c: dict[str, Any]) -> str:
    if not c["judged"]:
        return "verdict: not judged (no per-frame samples): the figures above are points, not a verdict"
    parts = []
    if c["regressions"]:
        parts.append(f"{len(c['regressions'])} worse beyond noise ({', '.join(c['regressions'])})")
    if c["improvements"]:
        parts.append(f"{len(c['improvements'])} better beyond noise ({', '.join(c['improvements'])})")
    return "verdict: " + ("; ".join(parts) if parts else "no change beyond noise")


def as_text(c: dict[str, Any]) -> str:
    head, body = rows(c)
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    line = lambda r: "  ".join(x.ljust(w) if i in (0, 6) else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths)))
    b, r = c["baseline"], c["run"]
    out = [
        f"baseline {b['file']} (run {b['run_id']} on {b['device_id']}, {c['frames']['baseline']} frames)",
        f"run      {r['file']} (run {r['run_id']} on {r['device_id']}, {c['frames']['run']} frames)",
        line(head),
        *(line(x).rstrip() for x in body),
        summary_line(c),
        f"method: {c['method']}",
        f"criterion: {c['criterion']}",
    ]
    diffs = c["config_differences"]
    out.append("configuration differences:" if diffs else "configuration differences: none")
    out += [f"  {d['what']}: {_value(d['baseline'])} -> {_value(d['run'])}" for d in diffs]
    return "\n".join(out)


def _md_cell(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def as_markdown(c: dict[str, Any]) -> str:
    head, body = rows(c)
    b, r = c["baseline"], c["run"]
    out = [
        f"### `{_md_cell(r['run_id'])}` against baseline `{_md_cell(b['run_id'])}`",
        "",
        f"Baseline {_md_cell(b['file'])} on {_md_cell(b['device_id'])} ({c['frames']['baseline']} frames); "
        f"run {_md_cell(r['file'])} on {_md_cell(r['device_id'])} ({c['frames']['run']} frames).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * 5 + ["---"]) + "|",
        *("| " + " | ".join(_md_cell(x) if x != "worse" else "**worse**" for x in row) + " |" for row in body),
        "",
        f"**{_md_cell(summary_line(c))}**",
        "",
        f"Method: {_md_cell(c['method'])}. Criterion: {_md_cell(c['criterion'])}.",
        "",
    ]
    diffs = c["config_differences"]
    if diffs:
        out += ["| what differs | baseline | run |", "|---|---|---|"]
        out += [
            f"| {_md_cell(d['what'])} | {_md_cell(_value(d['baseline']))} | {_md_cell(_value(d['run']))} |"
            for d in diffs
        ]
    else:
        out.append("Configuration: no difference.")
    return "\n".join(out) + "\n"
