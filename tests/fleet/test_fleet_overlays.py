"""Overlays from inventory, on a real four-host fleet over SSH, with the port_compliance role.

The inventory is a directory as Ansible users keep one: ``inventory.yml``, ``host_vars/`` and ``group_vars/``.
Under a ``default: deny`` policy with the IANA baseline:

- host01's own overlay (host_vars) allows TCP 9100 held by ovl-metrics; group web's overlay (group_vars,
  ``port_compliance_policy_overlay_web``) allows TCP 8080 held by ovl-web on host02 and host03. The same
  listeners elsewhere are drift: 9100 on host03, 8080 on host04. The report records for each host which
  overlays applied (variable and digest) and the effective digest.
- The same inventory as two runs over part of it (``--limit``, two parts) merges with ``portwarden merge``
  into the report of one run.
- A bad overlay (a boolean port) on host03, and an overlay on host04 that allows 856 under a policy that does not
  let overlays weaken the baseline, each stop the play before any host is contacted (``-vvv`` shows no SSH
  connection, no report is written), the error naming the host and the variable.
- A policy with ``overlays.may_weaken_baseline: true`` lets host04's overlay waive its 856, and only host04's.
"""

import json
import os
import shutil

import pytest
import yaml

from ansible_collections.portwarden.compliance.plugins.module_utils import policy_overlay as po
from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb
from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import policy_digest
from tests.helpers.report_compare import differences, run_cli

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(HERE, 'playbooks', 'role_audit.yml')
AS_OF = '2026-12-01'
VAR = 'port_compliance_policy_overlay'
GROUP_VAR = 'port_compliance_policy_overlay_web'

POLICY = {
    'policy_version': 1, 'name': 'ovl-fleet', 'default': 'deny', 'default_severity': 'high',
    'rules': [{'id': 'iana-unassigned-closed', 'match': {'ports': 'iana:unassigned'}, 'expect': 'closed',
               'severity': 'high'}],
}
METRICS_OVERLAY = {'description': 'node metrics on this host only', 'rules': [
    {'id': 'host01-metrics', 'match': {'ports': [9100], 'protocols': ['tcp']}, 'expect': {'processes': ['ovl-metrics']},
     'severity': 'high'}]}
WEB_OVERLAY = {'rules': [
    {'id': 'web-8080', 'match': {'ports': [8080], 'protocols': ['tcp']}, 'expect': {'processes': ['ovl-web']},
     'severity': 'high'}]}
BAD_OVERLAY = {'rules': [{'id': 'host03-bad', 'match': {'ports': [True]}, 'expect': 'closed'}]}
WEAKEN_RULE = {'rules': [{'id': 'host04-vendor', 'match': {'ports': [856], 'protocols': ['tcp']},
                          'expect': {'processes': ['ovl-vendor']}}]}
WEAKEN_WAIVER = {'waivers': [{'rule': 'iana-unassigned-closed', 'ports': [856], 'protocols': ['tcp'],
                              'reason': 'vendor agent', 'ticket': 'OVL-4', 'expires': '2027-06-30'}]}


def _tcp(port):
    return {'protocol': 'tcp', 'address': '0.0.0.0', 'port': port}


LISTENERS = {
    'host01': [('ovl-metrics', 9100)],
    'host02': [('ovl-web', 8080)],
    'host03': [('ovl-web', 8080), ('ovl-metrics', 9100)],
    'host04': [('ovl-web', 8080), ('ovl-vendor', 856)],
}


class Run(object):
    def __init__(self, proc, report_dir):
        self.proc = proc
        self.output = proc.stdout + proc.stderr
        self.report_dir = report_dir


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as handle:
        yaml.safe_dump(data, handle, default_flow_style=False, sort_keys=False)


