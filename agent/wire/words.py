"""The documents' fields in words, for people: what the agent's report and the collector's
pages print instead of a JSON key (``target rate (queries/s)``, not ``target_qps``;
``CPU, XNNPACK``, not ``XNNPACK True``).

Shared by both sides (the collector may import the wire contract and nothing else of the
agent), so a field reads the same in a local report and on the dashboard. Pure Python.
"""

from __future__ import annotations

from typing import Any

#: a scenario document's figures: field -> (words, unit or None), in the order they are shown
SCENARIO_FIELDS: dict[str, tuple[str, str | None]] = {
    "target_qps": ("target rate", "queries/s"),
    "scheduled_qps": ("rate actually scheduled", "queries/s"),
    "completed_qps": ("completed rate", "queries/s"),
    "qps": ("rate", "queries/s"),
    "samples_per_s": ("throughput", "samples/s"),
    "batch": ("batch size", "samples per invoke"),
    "queries_scheduled": ("queries scheduled", None),
    "queries": ("queries measured", None),
    "samples": ("samples measured", None),
    "queries_waiting": ("queries still waiting when the run stopped (not in the latency)", None),
    "queries_not_due": ("queries not yet due when the run stopped", None),
    "overlatency_queries": ("queries over the latency bound", None),
    "waiting_over_bound": ("waiting queries already over the bound", None),
    # documents of earlier agents (their waiting queries were counted into the latency)
    "queries_unserved": ("queries not served when the run stopped", None),
    "queries_not_arrived": ("queries scheduled after the run stopped", None),
    "duration_s": ("measured for", "s"),
    "latency_bound_ms": ("latency bound (99th percentile)", "ms"),
    "max_qps": ("highest rate within the bound", "queries/s"),
    "warmup_batches": ("warm-up batches (not measured)", None),
}

#: a scenario's settings: key -> words
SETTING_WORDS: dict[str, str] = {
    "duration_s": "run for (s)",
    "min_duration_s": "at least (s)",
    "max_duration_s": "at most (s)",
    "min_queries": "at least (queries)",
    "queries": "queries asked",
    "target_qps": "target rate (queries/s)",
    "arrivals": "arrivals",
    "seed": "random seed",
    "latency_bound_ms": "latency bound (ms)",
    "samples_per_query": "samples per query",
}

SCENARIO_NAMES: dict[str, str] = {
    "single-stream": "single stream: one query of one sample at a time",
    "multi-stream": "multi stream: queries of several samples, one at a time",
    "server": "server: single-sample queries arriving at random (Poisson) at a target rate",
    "offline": "offline: every sample at once, as fast as the board goes",
    "find-max-qps": "max-rate search: the highest server rate whose 99th percentile stays within the bound",
}

#: latency statistic keys -> their names in a table heading
STAT_NAMES: dict[str, str] = {
    "mean": "mean",
    "std": "std dev",
    "min": "min",
    "p50": "p50",
    "p90": "p90",
    "p95": "p95",
    "p99": "p99",
    "p999": "p99.9",
    "max": "max",
}

#: latency blocks of a scenario document -> words
LATENCY_BLOCKS: dict[str, str] = {
    "latency_ms": "latency (arrival to completion)",
    "query_latency_ms": "query latency (its slowest sample)",
    "queue_ms": "waiting (arrival to start)",
    "service_ms": "service (start to completion)",
    "waiting_ms": "still waiting at the stop (arrival to the stop; not in the latency)",
}


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """A nested document as dotted keys (``runtime.num_threads``): what two documents'
    differences are listed by."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def number(v: Any) -> str:
    """A figure as people read it: 4 significant digits, thousands without an exponent."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 1000 else f"{v:.4g}"
    return str(v)


def scenario_facts(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(words with unit, value) of every figure the scenario document has, in a fixed order."""
    out = []
    for key, (words, unit) in SCENARIO_FIELDS.items():
        if doc.get(key) is not None:
            out.append((f"{words} ({unit})" if unit else words, number(doc[key])))
    return out


def settings_facts(settings: dict[str, Any] | None) -> list[tuple[str, str]]:
    return [
        (SETTING_WORDS.get(k, k.replace("_", " ")), number(v)) for k, v in (settings or {}).items() if v is not None
    ]


def headline(h: dict[str, Any], bound_ms: float | None = None) -> str:
    """A scenario's headline in a sentence."""
    metric, v = h.get("metric"), h.get("value")
    if metric == "p90_latency_ms":
        return f"90th percentile latency {number(v)} ms"
    if metric == "p99_latency_ms":
        return f"99th percentile latency {number(v)} ms per query"
    if metric == "samples_per_s":
        return f"{number(v)} samples/s"
    if metric == "p99_within_bound":
        where = "within" if v else "over"
        bound = f" the {number(bound_ms)} ms bound" if bound_ms is not None else " the bound"
        return f"99th percentile latency {number(h.get('p99_latency_ms'))} ms: {where}{bound}"
    if metric == "max_qps":
        bound = f"{number(bound_ms)} ms" if bound_ms is not None else "the bound"
        if v is None:
            return f"no rate keeps the 99th percentile within {bound}"
        return f"at most {number(v)} queries/s with the 99th percentile within {bound}"
    return f"{metric}: {number(v)} {h.get('unit') or ''}".strip()


def threads(n: Any) -> str:
    return "runtime default" if n is None else str(n)


def accelerator(runtime: dict[str, Any] | None) -> str:
    """Where the model ran: ``delegate edgetpu``, ``CPU, XNNPACK``, ``CPU, reference kernels``."""
    rt = runtime or {}
    if isinstance(rt.get("accelerator"), str) and rt["accelerator"]:
        return rt["accelerator"]
    if rt.get("delegate"):
        d = rt["delegate"]
        name = (d.get("name") or str(d.get("library") or "?").rsplit("/", 1)[-1]) if isinstance(d, dict) else d
        return f"delegate {name}"
    if (rt.get("delegate_fallback") or {}).get("requested"):
        return "CPU (the delegate did not load)"
    if rt.get("xnnpack") is False and rt.get("xnnpack_requested"):
        return "CPU, built-in kernels (XNNPACK asked for, applied to no operator)"
    if rt.get("xnnpack") is False:
        return "CPU, reference kernels (XNNPACK off)"
    if rt.get("xnnpack"):
        return "CPU, XNNPACK"
    return "CPU"


def runtime(rt: dict[str, Any] | None) -> str:
    rt = rt or {}
    return f"{rt.get('name') or '-'} {rt.get('version') or ''}".strip()
