"""Is a run faster or slower than its baseline, beyond noise? The one method every
comparison in edgebench uses (the collector's ``compare`` and run pages, and whatever
compares results on the agent side), defined once here.

Criterion: a 95 % confidence interval for the change, from a circular block bootstrap
(1000 replicates, blocks of sqrt(n) frames) of each run's per-frame samples; the change
is beyond noise when that interval excludes zero. A percentile is judged only when each
run has ``MIN_TAIL_FRAMES`` frames beyond it (p99: 1000 frames). FPS is judged through
1000 / mean(e2e ms) of the resamples. Energy has one value per run, so no noise estimate
exists and none is claimed.

numpy only: the bootstrap is a few lines of array indexing, and scipy's ``bootstrap``
has no block resampling (autocorrelated frames would make its intervals too narrow).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from edgebench.agent.wire.stats import PERCENTILE_METHOD

BOOTSTRAP_REPLICATES = 1000
#: A percentile is judged only when each run has at least this many frames beyond it
#: (p99 needs 1000 frames): the bootstrap of a tail with a handful of points says nothing.
MIN_TAIL_FRAMES = 10
CRITERION = (
    "95% CI of the change from a circular block bootstrap (1000 replicates, blocks of sqrt(n)"
    " frames) of the per-frame samples; beyond noise when the CI excludes 0; percentiles"
    f" judged only with {MIN_TAIL_FRAMES} frames beyond them in each run"
)


def _r(v: Any, nd: int = 4) -> float | None:
    return None if v is None else round(float(v), nd)


def block_bootstrap(x: np.ndarray, stat, B: int = BOOTSTRAP_REPLICATES, seed: int = 7) -> np.ndarray:
    """B replicates of ``stat(sample, axis=1)`` over circular-block resamples of x.

    Blocks of about sqrt(n) consecutive frames keep the autocorrelation of a run (thermal
    drift, caches, background load) inside each resample, so the spread is not
    underestimated as an i.i.d. bootstrap would."""
    return block_bootstrap_many(x, {"stat": stat}, B, seed)["stat"]


def block_bootstrap_many(
    x: np.ndarray, stats: dict[str, Callable], B: int = BOOTSTRAP_REPLICATES, seed: int = 7
) -> dict[str, np.ndarray]:
    """``block_bootstrap`` of several statistics from one pass: each resample is drawn (and
    gathered, the costly part) once for all of them. The same seed gives the same resamples,
    so each statistic's replicates equal ``block_bootstrap(x, stat, B, seed)``'s. A stat may
    return several rows (e.g. two percentiles at once); those replicates come out as rows."""
    n = x.size
    block = max(1, int(round(math.sqrt(n))))
    nb = -(-n // block)
    rng = np.random.default_rng(seed)
    out: dict[str, list[np.ndarray]] = {k: [] for k in stats}
    step = max(1, 4_000_000 // max(1, nb * block))
    # every circular block as a row of a view (no index arithmetic per element)
    blocks = np.lib.stride_tricks.sliding_window_view(np.concatenate([x, x[: block - 1]]), block)
    for i in range(0, B, step):
        b = min(step, B - i)
        starts = rng.integers(0, n, size=(b, nb))
        sample = blocks[starts].reshape(b, nb * block)[:, :n]
        for k, stat in stats.items():
            out[k].append(stat(sample, axis=1))
    return {k: np.concatenate(v, axis=-1) for k, v in out.items()}


def percentile_stat(q: float) -> Callable:
    """``stat(a, axis)`` for the q-th percentile, by the shared percentile method."""
    return lambda a, axis: np.percentile(a, q, axis=axis, method=PERCENTILE_METHOD)


def frames_needed(q: float | None) -> int:
    """Frames each run needs for its noise to be judged: 2 for a mean, ``MIN_TAIL_FRAMES``
    beyond the percentile for a percentile."""
    return 2 if q is None else math.ceil(MIN_TAIL_FRAMES / min(q, 100 - q) * 100)


def judge(
    name: str,
    unit: str,
    stat: Callable | None,
    c_arr: np.ndarray,
    b_arr: np.ndarray,
    c_point: float | None,
    b_point: float | None,
    q: float | None = None,
    replicates: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """One metric of a comparison: both values, the change, and whether it is beyond noise.
    ``replicates``: the run's and the baseline's bootstrap replicates of ``stat`` when the
    caller drew them already (``block_bootstrap_many``)."""
    m: dict[str, Any] = {"metric": name, "unit": unit, "baseline": _r(b_point), "run": _r(c_point)}
    if c_point is not None and b_point is not None:
        m["change"] = _r(c_point - b_point)
        m["change_pct"] = _r(100 * (c_point - b_point) / b_point, 2) if b_point else None
    else:
        m["change"] = m["change_pct"] = None
    need = frames_needed(q)
    if stat is not None and c_arr.size >= need and b_arr.size >= need:
        if replicates is None:
            replicates = (block_bootstrap(c_arr, stat), block_bootstrap(b_arr, stat, seed=11))
        diff = replicates[0] - replicates[1]
        lo, hi = np.percentile(diff, [2.5, 97.5])
        m["ci95"] = [_r(lo), _r(hi)]
        m["beyond_noise"] = bool(lo > 0 or hi < 0)
    else:
        m["ci95"] = None
        m["beyond_noise"] = None
        if stat is None:
            m["note"] = "one value per run: noise unknown"
        elif c_arr.size and b_arr.size:
            m["note"] = f"too few frames to judge noise (need {need} in each run)"
        else:
            m["note"] = "no per-frame samples stored to judge noise"
    return m


def _fps(a: np.ndarray, axis: int) -> np.ndarray:
    return 1000.0 / a.mean(axis=axis)


#: the statistics compare_samples judges, by name (the names key the cache below)
_STATS: dict[str, Callable] = {
    "pct": lambda a, axis: np.percentile(a, [50, 99], axis=axis, method=PERCENTILE_METHOD),
    "fps": _fps,
}
#: replicates of recently judged arrays: a fleet's baseline is judged against every new run
#: of its key, and its replicates (a deterministic function of its samples) are drawn once
_CACHE: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
_CACHE_SIZE = 32
_CACHE_LOCK = threading.Lock()


def _cached_many(x: np.ndarray, names: tuple[str, ...], seed: int) -> dict[str, np.ndarray]:
    key = (
        seed,
        names,
        x.size,
        x.dtype.str,
        hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=16).digest(),
    )
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    got = block_bootstrap_many(x, {k: _STATS[k] for k in names}, seed=seed)
    with _CACHE_LOCK:
        _CACHE[key] = got
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return got


def _replicates(c: np.ndarray, b: np.ndarray, with_fps: bool) -> dict[str, tuple]:
    """The run's and the baseline's replicates of p50 and p99 (rows 0 and 1 of "pct"), and of
    FPS when asked, each array resampled once; only the statistics that will be judged."""
    names = ("pct",) if min(c.size, b.size) >= frames_needed(50) else ()
    if with_fps and min(c.size, b.size) >= frames_needed(None):
        names += ("fps",)
    if not names:
        return {}
    rc, rb = _cached_many(c, names, 7), _cached_many(b, names, 11)
    return {k: (rc[k], rb[k]) for k in names}


def compare_samples(
    cs: dict[str, np.ndarray],
    bs: dict[str, np.ndarray],
    *,
    stage: str = "e2e",
    fps: tuple[float | None, float | None] = (None, None),
    energy_mj: tuple[float | None, float | None] = (None, None),
) -> dict[str, Any]:
    """A run's per-frame samples per stage (``cs``, milliseconds) against a baseline's
    (``bs``): p50/p99 of ``stage`` and of inference, FPS and energy per inference
    (``fps`` and ``energy_mj`` are (run, baseline) pairs)."""
    metrics = []
    reps = {st: _replicates(cs[st], bs[st], st == "e2e") for st in dict.fromkeys([stage, "inference", "e2e"])}
    for st in dict.fromkeys([stage, "inference"]):
        for row, q in enumerate((50, 99)):
            c, b = cs[st], bs[st]
            cp = float(np.percentile(c, q, method=PERCENTILE_METHOD)) if c.size else None
            bp = float(np.percentile(b, q, method=PERCENTILE_METHOD)) if b.size else None
            pct = reps[st].get("pct")
            both = (pct[0][row], pct[1][row]) if pct else None
            metrics.append(judge(f"{st} p{q}", "ms", percentile_stat(q), c, b, cp, bp, q, both))
    metrics.append(judge("fps", "frames/s", _fps, cs["e2e"], bs["e2e"], *fps, replicates=reps["e2e"].get("fps")))
    metrics.append(judge("energy per inference (gross)", "mJ", None, np.empty(0), np.empty(0), *energy_mj))
    return {
        "frames": {"run": int(cs["e2e"].size), "baseline": int(bs["e2e"].size)},
        "criterion": CRITERION,
        "metrics": metrics,
    }
