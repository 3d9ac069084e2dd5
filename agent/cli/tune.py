"""``edgebench tune``: the command line of the auto-tune (edgebench.agent.measure.tune).

Settles the ``tune`` options (table.py), loads the model once to make the samples (a
model that does not run at all is a user error before the search), runs the search over
the real runtime, writes --json and --write-config, prints the winner with its evidence.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edgebench.agent.errors import UserError
from edgebench.agent.wire.figures import people, text_table


def add_parser(sub: Any) -> None:
    from edgebench.agent.cli.flags import add_flags

    t = sub.add_parser("tune", help="the best configuration of this board for a model under a latency bound")
    add_flags(t, "tune")


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    from dataclasses import MISSING

    from edgebench.agent.cli.common import read_settings
    from edgebench.agent.options.build import merge
    from edgebench.agent.options.table import section_values

    cfg, flags = read_settings(args, "tune")
    values = {k: (None if v is MISSING else v) for k, v in section_values(merge(cfg, flags), "tune", "tune").items()}
    if not values.get("model"):
        raise UserError("tune needs a model: give --model FILE (or tune.model in the --config file)")
    if values.get("latency_bound_ms") is None:
        raise UserError("tune needs a bound: give --latency-bound-ms MS (the p99 a batch must hold)")
    return values


def cmd_tune(args: argparse.Namespace) -> int:
    from edgebench.agent.cli.common import model_file
    from edgebench.agent.measure import tune
    from edgebench.agent.measure.result import write_json
    from edgebench.agent.measure.sweep import ProbePower
    from edgebench.agent.measure.workload import BatchWorker
    from edgebench.agent.options.classes import SweepOptions
    from edgebench.agent.runtime.threads import available_cores

    v = _settings(args)
    model = model_file(v["model"], args.quiet)
    base = SweepOptions(
        model=model,
        threads=[1],
        duration_s=1.0,
        **{k: v[k] for k in ("runtime", "delegate", "delegate_options", "cpu_fallback")},
        **{k: v[k] for k in ("normalization", "resize", "color")},
    )
    base.validate()
    from edgebench.agent.measure.sweep import worker_spec

    samples = BatchWorker(worker_spec(base, 1, 1)).samples  # the model runs at all, or a user error now
    board = tune.Board(cores=available_cores(), delegate=v.get("delegate"), max_batch=v["max_batch"])
    with ProbePower() as power:
        if v["objective"] == "energy" and not power.available:
            raise UserError(f"--objective energy needs a power source: {power.reason}")
        measure = tune.real_measure(base, samples, power if power.available else None)
        if not args.quiet:
            print(f"edgebench: tuning {model} for p99 <= {v['latency_bound_ms']:g} ms ...", file=sys.stderr)
        doc = tune.tune(board, measure, v["latency_bound_ms"], v["objective"], v["budget_s"])
    doc["model"] = model
    if args.json:
        write_json(args.json, doc)
    if args.write_config and doc["best"]:
        _write_config(args.write_config, tune.run_section(doc, model), doc["best"]["config"])
    if not args.quiet:
        print_tune(doc)
        for what, path in (("result", args.json), ("config", args.write_config if doc["best"] else None)):
            if path:
                print(f"{what} written to {path}")
    if not doc["best"]:
        from edgebench.agent.errors import ModelError

        raise ModelError(f"no configuration meets p99 <= {v['latency_bound_ms']:g} ms: {doc['verdict']['why']}")
    return 0


def _write_config(path: str, section: dict[str, Any], cfg: dict[str, Any]) -> None:
    import yaml

    from edgebench.agent.measure.tune import config_notes

    text = yaml.safe_dump(section, sort_keys=False)
    text += "".join(f"# {n}\n" for n in config_notes(cfg))
    try:
        with open(path, "w") as f:
            f.write("# written by `edgebench tune`\n" + text)
    except OSError as e:
        raise UserError(f"cannot write the config {path}: {e.strerror or e}") from None


def _describe(cfg: dict[str, Any]) -> str:
    parts = [f"{k} {'on' if v is True else 'off' if v is False else v}" for k, v in cfg.items() if v is not None]
    return ", ".join(parts)


def print_tune(doc: dict[str, Any], out=sys.stdout) -> None:
    w = out.write
    rows = []
    for p in doc["points"]:
        c = p["config"]
        head = [str(c.get("delegate") or "-"), "on" if c["xnnpack"] else "off", *map(str, (c["threads"], c["batch"]))]
        head.append(str(c["instances"]))
        if p["status"] == "ok":
            figs = [people(p["throughput_items_per_s"]), people(p["batch_p50_ms"]), people(p["batch_p99_ms"])]
            rows.append([*head, *figs, "yes" if p["meets_bound"] else "no"])
        else:
            rows.append([*head, "-", "-", "-", f"{p['status']}: {p['reason']}"])
    cols = ["delegate", "xnnpack", "threads", "batch", "inst", "items/s", "p50 ms", "p99 ms", "meets"]
    for line in text_table(cols, rows, left={len(cols) - 1}):
        w(line + "\n")
    w(f"pruned without measuring: {len(doc['pruned'])}\n")
    for p in doc["pruned"]:
        w(f"  {_describe(p['config'])}: {p['reason']}\n")
    d = doc["default"]
    if d and d["status"] == "ok":
        meets = "meets" if d["meets_bound"] else "misses"
        w(f"default ({_describe(d['config'])}): p99 {people(d['batch_p99_ms'])} ms, {meets} the bound\n")
    best, ru, v = doc["best"], doc["runner_up"], doc["verdict"]
    if best:
        w(
            f"best for {doc['objective']} under p99 <= {doc['bound_ms']:g} ms: {_describe(best['config'])}: "
            f"{people(best['throughput_items_per_s'])} items/s, p99 {people(best['batch_p99_ms'])} ms\n"
        )
    if ru:
        w(f"runner-up: {_describe(ru['config'])}: {people(ru['throughput_items_per_s'])} items/s\n")
    cmp_ = v.get("comparison") or {}
    ci = f", 95% CI of the change {cmp_['ci95']}" if cmp_.get("ci95") else ""
    w(f"verdict: {v['verdict']}{ci}{'; ' + v['why'] if v.get('why') else ''}\n")
