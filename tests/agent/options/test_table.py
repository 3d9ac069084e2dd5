"""The options table is the one place an option is declared: the flags of `run` and `sweep`,
the config keys, the help's defaults and the options dataclasses must all agree with it."""

import dataclasses
import re

import pytest
import yaml

from edgebench.agent.cli import build_parser
from edgebench.agent.cli.flags import given
from edgebench.agent.errors import UserError
from edgebench.agent.options import config as cfgmod
from edgebench.agent.options.classes import ProbeOptions, RunOptions, SweepOptions
from edgebench.agent.options.kinds import (
    Bool,
    Choice,
    DeviceId,
    Fraction,
    Grid,
    Number,
    StrMap,
    Subset,
    Text,
    Whole,
    _Bounded,
)
from edgebench.agent.options.table import (
    CLI,
    OPTIONS,
    REQUIRED,
    TOP,
    default,
    default_phrase,
    for_command,
    help_text,
    options,
)

COMMANDS = ("run", "sweep")
#: flags that belong to one invocation, not to a device's settings: no config key, by nature
CLI_ONLY = {
    "run": {"--config", "--json", "--csv", "--plot", "--run-id", "--quiet", "--strict"},
    "sweep": {"--config", "--json", "--csv", "--plot", "--quiet", "--strict"},
}
#: the keys of a command's own sections that no flag sets: a mapping has no good spelling as a
#: flag, the probes' cool/soak tuning is for a config file, and the sweep's preprocessing and
#: seed were never on its command line. (The mqtt and outbox sections are shared with the
#: agent service: their flags are --mqtt, --mqtt-protocol and --mqtt-wait; credentials and
#: tuning stay in the file.)
OWN_SECTIONS = {"run": {"run", "probes"}, "sweep": {"sweep"}}
CONFIG_ONLY = {
    "run": {
        "run.normalization",
        "probes.cool_timeout_s",
        "probes.soak_max_s",
        "probes.soak_window_s",
        "probes.soak_steady_c",
    },
    "sweep": {"sweep.normalization", "sweep.resize", "sweep.color", "sweep.seed"},
}


def subparser(command: str):
    ap = build_parser()
    sub = next(a for a in ap._actions if a.dest == "command")
    return sub.choices[command]


def sample(o) -> tuple[list[str], object]:
    """A valid value of the option other than its default: (its flag and text, its config value)."""
    k = o.kind
    if o.action in ("true", "false"):
        return [o.flag], o.action == "true"
    if isinstance(k, StrMap):
        return [o.flag, "a=1", o.flag, "b=2"], {"a": "1", "b": "2"}
    if isinstance(k, Grid):
        return [o.flag, "2,1"], [2, 1]
    if isinstance(k, Subset):
        return [o.flag, ",".join(reversed(k.options))], ",".join(reversed(k.options))
    if isinstance(k, Choice):
        return [o.flag, k.choices[-1]], k.choices[-1]
    if isinstance(k, Whole):
        return [o.flag, str((k.lo or 0) + 1)], (k.lo or 0) + 1
    if isinstance(k, Fraction):
        return [o.flag, "0.25"], 0.25
    if isinstance(k, Number):
        return [o.flag, "1.5"], 1.5
    if isinstance(k, DeviceId):
        return [o.flag, "dev-1"], "dev-1"
    assert isinstance(k, Text), o
    return [o.flag, "some-thing"], "some-thing"


def config_of(pairs) -> dict:
    out: dict = {}
    for o, v in pairs:
        if o.section == TOP:
            out[o.key] = v
        else:
            out.setdefault(o.section, {})[o.key] = v
    return out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_has_its_config_key_and_every_key_its_flag(command):
    flags = list(for_command(command))
    without_key = {o.flag for o in flags if o.section == CLI}
    assert without_key == CLI_ONLY[command]
    for o in flags:  # a flag's config key is one the config file takes
        if o.section == TOP:
            assert o.key in cfgmod.TOP_KEYS, o.name
        elif o.section != CLI:
            assert o.key in cfgmod.SECTION_KEYS[o.section], o.name
    flagged = {o.name for o in flags}
    keys = {o.name for o in OPTIONS if o.section in OWN_SECTIONS[command]}
    assert keys - flagged == CONFIG_ONLY[command]
    assert {"mqtt.url", "mqtt.protocol", "outbox.drain_wait_s", "device_id", "probes.power"} <= flagged


@pytest.mark.parametrize("command", COMMANDS)
def test_the_parser_has_exactly_the_tables_flags(command):
    p = subparser(command)
    parsed = {s for a in p._actions for s in a.option_strings} - {"-h", "--help"}
    table = {o.flag for o in for_command(command)} | {o.short for o in for_command(command) if o.short}
    assert parsed == table


@pytest.mark.parametrize("command", COMMANDS)
def test_a_flag_and_its_config_key_give_the_same_value(command):
    """Every flag, given on the command line, lands on its config key with the value the
    config file would give it."""
    opts = [o for o in for_command(command) if o.section != CLI]
    argv, pairs = [command], []
    for o in opts:
        words, value = sample(o)
        argv += words
        pairs.append((o, value))
    flags = given(build_parser().parse_args(argv), command)
    expected = config_of(pairs)
    from_file = cfgmod.validate(yaml.safe_load(yaml.safe_dump(expected)))
    assert flags == from_file
    assert flags == expected


