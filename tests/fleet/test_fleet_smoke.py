"""The fleet smoke: audit, report, gate and remediate in check mode on three hosts over real SSH.

It runs in the full suite on the default ansible-core and, in the version matrix (tests/matrix), under
every other ansible-core that meta/runtime.yml admits, with that version's ansible-playbook (the harness
takes the one beside the Python that runs pytest). One run of the port_compliance role in remediate mode
with ``--check --diff`` and ``fail_on: high``, on hosts named after the ansible-core minor (``mxs219-host01``
under 2.19), as each version of the matrix runs at the same time as the others:

- host01: a rogue on TCP 856 and UDP 857 (unassigned; the rule says the firewall closes them);
- host02: pwx-web on TCP 8080, which the policy allows;
- host03: nothing listens.

The gate fails on host01's drift, after the report is written; the diff shows the table a real run would
make; nothing changes on any host.
"""

import json
import os
import sys

import pytest

from tests.fleet.harness import play_recap

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(HERE, 'playbooks', 'role_remediate.yml')
POLICY = os.path.join(HERE, 'policies', 'smoke.yml')
PROBE = os.path.join(os.path.dirname(HERE), 'helpers', 'probe.py')
AS_OF = '2026-12-01'


def _core_minor():
    """2.19 -> 219: each ansible-core of the matrix runs this at the same time as the others, on its own hosts."""
    from ansible.release import __version__
    return ''.join(__version__.split('.')[:2])


def _hosts(report):
    return dict((entry['host'], entry) for entry in report['hosts'])


@pytest.fixture(scope='module')
def smoke(module_fleet_factory, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('pwx'))
    fleet = module_fleet_factory(3, prefix='mxs' + _core_minor(), workdir=workdir)
    h1, h2, h3 = fleet.hosts
    rogue = fleet.listen(h1, {'name': 'pwx-rogue', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856},
                                                               {'protocol': 'udp', 'address': '0.0.0.0', 'port': 857}]})
    web = fleet.listen(h2, {'name': 'pwx-web', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 8080}]})
    rulesets = dict((host, fleet.run(host, ['nft', 'list', 'ruleset'], timeout=30).stdout) for host in fleet.hosts)
    report_dir = os.path.join(workdir, 'reports')
    extra_vars = {'port_compliance_mode': 'remediate', 'port_compliance_policy': POLICY, 'port_compliance_as_of': AS_OF,
                  'port_compliance_fail_on': 'high', 'port_compliance_report_dir': report_dir}
    proc = fleet.playbook(PLAYBOOK, extra_vars=extra_vars, check=True, args=['--diff'])
    output = proc.stdout + proc.stderr
    with open(os.path.join(workdir, 'smoke.log'), 'w') as handle:
        handle.write(output)
    report = None
    if os.path.exists(os.path.join(report_dir, 'portwarden-report.json')):
        with open(os.path.join(report_dir, 'portwarden-report.json')) as handle:
            report = json.load(handle)
    return {'fleet': fleet, 'hosts': (h1, h2, h3), 'rogue': rogue, 'web': web, 'rulesets': rulesets,
            'proc': proc, 'output': output, 'report': report, 'report_dir': report_dir}


def test_the_audit_judges_each_host(smoke):
    h1, h2, h3 = smoke['hosts']
    assert smoke['report'] is not None, smoke['output'][-6000:]
    hosts = _hosts(smoke['report'])
    assert sorted(hosts) == sorted(smoke['hosts'])
    assert hosts[h1]['status'] == 'drift'  # check mode judges the host as it is
    assert sorted((f['protocol'], f['port'], f['rule'], f['remediation']['status']) for f in hosts[h1]['findings']) == [
        ('tcp', 856, 'unassigned-firewall', 'planned'), ('udp', 857, 'unassigned-firewall', 'planned')]
    assert hosts[h2]['status'] == 'compliant' and hosts[h3]['status'] == 'compliant'
    assert smoke['report']['summary']['hosts'] == 3


def test_the_report_is_written_in_every_format(smoke):
    names = sorted(os.listdir(smoke['report_dir']))
    for name in ('portwarden-report.json', 'portwarden-report.html', 'portwarden-report.md'):
        assert name in names, names


def test_the_gate_fails_on_the_high_finding(smoke):
    h1 = smoke['hosts'][0]
    assert smoke['proc'].returncode != 0, smoke['output'][-6000:]
    assert 'port compliance gate failed' in smoke['output']
    assert h1 in smoke['output'].split('port compliance gate failed', 1)[1]
    recap = play_recap(smoke['output'])
    assert sorted(recap) == sorted(smoke['hosts'])
    assert all(counts['unreachable'] == 0 for counts in recap.values()), recap


def test_remediate_in_check_mode_plans_and_changes_nothing(smoke):
    fleet, (h1, h2, h3) = smoke['fleet'], smoke['hosts']
    entry = _hosts(smoke['report'])[h1]
    assert sorted((a['strategy'], a['target'], a['outcome']) for a in entry['remediation']['actions']) == [
        ('firewall', 'tcp 0.0.0.0 port 856', 'would_apply'), ('firewall', 'udp 0.0.0.0 port 857', 'would_apply')]
    assert 'table inet portwarden' in smoke['output']  # the diff shows what a real run would make
    assert dict((host, counts['changed']) for host, counts in play_recap(smoke['output']).items()) == {h1: 1, h2: 0, h3: 0}
    for host in smoke['hosts']:
        assert fleet.run(host, ['nft', 'list', 'ruleset'], timeout=30).stdout == smoke['rulesets'][host], host
    assert smoke['rogue'].proc.poll() is None and smoke['web'].proc.poll() is None
    probe = fleet.run(h1, [sys.executable, PROBE, 'tcp', '856'], timeout=30)
    assert probe.stdout.strip() == 'open'
