"""port_audit against a real ten-host fleet, over SSH, with ansible-playbook.

Every host (a network namespace) holds real listeners, or none, and sits in inventory groups the
policy scopes rules and waivers by. The playbook audits every host against a policy file it names
relative to itself (../policies/fleet.yml), waivers judged as of a fixed date; the controller keeps
each registered result as JSON. Four runs share one fleet:

- report only (fail_on never): the run succeeds, every host gets its own verdict and findings;
- fail_on high: exactly the hosts with unwaived high or critical drift fail the task;
- an invalid policy: every host fails with the validation errors, and no host is contacted;
- --check: the same verdicts, nothing changed.
"""

import collections
import json
import os
import re
import sys
import time

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import policy_digest
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import read_policy_file

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(HERE, 'playbooks', 'audit.yml')
POLICY = os.path.join(HERE, 'policies', 'fleet.yml')
# Waivers are judged on this date: PWA-104 (group:legacy) expires 2026-12-10, within the policy's
# 14 warning days; PWA-105 (pwa-host05) expired 2025-01-31.
AS_OF = '2026-12-01'
REGISTRY_DATE = '2026-08-17'

N_HOSTS = 10
GROUPS = {'legacy': ['pwa-host04'], 'databases': ['pwa-host06', 'pwa-host10']}


def _tcp(address, port):
    return {'protocol': 'tcp', 'address': address, 'port': port}


# What each host listens on; the process names (comm) tell the holders apart in the findings.
SPECS = {
    'pwa-host01': None,
    'pwa-host02': {'name': 'pwa-h02-agent', 'sockets': [_tcp('0.0.0.0', 856)]},
    'pwa-host03': {'name': 'pwa-h03-mixed',
                   'sockets': [{'protocol': 'udp', 'address': '0.0.0.0', 'port': 857}, _tcp('::1', 858)]},
    'pwa-host04': {'name': 'pwa-h04-legacy', 'sockets': [_tcp('0.0.0.0', 856)]},
    'pwa-host05': {'name': 'pwa-h05-expired', 'sockets': [_tcp('0.0.0.0', 856)]},
    'pwa-host06': {'name': 'pwa-h06-pg', 'sockets': [_tcp('0.0.0.0', 5432)]},
    'pwa-host07': {'name': 'pwa-h07-pg', 'sockets': [_tcp('0.0.0.0', 5432)]},
    'pwa-host08': {'name': 'pw-web', 'sockets': [_tcp('0.0.0.0', 8080)]},
    'pwa-host09': {'name': 'pwa-h09-rogue', 'sockets': [_tcp('0.0.0.0', 8080)]},
    'pwa-host10': {'name': 'pwa-h10-pg', 'sockets': [_tcp('127.0.0.1', 5432)]},
}

F = collections.namedtuple('F', 'rule severity status protocol family address port')

# Every host's verdict and findings (worst first) under the report-only run.
EXPECTED = {
    'pwa-host01': ('compliant', []),
    'pwa-host02': ('drift', [F('iana-unassigned-closed', 'high', 'drift', 'tcp', 'ipv4', '0.0.0.0', 856)]),
    'pwa-host03': ('drift', [F('iana-unassigned-closed', 'high', 'drift', 'tcp', 'ipv6', '::1', 858),
                             F('iana-unassigned-closed', 'high', 'drift', 'udp', 'ipv4', '0.0.0.0', 857)]),
    'pwa-host04': ('compliant', [F('iana-unassigned-closed', 'high', 'waived', 'tcp', 'ipv4', '0.0.0.0', 856)]),
    'pwa-host05': ('drift', [F('iana-unassigned-closed', 'high', 'drift', 'tcp', 'ipv4', '0.0.0.0', 856)]),
    'pwa-host06': ('drift', [F('postgres-loopback-only', 'critical', 'drift', 'tcp', 'ipv4', '0.0.0.0', 5432)]),
    'pwa-host07': ('compliant', []),  # 0.0.0.0:5432 too, but not in group databases
    'pwa-host08': ('compliant', []),  # 8080 held by pw-web
    'pwa-host09': ('drift', [F('web-process', 'medium', 'drift', 'tcp', 'ipv4', '0.0.0.0', 8080)]),
    'pwa-host10': ('compliant', []),  # in databases, 5432 on loopback
}
# fail_on high: unwaived drift at high or above.
GATED = {'pwa-host02', 'pwa-host03', 'pwa-host05', 'pwa-host06'}

