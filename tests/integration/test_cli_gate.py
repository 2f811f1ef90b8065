"""`portwarden gate` on saved reports: the exit codes a pipeline relies on."""

import datetime
import json
import subprocess
import sys

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb

CLI = [sys.executable, '-m', 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli', 'gate']
POLICY = {'name': 'fleet', 'sha256': 'a' * 64, 'rules': []}
REGISTRY = {'date': '2026-08-17', 'sha256': 'b' * 64, 'records': 14533}


def finding(port, severity):
    return {'rule': 'r', 'severity': severity, 'status': 'drift', 'protocol': 'tcp', 'family': 'ipv4',
            'address': '0.0.0.0', 'port': port, 'service': None, 'waived': False, 'waiver': None, 'message': 'm',
            'processes': []}


def audit(status, findings=()):
    return {'status': status, 'findings': list(findings), 'reasons': [], 'warnings': [],
            'coverage': {'complete': True, 'errors': []}, 'evaluated_on': '2026-11-26'}


def write_report(tmp_path, hosts, name='report.json'):
    built = rb.build_report(hosts, POLICY, REGISTRY,
                            generated_at=datetime.datetime(2026, 11, 26, tzinfo=datetime.timezone.utc))
    path = tmp_path / name
    path.write_text(json.dumps(built))
    return path


def gate(*args):
    proc = subprocess.run(CLI + [str(arg) for arg in args], capture_output=True, text=True, check=False)
    assert 'Traceback' not in proc.stderr
    return proc


@pytest.mark.parametrize('hosts, args, code, verdict', [
    ([rb.host_entry('a', audit('compliant'))], [], 0, 'PASS'),
    ([rb.host_entry('a', audit('drift', [finding(856, 'high')]))], [], 1, 'DRIFT'),
    ([rb.host_entry('a', audit('drift', [finding(856, 'medium')]))], [], 0, 'PASS'),
    ([rb.host_entry('a', audit('drift', [finding(856, 'medium')]))], ['--fail-on', 'medium'], 1, 'DRIFT'),
    ([rb.host_entry('a', audit('compliant')), rb.host_entry('b', None, 'unreachable: timeout')], [], 2, 'UNKNOWN'),
    ([rb.host_entry('a', audit('compliant')), rb.host_entry('b', None, 'unreachable: timeout')],
     ['--allow-unknown'], 0, 'PASS'),
], ids=['compliant', 'high-drift', 'below-threshold', 'medium-threshold', 'unknown-host', 'unknown-allowed'])
def test_exit_codes(tmp_path, hosts, args, code, verdict):
    proc = gate(write_report(tmp_path, hosts), *args)
    assert proc.returncode == code, proc.stdout
    assert proc.stdout.startswith('portwarden gate: %s (policy fleet' % verdict)


def test_unusable_reports_exit_2(tmp_path):
    good = write_report(tmp_path, [rb.host_entry('a', audit('compliant'))])
    truncated = tmp_path / 'truncated.json'
    truncated.write_text(good.read_text()[:-40])
    other = tmp_path / 'other.json'
    other.write_text(json.dumps(dict(json.loads(good.read_text()), schema_version=99)))
    broken = tmp_path / 'broken.json'
    broken.write_text(json.dumps(dict(json.loads(good.read_text()), hosts=[{'host': 'a', 'status': 'fine'}])))
    for path, text in ((tmp_path / 'missing.json', 'cannot read'), (truncated, 'truncated'),
                       (other, 'schema version 99'), (broken, 'not a valid report')):
        proc = gate(path)
        assert proc.returncode == 2, (path, proc.stdout)
        assert text in proc.stdout


def test_the_gate_names_what_drifted(tmp_path):
    hosts = [rb.host_entry('a', audit('drift', [finding(856, 'high'), finding(8080, 'low')])),
             rb.host_entry('b', audit('drift', [dict(finding(23, 'critical'), where='docker:web')]))]
    proc = gate(write_report(tmp_path, hosts))
    assert proc.returncode == 1, proc.stdout
    assert 'b: tcp 0.0.0.0:23 in docker:web, rule r (critical); a: tcp 0.0.0.0:856, rule r (high)' in proc.stdout
    assert '8080' not in proc.stdout  # below --fail-on high


def test_port_report_failure_names_what_drifted(tmp_path):
    from tests.helpers.report_run import audit_result, drift_finding, run_port_report

    _proc, result = run_port_report(tmp_path / 'reports', {'web-1': audit_result(),
                                                           'web-2': audit_result('drift', [drift_finding(856)])},
                                    tmp_path, fail_on='high')
    assert result['failed']
    assert 'web-2: tcp 0.0.0.0:856, rule iana-unassigned-closed (high)' in result['msg'], result['msg']
