#!/bin/sh
# Install, configure and start the edgebench agent as a systemd service.
#
#   sudo deploy/install-agent.sh --broker mqtts://broker.example:8883 \
#        --password-file pi-kitchen.password --ca ca.crt [--device-id pi-kitchen]
#   sudo deploy/install-agent.sh --uninstall
#
# Raspberry Pi OS (Bookworm, Trixie; arm64; and Bookworm 32-bit, armhf, under a
# 32-bit or a 64-bit kernel), JetPack (Ubuntu 20.04/22.04/24.04; arm64),
# Debian/Ubuntu x86-64. Idempotent: run it again to upgrade or to change
# settings (settings not given again are kept). `--help` lists every option.
#
# What it does, in order: installs python3/python3-venv with apt when missing;
# creates the system user `edgebench` (groups video, render, gpio, i2c, spi,
# plugdev where they exist); makes the virtual environment /opt/edgebench/venv
# and installs the agent into it (ai-edge-litert, or tflite-runtime with
# --runtime tflite; on a 32-bit ARM userland, told by dpkg since Python says
# aarch64 under a 64-bit kernel: Debian's numpy, OpenCV, psutil and PyYAML seen
# through the venv, tflite-runtime's wheel, nothing compiled); a pip failure is
# one line naming the package without a wheel and what to do; copies the bundled models to /opt/edgebench/models; writes
# /etc/edgebench/agent.yaml (+ mqtt-password, ca.crt); checks the agent measures
# a bundled model here; installs edgebench-agent.service and starts it (when
# systemd runs; in a chroot it is enabled for the next boot instead).
set -eu

PROG=install-agent.sh
HERE=$(cd "$(dirname "$0")" && pwd)

die() { echo "$PROG: error: $*" >&2; exit 1; }
say() { [ "$QUIET" = 1 ] || echo "$PROG: $*"; }

usage() {
    cat <<'EOF'
usage: install-agent.sh [OPTIONS]          install or upgrade, configure, start
       install-agent.sh --uninstall        remove the service, user, files, state

Connection (each also from the environment variable shown):
  --broker URL          mqtt://HOST:1883 or mqtts://HOST:8883   (EDGEBENCH_BROKER)
  --device-id ID        this board's id on the fleet             (EDGEBENCH_DEVICE_ID)
                        default: eb- and 12 hex digits derived from /etc/machine-id
  --username NAME       MQTT user name (default: the device id)  (EDGEBENCH_MQTT_USERNAME)
  --password-file FILE  MQTT password, copied to /etc/edgebench/mqtt-password
                        (EDGEBENCH_MQTT_PASSWORD_FILE; or the password itself in
                        EDGEBENCH_MQTT_PASSWORD, never on the command line)
  --ca FILE             CA certificate of the broker's TLS listener (EDGEBENCH_CA)

What to install:
  --from SPEC           a wheel, a checkout, or a pip requirement (EDGEBENCH_FROM)
                        default: the checkout this script is in, else `edgebench`
  --runtime NAME        litert (ai-edge-litert, default) or tflite (tflite-runtime
                        2.14 with numpy<2: Python 3.8-3.11 only; always on a 32-bit
                        ARM userland, armhf/armel) (EDGEBENCH_RUNTIME)
  --python PATH         interpreter for the venv (default: python3 if >= 3.10, else
                        the newest python3.1x found)
  --no-ppa              on Ubuntu 20.04, do not add the deadsnakes PPA for Python 3.10

Scheduled benchmark (the agent also runs jobs sent by the collector):
  --every SEC           run the job every SEC seconds; 0: no scheduled job (default 3600)
  --job-model PATH      default: the bundled shapes_int8.tflite
  --job-source SRC      synthetic (default), camera:0, gst:..., a file
  --job-frames N        default 300

Behaviour:
  --no-start            install and enable, but do not start the service now
  --no-check            skip the post-install benchmark of a bundled model
  --root DIR            write the files under DIR only (config, unit, secrets);
                        no apt, user, venv, pip or systemctl: for tests and images
  --dry-run             print what would be done, change nothing
  --uninstall           stop and remove the service, /opt/edgebench, /etc/edgebench,
                        /var/lib/edgebench and the user
  -q, --quiet           print errors only
  -h, --help            this text
EOF
}

# ---------------------------------------------------------------- arguments
BROKER=${EDGEBENCH_BROKER:-}
DEVICE_ID=${EDGEBENCH_DEVICE_ID:-}
MQTT_USERNAME=${EDGEBENCH_MQTT_USERNAME:-}
PASSWORD_FILE=${EDGEBENCH_MQTT_PASSWORD_FILE:-}
CA_FILE=${EDGEBENCH_CA:-}
FROM=${EDGEBENCH_FROM:-}
RUNTIME=${EDGEBENCH_RUNTIME:-}
PYTHON=""
NO_PPA=0
EVERY=""
JOB_MODEL=""
JOB_SOURCE=""
JOB_FRAMES=""
START=1
CHECK=1
ROOT=""
DRY=0
UNINSTALL=0
QUIET=0