Audited = collections.namedtuple('Audited', 'fleet holders results runs elapsed')


def _load_results(out_dir, hosts):
    results = {}
    for host in hosts:
        with open(os.path.join(out_dir, host + '.json')) as handle:
            results[host] = json.load(handle)
    return results


def _recap(proc, host):
    lines = [line for line in proc.stdout.splitlines() if line.startswith(host + ' ') and ' : ok=' in line]
    assert len(lines) == 1, 'no single recap line for %s:\n%s' % (host, proc.stdout)
    return dict((key, int(value)) for key, value in re.findall(r'(\w+)=(\d+)', lines[0]))


@pytest.fixture(scope='module')
def audited(module_fleet_factory, tmp_path_factory):
    started = time.monotonic()
    fleet = module_fleet_factory(N_HOSTS, prefix='pwa', groups=GROUPS)
    assert fleet.hosts == sorted(SPECS)
    print('\nfleet of %d hosts up in %.2fs' % (len(fleet.hosts), time.monotonic() - started))
    holders = dict((host, fleet.listen(host, spec)) for host, spec in SPECS.items() if spec is not None)

    runs = {}
    results = {}
    elapsed = {}
    # name -> (extra vars, --check, extra ansible-playbook arguments)
    plan = [
        ('report', {}, False, ()),
        ('gate', {'pwa_fail_on': 'high'}, False, ()),
        # -vvv shows every SSH connection a run opens: the invalid policy must open none, where
        # the check run (the control) opens one to every host.
        ('invalid', {'pwa_policy': '../policies/invalid.yml'}, False, ('-vvv',)),
        ('check', {}, True, ('-vvv',)),
    ]
    for name, extra, check, args in plan:
        out_dir = str(tmp_path_factory.mktemp('audit-%s' % name))
        extra_vars = dict(extra, pwa_out_dir=out_dir, pwa_as_of=AS_OF)
        started = time.monotonic()
        proc = fleet.playbook(PLAYBOOK, extra_vars=extra_vars, check=check, args=args, timeout=300)
        elapsed[name] = time.monotonic() - started
        print('ansible-playbook %s: exit %d in %.2fs' % (name, proc.returncode, elapsed[name]))
        runs[name] = proc
        results[name] = _load_results(out_dir, fleet.hosts)
    return Audited(fleet, holders, results, runs, elapsed)


def _findings(result):
    return [F(*(finding[field] for field in F._fields)) for finding in result['findings']]


# ---- report only ---------------------------------------------------------------------------------

def test_report_run_succeeds_on_every_host(audited):
    proc = audited.runs['report']
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in audited.fleet.hosts:
        recap = _recap(proc, host)
        assert (recap['failed'], recap['unreachable']) == (0, 0), (host, recap)
        result = audited.results['report'][host]
        assert not result.get('failed'), (host, result.get('msg'))
        assert result['changed'] is False, host
        assert result['gate'] == {'fail_on': 'never', 'fail_on_unknown': False, 'failures': []}, host


@pytest.mark.parametrize('host', sorted(EXPECTED))
def test_every_host_gets_its_own_verdict(audited, host):
    status, findings = EXPECTED[host]
    result = audited.results['report'][host]
    assert result['status'] == status, (host, result['findings'], result['reasons'])
    assert _findings(result) == findings, host
    assert result['reasons'] == [], host
    assert result['host'] == host
    assert result['evaluated_on'] == AS_OF
    assert result['coverage']['complete'] is True, host
    drift = sum(1 for finding in findings if finding.status == 'drift')
    waived = sum(1 for finding in findings if finding.status == 'waived')
    assert result['summary']['findings'] == len(findings)
    assert (result['summary']['drift'], result['summary']['waived'], result['summary']['unknown']) == (drift, waived, 0)
    assert result['msg'] == '%s is %s (%d drift, %d waived, 0 unknown findings)' % (host, status, drift, waived)


def test_findings_name_the_processes_that_hold_the_sockets(audited):
    for host, (_status, findings) in EXPECTED.items():
        if not findings:
            continue
        holder = audited.holders[host]
        name = SPECS[host]['name']
        for finding in audited.results['report'][host]['findings']:
            where = '%s %s/%s' % (host, finding['protocol'], finding['port'])
            assert [proc['pid'] for proc in finding['processes']] == holder.pids, where
            for proc in finding['processes']:
                assert (proc['name'], proc['user'], proc['uid']) == (name, 'root', 0), where
                assert proc['exe'] == os.path.realpath(sys.executable), where
                assert 'cmdline' not in proc, where
            assert str(finding['port']) in finding['message'], where
            assert '%s[%d]' % (name, holder.pids[0]) in finding['message'], where
            assert ('rule %s' % finding['rule']) in finding['message'], where


