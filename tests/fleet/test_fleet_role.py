"""The port_compliance role against a real ten-host fleet, over SSH, with ansible-playbook.

Every host (a network namespace) holds real listeners, or none. One host is made unreachable in the
middle of the first run, after it has been reached; on another the gather fails (the psutil backend
under a Python without psutil). The role validates the policy once, audits every host, writes the
fleet report once and gates on it. The test reads the JSON report, checked against the published
schema. Seven runs share one fleet, in this order:

- gate: fail_on high. The play fails after the report is written, naming the worst hosts and the
  report paths; the unreachable and the failed host are unknown, with the reason.
- pass: one listener stopped and another opened first; fail_on never, fail_on_unknown false. The play
  passes; the report lists the resolved and the new finding, and history/ holds the gate run's report.
- check: --check -vvv, through the collection playbook portwarden.compliance.audit with the default
  report directory. The same verdicts, the listeners untouched, one module round trip per host.
- limit: --limit to three hosts, with the role's default gate. Only they are reported and judged.
- serial: serial 3. One report, after the last batch, with every host once; the gate judges the fleet.
- invalid: a policy with a typo. The play stops with the validation errors; no host is contacted.
- remediate: remediate mode with the invalid policy stops the play before any host is contacted.
"""

import collections
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

import jsonschema
import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import policy_digest
from ansible_collections.portwarden.compliance.plugins.module_utils.report_schema import REPORT_SCHEMA
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import read_policy_file
from tests.conftest import REPO

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(HERE, 'playbooks', 'role_audit.yml')
COLLECTION_PLAYBOOK = 'portwarden.compliance.audit'
POLICY = os.path.join(HERE, 'policies', 'role.yml')
AS_OF = '2026-12-01'
REGISTRY_DATE = '2026-08-17'
REPORT_FILES = {'html': 'portwarden-report.html', 'json': 'portwarden-report.json',
                'junit': 'portwarden-report.junit.xml', 'markdown': 'portwarden-report.md',
                'prometheus': 'portwarden.prom'}

N_HOSTS = 10
UNREACHABLE = 'pwr-host08'
GATHER_FAILS = 'pwr-host09'
# The psutil backend under Debian's python3, which has no psutil: the gather module fails.
HOSTVARS = {GATHER_FAILS: {'port_compliance_backend': 'psutil', 'ansible_python_interpreter': '/usr/bin/python3'}}


def _tcp(address, port):
    return {'protocol': 'tcp', 'address': address, 'port': port}


SPECS = {
    'pwr-host01': None,  # opens TCP 859 before the pass run
    'pwr-host02': {'name': 'pwr-h02-agent', 'sockets': [_tcp('0.0.0.0', 856)]},  # stopped before the pass run
    'pwr-host03': {'name': 'pwr-h03-udp', 'sockets': [{'protocol': 'udp', 'address': '0.0.0.0', 'port': 857}]},
    'pwr-host04': {'name': 'pwr-h04-loop6', 'sockets': [_tcp('::1', 858)]},
    'pwr-host05': {'name': 'pwr-web', 'sockets': [_tcp('0.0.0.0', 8080)]},  # allowed
    'pwr-host06': {'name': 'pwr-h06-waived', 'sockets': [_tcp('0.0.0.0', 856)]},
    'pwr-host07': {'name': 'pwr-h07-expired', 'sockets': [_tcp('0.0.0.0', 856)]},
    UNREACHABLE: None,
    GATHER_FAILS: {'name': 'pwr-h09-unseen', 'sockets': [_tcp('0.0.0.0', 856)]},
    'pwr-host10': {'name': 'pwr-h10-rogue', 'sockets': [_tcp('0.0.0.0', 8080)]},
}
NEW_LISTENER = ('pwr-host01', {'name': 'pwr-h01-new', 'sockets': [_tcp('0.0.0.0', 859)]})
STOPPED_LISTENER = 'pwr-host02'

F = collections.namedtuple('F', 'rule severity status protocol family address port')
UNASSIGNED = 'iana-unassigned-closed'

