"""edgebench against LiteRT's own `litert-benchmark`, side by side in one run.

    python -m tests.benchmarks.bench_litert [--model M.tflite] [--threads N] [--runs N] [--rounds R]

In interleaved rounds (so machine noise hits every tool alike), on the same model, thread
count and number of runs, each a fresh process as a user would start it:

  litert-benchmark   the console script of the ai-edge-litert wheel (CompiledModel, CPU,
                     random inputs, run_by_name timed with perf_counter): its median_ms
  compiled_model     `edgebench run --accelerator cpu` (CompiledModel, synthetic source):
                     its inference p50
  interpreter        `edgebench run` (the classic Interpreter with XNNPACK): its inference p50

and prints, per round and as the median over rounds, each edgebench p50 as a ratio of
litert-benchmark's median, with the load average (os.getloadavg) beside every figure. Then
the per-operator times (`edgebench models ops --times`): their sum against the whole
invoke measured in the same call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.paths import REFDATA, ROOT

BIN = Path(sys.executable).parent


def default_model() -> Path:
    ref = REFDATA / "mobilenet_v2_1.0_224_quant.tflite"
    return ref if ref.exists() else ROOT / "models" / "mobilenet_v2_0.35_224_int8_untrained.tflite"


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def litert(model: Path, threads: int, runs: int, tmp: str) -> float:
    out = os.path.join(tmp, "litert.json")
    cmd = [str(BIN / "litert-benchmark"), "--model", str(model), "--num_threads", str(threads)]
    cmd += ["--num_runs", str(runs), "--warmup_runs", "5", "--result_json", out]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    with open(out) as f:
        return float(json.load(f)["latency"]["median_ms"])


def edgebench(model: Path, threads: int, runs: int, tmp: str, *extra: str) -> float:
    out = os.path.join(tmp, "edgebench.json")
    cmd = [sys.executable, "-m", "edgebench.agent.cli", "run", "--model", str(model), "--threads", str(threads)]
    cmd += ["--frames", str(runs), "--warmup", "5", "--no-probes", "-q", "--json", out, *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    if p.returncode != 0:
        raise SystemExit(f"edgebench run failed: {p.stderr.strip()}")
    with open(out) as f:
        return float(json.load(f)["latency_ms"]["inference"]["p50"])


def op_sum(model: Path) -> dict:
    cmd = [sys.executable, "-m", "edgebench.agent.cli", "models", "ops", str(model), "--times", "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT, check=True)
    return json.loads(p.stdout)["times"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=default_model())
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    print(f"model {a.model.name}, {a.threads} thread(s), {a.runs} runs, {a.rounds} rounds")
    ratios: dict[str, list[float]] = {"compiled_model": [], "interpreter": []}
    with tempfile.TemporaryDirectory(prefix="bench-litert-") as tmp:
        for r in range(a.rounds):
            ref = litert(a.model, a.threads, a.runs, tmp)
            print(f"round {r + 1}: litert-benchmark median {ref:.3f} ms  ({load()})")
            for name, extra in (("compiled_model", ("--accelerator", "cpu")), ("interpreter", ())):
                p50 = edgebench(a.model, a.threads, a.runs, tmp, *extra)
                ratios[name].append(p50 / ref)
                print(f"round {r + 1}: edgebench {name:<14} p50 {p50:.3f} ms = {p50 / ref:.3f}x  ({load()})")
    for name, rs in ratios.items():
        print(
            f"median over rounds: edgebench {name} p50 / litert-benchmark median = {statistics.median(rs):.3f}x  ({load()})"
        )
    t = op_sum(a.model)
    print(
        f"per-operator times ({t['method']}): sum {t['sum_ms']:.3f} ms / whole invoke {t['whole_invoke_ms']:.3f} ms "
        f"= {t['sum_vs_whole']:.3f}x  ({load()})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
