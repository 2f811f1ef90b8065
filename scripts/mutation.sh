#!/usr/bin/env bash
# Mutation testing of the verdict code: mutmut 3 over evaluate_policy.py, report_build.py, policy_check.py and
# gather_sockets.py (its coverage logic scored on its own), run against the fast unit tests, then the score per
# file. Not part of CI; the tests that kill the mutants are.
#   scripts/mutation.sh                         stage, run every mutant, print the scores
#   scripts/mutation.sh --score                 print the scores of the last run again
#   scripts/mutation.sh --files evaluate_policy.py --max-children 2
#   scripts/mutation.sh --help                  every option
# Survivor lists are written to .mutation/survivors-<file>.txt (--survivors-dir DIR for elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv-mutation
stamp=$(sha256sum tests/requirements-mutation.txt | cut -c1-16)
[ -x "$VENV/bin/python" ] || { echo "[mutation] creating $VENV" >&2; "$PYTHON" -m venv "$VENV"; }
if [ "$(cat "$VENV/.portwarden-stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "[mutation] installing tests/requirements-mutation.txt into $VENV" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements-mutation.txt
  echo "$stamp" > "$VENV/.portwarden-stamp"
fi
exec "$VENV/bin/python" scripts/mutation.py "$@"
