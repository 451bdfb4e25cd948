#!/usr/bin/env bash
# The Raspberry Pi install, proven on this machine: builds a Debian 12 (bookworm) arm64 root
# filesystem (what Raspberry Pi OS Bookworm 64-bit is), runs it under qemu-user, follows the
# README's "On the Raspberry Pi" commands literally inside it (the manual venv and
# systemd/install.sh, without systemd; the two side by side), runs the runtime's commands on the
# emulated Pi 4 CPU and compares the still-image detections on the Pi 4 and Pi 5 CPUs with the
# same command on this x86-64 host.
#
#   sudo bash scripts/check-arm64.sh                 arm64, QEMU_CPU cortex-a72 (Pi 4), cortex-a76 (Pi 5)
#   sudo bash scripts/check-arm64.sh --arch armhf    32-bit Pi OS (see docs/pi-install.md)
#   options: --cpus "cortex-a72 ..."  --report FILE  --keep (leave the rootfs dir for a look)
#            --no-security (leave out the -security suite, for a mirror whose index is mid-sync)
#            --rootfs-only (build and cache the rootfs, then stop: .ci/run does it beside the tests)
#
# Needs root and apt (installs qemu-user-static binfmt-support mmdebstrap if missing). The rootfs
# comes from this machine's own apt sources and is cached as a tarball in ~/.cache/edgedetect/
# (delete it to rebuild); pip inside it reaches PyPI as the host does (its pip.conf and CA
# bundle are copied in). It never touches the host's services; every mount is undone on exit.
# Writes reports/<arch>-report.json and ends with one line: `<arch>: OK ...` or `<arch>: FAIL <reason>`.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"

ARCH=arm64
CPUS=""
REPORT=""
KEEP=0
NOSEC=0
ROOTFS_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH="$2"; shift 2 ;;
    --arch=*) ARCH="${1#--arch=}"; shift ;;
    --cpus) CPUS="$2"; shift 2 ;;
    --report) REPORT="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --no-security) NOSEC=1; shift ;;
    --rootfs-only) ROOTFS_ONLY=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "check-arm64: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$ARCH" in
  arm64) QEMU_ARCH=aarch64; CPUS="${CPUS:-cortex-a72 cortex-a76}" ;;
  # qemu-arm has no cortex-a53 (the Pi 3 / Zero 2 W core in AArch32 state); cortex-a7 is the
  # closest ARMv7 core it emulates (NEON, VFPv4, the Pi 2's core).
  armhf) QEMU_ARCH=arm; CPUS="${CPUS:-cortex-a7}" ;;
  *) echo "check-arm64: --arch must be arm64 or armhf" >&2; exit 2 ;;
esac
REPORT="${REPORT:-$REPO/reports/$ARCH-report.json}"
mkdir -p "$(dirname "$REPORT")"
CACHE="${EDGEDETECT_CACHE:-$HOME/.cache/edgedetect}"
SUITE=bookworm
# python3-picamera2 lives in the Raspberry Pi archive only; these are its dependencies that
# Debian has (numpy is the one that matters: picamera2's compiled helpers are built against it).
# python3-av (picamera2's encoders) is left out: it brings ~100 MB of FFmpeg for no test here.
PACKAGES="python3,python3-venv,python3-numpy,python3-pil,python3-piexif,python3-prctl,python3-jsonschema,ca-certificates"

WORK=""
LOG=""
STEPS_FILE=""  # TSV lines: name cpu rc seconds (a file: steps may run side by side)
declare -A FACT=()
say() { echo "check-arm64: $*" >&2; }

