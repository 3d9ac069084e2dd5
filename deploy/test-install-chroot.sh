#!/bin/sh
# Prove deploy/install-agent.sh on a clean Debian root file system:
#
#   sudo deploy/test-install-chroot.sh arm64     # under qemu-user emulation
#   sudo deploy/test-install-chroot.sh armhf     # 32-bit ARM userland (Raspberry Pi OS 32-bit)
#   sudo deploy/test-install-chroot.sh armhf --kernel64   # ... under a 64-bit kernel
#   sudo deploy/test-install-chroot.sh amd64     # native on an x86-64 host
#
# debootstraps Debian (bookworm by default) for ARCH into build/chroot-ARCH,
# builds this checkout's wheel, runs the install script in the chroot as root
# (apt installs python3-venv, pip installs the agent, the unit is enabled but not
# started since systemd is not PID 1 there), then checks: the installed
# `edgebench run` measures a bundled model as the service user on that
# architecture, and gets the right answers: the bundled shapes classifier on its
# labelled test images (top-1 >= 0.95), and, when $EDGEBENCH_REFDATA holds them,
# the real MobileNet V2 on real photos (grace_hopper.bmp: "military uniform",
# cat.bmp: "Egyptian cat"); it prints the top-1 and whether XNNPACK applied. Then:
# the installed unit passes `systemd-analyze verify` there, a
# second run changes nothing, and --uninstall leaves nothing behind. It prints
# what it proved and how long each step took. Slow (minutes; tens of minutes
# under emulation): not part of every CI run.
#
# Options: --suite NAME (bookworm), --mirror URL, --fresh (ignore the cached
# pristine root file system in build/), --keep (leave build/chroot-ARCH),
# --runtime tflite: install with tflite-runtime (EDGEBENCH_RUNTIME) instead of ai-edge-litert,
# --kernel64 (armhf only): a 64-bit kernel under the 32-bit userland, as on a Pi 4/400/5
# with 32-bit Raspberry Pi OS: Python there says platform_machine 'aarch64' (here a
# sitecustomize shim in the chroot makes os.uname() say so; python3 is installed
# first, as the OS image has it),
# --via ansible: install, re-run and uninstall with deploy/ansible/playbook.yml
# instead (over Ansible's chroot connection: needs ansible-playbook with the
# community.general collection, e.g. `pip install ansible` in its own venv, on
# PATH or named by $ANSIBLE_PLAYBOOK).
# Needs root, debootstrap, and for a foreign ARCH qemu-user-static with binfmt
# (apt-get install debootstrap qemu-user-static binfmt-support).
set -eu

PROG=test-install-chroot.sh
die() { echo "$PROG: error: $*" >&2; exit 1; }

ARCH=""
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
FRESH=0
KEEP=0
VIA=script
RUNTIME_ARG=""
KERNEL64=0
while [ $# -gt 0 ]; do
    case "$1" in
        --via) VIA=${2:?}; shift 2 ;;
        --runtime) RUNTIME_ARG=${2:?}; shift 2 ;;
        --kernel64) KERNEL64=1; shift ;;
        --suite) SUITE=${2:?}; shift 2 ;;
        --mirror) MIRROR=${2:?}; shift 2 ;;
        --fresh) FRESH=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,/^set -eu/{/^#/p}' "$0"; exit 0 ;;
        -*) die "unknown option '$1' (see --help)" ;;
        *) [ -z "$ARCH" ] || die "one ARCH only"; ARCH=$1; shift ;;
    esac
done
case "$ARCH" in
    arm64) QEMU=qemu-aarch64 UNAME=aarch64 CPU=cortex-a72 ;;  # a Raspberry Pi 4's core
    armhf) QEMU=qemu-arm UNAME=armv7l CPU=cortex-a15 ;;  # ARMv7 with NEON-VFPv4, as a Pi 4 runs 32-bit code
    amd64) QEMU=qemu-x86_64 UNAME=x86_64 CPU="" ;;
    "") die "usage: $PROG arm64|armhf|amd64 [--suite bookworm] [--kernel64] [--fresh] [--keep]" ;;
    *) die "ARCH '$ARCH': use arm64, armhf or amd64" ;;