need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --broker) need_value "$@"; BROKER=$2; shift 2 ;;
        --device-id) need_value "$@"; DEVICE_ID=$2; shift 2 ;;
        --username) need_value "$@"; MQTT_USERNAME=$2; shift 2 ;;
        --password-file) need_value "$@"; PASSWORD_FILE=$2; shift 2 ;;
        --ca) need_value "$@"; CA_FILE=$2; shift 2 ;;
        --from) need_value "$@"; FROM=$2; shift 2 ;;
        --runtime) need_value "$@"; RUNTIME=$2; shift 2 ;;
        --python) need_value "$@"; PYTHON=$2; shift 2 ;;
        --no-ppa) NO_PPA=1; shift ;;
        --every) need_value "$@"; EVERY=$2; shift 2 ;;
        --job-model) need_value "$@"; JOB_MODEL=$2; shift 2 ;;
        --job-source) need_value "$@"; JOB_SOURCE=$2; shift 2 ;;
        --job-frames) need_value "$@"; JOB_FRAMES=$2; shift 2 ;;
        --no-start) START=0; shift ;;
        --no-check) CHECK=0; shift ;;
        --root) need_value "$@"; ROOT=$2; shift 2 ;;
        --dry-run) DRY=1; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        -q|--quiet) QUIET=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done

# ---------------------------------------------------------------- layout
SVC_USER=edgebench
UNIT_NAME=edgebench-agent.service
if [ -n "$ROOT" ]; then
    case "$ROOT" in /*) ;; *) ROOT=$(pwd)/$ROOT ;; esac
    ROOT=${ROOT%/}
fi
OPT=$ROOT/opt/edgebench
VENV=$OPT/venv
MODELS=$OPT/models
ETC=$ROOT/etc/edgebench
STATE=$ROOT/var/lib/edgebench
UNIT=$ROOT/etc/systemd/system/$UNIT_NAME
CONFIG=$ETC/agent.yaml
SETTINGS=$ETC/install.env
LOG=$ROOT/var/log/edgebench-install.log
# the paths as the service sees them (without --root)
R_VENV=/opt/edgebench/venv
R_MODELS=/opt/edgebench/models
R_ETC=/etc/edgebench

# Run a command, its output going to the install log; on failure one line.
run() {
    what=$1
    shift
    if [ "$DRY" = 1 ]; then
        echo "would run: $*"
        return 0
    fi
    mkdir -p "$(dirname "$LOG")"
    echo "+ $*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        last=$(grep -v '^+ ' "$LOG" | grep -v '^[[:space:]]*$' | tail -n 1 | cut -c1-200)
        die "$what failed: ${last:-no output} (full output in $LOG)"
    fi
}

# On a 32-bit ARM userland (armhf, armel): Debian's builds of these (PyPI has no
# 32-bit ARM wheels of them), and pip installs the agent's other requirements less
# NOT_FROM_PIP (ai-edge-litert: no 32-bit wheel), wheels only.
DEBIAN_PY_PACKAGES="python3-numpy python3-opencv python3-psutil python3-yaml"
NOT_FROM_PIP="numpy opencv-python-headless psutil pyyaml ai-edge-litert"
# prints the installed agent's requirements (and those of the extra argv[2]) less argv[1]
PIP_ONLY_REQUIREMENTS='
import re, sys
from importlib.metadata import requires
skip, extra = set(sys.argv[1].split()), sys.argv[2]
for r in requires("edgebench") or []:
    spec, _, marker = r.partition(";")
    spec = spec.replace(" ", "")
    name = re.split(r"[^A-Za-z0-9._-]", spec, maxsplit=1)[0].lower().replace("_", "-")
    if name not in skip and ("extra" not in marker or ("\"%s\"" % extra) in marker):
        print(spec)'
MACH=$(uname -m)
PYV=""
HAVE_CC=0
for c in cc gcc clang; do command -v "$c" >/dev/null 2>&1 && HAVE_CC=1; done

# >>> pip_cause: why pip failed, in one line (tests/deploy runs these functions)
# pip_cause LOG FIRST_LINE: the cause in the log from FIRST_LINE on, and what to do.
pip_cause() {
    seg=$(sed -n "$2,\$p" "$1")
    where="$MACH/Python ${PYV:-?}"
    # a requirement with no wheel here (and no source archive pip was allowed to build)
    name=$(printf '%s\n' "$seg" | sed -nE 's/.*No matching distribution found for ([A-Za-z0-9._-]+).*/\1/p' | tail -n 1)
    if [ -n "$name" ]; then
        echo "no wheel of $name for $where on the package index: $(pip_advice "$name")"
        return 0
    fi
    # pip fell back to a source archive and could not build it
    name=$(printf '%s\n' "$seg" | sed -nE -e 's/.*Failed to build ([A-Za-z0-9._-]+).*/\1/p' \
        -e 's/.*Failed building wheel for ([A-Za-z0-9._-]+).*/\1/p' | tail -n 1)
    if [ -z "$name" ] && printf '%s\n' "$seg" | grep -Eq 'metadata-generation-failed|subprocess-exited-with-error'; then
        name=$(printf '%s\n' "$seg" | sed -nE 's#.*(Downloading|Using cached|Processing) ([^ ]*/)?([A-Za-z0-9_.-]+)-[0-9][^ /]*\.(tar\.gz|zip).*#\3#p' | tail -n 1)
    fi
    if [ -n "$name" ]; then
        if [ "$HAVE_CC" = 1 ]; then
            echo "no wheel of $name for $where, and building it from source failed: $(pip_advice "$name")"
        else
            echo "no wheel of $name for $where and no compiler (pip tried to build it from source): $(pip_advice "$name")"
        fi
        return 0
    fi
    last=$(printf '%s\n' "$seg" | grep -v '^+ ' | grep -v '^[[:space:]]*$' | tail -n 1 | cut -c1-200)
    echo "${last:-no output}"
}
pip_advice() { # what to do when NAME has no wheel here
    case "$(echo "$1" | tr 'A-Z_' 'a-z-')" in
        ai-edge-litert) echo "it has wheels for 64-bit userlands (aarch64, x86-64) only: use --runtime tflite, or a 64-bit OS image" ;;
        tflite-runtime) echo "tflite-runtime 2.14 has wheels for Python 3.8-3.11 on x86-64, aarch64 and armv7l: use --python python3.11, or the default runtime" ;;
        numpy) echo "install Debian's python3-numpy (this script does on armhf), a wheel index that has it (piwheels on Raspberry Pi OS), or a compiler (apt-get install build-essential python3-dev) and rerun" ;;
        opencv-python-headless|opencv-python) echo "install Debian's python3-opencv (this script does on armhf), or a wheel index that has it (piwheels on Raspberry Pi OS), and rerun" ;;
        psutil) echo "install Debian's python3-psutil (this script does on armhf), or a compiler (apt-get install build-essential python3-dev), and rerun" ;;
        pyyaml) echo "install Debian's python3-yaml (this script does on armhf), or a compiler (apt-get install build-essential python3-dev), and rerun" ;;
        *) echo "install a compiler (apt-get install build-essential python3-dev) or find a wheel of it for this board, and rerun" ;;
    esac
}
# <<< pip_cause

