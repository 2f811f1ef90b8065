#!/usr/bin/env bash
# Idempotent set-up shared by scripts/run.sh and scripts/test.sh.
#   scripts/setup.sh run    Debian packages for the main job, .venv with the collection installed (pip install .)
#   scripts/setup.sh test   Debian packages for the tests, .venv-test (test tools), .venv-sanity (ansible-test)
# Each step checks first and does nothing when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}

log() { printf '[setup] %s\n' "$*" >&2; }

ensure_debs() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}"
    return 1
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_venv DIR STAMP-INPUT PIP-ARGS...: (re)install only when the stamp input changed.
ensure_venv() {
  local dir=$1 stamp_input=$2
  shift 2
  local stamp
  stamp=$(printf '%s' "$stamp_input" | sha256sum | cut -c1-16)
  [ -x "$dir/bin/python" ] || { log "creating $dir"; "$PYTHON" -m venv "$dir"; }
  if [ "$(cat "$dir/.portwarden-stamp" 2>/dev/null)" != "$stamp" ]; then
    log "installing into $dir: $*"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@"
    echo "$stamp" > "$dir/.portwarden-stamp"
  fi
}

tree_hash() {
  # What `pip install .` copies: a change to any of it reinstalls the collection.
  find plugins playbooks roles meta docs galaxy.yml pyproject.toml README.md -type f 2>/dev/null \
    -not -path '*/__pycache__/*' | sort | xargs sha256sum | sha256sum | cut -c1-16
}

case "${1:-}" in
  run)
    ensure_debs iproute2
    ensure_venv .venv "run $(tree_hash)" "$ROOT"
    ;;
  test)
    ensure_debs iproute2 openssh-server openssh-client nftables iptables util-linux git python3-minimal chromium systemd
    mkdir -p -m 0755 /run/sshd
    ensure_venv .venv-test "$(cat tests/requirements.txt)" -r tests/requirements.txt
    ensure_venv .venv-sanity "$(cat tests/requirements-sanity.txt)" -r tests/requirements-sanity.txt
    ;;
  *)
    echo "usage: $0 run|test" >&2
    exit 2
    ;;
esac