@pytest.fixture(scope='module')
def overlays(module_fleet_factory, tmp_path_factory):
    fleet = module_fleet_factory(4, prefix='overlays')
    name = dict((host[-6:], host) for host in fleet.hosts)  # 'host01' -> 'overlays-host01'
    fleet.add_group('web', [name['host02'], name['host03']])
    for short, listeners in LISTENERS.items():
        for process, port in listeners:
            fleet.listen(name[short], {'name': process, 'sockets': [_tcp(port)]})
    work = tmp_path_factory.mktemp('overlays')
    policies = {'strict': str(work / 'strict.yml'), 'weakenable': str(work / 'weakenable.yml')}
    _write(policies['strict'], POLICY)
    _write(policies['weakenable'], dict(POLICY, overlays={'may_weaken_baseline': True}))

    def inventory(label, host_vars):
        """An inventory directory: the fleet's inventory.yml, group_vars/web.yml, host_vars/HOST.yml."""
        directory = str(work / ('inventory-' + label))
        os.makedirs(directory)
        shutil.copyfile(fleet.inventory, os.path.join(directory, 'inventory.yml'))
        _write(os.path.join(directory, 'group_vars', 'web.yml'), {GROUP_VAR: WEB_OVERLAY})
        for short, variables in host_vars.items():
            _write(os.path.join(directory, 'host_vars', name[short] + '.yml'), variables)
        return os.path.join(directory, 'inventory.yml')

    inventories = {
        'good': inventory('good', {'host01': {VAR: METRICS_OVERLAY}}),
        'bad': inventory('bad', {'host01': {VAR: METRICS_OVERLAY}, 'host03': {VAR: BAD_OVERLAY}}),
        'weaken': inventory('weaken', {'host01': {VAR: METRICS_OVERLAY}, 'host04': {VAR: WEAKEN_RULE}}),
        'waive': inventory('waive', {'host04': {VAR: WEAKEN_WAIVER},
                                     'host02': {'port_compliance_policy_overlays': WEAKEN_WAIVER}}),
        'direct': inventory('direct', {'host01': {VAR: dict(METRICS_OVERLAY, rules=METRICS_OVERLAY['rules'] + [
            dict(WEB_OVERLAY['rules'][0], id='for-host04', hosts=[name['host04']])])}}),
    }
    runs = {}

    def run(label, inventory_name, policy, limit=None, verbose=False, report_dir=None):
        report_dir = report_dir or str(work / ('reports-' + label))
        extra = {'port_compliance_policy': policy, 'port_compliance_report_dir': report_dir,
                 'port_compliance_fail_on': 'never', 'port_compliance_as_of': AS_OF}
        args = ['-i', inventories[inventory_name], '-e', json.dumps(extra)]
        if limit:
            args += ['--limit', limit]
        if verbose:
            args.append('-vvv')
        runs[label] = Run(fleet.run_ansible('ansible-playbook', args + [PLAYBOOK]), report_dir)
        return runs[label]

    run('good', 'good', policies['strict'])
    shared = str(work / 'reports-sliced')
    run('slice1', 'good', policies['strict'], limit='%s,%s' % (name['host01'], name['host02']), report_dir=shared)
    run('slice2', 'good', policies['strict'], limit='%s,%s' % (name['host03'], name['host04']), report_dir=shared)
    run('bad', 'bad', policies['strict'], verbose=True)
    run('weaken', 'weaken', policies['strict'], verbose=True)
    run('waive', 'waive', policies['weakenable'], verbose=True)
    # port_audit alone, without the role's validation: each host validates its own overlays.
    direct = str(work / 'direct')
    os.makedirs(direct)
    runs['direct'] = Run(fleet.run_ansible('ansible-playbook', [
        '-i', inventories['direct'], '-e', json.dumps({'pwa_policy': policies['strict'], 'pwa_as_of': AS_OF,
                                                       'pwa_out_dir': direct}),
        os.path.join(HERE, 'playbooks', 'audit.yml')]), direct)
    return {'fleet': fleet, 'name': name, 'runs': runs, 'work': work, 'inventories': inventories,
            'policies': policies}


def _report(run):
    assert run.proc.returncode == 0, run.output[-6000:]
    with open(os.path.join(run.report_dir, 'portwarden-report.json')) as handle:
        return json.load(handle)


def _hosts(report, name):
    short = dict((full, short) for short, full in name.items())
    return dict((short[entry['host']], entry) for entry in report['hosts'])


def _drift(entry):
    return sorted((f['rule'], f['port']) for f in entry['findings'] if f['status'] == 'drift')


def test_host_and_group_overlays_allow_their_listeners_there_only(overlays):
    hosts = _hosts(_report(overlays['runs']['good']), overlays['name'])
    assert dict((short, entry['status']) for short, entry in hosts.items()) == {
        'host01': 'compliant', 'host02': 'compliant', 'host03': 'drift', 'host04': 'drift'}
    assert _drift(hosts['host03']) == [('default', 9100)]  # host01's overlay is host01's alone
    # 856 is judged by the baseline rule (a rule matched it, so default: deny does not judge it again).
    assert _drift(hosts['host04']) == [('default', 8080), ('iana-unassigned-closed', 856)]


def test_the_report_records_which_overlays_applied_and_the_effective_digest(overlays):
    report = _report(overlays['runs']['good'])
    hosts = _hosts(report, overlays['name'])
    base = policy_digest(POLICY)
    assert report['policy']['sha256'] == base
    expected = {'host01': [(VAR, policy_digest(METRICS_OVERLAY), ['host01-metrics'])],
                'host02': [(GROUP_VAR, policy_digest(WEB_OVERLAY), ['web-8080'])],
                'host03': [(GROUP_VAR, policy_digest(WEB_OVERLAY), ['web-8080'])]}
    for short, entry in sorted(hosts.items()):
        if short not in expected:
            assert 'policy' not in entry, short
            continue
        policy = entry['policy']
        assert [(item['variable'], item['sha256'], item['rules']) for item in policy['overlays']] == expected[short]
        assert policy['base_sha256'] == base
        assert policy['sha256'] == po.effective_digest(base, policy['overlays']) != base
    assert hosts['host02']['policy'] == hosts['host03']['policy']  # one group overlay, one effective policy
    assert rb.report_contradictions(report) == []
    assert run_cli('gate', os.path.join(overlays['runs']['good'].report_dir, 'portwarden-report.json'),
                   '--fail-on', 'high').returncode == 1