# pip_install WHAT ARGS...: pip install ARGS in the venv, its output to the install
# log; on failure one line naming the cause, the log for the details.
pip_install() {
    what=$1
    shift
    if [ "$DRY" = 1 ]; then
        echo "would run: $VENV/bin/python -m pip install $*"
        return 0
    fi
    mkdir -p "$(dirname "$LOG")"
    first=1
    [ ! -f "$LOG" ] || first=$(($(wc -l <"$LOG") + 1))
    echo "+ $VENV/bin/python -m pip install $*" >>"$LOG"
    if ! "$VENV/bin/python" -m pip install "$@" >>"$LOG" 2>&1; then
        die "$what failed: $(pip_cause "$LOG" "$first") (full output in $LOG)"
    fi
}

# Write stdin to a file (mode, owner group) unless --dry-run.
put() {
    dest=$1 mode=$2 group=${3:-}
    if [ "$DRY" = 1 ]; then
        echo "would write $dest (mode $mode)"
        cat >/dev/null
        return 0
    fi
    mkdir -p "$(dirname "$dest")"
    tmp="$dest.tmp.$$"
    cat >"$tmp"
    chmod "$mode" "$tmp"
    if [ -n "$group" ] && [ -z "$ROOT" ]; then chgrp "$group" "$tmp"; fi
    mv -f "$tmp" "$dest"
}

have() { command -v "$1" >/dev/null 2>&1; }
systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