write_report() {  # $1 = OK|FAIL, $2 = reason/summary
  [ -n "$LOG" ] || return 0
  STATUS="$1" SUMMARY="$2" STEPS="$(cat "$STEPS_FILE")" ARCH="$ARCH" CPUS="$CPUS" \
    FACTS="$(for k in "${!FACT[@]}"; do printf '%s\t%s\n' "$k" "${FACT[$k]}"; done)" \
    python3 - "$REPORT" <<'EOF'
import json, os, sys
facts = dict(l.split("\t", 1) for l in os.environ["FACTS"].splitlines() if "\t" in l)
steps = []
for line in os.environ["STEPS"].splitlines():
    name, cpu, rc, secs = line.split("\t")
    steps.append({"step": name, "cpu": cpu or None, "rc": int(rc), "seconds": float(secs)})
def num(k):
    return float(facts[k]) if k in facts else None
per_cpu = {}  # the runtime commands on each CPU (the installs run once, on the first)
for s in steps:
    if s["cpu"] and s["step"] not in ("wheel-probe", "manual-install", "service-install", "numpy", "wheels"):
        per_cpu[s["cpu"]] = round(per_cpu.get(s["cpu"], 0.0) + s["seconds"], 1)
report = {
    "arch": os.environ["ARCH"],
    "status": os.environ["STATUS"],
    "summary": os.environ["SUMMARY"],
    "rootfs_s": num("rootfs_s"),
    "rootfs_cached": facts.get("rootfs_cached") == "1",
    "install_s": num("install_s"),
    "service_install_s": num("service_install_s"),
    "opencv_wheels_downloaded": {k: int(facts["opencv_wheels_" + k]) for k in ("manual", "service") if "opencv_wheels_" + k in facts},
    "cpus": os.environ["CPUS"].split(),
    "cpu_seconds": per_cpu,
    "detections_identical": {"1": True, "0": False}.get(facts.get("detections_identical")),
    "numpy_apt": facts.get("numpy_apt"),
    "numpy_venv": facts.get("numpy_venv"),
    "numpy_service_venv": facts.get("numpy_service_venv"),
    "wheels": json.loads(facts["wheels"]) if "wheels" in facts else None,
    "missing_wheels": facts["armhf_missing_wheels"].split() if "armhf_missing_wheels" in facts else None,
    "steps": steps,
}
with open(sys.argv[1], "w") as f:
    json.dump(report, f, indent=2)
    f.write("\n")
EOF
}

cleanup() {
  local rc=$?
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    # every mount below the work dir, deepest first
    { findmnt -rn -o TARGET | grep -F "$WORK/" | sort -r || true; } | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" || true
    done
    if findmnt -rn -o TARGET | grep -qF "$WORK/"; then
      say "could not unmount everything below $WORK; leaving it in place"
    elif [ "$KEEP" = 1 ]; then
      say "kept the rootfs at $WORK/root"
    else
      rm -rf --one-file-system "$WORK"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  write_report FAIL "$1" || true
  echo "$ARCH: FAIL $1"
  exit 1
}

# -- 1. tools: qemu-user-static with its binfmt handler, mmdebstrap ------------------------------
[ "$(id -u)" = 0 ] || { echo "$ARCH: FAIL run as root (sudo bash $0)"; exit 1; }
command -v apt-get >/dev/null || { echo "$ARCH: FAIL needs a Debian-based host with apt-get"; exit 1; }
need=()
command -v "qemu-$QEMU_ARCH-static" >/dev/null || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} with apt"
  (flock 9 && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null) \
    9>/tmp/edgedetect-apt.lock || { echo "$ARCH: FAIL apt-get could not install ${need[*]}; check the apt sources"; exit 1; }
fi
BINFMT=/proc/sys/fs/binfmt_misc
if [ ! -e "$BINFMT/status" ]; then
  mount -t binfmt_misc binfmt_misc "$BINFMT" \
    || { echo "$ARCH: FAIL cannot mount binfmt_misc (a container without it cannot run qemu-user)"; exit 1; }
fi
if [ ! -e "$BINFMT/qemu-$QEMU_ARCH" ]; then
  update-binfmts --enable "qemu-$QEMU_ARCH" >/dev/null 2>&1 || update-binfmts --import "qemu-$QEMU_ARCH" || true