def test_unassigned_port_finding_in_full(audited):
    (finding,) = audited.results['report']['pwa-host02']['findings']
    pid = audited.holders['pwa-host02'].pids[0]
    assert finding['service'] is None
    assert finding['waived'] is False and finding['waiver'] is None
    assert 'waiver_expired' not in finding
    assert finding['message'] == (
        'tcp 0.0.0.0:856 (not an IANA-assigned service) must be closed but is listening (pwa-h02-agent[%d] as root); '
        'rule iana-unassigned-closed: Ports IANA has not assigned must stay closed' % pid)
    summary = audited.results['report']['pwa-host02']['summary']
    assert summary['drift_by_severity'] == {'info': 0, 'low': 0, 'medium': 0, 'high': 1, 'critical': 0}


def test_both_protocols_and_families_are_audited(audited):
    result = audited.results['report']['pwa-host03']
    messages = [finding['message'] for finding in result['findings']]
    assert messages[0].startswith('tcp [::1]:858 (not an IANA-assigned service) must be closed')
    assert messages[1].startswith('udp 0.0.0.0:857 (not an IANA-assigned service) must be closed')
    assert result['summary']['drift_by_severity']['high'] == 2


def test_valid_group_waiver_makes_the_host_compliant_and_warns(audited):
    result = audited.results['report']['pwa-host04']
    (finding,) = result['findings']
    assert finding['waived'] is True
    assert finding['waiver'] == {'rule': 'iana-unassigned-closed', 'reason': 'Legacy agent until its replacement ships',
                                 'ticket': 'PWA-104', 'approved_by': 'secops', 'expires': '2026-12-10'}
    assert 'waiver_expired' not in finding
    warning = 'waiver (PWA-104) for iana-unassigned-closed on pwa-host04 tcp 0.0.0.0:856 expires 2026-12-10, in 9 days'
    assert result['warnings'] == [warning]
    # Ansible shows it too, once (on stderr).
    assert audited.runs['report'].stderr.count('[WARNING]: ' + warning) == 1, audited.runs['report'].stderr
    # The same port on a host outside group legacy is not waived (pwa-host02), and warns nothing.
    for host in audited.fleet.hosts:
        if host != 'pwa-host04':
            assert not audited.results['report'][host].get('warnings'), host


def test_expired_waiver_leaves_the_drift_and_says_so(audited):
    result = audited.results['report']['pwa-host05']
    (finding,) = result['findings']
    assert finding['status'] == 'drift' and finding['waived'] is False and finding['waiver'] is None
    assert finding['waiver_expired'] == {'rule': 'iana-unassigned-closed', 'reason': 'Migration window',
                                         'ticket': 'PWA-105', 'approved_by': 'secops', 'expires': '2025-01-31'}
    assert finding['message'].endswith('; waiver (PWA-105) expired 2025-01-31')
    # PWA-105 is scoped to pwa-host05: it leaves no trace on the other hosts with 856 open.
    for host in ('pwa-host02', 'pwa-host04'):
        assert 'waiver_expired' not in audited.results['report'][host]['findings'][0], host


def test_group_scoped_rule_fires_only_in_its_group(audited):
    (finding,) = audited.results['report']['pwa-host06']['findings']
    assert 'is bound to any addresses; allowed: loopback' in finding['message']
    assert finding['service'] == 'postgresql'
    # Same socket outside the group: the rule does not apply; inside it on loopback: it passes.
    assert audited.results['report']['pwa-host07']['findings'] == []
    assert audited.results['report']['pwa-host10']['findings'] == []


def test_process_constraint_checks_the_holder(audited):
    (finding,) = audited.results['report']['pwa-host09']['findings']
    pid = audited.holders['pwa-host09'].pids[0]
    assert 'is held by pwa-h09-rogue[%d]; allowed processes: pw-web' % pid in finding['message']
    assert finding['service'] == 'http-alt'
    assert audited.results['report']['pwa-host08']['findings'] == []