if [ "$DRY" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
    die "run as root: sudo $0 ... (or --dry-run / --root DIR to try it without)"
fi

# ---------------------------------------------------------------- uninstall
if [ "$UNINSTALL" = 1 ]; then
    if [ -f "$UNIT" ] || [ -L "$ROOT/etc/systemd/system/multi-user.target.wants/$UNIT_NAME" ]; then
        if systemd_running; then
            run "stopping the service" systemctl disable --now "$UNIT_NAME"
        elif [ -z "$ROOT" ] && have systemctl; then
            run "disabling the service" systemctl disable "$UNIT_NAME"
        fi
        run "removing the unit" rm -f "$UNIT" "$ROOT/etc/systemd/system/multi-user.target.wants/$UNIT_NAME"
        if systemd_running; then run "reloading systemd" systemctl daemon-reload; fi
    fi
    run "removing files" rm -rf "$OPT" "$ETC" "$STATE"
    if [ -z "$ROOT" ] && id "$SVC_USER" >/dev/null 2>&1; then
        run "removing the user $SVC_USER" userdel "$SVC_USER"
    fi
    run "removing the install log" rm -f "$LOG"
    say "removed the edgebench agent (service, user $SVC_USER, $OPT, $ETC, $STATE)"
    exit 0
fi

# ---------------------------------------------------------------- settings
# Settings of the previous install are the defaults for this one.
if [ -f "$SETTINGS" ]; then
    # shellcheck disable=SC1090
    . "$SETTINGS"
    BROKER=${BROKER:-${S_BROKER:-}}
    DEVICE_ID=${DEVICE_ID:-${S_DEVICE_ID:-}}
    MQTT_USERNAME=${MQTT_USERNAME:-${S_USERNAME:-}}
    FROM=${FROM:-${S_FROM:-}}
    RUNTIME=${RUNTIME:-${S_RUNTIME:-}}
    EVERY=${EVERY:-${S_EVERY:-}}
    JOB_MODEL=${JOB_MODEL:-${S_JOB_MODEL:-}}
    JOB_SOURCE=${JOB_SOURCE:-${S_JOB_SOURCE:-}}
    JOB_FRAMES=${JOB_FRAMES:-${S_JOB_FRAMES:-}}
fi
RUNTIME=${RUNTIME:-litert}
EVERY=${EVERY:-3600}
JOB_MODEL=${JOB_MODEL:-$R_MODELS/shapes_int8.tflite}
JOB_SOURCE=${JOB_SOURCE:-synthetic}
JOB_FRAMES=${JOB_FRAMES:-300}

# Values go into YAML in double quotes and into install.env in single quotes:
# refuse the characters that would need escaping there.
plain() {
    case "$2" in
        *[\'\"\\\`\$]*) die "$1 '$2' contains a quote, backslash, backtick or \$: not supported" ;;
    esac
    if [ "$(printf '%s' "$2" | wc -l)" -ne 0 ]; then die "$1 must be one line"; fi
}

case "$RUNTIME" in
    litert|ai-edge-litert) RUNTIME=litert ;;
    tflite|tflite-runtime) RUNTIME=tflite ;;
    *) die "--runtime '$RUNTIME': use litert (ai-edge-litert) or tflite (tflite-runtime)" ;;
esac
case "$EVERY" in ''|*[!0-9]*) die "--every '$EVERY': give whole seconds (0: no scheduled job)" ;; esac
case "$JOB_FRAMES" in ''|0|*[!0-9]*) die "--job-frames '$JOB_FRAMES': give a whole number >= 1" ;; esac
if [ -n "$BROKER" ]; then
    plain --broker "$BROKER"
    printf '%s' "$BROKER" | grep -Eq '^mqtts?://[^[:space:]/@]+(:[0-9]+)?/?$' ||
        die "--broker '$BROKER': use mqtt://HOST:PORT or mqtts://HOST:PORT (no credentials in the URL: use --password-file)"
fi
plain --job-model "$JOB_MODEL"
plain --job-source "$JOB_SOURCE"

# The device id: given, else derived from /etc/machine-id (stable across
# reinstalls and hostname changes; hashed so the machine id itself stays private).
if [ -z "$DEVICE_ID" ]; then
    mid=""
    for f in "$ROOT/etc/machine-id" "$ROOT/var/lib/dbus/machine-id"; do
        if [ -s "$f" ]; then mid=$(tr -d '[:space:]' <"$f"); fi
        case "$mid" in ''|uninitialized) mid="" ;; *) break ;; esac
    done
    [ -n "$mid" ] || die "no machine id in $ROOT/etc/machine-id to derive the device id from: give --device-id ID"
    DEVICE_ID=eb-$(printf 'edgebench:%s' "$mid" | sha256sum | cut -c1-12)
fi
printf '%s' "$DEVICE_ID" | grep -Eq '^[a-z0-9][a-z0-9_-]{0,63}$' ||
    die "--device-id '$DEVICE_ID': use 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit"