fi
grep -q '^enabled' "$BINFMT/qemu-$QEMU_ARCH" 2>/dev/null \
  || { echo "$ARCH: FAIL the qemu-$QEMU_ARCH binfmt handler is not enabled; run: update-binfmts --enable qemu-$QEMU_ARCH"; exit 1; }
# The F flag makes the kernel open the interpreter at registration: no qemu copy in the rootfs.
grep -q '^flags:.*F' "$BINFMT/qemu-$QEMU_ARCH" \
  || { echo "$ARCH: FAIL the qemu-$QEMU_ARCH binfmt handler lacks the F flag; reinstall qemu-user-static"; exit 1; }

WORK="$(mktemp -d /var/tmp/edgedetect-$ARCH.XXXXXX)"
LOG="$WORK/log"
STEPS_FILE="$LOG/steps.tsv"
mkdir -p "$LOG" "$CACHE"
: > "$STEPS_FILE"
R="$WORK/root"

step() {  # step NAME CPU COMMAND...: run, time, record; output goes to $LOG/NAME[-CPU].log
  local name="$1" cpu="$2"; shift 2
  local log="$LOG/$name${cpu:+-$cpu}.log" t0 t1 rc=0
  t0=$(date +%s.%N)
  "$@" >"$log" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  printf '%s\t%s\t%s\t%s\n' "$name" "$cpu" "$rc" "$(python3 -c "print(round($t1 - $t0, 2))")" >> "$STEPS_FILE"
  if [ "$rc" != 0 ]; then
    say "step $name ${cpu:+($cpu) }failed with rc $rc; its output ends:"
    tail -n 25 "$log" >&2
  fi
  return "$rc"
}
last_seconds() { tail -n 1 "$STEPS_FILE" | cut -f4; }
seconds_of() { awk -F'\t' -v n="$1" '$1 == n { s = $4 } END { print s }' "$STEPS_FILE"; }

