"""Throughput vs batch size, instances and the max server QPS, measured in one run.

    python -m tests.benchmarks.bench_sweep [--refdata ../shared/refdata] [--duration 2]

Prints figures (no assertions): a sweep of a batch-resizable fully-connected model
(built here, 2 x 2048 x 2048 float32), of the bundled shapes classifier and, when
the refdata folder is there, of MobileNet V2 (which hard-codes batch 1), then a
max-QPS search on each at a p99 bound.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from edgebench.agent.measure.run import RunOptions
from edgebench.agent.measure.scenario_run import run_scenario_opts
from edgebench.agent.measure.sweep import SweepOptions, sweep
from tests.support.paths import ROOT
from tests.support.tflite_builder import fc_model


def show_sweep(name: str, opts: SweepOptions) -> None:
    doc = sweep(opts)
    print(f"\n{name}: items/s (p50 ms per batch) by batch x instances, threads {opts.threads}")
    for p in doc["points"]:
        if p["status"] == "ok":
            print(
                f"  batch {p['batch']:>3} threads {p['threads']} instances {p['instances']}: "
                f"{p['throughput_items_per_s']:>10.1f} items/s  p50 {p['latency_ms']['p50']:.3f} ms  "
                f"p99 {p['latency_ms']['p99']:.3f} ms  CPU {p['cpu_pct']}%"
            )
        else:
            print(
                f"  batch {p['batch']:>3} threads {p['threads']} instances {p['instances']}: {p['status']}: {p['reason'][:100]}"
            )


def show_max_qps(name: str, model: str, bound_ms: float, duration: float, source: str = "synthetic") -> None:
    doc = run_scenario_opts(
        RunOptions(
            model=model, find_max_qps=True, latency_bound_ms=bound_ms, duration_s=duration, threads=1, source=source
        )
    )
    steps = ", ".join(f"{s['target_qps']:.0f}{'+' if s['passed'] else '-'}" for s in doc["steps"])
    print(f"\n{name}: max QPS with p99 <= {bound_ms:g} ms: {doc['max_qps']} ({doc['verdict']}; steps {steps})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--refdata", default=str(ROOT.parent / "shared" / "refdata"))
    ap.add_argument("--duration", type=float, default=2.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        fc = Path(d) / "fc2048.tflite"
        fc.write_bytes(fc_model(features=2048, layers=2))
        show_sweep(
            "fc 2x2048 float32 (resizable, weights larger than the caches)",
            SweepOptions(model=str(fc), batch=[1, 2, 4, 8, 16], instances=[1, 2], duration_s=a.duration),
        )
        show_sweep(
            "shapes-int8 (bundled, resizable)",
            SweepOptions(
                model=str(ROOT / "models" / "shapes_int8.tflite"),
                batch=[1, 2, 4, 8, 16],
                instances=[1, 2],
                duration_s=a.duration,
            ),
        )
        show_sweep(
            "mobilenet-v2-0.35-96-int8 (bundled, resizable)",
            SweepOptions(
                model=str(ROOT / "models" / "mobilenet_v2_0.35_96_int8_untrained.tflite"),
                batch=[1, 2, 4, 8],
                instances=[1, 2],
                duration_s=a.duration,
            ),
        )
        mb = Path(a.refdata) / "mobilenet_v2_1.0_224_quant.tflite"
        if mb.exists():
            show_sweep(
                "mobilenet_v2_1.0_224_quant (refdata, batch 1 hard-coded)",
                SweepOptions(model=str(mb), batch=[1, 2], threads=[1, 2], instances=[1, 2], duration_s=a.duration),
            )
        show_max_qps("fc 2x2048 float32", str(fc), 20.0, a.duration)
        if mb.exists():
            show_max_qps("mobilenet_v2_1.0_224_quant", str(mb), 100.0, a.duration)


if __name__ == "__main__":
    main()