def test_two_parts_with_overlays_merge_into_the_report_of_one_run(overlays):
    for label in ('slice1', 'slice2'):
        assert overlays['runs'][label].proc.returncode == 0, overlays['runs'][label].output[-6000:]
    merged_dir = overlays['work'] / 'merged'
    proc = run_cli('merge', overlays['runs']['slice1'].report_dir, '--inventory', overlays['inventories']['good'],
                   '--report-dir', merged_dir)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # drift on host03 and host04, no unknown
    with open(os.path.join(str(merged_dir), 'portwarden-report.json')) as handle:
        merged = json.load(handle)
    whole = _report(overlays['runs']['good'])

    def comparable(report):
        return dict((entry['host'], dict((key, entry.get(key)) for key in ('status', 'policy', 'findings', 'reasons')))
                    for entry in report['hosts'])

    assert differences(comparable(merged), comparable(whole)) == []
    assert merged['policy']['sha256'] == whole['policy']['sha256'] and 'policies' not in merged['scope']


def _refused_before_any_host(overlays, label, expected_line):
    run = overlays['runs'][label]
    assert run.proc.returncode != 0, run.output[-4000:]
    assert expected_line in run.output, run.output[-6000:]
    control = overlays['runs']['waive'].output  # the same -vvv, on a run that did contact every host
    for host in overlays['fleet'].hosts:
        assert '<%s> ESTABLISH SSH CONNECTION' % host in control, host
        assert '<%s> ESTABLISH SSH CONNECTION' % host not in run.output, (label, host)
    assert 'Audit the listening ports' not in run.output
    assert not os.path.exists(run.report_dir)  # no gather ran, no report was written


def test_a_bad_overlay_fails_before_any_host_is_contacted_naming_host_and_variable(overlays):
    host03 = overlays['name']['host03']
    _refused_before_any_host(overlays, 'bad', 'host %s: port_compliance_policy_overlay.rules[0].match.ports[0]: true is '
                                              'not a port (0-65535)' % host03)


def test_an_overlay_that_allows_856_is_refused_under_a_policy_that_does_not_let_it(overlays):
    host04 = overlays['name']['host04']
    _refused_before_any_host(overlays, 'weaken', 'host %s: port_compliance_policy_overlay.rules[0].match.ports: allows '
                                                 'TCP 856: ports IANA has not assigned, which the bundled baseline keeps '
                                                 'closed; the policy does not let overlays weaken it '
                                                 '(overlays.may_weaken_baseline: false)' % host04)


def test_a_policy_that_lets_overlays_weaken_the_baseline_waives_856_on_that_host_only(overlays):
    hosts = _hosts(_report(overlays['runs']['waive']), overlays['name'])
    waived = [(f['rule'], f['port'], f['waiver']['ticket']) for f in hosts['host04']['findings']
              if f['status'] == 'waived']
    assert waived == [('iana-unassigned-closed', 856, 'OVL-4')]
    assert _drift(hosts['host04']) == [('default', 8080)]
    assert hosts['host04']['policy']['overlays'][0]['waivers'] == 1
    # A near miss of the variable's name is no overlay, and the validation says so.
    assert 'host %s: port_compliance_policy_overlays: not an overlay variable' % overlays['name']['host02'] \
        in ' '.join(overlays['runs']['waive'].output.split())
    # The web group's overlay still applies; no other host has the waiver.
    assert [short for short, entry in sorted(hosts.items()) if any(f['status'] == 'waived' for f in entry['findings'])] \
        == ['host04']


def test_port_audit_alone_validates_and_applies_each_hosts_overlays(overlays):
    run = overlays['runs']['direct']
    assert run.proc.returncode == 0, run.output[-6000:]
    name = overlays['name']
    results = {}
    for short, host in name.items():
        with open(os.path.join(run.report_dir, host + '.json')) as handle:
            results[short] = json.load(handle)
    assert dict((short, result['status']) for short, result in results.items()) == {
        'host01': 'compliant', 'host02': 'compliant', 'host03': 'drift', 'host04': 'drift'}
    records = results['host01']['policy']['overlays']
    assert [(item['variable'], item['rules']) for item in records] == [(VAR, ['host01-metrics', 'for-host04'])]
    assert results['host01']['policy']['sha256'] == po.effective_digest(policy_digest(POLICY), records)
    assert 'overlays' not in results['host04']['policy']  # host01's rule for host04 never reaches host04
    assert [text for text in results['host01']['warnings'] if 'applies nowhere' in text] == [
        'host %s: port_compliance_policy_overlay.rules[1] (for-host04): its hosts leave out %s, and an overlay '
        'applies only to the host whose variables carry it, so this rule applies nowhere' % (name['host01'], name['host01'])]
