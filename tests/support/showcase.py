"""A fleet that shows every picture: real documents of the bundled model (a sweep big enough
to need picking its series, every scenario kind and a max-QPS search, two per-frame runs)
next to hand-made devices with runs of several models, runtimes, delegates and threads, and
their telemetry over time. Used by the tests that render every page and picture, and by a
person who wants to look at them::

    python -m tests.support.showcase /tmp/showcase     # a database, the agent's PNGs and HTML

Making the real documents runs the agent for about 15 s on 2 cores.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.agent.wire import protocol
from tests.support.documents import meta_of, summary_of
from tests.support.fleet import as_message, columns, frames, info, meta, result_doc, status, summary
from tests.support.paths import SHAPES_MODEL, run_cli

#: the real documents: (file name, edgebench arguments)
DOCUMENTS = (
    ("sweep.json", ["sweep", "--batch", "1,2,4,8", "--threads", "1,2,3", "--instances", "1,2", "--frames", "20"]),
    ("single-stream.json", ["run", "--scenario", "single-stream", "--duration", "0.5"]),
    (
        "server.json",
        ["run", "--scenario", "server", "--target-qps", "200", "--latency-bound-ms", "5", "--duration", "0.5"],
    ),
    ("offline.json", ["run", "--scenario", "offline", "--duration", "0.5"]),
    (
        "max-qps.json",
        ["run", "--find-max-qps", "--latency-bound-ms", "2", "--max-qps-steps", "4", "--duration", "0.3"],
    ),
)
RUNS = (("run-a", []), ("run-b", ["--threads", "1"]))


def make_documents(folder: Path) -> dict[str, Path]:
    """Run the agent for every document (and two runs with their per-frame CSVs and PNGs)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, args in DOCUMENTS:
        path = folder / name
        p = run_cli(
            *args,
            "--model",
            str(SHAPES_MODEL),
            "--device-id",
            "bench-x86",
            "--json",
            str(path),
            "-q",
            "--plot",
            str(folder / "png"),
            timeout=300,
        )
        assert p.returncode == 0, p.stderr
        out[name] = path
    for name, extra in RUNS:
        path = folder / f"{name}.json"
        p = run_cli(
            "run",
            "--model",
            str(SHAPES_MODEL),
            "--frames",
            "600",
            "--device-id",
            "bench-x86",
            *extra,
            "--json",
            str(path),
            "--csv",
            str(folder / f"{name}.csv"),
            "--plot",
            str(folder / "png" / name),
            "-q",
        )
        assert p.returncode == 0, p.stderr
        out[name] = path
    return out


_BOARDS = {
    "pi5-kitchen": ("Raspberry Pi 5 Model B Rev 1.0", "ai-edge-litert", None, 4, 1.0),
    "jetson-orin-lab": ("NVIDIA Jetson Orin Nano Developer Kit", "tflite-runtime", None, 6, 0.6),
    "imx8-line-3": ("NXP i.MX 8M Plus EVK", "tflite-runtime", "/usr/lib/libvx_delegate.so", 4, 0.3),
}


def _inventory(board: str, cores: int) -> dict[str, Any]:
    return {
        "model": board,
        "soc": board.split()[0],
        "cpu": {"model": "Cortex-A76" if "Pi" in board else "Cortex-A78AE", "arch": "aarch64", "cores": cores},
        "memory_total_mb": 8000.0,
        "os": {"name": "Debian GNU/Linux 12 (bookworm)"},
        "kernel": "6.6.31",
        "python": "3.11.2",
        "accelerators": []
        if "NXP" not in board
        else [{"kind": "npu", "name": "VeriSilicon VIP8000", "device": "/dev/galcore"}],
    }


