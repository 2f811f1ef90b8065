"""Run the port_report action for real: ansible-playbook on the controller, with each host's audit result
given as an inventory variable (no host is contacted: port_report runs on the controller only).

    proc, result = run_port_report(report_dir, {'web-1': audit_result, 'web-2': None}, workdir=tmp_path)

``result`` is the task's registered result (the action's return value), read from a file the play writes.
``wrap`` prefixes the command (``['nsenter', '-t', PID, '-m']`` to run it in another mount namespace).
"""

import json
import os
import subprocess
import sys

import yaml

POLICY_INFO = {'name': 'fleet', 'sha256': 'a' * 64,
               'rules': [{'id': 'iana-unassigned-closed', 'severity': 'high', 'description': 'closed'}]}


def audit_result(status='compliant', findings=(), reasons=()):
    """A port_audit result as the role registers it."""
    return {'changed': False, 'status': status, 'findings': list(findings), 'reasons': list(reasons), 'warnings': [],
            'coverage': {'complete': not reasons, 'errors': list(reasons)}, 'evaluated_on': '2026-11-26',
            'policy': {'name': POLICY_INFO['name'], 'sha256': POLICY_INFO['sha256']}}


def drift_finding(port, severity='high', rule='iana-unassigned-closed', protocol='tcp', address='0.0.0.0'):
    return {'rule': rule, 'severity': severity, 'status': 'drift', 'protocol': protocol, 'family': 'ipv4',
            'address': address, 'port': port, 'service': None, 'waived': False, 'waiver': None,
            'message': '%s %s:%d must be closed' % (protocol, address, port), 'processes': []}


def _tool(name):
    return os.path.join(os.path.dirname(sys.executable), name)


def run_port_report(report_dir, audits, workdir, wrap=(), timeout=300, **options):
    """Run port_report once over ``audits`` (host -> port_audit result, None for a host without one)."""
    workdir = str(workdir)
    out = os.path.join(workdir, 'port_report-result.json')
    if os.path.exists(out):
        os.unlink(out)
    host_vars = dict((host, {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                             'port_compliance_audit': audit}) for host, audit in audits.items())
    inventory = {'all': {'hosts': host_vars}}
    args = dict({'report_dir': str(report_dir), 'hosts': list(audits), 'policy_info': POLICY_INFO}, **options)
    play = [{'hosts': 'localhost', 'gather_facts': False, 'connection': 'local', 'tasks': [
        {'name': 'report', 'portwarden.compliance.port_report': args, 'register': 'out', 'ignore_errors': True},
        {'name': 'save', 'ansible.builtin.copy': {'content': '{{ out | to_json }}', 'dest': out}},
    ]}]
    with open(os.path.join(workdir, 'inventory.yml'), 'w') as handle:
        yaml.safe_dump(inventory, handle)
    with open(os.path.join(workdir, 'report.yml'), 'w') as handle:
        yaml.safe_dump(play, handle)
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_LOCALHOST_WARNING='0',
               ANSIBLE_INVENTORY_UNPARSED_WARNING='0', ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    proc = subprocess.run(list(wrap) + [_tool('ansible-playbook'), '-i', os.path.join(workdir, 'inventory.yml'),
                                        os.path.join(workdir, 'report.yml')],
                          capture_output=True, text=True, env=env, timeout=timeout, check=False)
    result = None
    if os.path.exists(out):
        with open(out) as handle:
            result = json.load(handle)
    return proc, result
