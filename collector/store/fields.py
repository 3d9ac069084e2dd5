"""What a document fills in the ``runs`` table: the columns pulled out of a run's meta, a
per-frame run's summary (``edgebench.result/1``), a sweep (``edgebench.sweep/1``), a
scenario result (``edgebench.scenario/1``) or a tune search (``edgebench.tune/1``).

Pure functions from a document to column values, no SQL: the writers (rows.py) store what
these return. Absent sections leave NULLs, never made-up zeros.
"""

from __future__ import annotations

from typing import Any

from edgebench.agent.wire.protocol import RESULT_SCHEMA, SCENARIO_SCHEMA, SWEEP_SCHEMA, TUNE_SCHEMA

#: ``runs.kind`` for each document a summary can carry.
KIND_OF_SCHEMA = {RESULT_SCHEMA: "run", SWEEP_SCHEMA: "sweep", SCENARIO_SCHEMA: "scenario", TUNE_SCHEMA: "tune"}


def num(v: Any) -> float | None:
    """A JSON number as a float; anything else (a boolean too) as None."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _text(v: Any, limit: int) -> str | None:
    return str(v)[:limit] if v else None


def _section(doc: dict[str, Any], name: str) -> dict[str, Any]:
    v = doc.get(name)
    return v if isinstance(v, dict) else {}


def delegate_text(runtime: dict[str, Any]) -> str | None:
    """The ``runs.delegate`` column: the delegate that ran, as one short name (a result's
    ``delegate`` is ``{"library", "options"}``, older agents sent a string: the library's
    file name), or, when ``--cpu-fallback`` fell back to the CPU, that it did (so such runs
    are never mistaken for the delegate's, nor for plain CPU runs); a LiteRT CompiledModel run
    (``runtime.api``) is ``CompiledModel NPU,CPU``: the accelerators it used."""
    if runtime.get("api") == "compiled_model":  # LiteRT CompiledModel (--accelerator): what it used
        used = runtime.get("accelerators_used") or ["?"]
        fb = runtime.get("accelerator_fallback")
        if isinstance(fb, dict):
            return _text(f"CPU fallback from {fb.get('requested') or 'the accelerator'}", 256)
        return _text(f"CompiledModel {','.join(str(a).upper() for a in used)}", 128)
    d = runtime.get("delegate")
    if isinstance(d, dict):
        d = d.get("name") or d.get("library")
    if d:
        return _text(str(d).rsplit("/", 1)[-1], 128)
    fb = runtime.get("delegate_fallback")
    if isinstance(fb, dict):
        return _text(f"CPU fallback from {fb.get('requested') or 'the delegate'}", 256)
    return None


def run_fields(result: dict[str, Any]) -> dict[str, Any]:
    """The columns a summary (an ``edgebench.result/1`` document) fills in ``runs``.

    The power/thermal/throttling/board sections (issue 5) and the scenario and sweep
    (issue 4) are optional: absent sections leave NULLs, never made-up zeros.
    """
    model = result.get("model") or {}
    runtime = result.get("runtime") or {}
    source = result.get("source")
    config = _section(result, "config")
    out: dict[str, Any] = {
        "model_name": model.get("name") or str(model.get("path", "")).rsplit("/", 1)[-1] or None,
        "model_sha256": model.get("sha256"),
        "runtime": runtime.get("name"),
        "runtime_version": runtime.get("version"),
        "delegate": delegate_text(runtime),
        "num_threads": runtime.get("num_threads") if isinstance(runtime.get("num_threads"), int) else None,
        "source_kind": source.get("kind") if isinstance(source, dict) else (str(source) if source else None),
    }
    scen = result.get("scenario", config.get("scenario"))
    if isinstance(scen, dict):
        scen = scen.get("name") or scen.get("scenario")
    out["scenario"] = _text(scen, 64)
    board = result.get("board")
    if isinstance(board, dict):
        board = board.get("model") or board.get("name")
    out["board"] = _text(board, 128)
    return out


def summary_fields(result: dict[str, Any]) -> dict[str, Any]:
    """The ``runs`` columns a summary's ``result`` fills: a per-frame run's figures, or a
    sweep's or scenario's (document_fields)."""
    if result.get("schema") in (SWEEP_SCHEMA, SCENARIO_SCHEMA, TUNE_SCHEMA):
        return document_fields(result)
    out = run_fields(result)
    out.update(
        kind="run",
        frames=result.get("frames"),
        duration_s=num(result.get("duration_s")),
        fps=num(result.get("fps")),
        started_at=_text(result.get("started_at"), 40),
    )
    validity = result.get("validity")
    if isinstance(validity, dict) and validity.get("verdict") in ("VALID", "INVALID"):
        out["verdict"] = validity["verdict"]
    out.update(_energy_fields(_section(result, "power")))
    throttled = throttled_of(result.get("throttling"))
    out["throttled"] = None if throttled is None else int(throttled)
    out["temp_max_c"] = temp_max_of(_section(result, "thermal"))
    out["has_sweep"] = 0
    return out


def _energy_fields(power: dict[str, Any]) -> dict[str, Any]:
    """Energy per inference (gross and net, or one figure taken as gross), mean power, its source."""
    epi = power.get("energy_per_inference_mj")
    if isinstance(epi, dict):
        gross, net = num(epi.get("gross")), num(epi.get("net"))
    else:
        gross, net = num(epi), None
    return {
        "energy_mj_gross": gross,
        "energy_mj_net": net,
        "power_mean_w": num(power.get("mean_w")),
        "power_source": _text(power.get("source"), 64),
    }


def throttled_of(thr: Any) -> bool | None:
    """Whether a run throttled: a boolean, a ``throttled`` flag, any of ``flags``, or any
    true value of the section; None when the run has no throttling data."""
    if isinstance(thr, bool):
        return thr
    if not isinstance(thr, dict):
        return None
    if isinstance(thr.get("throttled"), bool):
        return thr["throttled"]
    if "flags" in thr:
        f = thr["flags"]
        return bool(any(f.values()) if isinstance(f, dict) else f)
    return any(v is True for v in thr.values())


def temp_max_of(thermal: dict[str, Any]) -> float | None:
    """The highest temperature (°C) a thermal section reports: max_c/peak_c, else any *_c."""
    temps = [t for t in (num(thermal.get(k)) for k in ("max_c", "peak_c")) if t is not None]
    if not temps:
        temps = [v for k, v in thermal.items() if k.endswith("_c") and num(v) is not None]
    return max(temps) if temps else None


def document_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``runs`` columns of a sweep (edgebench.sweep/1) or a scenario result
    (edgebench.scenario/1). No frames, no FPS: those columns stay NULL, so the per-frame
    report never mixes them in. The headline is the document's own figure:

    * sweep: the best throughput (``best.throughput``, VALID points first), items/s;
    * single-stream / multi-stream: p90 / p99 query latency, ms; offline: samples/s;
    * server: its p99 latency (ms), with ``within_bound`` the headline's yes/no;
    * find-max-qps: the highest rate whose p99 held the bound, queries/s.
    """
    out = run_fields(doc)
    out.update(
        kind=KIND_OF_SCHEMA[doc["schema"]],
        started_at=_text(doc.get("started_at"), 40),
        frames=None,
        fps=None,
        energy_mj_gross=None,
        energy_mj_net=None,
    )
    fill = {SWEEP_SCHEMA: _sweep_fields, TUNE_SCHEMA: _tune_fields}.get(doc["schema"], _scenario_fields)
    out.update(fill(doc))
    return out


def _tune_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """A tune search (edgebench.tune/1): its headline is the winner's throughput under the
    bound; ``within_bound`` 0 when no configuration met it (the headline then NULL)."""
    best = doc.get("best") if isinstance(doc.get("best"), dict) else {}
    cfg = best.get("config") if isinstance(best.get("config"), dict) else {}
    return {
        "has_sweep": 0,
        "scenario": None,
        "num_threads": cfg.get("threads") if isinstance(cfg.get("threads"), int) else None,
        "latency_bound_ms": num(doc.get("bound_ms")),
        "headline_metric": "best_throughput_items_per_s",
        "headline_value": num(best.get("throughput_items_per_s")),
        "headline_unit": "items/s",
        "within_bound": int(bool(best)),
    }


def _sweep_fields(doc: dict[str, Any]) -> dict[str, Any]:
    best = (doc.get("best") or {}).get("throughput") or {}
    return {
        "has_sweep": 1,
        "scenario": None,
        "num_threads": None,
        "headline_metric": "best_throughput_items_per_s",
        "headline_value": num(best.get("throughput_items_per_s")),
        "headline_unit": "items/s",
        "verdict": best.get("verdict") if best.get("verdict") in ("VALID", "INVALID") else None,
    }


def _scenario_fields(doc: dict[str, Any]) -> dict[str, Any]:
    h = doc.get("headline") or {}
    bound = doc.get("latency_bound_ms")
    if bound is None and isinstance(doc.get("settings"), dict):
        bound = doc["settings"].get("latency_bound_ms")
    if doc.get("scenario") == "server":
        headline = {
            "headline_metric": "p99_latency_ms",
            "headline_value": num(h.get("p99_latency_ms")),
            "headline_unit": "ms",
        }
    else:
        headline = {
            "headline_metric": _text(h.get("metric"), 64),
            "headline_value": num(h.get("value")),
            "headline_unit": _text(h.get("unit"), 32),
        }
    within = h["value"] if isinstance(h.get("value"), bool) else doc.get("within_bound")
    power = _section(doc, "power")
    return {
        "has_sweep": 0,
        "verdict": doc.get("verdict"),
        "duration_s": num(doc.get("duration_s")),
        "target_qps": num(doc.get("target_qps")),
        "latency_bound_ms": num(bound),
        **headline,
        "within_bound": int(within) if isinstance(within, bool) else None,
        "power_mean_w": num(power.get("mean_w")),
        "power_source": _text(power.get("source"), 64),
    }


def telemetry_fields(b: dict[str, Any]) -> tuple:
    """(cpu_pct, mem_used_pct, max_temp_c, power_w, cpu_mhz, throttled) of a telemetry message:
    the hottest temperature (the probes' ``max_temp_c``, else the highest of ``temps_c``), the
    mean CPU clock over the cores, and throttled 1/0 when the board says (``throttling.now``),
    else None. A reading the device did not have is None, never 0."""
    temps = [v for v in (_section(b, "temps_c")).values() if num(v) is not None]
    hottest = num(b.get("max_temp_c"))
    if hottest is None and temps:
        hottest = float(max(temps))
    clocks = [float(v) for v in _section(b, "cpu_freq_mhz").values() if num(v) is not None]
    thr = b.get("throttling")
    now = thr.get("now") if isinstance(thr, dict) else None
    return (
        num(b.get("cpu_pct")),
        num(b.get("mem_used_pct")),
        hottest,
        num(b.get("power_w")),
        round(sum(clocks) / len(clocks), 1) if clocks else None,
        None if not isinstance(now, list) else int(bool(now)),
    )