@pytest.mark.parametrize("command", (*COMMANDS, "agent"))
def test_every_default_in_the_help_comes_from_the_table(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per flag
    text = subparser(command).format_help()
    said = re.findall(r"\(default[ :][^()]*(?:\([^()]*\)[^()]*)*\)", text)
    expected = [default_phrase(o) for o in for_command(command) if default_phrase(o) and not o.hidden]
    assert sorted(said) == sorted(expected)
    for o in for_command(command):
        if not o.hidden:
            assert " ".join(help_text(o).split()) in " ".join(text.split()), o.flag
    assert "--run-id" not in text


def test_no_help_in_the_table_types_a_default_by_hand():
    for o in OPTIONS:
        assert "default " not in o.help.replace("the default XNNPACK", ""), o.name
        assert "(default" not in o.help, o.name


def test_defaults_in_the_help_read_well():
    run = {o.key: default_phrase(o) for o in options("run")}
    assert run["frames"] == "(default: 100 unless --duration)"
    assert run["warmup"] == "(default 5)" and run["stall_timeout_s"] == "(default 10)"
    assert run["runtime"] == "(default auto: ai-edge-litert, then tflite-runtime, then tensorflow)"
    assert run["model"] is None and run["delegate_options"] is None and run["cpu_fallback"] is None
    assert default_phrase(next(o for o in options("sweep") if o.key == "batch")) == "(default 1)"


@pytest.mark.parametrize(
    "cls, section, extra",
    [
        (RunOptions, "run", ["device_id", "run_id", "notes", "probes"]),
        (SweepOptions, "sweep", ["device_id", "run_id", "threads_from"]),
        (ProbeOptions, "probes", ["root"]),
    ],
)
def test_the_options_dataclasses_are_the_tables_sections(cls, section, extra):
    fields = dataclasses.fields(cls)
    assert [f.name for f in fields] == [o.key for o in options(section)] + extra
    kw = {"model": "m.tflite"} if section != "probes" else {}
    a, b = cls(**kw), cls(**kw)
    for o in options(section):
        if o.default is REQUIRED:
            with pytest.raises(TypeError):
                cls()
            continue
        assert getattr(a, o.key) == o.default, o.key
        if isinstance(o.default, (list, dict)):  # each instance its own
            assert getattr(a, o.key) is not getattr(b, o.key) and getattr(a, o.key) is not o.default


def bounded(section: str):
    return [o for o in options(section) if isinstance(o.kind, _Bounded) and o.kind.lo is not None]


def too_low(o):
    lo = o.kind.lo
    return lo if o.kind.above else (lo - 1 if isinstance(o.kind, Whole) else lo - 0.5)


@pytest.mark.parametrize("o", bounded("run") + bounded("sweep") + bounded("probes"), ids=lambda o: o.name)
def test_a_range_is_the_same_in_the_config_on_the_command_line_and_in_validate(o):
    bad = too_low(o)
    _, problems = cfgmod.check(config_of([(o, bad)]))
    assert len(problems) == 1 and problems[0].startswith(f"{o.name}: expected a "), problems
    cls = {"run": RunOptions, "sweep": SweepOptions, "probes": ProbeOptions}[o.section]
    opts = cls(**({"model": "m.tflite"} if o.section != "probes" else {}), **{o.key: bad})
    with pytest.raises(UserError, match=f"^{re.escape(o.label)} must "):
        opts.validate()
    if o.flag:
        command = "run" if "run" in o.commands else "sweep"
        with pytest.raises(UserError, match=f"^{re.escape(o.flag)} must "):
            given(build_parser().parse_args([command, o.flag, str(bad)]), command)


def test_validate_reports_every_bad_value_at_once():
    with pytest.raises(UserError) as e:
        RunOptions(model="m.tflite", frames=0, top_k=101, stall_timeout_s=0).validate()
    assert str(e.value).splitlines() == [
        "--frames must be at least 1, got 0",
        "--top-k must be between 1 and 100, got 101",
        "--stall-timeout must be more than 0, got 0",
    ]


def test_a_command_may_have_its_own_default():
    assert default("outbox", "drain_wait_s") == 15.0  # run and sweep wait for the broker this long
    assert default("outbox", "drain_wait_s", "agent") == 10.0  # the service, on stop
    assert default("outbox", "drain_wait_s", "sweep") == 15.0


def test_sections_of_the_config_are_the_tables():
    assert set(cfgmod.SECTION_KEYS) == {"run", "sweep", "tune", "probes", "mqtt", "outbox", "telemetry", "commands"}
    # a job: the run's keys, its own, and the tune search's own (a job with tune: true)
    tune_own = {"objective", "budget_s", "max_batch"}
    assert set(cfgmod.JOB_KEYS) == {o.key for o in options("run")} | {"name", "every_s", "tune"} | tune_own
    assert all(isinstance(o.kind, Bool) for o in OPTIONS if o.action in ("true", "false"))
