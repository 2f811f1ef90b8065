"""Attacks on `portwarden gate`: reports that are valid JSON, even schema-valid, but lie or cannot be trusted.

Each must exit 2 with a sentence naming the file and what is wrong: never a traceback, never a pass.
"""

import copy
import datetime
import json
import os
import subprocess
import sys
import threading

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb

CLI = [sys.executable, '-m', 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli', 'gate']
POLICY = {'name': 'fleet', 'sha256': 'a' * 64, 'rules': []}
REGISTRY = {'date': '2026-08-17', 'sha256': 'b' * 64, 'records': 14533}


def finding(port, severity='high', status='drift'):
    return {'rule': 'r', 'severity': severity, 'status': status, 'protocol': 'tcp', 'family': 'ipv4',
            'address': '0.0.0.0', 'port': port, 'service': None, 'waived': False, 'waiver': None, 'message': 'm',
            'processes': []}


def audit(status, findings=()):
    return {'status': status, 'findings': list(findings), 'reasons': [], 'warnings': [],
            'coverage': {'complete': True, 'errors': []}, 'evaluated_on': '2026-11-26'}


def valid_report(when=None):
    """A compliant two-host fleet, generated a minute ago: the gate passes it."""
    when = when or datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    return rb.build_report([rb.host_entry('a', audit('compliant')), rb.host_entry('b', audit('compliant'))],
                           POLICY, REGISTRY, generated_at=when)


def gate(tmp_path, content, *args, name="report.json", timeout=60):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    proc = subprocess.run(CLI + [str(path)] + list(args), capture_output=True, text=True, check=False, timeout=timeout)
    assert 'Traceback' not in proc.stdout + proc.stderr and 'internal error' not in proc.stderr, proc.stderr
    return proc


def test_the_valid_report_passes(tmp_path):
    proc = gate(tmp_path, valid_report())
    assert proc.returncode == 0, proc.stdout


def lying(change):
    report = valid_report()
    change(report)
    return report


def _set(path, value):
    def change(report):
        target = report
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


LIES = [
    ('no-hosts-summary-drift', lambda r: (r.update(hosts=[]), r['summary'].update(hosts=5, drift=5, compliant=0)),
     'summary.'),
    ('no-hosts-at-all', lambda r: (r.update(hosts=[]), r['summary'].update(hosts=0, compliant=0)), 'lists no host'),
    ('summary-compliant-host-absent', lambda r: (r['hosts'].pop(), r['summary'].update(hosts=2)), 'summary.'),
    ('compliant-with-drift', lambda r: r['hosts'][0]['findings'].append(dict(finding(856), where='host')), 'host a'),
    ('drift-without-drift', _set(('hosts', 1, 'status'), 'drift'), 'host b'),
    ('compliant-without-coverage', _set(('hosts', 0, 'coverage'), None), 'host a'),
    ('compliant-partial-coverage', _set(('hosts', 0, 'coverage'), {'complete': False}), 'host a'),
    ('compliant-with-errors', _set(('hosts', 0, 'errors'), ['ssh: timeout']), 'host a'),
    ('host-listed-twice', lambda r: (r['hosts'].append(copy.deepcopy(r['hosts'][0])), r['summary'].update(
        hosts=3, compliant=3)), 'listed twice'),
    ('generated-in-the-future', _set(('generated_at',), '2999-01-01T00:00:00Z'), 'in the future'),
    ('generated-at-not-a-time', _set(('generated_at',), 'yesterday'), 'generated_at'),
]


@pytest.mark.parametrize('change, says', [(change, says) for _name, change, says in LIES],
                         ids=[name for name, _change, _says in LIES])
def test_a_report_that_contradicts_itself_is_refused(tmp_path, change, says):
    proc = gate(tmp_path, lying(change))
    assert proc.returncode == 2, proc.stdout
    assert 'report.json' in proc.stdout and says in proc.stdout, proc.stdout


def test_a_report_older_than_max_age_is_refused(tmp_path):
    old = valid_report(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=25))
    assert gate(tmp_path, old).returncode == 0
    proc = gate(tmp_path, old, '--max-age', '24h')
    assert proc.returncode == 2 and 'older than --max-age' in proc.stdout, proc.stdout
    assert gate(tmp_path, old, '--max-age', '2d').returncode == 0
    bad = subprocess.run(CLI + [str(tmp_path / 'report.json'), '--max-age', 'soon'], capture_output=True, text=True,
                         check=False)
    assert bad.returncode == 2 and "'soon' is not an age" in bad.stderr, bad.stderr


def test_a_deeply_nested_report_is_named(tmp_path):
    text = json.dumps(valid_report())
    nested = text[:-1] + ', "tool": ' + '[' * 100000 + ']' * 100000 + '}'
    proc = gate(tmp_path, nested.encode())
    assert proc.returncode == 2 and 'report.json' in proc.stdout and 'nested too deeply' in proc.stdout, \
        proc.stdout + proc.stderr


@pytest.mark.parametrize('mangle, says', [
    (lambda text: text.replace('"tool": {', '"tool": {"bogus": NaN, ', 1), 'NaN'),
    (lambda text: text.replace('"status": "compliant"', '"status": "drift", "status": "compliant"', 1), 'twice'),
    (lambda text: '\ufeff' + text, 'byte order mark'),
], ids=['nan', 'duplicate-key', 'bom'])
def test_json_readers_would_disagree_on_is_refused(tmp_path, mangle, says):
    proc = gate(tmp_path, mangle(json.dumps(valid_report())).encode('utf-8'))
    assert proc.returncode == 2 and says in proc.stdout, proc.stdout


def test_a_fifo_is_not_a_report(tmp_path):
    fifo = tmp_path / 'report.json'
    os.mkfifo(fifo)
    try:
        proc = subprocess.run(CLI + [str(fifo)], capture_output=True, text=True, check=False, timeout=20)
    except subprocess.TimeoutExpired:
        threading.Thread(target=lambda: os.close(os.open(fifo, os.O_WRONLY)), daemon=True).start()
        pytest.fail('portwarden gate hung on a FIFO')
    assert proc.returncode == 2 and 'not a regular file' in proc.stdout, proc.stdout