# -- 2. the rootfs: Debian bookworm from this machine's apt sources, cached as a tarball ----------
# The host's enabled bookworm entries (one-line and deb822 sources), as one-line mirror args.
mapfile -t MIRRORS < <(python3 - "$SUITE" "$NOSEC" <<'EOF'
import glob, sys
suite, nosec = sys.argv[1], sys.argv[2] == "1"
out = []
def add(uri, suites, comps):
    for s in suites:
        if nosec and s.endswith("-security"):
            continue
        if s == suite or s.startswith(suite + "-"):
            out.append(f"deb {uri} {s} {' '.join(comps)}")
files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
for path in files:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 4 and parts[0] == "deb":
            if parts[1].startswith("["):  # drop [options]
                while parts and not parts[1].endswith("]"):
                    parts.pop(1)
                parts.pop(1)
            add(parts[1], [parts[2]], parts[3:])
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        f = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                k, v = line.split(":", 1)
                f[k.strip().lower()] = v.split()
        if "deb" in f.get("types", []) and f.get("enabled", ["yes"])[0] != "no":
            for uri in f.get("uris", []):
                add(uri, f.get("suites", []), f.get("components", ["main"]))
print("\n".join(dict.fromkeys(out)))
EOF
)
[ ${#MIRRORS[@]} -gt 0 ] && [ -n "${MIRRORS[0]}" ] \
  || fail "no $SUITE entry in /etc/apt/sources.list*; add a Debian $SUITE mirror there"
KEY="$(printf '%s\n' "$ARCH" "$SUITE" "$PACKAGES" "${MIRRORS[@]}" | sha256sum | cut -c1-12)"
TARBALL="$CACHE/rootfs-$SUITE-$ARCH-$KEY.tar"
if [ -s "$TARBALL" ]; then
  FACT[rootfs_cached]=1
  FACT[rootfs_s]="$(cat "$TARBALL.seconds" 2>/dev/null || echo 0)"
  say "reusing $TARBALL (built in ${FACT[rootfs_s]} s)"
else
  FACT[rootfs_cached]=0
  build() {
    rm -f "$TARBALL.part"
    # root mode; apt runs on the host, dpkg inside under qemu. Package lists are kept so that
    # apt inside behaves as on a Pi (install.sh asks apt-cache about python3-picamera2).
    nice -n 5 mmdebstrap --mode=root --arch="$ARCH" --variant=apt --format=tar \
      --include="$PACKAGES" --skip=cleanup/apt/lists \
      "$SUITE" "$TARBALL.part" "${MIRRORS[@]}"
  }
  say "building the $ARCH $SUITE rootfs (a few minutes under emulation)"
  # A forked dpkg under emulation fails now and then with EAGAIN ("fork failed: Resource
  # temporarily unavailable"; seen twice in a row on a loaded machine): up to two retries.
  if ! step rootfs "" build; then
    say "rootfs build failed; retrying in 30 s"
    sleep 30
    if ! step rootfs-retry "" build; then
      say "rootfs build failed again; last try in 60 s"
      sleep 60
      step rootfs-retry2 "" build || fail "mmdebstrap could not build the $ARCH rootfs 3 times (see the output above); check the apt mirror, then rerun"
    fi
  fi
  FACT[rootfs_s]="$(last_seconds)"
  mv "$TARBALL.part" "$TARBALL"
  echo "${FACT[rootfs_s]}" > "$TARBALL.seconds"
fi
if [ "$ROOTFS_ONLY" = 1 ]; then
  echo "$ARCH: rootfs ready in $TARBALL"
  exit 0
fi

# -- 3. the x86-64 reference: the same still-image commands on this host --------------------------
HOSTVENV="${VENV:-.venv}"
if [ ! -x "$HOSTVENV/bin/edgedetect" ]; then
  say "no $HOSTVENV here; making one with the README's first command"
  step host-venv "" bash -c "python3 -m venv '$HOSTVENV' && '$HOSTVENV/bin/pip' install -q -e ." \
    || fail "could not set up the x86-64 reference venv $HOSTVENV"
fi
detect_args=(detect data/images/astronaut.jpg data/images/camera.jpg data/images/chelsea.jpg data/images/coffee.jpg --json)
step host-detect "" bash -c '"$0" "$@" > "'"$WORK/host-detect.json"'"' "$HOSTVENV/bin/edgedetect" "${detect_args[@]}" \
  || fail "x86-64 detect failed"

mkdir -p "$R"
tar -xf "$TARBALL" -C "$R" || fail "cannot unpack $TARBALL; delete it to rebuild"

# -- 4. the rootfs as a Pi: ARM /proc/cpuinfo, network as the host, the checkout in ~/edgedetect --
cpuinfo() {  # an ARM /proc/cpuinfo for the emulated CPU (qemu-user shows the host's x86 one, and
             # the TFLite runtime's CPU detection then crashes in allocate_tensors())
  local part feats arch=8 model
  case "$1" in
    cortex-a72) part=0xd08; feats="fp asimd evtstrm crc32 cpuid"; model="Raspberry Pi 4 Model B Rev 1.4" ;;
    cortex-a76) part=0xd0b; feats="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"; model="Raspberry Pi 5 Model B Rev 1.0" ;;
    cortex-a53) part=0xd03; feats="fp asimd evtstrm crc32 cpuid"; model="Raspberry Pi 3 Model B Rev 1.2" ;;
    cortex-a7) part=0xc07; arch=7; feats="half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm"; model="Raspberry Pi 2 Model B Rev 1.1" ;;
    *) part=0xd08; feats="fp asimd evtstrm crc32 cpuid"; model="unknown" ;;
  esac
  for i in $(seq 0 $(( $(nproc) - 1 ))); do
    printf 'processor\t: %d\n' "$i"
    [ "$arch" = 7 ] && printf 'model name\t: ARMv7 Processor rev 5 (v7l)\n'
    printf 'BogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\n' "$feats"
    printf 'CPU architecture: %s\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: 3\n\n' "$arch" "$part"
  done
  printf 'Model\t\t: %s\n' "$model"
}
mount -t proc proc "$R/proc" || fail "cannot mount proc in the rootfs"
mount --bind /dev "$R/dev" || fail "cannot bind /dev into the rootfs"
# read-only sysfs: XNNPACK's cpuinfo reads /sys/devices/system/cpu/{possible,present}
mount -t sysfs -o ro sysfs "$R/sys" || fail "cannot mount a read-only sysfs in the rootfs"
CPUINFO="$WORK/cpuinfo"
: > "$CPUINFO"
mount --bind "$CPUINFO" "$R/proc/cpuinfo" || fail "cannot bind an ARM cpuinfo over /proc/cpuinfo"
mkdir -p "$CACHE/pip-$ARCH" "$R/root/.cache/pip"
mount --bind "$CACHE/pip-$ARCH" "$R/root/.cache/pip" || fail "cannot bind the pip cache"