def test_every_host_used_the_same_policy_and_registry(audited):
    expected_policy = {'name': 'pwa-fleet', 'sha256': policy_digest(read_policy_file(POLICY))}
    for host in audited.fleet.hosts:
        result = audited.results['report'][host]
        assert result['policy'] == expected_policy, host
        assert result['registry']['date'] == REGISTRY_DATE, host
        assert result['registry'] == audited.results['report'][audited.fleet.hosts[0]]['registry'], host


# ---- fail_on: high ------------------------------------------------------------------------------

def test_gate_fails_exactly_the_hosts_with_high_drift(audited):
    proc = audited.runs['gate']
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for host in audited.fleet.hosts:
        recap = _recap(proc, host)
        result = audited.results['gate'][host]
        assert recap['unreachable'] == 0, (host, recap)
        assert result['status'] == EXPECTED[host][0], host
        assert result['gate']['fail_on'] == 'high' and result['gate']['fail_on_unknown'] is True, host
        if host in GATED:
            count = sum(1 for finding in EXPECTED[host][1] if finding.status == 'drift')
            failure = '%d finding%s at or above high' % (count, '' if count == 1 else 's')
            assert recap['failed'] == 1, (host, recap)
            assert result['failed'] is True, host
            assert result['gate']['failures'] == [failure], host
            assert result['msg'] == '%s is drift: %s' % (host, failure), host
            assert re.search(r'fatal: \[%s\]: FAILED! => .*"msg": "%s is drift: %s"'
                             % (re.escape(host), re.escape(host), re.escape(failure)), proc.stdout, re.S), host
        else:
            assert recap['failed'] == 0, (host, recap)
            assert not result.get('failed'), (host, result.get('msg'))
            assert result['gate']['failures'] == [], host


def test_gate_passes_drift_below_the_threshold(audited):
    result = audited.results['gate']['pwa-host09']
    assert result['status'] == 'drift'
    assert [finding['severity'] for finding in result['findings']] == ['medium']
    assert not result.get('failed')


# ---- invalid policy ------------------------------------------------------------------------------

INVALID_ERRORS = [
    "../policies/invalid.yml: rules[1].severity: 'hihg' is not one of info, low, medium, high, critical "
    "(did you mean 'high'?)",
    "../policies/invalid.yml: waivers[0].rule: 'web-proces' names no rule; expected one of iana-unassigned-closed, "
    "web-process, default",
]


def test_invalid_policy_fails_every_host_with_the_errors(audited):
    proc = audited.runs['invalid']
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for host in audited.fleet.hosts:
        assert _recap(proc, host)['failed'] == 1, host
        result = audited.results['invalid'][host]
        assert result['failed'] is True, host
        assert result['msg'] == 'invalid policy:\n' + '\n'.join(INVALID_ERRORS), (host, result['msg'])
        assert result['errors'] == INVALID_ERRORS, host
        # Nothing was gathered or evaluated.
        for key in ('status', 'findings', 'coverage', 'policy'):
            assert key not in result, (host, key)


def test_invalid_policy_touches_no_host(audited):
    output = audited.runs['invalid'].stdout + audited.runs['invalid'].stderr
    control = audited.runs['check'].stdout + audited.runs['check'].stderr
    for host in audited.fleet.hosts:
        for line in ('<%s> ESTABLISH SSH CONNECTION' % host, '<%s> SSH: EXEC' % host):
            assert line in control, 'the -vvv control run does not show %r' % line
            assert line not in output, host


# ---- check mode ----------------------------------------------------------------------------------

def test_check_mode_gives_the_same_verdicts_and_changes_nothing(audited):
    proc = audited.runs['check']
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in audited.fleet.hosts:
        assert _recap(proc, host)['failed'] == 0, host
        result = audited.results['check'][host]
        report = audited.results['report'][host]
        assert result['changed'] is False, host
        assert not result.get('skipped'), host
        assert result['status'] == report['status'], host
        assert result['findings'] == report['findings'], host
        assert result['summary'] == report['summary'], host
        assert result['policy'] == report['policy'], host
    # The listeners are still there, held by the same processes.
    for host, holder in audited.holders.items():
        alive = set(pid for pid, _name in audited.fleet.processes(host))
        assert set(holder.pids) <= alive, host


def test_runtimes_stay_modest(audited):
    print('runtimes: %s' % ', '.join('%s %.1fs' % item for item in audited.elapsed.items()))
    assert audited.elapsed['invalid'] < audited.elapsed['report'], audited.elapsed
