"""The options dataclasses, generated from the table (agent/options/table.py).

``RunOptions`` (one benchmark run: ``edgebench run``, the agent's jobs), ``SweepOptions``
(``edgebench sweep``) and ``ProbeOptions`` (power, thermal and system probes around a run)
have one field per option of the ``run``, ``sweep`` and ``probes`` sections, with the
table's default, in the table's order, plus a few fields that are not settings (the run's
id, notes added on the way, the probes of a run). A new option in the table is a new field.

``validate()`` checks every value against its option's range (all problems at once, one
line each, naming the flag: ``--frames must be at least 1, got 0``), then the rules about
combinations, which are written here (a delegate option needs a delegate; a sweep takes
frames or a duration, not both...), and fills the defaults that depend on other options.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import field, make_dataclass
from typing import Any, Callable

from edgebench.agent.errors import UserError
from edgebench.agent.options.kinds import Bad
from edgebench.agent.options.table import (
    DEFAULT_FRAMES,
    DEFAULT_SUSTAINED_S,
    DEFAULT_SWEEP_DURATION_S,
    REQUIRED,
    SUSTAINED,
    options,
)
from edgebench.agent.runtime.threads import DEFAULT, GIVEN, default_threads
from edgebench.agent.wire import protocol

#: the most points a sweep may have (the collector stores and draws each)
MAX_POINTS = protocol.MAX_SWEEP_POINTS


def _field(o) -> tuple[str, str, Any]:
    ann = o.kind.annotation
    if o.default is REQUIRED:
        return (o.key, ann)
    if o.default is None:
        return (o.key, f"{ann} | None", field(default=None))
    if isinstance(o.default, (list, dict)):
        return (o.key, ann, field(default_factory=functools.partial(copy.deepcopy, o.default)))
    return (o.key, ann, field(default=o.default))


def options_class(name: str, section: str, extra: list[tuple], validate: Callable[[Any], None], doc: str) -> type:
    """A dataclass with a field per option of ``section`` (then ``extra`` fields, not options)."""
    cls = make_dataclass(name, [_field(o) for o in options(section)] + extra, namespace={"validate": validate})
    cls.__module__ = __name__
    cls.__doc__ = doc
    return cls


def check_ranges(opts: Any, section: str) -> None:
    """Every option's value against its range, all problems in one UserError (a line each).
    Values the command line gives as text (grids, KEY=VALUE pairs) become their type."""
    problems = []
    for o in options(section):
        v = getattr(opts, o.key)
        if v is None:
            continue
        try:
            setattr(opts, o.key, o.kind.from_flag(v, o.label))
        except Bad as e:
            problems.append(str(e))
    if problems:
        raise UserError("\n".join(problems))


def _validate_run(self: Any) -> None:
    """The ranges, then the combinations: every problem at once, a line each."""
    check_ranges(self, "run")
    problems = []
    if self.delegate_options and not self.delegate:
        problems.append("--delegate-option needs --delegate LIB")
    if self.scenario == SUSTAINED and not self.find_max_qps:
        problems.extend(_sustained_problems(self))
    elif self.scenario is not None or self.find_max_qps:
        from edgebench.agent.options.scenario import validate_scenario  # numpy: only when a scenario is asked

        try:
            validate_scenario(self)
        except UserError as e:
            problems.extend(str(e).splitlines())
    else:
        if self.batch != 1:
            problems.append("--batch applies to --scenario runs (and `edgebench sweep`), not to the per-frame run")
        if self.mlperf:
            problems.append(
                "--mlperf judges a LoadGen scenario by MLPerf's run lengths: add --scenario single-stream (or "
                "another); the per-frame run is not a LoadGen scenario"
            )
    if problems:
        raise UserError("\n".join(problems))
    if self.scenario == SUSTAINED and self.frames is None and self.duration_s is None:
        self.duration_s = DEFAULT_SUSTAINED_S
    if self.scenario is None and self.frames is None and self.duration_s is None:
        self.frames = DEFAULT_FRAMES


def _sustained_problems(self: Any) -> list[str]:
    """--scenario sustained is the per-frame run held long: no batch, and a duration, not frames."""
    problems = []
    if self.batch != 1:
        problems.append("--batch applies to LoadGen scenarios, not to --scenario sustained (a per-frame run)")
    if self.frames is not None:
        problems.append("--scenario sustained runs for --duration SEC (600 s by default), not --frames")
    return problems


def _validate_sweep(self: Any) -> None:
    check_ranges(self, "sweep")
    if self.threads is None:
        self.threads = [default_threads()]
        self.threads_from = DEFAULT
    n = len(self.batch) * len(self.threads) * len(self.instances)
    if n > MAX_POINTS:
        raise UserError(
            f"the grid has {n} points; at most {MAX_POINTS}: use fewer batch sizes, thread counts or instances"
        )
    if self.frames is not None and self.duration_s is not None:
        raise UserError("give --frames or --duration for a sweep, not both")
    if self.frames is None and self.duration_s is None:
        self.duration_s = DEFAULT_SWEEP_DURATION_S
    if self.delegate_options and not self.delegate:
        raise UserError("--delegate-option needs --delegate LIB")


def _validate_probes(self: Any) -> None:
    from edgebench.agent.probes.discover import parse_power_spec

    check_ranges(self, "probes")
    parse_power_spec(self.power)


RunOptions = options_class(
    "RunOptions",
    "run",
    [
        ("device_id", "str | None", field(default=None)),
        ("run_id", "str | None", field(default=None)),
        ("notes", "list[str]", field(default_factory=list)),
        #: ProbeOptions; None means the defaults (10 Hz, power auto)
        ("probes", "Any", field(default=None)),
    ],
    _validate_run,
    "One benchmark run (``edgebench run``, a job of the agent): the table's ``run`` section, "
    "plus the device and run ids, notes added on the way, and the run's ProbeOptions.",
)

SweepOptions = options_class(
    "SweepOptions",
    "sweep",
    [
        ("device_id", "str | None", field(default=None)),
        ("run_id", "str | None", field(default=None)),
        #: whether the thread counts were given or are the default (runtime/threads.py)
        ("threads_from", "str", field(default=GIVEN)),
    ],
    _validate_sweep,
    "One sweep (``edgebench sweep``): the table's ``sweep`` section, plus the device and run ids.",
)

ProbeOptions = options_class(
    "ProbeOptions",
    "probes",
    [("root", "str | None", field(default=None))],  # None: $EDGEBENCH_SYSFS_ROOT, else "/"
    _validate_probes,
    "Probes around a run: the table's ``probes`` section, plus the sysfs root (tests).",
)
