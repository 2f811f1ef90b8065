#!/usr/bin/env bash
# The main job, on this machine: set up (idempotently), then audit this host's listening ports against
# the bundled baseline policy (ports IANA has not assigned stay closed), write the fleet report under
# ./port-compliance-reports and print the summary and where the reports are. Exit non-zero when the gate fails.
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
exec "$VENV/bin/ansible-playbook" -i localhost, -c local \
  -e "ansible_python_interpreter=$VENV/bin/python" -e "port_compliance_become=$become" \
  -e "port_compliance_report_dir=$PWD/port-compliance-reports" \
  portwarden.compliance.audit "$@"