cp -L /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true
cp -L /etc/hosts "$R/etc/hosts" 2>/dev/null || true
# pip reaches PyPI as on the host: its pip.conf (not /etc/xdg/pip, whose local wheel folders and
# caps are this host's) and the CA bundle it names; the PIP_* settings that point at the network.
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$R/etc/pip.conf"
PIPENV=()
for v in PIP_CERT PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT \
         SSL_CERT_FILE REQUESTS_CA_BUNDLE http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  val="${!v:-}"
  [ -n "$val" ] || continue
  case "$val" in file:*) continue ;; esac
  PIPENV+=("$v=$val")
done
for f in /etc/ssl/certs/ca-certificates.crt "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" "${REQUESTS_CA_BUNDLE:-}"; do
  if [ -n "$f" ] && [ -f "$f" ]; then mkdir -p "$R$(dirname "$f")"; cp -L "$f" "$R$f"; fi
done

# The checkout's tracked files (as a clone has them) in ~/edgedetect, where the README clones it:
# root's for the manual venv, pi's for install.sh. Two clones because the two installs run side
# by side and pip builds the package inside its source folder.
for home in /root /home/pi; do
  mkdir -p "$R$home/edgedetect"
  git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$R$home/edgedetect" \
    || fail "cannot copy the checkout into the rootfs"
done

in_root() {  # in_root CPU COMMAND [HOME]: bash -c COMMAND in the rootfs, as root in HOME (/root),
             # on that CPU
  local info
  info="$(cpuinfo "$1")"
  # rewritten only when the CPU changes: a step beside this one may be reading it
  [ "$(cat "$CPUINFO")" = "$info" ] || printf '%s' "$info" > "$CPUINFO"
  nice -n 5 env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="${3:-/root}" \
    LANG=C.UTF-8 TERM=dumb QEMU_CPU="$1" DEBIAN_FRONTEND=noninteractive "${PIPENV[@]}" \
    chroot "$R" /bin/bash -c "cd ~ && $2"
}

# A fenced block of the README, marked by <!-- check-arm64: NAME --> just before it, as a script:
# `sudo ` dropped (we are root), and python3-picamera2 dropped from apt lines (it is only in
# the Raspberry Pi archive; its Debian dependencies are in the rootfs already).
readme_block() {
  python3 - "$1" <<'EOF'
import re, sys
text = open("README.md").read()
m = re.search(r"<!-- check-arm64: %s -->\s*```(?:bash)?\n(.*?)```" % re.escape(sys.argv[1]), text, re.S)
if not m:
    sys.exit("README.md has no block marked <!-- check-arm64: %s -->" % sys.argv[1])
out = ["set -euxo pipefail"]
for line in m.group(1).splitlines():
    line = re.sub(r"(^|&& )sudo ", r"\1", line.split("  #")[0].rstrip())
    if re.match(r"apt(-get)? install", line):
        line = line.replace(" python3-picamera2", "")
    out.append(line)
print("\n".join(out))
EOF
}
MANUAL="$(readme_block manual)" || fail "README.md lost its <!-- check-arm64: manual --> block"
SERVICE="$(readme_block service)" || fail "README.md lost its <!-- check-arm64: service --> block"
printf '%s\n' "$MANUAL" > "$LOG/manual.sh"
printf '%s\n' "$SERVICE" > "$LOG/service.sh"