# Every host's status and findings (worst first) in the gate run.
EXPECTED = {
    'pwr-host01': ('compliant', []),
    'pwr-host02': ('drift', [F(UNASSIGNED, 'high', 'drift', 'tcp', 'ipv4', '0.0.0.0', 856)]),
    'pwr-host03': ('drift', [F(UNASSIGNED, 'high', 'drift', 'udp', 'ipv4', '0.0.0.0', 857)]),
    'pwr-host04': ('drift', [F(UNASSIGNED, 'high', 'drift', 'tcp', 'ipv6', '::1', 858)]),
    'pwr-host05': ('compliant', []),
    'pwr-host06': ('compliant', [F(UNASSIGNED, 'high', 'waived', 'tcp', 'ipv4', '0.0.0.0', 856)]),
    'pwr-host07': ('drift', [F(UNASSIGNED, 'high', 'drift', 'tcp', 'ipv4', '0.0.0.0', 856)]),
    UNREACHABLE: ('unknown', []),
    GATHER_FAILS: ('unknown', []),
    'pwr-host10': ('drift', [F('web-process', 'medium', 'drift', 'tcp', 'ipv4', '0.0.0.0', 8080)]),
}
# ... and in every later run: 856 closed on pwr-host02, 859 opened on pwr-host01.
EXPECTED_AFTER = dict(EXPECTED, **{
    'pwr-host01': ('drift', [F(UNASSIGNED, 'high', 'drift', 'tcp', 'ipv4', '0.0.0.0', 859)]),
    'pwr-host02': ('compliant', []),
})
UNREACHABLE_REASON = 'unreachable: '
GATHER_FAILED_REASON = "gather failed: Failed to import the required Python library (psutil) on "

# Run on the controller by the playbook, mid-run: it asks the host's ssh ControlMaster to exit (else
# Ansible would reuse it) and waits until it has, then kills every process in the host's namespace
# and deletes it: the ProxyCommand can no longer reach the host.
BREAK_CODE = '\n'.join([
    'import glob, os, subprocess, sys, time',
    'sys.path.insert(0, sys.argv[1])',
    'from tests.helpers.netns import kill_namespace',
    'control_dir, host = sys.argv[2], sys.argv[3]',
    'for path in glob.glob(os.path.join(control_dir, host + "-*")):',
    '    subprocess.run(["ssh", "-F", "/dev/null", "-o", "ControlPath=" + path, "-O", "exit", host],',
    '                   capture_output=True, timeout=15, check=False)',
    '    deadline = time.monotonic() + 5',
    '    while os.path.lexists(path) and time.monotonic() < deadline:',
    '        time.sleep(0.05)',
    'sys.exit(kill_namespace(host))',
])

Run = collections.namedtuple('Run', 'proc report report_dir files elapsed')
Fleetrun = collections.namedtuple('Fleetrun', 'fleet holders runs sockets_before sockets_after gate_report_copy')


def _role_vars(report_dir, **extra):
    variables = {'port_compliance_report_dir': report_dir, 'port_compliance_as_of': AS_OF,
                 'port_compliance_policy': '../policies/role.yml'}
    variables.update(extra)
    return variables


def _read_report(report_dir):
    path = os.path.join(report_dir, REPORT_FILES['json'])
    parts = glob.glob(os.path.join(report_dir, 'parts', '*', REPORT_FILES['json']))
    if not os.path.exists(path) and len(parts) == 1:
        path = parts[0]  # a run over part of the inventory (--limit) writes a part
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def _listening(fleet, host):
    """The host's listening sockets as ``ss`` sees them (local address and process columns)."""
    shown = fleet.run(host, ['ss', '-H', '-ltnup'], check=True).stdout
    return sorted(' '.join(line.split()[3:]) for line in shown.splitlines())


