"""portwarden baseline round trip on a real eight-host fleet in three groups, over SSH, with ansible-playbook.

Every host (a network namespace) holds real listeners: the web server on TCP 8080-8081 on every host, a database
per group (loopback 5432 in db_pg, any-address 3306 in db_my, loopback UDP 6379 in cache), and one odd host with
an exporter on 9100. In order, on one fleet:

- the shipped gather playbook saves each host's result (``portwarden_gather_save_dir``);
- ``portwarden baseline DIR -i INVENTORY -o POLICY`` writes the policy: the shared web rule once, for every host;
  each database rule scoped to its group; the exporter to its one host; ``portwarden lint`` passes it;
- the audit playbook with that policy: every host compliant, and the gate passes;
- the same fleet audited under the survey policy gives a report from which baseline makes the same rules;
- a new listener on one host: that host, and only it, drifts, on exactly that socket.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.netns, pytest.mark.slow]

CLI = [sys.executable, '-m', 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli']
SURVEY = os.path.join(REPO, 'docs', 'policies', 'survey.yml')
N_HOSTS = 8
AS_OF = '2026-12-02'


def _tcp(address, port):
    return {'protocol': 'tcp', 'address': address, 'port': port}


def _cli(*args):
    return subprocess.run(CLI + [str(arg) for arg in args], capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture(scope='module')
def fleet(module_fleet_factory):
    fleet = module_fleet_factory(N_HOSTS, prefix='baseline')
    hosts = fleet.hosts
    fleet.add_group('db_pg', hosts[0:3])
    fleet.add_group('db_my', hosts[3:6])
    fleet.add_group('cache', hosts[6:8])
    web = [_tcp('0.0.0.0', 8080), _tcp('0.0.0.0', 8081)]
    for host in hosts:
        fleet.listen(host, {'name': 'bsl-web', 'sockets': web, 'fork': 1})
    for host in hosts[0:3]:
        fleet.listen(host, {'name': 'bsl-pg', 'sockets': [_tcp('127.0.0.1', 5432)]})
    for host in hosts[3:6]:
        fleet.listen(host, {'name': 'bsl-my', 'sockets': [_tcp('0.0.0.0', 3306), dict(_tcp('::', 3306), v6only=True)]})
    for host in hosts[6:8]:
        fleet.listen(host, {'name': 'bsl-cache', 'sockets': [{'protocol': 'udp', 'address': '127.0.0.1', 'port': 6379}]})
    fleet.listen(hosts[7], {'name': 'bsl-odd', 'sockets': [_tcp('0.0.0.0', 9100)]})
    return fleet


def _audit(fleet, policy, report_dir):
    proc = fleet.run_ansible('ansible-playbook', [
        '-i', fleet.inventory, '-e', json.dumps({'port_compliance_policy': policy, 'port_compliance_report_dir': report_dir,
                                                 'port_compliance_fail_on': 'never', 'port_compliance_as_of': AS_OF,
                                                 'port_compliance_fail_on_unknown': False}),
        'portwarden.compliance.audit'], timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    with open(os.path.join(report_dir, 'portwarden-report.json')) as handle:
        return json.load(handle)


def _without_descriptions(policy_rules):
    return [dict((key, value) for key, value in rule.items() if key != 'description') for rule in policy_rules]


@pytest.fixture(scope='module')
def baseline(fleet):
    saved = fleet.path('gathered')
    proc = fleet.run_ansible('ansible-playbook', ['-i', fleet.inventory, '-e', json.dumps(
        {'portwarden_gather_save_dir': saved, 'portwarden_hosts': 'fleet'}), 'portwarden.compliance.gather'], timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert sorted(os.listdir(saved)) == ['%s.json' % host for host in fleet.hosts]
    policy_path = fleet.path('baseline.yml')
    made = _cli('baseline', saved, '-i', fleet.inventory, '-o', policy_path, '--as-of', AS_OF)
    assert made.returncode == 0, made.stdout + made.stderr
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import load_policy

    return {'path': policy_path, 'policy': load_policy(policy_path), 'saved': saved, 'stderr': made.stderr}


def test_policy_groups_the_fleet(fleet, baseline):
    hosts = fleet.hosts
    rules = dict((rule['id'], rule) for rule in baseline['policy']['rules'])
    assert baseline['policy']['default'] == 'deny'
    assert baseline['policy']['rules'][0]['id'] == 'iana-unassigned-closed'
    # The shared web rule once, one range, no host scope: every host of the inventory has it.
    web = [rule for rule in rules.values() if rule['match'].get('ports') == ['8080-8081']]
    assert len(web) == 1, rules
    assert 'hosts' not in web[0] and web[0]['expect']['processes'] == ['bsl-web']
    assert 'every host (8)' in web[0]['description'] and '8 files' in web[0]['description']
    assert rules['allow-tcp-5432-loopback']['hosts'] == ['group:db_pg']
    assert rules['allow-tcp-5432-loopback']['expect'] == {'bind': ['loopback'], 'processes': ['bsl-pg']}
    assert rules['allow-tcp-3306-any']['hosts'] == ['group:db_my']  # 0.0.0.0 and [::]: one rule
    assert rules['allow-udp-6379-loopback']['hosts'] == ['group:cache']
    assert rules['allow-tcp-9100-any']['hosts'] == [hosts[7]]
    assert len(rules) == 6, sorted(rules)
    linted = _cli('lint', baseline['path'])
    assert linted.returncode == 0 and ': valid (policy baseline, 6 rules, 0 waivers)' in linted.stdout, linted.stdout


def test_audit_with_the_baseline_is_compliant_then_a_new_listener_drifts_on_that_host_alone(fleet, baseline):
    report = _audit(fleet, baseline['path'], fleet.path('reports-baseline'))
    assert [(entry['host'], entry['status'], entry['findings']) for entry in report['hosts']] == \
        [(host, 'compliant', []) for host in fleet.hosts]
    gate = _cli('gate', fleet.path('reports-baseline', 'portwarden-report.json'), '--fail-on', 'info')
    assert gate.returncode == 0, gate.stdout

    rogue = fleet.listen(fleet.hosts[4], {'name': 'bsl-rogue', 'sockets': [_tcp('0.0.0.0', 8443)]})
    try:
        report = _audit(fleet, baseline['path'], fleet.path('reports-drift'))
    finally:
        rogue.stop()
    by_host = dict((entry['host'], entry) for entry in report['hosts'])
    assert [host for host in fleet.hosts if by_host[host]['status'] != 'compliant'] == [fleet.hosts[4]]
    findings = by_host[fleet.hosts[4]]['findings']
    assert [(item['rule'], item['protocol'], item['address'], item['port'], item['processes'][0]['name'])
            for item in findings] == [('default', 'tcp', '0.0.0.0', 8443, 'bsl-rogue')]


def test_a_survey_report_gives_the_same_rules(fleet, baseline):
    _audit(fleet, SURVEY, fleet.path('reports-survey'))
    from_report = fleet.path('from-report.yml')
    made = _cli('baseline', fleet.path('reports-survey', 'portwarden-report.json'), '-i', fleet.inventory,
                '-o', from_report, '--as-of', AS_OF)
    assert made.returncode == 0, made.stdout + made.stderr
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import load_policy

    assert _without_descriptions(load_policy(from_report)['rules']) == \
        _without_descriptions(baseline['policy']['rules'])
    again = _cli('baseline', fleet.path('reports-survey', 'portwarden-report.json'), '-o', from_report)
    assert again.returncode == 2 and 'exists; give --force' in again.stderr, again.stderr
