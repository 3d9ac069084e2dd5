"""Options from their sources: the table's defaults <- the config file <- the command line.

Both sources arrive in the config's shape: a validated config (agent/options/config.py)
and the flags' values (agent/cli/flags.py ``given()``, only the flags given), e.g.
``{"run": {"frames": 4}, "probes": {"power": "none"}, "device_id": "pi-a"}``. ``merge()``
lays the second over the first, key by key.

``build_run_options()`` is the one way to a ``RunOptions``: ``edgebench run`` (config and
flags), and the agent service's jobs, configured or remote (the job's keys in place of the
``run`` section). ``build_sweep_options()`` is the same for ``edgebench sweep``.
"""

from __future__ import annotations

from typing import Any, Mapping

from edgebench.agent.errors import UserError
from edgebench.agent.options.classes import ProbeOptions, RunOptions, SweepOptions
from edgebench.agent.options.table import options

_NO_RUN_MODEL = "no model: give --model PATH (or run.model in a --config file)"
_NO_SWEEP_MODEL = "no model: give --model PATH (or sweep.model in a --config file)"


def merge(config: Mapping[str, Any], flags: Mapping[str, Any] | None) -> dict[str, Any]:
    """``config`` with ``flags`` laid over it: a section's keys one by one, a top-level value whole."""
    out = dict(config)
    for k, v in (flags or {}).items():
        out[k] = {**(out.get(k) or {}), **v} if isinstance(v, dict) else v
    return out


def build_probe_options(config: Mapping[str, Any], flags: Mapping[str, Any] | None = None) -> ProbeOptions:
    """ProbeOptions from the config's ``probes`` section and the flags; validated."""
    opts = ProbeOptions(**merge(config, flags).get("probes", {}))
    opts.validate()
    return opts


def build_run_options(
    config: Mapping[str, Any],
    flags: Mapping[str, Any] | None = None,
    *,
    job: Mapping[str, Any] | None = None,
    device_id: str | None = None,
    run_id: str | None = None,
) -> RunOptions:
    """A validated RunOptions: the ``run`` section (or ``job``: a job's values, its ``name``
    and ``every_s`` aside) with the flags over it, the device id (``device_id``, else the
    merged config's), the ``probes`` section with its flags. UserError when something is wrong."""
    merged = merge(config, flags)
    run = merge({"run": job if job is not None else config.get("run", {})}, flags)["run"]
    run_keys = {o.key for o in options("run")}
    values = {k: v for k, v in run.items() if k in run_keys}
    if not values.get("model"):
        raise UserError(_NO_RUN_MODEL if job is None else "the job has no model")
    opts = RunOptions(
        **values,
        device_id=device_id or merged.get("device_id"),
        run_id=run_id,
        probes=build_probe_options(merged),
    )
    opts.validate()
    return opts


def build_sweep_options(config: Mapping[str, Any], flags: Mapping[str, Any] | None = None) -> SweepOptions:
    """A validated SweepOptions: the ``sweep`` section with the flags over it, the device id."""
    merged = merge(config, flags)
    values = dict(merged.get("sweep", {}))
    if not values.get("model"):
        raise UserError(_NO_SWEEP_MODEL)
    opts = SweepOptions(**values, device_id=merged.get("device_id"))
    opts.validate()
    return opts
