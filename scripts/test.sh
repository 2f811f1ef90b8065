#!/usr/bin/env bash
# Every test, on this machine: set up (idempotently), then run unit, real-socket, differential, fleet,
# packaging, ansible-test sanity and lint suites. Needs root (network namespaces, sshd, apt).
# Extra arguments go to pytest (e.g. -k fleet, -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
exec .venv-test/bin/python -m pytest "$@"