MQTT_USERNAME=${MQTT_USERNAME:-$DEVICE_ID}
plain --username "$MQTT_USERNAME"
if [ -n "$PASSWORD_FILE" ]; then
    [ -r "$PASSWORD_FILE" ] || die "--password-file $PASSWORD_FILE: cannot read it"
    [ -s "$PASSWORD_FILE" ] || die "--password-file $PASSWORD_FILE is empty"
fi
if [ -n "$CA_FILE" ]; then
    [ -r "$CA_FILE" ] || die "--ca $CA_FILE: cannot read it"
    grep -q 'BEGIN CERTIFICATE' "$CA_FILE" || die "--ca $CA_FILE is not a PEM certificate"
fi

# Where the agent comes from: a wheel, a checkout, or a requirement for pip.
if [ -z "$FROM" ]; then
    bundled=$(ls "$HERE"/../edgebench-*.whl 2>/dev/null | tail -n 1 || true)
    if [ -n "$bundled" ]; then  # a bundle from deploy/make-bundle.sh: the wheel next to deploy/
        FROM=$(cd "$(dirname "$bundled")" && pwd)/$(basename "$bundled")
    elif [ -f "$HERE/../pyproject.toml" ] && grep -q '^name = "edgebench"' "$HERE/../pyproject.toml"; then
        FROM=$(cd "$HERE/.." && pwd)
    else
        FROM=edgebench
    fi