esac
[ "$KERNEL64" = 0 ] || [ "$ARCH" = armhf ] || die "--kernel64 simulates a 64-bit kernel under a 32-bit userland: ARCH armhf only"
case "$VIA" in
    script) ;;
    ansible)
        ANSIBLE_PLAYBOOK=${ANSIBLE_PLAYBOOK:-$(command -v ansible-playbook || true)}
        [ -n "$ANSIBLE_PLAYBOOK" ] && [ -x "$ANSIBLE_PLAYBOOK" ] ||
            die "--via ansible: ansible-playbook not found (pip install ansible in a venv; ANSIBLE_PLAYBOOK=/path/to/ansible-playbook)"
        "$(dirname "$ANSIBLE_PLAYBOOK")/ansible-doc" -t connection community.general.chroot >/dev/null 2>&1 ||
            die "--via ansible: the community.general collection (chroot connection) is missing: pip install ansible, not only ansible-core"
        ;;
    *) die "--via '$VIA': script or ansible" ;;
esac

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$REPO/build
# one folder per proof, so that proofs of several architectures can run at once
NAME=$ARCH-$SUITE$([ "$KERNEL64" = 1 ] && echo -kernel64 || true)
ROOTFS=$BUILD/chroot-$NAME
[ "$VIA" = ansible ] && ROOTFS=$BUILD/chroot-ansible-$NAME
CACHE=$BUILD/rootfs-$SUITE-$ARCH.tar
LOG=$BUILD/test-install-chroot-$VIA-$NAME.log

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and chroot need it)"
command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install -y debootstrap"
HOST=$(uname -m)
if [ "$HOST" != "$UNAME" ]; then
    [ -d /proc/sys/fs/binfmt_misc ] || die "no binfmt_misc in this kernel: cannot emulate $ARCH"
    [ -f /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null ||
        die "cannot mount binfmt_misc (mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc)"
    if ! grep -qx enabled "/proc/sys/fs/binfmt_misc/$QEMU" 2>/dev/null; then
        command -v update-binfmts >/dev/null || die "$QEMU is not registered with binfmt: apt-get install -y qemu-user-static binfmt-support"
        update-binfmts --enable "$QEMU" >/dev/null 2>&1 || die "cannot enable $QEMU in binfmt_misc (update-binfmts --enable $QEMU)"
    fi
    grep -q '^flags:.*F' "/proc/sys/fs/binfmt_misc/$QEMU" ||
        die "$QEMU is registered without the F (fix binary) flag: use Debian's qemu-user-static, which sets it"
fi

mkdir -p "$BUILD"
: >"$LOG"
MOUNTED=""
cleanup_mounts() { # recursive binds: umount -R, lazily if busy
    for m in $MOUNTED; do
        umount -R "$m" 2>/dev/null || umount -R -l "$m" 2>/dev/null || echo "$PROG: warning: could not unmount $m" >&2
    done
    MOUNTED=""
}
BGPIDS=""
cleanup() {
    for p in $BGPIDS; do kill "$p" 2>/dev/null || true; done
    BGPIDS=""
    cleanup_mounts
    if [ "$KEEP" = 0 ] && [ -d "$ROOTFS" ]; then
        # never follow into a mount that is still there
        if ! grep -q " $ROOTFS/" /proc/mounts; then rm -rf "$ROOTFS"; fi
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T0=$(date +%s)
LAST=$T0
PROVED=""
step() { # step NAME: time since the previous step
    now=$(date +%s)
    PROVED="$PROVED
  [$(printf '%4d' $((now - LAST))) s] $1"
    LAST=$now
    echo "$PROG: $1 ($((now - T0)) s so far)"
}
logrun() { # logrun WHAT CMD...: output to the log; one line on failure
    what=$1
    shift
    echo "+ $*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        die "$what failed: $(grep -v '^+ ' "$LOG" | tail -n 1 | cut -c1-200) (full output in $LOG)"
    fi
}

# 1. a pristine root file system (cached as a tar after the first debootstrap)
if [ -d "$ROOTFS" ]; then
    grep -q " $ROOTFS/" /proc/mounts && die "$ROOTFS has mounts left from an earlier run: umount them first"
    rm -rf "$ROOTFS"
fi
mkdir -p "$ROOTFS"
if [ "$FRESH" = 0 ] && [ -f "$CACHE" ]; then
    logrun "unpacking $CACHE" tar -C "$ROOTFS" -xf "$CACHE"
    step "clean Debian $SUITE $ARCH root file system unpacked from the debootstrap cache $CACHE"
else
    echo "$PROG: debootstrap $SUITE $ARCH (minbase + systemd; several minutes, more under emulation)"
    logrun "debootstrap" debootstrap --arch="$ARCH" --variant=minbase --include=systemd,ca-certificates \
        "$SUITE" "$ROOTFS" "$MIRROR"
    logrun "caching the root file system" tar -C "$ROOTFS" -cf "$CACHE" .
    step "clean Debian $SUITE $ARCH root file system made by debootstrap (cached in $CACHE)"
fi

# 2. what a fresh board has: a machine id, name resolution, the site's CAs
head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ROOTFS/etc/machine-id"
echo >>"$ROOTFS/etc/machine-id"
cp -L /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
CHROOT_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8"
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    # a TLS-intercepting proxy between here and PyPI: the board trusts it too
    mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
    CHROOT_ENV="$CHROOT_ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt"
fi
[ -z "$RUNTIME_ARG" ] || CHROOT_ENV="$CHROOT_ENV EDGEBENCH_RUNTIME=$RUNTIME_ARG"
if [ "$HOST" != "$UNAME" ]; then
    # Emulate a Raspberry Pi 4's core (Cortex-A72, ARMv8.0: no dot product, no SVE;
    # for armhf a Cortex-A15, ARMv7 with NEON) rather than qemu's "max" CPU, so that
    # what runs here runs on a Pi 4 too. QEMU_CPU=cortex-a76 for a Pi 5's (arm64).
    QEMU_CPU=${QEMU_CPU:-$CPU}
    CHROOT_ENV="$CHROOT_ENV QEMU_CPU=$QEMU_CPU"
fi
for m in proc sys dev; do
    mkdir -p "$ROOTFS/$m"
done
mount_all() {
    mount -t proc proc "$ROOTFS/proc" && MOUNTED="$ROOTFS/proc $MOUNTED"
    if [ "$HOST" = "$UNAME" ]; then
        # Not under emulation: the host's /sys is this "board's" /sys. Under
        # qemu-user it would describe the host's x86 CPUs, and TFLite's CPU detection
        # (cpuinfo) crashes reading it: an emulation artefact, a real board has its own.
        mount --rbind /sys "$ROOTFS/sys" && mount --make-rslave "$ROOTFS/sys" && MOUNTED="$ROOTFS/sys $MOUNTED"
    fi
    if [ "$HOST" = "$UNAME" ]; then
        mount --rbind /dev "$ROOTFS/dev" && mount --make-rslave "$ROOTFS/dev" && MOUNTED="$ROOTFS/dev $MOUNTED"
    else
        # Under qemu-user the chroot gets a /dev of its own, never the host's: with the
        # host's bound in, update-ca-certificates in an emulated armhf root replaced the
        # host's /dev/null with a file (seen here with qemu 7.2), breaking every program on it.
        mount -t tmpfs -o mode=0755,nosuid devtmpfs-chroot "$ROOTFS/dev" && MOUNTED="$ROOTFS/dev $MOUNTED"
        for node in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
            # shellcheck disable=SC2086
            set -- $node
            mknod -m 0666 "$ROOTFS/dev/$1" c "$2" "$3"
        done
        mkdir -p "$ROOTFS/dev/pts" "$ROOTFS/dev/shm"
        mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOTFS/dev/pts" && ln -s pts/ptmx "$ROOTFS/dev/ptmx"
        ln -s /proc/self/fd "$ROOTFS/dev/fd"
        ln -s /proc/self/fd/0 "$ROOTFS/dev/stdin"
        ln -s /proc/self/fd/1 "$ROOTFS/dev/stdout"
        ln -s /proc/self/fd/2 "$ROOTFS/dev/stderr"
    fi
}
mount_all
in_chroot() { # in_chroot CMD...
    # shellcheck disable=SC2086
    chroot "$ROOTFS" /usr/bin/env -i $CHROOT_ENV "$@"
}
logrun "update-ca-certificates" in_chroot update-ca-certificates
if [ ! -c "$ROOTFS/dev/null" ]; then  # the qemu-user fault above, in the chroot's own /dev
    rm -f "$ROOTFS/dev/null" && mknod -m 0666 "$ROOTFS/dev/null" c 1 3
    echo "$PROG: warning: update-ca-certificates under $QEMU replaced the chroot's /dev/null with a file; made it again" >&2
fi
[ "$(in_chroot uname -m)" = "$UNAME" ] || die "the chroot does not run $UNAME binaries"
PYMACH=$UNAME  # what Python's platform.machine() says on the board
if [ "$KERNEL64" = 1 ]; then
    # 32-bit Raspberry Pi OS on a Pi 4/400/5 boots a 64-bit kernel: uname(2) says
    # aarch64 to 32-bit programs too, so Python's platform_machine (pip's markers) and
    # sysconfig's platform say aarch64. The image has python3; a sitecustomize makes
    # os.uname() say what that kernel says (qemu-user cannot change the machine name).
    logrun "apt-get install python3 in the chroot" in_chroot sh -c 'apt-get update && apt-get install -y --no-install-recommends python3'
    SC=$(in_chroot python3 -c 'import os, sitecustomize as s; print(os.path.realpath(s.__file__))' 2>/dev/null ||
        in_chroot python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib") + "/sitecustomize.py")')
    cat >>"$ROOTFS$SC" <<'EOF'

# test-install-chroot.sh --kernel64: a 64-bit kernel under this 32-bit userland
import os as _os

_uname32 = _os.uname


def _uname64():
    u = _uname32()
    return _os.uname_result((u.sysname, u.nodename, u.release, u.version, "aarch64"))


_os.uname = _uname64
EOF
    PYMACH=aarch64
    seen=$(in_chroot python3 -c 'import platform, struct, sysconfig; print(platform.machine(), sysconfig.get_platform(), 8 * struct.calcsize("P"))')
    [ "$seen" = "aarch64 linux-aarch64 32" ] || die "the 64-bit kernel simulation does not hold: Python says '$seen'"
    step "64-bit kernel simulated under the 32-bit userland: Python says platform.machine() aarch64, sysconfig linux-aarch64, 32-bit pointers ($SC)"
fi

# 3. this checkout as a bundle (wheel + deploy files, deploy/make-bundle.sh), copied onto the "board"
logrun "making the bundle" sh "$REPO/deploy/make-bundle.sh" "$BUILD/bundle-$NAME.tar.gz"
mkdir -p "$ROOTFS/root"
tar -C "$ROOTFS/root" -xzf "$BUILD/bundle-$NAME.tar.gz"
printf 'not-a-real-password\n' >"$ROOTFS/root/mqtt-password"
INSTALL=/root/edgebench-bundle/deploy/install-agent.sh
step "bundle $(cd "$ROOTFS/root/edgebench-bundle" && ls -- *.whl) made from this checkout and unpacked in the chroot"

# 4. the install, as a user would run it
OUT=$BUILD/install-$VIA-$NAME.out
if [ "$VIA" = ansible ]; then
    # what a Raspberry Pi OS or Ubuntu image already has and Ansible needs: python3
    logrun "apt-get install python3 in the chroot" in_chroot sh -c 'apt-get update && apt-get install -y --no-install-recommends python3'
    if ls "$ROOTFS"/usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
        # the site's proxy CA for pip, as a board behind that proxy would be set up
        printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$ROOTFS/etc/pip.conf"
    fi
    AB=$BUILD/ansible-$NAME
    rm -rf "$AB"
    mkdir -p "$AB"
    printf 'board-1\n' >"$AB/devices.txt"
    logrun "deploy/central/setup.sh" sh "$REPO/deploy/central/setup.sh" "$AB/devices.txt" broker.example.invalid \
        --out "$AB/secrets" --env "$AB/.env"
    cat >"$AB/inventory.yml" <<EOF
all:
  children:
    edgebench_boards:
      hosts:
        $ROOTFS:
          ansible_connection: community.general.chroot
          ansible_become: false
          ansible_python_interpreter: /usr/bin/python3
          edgebench_device_id: board-1
          edgebench_broker: mqtts://broker.example.invalid:8883
          edgebench_secrets_dir: $AB/secrets/devices
          edgebench_bundle: $BUILD/bundle-$NAME.tar.gz
EOF
    play() { # play OUT [extra args]: one ansible-playbook run
        out=$1
        shift
        if ! env PATH="$(dirname "$ANSIBLE_PLAYBOOK"):$PATH" ANSIBLE_NOCOLOR=1 \
                "$ANSIBLE_PLAYBOOK" -i "$AB/inventory.yml" "$REPO/deploy/ansible/playbook.yml" "$@" >"$out" 2>&1; then
            tail -n 30 "$out" >&2
            die "ansible-playbook failed (its output above; all of it in $out)"
        fi
    }
    echo "$PROG: running deploy/ansible/playbook.yml against the chroot"
    play "$OUT"
    sed -n '/PLAY RECAP/,$p' "$OUT" | sed 's/^/    | /'
    grep -q "check passed" "$OUT" || die "the playbook's install did not run the post-install check"
    ID=$(sed -n 's/^device_id: "\(.*\)"$/\1/p' "$ROOTFS/etc/edgebench/agent.yaml")
    [ "$ID" = board-1 ] || die "device id $ID is not the inventory's board-1"
    cmp -s "$ROOTFS/etc/edgebench/mqtt-password" "$AB/secrets/devices/board-1/mqtt-password" ||
        die "the board's password is not the one setup.sh made for board-1"
    cmp -s "$ROOTFS/etc/edgebench/ca.crt" "$AB/secrets/ca/ca.crt" || die "the board's CA is not the fleet CA"
    [ -L "$ROOTFS/etc/systemd/system/multi-user.target.wants/edgebench-agent.service" ] ||
        die "the unit was not enabled for the next boot"
    step "ansible-playbook installed the agent with the inventory's device id board-1 and setup.sh's password and CA for it; unit enabled"
else
    echo "$PROG: running install-agent.sh in the chroot (apt, user, venv, pip install, check)"
    if ! in_chroot sh "$INSTALL" --broker mqtts://broker.example.invalid:8883 --password-file /root/mqtt-password >"$OUT" 2>&1; then
        cat "$OUT" >&2
        die "install-agent.sh failed in the chroot (its output above; its log in $ROOTFS/var/log/edgebench-install.log)"
    fi
    sed 's/^/    | /' "$OUT"
    grep -q "check passed" "$OUT" || die "install-agent.sh did not run its post-install check"
    grep -q "systemd is not running here" "$OUT" || die "install-agent.sh did not notice that systemd is not PID 1"
    [ -L "$ROOTFS/etc/systemd/system/multi-user.target.wants/edgebench-agent.service" ] ||
        die "the unit was not enabled for the next boot"
    ID=$(sed -n 's/^device_id: "\(.*\)"$/\1/p' "$ROOTFS/etc/edgebench/agent.yaml")
    EXPECT=eb-$(printf 'edgebench:%s' "$(tr -d '[:space:]' <"$ROOTFS/etc/machine-id")" | sha256sum | cut -c1-12)
    [ "$ID" = "$EXPECT" ] || die "device id $ID is not the one derived from /etc/machine-id ($EXPECT)"
    step "install-agent.sh installed python3-venv, user edgebench, the venv and the agent; device id $ID from /etc/machine-id; unit enabled, not started (no systemd as PID 1)"

fi

# 5. the installed agent measures a bundled model on this architecture, as the service user
logrun "edgebench run in the chroot" in_chroot runuser -u edgebench -- env HOME=/var/lib/edgebench \
    EDGEBENCH_STATE_DIR=/var/lib/edgebench /opt/edgebench/venv/bin/edgebench run \
    --model /opt/edgebench/models/shapes_int8.tflite --source synthetic --duration 3 --quiet \
    --runtime "$([ "$RUNTIME_ARG" = tflite ] && echo tflite-runtime || echo auto)" \
    --json /var/lib/edgebench/proof.json
SUMMARY=$(in_chroot /opt/edgebench/venv/bin/python -c '
import json, platform
r = json.load(open("/var/lib/edgebench/proof.json"))
inf, e2e = r["latency_ms"]["inference"], r["latency_ms"]["e2e"]
print("machine %s, Python %s, %s %s: %d frames of %s, %.1f FPS, inference p50 %.2f ms p99 %.2f ms, e2e p50 %.2f ms, verdict %s" % (
    platform.machine(), platform.python_version(), r["runtime"]["name"], r["runtime"]["version"], r["frames"],
    r["model"]["name"], r["fps"], inf["p50"], inf["p99"], e2e["p50"], r["validity"]["verdict"]))')
case "$SUMMARY" in "machine $PYMACH,"*) ;; *) die "the benchmark did not run on $PYMACH: $SUMMARY" ;; esac
[ -d "$ROOTFS/opt/edgebench/models/testsets" ] || die "the bundled test images were not copied to /opt/edgebench/models"
step "installed edgebench run measured the bundled model as user edgebench: $SUMMARY"

# 5a. how heavy the installed agent is: the venv's size and its biggest packages, and
# how long `edgebench --help` takes to start here (median of 3; the host's load beside it)
SITE=$(ls -d "$ROOTFS"/opt/edgebench/venv/lib/python3*/site-packages)
BIG=$(cd "$SITE" && du -sm -- */ | sort -rn | head -n 3 | awk '{sub("/$", "", $2); printf "%s%s %d MB", (NR > 1 ? ", " : ""), $2, $1}')
HELP_MS=$(in_chroot /opt/edgebench/venv/bin/python -c '
import statistics, subprocess, time
ts = []
for _ in range(3):
    t = time.perf_counter()
    subprocess.run(["/opt/edgebench/venv/bin/edgebench", "--help"], stdout=subprocess.DEVNULL, check=True)
    ts.append(1000 * (time.perf_counter() - t))
print("%.0f" % statistics.median(ts))')
step "the venv is $(du -sm "$ROOTFS/opt/edgebench/venv" | cut -f1) MB (biggest: $BIG); edgebench --help starts in $HELP_MS ms (median of 3, host load $(cut -d' ' -f1 /proc/loadavg))"

# 5b. right answers on the board: the bundled classifier on its labelled test images
# and, with $EDGEBENCH_REFDATA, a real MobileNet on real photos; the top-1 of each
# and whether XNNPACK applied, as the result says
as_agent() { # as_agent ARGS...: the installed edgebench as the service user
    in_chroot runuser -u edgebench -- env HOME=/var/lib/edgebench EDGEBENCH_STATE_DIR=/var/lib/edgebench \
        /opt/edgebench/venv/bin/edgebench "$@"
}
answers() { # answers JSON: the accuracy, each image's top-1, the runtime and XNNPACK
    in_chroot /opt/edgebench/venv/bin/python -c '
import json, sys
r = json.load(open(sys.argv[1]))
a, rt = r["accuracy"], r["runtime"]
seen = {}
for p in r.get("predictions") or []:
    if p.get("top_k"):
        seen.setdefault(p["source_name"], p["top_k"][0]["label"])
x = rt.get("xnnpack")
print("top-1 %d/%d (%s), XNNPACK %s, %s %s, %s thread(s)" % (
    a["correct_top1"], a["images"], ", ".join("%s: %s" % kv for kv in list(sorted(seen.items()))[:3]) + ("" if len(seen) <= 3 else ", ..."),
    "applied" if x is True else "NOT applied" if x is False else "unknown (%r)" % (x,), rt["name"], rt["version"], rt["num_threads"]))' "$1"
}
EB_RUNTIME=$([ "$RUNTIME_ARG" = tflite ] && echo tflite-runtime || echo auto)
logrun "the bundled shapes classifier on its test images" as_agent run --model /opt/edgebench/models/shapes_int8.tflite \
    --accuracy /opt/edgebench/models/testsets/shapes --accuracy-floor 0.95 --runtime "$EB_RUNTIME" --quiet \
    --json /var/lib/edgebench/shapes.json
step "shapes_int8 on its $(find "$ROOTFS/opt/edgebench/models/testsets/shapes" -type f -name '*.png' | wc -l) labelled test images: $(answers /var/lib/edgebench/shapes.json)"
REF=${EDGEBENCH_REFDATA:-}
if [ -n "$REF" ] && [ -f "$REF/mobilenet_v2_1.0_224_quant.tflite" ]; then
    D=$ROOTFS/tmp/refdata  # in the chroot only, removed with it
    mkdir -p "$D"
    cp "$REF/mobilenet_v2_1.0_224_quant.tflite" "$REF/imagenet_labels.txt" "$REF/grace_hopper.bmp" "$REF/cat.bmp" "$D/"
    printf 'grace_hopper.bmp,military uniform\ncat.bmp,Egyptian cat\n' >"$D/labels.csv"
    chmod -R a+rX "$D"
    logrun "MobileNet V2 on grace_hopper.bmp and cat.bmp" as_agent run --model /tmp/refdata/mobilenet_v2_1.0_224_quant.tflite \
        --labels /tmp/refdata/imagenet_labels.txt --accuracy /tmp/refdata/labels.csv --accuracy-floor 1 \
        --frames 2 --warmup 1 --runtime "$EB_RUNTIME" --quiet --json /var/lib/edgebench/refdata.json
    step "refdata's mobilenet_v2_1.0_224_quant on real photos: $(answers /var/lib/edgebench/refdata.json)"
    rm -rf "$D"
else
    step "refdata's MobileNet skipped: set EDGEBENCH_REFDATA to a folder holding mobilenet_v2_1.0_224_quant.tflite (${REF:-not set})"
fi

# 6. the installed unit is valid for this system's systemd
logrun "systemd-analyze verify in the chroot" in_chroot systemd-analyze verify /etc/systemd/system/edgebench-agent.service
step "the installed unit passes systemd-analyze verify ($(in_chroot systemctl --version | head -n 1))"

# 6b. boot it: systemd as PID 1 (in systemd-nspawn) starts the unit, sandbox and
# all, as it will on a board; the agent publishes to a broker on the host
why=""
[ "$HOST" = "$UNAME" ] || why="under emulation (the container's /sys would be the host's x86 one)"
for c in systemd-nspawn mosquitto mosquitto_sub; do
    command -v "$c" >/dev/null || why="${why:-$c not installed (apt-get install systemd-container mosquitto mosquitto-clients)}"
done
if [ -n "$why" ]; then
    step "boot under systemd skipped: $why"
else
    BOOT=$BUILD/boot-$NAME
    rm -rf "$BOOT"
    mkdir -p "$BOOT"
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mosquitto -p "$PORT" >"$BOOT/mosquitto.log" 2>&1 &
    BGPIDS="$BGPIDS $!"
    MOSQ=$!
    i=0
    until mosquitto_sub -p "$PORT" -t x -W 1 -C 1 >/dev/null 2>&1 || [ $? -eq 27 ]; do  # 27: timed out, broker up
        i=$((i + 1))
        [ $i -lt 20 ] || die "the test broker on port $PORT did not start (see $BOOT/mosquitto.log)"
        sleep 0.5
    done
    # point the installed agent at it, as install-agent.sh --broker does on a board
    logrun "install-agent.sh --broker (boot test)" in_chroot sh "$INSTALL" --broker "mqtt://127.0.0.1:$PORT" --no-check
    D=$ROOTFS/etc/systemd/system
    WAIT_FOR="edgebench/v1/$ID/run/[^ ]*/summary "  # a whole benchmark delivered
    if in_chroot /opt/edgebench/venv/bin/edgebench agent --help >/dev/null 2>&1; then
        MODE="agent (its scheduled job ran to the end)"
    else  # an agent without the service command: the unit runs one benchmark instead
        MODE="run (this edgebench has no \`agent\` command yet)"
        mkdir -p "$D/edgebench-agent.service.d"
        printf '[Service]\nExecStart=\nExecStart=/opt/edgebench/venv/bin/edgebench run --model /opt/edgebench/models/shapes_int8.tflite --source synthetic --duration 3 --device-id %s --mqtt mqtt://127.0.0.1:%s --quiet\nRestart=no\n' \
            "$ID" "$PORT" >"$D/edgebench-agent.service.d/boot-test.conf"
    fi
    # at shutdown this stops after the agent (Before=), and reports how it ran
    cat >"$D/edgebench-boot-report.service" <<'EOF'
[Unit]
Description=edgebench boot test: report how edgebench-agent.service ran
Before=edgebench-agent.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=/bin/sh -c '{ systemctl show -p Result -p ExecMainStatus -p User -p NRestarts edgebench-agent; journalctl -u edgebench-agent --no-pager -o cat; ls -ln /var/lib/edgebench; } >/root/boot-report.txt 2>&1'
[Install]
WantedBy=multi-user.target
EOF
    ln -sf ../edgebench-boot-report.service "$D/multi-user.target.wants/edgebench-boot-report.service"
    mosquitto_sub -p "$PORT" -t "edgebench/v1/$ID/#" -v >"$BOOT/messages.txt" 2>&1 &
    BGPIDS="$BGPIDS $!"
    SUB=$!
    cleanup_mounts  # systemd-nspawn mounts its own /proc, /sys and /dev
    systemd-nspawn -D "$ROOTFS" --boot --register=no --keep-unit --quiet >"$BOOT/console.txt" 2>&1 &
    NSPAWN=$!
    BGPIDS="$BGPIDS $NSPAWN"
    stop_container() { # SIGTERM to nspawn: a clean shutdown, SIGTERM to the agent
        kill -TERM "$NSPAWN" 2>/dev/null || true
        i=0
        while kill -0 "$NSPAWN" 2>/dev/null; do
            i=$((i + 1))
            [ $i -lt 120 ] || die "the container did not shut down within 60 s"
            sleep 0.5
        done
    }
    i=0
    until grep -q "$WAIT_FOR" "$BOOT/messages.txt"; do
        i=$((i + 1))
        if [ $i -gt 240 ] || ! kill -0 "$NSPAWN" 2>/dev/null; then
            stop_container
            cp "$ROOTFS/root/boot-report.txt" "$BOOT/" 2>/dev/null || true
            last=$(grep -v '^[A-Z][A-Za-z]*=' "$BOOT/boot-report.txt" 2>/dev/null | grep -iE 'error|fail|refus' | tail -n 1)
            die "no benchmark from the booted agent within 120 s: ${last:-see the report} (report: $BOOT/boot-report.txt, console: $BOOT/console.txt)"
        fi
        sleep 0.5
    done
    stop_container
    kill "$SUB" "$MOSQ" 2>/dev/null || true
    wait "$SUB" "$MOSQ" 2>/dev/null || true
    BGPIDS=""
    mount_all
    R=$ROOTFS/root/boot-report.txt
    [ -f "$R" ] || die "the booted system wrote no report (console: $BOOT/console.txt)"
    cp "$R" "$BOOT/boot-report.txt"
    grep -qx "Result=success" "$R" && grep -qx "ExecMainStatus=0" "$R" ||
        die "edgebench-agent.service did not end cleanly: $(grep -E '^(Result|ExecMainStatus)=' "$R" | tr '\n' ' ')(report: $BOOT/boot-report.txt)"
    grep -qx "User=edgebench" "$R" || die "the unit did not run as edgebench"
    case "$MODE" in
        agent*) grep -q "edgebench/v1/$ID/status .*\"stopped\"" "$BOOT/messages.txt" ||
                    die "the agent did not publish status stopped on SIGTERM (messages: $BOOT/messages.txt)" ;;
    esac
    N=$(wc -l <"$BOOT/messages.txt")
    rm -rf "$D/edgebench-agent.service.d" "$D/edgebench-boot-report.service" \
        "$D/multi-user.target.wants/edgebench-boot-report.service" "$ROOTFS/root/boot-report.txt"
    logrun "install-agent.sh (back to the first broker)" in_chroot sh "$INSTALL" --broker mqtts://broker.example.invalid:8883 --no-check
    step "booted $(in_chroot systemctl --version | head -n 1 | cut -d' ' -f1-2) as PID 1 (systemd-nspawn): it started edgebench-agent.service, sandbox and all, as user edgebench in mode $MODE; $N messages reached a broker on the host; after SIGTERM the service ended with Result=success, status 0$(case "$MODE" in agent*) echo ", status stopped published" ;; esac)"
fi

if [ "$VIA" = ansible ]; then
    # 7. a second run changes nothing
    SUM1=$(sha256sum "$ROOTFS/etc/edgebench/agent.yaml" | cut -d' ' -f1)
    play "$OUT.2"
    grep -Eq 'changed=0 .*failed=0' "$OUT.2" || die "the second playbook run changed something: $(grep -A1 'PLAY RECAP' "$OUT.2" | tail -n 1)"
    [ "$SUM1" = "$(sha256sum "$ROOTFS/etc/edgebench/agent.yaml" | cut -d' ' -f1)" ] || die "the second run changed agent.yaml"
    step "a second playbook run changed nothing (changed=0)"
    # 8. uninstall everywhere
    play "$OUT.3" -e edgebench_state=absent
else
    # 7. idempotent: a second run keeps the config and the device id
    SUM1=$(sha256sum "$ROOTFS/etc/edgebench/agent.yaml" | cut -d' ' -f1)
    if ! in_chroot sh "$INSTALL" --no-check >"$OUT.2" 2>&1; then
        cat "$OUT.2" >&2
        die "the second install-agent.sh run failed"
    fi
    SUM2=$(sha256sum "$ROOTFS/etc/edgebench/agent.yaml" | cut -d' ' -f1)
    [ "$SUM1" = "$SUM2" ] || die "the second run changed agent.yaml"
    [ -s "$ROOTFS/etc/edgebench/mqtt-password" ] || die "the second run lost the password file"
    step "a second run (no flags) succeeded and kept agent.yaml and the password byte for byte"

    # 8. --uninstall removes it all
    if ! in_chroot sh "$INSTALL" --uninstall >"$OUT.3" 2>&1; then
        cat "$OUT.3" >&2
        die "install-agent.sh --uninstall failed"
    fi
fi
for p in /opt/edgebench /etc/edgebench /var/lib/edgebench /etc/systemd/system/edgebench-agent.service \
        /etc/systemd/system/multi-user.target.wants/edgebench-agent.service; do
    if [ -e "$ROOTFS$p" ] || [ -L "$ROOTFS$p" ]; then die "--uninstall left $p"; fi
done
in_chroot getent passwd edgebench >/dev/null && die "--uninstall left the user edgebench"
step "$([ "$VIA" = ansible ] && echo "the playbook with edgebench_state=absent" || echo "--uninstall") removed the service, user, venv, models, config and state"

cleanup_mounts
grep -q " $ROOTFS/" /proc/mounts && die "mounts left under $ROOTFS"
echo
echo "$PROG: PROVED ($([ "$VIA" = ansible ] && echo "deploy/ansible/playbook.yml" || echo "deploy/install-agent.sh")) on Debian $SUITE $ARCH$([ "$KERNEL64" = 1 ] && echo " under a 64-bit kernel (simulated)" || true) (host $HOST$([ "$HOST" != "$UNAME" ] && echo ", $QEMU emulating a $QEMU_CPU")) in $(( $(date +%s) - T0 )) s:$PROVED"