@pytest.fixture(scope='module')
def fleetrun(module_fleet_factory, tmp_path_factory):
    started = time.monotonic()
    fleet = module_fleet_factory(N_HOSTS, prefix='pwr', hostvars=HOSTVARS)
    assert fleet.hosts == sorted(SPECS)
    print('\nfleet of %d hosts up in %.2fs' % (len(fleet.hosts), time.monotonic() - started))
    holders = dict((host, fleet.listen(host, spec)) for host, spec in SPECS.items() if spec is not None)
    runs = {}
    reports = str(tmp_path_factory.mktemp('role-reports'))

    def run(name, extra_vars, playbook=PLAYBOOK, report_dir=None, **kwargs):
        report_dir = report_dir or os.path.join(reports, name)
        started = time.monotonic()
        if playbook == COLLECTION_PLAYBOOK:
            args = ['-i', fleet.inventory, '-e', json.dumps(extra_vars)]
            if kwargs.get('limit'):
                args += ['--limit', kwargs['limit']]
            if kwargs.get('check'):
                args.append('--check')
            proc = fleet.run_ansible('ansible-playbook', args + list(kwargs.get('args', ())) + [playbook], timeout=300)
        else:
            proc = fleet.playbook(playbook, extra_vars=extra_vars, timeout=300, **kwargs)
        elapsed = time.monotonic() - started
        print('ansible-playbook %s: exit %d in %.2fs' % (name, proc.returncode, elapsed))
        files = sorted(os.listdir(report_dir)) if os.path.isdir(report_dir) else None
        runs[name] = Run(proc, _read_report(report_dir), report_dir, files, elapsed)
        return runs[name]

    shared = os.path.join(reports, 'shared')
    break_argv = [sys.executable, '-c', BREAK_CODE, REPO, fleet.control_dir, UNREACHABLE]
    run('gate', _role_vars(shared, port_compliance_fail_on='high', pwr_break_argv=break_argv), report_dir=shared)
    fleet.break_host(UNREACHABLE)  # bookkeeping only: the run above already removed it
    gate_report_copy = os.path.join(reports, 'gate-report.json')
    if runs['gate'].report is not None:
        shutil.copyfile(os.path.join(shared, REPORT_FILES['json']), gate_report_copy)
    else:
        print(runs['gate'].proc.stdout, runs['gate'].proc.stderr)

    holders[STOPPED_LISTENER].stop()
    holders[NEW_LISTENER[0]] = fleet.listen(*NEW_LISTENER)
    run('pass', _role_vars(shared, port_compliance_fail_on='never', port_compliance_fail_on_unknown=False),
        report_dir=shared)

    live = [host for host in fleet.hosts if host != UNREACHABLE]
    sockets_before = dict((host, _listening(fleet, host)) for host in live)
    # The collection playbook with the default report directory, under the run's working directory.
    run('check', dict(port_compliance_hosts='fleet', port_compliance_policy=POLICY, port_compliance_as_of=AS_OF,
                      port_compliance_fail_on='never', port_compliance_fail_on_unknown=False),
        playbook=COLLECTION_PLAYBOOK, report_dir=fleet.path('port-compliance-reports'), check=True, args=('-vvv',))
    sockets_after = dict((host, _listening(fleet, host)) for host in live)

    run('limit', dict(port_compliance_report_dir=os.path.join(reports, 'limit'), port_compliance_policy=POLICY,
                      port_compliance_as_of=AS_OF),
        playbook=COLLECTION_PLAYBOOK, limit='pwr-host01,pwr-host05,%s' % UNREACHABLE)
    run('serial', _role_vars(os.path.join(reports, 'serial'), port_compliance_fail_on='high', pwr_serial=3))
    run('invalid', _role_vars(os.path.join(reports, 'invalid'), port_compliance_policy='../policies/invalid.yml'),
        args=('-vvv',))
    run('remediate', _role_vars(os.path.join(reports, 'remediate'), port_compliance_mode='remediate',
                                port_compliance_remediate_default='kill', port_compliance_policy='../policies/invalid.yml'),
        args=('-vvv',))
    yield Fleetrun(fleet, holders, runs, sockets_before, sockets_after, gate_report_copy)
    _exit_control_masters(fleet)


