"""What ``edgebench report`` says about each document, as blocks both renderers use
(edgebench.agent.report.render: Markdown and HTML): a heading, facts (name and value),
tables, lists of notes, and charts (HTML only). The figures come from the documents as
written; a run whose document names its per-frame CSV (``samples_csv``) also gets its
latency over time and per stage from that file.

Everything is in words and units (edgebench.agent.wire.words): ``target rate
(queries/s)``, ``CPU, XNNPACK``, ``runtime default`` threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from edgebench.agent.report.documents import Document, per_frame
from edgebench.agent.wire import words
from edgebench.agent.wire.words import number

_STATS = ("mean", "p50", "p90", "p99", "p999", "max")


@dataclass
class Facts:
    items: list[tuple[str, str]]


@dataclass
class Table:
    head: list[str]
    rows: list[list[str]]
    caption: str = ""
    #: leading columns that are words (left-aligned); the rest are figures
    left: int = 1


@dataclass
class Notes:
    label: str
    items: list[str]


@dataclass
class Verdict:
    verdict: str  # VALID / INVALID
    text: str
    reasons: list[str] = field(default_factory=list)


@dataclass
class Charts:
    """Figures drawn on demand (matplotlib), each (name, Figure)."""

    make: Callable[[], list[tuple[str, Any]]]
    what: str


@dataclass
class Section:
    title: str
    blocks: list[Any]


def _title(d: Document, what: str) -> str:
    doc = d.doc
    return f"{what} {doc['run_id']}: {doc['model']['name']} on {doc['device_id']} ({d.name})"


def _ran_on(doc: dict[str, Any]) -> list[tuple[str, str]]:
    rt = doc.get("runtime") or {}
    board = doc.get("board") or {}
    cpu = board.get("cpu") or {}
    hw = board.get("model") or board.get("soc") or cpu.get("model")
    return [
        ("model", f"{doc['model']['name']} (sha256 {doc['model']['sha256'][:12]})"),
        ("runtime", words.runtime(rt)),
        ("accelerator", words.accelerator(rt)),
        ("threads", words.threads(rt.get("num_threads"))),
        ("board", f"{hw or 'unknown'}" + (f", {cpu['cores']} cores" if cpu.get("cores") else "")),
        ("device", doc["device_id"]),
        ("started", str(doc.get("started_at") or "-")),
        ("agent", str(doc.get("agent_version") or "-")),
    ]


def _probes_facts(doc: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    p = doc.get("power") or {}
    if p.get("available"):
        e = p.get("energy_per_inference_mj") or {}
        out.append(("power mean (W)", number(p.get("mean_w"))))
        out.append(("energy per inference, gross / net (mJ)", f"{number(e.get('gross'))} / {number(e.get('net'))}"))
    elif "power" in doc:
        out.append(("power", "not measured" + (f": {p['reason']}" if p.get("reason") else "")))
    th = doc.get("thermal") or {}
    if th.get("max_c") is not None:
        out.append(("hottest temperature (°C)", f"{number(th['max_c'])} ({th.get('max_zone')})"))
    thr = doc.get("throttling")
    if isinstance(thr, dict) and thr.get("watched"):
        out.append(("throttled", "yes: " + ", ".join(thr.get("flags") or []) if thr.get("throttled") else "no"))
    return out


def _stats_row(name: str, s: dict[str, Any]) -> list[str]:
    return [name, *(number(s.get(k)) for k in _STATS)]


def _verdict(v: dict[str, Any] | None, text: str) -> Verdict | None:
    if not v:
        return None
    return Verdict(v.get("verdict") or "-", text, list(v.get("reasons") or []))


def run_section(d: Document) -> Section:
    doc = d.doc
    lat = doc["latency_ms"]
    fps = f"{number(doc['fps'])} FPS" if doc.get("fps") else "FPS n/a"
    head = (
        f"{doc['frames']} frames (+{doc['warmup_frames']} warm-up) in {number(doc['duration_s'])} s: {fps}; "
        f"e2e p50 {number(lat['e2e']['p50'])} ms, p99 {number(lat['e2e']['p99'])} ms"
    )
    proc = doc.get("process") or {}
    facts = _ran_on(doc) + [
        ("source", _source(doc.get("source"))),
        ("mode, pacing", f"{doc.get('mode', '-')}, {doc.get('pacing', '-')}"),
        ("init (ms): load + allocate + delegate", number(doc.get("init_ms"))),
        ("first inference (ms)", number(doc.get("first_inference_ms"))),
        ("agent CPU (% of one core)", number(proc.get("cpu_pct"))),
        ("peak memory (MB)", number(proc.get("peak_rss_mb"))),
        *_probes_facts(doc),
    ]
    if doc.get("accuracy"):
        a = doc["accuracy"]
        facts.append(("accuracy top-1 / top-5", f"{a['top1']:.1%} / {a['top5']:.1%} of {a['images']} images"))
    samples, why = per_frame(d)
    blocks: list[Any] = [
        _verdict({**(doc.get("validity") or {"verdict": "-"})}, head),
        Facts(facts),
        Table(
            ["stage (ms)", *(words.STAT_NAMES[k] for k in _STATS)],
            [_stats_row(s, lat[s]) for s in lat],
            caption="latency per stage, milliseconds, over the measured frames",
        ),
        Notes("", [f"{s}: {t}" for s, t in (doc.get("latency_scope") or {}).items()]),
        Charts(lambda: _run_charts(doc, samples), "latency distribution and, with the per-frame CSV, over time"),
        Notes("per-frame samples", [why]),
        Notes("warning", list(doc.get("warnings") or [])),
        Notes("note", list(doc.get("notes") or [])),
    ]
    return Section(_title(d, "Run"), [b for b in blocks if b is not None])


def _source(src: Any) -> str:
    if isinstance(src, dict):
        return " ".join(dict.fromkeys(str(x) for x in (src.get("kind"), src.get("uri")) if x))
    return str(src or "-")


def _run_charts(doc: dict[str, Any], samples: dict[str, Any] | None) -> list[tuple[str, Any]]:
    from edgebench.agent.report import plots

    if samples is not None:
        return plots.run_figures(doc, samples, None)
    return plots.histogram_figures(doc)


def sweep_section(d: Document) -> Section:
    doc = d.doc
    g = doc["grid"]
    c = doc["counts"]
    best = (doc.get("best") or {}).get("throughput")
    invalid = sum(1 for p in doc["points"] if p["status"] == "ok" and p.get("verdict") != "VALID")
    ran = f"{c['ok']} ran" + (f" ({invalid} INVALID: too few batches or too short)" if invalid else "")
    head = f"{len(doc['points'])} points: {ran}, {c['unsupported']} unsupported, {c['failed']} failed" + (
        f"; best {number(best['throughput_items_per_s'])} items/s at batch {best['batch']}, "
        f"{best['threads']} threads, {best['instances']} instances"
        if best
        else ""
    )
    facts = [f for f in _ran_on(doc) if f[0] != "threads"] + [  # the grid says the threads
        ("grid", f"batch {g['batch']} x threads {g['threads']} x instances {g['instances']}"),
        ("instances as", g["instance_mode"]),
    ]
    head_row = ["batch", "threads", "instances", "status", "items/s", "p50 (ms)", "p99 (ms)", "ms per item"]
    head_row += ["CPU %", "mJ per item"]
    rows = []
    for p in doc["points"]:
        lat, per, pw = p.get("latency_ms") or {}, p.get("latency_per_item_ms") or {}, p.get("power") or {}
        status = (p.get("verdict") or "ok") if p["status"] == "ok" else f"{p['status']}: {p.get('reason', '')}"
        rows.append(
            [
                *(str(p[k]) for k in ("batch", "threads", "instances")),
                status,
                number(p.get("throughput_items_per_s")),
                number(lat.get("p50")),
                number(lat.get("p99")),
                number(per.get("p50")),
                number(p.get("cpu_pct")),
                number(pw.get("energy_per_item_mj")),
            ]
        )
    from edgebench.agent.report import plots

    blocks = [
        Verdict("VALID" if c["ok"] and not invalid else "INVALID", head),
        Facts(facts),
        Table(head_row, rows, caption="every grid point; latency per batch (ms)", left=0),
        Charts(lambda: plots.sweep_figures(doc), "latency and throughput against batch size, the frontier"),
        Notes("note", list(doc.get("notes") or [])),
    ]
    return Section(_title(d, "Sweep"), blocks)


def scenario_section(d: Document) -> Section:
    doc = d.doc
    bound = doc.get("latency_bound_ms")
    facts = _ran_on(doc) + [("scenario", words.SCENARIO_NAMES.get(doc["scenario"], doc["scenario"]))]
    facts += words.scenario_facts(doc)
    facts += [(f"setting: {k}", v) for k, v in words.settings_facts(doc.get("settings"))]
    blocks: list[Any] = [
        Verdict(doc["verdict"], words.headline(doc["headline"], bound), list(doc["reasons"])),
        Facts(facts),
    ]
    stats = [(words.LATENCY_BLOCKS[k], doc[k]) for k in words.LATENCY_BLOCKS if isinstance(doc.get(k), dict)]
    if stats:
        blocks.append(
            Table(
                ["per query (ms)", *(words.STAT_NAMES[k] for k in _STATS)],
                [_stats_row(n, s) for n, s in stats],
                caption=doc.get("latency_scope", ""),
            )
        )
    if isinstance(doc.get("steps"), list):
        blocks.append(_steps_table(doc["steps"]))
    from edgebench.agent.report import plots

    blocks += [
        Charts(lambda: plots.scenario_figures(doc), "latency distribution or the max-rate search"),
        Notes("warning", list(doc.get("warnings") or [])),
        Notes("note", list(doc.get("notes") or [])),
    ]
    return Section(_title(d, "Scenario"), blocks)


def _steps_table(steps: list[dict[str, Any]]) -> Table:
    rows = [
        [
            str(i),
            str(st.get("phase") or "-"),
            number(st.get("target_qps")),
            number(st.get("p99_latency_ms")),
            number(st.get("completed_qps")),
            "pass" if st.get("passed") else "fail",
        ]
        for i, st in enumerate(steps, 1)
    ]
    head = ["step", "phase", "offered (queries/s)", "p99 (ms)", "completed (queries/s)", "within bound"]
    return Table(head, rows, caption="the search's steps, in order", left=2)


SECTIONS = {"run": run_section, "sweep": sweep_section, "scenario": scenario_section}


def side_by_side(docs: list[Document]) -> Section | None:
    """Two or more per-frame runs in one table: what ran where, and its figures."""
    runs = [d for d in docs if d.kind == "run"]
    if len(runs) < 2:
        return None
    head = ["file", "device", "board", "runtime", "accelerator", "threads", "frames", "FPS"]
    head += ["inference p50 (ms)", "p99", "e2e p50 (ms)", "p99", "mJ per inference", "verdict"]
    rows = []
    for d in runs:
        doc = d.doc
        lat, rt, board = doc["latency_ms"], doc.get("runtime") or {}, doc.get("board") or {}
        e = ((doc.get("power") or {}).get("energy_per_inference_mj") or {}).get("gross")
        rows.append(
            [
                d.name,
                doc["device_id"],
                str(board.get("model") or board.get("soc") or "-"),
                words.runtime(rt),
                words.accelerator(rt),
                words.threads(rt.get("num_threads")),
                str(doc["frames"]),
                number(doc.get("fps")),
                *(number(lat[s][k]) for s in ("inference", "e2e") for k in ("p50", "p99")),
                number(e),
                (doc.get("validity") or {}).get("verdict", "-"),
            ]
        )
    note = "for a verdict on a change (beyond noise or not): edgebench compare BASELINE.json RUN.json"
    return Section("Runs side by side", [Table(head, rows, left=6), Notes("compare", [note])])


def sections(docs: list[Document]) -> list[Section]:
    out = [SECTIONS[d.kind](d) for d in docs]
    both = side_by_side(docs)
    return ([both] if both else []) + out
