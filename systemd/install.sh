#!/usr/bin/env bash
# Install (or uninstall) the edgedetect service on a Raspberry Pi (Pi OS Bookworm) or any
# systemd Linux. Idempotent: run it again after `git pull` to upgrade; your config is kept.
#
#   sudo systemd/install.sh               install or upgrade, enable and (re)start the service
#   sudo systemd/install.sh --no-start    install and enable, but do not start now
#   sudo systemd/install.sh --uninstall   stop, disable, remove unit and venv (keeps config/data)
#   sudo systemd/install.sh --uninstall --purge   also remove config, events, snapshots, user
#   DRY_RUN=1 systemd/install.sh ...      print what would be done, change nothing
#   options: --no-apt (skip apt-get), -h/--help (this text)
#   paths: PREFIX=/opt/edgedetect CONF_DIR=/etc/edgedetect STATE_DIR=/var/lib/edgedetect and
#   SERVICE_USER=edgedetect are the defaults; set others in the environment
#   (sudo PREFIX=/srv/edgedetect bash systemd/install.sh) and a drop-in,
#   /etc/systemd/system/edgedetect.service.d/install-paths.conf, points the unit at them.
#
# Clone the checkout into your home (~/edgedetect), not into the prefix: install.sh refuses to
# install into, or remove, a directory that holds a git checkout (or lies inside this one).
#
# What it does: creates the system user `edgedetect` (groups video, render), a new venv
# /opt/edgedetect/venv-DATE-PID with --system-site-packages (picamera2 comes from apt:
# python3-picamera2), installs this checkout into it WITHOUT TensorFlow (the runtime
# dependencies only: numpy, OpenCV, LiteRT, prometheus-client, paho-mqtt), installs
# /etc/edgedetect/config.toml from systemd/config.example.toml if absent, checks the config
# with the new venv, then points the symlink /opt/edgedetect/venv at it, installs the unit,
# enables it and removes the previous venv. If pip or the check fails (e.g. a kept config the
# new version refuses), it stops with one line saying what to fix and the installed version
# keeps running unchanged.
set -euo pipefail

PREFIX="${PREFIX:-/opt/edgedetect}"
CONF_DIR="${CONF_DIR:-/etc/edgedetect}"
STATE_DIR="${STATE_DIR:-/var/lib/edgedetect}"
UNIT_DIR="${UNIT_DIR:-/etc/systemd/system}"
SERVICE_USER="${SERVICE_USER:-edgedetect}"
PYTHON="${PYTHON:-python3}"
DRY_RUN="${DRY_RUN:-0}"
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

action=install
purge=0
start=1
with_apt=1
for arg in "$@"; do
  case "$arg" in
    --uninstall) action=uninstall ;;
    --purge) purge=1 ;;
    --no-start) start=0 ;;
    --no-apt) with_apt=0 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$purge" = 1 ] && [ "$action" != uninstall ]; then  # else it would install and restart
  echo "install.sh: --purge only goes with --uninstall (sudo $0 --uninstall --purge)" >&2
  exit 2
fi

run() {  # run a command, or print it under DRY_RUN=1 (quoted: it can be pasted as it is)
  if [ "$DRY_RUN" = 1 ]; then printf '+'; printf ' %q' "$@"; echo; else "$@"; fi
}

write_file() {  # write_file PATH: stdin into PATH, or print it as a pasteable here-document
  if [ "$DRY_RUN" = 1 ]; then printf "+ cat > %q <<'EOF'\n" "$1"; cat; echo EOF; else cat > "$1"; fi
}

done_line() {  # the last line: what happened, or that a dry run changed nothing
  if [ "$DRY_RUN" = 1 ]; then echo "dry run: nothing was changed; the lines above are what $1 would run"
  else echo "$2"; fi
}

