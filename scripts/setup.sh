#!/usr/bin/env bash
# Idempotent set-up shared by scripts/run.sh and scripts/test.sh.
#   scripts/setup.sh run    Debian packages for the main job, .venv with the collection installed (pip install .)
#   scripts/setup.sh test   Debian packages for the tests, .venv-test (test tools), .venv-sanity (ansible-test)
#   scripts/setup.sh matrix the version matrix: .venv-core-2.NN per tests/requirements-core-2.NN.txt (on the
#                           controller Python its header names) and .venv-target-3.N per target Python
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

# find_python X.Y: the path of a working Python X.Y, or nothing. Debian's own first, then PATH (a pyenv
# shim of a version pyenv has not selected fails, so each candidate is run), then pyenv's installs.
find_python() {
  local want=$1 candidate
  for candidate in "/usr/bin/python$want" "$(command -v "python$want" 2>/dev/null)" \
      $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$want".*/bin/"python$want" 2>/dev/null | sort -V -r); do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    if [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ] \
        && "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# header_field FILE NAME: the value of a '# NAME: value' line of FILE.
header_field() {
  sed -n "s/^# $2: *//p" "$1" | head -n 1
}

ensure_matrix() {
  local file minor python version
  for file in tests/requirements-core-*.txt; do
    minor=${file#tests/requirements-core-}
    minor=${minor%.txt}
    version=$(header_field "$file" controller-python)
    python=$(find_python "$version") || { log "ansible-core $minor needs Python $version on the controller: none found"; return 1; }
    PYTHON=$python ensure_venv ".venv-core-$minor" "$python $(cat "$file")" -r "$file"
  done
  for version in $(header_field tests/requirements-target.txt target-pythons); do
    python=$(find_python "$version") || { log "target Python $version: none found"; return 1; }
    PYTHON=$python ensure_venv ".venv-target-$version" "$python $(cat tests/requirements-target.txt)" \
      -r tests/requirements-target.txt
  done
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
    ensure_matrix
    ;;
  matrix)
    ensure_matrix
    ;;
  *)
    echo "usage: $0 run|test|matrix" >&2
    exit 2
    ;;
esac
