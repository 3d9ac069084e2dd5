"""Latency of every bundled model with the agent's own pipeline (prints figures, asserts nothing).

    python -m tests.benchmarks.bench_models [--frames 300] [--threads 1]

Runs `edgebench run`'s code path (synthetic 640x480 source, so capture costs nothing)
on each bundled model and prints inference and end-to-end latency in milliseconds.
On a shared machine the figures are noisy: compare models within one run.
"""

from __future__ import annotations

import argparse
import sys

from edgebench import models
from edgebench.agent.measure.run import RunOptions, run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    print(f"{'model':<40}{'size MB':>9}{'weights':>14}{'infer p50 ms':>14}{'infer p90 ms':>14}{'e2e p50 ms':>12}")
    for e in models.load_registry():
        if "file" not in e:
            continue
        res = run(
            RunOptions(model=str(models.local_path(e)), frames=args.frames, warmup=args.warmup, threads=args.threads)
        ).result
        inf, e2e = res["latency_ms"]["inference"], res["latency_ms"]["e2e"]
        status = "trained" if e.get("trained") else "latency only"
        print(
            f"{e['name']:<40}{e['size_bytes'] / 1e6:>9.2f}{status:>14}{inf['p50']:>14.3f}{inf['p90']:>14.3f}"
            f"{e2e['p50']:>12.3f}"
        )
    print(
        f"runtime {res['runtime']['name']} {res['runtime']['version']}, threads {args.threads}, "
        f"{args.frames} frames each after {args.warmup} warmup"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