def _exit_control_masters(fleet):
    """Ask every ControlMaster to exit and wait until its socket is gone, before the fleet's teardown.

    A master unlinks its own socket as it exits; the harness's teardown removes the socket after
    ``ssh -O exit`` and can race with that (FileNotFoundError, reported as a teardown problem).
    """
    for socket_path in glob.glob(os.path.join(fleet.control_dir, '*')):
        subprocess.run(['ssh', '-F', '/dev/null', '-o', 'ControlPath=' + socket_path, '-O', 'exit', 'fleet-host'],
                       capture_output=True, timeout=15, check=False)
        deadline = time.monotonic() + 5
        while os.path.lexists(socket_path) and time.monotonic() < deadline:
            time.sleep(0.05)


def _hosts(report):
    return dict((entry['host'], entry) for entry in report['hosts'])


def _findings(entry):
    return [F(*(finding[field] for field in F._fields)) for finding in entry['findings']]


def _failure(proc):
    """The result of the one task that failed the play (the report step), from its ``fatal:`` line."""
    starts = [match.end() for match in re.finditer(r'^fatal: \[[^\]]+\]: FAILED! => ', proc.stdout, re.M)]
    assert len(starts) == 1, proc.stdout + proc.stderr
    return json.JSONDecoder().raw_decode(proc.stdout, starts[0])[0]  # one line, or indented under -vvv


def _task_output(proc, name):
    """What ansible-playbook printed for the task called ``name`` (up to the next task or the recap)."""
    match = re.search(r'^TASK \[[^\]]*%s[^\]]*\] \**\n(.*?)(?=^TASK \[|^PLAY RECAP)' % re.escape(name),
                      proc.stdout, re.M | re.S)
    assert match, 'no task %r in:\n%s' % (name, proc.stdout)
    return match.group(1)


