"""Attacks on overlays from inventory, on a real three-host SSH fleet, through the port_compliance role.

Whoever can write a host's or a group's variables can write an overlay: these try to make an overlay reach
further than its host, redefine the policy, weaken the baseline, slip past validation or hide from the report.

- A rule id that collides with the policy's: refused, no host contacted.
- An overlay scoped to another host (``hosts: [other]``, ``hosts: ['*']``): applies to its own host only.
- Wrong YAML types (a string, a list, a mapping for a list, a number for a date, a failing template, a number too
  long to print): every error at once, naming host and variable, never a traceback, no host contacted.
- A huge overlay: refused quickly with its size named.
- An overlay as an extra var (highest precedence, every host): it still cannot weaken the baseline; a valid one
  replaces the hosts' own, and the report shows it on every host.
- An overlay set as a play variable, which hostvars (what validation reads) leaves out: refused, not half read.
- The digest: a changed overlay changes the host's effective digest; the policy's stays.

Not covered, because ansible-core itself never finishes a task with it: a YAML alias bomb in host_vars (a plain
debug task on that host did not finish in 60 s, before any portwarden code ran).
"""

import json
import os
import shutil

import pytest
import yaml

from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import policy_digest
from tests.fleet.harness import Fleet, unsupported_reason

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(os.path.dirname(HERE), 'fleet', 'playbooks', 'role_audit.yml')
VAR = 'port_compliance_policy_overlay'
POLICY = {'policy_version': 1, 'name': 'atk-fleet', 'default': 'deny',
          'rules': [{'id': 'iana-unassigned-closed', 'match': {'ports': 'iana:unassigned'}, 'expect': 'closed',
                     'severity': 'high'}]}


def allow(rule_id, port, **extra):
    return dict({'id': rule_id, 'match': {'ports': [port], 'protocols': ['tcp']}, 'expect': {'processes': ['atk-*']}},
                **extra)


def waive_default(port, **extra):
    return dict({'rule': 'default', 'ports': [port], 'reason': 'test', 'expires': '2027-06-30'}, **extra)


@pytest.fixture(scope='module')
def attack(tmp_path_factory):
    reason = unsupported_reason()
    if reason:
        pytest.skip(reason)
    with Fleet(3, prefix='ovlatk', workdir=str(tmp_path_factory.mktemp('overlay-attack-fleet'))) as fleet:
        yield _attack(fleet, tmp_path_factory)


def _attack(fleet, tmp_path_factory):
    for host in fleet.hosts:
        fleet.listen(host, {'name': 'atk-web', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 8080}]})
    work = tmp_path_factory.mktemp('overlay-attacks')
    policy = str(work / 'policy.yml')
    with open(policy, 'w') as handle:
        yaml.safe_dump(POLICY, handle)
    counter = [0]

    def run(host_vars, extra=None, verbose=True, playbook=PLAYBOOK):
        """ansible-playbook over an inventory directory with ``host_vars`` ({host index: variables})."""
        counter[0] += 1
        directory = str(work / ('inventory-%d' % counter[0]))
        os.makedirs(os.path.join(directory, 'host_vars'))
        shutil.copyfile(fleet.inventory, os.path.join(directory, 'inventory.yml'))
        for index, variables in host_vars.items():
            with open(os.path.join(directory, 'host_vars', fleet.hosts[index] + '.yml'), 'w') as handle:
                handle.write(variables if isinstance(variables, str) else yaml.safe_dump(variables))
        report_dir = str(work / ('reports-%d' % counter[0]))
        variables = {'port_compliance_policy': policy, 'port_compliance_report_dir': report_dir,
                     'port_compliance_fail_on': 'never', 'port_compliance_as_of': '2026-12-01'}
        args = ['-i', os.path.join(directory, 'inventory.yml'), '-e', json.dumps(variables)]
        for item in extra or ():
            args += ['-e', item]
        proc = fleet.run_ansible('ansible-playbook', args + (['-vvv'] if verbose else []) + [playbook])
        return proc, proc.stdout + proc.stderr, report_dir

    return {'fleet': fleet, 'run': run, 'work': work, 'policy': policy}


