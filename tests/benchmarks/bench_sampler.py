"""What the background probe sampler costs, measured within one run.

Prints:

* the sampler's own CPU cost (CPU seconds per second of run) at 10 Hz, on a fake
  Jetson Orin NX tree (INA3221 rails, thermal zones, OC counters, 6 cpufreq cores:
  the same file reads a real board does), on this machine's own tree, and with a
  ``cmd:`` meter (one fork per sample);
* the ratio of median ``invoke()`` latency with the sampler running to without,
  from interleaved blocks in the same process (so machine noise hits both).

    python -m tests.benchmarks.bench_sampler [--model M.tflite] [--seconds S] [--hz 10]

The target: sampler CPU well under 1% of a core at 10 Hz on sysfs sources, and a
latency ratio indistinguishable from 1 (within the run-to-run noise).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgebench.agent.probes._fs import SysFS
from edgebench.agent.probes.discover import discover_power
from edgebench.agent.probes.sampler import Sampler
from edgebench.agent.probes.system import SystemProbe
from edgebench.agent.probes.thermal import ThermalProbe
from edgebench.agent.runtime import interpreter as rtmod
from tests.support.paths import ROOT
from tests.support.probes_fakes import JETSON_OC, JETSON_THERMAL, JTOP_CPUS, ORIN_NX_INA, FakeRunner, write_tree

DEFAULT_MODEL = ROOT / "models" / "shapes_int8.tflite"
REF_MODEL = (
    Path(os.environ.get("EDGEBENCH_REFDATA", ROOT.parent / "shared" / "refdata")) / "mobilenet_v2_1.0_224_quant.tflite"
)


def make_sampler(root: Path | str, hz: float, power: str = "auto") -> Sampler:
    fs = SysFS(root)
    runner = FakeRunner({})
    src = discover_power(power, fs, runner).source
    return Sampler(src, ThermalProbe(fs, runner), SystemProbe(), hz=hz)


def cpu_cost(root: Path | str, hz: float, seconds: float, power: str = "auto") -> tuple[float, int, float]:
    """(sampler CPU s per s, samples, CPU s of its child processes per s) with the process otherwise idle."""
    proc = SystemProbe()
    c0 = proc.children_cpu_s()
    s = make_sampler(root, hz, power).start()
    t0 = time.perf_counter()
    time.sleep(seconds)
    s.stop()
    wall = time.perf_counter() - t0
    return s.cpu_s / wall, len(s.samples), (proc.children_cpu_s() - c0) / wall


def invoke_block(rt, n: int) -> list[int]:
    inv = rt.interpreter.invoke
    clock = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = clock()
        inv()
        out.append(clock() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(REF_MODEL if REF_MODEL.exists() else DEFAULT_MODEL))
    ap.add_argument("--seconds", type=float, default=10.0, help="idle seconds per CPU-cost figure")
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=6, help="interleaved off/on blocks")
    ap.add_argument("--block-s", type=float, default=2.0, help="seconds of invokes per block")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory() as d:
        orin = write_tree(Path(d), {**ORIN_NX_INA, **JETSON_THERMAL, **JETSON_OC, **JTOP_CPUS})
        print(f"sampler CPU cost at {a.hz:g} Hz, {a.seconds:g} s each (CPU seconds per second of run):")
        for label, root, power in (
            ("fake Jetson Orin NX tree (INA3221, 5 zones, OC, 6 cores)", orin, "auto"),
            ("this machine's own tree", "/", "none"),
            ("cmd: meter ('echo 3.2', one fork per sample)", "/", "cmd:echo 3.2"),
        ):
            per_s, n, child = cpu_cost(root, a.hz, a.seconds, power)
            extra = f" + {child:.5f} in its commands" if child else ""
            print(f"  {label:<58} {per_s:.5f} s/s ({100 * per_s:.3f}% of a core){extra}, {n} samples")

        rt = rtmod.load(a.model)
        inp = rt.inputs[0]
        rt.set_input(np.zeros(inp.shape, dtype=np.dtype(inp.dtype)))
        invoke_block(rt, 20)  # warm up
        t = time.perf_counter()
        per = invoke_block(rt, 50)
        n = max(50, int(a.block_s / max((time.perf_counter() - t) / 50, 1e-6)))
        off: list[int] = []
        on: list[int] = []
        cpu_on = wall_on = 0.0
        for _ in range(a.rounds):
            off += invoke_block(rt, n)
            s = make_sampler(orin, a.hz).start()
            t0 = time.perf_counter()
            on += invoke_block(rt, n)
            wall_on += time.perf_counter() - t0
            s.stop()
            cpu_on += s.cpu_s
        m_off, m_on = statistics.median(off) / 1e6, statistics.median(on) / 1e6
        print(
            f"\nmodel {Path(a.model).name}, {a.rounds} interleaved blocks of {n} invokes each way ({len(per)} probe):"
        )
        print(f"  median invoke without sampler  {m_off:.4f} ms")
        print(f"  median invoke with sampler     {m_on:.4f} ms  ({a.hz:g} Hz, fake Orin NX tree)")
        print(f"  ratio with/without             {m_on / m_off:.4f}")
        p90_off, p90_on = np.percentile(off, 90) / 1e6, np.percentile(on, 90) / 1e6
        print(f"  p90 ratio with/without         {p90_on / p90_off:.4f}")
        print(f"  sampler CPU during the runs    {cpu_on / wall_on:.5f} s/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
