"""A scenario result's page, from its stored edgebench.scenario/1 document: the verdict
with its reasons and headline, its figures, latency (and queue and service time) statistics,
the latency distribution with the percentile and the bound marked, and for a max-QPS search
its steps (p99 against offered load, and a table)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from edgebench.agent.wire import chartstyle as cs
from edgebench.agent.wire import words
from edgebench.collector.views import charts
from edgebench.collector.views.pages.cells import Table, facts, fmt, marked
from edgebench.collector.views.templating import svg

_STAT_KEYS = ("mean", "p50", "p90", "p99", "p999", "max")


def scenario(d: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """The scenario section's data, in words (edgebench.agent.wire.words, as the agent's own
    report says it): what the scenario is, its headline as a sentence, its figures with units."""
    blocks = [(words.LATENCY_BLOCKS[k], doc[k]) for k in words.LATENCY_BLOCKS if isinstance(doc.get(k), dict)]
    steps = doc.get("steps") if isinstance(doc.get("steps"), list) else None
    return {
        "scenario": words.SCENARIO_NAMES.get(doc["scenario"], doc["scenario"]),
        "verdict": doc["verdict"],
        "headline": words.headline(doc["headline"], d["latency_bound_ms"]),
        "reasons": doc["reasons"],
        "facts": facts("scenario-facts", scenario_facts(doc)),
        "latency": Table(
            "scenario-latency",
            ["per query (ms)", *(words.STAT_NAMES[k] for k in _STAT_KEYS)],
            [[n, *(fmt(b.get(k), ".4f") for k in _STAT_KEYS)] for n, b in blocks],
            left=1,
        )
        if blocks
        else None,
        "latency_scope": doc.get("latency_scope", ""),
        "histogram": latency_histogram(doc, d["latency_bound_ms"]),
        "steps_chart": steps_chart(doc, steps) if steps is not None else None,
        "steps": steps_table(steps) if steps is not None else None,
        "remarks": [
            (label, items)
            for label, items in (("warning", doc.get("warnings") or []), ("note", doc.get("notes") or []))
            if items
        ],
    }


def scenario_facts(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    """The figures the document has and its settings, in words with units; early stopping
    and power."""
    out: list[tuple[str, Any]] = list(words.scenario_facts(doc))
    out += [(f"setting: {k}", v) for k, v in words.settings_facts(doc.get("settings"))]
    es = doc.get("early_stopping")
    if isinstance(es, dict):
        out.append(
            (
                "early stopping (99 % confidence)",
                f"met: p{es.get('percentile', 0):g} at most {words.number(es.get('estimate_ms'))} ms"
                if es.get("met")
                else f"not met: {es.get('queries')} queries, {es.get('queries_needed')} needed",
            )
        )
    pw = doc.get("power") or {}
    if pw.get("available"):
        out.append(("power, mean (W)", words.number(pw.get("mean_w"))))
        out.append(
            (
                "energy per query / per sample (mJ)",
                f"{words.number(pw.get('energy_per_query_mj'))} / {words.number(pw.get('energy_per_sample_mj'))}",
            )
        )
    elif pw:
        out.append(("power", pw.get("reason") or "not measured"))
    return out


def latency_histogram(doc: dict[str, Any], bound: float | None) -> Markup | None:
    """The distribution of query (offline: batch) latency, p50 and p90 (single-stream) or
    p99 marked, and the bound; None when the document has no histogram."""
    hist = doc.get("latency_histogram_ms")
    if not isinstance(hist, dict):
        return None
    scen = doc["scenario"]
    lat = doc.get("latency_ms") or {}
    pct = "p90" if scen == "single-stream" else "p99"
    marks = {"p50": lat.get("p50"), pct: lat.get(pct)}
    where = ""
    if bound:
        marks["bound"] = bound
        edges = hist.get("edges_ms") or []
        if edges and bound > edges[-1]:
            where = f"; the {bound:g} ms bound lies above every query"
    count = f"{doc.get('queries', '-')} queries" if scen != "offline" else f"{doc.get('samples', '-')} samples"
    return svg(
        charts.histogram_svg(
            f"{scen} latency distribution ({count}{where})",
            hist.get("counts") or [],
            hist.get("edges_ms") or [],
            "ms",
            marks,
            log_x=True,
            what="batches" if scen == "offline" else "queries",
            xlabel=f"latency per {'batch' if scen == 'offline' else 'query'} (ms)",
        )
    )


def steps_chart(doc: dict[str, Any], steps: list[dict[str, Any]]) -> Markup:
    """A max-QPS search: each step's p99 against its offered load, the bound and the result."""
    bound, max_qps = doc.get("latency_bound_ms"), doc.get("max_qps")
    return svg(
        charts.scatter_chart(
            "Server p99 latency vs offered load (max-QPS search)",
            [
                {
                    "x": st["target_qps"],
                    "y": st.get("p99_latency_ms"),
                    "group": "pass" if st["passed"] else "fail",
                    "label": f"{i + 1}",
                    "hollow": not st["passed"],
                    "note": "; ".join(st.get("reasons") or []),
                }
                for i, st in enumerate(steps)
            ],
            "offered load (queries/s, Poisson)",
            "p99 latency from scheduled arrival (ms)",
            hline=(bound, f"bound {words.number(bound)} ms"),
            vline=(max_qps, f"max {words.number(max_qps)} queries/s") if max_qps else None,
            groups=["pass", "fail"],
            group_colors={"pass": cs.BETTER, "fail": cs.WORSE},
            kind="max-qps",
        )
    )


def steps_table(steps: list[dict[str, Any]]) -> Table:
    return Table(
        "steps",
        ["step", "phase", "offered (queries/s)", "p99 (ms)", "completed (queries/s)", "queries", "verdict", "reasons"],
        [
            [
                str(i + 1),
                fmt(st.get("phase")),
                words.number(st["target_qps"]),
                fmt(st.get("p99_latency_ms"), ".4f"),
                words.number(st.get("completed_qps")),
                fmt(st.get("queries")),
                marked(st["verdict"]),
                "; ".join(st.get("reasons") or []) or "-",
            ]
            for i, st in enumerate(steps)
        ],
        left=0,
    )