def _refused(attack, proc, output, report_dir):
    assert proc.returncode != 0, output[-4000:]
    assert 'Traceback' not in output and 'Exceeds the limit' not in output, output[-4000:]
    for host in attack['fleet'].hosts:
        assert '<%s> ESTABLISH SSH CONNECTION' % host not in output, host
    assert not os.path.exists(report_dir)
    failure = output[output.index('FAILED! => ') + len('FAILED! => '):]
    return json.JSONDecoder().raw_decode(failure)[0]['errors']


def _report(proc, output, report_dir):
    assert proc.returncode == 0, output[-6000:]
    with open(os.path.join(report_dir, 'portwarden-report.json')) as handle:
        report = json.load(handle)
    return sorted(report['hosts'], key=lambda entry: entry['host']), report


def test_a_rule_id_of_the_policy_cannot_be_taken_over(attack):
    host = attack['fleet'].hosts[0]
    errors = _refused(attack, *attack['run']({0: {VAR: {'rules': [allow('iana-unassigned-closed', 8080)]}}}))
    assert errors == ["host %s: port_compliance_policy_overlay.rules[0].id: 'iana-unassigned-closed' is a rule of the "
                      "policy atk-fleet; an overlay adds rules and never redefines one (choose another id)" % host]


def test_an_overlay_scoped_to_other_hosts_applies_to_its_own_host_only(attack):
    hosts = attack['fleet'].hosts
    proc, output, report_dir = attack['run']({
        0: {VAR: {'waivers': [waive_default(8080, hosts=['*'])]}},  # every host, it says
        2: {VAR: {'rules': [allow('for-host02', 8080, hosts=[hosts[1]])]}},  # another host, it says
    }, verbose=False)
    entries, _report_data = _report(proc, output, report_dir)
    assert [entry['status'] for entry in entries] == ['compliant', 'drift', 'drift']
    assert [f['status'] for f in entries[0]['findings']] == ['waived']
    assert [(f['rule'], f['port'], f['status']) for f in entries[1]['findings']] == [('default', 8080, 'drift')]
    assert 'policy' not in entries[1]
    warning = ('host %s: port_compliance_policy_overlay.rules[0] (for-host02): its hosts leave out %s, and an overlay '
               'applies only to the host whose variables carry it, so this rule applies nowhere' % (hosts[2], hosts[2]))
    assert warning in entries[2]['warnings']
    assert warning in ' '.join(output.split())  # the validation warned too, before any host


def test_wrong_yaml_types_are_all_named_by_host_and_variable_before_any_host(attack):
    hosts = attack['fleet'].hosts
    errors = _refused(attack, *attack['run']({
        0: 'port_compliance_policy_overlay: allow 8080\n',
        1: 'port_compliance_policy_overlay:\n  - rules: []\nport_compliance_policy_overlay_x: "{{ undefined_thing }}"\n',
        2: 'port_compliance_policy_overlay:\n  rules: {id: x}\n  waivers:\n'
           '    - {rule: default, ports: [8080], reason: r, expires: 20270101}\n',
    }))
    assert errors[0] == "host %s: port_compliance_policy_overlay: expected a mapping, got 'allow 8080'" % hosts[0]
    assert errors[1] == 'host %s: port_compliance_policy_overlay: expected a mapping, got [{"rules": []}]' % hosts[1]
    assert errors[2].startswith('host %s: port_compliance_policy_overlay_x: the variable cannot be read: ' % hosts[1])
    assert 'undefined_thing' in errors[2]
    assert errors[3:] == ['host %s: port_compliance_policy_overlay.rules: expected a list, got {"id": "x"}' % hosts[2],
                          'host %s: port_compliance_policy_overlay.waivers[0].expires: expected a string, got 20270101'
                          % hosts[2]]


