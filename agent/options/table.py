"""Every option of the agent, declared once.

An :class:`Option` is one setting: its config section and key, its kind (type and range,
agent/options/kinds.py), its default, its help, and, when the command line has it, its
flag, metavar and the commands that take it. Everything else is derived from this table:

* the argparse flags of ``edgebench run``, ``sweep`` and ``agent`` (agent/cli/flags.py),
  their help ending in ``(default X)`` rendered from the default here;
* the YAML check of every config section (agent/options/config.py);
* the options dataclasses ``RunOptions``, ``SweepOptions`` and ``ProbeOptions``, whose fields
  and defaults are the ``run``, ``sweep`` and ``probes`` sections (agent/options/classes.py),
  and the range checks of their ``validate()``;
* the defaults the publisher and the agent service read (``default(section, key)``).

How to add an option
--------------------
Add one ``Option(...)`` to ``OPTIONS`` below, in its section's block: ``section`` and
``key`` name it in the config file (and are its field in that section's options class),
``kind`` says what values it takes, ``default`` what it is when nobody sets it, ``help``
one line without the default (the ``(default X)`` is added; ``default_help`` explains a
default computed elsewhere, or adds to a plain one). Give it a ``flag`` (and ``commands``)
when the command line should have it too. Then write the code that uses it, reading
``opts.<key>``. Nothing else: the flag, the config key, the field, its default and range
check follow from the entry, and tests/agent/options/ checks that they agree.

A flag with no config key (``--config``, ``--json``, ``-q``...) is declared with
``section=CLI``: it belongs to one invocation, not to a device's settings.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields, replace
from typing import Any, Iterator

from edgebench.agent.options.kinds import (
    MAX_BATCH,
    MAX_INSTANCES,
    MAX_THREADS,
    Bool,
    Choice,
    DeviceId,
    Fraction,
    Grid,
    Kind,
    Normalization,
    Number,
    StrMap,
    Subset,
    Text,
    Whole,
)
from edgebench.agent.runtime import threads
from edgebench.agent.wire import protocol
from edgebench.agent.wire.transport import MqttSettings

#: the section of a flag that has no config key (one invocation's business)
CLI = "cli"
#: the section of the config's top-level keys (``device_id``)
TOP = ""

#: argparse groups of the flags (a help section each)
PROBES_GROUP = "power, thermal and system probes"
SCENARIO_GROUP = "scenarios (after MLPerf LoadGen; see README 'Sweeps and scenarios')"

#: how a flag sets its value: "store" takes a value; "true"/"false" set True/False without one;
#: "append" collects a repeated flag's values
ACTIONS = ("store", "true", "false", "append")

#: the default of an option that must be given (a model): a field without a default
REQUIRED = MISSING

#: ``--scenario sustained``: the per-frame run held long, reported per interval
#: (agent/measure/sustained.py); not a LoadGen scenario
SUSTAINED = "sustained"
DEFAULT_SUSTAINED_S = 600.0

#: defaults that are computed when the option is left unset (named here so that the help and
#: the code that computes them say the same number)
DEFAULT_FRAMES = 100  # run: when neither frames nor duration_s is given
DEFAULT_SWEEP_DURATION_S = 2.0  # sweep: per point, when neither frames nor duration_s is given


@dataclass(frozen=True)
class Option:
    section: str
    key: str
    kind: Kind
    default: Any = None
    help: str = ""
    #: the command-line spelling ("--frames"); None: config only
    flag: str | None = None
    #: a second, short spelling ("-q")
    short: str | None = None
    metavar: str | None = None
    #: the commands whose parser has the flag ("run", "sweep", "agent")
    commands: tuple[str, ...] = ()
    #: commands where the flag is required
    required: tuple[str, ...] = ()
    #: the help section of the flag (PROBES_GROUP, SCENARIO_GROUP); None: the command's own
    group: str | None = None
    action: str = "store"
    #: what the help says about the default beyond its value (or instead of it, when None)
    default_help: str | None = None
    #: a command whose default differs, e.g. {"agent": 10.0}
    command_defaults: tuple[tuple[str, Any], ...] = ()
    #: hidden from --help (a flag for tools, not people)
    hidden: bool = False

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"{self.section}.{self.key}: action {self.action!r} is not one of {ACTIONS}")
        if bool(self.flag) != bool(self.commands):
            raise ValueError(f"{self.section}.{self.key}: a flag needs its commands, and commands a flag")

    @property
    def name(self) -> str:
        """How the config file spells it: ``run.frames``, ``device_id``, or the flag for a CLI one."""
        if self.section == CLI:
            return self.flag or self.key
        return f"{self.section}.{self.key}" if self.section else self.key

    @property
    def label(self) -> str:
        """How a message names it: the flag when there is one, else the config key."""
        return self.flag or self.name

    @property
    def dest(self) -> str:
        """The argparse attribute: the key for a CLI-only flag, else section.key."""
        return self.key if self.section in (CLI, TOP) else f"{self.section}.{self.key}"


_RUNTIMES = ("auto", "ai-edge-litert", "tflite-runtime", "tensorflow")
#: the broker settings' defaults live with the settings (shared with the collector)
_MQTT = {f.name: f.default for f in fields(MqttSettings) if f.default is not MISSING}


def _also(options: tuple[Option, ...], section: str, command: str | None, *keys: str) -> tuple[Option, ...]:
    """Options of another section that mean the same in ``section`` (its own key there), with
    their flag on ``command`` (None: config only there)."""
    return tuple(
        replace(o, section=section, commands=(command,))
        if command
        else replace(o, section=section, flag=None, commands=())
        for o in options
        if o.key in keys
    )


_RUN: tuple[Option, ...] = (
    # -- run: `edgebench run` and the agent's jobs (RunOptions) ---------------------------------
    Option("run", "model", Text(), REQUIRED, "path to a .tflite model", "--model", commands=("run",)),
    Option(
        "run",
        "source",
        Text(),
        "synthetic",
        "synthetic[:WxH], an image file, a folder of images or a video file",
        "--source",
        commands=("run",),
    ),
    Option(
        "run",
        "frames",
        Whole(1),
        help="frames to measure",
        flag="--frames",
        commands=("run",),
        default_help=f"{DEFAULT_FRAMES} unless --duration",
    ),
    Option(
        "run",
        "duration_s",
        Number(0, above=True),
        help="measure for this long (with --frames: whichever ends first)",
        flag="--duration",
        metavar="SEC",
        commands=("run",),
    ),
    Option("run", "warmup", Whole(0), 5, "frames run first and not measured", "--warmup", commands=("run",)),
    Option(
        "run",
        "warmup_s",
        Number(0),
        0.0,
        "warm up for at least this long too",
        "--warmup-s",
        metavar="SEC",
        commands=("run",),
    ),
    Option(
        "run",
        "threads",
        Whole(1),
        help="interpreter threads (the number used is recorded as runtime.num_threads)",
        flag="--threads",
        commands=("run",),
        default_help=threads.DEFAULT_HELP,
    ),
    Option(
        "run",
        "runtime",
        Choice(*_RUNTIMES),
        "auto",
        "TFLite runtime",
        "--runtime",
        commands=("run",),
        default_help="ai-edge-litert, then tflite-runtime, then tensorflow",
    ),
    Option(
        "run",
        "labels",
        Text(),
        help="labels file (one per line) to name classification outputs",
        flag="--labels",
        commands=("run",),
    ),
    Option("run", "top_k", Whole(1, 100), 5, "classes kept per prediction", "--top-k", commands=("run",)),
    Option(
        "run",
        "resize",
        Choice("stretch", "crop", "letterbox"),
        "stretch",
        "how frames are fitted to the input",
        "--resize",
        commands=("run",),
    ),
    Option(
        "run", "color", Choice("RGB", "BGR"), "RGB", "channel order the model expects", "--color", commands=("run",)
    ),
    Option("run", "normalization", Normalization(), help="input normalization {mean, std} (else the model's metadata)"),
    Option(
        "run",
        "delegate",
        Text(),
        help="external delegate: a library path or edgetpu, vx, armnn, qnn",
        flag="--delegate",
        metavar="LIB",
        commands=("run",),
    ),
    Option(
        "run",
        "delegate_options",
        StrMap(),
        {},
        "delegate option, repeatable (e.g. device=usb:0, backends=GpuAcc,CpuAcc)",
        "--delegate-option",
        metavar="KEY=VALUE",
        commands=("run",),
        action="append",
    ),
    Option(
        "run",
        "cpu_fallback",
        Bool(),
        False,
        "if the delegate cannot load, run on the CPU (recorded in the result)",
        "--cpu-fallback",
        commands=("run",),
        action="true",
    ),
    Option(
        "run",
        "xnnpack",
        Bool(),
        True,
        "disable the default XNNPACK CPU delegate",
        "--no-xnnpack",
        commands=("run",),
        action="false",
    ),
    Option(
        "run",
        "accelerator",
        Subset("cpu", "gpu", "npu"),
        help="run with LiteRT's CompiledModel on these accelerators, combinable in order of preference "
        "(npu,cpu); see docs/accelerators.md",
        flag="--accelerator",
        metavar="cpu|gpu|npu",
        commands=("run",),
        default_help="none: the classic Interpreter",
    ),
    Option(
        "run",
        "dispatch_library",
        Text(),
        help="folder of the vendor's LiteRT dispatch library (libLiteRtDispatch_*.so) for --accelerator npu",
        flag="--dispatch-library",
        metavar="DIR",
        commands=("run",),
        default_help="the one the ai-edge-litert wheel ships, if any",
    ),
    Option(
        "run",
        "compiler_plugin",
        Text(),
        help="folder of the vendor's LiteRT compiler plugin (libLiteRtCompilerPlugin_*.so) for --accelerator npu",
        flag="--compiler-plugin",
        metavar="DIR",
        commands=("run",),
        default_help="the dispatch library's vendor's, in the ai-edge-litert wheel",
    ),
    Option(
        "run",
        "require_full_delegation",
        Bool(),
        False,
        "with --accelerator: fail (exit 3) unless every operator runs on the accelerator",
        "--require-full-delegation",
        commands=("run",),
        action="true",
    ),
    Option(
        "run",
        "accelerator_options",
        StrMap(),
        {},
        "CompiledModel option, repeatable: cpu_kernel_mode, qualcomm_htp_performance_mode, qualcomm_backend, "
        "openvino_device, openvino_performance_mode (docs/accelerators.md)",
        "--accelerator-option",
        metavar="KEY=VALUE",
        commands=("run",),
        action="append",
    ),
    Option(
        "run",
        "ops",
        Bool(),
        False,
        "per-operator table in the result and the summary: backend, GPU compatibility and each operator's "
        "time (docs/accelerators.md)",
        "--ops",
        commands=("run",),
        action="true",
    ),
    Option(
        "run",
        "pacing",
        Choice("fast", "realtime"),
        "fast",
        "fast, or realtime: play a video at its own frame rate",
        "--pacing",
        commands=("run",),
    ),
    Option(
        "run",
        "fps",
        Number(0, above=True),
        help="pace a file or synthetic source at N frames/s, as a camera would",
        flag="--fps",
        commands=("run",),
    ),
    Option(
        "run",
        "pipelined",
        Bool(),
        False,
        "capture+preprocess in their own thread, overlapping inference",
        "--pipelined",
        commands=("run",),
        action="true",
    ),
    Option(
        "run",
        "stall_timeout_s",
        Number(0, above=True),
        10.0,
        "a live source silent this long is an error",
        "--stall-timeout",
        metavar="SEC",
        commands=("run",),
    ),
    Option(
        "run",
        "reconnects",
        Whole(0, 100),
        3,
        "reopen a dropped network stream up to N times",
        "--reconnects",
        commands=("run",),
    ),
    Option(
        "run",
        "min_frames",
        Whole(0),
        50,
        "fewer measured frames make the run INVALID",
        "--min-frames",
        commands=("run",),
    ),
    Option(
        "run",
        "min_duration_s",
        Number(0),
        1.0,
        "a shorter measurement is INVALID",
        "--min-duration",
        metavar="SEC",
        commands=("run",),
    ),
    Option(
        "run",
        "accuracy",
        Text(),
        help="labelled images (a folder per class, or a labels CSV): report top-1/top-5",
        flag="--accuracy",
        metavar="DIR",
        commands=("run",),
    ),
    Option(
        "run",
        "accuracy_floor",
        Fraction(),
        help="fail the run if top-1 is below F (0..1)",
        flag="--accuracy-floor",
        metavar="F",
        commands=("run",),
    ),
    # -- run, scenarios (agent/measure/scenarios.py); no scenario = the per-frame run ----------------
    Option(
        "run",
        "scenario",
        Choice(*protocol.SCENARIOS, SUSTAINED),
        help="run a LoadGen-style scenario instead of the per-frame run; sustained: the per-frame run held "
        "for --duration (600 s unless given), reported per --interval",
        flag="--scenario",
        commands=("run",),
        group=SCENARIO_GROUP,
    ),
    Option(
        "run",
        "interval_s",
        Number(0, above=True),
        30.0,
        "sustained: throughput, latency, temperature and clock per interval of this many seconds",
        "--interval",
        metavar="SEC",
        commands=("run",),
        group=SCENARIO_GROUP,
    ),
    Option(
        "run",
        "target_qps",
        Number(0, above=True),
        help="server: Poisson arrival rate (queries/s); --find-max-qps: the first rate tried",
        flag="--target-qps",
        metavar="N",
        commands=("run",),
        group=SCENARIO_GROUP,
    ),
    Option(
        "run",
        "latency_bound_ms",
        Number(0, above=True),
        help="server: the p99 latency the rate must hold (single/multi-stream: checked against p90/p99)",
        flag="--latency-bound-ms",
        metavar="N",
        commands=("run",),
        group=SCENARIO_GROUP,
    ),
    Option(
        "run",
        "samples_per_query",
        Whole(1),
        8,
        "multi-stream: samples per query",
        "--samples-per-query",
        metavar="N",
        commands=("run",),
        group=SCENARIO_GROUP,
    ),
    Option(
        "run",
        "min_queries",
        Whole(0),
        64,
        "fewer queries (offline: samples) make the scenario INVALID",
        "--min-queries",
        metavar="N",
        commands=("run",),
        group=SCENARIO_GROUP,
    ),
    Option(
        "run",
        "max_duration_s",
        Number(0, above=True),
        help="hard stop for a scenario",
        flag="--max-duration",
        metavar="SEC",
        commands=("run",),
        group=SCENARIO_GROUP,
        default_help="server 2x--duration+5 s, others max(60 s, 10x--duration)",
    ),
    Option(
        "run",
        "batch",
        Whole(1),
        1,
        "scenarios: interpreter batch size; the batch dimension is resized",
        "--batch",
        commands=("run",),
        group=SCENARIO_GROUP,
    ),
    Option(
        "run",
        "find_max_qps",
        Bool(),
        False,
        "search the highest server rate whose p99 stays within --latency-bound-ms",
        "--find-max-qps",
        commands=("run",),
        group=SCENARIO_GROUP,
        action="true",
    ),
    Option(
        "run",
        "max_qps_steps",
        Whole(1, 100),
        10,
        "--find-max-qps: at most N server runs",
        "--max-qps-steps",
        metavar="N",
        commands=("run",),
        group=SCENARIO_GROUP,
    ),
    Option(
        "run",
        "mlperf",
        Choice("loadgen", "submission"),
        help="judge the scenario by MLPerf's run lengths: loadgen (LoadGen's defaults: at least 10 s and "
        "100 queries) or submission (mlperf.conf: 600 s; multi-stream 662 queries, offline 24576 samples); "
        "--duration, --min-duration and --min-queries are raised to them",
        flag="--mlperf",
        metavar="LENGTHS",
        commands=("run",),
        group=SCENARIO_GROUP,
        default_help="edgebench's: --min-duration and --min-queries, not an MLPerf verdict",
    ),
    Option(
        "run",
        "seed",
        Whole(0),
        0,
        "seed of the server arrivals and synthetic samples",
        "--seed",
        commands=("run",),
        group=SCENARIO_GROUP,
    ),
)

_SWEEP: tuple[Option, ...] = (
    # -- sweep: `edgebench sweep` (SweepOptions) --------------------------------------------------
    Option("sweep", "model", Text(), REQUIRED, "path to a .tflite model", "--model", commands=("sweep",)),
    Option(
        "sweep",
        "batch",
        Grid(MAX_BATCH),
        [1],
        "batch sizes, e.g. 1,2,4, or 1..64 for the powers of two",
        "--batch",
        commands=("sweep",),
    ),
    Option(
        "sweep",
        "threads",
        Grid(MAX_THREADS),
        help="interpreter thread counts, e.g. 1,2,4",
        flag="--threads",
        commands=("sweep",),
        default_help=threads.DEFAULT_HELP,
    ),
    Option(
        "sweep",
        "instances",
        Grid(MAX_INSTANCES),
        [1],
        "concurrent interpreters, e.g. 1,2",
        "--instances",
        commands=("sweep",),
    ),
    Option(
        "sweep",
        "processes",
        Bool(),
        False,
        "run the instances as processes, not as threads in this process",
        "--processes",
        commands=("sweep",),
        action="true",
    ),
    Option(
        "sweep",
        "duration_s",
        Number(0, above=True),
        help="measure each point this long",
        flag="--duration",
        metavar="SEC",
        commands=("sweep",),
        default_help=f"{DEFAULT_SWEEP_DURATION_S:g} s unless --frames",
    ),
    Option(
        "sweep",
        "frames",
        Whole(1),
        help="measure N batches per instance at each point instead of --duration",
        flag="--frames",
        metavar="N",
        commands=("sweep",),
    ),
    Option(
        "sweep",
        "warmup",
        Whole(0),
        3,
        "warmup batches per instance before each point",
        "--warmup",
        metavar="N",
        commands=("sweep",),
    ),
    Option(
        "sweep",
        "source",
        Text(),
        "synthetic",
        "samples (image models): synthetic, an image, a folder of images or a video",
        "--source",
        commands=("sweep",),
    ),
    *_also(
        _RUN,
        "sweep",
        "sweep",
        "runtime",
        "xnnpack",
        "delegate",
        "delegate_options",
        "cpu_fallback",
        "accelerator",
        "dispatch_library",
        "compiler_plugin",
        "require_full_delegation",
        "accelerator_options",
    ),
    *_also(_RUN, "sweep", None, "normalization", "resize", "color"),
    Option(
        "sweep",
        "min_frames",
        Whole(0),
        20,
        "fewer batches at a point make it INVALID",
        "--min-frames",
        metavar="N",
        commands=("sweep",),
    ),
    Option(
        "sweep",
        "min_duration_s",
        Number(0),
        0.5,
        "a shorter point is INVALID",
        "--min-duration",
        metavar="SEC",
        commands=("sweep",),
    ),
    Option("sweep", "seed", Whole(0), 0, "seed of the synthetic samples"),
)

_TUNE: tuple[Option, ...] = (
    # -- tune: `edgebench tune` (agent/measure/tune.py; its search space is tune.DIMENSIONS) -------
    Option("tune", "model", Text(), REQUIRED, "path to a .tflite model", "--model", commands=("tune",)),
    Option(
        "tune",
        "latency_bound_ms",
        Number(0, above=True),
        REQUIRED,
        "the p99 of a batch's latency the configuration must hold",
        "--latency-bound-ms",
        metavar="MS",
        commands=("tune",),
    ),
    Option(
        "tune",
        "objective",
        Choice("throughput", "latency", "energy"),
        "throughput",
        "what the best configuration under the bound maximizes: items/s, or minimizes: p99, mJ per item",
        "--objective",
        commands=("tune",),
    ),
    Option(
        "tune",
        "budget_s",
        Number(0, above=True),
        300.0,
        "stop measuring new configurations after this long (the leaders' re-measurement comes after)",
        "--budget-s",
        metavar="SEC",
        commands=("tune",),
    ),
    Option(
        "tune", "max_batch", Whole(1, MAX_BATCH), 8, "the largest batch size tried", "--max-batch", commands=("tune",)
    ),
    *_also(_RUN, "tune", "tune", "runtime", "delegate", "delegate_options", "cpu_fallback"),
    *_also(_RUN, "tune", None, "normalization", "resize", "color"),
    Option(
        CLI,
        "write_config",
        Text(),
        help="write the winner as the run: section of an agent config here",
        flag="--write-config",
        metavar="FILE",
        commands=("tune",),
    ),
)

_PROBES: tuple[Option, ...] = (
    # -- probes: power, thermal and system around a run (ProbeOptions); a sweep's energy per item --
    Option(
        "probes",
        "enabled",
        Bool(),
        True,
        "sample nothing (no power, thermal or system sections)",
        "--no-probes",
        commands=("run",),
        group=PROBES_GROUP,
        action="false",
    ),
    Option(
        "probes",
        "sample_hz",
        Number(0, 1000, above=True),
        10.0,
        "probe sampling rate",
        "--sample-hz",
        commands=("run", "sweep"),
        group=PROBES_GROUP,
    ),
    Option(
        "probes",
        "power",
        Text(),
        "auto",
        "power source: auto, none, jetson, tegrastats, rpi-pmic, rapl, hwmon[:NAME], "
        "cmd:COMMAND (prints watts), serial:DEVICE[:um24c|um25c|um34c]",
        "--power",
        metavar="SOURCE",
        commands=("run", "sweep"),
        group=PROBES_GROUP,
    ),
    Option(
        "probes",
        "idle_baseline_s",
        Number(0),
        2.0,
        "idle power measured before the run, 0 for none",
        "--idle-baseline-s",
        commands=("run",),
        group=PROBES_GROUP,
    ),
    Option(
        "probes",
        "cool_below_c",
        Number(),
        help="first wait until the board is below C degrees Celsius",
        flag="--cool-below",
        metavar="C",
        commands=("run",),
        group=PROBES_GROUP,
    ),
    Option("probes", "cool_timeout_s", Number(0, above=True), 600.0, "give up waiting to cool after this long"),
    Option(
        "probes",
        "soak",
        Bool(),
        False,
        "first run the model until the temperature is steady",
        "--soak",
        commands=("run",),
        group=PROBES_GROUP,
        action="true",
    ),
    Option("probes", "soak_max_s", Number(0, above=True), 600.0, "soak at most this long"),
    Option("probes", "soak_window_s", Number(0, above=True), 30.0, "steady: over the last this many seconds"),
    Option("probes", "soak_steady_c", Number(0, above=True), 0.5, "steady: varied by at most this many degrees"),
)

_DEVICE: tuple[Option, ...] = (
    # -- the top level ------------------------------------------------------------------------------
    Option(
        TOP,
        "device_id",
        DeviceId(),
        help="this device's id on the fleet",
        flag="--device-id",
        commands=("run", "sweep", "agent"),
        default_help="the config's device_id, else the hostname",
    ),
    # -- mqtt: the broker (agent/wire/transport.py MqttSettings holds the defaults) --------------
    Option(
        "mqtt",
        "url",
        Text(),
        help="publish to this broker, e.g. mqtt://collector.local:1883",
        flag="--mqtt",
        metavar="URL",
        commands=("run", "sweep", "agent"),
    ),
    Option("mqtt", "username", Text(), help="MQTT username (the device id with the shipped ACL)"),
    Option("mqtt", "password_file", Text(), help="file holding the MQTT password"),
    Option("mqtt", "password_env", Text(), help="environment variable holding the MQTT password"),
    Option("mqtt", "ca", Text(), help="CA certificate that signed the broker's"),
    Option("mqtt", "cert", Text(), help="client certificate"),
    Option("mqtt", "key", Text(), help="client certificate's key"),
    Option(
        "mqtt",
        "protocol",
        Choice("auto", "5", "3.1.1"),
        _MQTT["protocol"],
        "MQTT version",
        "--mqtt-protocol",
        commands=("run", "sweep"),
        default_help="5, falling back to 3.1.1",
    ),
    Option("mqtt", "client_id", Text(), help="MQTT client id"),
    Option("mqtt", "keepalive_s", Whole(5, 3600), _MQTT["keepalive_s"], "MQTT keepalive"),
    Option("mqtt", "reconnect_min_s", Number(0, above=True), _MQTT["reconnect_min_s"], "first reconnect backoff"),
    Option("mqtt", "reconnect_max_s", Number(0, above=True), _MQTT["reconnect_max_s"], "backoff ceiling"),
    # -- outbox: results wait here until a collector confirms them ----------------------------------
    Option("outbox", "path", Text(), help="the outbox database", default_help="in the state folder, per device"),
    Option("outbox", "max_mb", Number(0, above=True), 256.0, "bound on queued payloads"),
    Option("outbox", "synchronous", Choice("full", "normal"), "full", "fsync every stored message (full) or not"),
    Option(
        "outbox",
        "resend_s",
        Number(0, above=True),
        30.0,
        "send again what no collector confirmed within this many seconds",
    ),
    Option(
        "outbox",
        "confirm_wait_s",
        Number(0),
        10.0,
        "if no collector ever confirmed, after this many seconds the broker's acknowledgement is enough",
    ),
    Option(
        "outbox",
        "drain_wait_s",
        Number(0),
        15.0,
        "after the run, wait up to S seconds for a collector to confirm everything",
        "--mqtt-wait",
        metavar="S",
        commands=("run", "sweep"),
        command_defaults=(("agent", 10.0),),  # the service on stop (systemd waits for it)
    ),
    # -- the agent service -------------------------------------------------------------------------
    Option("telemetry", "interval_s", Number(0, above=True), 5.0, "telemetry every this many seconds"),
    Option("commands", "enabled", Bool(), True, "accept jobs from the collector"),
    Option("commands", "models_dir", Text(), help="remote jobs' models are resolved and kept inside this folder"),
    Option("job", "name", Text(), help="the job's name in logs"),
    Option("job", "every_s", Number(0, above=True), help="run the job again every this many seconds (else once)"),
    Option(
        "job",
        "tune",
        Bool(),
        False,
        "run edgebench tune's search instead of a benchmark: needs latency_bound_ms; objective, budget_s and "
        "max_batch as in the tune section",
    ),
)

_CLI: tuple[Option, ...] = (
    # -- flags of one invocation (no config key) -----------------------------------------------------
    Option(
        CLI,
        "config",
        Text(),
        help="YAML config: its sections hold these settings; flags override them",
        flag="--config",
        metavar="FILE",
        commands=("run", "sweep", "tune", "agent"),
        required=("agent",),
    ),
    Option(
        CLI,
        "json",
        Text(),
        help="write the result document here (compare: the comparison)",
        flag="--json",
        metavar="OUT",
        commands=("run", "sweep", "tune", "compare"),
    ),
    Option(
        CLI,
        "csv",
        Text(),
        help="write a CSV here: for a run one row per frame and stage with timestamps, for a sweep one row per point",
        flag="--csv",
        metavar="OUT",
        commands=("run", "sweep"),
    ),
    Option(
        CLI,
        "plot",
        Text(),
        help="write PNG pictures here: a run's latency over time and per stage, a sweep's or a scenario's curves "
        "(needs the plot extra: pip install 'edgebench[plot]')",
        flag="--plot",
        metavar="DIR",
        commands=("run", "sweep"),
    ),
    Option(
        CLI,
        "strict",
        Bool(),
        False,
        "exit 8 when the result is INVALID or missed its latency bound (a sweep: any point not ok and VALID), "
        "after writing and publishing it: for CI gates",
        "--strict",
        commands=("run", "sweep"),
        action="true",
    ),
    Option(CLI, "run_id", Text(), help="the run's id (for tools)", flag="--run-id", commands=("run",), hidden=True),
    # -- report, compare, schema: reading documents back (agent/cli/local.py) ----------------------
    Option(
        CLI,
        "html",
        Text(),
        help="write the report as one HTML file here (charts inline, nothing fetched, readable on a phone)",
        flag="--html",
        metavar="OUT",
        commands=("report",),
    ),
    Option(
        CLI,
        "md",
        Bool(),
        False,
        "print Markdown (for a ticket or a pull request) instead of the terminal text",
        "--md",
        commands=("report", "compare"),
        action="true",
    ),
    Option(
        CLI,
        "stage",
        Choice(*protocol.STAGES),
        "e2e",
        "the stage whose p50 and p99 are judged besides inference",
        "--stage",
        commands=("compare",),
    ),
    Option(
        CLI,
        "strict",
        Bool(),
        False,
        "exit 1 when a figure is worse beyond noise (for CI); refuse runs without their per-frame CSV",
        "--strict",
        commands=("compare",),
        action="true",
    ),
    Option(
        CLI,
        "write",
        Text(),
        help="write every schema file into this folder (and remove stale ones)",
        flag="--write",
        metavar="DIR",
        commands=("schema",),
    ),
    Option(
        CLI,
        "quiet",
        Bool(),
        False,
        "print nothing but errors",
        "--quiet",
        short="-q",
        commands=("run", "sweep", "tune"),
        action="true",
    ),
)

OPTIONS: tuple[Option, ...] = (*_RUN, *_SWEEP, *_TUNE, *_PROBES, *_DEVICE, *_CLI)

#: config sections, in the order the file is usually written
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(o.section for o in OPTIONS if o.section not in (CLI, TOP, "job")))


def options(section: str) -> Iterator[Option]:
    """The options of one section, in table order."""
    return (o for o in OPTIONS if o.section == section)


def for_command(command: str) -> Iterator[Option]:
    """The options whose flag this command takes, in table order."""
    return (o for o in OPTIONS if o.flag is not None and command in o.commands)


def get(section: str, key: str) -> Option:
    for o in OPTIONS:
        if o.section == section and o.key == key:
            return o
    raise KeyError(f"{section}.{key}")


def default(section: str, key: str, command: str | None = None) -> Any:
    """An option's default (for ``command``, when it has its own)."""
    o = get(section, key)
    return dict(o.command_defaults).get(command, o.default)


def section_values(cfg: dict[str, Any], section: str, command: str | None = None) -> dict[str, Any]:
    """A validated config's section with every unset key at its default."""
    given = cfg.get(section) or {}
    return {o.key: given.get(o.key, default(section, o.key, command)) for o in options(section)}


def default_phrase(o: Option) -> str | None:
    """What the help says about the default: ``(default 5)``, ``(default auto: ...)``,
    ``(default: the runtime's)``; None when there is nothing to say (a switch, no default)."""
    if o.action in ("true", "false"):
        return None
    if o.default not in (None, REQUIRED) and o.default != {}:
        value = ",".join(map(str, o.default)) if isinstance(o.default, list) else _show(o.default)
        return f"(default {value}: {o.default_help})" if o.default_help else f"(default {value})"
    return f"(default: {o.default_help})" if o.default_help else None


def _show(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def help_text(o: Option) -> str:
    """The flag's help: the table's text and its default phrase."""
    phrase = default_phrase(o)
    return f"{o.help} {phrase}" if phrase else o.help
