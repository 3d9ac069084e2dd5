"""How much does the agent cost beside a bare `interpreter.invoke()` loop?

    python tests/benchmarks/bench_agent_overhead.py [--model M.tflite] [--threads N] [--frames N] [--rounds R]

In one process, on the same model and thread count, alternating rounds (so
machine noise hits every configuration alike), it measures:

  bare        a loop of interpreter.invoke() on a fixed input (what benchmark_model times)
  sequential  `edgebench run` on a synthetic source (capture, preprocess, invoke, postprocess)
  pipelined   `edgebench run --pipelined` on a video file (decode+preprocess overlapping invoke)

and prints the ratios the project holds itself to:

  sequential FPS / bare FPS                  >= 0.97
  sequential inference p50 / bare p50        within 3 %
  pipelined FPS (video) / bare FPS           >= 0.95

The overhead is per frame, so it only makes sense against a model of realistic
size: the default is the largest bundled model (or the refdata MobileNet V2 when
../shared/refdata is present). On a tiny model the ratios measure OpenCV, not the
agent.
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

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent import runtime as rtmod  # noqa: E402
from agent.runner import RunOptions, run  # noqa: E402


def default_model() -> Path:
    ref = ROOT.parent / "shared" / "refdata" / "mobilenet_v2_1.0_224_quant.tflite"
    if ref.exists():
        return ref
    models = sorted((ROOT / "models").glob("*.tflite"), key=lambda p: p.stat().st_size)
    return models[-1]


def bare_loop(model: str, threads: int | None, frames: int, warmup: int) -> tuple[float, float]:
    rt = rtmod.load(model, num_threads=threads)
    inp = rt.inputs[0]
    x = np.zeros(inp.shape, dtype=np.dtype(inp.dtype))
    rt.set_input(x)
    invoke = rt.interpreter.invoke
    for _ in range(warmup):
        invoke()
    times = np.empty(frames, np.int64)
    clock = time.perf_counter_ns
    t_start = clock()
    for i in range(frames):
        t0 = clock()
        invoke()
        times[i] = clock() - t0
    total = clock() - t_start
    return frames / (total / 1e9), float(np.median(times)) / 1e6


def make_video(path: str, size: tuple[int, int], frames: int) -> str:
    import cv2

    w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    rng = np.random.default_rng(0)
    for _ in range(frames):
        w.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    w.release()
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    model = str(args.model or default_model())
    rt = rtmod.load(model, num_threads=args.threads)
    h, w = rt.inputs[0].shape[1:3]
    tmp = tempfile.mkdtemp(prefix="edgebench-bench-")
    video = make_video(os.path.join(tmp, "clip.avi"), (w, h), args.frames + args.warmup + 10)
    print(f"model {os.path.basename(model)} ({rt.inputs[0].dtype} {rt.inputs[0].shape}), {rt.name} {rt.version}, "
          f"threads {args.threads}, {args.frames} frames x {args.rounds} rounds")

    res: dict[str, list] = {"bare": [], "seq": [], "pipe": []}
    for r in range(args.rounds):
        res["bare"].append(bare_loop(model, args.threads, args.frames, args.warmup))
        out = run(RunOptions(model=model, source="synthetic", frames=args.frames, warmup=args.warmup, threads=args.threads)).result
        res["seq"].append((out["fps"], out["latency_ms"]["inference"]["p50"]))
        out = run(RunOptions(model=model, source=video, frames=args.frames, warmup=args.warmup, threads=args.threads, pipelined=True)).result
        res["pipe"].append((out["fps"], out["latency_ms"]["inference"]["p50"]))
        print(f"round {r + 1}: bare {res['bare'][-1][0]:.1f} FPS p50 {res['bare'][-1][1]:.3f} ms | "
              f"sequential {res['seq'][-1][0]:.1f} FPS p50 {res['seq'][-1][1]:.3f} ms | "
              f"pipelined(video) {res['pipe'][-1][0]:.1f} FPS p50 {res['pipe'][-1][1]:.3f} ms")

    def med(key, i):
        return statistics.median(v[i] for v in res[key])

    seq_ratio = med("seq", 0) / med("bare", 0)
    p50_ratio = med("seq", 1) / med("bare", 1)
    pipe_ratio = med("pipe", 0) / med("bare", 0)
    print()
    print(f"sequential FPS / bare FPS            = {seq_ratio:.3f}   (target >= 0.97)  {'ok' if seq_ratio >= 0.97 else 'MISSED'}")
    print(f"sequential p50 / bare p50 (invoke)   = {p50_ratio:.3f}   (target within 3%) {'ok' if abs(p50_ratio - 1) <= 0.03 else 'MISSED'}")
    print(f"pipelined FPS (video) / bare FPS     = {pipe_ratio:.3f}   (target >= 0.95)  {'ok' if pipe_ratio >= 0.95 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