def test_a_number_too_long_to_print_is_refused_naming_host_and_variable(attack):
    host = attack['fleet'].hosts[0]
    template = "{{ {'rules': [{'id': 'x', 'match': {'ports': [10 ** 5000]}, 'expect': 'closed'}]} }}"
    errors = _refused(attack, *attack['run']({0: {VAR: template}}))
    assert errors == ['host %s: port_compliance_policy_overlay.rules[0].match.ports[0]: number too large; expected at '
                      'most %d' % (host, 2 ** 63)]


def test_a_huge_overlay_is_refused_with_its_size(attack):
    host = attack['fleet'].hosts[0]
    rules = [allow('r%d' % index, 10000 + index % 50000) for index in range(3000)]  # ~24,000 values
    errors = _refused(attack, *attack['run']({0: {VAR: {'rules': rules}}}))
    assert errors == ['host %s: port_compliance_policy_overlay: the overlay has more than 20000 values; an overlay is '
                      'expected to be a few rules and waivers' % host]


def test_an_extra_var_overlay_cannot_weaken_the_baseline_on_any_host(attack):
    hosts = attack['fleet'].hosts
    overlay = {VAR: {'waivers': [{'rule': 'iana-unassigned-closed', 'ports': [856], 'reason': 'r',
                                  'expires': '2027-06-30'}]}}
    errors = _refused(attack, *attack['run']({}, extra=[json.dumps(overlay)]))
    assert errors == ['host %s: port_compliance_policy_overlay.waivers[0]: would waive findings of iana-unassigned-closed '
                      'on TCP 856; UDP 856: ports IANA has not assigned, which the bundled baseline keeps closed; the '
                      'policy does not let overlays weaken it (overlays.may_weaken_baseline: false)' % host
                      for host in hosts]


def test_an_extra_var_overlay_replaces_the_hosts_own_and_the_report_shows_it_everywhere(attack):
    own = {'waivers': [waive_default(8080, ticket='OWN')]}
    proc, output, report_dir = attack['run']({0: {VAR: own}}, verbose=False)
    before, report_before = _report(proc, output, report_dir)
    extra = {'waivers': [waive_default(8080, ticket='EXTRA')]}
    proc, output, report_dir = attack['run']({0: {VAR: own}}, extra=[json.dumps({VAR: extra})], verbose=False)
    after, report_after = _report(proc, output, report_dir)
    assert before[0]['policy']['overlays'][0]['sha256'] == policy_digest(own)
    assert [entry['status'] for entry in before] == ['compliant', 'drift', 'drift']
    # Extra vars outrank host_vars: every host now has the extra-var overlay, and says so.
    assert [entry['status'] for entry in after] == ['compliant'] * 3
    assert [[(item['variable'], item['sha256']) for item in entry['policy']['overlays']] for entry in after] \
        == [[(VAR, policy_digest(extra))]] * 3
    assert [f['waiver']['ticket'] for entry in after for f in entry['findings']] == ['EXTRA'] * 3
    # The digest: the host's effective one changed with its overlay, the policy's did not.
    assert before[0]['policy']['sha256'] != after[0]['policy']['sha256']
    assert before[0]['policy']['base_sha256'] == after[0]['policy']['base_sha256'] == report_before['policy']['sha256'] \
        == report_after['policy']['sha256'] == policy_digest(POLICY)


def test_an_overlay_set_as_a_play_variable_is_refused_not_half_read(attack):
    playbook = str(attack['work'] / 'play_vars.yml')
    with open(playbook, 'w') as handle:
        yaml.safe_dump([{'name': 'Overlay as a play variable', 'hosts': 'fleet', 'gather_facts': False,
                         'vars': {VAR: {'waivers': [waive_default(8080)]}},
                         'roles': [{'role': 'portwarden.compliance.port_compliance'}]}], handle)
    errors = _refused(attack, *attack['run']({}, playbook=playbook))
    assert errors == ['host %s: port_compliance_policy_overlay: set as a play, role, block or task variable, which '
                      'overlays are not read from; set it in the inventory (host_vars, group_vars), with set_fact or '
                      'as an extra var' % attack['fleet'].hosts[0]]