FIRST="${CPUS%% *}"
if [ "$ARCH" = armhf ]; then
  # PyPI serves no armv7l wheel of OpenCV for Python 3.11 (tflite-runtime 2.14 has one): pip would
  # start compiling OpenCV from source for hours under emulation. Ask pip for wheels only first.
  probe='python3 -m venv /root/probe; for p in opencv-python-headless tflite-runtime ai-edge-litert; do
    /root/probe/bin/pip download -q --only-binary=:all: --no-deps -d /root/probe/w "$p" >/dev/null 2>&1 || echo "$p"; done'
  step wheel-probe "$FIRST" in_root "$FIRST" "$probe" || fail "could not ask pip for armv7l wheels"
  missing="$(tr '\n' ' ' < "$LOG/wheel-probe-$FIRST.log")"
  FACT[armhf_missing_wheels]="$missing"
  case "$missing" in
    *opencv-python-headless*|*tflite-runtime*ai-edge-litert*)
      fail "PyPI has no armv7l wheel for Python 3.11 of: ${missing% }; 32-bit Pi OS is not supported, use the 64-bit OS (README)" ;;
  esac
fi
# -- 5. the README, literally: the manual venv and install.sh (no systemd in a chroot) ------------
# Side by side (each is a pip under emulation, one core's work): they share nothing but apt's
# python3-venv, already in the rootfs.
step manual-install "$FIRST" in_root "$FIRST" "$MANUAL" &
manual_pid=$!
service_rc=0
step service-install "$FIRST" in_root "$FIRST" "$SERVICE" /home/pi || service_rc=$?
wait "$manual_pid" || fail "the README's manual Pi install failed"
[ "$service_rc" = 0 ] || fail "systemd/install.sh failed in the rootfs"
FACT[install_s]="$(seconds_of manual-install)"
FACT[service_install_s]="$(seconds_of service-install)"
# pip learns that an OpenCV wheel needs numpy 2 only by downloading it; systemd/pip-constraints.py
# holds OpenCV to the releases that work with apt's numpy, so each install fetches one at most.
for install in manual-install service-install; do
  fetched="$(grep -c 'Downloading opencv_python' "$LOG/$install-$FIRST.log" || true)"
  FACT[opencv_wheels_${install%-install}]="$fetched"
  [ "$fetched" -le 1 ] || fail "the $install downloaded $fetched OpenCV wheels ($(grep -o 'opencv_python[a-z_]*-[0-9.]*[0-9]' "$LOG/$install-$FIRST.log" | sed 's/.*-//' | paste -sd' ')): pip backtracked through wheels that need numpy 2; systemd/pip-constraints.py must hold OpenCV below them"
done

V=/root/edgedetect/.venv
np='import numpy, os; print(numpy.__version__, os.path.dirname(numpy.__file__))'
step numpy "$FIRST" in_root "$FIRST" "
  echo apt \$(/usr/bin/python3 -c '$np')
  echo venv \$($V/bin/python -c '$np')
  echo service \$(/opt/edgedetect/venv/bin/python -c '$np')" || fail "cannot import numpy in the rootfs"
FACT[numpy_apt]="$(awk '$1 == "apt" { print $2 }' "$LOG/numpy-$FIRST.log")"
FACT[numpy_venv]="$(awk '$1 == "venv" { print $2 }' "$LOG/numpy-$FIRST.log")"
FACT[numpy_service_venv]="$(awk '$1 == "service" { print $2 }' "$LOG/numpy-$FIRST.log")"
step wheels "$FIRST" in_root "$FIRST" "$V/bin/pip list --local --format=json --disable-pip-version-check" \
  || fail "pip list failed in the venv"
