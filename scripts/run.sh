#!/usr/bin/env bash
# The main job, on this machine: set up (idempotently), print this machine's listening sockets (the
# table of `portwarden gather`), then audit them against the bundled baseline policy (ports IANA has not
# assigned stay closed), write the fleet report under ./port-compliance-reports and print the summary and
# where the reports are. Exit non-zero when the gate fails.
# Extra arguments go to ansible-playbook (e.g. -e port_compliance_policy=$PWD/policy.yml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
VENV=$PWD/.venv
# Use the collection just installed into the venv, not a copy elsewhere on the Ansible search path.
ANSIBLE_COLLECTIONS_PATH=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
export ANSIBLE_COLLECTIONS_PATH
export ANSIBLE_CALLBACK_RESULT_FORMAT=yaml ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
# Root already sees every process; otherwise escalate with sudo (become) for full coverage.
become=true
[ "$(id -u)" -eq 0 ] && become=false
# What listens first, so a person sees what the audit judges; its exit code (1: partial coverage) does
# not end the job: the audit after it fails closed on its own.
gather=("$VENV/bin/portwarden" gather)
if [ "$become" = true ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  gather=(sudo -n "${gather[@]}")
fi
echo "Listening sockets on this machine (portwarden gather):"
"${gather[@]}" || true
echo
exec "$VENV/bin/ansible-playbook" -i localhost, -c local \
  -e "ansible_python_interpreter=$VENV/bin/python" -e "port_compliance_become=$become" \
  -e "port_compliance_report_dir=$PWD/port-compliance-reports" \
  portwarden.compliance.audit "$@"