def telemetry(dev: str, seq: int, ts: float, t: float, throttled: bool) -> dict[str, Any]:
    """One telemetry message of a board warming up under load."""
    temp = 48 + 30 * (1 - np.exp(-t / 300)) + np.sin(t / 17)
    return {
        "schema": protocol.TELEMETRY_SCHEMA,
        "device_id": dev,
        "session": 1,
        "seq": seq,
        "ts": ts,
        "cpu_pct": 60 + 20 * np.sin(t / 40),
        "mem_used_pct": 41.0,
        "load_1m": 2.1,
        "temps_c": {"cpu-thermal": round(temp, 1), "gpu-thermal": round(temp - 4, 1)},
        "max_temp_c": round(temp, 1),
        "max_temp_zone": "cpu-thermal",
        "power_w": round(5.5 + 1.5 * np.sin(t / 25), 3),
        "cpu_freq_mhz": {f"cpu{c}": 1500.0 if throttled else 2400.0 for c in range(4)},
        "throttling": {"now": ["soft_temp_limit"] if throttled else [], "since_boot": []},
    }


def _device_messages(dev: str, k: int, now: float, rng: np.random.Generator) -> list:
    board, runtime, delegate, cores, scale = _BOARDS[dev]
    msgs = [as_message(status(dev, 1, "online"), True)]
    inf = info(dev, 1, 1)
    inf["inventory"] = _inventory(board, cores)
    msgs.append(as_message(inf))
    seq = 2
    for m, model in enumerate(("shapes_int8.tflite", "mobilenet_v2_0.35_160_int8_untrained.tflite")):
        for threads in (1, cores):
            run = f"r{m}{threads}"
            msgs.append(as_message(meta(dev, 1, seq, run, model=model)))
            cols = columns(400, rng, scale * (1 + 3 * m) / threads**0.5)
            msgs.append(as_message(frames(dev, 1, seq + 1, run, 0, cols, ts=now - 600 + 100 * m + threads)))
            doc = result_doc(dev, run, cols, model=model, runtime=runtime, duration_s=400 * 0.002 * scale)
            doc["runtime"].update(num_threads=threads, xnnpack=delegate is None)
            if delegate:
                doc["runtime"]["delegate"] = {"library": delegate, "options": {}}
            doc["power"] = {
                "available": True,
                "mean_w": 6.0,
                "energy_per_inference_mj": {"gross": 12.0 * scale, "net": 5.0},
            }
            msgs.append(as_message(summary(dev, 1, seq + 2, doc)))
            seq += 3
    for i in range(120):  # ten minutes of telemetry, every 5 s
        t = i * 5.0
        msgs.append(
            as_message(telemetry(dev, seq, now - 600 + t, t, throttled=(dev == "pi5-kitchen" and 400 < t < 480)))
        )
        seq += 1
    return msgs


def fill(store, documents: dict[str, Path] | None = None) -> None:
    """The hand-made devices, and the real documents (published as bench-x86's) when given."""
    rng = np.random.default_rng(7)
    now = time.time()
    for k, dev in enumerate(_BOARDS):
        store.apply(_device_messages(dev, k, now, rng))
    if documents:
        seq = 100
        msgs = [as_message(status("bench-x86", 1, "online"), True), as_message(info("bench-x86", 1, seq))]
        for path in documents.values():
            doc = json.loads(path.read_text())
            if doc["schema"] == protocol.RESULT_SCHEMA:
                continue
            msgs += [as_message(meta_of(doc, seq=seq + 1)), as_message(summary_of(doc, seq=seq + 2))]
            seq += 2
        store.apply(msgs)


def main(argv: list[str]) -> int:
    from edgebench.collector.store import SQLiteStore

    folder = Path(argv[0] if argv else "showcase")
    docs = make_documents(folder)
    store = SQLiteStore(str(folder / "showcase.db"))
    fill(store, docs)
    store.close()
    p = run_cli("report", *map(str, docs.values()), "--html", str(folder / "report.html"))
    assert p.returncode == 0, p.stderr
    print(f"{folder}: showcase.db, png/, report.html; edgebench-collector web --db {folder / 'showcase.db'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