fi
plain --from "$FROM"
case "$FROM" in
    http://*|https://*) ;;
    *.whl) [ -f "$FROM" ] || die "--from $FROM: no such wheel" ;;
    /*|./*|../*) [ -f "$FROM/pyproject.toml" ] || [ -f "$FROM/setup.py" ] || die "--from $FROM: not a checkout (no pyproject.toml)" ;;
esac
EXTRAS=""
[ "$RUNTIME" = tflite ] && EXTRAS="[tflite]"
# what pip is given: extras go after a path or name, before " @ URL" for a URL
spec() {
    case "$FROM" in
        http://*|https://*) echo "edgebench$EXTRAS @ $FROM" ;;
        *) echo "$FROM$EXTRAS" ;;
    esac
}

say "device id $DEVICE_ID, broker ${BROKER:-none}, runtime $RUNTIME, from $FROM${ROOT:+, files under $ROOT}"

# ---------------------------------------------------------------- system
pyver() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
py_ok() { # python >= 3.10
    v=$(pyver "$1") || return 1
    [ "${v%%.*}" -eq 3 ] && [ "${v#*.}" -ge 10 ]
}
find_python() {
    if [ -n "$PYTHON" ]; then
        have "$PYTHON" || [ -x "$PYTHON" ] || die "--python $PYTHON: not found"
        py_ok "$PYTHON" || die "--python $PYTHON is Python $(pyver "$PYTHON"): edgebench needs 3.10 or newer"
        echo "$PYTHON"
        return 0
    fi
    for p in python3 python3.13 python3.12 python3.11 python3.10; do
        if have "$p" && py_ok "$p"; then command -v "$p"; return 0; fi
    done
    return 1
}

if [ -z "$ROOT" ]; then
    if [ -r /etc/os-release ]; then
        # shellcheck disable=SC1091
        OS_ID=$(. /etc/os-release && echo "${ID:-}") OS_VER=$(. /etc/os-release && echo "${VERSION_ID:-}")
    else
        OS_ID="" OS_VER=""
    fi
    # the userland's architecture: a 32-bit Raspberry Pi OS often runs a 64-bit kernel
    # (Python then says platform_machine == 'aarch64', so pip's markers cannot tell):
    # dpkg knows what the userland runs, and picks the packaging below.
    ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
    USERLAND32=0
    case "$ARCH" in
        aarch64|arm64) MACH=aarch64 ;;
        x86_64|amd64) MACH=x86_64 ;;
        armv7l|armv6l|armhf|armel)
            MACH=armv7l USERLAND32=1
            [ "$RUNTIME" = tflite ] || say "ai-edge-litert has no wheel for a 32-bit ARM userland ($ARCH): using tflite-runtime"
            RUNTIME=tflite EXTRAS="[tflite]" ;;
        *) MACH=$ARCH; say "warning: $ARCH is not a tested architecture; continuing" ;;
    esac

    # Python 3.10+ with venv: apt where it is missing.
    APT_UPDATED=0
    apt_install() {
        have apt-get || die "cannot install $* here: no apt-get (install them by hand, then rerun)"
        if [ "$APT_UPDATED" = 0 ]; then
            run "apt-get update" env DEBIAN_FRONTEND=noninteractive apt-get update
            APT_UPDATED=1
        fi
        run "apt-get install $*" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
    }
    PY=$(find_python || true)
    if [ -z "$PY" ]; then
        say "installing python3 (apt)"
        apt_install python3 python3-venv ca-certificates
        PY=$(find_python || true)
    fi
    if [ -z "$PY" ] && [ "$OS_ID" = ubuntu ] && [ "$NO_PPA" = 0 ]; then
        say "Python $(pyver python3) is too old: installing python3.10 from the deadsnakes PPA (--no-ppa to refuse)"
        apt_install software-properties-common
        run "adding the deadsnakes PPA" add-apt-repository -y ppa:deadsnakes/ppa
        APT_UPDATED=0
        apt_install python3.10 python3.10-venv
        PY=$(find_python || true)
    fi
    [ -n "$PY" ] || die "Python 3.10 or newer is needed (this is $OS_ID $OS_VER with $(pyver python3 || echo no python3)): install python3.10+ and pass --python, or run the container image"
    PYV=$(pyver "$PY")
    if [ "$USERLAND32" = 1 ] && [ "${PYV#*.}" -gt 11 ]; then
        die "this 32-bit ARM userland ($ARCH) has Python $PYV, and its only TFLite runtime (tflite-runtime 2.14) has wheels for Python 3.8-3.11: install a 64-bit (arm64) OS image, or a 32-bit one with Python 3.11 (Raspberry Pi OS or Debian bookworm)"
    fi
    if [ "$RUNTIME" = tflite ] && [ "${PYV#*.}" -gt 11 ]; then
        die "tflite-runtime 2.14 has wheels for Python 3.8-3.11 only, this board has $PYV: use the default runtime (omit --runtime tflite) or --python python3.11"
    fi
    if [ "$USERLAND32" = 1 ]; then
        # PyPI has no 32-bit ARM wheels of numpy, OpenCV, psutil or PyYAML, and a board
        # has no compiler: Debian's builds of them, seen by the venv (system site packages)
        say "32-bit ARM userland: numpy, OpenCV, psutil and PyYAML from Debian (apt), tflite-runtime from its wheel"
        # shellcheck disable=SC2086
        apt_install $DEBIAN_PY_PACKAGES
    fi
    if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        say "installing python$PYV-venv (apt)"
        apt_install "python$PYV-venv"
    fi

    # The service user, in the device groups that exist here.
    if id "$SVC_USER" >/dev/null 2>&1; then
        say "user $SVC_USER exists"
    else
        say "creating system user $SVC_USER"
        run "creating the user $SVC_USER" useradd --system --user-group --home-dir /var/lib/edgebench \
            --no-create-home --shell /usr/sbin/nologin --comment "edgebench agent" "$SVC_USER"
    fi
    groups=""
    for g in video render gpio i2c spi plugdev dialout; do
        if getent group "$g" >/dev/null 2>&1; then groups="$groups${groups:+,}$g"; fi
    done
    if [ -n "$groups" ]; then
        run "adding $SVC_USER to $groups" usermod -a -G "$groups" "$SVC_USER"
        say "camera and device access: $SVC_USER is in $groups"
    fi

    # The virtual environment and the agent.
    if [ -x "$VENV/bin/python" ] && [ "$(pyver "$VENV/bin/python")" != "$PYV" ]; then
        say "the venv has Python $(pyver "$VENV/bin/python"), rebuilding it with $PYV"
        run "removing the old venv" rm -rf "$VENV"
    fi
    SYSTEM_SITE=""
    [ "$USERLAND32" = 0 ] || SYSTEM_SITE=--system-site-packages
    if [ -f "$VENV/pyvenv.cfg" ] && [ -n "$SYSTEM_SITE" ] && ! grep -Eq '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg"; then
        say "the venv does not see Debian's packages, rebuilding it with --system-site-packages"
        run "removing the old venv" rm -rf "$VENV"
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV (Python $PYV${SYSTEM_SITE:+, seeing the system site packages})"
        run "creating the venv" "$PY" -m venv $SYSTEM_SITE "$VENV"
    fi
    pipmajor=$("$VENV/bin/python" -m pip --version 2>/dev/null | awk '{split($2, v, "."); print v[1]}')
    if [ "${pipmajor:-0}" -lt 22 ]; then
        pip_install "upgrading pip" --upgrade "pip>=22"
    fi
    say "installing the agent from $FROM$EXTRAS (this takes a while on a small board)"
    if [ "$USERLAND32" = 0 ]; then
        pip_install "pip install $(spec)" --upgrade --no-cache-dir "$(spec)"
    else
        # the agent alone, then what it needs that Debian does not provide, as wheels only
        pip_install "pip install $FROM" --upgrade --no-cache-dir --no-deps "$FROM"
        if [ "$DRY" = 1 ]; then
            reqs="(the agent's requirements less $NOT_FROM_PIP)"
        else
            reqs=$("$VENV/bin/python" -c "$PIP_ONLY_REQUIREMENTS" "$NOT_FROM_PIP" tflite) ||
                die "cannot read the installed agent's requirements: $reqs"
        fi
        # shellcheck disable=SC2086
        pip_install "pip install $reqs" --no-cache-dir --only-binary :all: $reqs
        "$VENV/bin/python" -c 'import numpy, cv2, psutil, yaml, tflite_runtime.interpreter' >>"$LOG" 2>&1 || [ "$DRY" = 1 ] ||
            die "the venv cannot import numpy, cv2, psutil, yaml and tflite_runtime together (full output in $LOG)"
    fi
    [ -x "$VENV/bin/edgebench" ] || [ "$DRY" = 1 ] || die "pip installed no edgebench command in $VENV/bin (is $FROM the edgebench distribution?)"

    # The bundled models, where the service (and jobs) can read them.
    if [ "$DRY" = 1 ]; then
        echo "would copy the bundled models to $MODELS"
    else
        src=$("$VENV/bin/python" -c 'import os, edgebench.models as m; print(os.path.dirname(m.__file__))' 2>/dev/null) ||
            die "the installed agent has no bundled models package (reinstall from a complete wheel or checkout)"
        mkdir -p "$MODELS"
        find "$src" -maxdepth 1 -type f \( -name '*.tflite' -o -name '*.txt' -o -name '*.yaml' \) -exec cp -f {} "$MODELS/" \;
        if [ -d "$src/testsets" ]; then  # labelled images for accuracy runs
            rm -rf "$MODELS/testsets"
            cp -R "$src/testsets" "$MODELS/testsets"
        fi
        chmod -R a+rX "$OPT"
        say "bundled models in $MODELS: $(cd "$MODELS" && ls -- *.tflite | tr '\n' ' ' | sed 's/ $//')"
    fi
fi

# ---------------------------------------------------------------- files
[ "$DRY" = 1 ] || mkdir -p "$ETC" "$STATE"
if [ -n "$PASSWORD_FILE" ]; then
    put "$ETC/mqtt-password" 0640 "$SVC_USER" <"$PASSWORD_FILE"
elif [ -n "${EDGEBENCH_MQTT_PASSWORD:-}" ]; then
    printf '%s\n' "$EDGEBENCH_MQTT_PASSWORD" | put "$ETC/mqtt-password" 0640 "$SVC_USER"
fi
if [ -n "$CA_FILE" ]; then
    put "$ETC/ca.crt" 0644 <"$CA_FILE"
fi
HAS_PASSWORD=0
if [ -s "$ETC/mqtt-password" ] || { [ "$DRY" = 1 ] && { [ -n "$PASSWORD_FILE" ] || [ -n "${EDGEBENCH_MQTT_PASSWORD:-}" ]; }; }; then
    HAS_PASSWORD=1
fi
HAS_CA=0
if [ -s "$ETC/ca.crt" ] || { [ "$DRY" = 1 ] && [ -n "$CA_FILE" ]; }; then HAS_CA=1; fi

config_text() {
    echo "# Written by install-agent.sh; rerun it to change these settings (a file you"
    echo "# edited by hand is kept and the new one written next to it as agent.yaml.new)."
    echo "device_id: \"$DEVICE_ID\""
    if [ -n "$BROKER" ]; then
        echo "mqtt:"
        echo "  url: \"$BROKER\""
        if [ "$HAS_PASSWORD" = 1 ]; then
            echo "  username: \"$MQTT_USERNAME\""
            echo "  password_file: \"$R_ETC/mqtt-password\""
        fi
        case "$BROKER" in  # a CA only means something with TLS
            mqtts://*) if [ "$HAS_CA" = 1 ]; then echo "  ca: \"$R_ETC/ca.crt\""; fi ;;
        esac
    fi
    if [ "$RUNTIME" = tflite ]; then  # ai-edge-litert is installed too: name the one asked for
        echo "run:"
        echo "  runtime: tflite-runtime"
    fi
    if [ "$EVERY" -gt 0 ]; then
        echo "jobs:"
        echo "  - name: scheduled"
        echo "    model: \"$JOB_MODEL\""
        echo "    source: \"$JOB_SOURCE\""
        echo "    frames: $JOB_FRAMES"
        echo "    every_s: $EVERY"
        if [ "$RUNTIME" = tflite ]; then echo "    runtime: tflite-runtime"; fi
    fi
}

sum_of() { sha256sum "$1" | cut -d' ' -f1; }
NEW=$(config_text)
if [ "$DRY" = 1 ]; then
    echo "would write $CONFIG:"
    printf '%s\n' "$NEW" | sed 's/^/    /'
elif [ -f "$CONFIG" ] && [ -f "$ETC/.agent.yaml.sha256" ] && [ "$(sum_of "$CONFIG")" != "$(cat "$ETC/.agent.yaml.sha256")" ]; then
    printf '%s\n' "$NEW" | put "$CONFIG.new" 0640 "$SVC_USER"
    say "warning: $CONFIG was edited by hand: kept it; the settings given are in $CONFIG.new"
else
    printf '%s\n' "$NEW" | put "$CONFIG" 0640 "$SVC_USER"
    sum_of "$CONFIG" >"$ETC/.agent.yaml.sha256"
    say "wrote $CONFIG"
fi
{
    echo "# install-agent.sh settings, the defaults when it runs again"
    echo "S_BROKER='$BROKER'"
    echo "S_DEVICE_ID='$DEVICE_ID'"
    echo "S_USERNAME='$MQTT_USERNAME'"
    echo "S_FROM='$FROM'"
    echo "S_RUNTIME='$RUNTIME'"
    echo "S_EVERY='$EVERY'"
    echo "S_JOB_MODEL='$JOB_MODEL'"
    echo "S_JOB_SOURCE='$JOB_SOURCE'"
    echo "S_JOB_FRAMES='$JOB_FRAMES'"
} | put "$SETTINGS" 0600

if [ -z "$ROOT" ] && [ "$DRY" = 0 ]; then
    chown -R "$SVC_USER:$SVC_USER" "$STATE"
    chmod 0750 "$STATE" "$ETC"
    chgrp "$SVC_USER" "$ETC"
    # the config must load as the agent loads it: one line naming the key if not
    msg=$("$VENV/bin/python" -c '
import sys
from edgebench.agent.options.config import load
from edgebench.agent.errors import UserError
try:
    load(sys.argv[1])
except UserError as e:
    print(e); sys.exit(1)' "$CONFIG" 2>&1) || die "the written config does not load: $msg"
fi

# ---------------------------------------------------------------- check
if [ "$CHECK" = 1 ] && [ -z "$ROOT" ]; then
    if [ "$DRY" = 1 ]; then
        echo "would run a 2-second benchmark of $R_MODELS/shapes_int8.tflite as $SVC_USER"
    else
        out=$STATE/install-check.json
        say "checking: the agent benchmarks shapes_int8.tflite as user $SVC_USER"
        run "the post-install benchmark (edgebench run)" runuser -u "$SVC_USER" -- env HOME=/var/lib/edgebench \
            EDGEBENCH_STATE_DIR=/var/lib/edgebench "$VENV/bin/edgebench" run \
            --model "$MODELS/shapes_int8.tflite" --source synthetic --duration 2 --quiet --json "$out" \
            --runtime "$([ "$RUNTIME" = tflite ] && echo tflite-runtime || echo auto)"
        summary=$("$VENV/bin/python" -c '
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_ms"]["inference"]
print("%s frames, %.1f FPS, inference p50 %.2f ms on %s %s (%s)" % (
    r["frames"], r["fps"], lat["p50"], r["runtime"]["name"], r["runtime"]["version"], r["validity"]["verdict"] if isinstance(r.get("validity"), dict) else r.get("validity")))' "$out" 2>&1) ||
            die "the post-install benchmark wrote no readable result: $summary"
        say "check passed: $summary"
    fi
fi

# ---------------------------------------------------------------- service
[ -f "$HERE/systemd/$UNIT_NAME" ] || die "missing $HERE/systemd/$UNIT_NAME (run the script from a complete deploy/ folder)"
put "$UNIT" 0644 <"$HERE/systemd/$UNIT_NAME"

if [ -n "$ROOT" ]; then
    say "files written under $ROOT (no user, venv or service: --root)"
    exit 0
fi
if [ -z "$BROKER" ]; then
    say "no broker given: the service is installed but not enabled; rerun with --broker URL to start it"
    exit 0
fi
if systemd_running; then
    run "reloading systemd" systemctl daemon-reload
    run "enabling the service" systemctl enable "$UNIT_NAME"
    if [ "$START" = 1 ]; then
        run "starting the service" systemctl restart "$UNIT_NAME"
        say "started $UNIT_NAME: journalctl -u $UNIT_NAME -f shows its log"
    else
        say "enabled $UNIT_NAME (not started: --no-start)"
    fi
elif have systemctl; then
    run "enabling the service" systemctl enable "$UNIT_NAME"
    say "systemd is not running here (a chroot or container): $UNIT_NAME is enabled and starts at the next boot, not now"
else
    say "no systemd here: start the agent yourself: $R_VENV/bin/edgebench agent --config $R_ETC/agent.yaml"
fi