def _validate(report):
    jsonschema.Draft202012Validator(REPORT_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(report)


def _expected_policy():
    return {'name': 'pwr-fleet', 'sha256': policy_digest(read_policy_file(POLICY)),
            'rules': [{'id': UNASSIGNED, 'severity': 'high', 'description': 'Ports IANA has not assigned must stay closed'},
                      {'id': 'web-process', 'severity': 'medium', 'description': 'Port 8080 belongs to pwr-web'}]}


def _check_entries(report, expected):
    hosts = _hosts(report)
    assert [entry['host'] for entry in report['hosts']] == sorted(expected)
    for host, (status, findings) in expected.items():
        entry = hosts[host]
        assert (entry['status'], _findings(entry)) == (status, findings), (host, entry['reasons'])
        if host in (UNREACHABLE, GATHER_FAILS):
            (reason,) = entry['reasons']
            assert reason.startswith(UNREACHABLE_REASON if host == UNREACHABLE else GATHER_FAILED_REASON), (host, reason)
            assert entry['coverage'] is None, host
        else:
            assert entry['reasons'] == [] and entry['errors'] == [], host
            assert entry['coverage']['complete'] is True, host
            assert entry['evaluated_on'] == AS_OF, host


# ---- gate run (fail_on high) ------------------------------------------------------------------

def test_gate_run_report_is_valid_and_complete(fleetrun):
    report = fleetrun.runs['gate'].report
    assert report is not None, 'no JSON report written'
    _validate(report)
    assert report['policy'] == _expected_policy()
    assert report['registry']['date'] == REGISTRY_DATE
    assert report['previous'] is None
    assert fleetrun.runs['gate'].files == sorted(REPORT_FILES.values())
    _check_entries(report, EXPECTED)
    assert report['summary'] == {
        'hosts': 10, 'compliant': 3, 'drift': 5, 'unknown': 2, 'waived_findings': 1, 'unknown_findings': 0,
        'incomplete': 2, 'remediated_findings': 0, 'remediation_actions': 0,
        'findings_by_severity': {'info': 0, 'low': 0, 'medium': 1, 'high': 4, 'critical': 0}}


def test_host_made_unreachable_mid_run_is_unknown_with_the_reason(fleetrun):
    proc = fleetrun.runs['gate'].proc
    # It was reached at the start of the run, then lost before the audit.
    assert 'ok: [%s]' % UNREACHABLE in _task_output(proc, 'Reach every host first'), proc.stdout
    assert re.search(r'fatal: \[%s\]: UNREACHABLE!.*\n\.\.\.ignoring' % UNREACHABLE, proc.stdout), proc.stdout
    (reason,) = _hosts(fleetrun.runs['gate'].report)[UNREACHABLE]['reasons']
    assert 'ssh' in reason, reason  # Ansible's own words, after 'unreachable: '


def test_failed_gather_is_unknown_with_the_gather_error(fleetrun):
    entry = _hosts(fleetrun.runs['gate'].report)[GATHER_FAILS]
    (reason,) = entry['reasons']
    assert "(psutil) on" in reason and "Python /usr/bin/python3" in reason, reason
    # It holds TCP 856, but an unseen host is neither compliant nor drift.
    assert entry['findings'] == [] and entry['status'] == 'unknown'


def test_waived_and_expired_waivers(fleetrun):
    hosts = _hosts(fleetrun.runs['gate'].report)
    (waived,) = hosts['pwr-host06']['findings']
    assert waived['waived'] is True and waived['waiver']['ticket'] == 'PWR-106'
    assert hosts['pwr-host06']['warnings'] == []  # expires 2027-06-30, outside the 14 warning days
    (expired,) = hosts['pwr-host07']['findings']
    assert expired['waived'] is False and expired['waiver'] is None
    assert expired['waiver_expired']['ticket'] == 'PWR-107'
    assert expired['message'].endswith('; waiver (PWR-107) expired 2025-01-31')
    # The allowed listener leaves no finding; the same port held by another process does.
    assert hosts['pwr-host05']['findings'] == []
    (rogue,) = hosts['pwr-host10']['findings']
    assert 'is held by pwr-h10-rogue[%d]; allowed processes: pwr-web' % fleetrun.holders['pwr-host10'].pids[0] \
        in rogue['message']


def test_gate_fails_the_play_naming_the_worst_hosts_and_the_reports(fleetrun):
    run = fleetrun.runs['gate']
    assert run.proc.returncode == 2, run.proc.stdout + run.proc.stderr
    failure = _failure(run.proc)
    paths = dict((name, os.path.join(run.report_dir, file_name)) for name, file_name in REPORT_FILES.items())
    assert failure['paths'] == paths
    assert failure['gate']['failing_hosts'] == ['pwr-host02', 'pwr-host03', 'pwr-host04', 'pwr-host07',
                                                UNREACHABLE, GATHER_FAILS]
    assert failure['gate']['exit_code'] == 2
    msg = failure['msg']
    assert msg.startswith('port compliance gate failed: drift at or above high on 4 hosts: pwr-host02 (high), '
                          'pwr-host03 (high), pwr-host04 (high), pwr-host07 (high); drifted: '), msg
    # What drifted is named: host, protocol address:port and rule, worst first.
    assert ('drifted: pwr-host02: tcp 0.0.0.0:856, rule iana-unassigned-closed (high); pwr-host03: udp 0.0.0.0:857, '
            'rule iana-unassigned-closed (high); ') in msg, msg
    assert '; unknown on 2 hosts: %s (%s' % (UNREACHABLE, UNREACHABLE_REASON) in msg, msg
    assert '; %s (%s' % (GATHER_FAILS, GATHER_FAILED_REASON) in msg, msg
    assert 'pwr-host10' not in msg  # medium drift is below the gate
    assert msg.endswith('. Reports: ' + ', '.join(paths[name] for name in sorted(paths))), msg
    # The audits themselves never fail a host: the gate is the report step, once.
    assert 'fatal: [pwr-host01]: FAILED!' in _task_output(run.proc, 'Write the fleet report and gate on it')


# ---- pass run (fail_on never, fail_on_unknown false), after a listener closed and one opened ----

def test_pass_run_succeeds_on_the_same_fleet(fleetrun):
    run = fleetrun.runs['pass']
    assert run.proc.returncode == 0, run.proc.stdout + run.proc.stderr
    assert 'FAILED!' not in run.proc.stdout
    # The policy is validated once for the play, on the controller.
    assert re.findall(r'^(\w+): ', _task_output(run.proc, 'Validate the policy once'), re.M) == ['ok']
    _validate(run.report)
    _check_entries(run.report, EXPECTED_AFTER)
    assert re.search(r'"msg": "10 hosts: 3 compliant, 5 drift, 2 unknown; drift findings high 4, medium 1\. Reports: ',
                     run.proc.stdout), run.proc.stdout


def test_report_lists_resolved_and_new_findings(fleetrun):
    report = fleetrun.runs['pass'].report
    with open(fleetrun.gate_report_copy) as handle:
        gate = json.load(handle)
    assert report['previous'] == {'generated_at': gate['generated_at']}
    changes = dict((host, entry['changes']) for host, entry in _hosts(report).items())
    assert changes[STOPPED_LISTENER] == {
        'new': [], 'resolved': [{'rule': UNASSIGNED, 'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856, 'where': 'host'}],
        'first_seen': False}
    assert changes[NEW_LISTENER[0]] == {
        'new': [{'rule': UNASSIGNED, 'protocol': 'tcp', 'address': '0.0.0.0', 'port': 859, 'where': 'host'}], 'resolved': [],
        'first_seen': False}
    for host, change in changes.items():
        if host in (UNREACHABLE, GATHER_FAILS):
            assert change is None, host  # unseen: nothing new, nothing resolved
        elif host not in (STOPPED_LISTENER, NEW_LISTENER[0]):
            assert change == {'new': [], 'resolved': [], 'first_seen': False}, host


def test_history_holds_the_previous_report(fleetrun):
    with open(fleetrun.gate_report_copy) as handle:
        gate = json.load(handle)
    history = glob.glob(os.path.join(fleetrun.runs['pass'].report_dir, 'history', '*'))
    stamp = gate['generated_at'].replace(':', '').replace('-', '')
    assert [os.path.basename(path) for path in history] == ['portwarden-report-%s.json' % stamp]
    with open(history[0]) as handle:
        assert json.load(handle) == gate


# ---- check mode, through the collection playbook ------------------------------------------------

def test_check_mode_gives_the_same_verdicts_and_changes_nothing(fleetrun):
    run = fleetrun.runs['check']
    assert run.proc.returncode == 0, run.proc.stdout[-5000:] + run.proc.stderr
    # The default report directory is relative to where ansible-playbook runs, not to the playbook.
    assert run.report is not None, 'no report under %s' % run.report_dir
    _validate(run.report)
    _check_entries(run.report, EXPECTED_AFTER)
    assert fleetrun.sockets_after == fleetrun.sockets_before
    for host, holder in fleetrun.holders.items():
        if host != STOPPED_LISTENER:
            assert holder.proc.poll() is None, host
    for host in fleetrun.fleet.hosts:
        assert re.search(r'^%s\s+: ok=\d+\s+changed=0\s' % host, run.proc.stdout, re.M), host


def test_one_module_round_trip_per_host(fleetrun):
    output = fleetrun.runs['check'].proc.stdout
    for host in fleetrun.fleet.hosts:
        if host == UNREACHABLE:
            continue
        assert output.count('<%s> SSH: EXEC' % host) == 1, host


# ---- --limit ------------------------------------------------------------------------------------

def test_limit_reports_and_judges_only_the_limited_hosts(fleetrun):
    run = fleetrun.runs['limit']
    _validate(run.report)
    limited = ['pwr-host01', 'pwr-host05', UNREACHABLE]
    # A part, not the fleet report: its gate cannot pass for hosts it never saw.
    assert run.report['scope']['kind'] == 'part' and run.report['scope']['hosts'] == sorted(limited)
    assert run.files == ['parts']
    _check_entries(run.report, dict((host, EXPECTED_AFTER[host]) for host in limited))
    assert run.report['summary']['hosts'] == 3
    # The role's default gate: high drift and unknown fail.
    assert run.proc.returncode == 2, run.proc.stdout + run.proc.stderr
    failure = _failure(run.proc)
    assert failure['gate']['fail_on'] == 'high' and failure['gate']['fail_on_unknown'] is True
    assert failure['gate']['failing_hosts'] == ['pwr-host01', UNREACHABLE]
    for host in set(fleetrun.fleet.hosts) - set(limited):
        assert '[%s]' % host not in run.proc.stdout, host


# ---- serial: 3 ----------------------------------------------------------------------------------

def test_serial_run_reports_every_host_once_after_the_last_batch(fleetrun):
    run = fleetrun.runs['serial']
    _validate(run.report)
    _check_entries(run.report, EXPECTED_AFTER)
    # Written once: a report written by an earlier batch would have been moved to history/.
    assert not os.path.exists(os.path.join(run.report_dir, 'history'))
    assert run.proc.stdout.count('TASK [portwarden.compliance.port_compliance : Write the fleet report') == 4


def test_serial_gate_judges_the_whole_fleet(fleetrun):
    run = fleetrun.runs['serial']
    assert run.proc.returncode == 2, run.proc.stdout + run.proc.stderr
    failure = _failure(run.proc)
    # Hosts of every batch (1-3, 4-6, 7-9), judged together in the last one (10).
    assert failure['gate']['failing_hosts'] == ['pwr-host01', 'pwr-host03', 'pwr-host04', 'pwr-host07',
                                                UNREACHABLE, GATHER_FAILS]
    assert re.search(r'^fatal: \[pwr-host10\]: FAILED!', run.proc.stdout, re.M)


# ---- a bad policy, and remediate mode: nothing touched --------------------------------------------

INVALID_ERRORS = [
    "../policies/invalid.yml: rules[1].severity: 'hihg' is not one of info, low, medium, high, critical "
    "(did you mean 'high'?)",
    "../policies/invalid.yml: waivers[0].rule: 'web-proces' names no rule; expected one of iana-unassigned-closed, "
    "web-process, default",
]


def _assert_no_host_touched(fleetrun, name):
    run = fleetrun.runs[name]
    output = run.proc.stdout + run.proc.stderr
    control = fleetrun.runs['check'].proc.stdout
    for host in fleetrun.fleet.hosts:
        if host == UNREACHABLE:
            continue
        line = '<%s> ESTABLISH SSH CONNECTION' % host
        assert line in control, 'the -vvv control run does not show %r' % line
        assert line not in output, (name, host)
    assert 'TASK [portwarden.compliance.port_compliance : Audit the listening ports (and remediate in remediate mode)]' not in output
    assert 'Write the fleet report' not in output
    assert not os.path.exists(run.report_dir)


def test_invalid_policy_stops_the_play_before_any_host_is_touched(fleetrun):
    proc = fleetrun.runs['invalid'].proc
    assert proc.returncode == 2, proc.stdout[-5000:] + proc.stderr
    failure = _failure(proc)
    assert failure['errors'] == INVALID_ERRORS
    assert failure['msg'] == 'invalid policy:\n' + '\n'.join(INVALID_ERRORS)
    _assert_no_host_touched(fleetrun, 'invalid')


def test_remediate_mode_with_an_invalid_policy_touches_no_host(fleetrun):
    proc = fleetrun.runs['remediate'].proc
    assert proc.returncode == 2, proc.stdout[-5000:] + proc.stderr
    assert _failure(proc)['errors'] == INVALID_ERRORS
    assert 'Audit the listening ports' not in proc.stdout
    _assert_no_host_touched(fleetrun, 'remediate')


def test_runtimes(fleetrun):
    print('runtimes: %s' % ', '.join('%s %.1fs' % (name, run.elapsed) for name, run in fleetrun.runs.items()))
    assert fleetrun.runs['invalid'].elapsed < fleetrun.runs['pass'].elapsed
