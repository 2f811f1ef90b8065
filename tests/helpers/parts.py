"""Part reports as port_report writes them (parts/RUN_ID/, every format, the JSON's manifest), without Ansible.

    path = write_part(report_dir, {'web-1': audit('compliant'), 'web-2': None}, minutes_ago=5)
    proc = merge_cli(path, '--report-dir', out, '--hosts', 'web-1,web-2,web-3')
"""

import datetime
import os
import subprocess
import sys

from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb
from ansible_collections.portwarden.compliance.plugins.module_utils import report_merge
from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_write import PartDir, render_set

POLICY = {'name': 'fleet', 'sha256': 'a' * 64, 'rules': [{'id': 'iana-unassigned-closed', 'severity': 'high',
                                                         'description': 'closed'}]}
REGISTRY = {'date': '2026-08-17', 'sha256': 'b' * 64, 'records': 14533}
CLI = [sys.executable, '-m', 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli']


def finding(port, severity='high', status='drift'):
    return {'rule': 'iana-unassigned-closed', 'severity': severity, 'status': status, 'protocol': 'tcp',
            'family': 'ipv4', 'address': '0.0.0.0', 'port': port, 'service': None, 'waived': False, 'waiver': None,
            'message': 'tcp 0.0.0.0:%d must be closed' % port, 'processes': []}


def audit(status='compliant', findings=()):
    return {'status': status, 'findings': list(findings), 'reasons': [], 'warnings': [],
            'coverage': {'complete': True, 'errors': []}, 'evaluated_on': '2026-11-26'}


def drift(port=856, severity='high'):
    return audit('drift', [finding(port, severity)])


def entries(audits):
    return [rb.host_entry(host, result, None if result else 'unreachable: timeout') for host, result in audits.items()]


def build_part(audits, minutes_ago=5, policy=None, registry=None, run_id=None, now=None):
    policy, registry = policy or POLICY, registry or REGISTRY
    now = now or datetime.datetime.now(datetime.timezone.utc)
    report = rb.build_report(entries(audits), policy, registry, generated_at=now - datetime.timedelta(minutes=minutes_ago),
                             run_id=run_id or report_merge.make_run_id())
    report['scope'] = report_merge.report_scope('part', report['run_id'], list(audits), policy, registry)
    return report


def write_part(report_dir, audits, formats=tuple(FILE_NAMES), **kwargs):
    """Write a part set under report_dir/parts/RUN_ID/ as port_report does; the JSON's path."""
    report = kwargs.pop('report', None) or build_part(audits, **kwargs)
    with PartDir(str(report_dir), report['run_id']) as target:
        target.write_set(render_set(report, list(formats)))
        return os.path.join(target.path, FILE_NAMES['json'])


def whole_report(audits, policy=None, registry=None):
    return rb.build_report(entries(audits), policy or POLICY, registry or REGISTRY)


def merge_cli(*args, timeout=600):
    proc = subprocess.run(CLI + ['merge'] + [str(arg) for arg in args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    assert 'Traceback' not in proc.stderr + proc.stdout, proc.stderr
    return proc


def gate_cli(*args):
    proc = subprocess.run(CLI + ['gate'] + [str(arg) for arg in args], capture_output=True, text=True, check=False)
    assert 'Traceback' not in proc.stderr + proc.stdout, proc.stderr
    return proc
