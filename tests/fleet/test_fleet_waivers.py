"""Process-bound waivers on a real SSH fleet: the same port on three hosts, one waiver bound to one executable.

The role audits three hosts (network namespaces, over SSH) against policies/waivers.yml, whose waiver of TCP 856
names the executable ``*/pww-bin/pww-agent``. Each host holds TCP 856 with a process named ``pww-agent``:

- pww-host01: the granted agent, run from a copy of the interpreter at ``.../pww-bin/pww-agent``: waived;
- pww-host02: a rogue with the agent's name, run from the usual interpreter: drift, and the message names it;
- pww-host03: the granted agent on 856 and, beside it, a rogue on 857 (a port the waiver does not name): only
  857 is drift.

Then ``portwarden explain`` reads the saved fleet report the role wrote: without the policy it tells the report's
findings; with the policy it re-explains rule by rule and waiver by waiver, the same findings as the report.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(HERE, 'playbooks', 'role_audit.yml')
POLICY = os.path.join(HERE, 'policies', 'waivers.yml')
AS_OF = '2026-12-01'
CLI_MODULE = 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli'
NAME = 'pww-agent'


def _tcp(port):
    return {'protocol': 'tcp', 'address': '0.0.0.0', 'port': port}


@pytest.fixture(scope='module')
def audited(module_fleet_factory, tmp_path_factory):
    fleet = module_fleet_factory(3, prefix='pww')
    binaries = tmp_path_factory.mktemp('pww') / 'pww-bin'
    binaries.mkdir()
    agent = str(binaries / NAME)
    shutil.copy2(os.path.realpath(sys.executable), agent)  # the same interpreter, another executable path
    holders = {
        'granted': fleet.listen('pww-host01', {'name': NAME, 'sockets': [_tcp(856)]}, python=agent),
        'rogue': fleet.listen('pww-host02', {'name': NAME, 'sockets': [_tcp(856)]}),
        'granted3': fleet.listen('pww-host03', {'name': NAME, 'sockets': [_tcp(856)]}, python=agent),
        'rogue3': fleet.listen('pww-host03', {'name': NAME, 'sockets': [_tcp(857)]}),
    }
    report_dir = str(tmp_path_factory.mktemp('pww-report'))
    extra = {'port_compliance_report_dir': report_dir, 'port_compliance_as_of': AS_OF,
             'port_compliance_policy': '../policies/waivers.yml', 'port_compliance_fail_on': 'never',
             'port_compliance_fail_on_unknown': False}
    proc = fleet.playbook(PLAYBOOK, extra_vars=extra, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    path = os.path.join(report_dir, 'portwarden-report.json')
    with open(path) as handle:
        report = json.load(handle)
    return fleet, holders, agent, path, report


def _host(report, host):
    (entry,) = [entry for entry in report['hosts'] if entry['host'] == host]
    return entry


def _explain(*args):
    proc = subprocess.run([sys.executable, '-m', CLI_MODULE, 'explain'] + [str(arg) for arg in args],
                          capture_output=True, text=True, check=False, timeout=120)
    assert 'Traceback' not in proc.stderr, proc.stderr
    return proc


def test_the_granted_executable_is_waived(audited):
    _fleet, holders, agent, _path, report = audited
    entry = _host(report, 'pww-host01')
    assert entry['status'] == 'compliant', entry
    (finding,) = entry['findings']
    assert (finding['port'], finding['status'], finding['waived']) == (856, 'waived', True)
    assert finding['waiver']['ticket'] == 'PWW-856' and finding['waiver']['exe'] == ['*/pww-bin/pww-agent']
    assert [(proc['pid'], proc['name'], proc['exe']) for proc in finding['processes']] == \
        [(holders['granted'].pids[0], NAME, agent)]


def test_another_executable_with_the_same_name_is_drift_and_named(audited):
    _fleet, holders, _agent, _path, report = audited
    entry = _host(report, 'pww-host02')
    assert entry['status'] == 'drift', entry
    (finding,) = entry['findings']
    pid = holders['rogue'].pids[0]
    assert (finding['port'], finding['status'], finding['waiver']) == (856, 'drift', None)
    assert finding['message'].endswith(
        '; waiver (PWW-856) does not cover %s[%d] with executable %s; allowed executables: */pww-bin/pww-agent'
        % (NAME, pid, os.path.realpath(sys.executable)))
    assert entry['reasons'] == []  # every holder was seen (root over SSH): drift, not unknown


def test_the_waiver_covers_only_its_port_beside_a_rogue(audited):
    _fleet, _holders, _agent, _path, report = audited
    entry = _host(report, 'pww-host03')
    assert entry['status'] == 'drift'
    assert sorted((f['port'], f['status']) for f in entry['findings']) == [(856, 'waived'), (857, 'drift')]
    (rogue,) = [f for f in entry['findings'] if f['port'] == 857]
    assert 'waiver' not in rogue['message']  # the waiver is about 856 only: it says nothing on 857


def test_explain_tells_the_saved_report(audited):
    _fleet, holders, _agent, path, report = audited
    proc = _explain('--host', 'pww-host02', '--port', 856, path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == 'pww-host02 in a saved report: host status drift, policy pww-fleet (sha256 %s), evaluated on %s' % (
        report['policy']['sha256'], AS_OF)
    assert 'finding of iana-unassigned-closed (high) on tcp 0.0.0.0:856: drift' in lines
    assert 'does not cover %s[%d]' % (NAME, holders['rogue'].pids[0]) in proc.stdout
    assert lines[-1] == 'decision: drift (decided by iana-unassigned-closed)'


@pytest.mark.parametrize('host, decision, verdict', [
    ('pww-host01', 'waived', 'covers'),
    ('pww-host02', 'drift', 'not_covered'),
])
def test_explain_with_the_policy_reproduces_the_report(audited, host, decision, verdict):
    _fleet, _holders, _agent, path, report = audited
    proc = _explain('--host', host, '--port', 856, '--policy', POLICY, '--format', 'json', path)
    assert proc.returncode == 0, proc.stderr
    (explanation,) = json.loads(proc.stdout)['explanations']
    assert explanation['report'] == {'path': path, 'status': _host(report, host)['status'], 'reproduced': True}
    assert explanation['decision'] == decision
    assert explanation['decided_by'] == ['iana-unassigned-closed']
    assert explanation['evaluated_on'] == AS_OF
    (rule,) = explanation['rules']
    assert (rule['rule'], rule['matched'], rule['outcome']) == ('iana-unassigned-closed', True, 'drift')
    (finding,) = explanation['findings']
    assert [step['verdict'] for step in finding['waivers']] == [verdict]
    text = _explain('--host', host, '--port', 856, '--policy', POLICY, path)
    assert text.returncode == 0
    assert 'the same findings as the report' in text.stdout
    assert text.stdout.rstrip().endswith('decision: %s (decided by iana-unassigned-closed)' % decision)


def test_explain_errors_are_one_line(audited, tmp_path):
    _fleet, _holders, _agent, path, _report = audited
    other = tmp_path / 'other.yml'
    with open(POLICY) as handle:
        other.write_text(handle.read().replace('pww-fleet', 'pww-other'))
    cases = [
        (('--host', 'pww-host09', '--port', 856, path),
         'no host pww-host09 in this report (it has 3: pww-host01, pww-host02, pww-host03)'),
        (('--host', 'pww-host01', '--port', 22, path), 'host pww-host01 (compliant) has no finding on tcp or udp port 22'),
        (('--host', 'pww-host01', '--port', 856, '--policy', other, path), 'is not the one the report was judged under'),
    ]
    for args, said in cases:
        proc = _explain(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stdout == ''
        assert len(proc.stderr.splitlines()) == 1 and said in proc.stderr, proc.stderr