FACT[wheels]="$(python3 -c 'import json,sys; print(json.dumps({p["name"]: p["version"] for p in json.load(open(sys.argv[1])) if p["name"] not in ("pip", "setuptools")}))' "$LOG/wheels-$FIRST.log")"

if [ "${FACT[numpy_venv]}" != "${FACT[numpy_apt]}" ] || [ "${FACT[numpy_service_venv]}" != "${FACT[numpy_apt]}" ]; then
  fail "the venvs' numpy (${FACT[numpy_venv]}, service ${FACT[numpy_service_venv]}) is not apt's ${FACT[numpy_apt]}: pip replaced the numpy picamera2 is built against; see the README's manual Pi install"
fi

# -- 6. the runtime on the emulated CPUs ------------------------------------------------------------
# Every command on the first CPU (the Pi 4); on the others the still-image detections only: the CPU
# changes which XNNPACK kernels run, which the detections show, not the Python around them.
identical=1
E="cd ~/edgedetect && $V/bin/edgedetect"
for cpu in $CPUS; do
  step version "$cpu" in_root "$cpu" "$E --version" || fail "edgedetect --version failed on $cpu"
  step detect "$cpu" in_root "$cpu" "$E ${detect_args[*]} > /root/detect-$cpu.json" \
    || fail "detect on the stills failed on $cpu"
  for kind in detect; do
    cp "$R/root/$kind-$cpu.json" "$LOG/$kind-$cpu.json"
    if ! python3 - "$WORK/host-$kind.json" "$LOG/$kind-$cpu.json" <<'EOF'
import json, sys
def load(p):
    rows = [json.loads(l) for l in open(p) if l.startswith("{")]
    for r in rows:
        r.pop("latency_ms", None)
    return rows
a, b = load(sys.argv[1]), load(sys.argv[2])
if not a or a != b:
    print("x86-64:", *a, "arm:", *b, sep="\n", file=sys.stderr)
    sys.exit(1)
EOF
    then identical=0; say "$kind on $cpu differs from x86-64"; fi
  done
  FACT[detections_identical]=$identical
  [ "$cpu" = "$FIRST" ] || continue
  # run beside the others: two cores, and under emulation these steps prove that the commands
  # run, not how fast
  step run "$cpu" in_root "$cpu" "$E run --no-preview --max-frames 30" &
  run_pid=$!
  others=0
  { step check-config "$cpu" in_root "$cpu" "$E check-config systemd/config.example.toml" \
      && step service-check-config "$cpu" in_root "$cpu" "/opt/edgedetect/venv/bin/edgedetect check-config /etc/edgedetect/config.toml" \
      && step bench "$cpu" in_root "$cpu" "$E bench --frames 10 --json"; } || others=1
  wait "$run_pid" || fail "run --max-frames 30 failed on $cpu"
  [ "$others" = 0 ] || fail "$(awk -F'\t' '$3 != 0 { print $1; exit }' "$STEPS_FILE") failed on $cpu (its output is above)"
done
FACT[detections_identical]=$identical
[ "$identical" = 1 ] || fail "still-image detections differ from x86-64 (see the diff above)"

secs="$(for cpu in $CPUS; do printf '%s %ss ' "$cpu" "$(awk -F'\t' -v c="$cpu" '$2 == c && $1 !~ /install|numpy|wheel/ { s += $4 } END { printf "%.0f", s }' "$STEPS_FILE")"; done)"
summary="numpy ${FACT[numpy_apt]} kept, detections identical to x86-64, rootfs ${FACT[rootfs_s]}s, install ${FACT[install_s]}s, ${secs% }"
write_report OK "$summary"
echo "$ARCH: OK $summary"