# The unit in git names the default paths and user. Other PREFIX, CONF_DIR, STATE_DIR or
# SERVICE_USER values go in a drop-in beside it, or the unit would start a venv that is not there.
DROPIN_DIR="$UNIT_DIR/edgedetect.service.d"
DROPIN="$DROPIN_DIR/install-paths.conf"
custom_paths() {
  [ "$PREFIX" != /opt/edgedetect ] || [ "$CONF_DIR" != /etc/edgedetect ] \
    || [ "$STATE_DIR" != /var/lib/edgedetect ] || [ "$SERVICE_USER" != edgedetect ]
}
check_paths() {  # the unit can only run what it can reach: absolute paths outside home
  local dir
  for dir in "$PREFIX" "$CONF_DIR" "$STATE_DIR"; do
    case "$dir" in
      *[%\$\"\\[:cntrl:]]*)  # systemd specifiers and variables, quoting in the unit and TOML
        echo "install.sh: ${dir//[[:cntrl:]]/?} holds %, \$, \", \\ or a control character, which the unit or the config would read as something else; pick a path without them" >&2
        exit 2 ;;
    esac
    case "$dir/" in
      /home/*|/root/*|/run/user/*)
        echo "install.sh: $dir is under /home, /root or /run/user, which the unit hides from the service (ProtectHome=yes); pick a path outside them, e.g. the default" >&2
        exit 2 ;;
      /*) ;;
      *) echo "install.sh: $dir is not an absolute path; give PREFIX, CONF_DIR and STATE_DIR from /" >&2; exit 2 ;;
    esac
  done
}
sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }  # literal text for s|...|HERE|
paths_dropin() {
  cat <<EOF
# Written by install.sh: this install's paths and user, in place of the unit's defaults.
[Service]
ExecStart=
ExecStart="$PREFIX/venv/bin/edgedetect" run --config "$CONF_DIR/config.toml"
User=$SERVICE_USER
Group=$SERVICE_USER
WorkingDirectory=$STATE_DIR
ReadWritePaths="$STATE_DIR"
EOF
}

have_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

if [ "$DRY_RUN" != 1 ] && [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo $0 $*)" >&2
  exit 2
fi

# A directory that holds a git checkout (this one, or any .git in its top levels), or that lies
# inside this checkout, is never installed into or removed: `rm -rf /opt/edgedetect` on a clone
# at /opt/edgedetect would delete the clone.
holds_checkout() {
  local dir="${1%/}" found
  case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
  if [ -e "$dir" ]; then dir="$(cd "$dir" && pwd -P)"; fi
  case "$dir/" in "$SRC"/*) echo "$SRC"; return 0 ;; esac
  [ -e "$dir" ] || return 1
  case "$SRC/" in "$dir"/*) echo "$SRC"; return 0 ;; esac
  found="$(find "$dir" -maxdepth 3 -name .git -print -quit 2>/dev/null || true)"
  if [ -n "$found" ]; then echo "${found%/.git}"; return 0; fi
  return 1
}

refuse_checkout() {  # refuse_checkout DIR WHAT
  local repo
  if repo="$(holds_checkout "$1")"; then
    echo "install.sh: refusing to $2 $1: it holds the git checkout $repo; clone into ~/edgedetect instead (or set PREFIX/CONF_DIR/STATE_DIR elsewhere)" >&2
    exit 2
  fi
}

# The venv install.sh is building: removed on any exit (an error, Ctrl-C) until switched in.
staging=""
venv_moved=""  # where switch_venv moved a venv directory from before the symlink
trap 'if [ -n "$staging" ]; then rm -rf "$staging"; fi' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

check_config_with() {  # check_config_with VENV FILE UPGRADE: the new code's check, or one line
  # As the service user (and from /, not from a home it may not enter): root reads a token or
  # password file the service cannot, and a check as root would pass a config the service refuses.
  local out rc=0 check=(setpriv --reuid "$SERVICE_USER" --regid "$SERVICE_USER" --init-groups --
    "$1/bin/edgedetect" check-config "$2")
  if [ "$DRY_RUN" = 1 ]; then run "${check[@]}"; return; fi
  out="$(cd / && "${check[@]}" 2>&1)" || rc=$?
  if [ "$rc" = 0 ]; then printf '%s\n' "$out"; return; fi
  out="$(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | tail -n 1)"  # a traceback's last line
  out="${out#edgedetect: error: }"
  out="${out#"$2": }"
  if [ "$rc" != 2 ]; then  # 2 is a config error; anything else is the new version failing
    echo "install.sh: the new version's check-config could not run on $2 (exit $rc, not a config error): $out; the installed version was not changed; fix that cause and run install.sh again" >&2
  elif [ "$3" = 1 ]; then
    echo "install.sh: $2 fails the new version's check-config: $out; edit $2 (the new example is config.example.toml beside it), then run install.sh again; the installed version was not changed and keeps running" >&2
  else
    echo "install.sh: $2 fails check-config: $out; edit $2, then run install.sh again; the service was not installed" >&2
  fi
  exit 2
}

switch_venv() {  # switch_venv NEW: $PREFIX/venv -> NEW, in one rename of a symlink
  local venv="$PREFIX/venv"
  if [ -e "$venv" ] && [ ! -L "$venv" ]; then
    # a venv from before this layout, a directory: moved aside, a moment before the restart
    venv_moved="$PREFIX/venv-previous-$$"
    run mv -T "$venv" "$venv_moved"
  fi
  run ln -sfn "$(basename "$1")" "$PREFIX/venv.switch"
  run mv -T "$PREFIX/venv.switch" "$venv"
  staging=""
}

remove_old_venvs() {  # remove_old_venvs KEEP: every venv-* under PREFIX but KEEP
  local dir
  for dir in "$PREFIX"/venv-*; do
    if [ -d "$dir" ] && [ "$dir" != "$1" ]; then run rm -rf "$dir"; fi
  done
  if [ "$DRY_RUN" = 1 ] && [ -n "$venv_moved" ]; then run rm -rf "$venv_moved"; fi  # not moved
}

# (do_*: a function named install would shadow /usr/bin/install in `run install ...`)
do_uninstall() {
  refuse_checkout "$PREFIX" remove
  if [ "$purge" = 1 ]; then
    refuse_checkout "$CONF_DIR" remove
    refuse_checkout "$STATE_DIR" remove
  fi
  if have_systemd; then
    run systemctl disable --now edgedetect.service || true
  fi
  run rm -f "$UNIT_DIR/edgedetect.service"
  if [ -f "$DROPIN" ]; then run rm -f "$DROPIN"; fi
  if [ -d "$DROPIN_DIR" ]; then run rmdir --ignore-fail-on-non-empty "$DROPIN_DIR"; fi
  if have_systemd; then run systemctl daemon-reload; fi
  run rm -rf "$PREFIX"
  if [ "$purge" = 1 ]; then
    run rm -rf "$CONF_DIR" "$STATE_DIR" /var/log/edgedetect
    if id -u "$SERVICE_USER" >/dev/null 2>&1; then run userdel "$SERVICE_USER"; fi
  else
    echo "kept $CONF_DIR and $STATE_DIR (add --purge to remove them and the user)"
  fi
  done_line "--uninstall" "edgedetect uninstalled"
}

do_install() {
  check_paths
  refuse_checkout "$PREFIX" "install into"
  # 1. system packages: venv support and, on a Pi, picamera2 (never pip-installed: it needs
  #    the matching libcamera from apt)
  if [ "$with_apt" = 1 ] && command -v apt-get >/dev/null; then
    pkgs=(python3-venv)
    if apt-cache show python3-picamera2 >/dev/null 2>&1; then pkgs+=(python3-picamera2); fi
    run apt-get install -y --no-install-recommends "${pkgs[@]}"
  fi

  # 2. the service user: no login, no home outside the state dir, camera and GPU groups
  if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
    run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
      --shell /usr/sbin/nologin --comment "edgedetect service" "$SERVICE_USER"
  fi
  for group in video render; do
    if getent group "$group" >/dev/null; then run usermod -a -G "$group" "$SERVICE_USER"; fi
  done

  # 3. the package, runtime dependencies only (no TensorFlow), in a NEW venv beside the running
  #    one. An upgrade must never leave the service with new code and a config that code refuses,
  #    nor with a venv a failed or interrupted pip half-replaced: so the new venv is built, and
  #    the config checked with it (step 5), while $PREFIX/venv still names the old one; only then
  #    does $PREFIX/venv, a symlink, switch over in one rename (step 6). A symlink because a venv
  #    cannot be moved into place: its scripts name the path it was made at.
  venv_new="$PREFIX/venv-$(date +%Y%m%d%H%M%S)-$$"
  run mkdir -p "$PREFIX"
  if [ "$DRY_RUN" != 1 ]; then staging="$venv_new"; fi  # removed on any exit until switched in
  run "$PYTHON" -m venv --system-site-packages "$venv_new"
  # Keep apt's numpy when there is one: picamera2's compiled helpers (simplejpeg, pidng) are
  # built against it and break on a pip-installed numpy of another major version. With numpy 1,
  # also hold OpenCV below its first numpy-2-only release, which pip would otherwise learn by
  # downloading every newer wheel (systemd/pip-constraints.py says why, for both installs).
  if [ "$DRY_RUN" = 1 ]; then
    echo "+ $PYTHON $SRC/systemd/pip-constraints.py > $PREFIX/constraints.txt  # $("$PYTHON" "$SRC/systemd/pip-constraints.py" | paste -sd' ')"
  elif ! "$PYTHON" "$SRC/systemd/pip-constraints.py" > "$PREFIX/constraints.txt"; then
    echo "install.sh: $PYTHON could not run $SRC/systemd/pip-constraints.py (its message is above); check that $PYTHON works and run install.sh again" >&2
    exit 1
  fi
  if ! run "$venv_new/bin/pip" install --constraint "$PREFIX/constraints.txt" "$SRC"; then
    echo "install.sh: pip could not install $SRC into a new venv (its messages are above); the installed version was not changed; fix the cause (network, disk space: df -h $PREFIX) and run install.sh again" >&2
    exit 1
  fi

  # 4. config (never overwritten: the current example goes beside it) and state dirs
  #    The example names the default paths: another STATE_DIR (or CONF_DIR) is written into the
  #    copy, or events, snapshots and clips would go to /var/lib/edgedetect, outside the unit's
  #    ReadWritePaths.
  run install -d -m 0750 -o root -g "$SERVICE_USER" "$CONF_DIR"
  config_copy="$CONF_DIR/config.toml" upgrade=0
  if [ -f "$CONF_DIR/config.toml" ]; then config_copy="$CONF_DIR/config.example.toml" upgrade=1; fi
  run install -m 0640 -o root -g "$SERVICE_USER" "$SRC/systemd/config.example.toml" "$config_copy"
  if [ "$STATE_DIR" != /var/lib/edgedetect ] || [ "$CONF_DIR" != /etc/edgedetect ]; then
    run sed -i -e "s|/var/lib/edgedetect/|$(sed_escape "$STATE_DIR")/|g" \
      -e "s|/etc/edgedetect/|$(sed_escape "$CONF_DIR")/|g" "$config_copy"
  fi
  if [ "$config_copy" != "$CONF_DIR/config.toml" ]; then
    echo "kept $CONF_DIR/config.toml (the current example is config.example.toml beside it)"
  fi
  run install -d -m 0750 -o "$SERVICE_USER" -g "$SERVICE_USER" "$STATE_DIR"

  # 5. the config, kept or new, checked by the new code before anything the service runs changes
  check_config_with "$venv_new" "$CONF_DIR/config.toml" "$upgrade"

  # 6. the switch to the new venv, and its docs
  switch_venv "$venv_new"
  run install -d -m 0755 "$PREFIX/docs"
  if [ -f "$SRC/docs/service.md" ]; then run install -m 0644 "$SRC/docs/service.md" "$PREFIX/docs/"; fi

  # 7. the unit
  run install -m 0644 "$SRC/systemd/edgedetect.service" "$UNIT_DIR/edgedetect.service"
  if custom_paths; then
    run install -d -m 0755 "$DROPIN_DIR"
    paths_dropin | write_file "$DROPIN"
  elif [ -f "$DROPIN" ]; then
    run rm -f "$DROPIN"  # back to the default paths
  fi
  if have_systemd; then
    run systemctl daemon-reload
    run systemctl enable edgedetect.service
    if [ "$start" = 1 ]; then run systemctl restart edgedetect.service; fi
  fi
  # 8. the old venvs, once nothing runs from them: after the restart, or where systemd runs none
  if [ "$start" = 1 ] || ! have_systemd; then
    remove_old_venvs "$venv_new"
  else
    for dir in "$PREFIX"/venv-*; do
      if [ -d "$dir" ] && [ "$dir" != "$venv_new" ]; then
        echo "kept $dir: the running service uses it until it restarts (systemctl restart edgedetect); the next install.sh that restarts it removes it"
      fi
    done
  fi
  if have_systemd; then
    done_line install.sh "edgedetect installed; follow it with: journalctl -u edgedetect -f"
  else
    done_line install.sh \
      "edgedetect installed; systemd is not running here, so the unit was not enabled"
  fi
}

"do_$action"
