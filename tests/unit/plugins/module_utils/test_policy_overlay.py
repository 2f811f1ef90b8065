"""Unit tests: overlays from inventory merged into one host's policy (plugins/module_utils/policy_overlay.py)."""

import datetime
import os

import pytest
import yaml

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils import policy_overlay as po
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_ports import port_set
from tests.conftest import REPO

TODAY = datetime.date(2027, 1, 20)
COMPLETE = {'complete': True, 'errors': []}
UNASSIGNED = {'id': 'iana-unassigned-closed', 'match': {'ports': 'iana:unassigned', 'protocols': ['tcp', 'udp']},
              'expect': 'closed', 'severity': 'high'}
SSH = {'id': 'ssh-only-sshd', 'match': {'ports': [22], 'protocols': ['tcp']}, 'expect': {'processes': ['sshd']}}
POLICY = {'policy_version': 1, 'name': 'fleet', 'default': 'deny', 'rules': [UNASSIGNED, SSH]}
METRICS = {'id': 'web3-metrics', 'match': {'ports': [9100], 'protocols': ['tcp']}, 'expect': {'processes': ['node*']}}
WAIVE_DEFAULT = {'rule': 'default', 'ports': [8080], 'reason': 'migration', 'expires': '2027-03-01'}


def sock(port, name='agent', protocol='tcp'):
    return {'protocol': protocol, 'family': 'ipv4', 'address': '0.0.0.0', 'port': port, 'v6only': None,
            'ephemeral': False, 'inode': port, 'processes': [{'pid': port, 'name': name, 'user': 'root', 'uid': 0,
                                                              'exe': '/usr/bin/' + name, 'unit': None}]}


def evaluate(compiled, sockets, host='web3', groups=()):
    return ev.evaluate_host({'sockets': sockets, 'coverage': COMPLETE}, compiled, host, groups, TODAY)


def problems(policy, overlays, host='web3', groups=()):
    found, _warnings = po.overlay_problems(policy, overlays, host, groups)
    return found


# ---- which variables, in which order ---------------------------------------------------------------

@pytest.mark.parametrize('names, expected', [
    (['port_compliance_policy_overlay'], ['port_compliance_policy_overlay']),
    (['port_compliance_policy_overlay_web', 'port_compliance_policy_overlay', 'port_compliance_policy_overlay_db'],
     ['port_compliance_policy_overlay', 'port_compliance_policy_overlay_db', 'port_compliance_policy_overlay_web']),
    # not overlays: another prefix, an empty or odd suffix, a near miss
    (['port_compliance_policy', 'port_compliance_policy_overlay_', 'port_compliance_policy_overlays',
      'port_compliance_policy_overlay-x', 'xport_compliance_policy_overlay', 'port_compliance_policy_overlay_a.b'], []),
    ([1, None, 'port_compliance_policy_overlay_2'], ['port_compliance_policy_overlay_2']),
])
def test_overlay_variables_are_the_plain_name_and_suffixed_ones_sorted(names, expected):
    assert po.overlay_variables(names) == expected


def test_null_and_empty_overlays_add_nothing_so_a_host_can_switch_off_a_group_overlay():
    variables = {'port_compliance_policy_overlay_web': None, 'port_compliance_policy_overlay': {},
                 'port_compliance_policy_overlay_db': {'rules': [METRICS]}, 'unrelated': {'rules': [SSH]}}
    assert po.collect_overlays(variables) == [('port_compliance_policy_overlay_db', {'rules': [METRICS]})]


def test_plain_data_turns_yaml_dates_and_tuples_into_json_types():
    value = {'waivers': [{'rule': 'default', 'expires': datetime.date(2027, 1, 31), 'ports': (8080,)}]}
    assert po.plain_data(value) == {'waivers': [{'rule': 'default', 'expires': '2027-01-31', 'ports': [8080]}]}


@pytest.mark.parametrize('value, path, fragment', [
    ({'rules': [{1: 'x'}]}, ['v', 'rules', 0], 'is not text'),
    ({'rules': [object()]}, ['v', 'rules', 0], 'not plain data'),
    ({'rules': {'a': {1, 2}}}, ['v', 'rules', 'a'], 'not plain data'),
    ({'rules': [{'match': {'ports': [10 ** 5000]}}]}, ['v', 'rules', 0, 'match', 'ports', 0], 'number too large'),
    ({'rules': [{'severity': -2.0 ** 70}]}, ['v', 'rules', 0, 'severity'], 'number too large'),
])
def test_plain_data_refuses_what_is_not_plain_naming_the_path(value, path, fragment):
    with pytest.raises(po.OverlayError) as caught:
        po.plain_data(value, ['v'])
    assert caught.value.path == path and fragment in str(caught.value)


def test_plain_data_bounds_size_and_depth():
    with pytest.raises(po.OverlayError) as caught:
        po.plain_data({'rules': [{'id': 'r%d' % index} for index in range(po.MAX_OVERLAY_VALUES)]}, ['v'])
    assert 'more than %d values' % po.MAX_OVERLAY_VALUES in str(caught.value)
    deep = []
    for _level in range(100):
        deep = [deep]
    with pytest.raises(po.OverlayError) as caught:
        po.plain_data({'rules': deep}, ['v'])
    assert 'nested too deeply' in str(caught.value)


# ---- the merge -------------------------------------------------------------------------------------

def test_merge_appends_rules_and_waivers_in_variable_order_and_changes_nothing_else():
    overlays = [('port_compliance_policy_overlay', {'rules': [METRICS]}),
                ('port_compliance_policy_overlay_web', {'waivers': [WAIVE_DEFAULT],
                                                        'rules': [dict(METRICS, id='web-extra')]})]
    merged = po.merge_overlays(POLICY, overlays)
    assert [rule['id'] for rule in merged['rules']] == ['iana-unassigned-closed', 'ssh-only-sshd', 'web3-metrics',
                                                        'web-extra']
    assert merged['waivers'] == [WAIVE_DEFAULT]
    assert dict(merged, rules=None, waivers=None) == dict(POLICY, rules=None, waivers=None)
    assert [rule['id'] for rule in POLICY['rules']] == ['iana-unassigned-closed', 'ssh-only-sshd']  # not mutated


def test_an_overlay_allows_a_listener_on_its_host_only():
    overlays = [('port_compliance_policy_overlay', {'rules': [METRICS]})]
    assert problems(POLICY, overlays) == []
    own = po.compile_host_policy(POLICY, overlays)
    plain = ev.compile_policy(POLICY)
    assert evaluate(own, [sock(9100, 'node_exporter')])['status'] == 'compliant'
    assert evaluate(plain, [sock(9100, 'node_exporter')], host='web4')['status'] == 'drift'
    # The allowed listener, held by another process, is drift under the overlay's own rule.
    found = evaluate(own, [sock(9100, 'rogue')])
    assert [(f['rule'], f['status']) for f in found['findings']] == [('web3-metrics', 'drift')]


def test_an_overlay_waiver_waives_on_its_host_and_the_result_records_it():
    overlays = [('port_compliance_policy_overlay_web', {'waivers': [WAIVE_DEFAULT]})]
    compiled = po.compile_host_policy(POLICY, overlays)
    result = evaluate(compiled, [sock(8080)])
    assert result['status'] == 'compliant' and result['findings'][0]['status'] == 'waived'
    info = result['policy']
    assert info['base_sha256'] == ev.policy_digest(POLICY)
    assert info['overlays'] == [{'variable': 'port_compliance_policy_overlay_web',
                                 'sha256': ev.policy_digest({'waivers': [WAIVE_DEFAULT]}), 'rules': [], 'waivers': 1}]
    assert info['sha256'] == po.effective_digest(info['base_sha256'], info['overlays']) != info['base_sha256']


def test_without_overlays_the_digest_is_the_policys_own():
    compiled = po.compile_host_policy(POLICY, [])
    assert compiled.digest == ev.policy_digest(POLICY)
    assert compiled.info() == {'name': 'fleet', 'sha256': ev.policy_digest(POLICY)}


@pytest.mark.parametrize('change', [
    lambda overlays: [(overlays[0][0], {'rules': [dict(METRICS, severity='high')]})],  # content
    lambda overlays: [('port_compliance_policy_overlay_x', overlays[0][1])],  # the variable's name
    lambda overlays: overlays + [('port_compliance_policy_overlay_z', {'waivers': [WAIVE_DEFAULT]})],  # one more
])
def test_the_effective_digest_changes_with_any_overlay_change(change):
    overlays = [('port_compliance_policy_overlay', {'rules': [METRICS]})]
    before = po.compile_host_policy(POLICY, overlays).digest
    assert po.compile_host_policy(POLICY, change(overlays)).digest != before


# ---- what an overlay may not do ----------------------------------------------------------------------

def test_a_rule_id_of_the_policy_cannot_be_redefined():
    overlays = [('port_compliance_policy_overlay', {'rules': [dict(SSH, expect={'processes': ['*']})]})]
    assert problems(POLICY, overlays) == [
        ('port_compliance_policy_overlay', ['rules', 0, 'id'], "'ssh-only-sshd' is a rule of the policy fleet; an "
         "overlay adds rules and never redefines one (choose another id)")]


def test_two_overlays_of_a_host_cannot_share_a_rule_id():
    overlays = [('port_compliance_policy_overlay_a', {'rules': [METRICS]}),
                ('port_compliance_policy_overlay_b', {'rules': [METRICS]})]
    assert problems(POLICY, overlays) == [
        ('port_compliance_policy_overlay_b', ['rules', 0, 'id'], "'web3-metrics' is also a rule of "
         "port_compliance_policy_overlay_a (rules[0]); rule ids are unique across the policy and every overlay of a "
         "host")]


@pytest.mark.parametrize('rule, where, text', [
    (dict(METRICS, match={'ports': [856]}), ['rules', 0, 'match', 'ports'], 'allows TCP 856; UDP 856'),
    (dict(METRICS, match={'ports': '850-860', 'protocols': ['udp']}), ['rules', 0, 'match', 'ports'],
     'allows UDP 850-852, 855-859'),
    (dict(METRICS, match={'ports': 'system', 'protocols': ['tcp']}, expect={'bind': 'loopback'}),
     ['rules', 0, 'match', 'ports'], 'allows TCP '),
    (dict(METRICS, match={}), ['rules', 0, 'match'], 'allows TCP '),  # every socket
])
def test_a_rule_that_would_allow_a_baseline_port_is_refused(rule, where, text):
    found = problems(POLICY, [('port_compliance_policy_overlay', {'rules': [rule]})])
    assert [(variable, path) for variable, path, _message in found] == [('port_compliance_policy_overlay', where)]
    assert found[0][2].startswith(text) and 'overlays.may_weaken_baseline: false' in found[0][2]


def test_a_closed_rule_on_a_baseline_port_only_adds_strictness():
    rule = dict(METRICS, match={'ports': [856, 22]}, expect='closed')
    assert problems(POLICY, [('port_compliance_policy_overlay', {'rules': [rule]})]) == []


@pytest.mark.parametrize('waiver, refused', [
    ({'rule': 'iana-unassigned-closed', 'ports': [856]}, True),
    ({'rule': 'iana-unassigned-closed'}, True),
    ({'rule': 'iana-unassigned-closed', 'ports': [8080]}, False),  # the rule never fires there
    ({'rule': 'default'}, True),  # every port, 856 among them
    ({'rule': 'default', 'ports': [856], 'protocols': ['udp']}, True),
    ({'rule': 'default', 'ports': [8080, 443]}, False),
    ({'rule': 'ssh-only-sshd'}, False),  # within the rule: port 22 only
    ({'rule': 'web3-metrics', 'ports': [856]}, False),  # the overlay's own rule: nothing the policy had
])
def test_a_waiver_that_could_waive_a_baseline_port_is_refused(waiver, refused):
    waiver = dict(waiver, reason='r', expires='2027-06-30')
    found = problems(POLICY, [('port_compliance_policy_overlay', {'rules': [METRICS], 'waivers': [waiver]})])
    assert bool(found) == refused, found
    if refused:
        assert found[0][1] == ['waivers', 0] and 'would waive findings of %s on ' % waiver['rule'] in found[0][2]


def test_the_policy_can_let_overlays_weaken_the_baseline():
    policy = dict(POLICY, overlays={'may_weaken_baseline': True})
    overlays = [('port_compliance_policy_overlay', {
        'rules': [dict(METRICS, match={'ports': [856]})],
        'waivers': [{'rule': 'iana-unassigned-closed', 'ports': [856], 'reason': 'r', 'expires': '2027-06-30'}]})]
    assert problems(policy, overlays) == []
    result = evaluate(po.compile_host_policy(policy, overlays), [sock(856, 'node_exporter')])
    assert result['status'] == 'compliant' and [f['status'] for f in result['findings']] == ['waived']


@pytest.mark.parametrize('allow, overlay, expected', [
    ([], {'rules': [METRICS]}, [(['port_compliance_policy_overlay'], 'accepts no overlays (overlays.allow: [])')]),
    (['waivers'], {'rules': [METRICS]}, [(['port_compliance_policy_overlay', 'rules'], 'does not let overlays add rules')]),
    (['rules'], {'waivers': [dict(WAIVE_DEFAULT)]},
     [(['port_compliance_policy_overlay', 'waivers'], 'does not let overlays add waivers')]),
    (['rules'], {'rules': [METRICS]}, []),
])
def test_the_policy_says_what_overlays_may_add(allow, overlay, expected):
    found = problems(dict(POLICY, overlays={'allow': allow}), [('port_compliance_policy_overlay', overlay)])
    assert [([variable] + path, fragment) for variable, path, message in found
            for fragment in [next((f for _p, f in expected if f in message), message)]] == expected


def test_waivers_may_name_the_policys_rules_and_any_overlays_of_the_host():
    overlays = [('port_compliance_policy_overlay_a', {'waivers': [dict(WAIVE_DEFAULT, rule='web3-metrics', ports=[9100])]}),
                ('port_compliance_policy_overlay_b', {'rules': [METRICS]}),
                ('port_compliance_policy_overlay_c', {'waivers': [dict(WAIVE_DEFAULT, rule='nope')]})]
    found = problems(POLICY, overlays)
    assert [(variable, path) for variable, path, _message in found] == [('port_compliance_policy_overlay_c',
                                                                         ['waivers', 0, 'rule'])]
    assert "'nope' names no rule; expected one of iana-unassigned-closed, ssh-only-sshd, web3-metrics, default" \
        in found[0][2]


def test_an_overlay_scoped_to_another_host_applies_nowhere_and_says_so():
    rule = dict(METRICS, hosts=['web4'])
    overlays = [('port_compliance_policy_overlay', {'rules': [rule]})]
    found, warnings = po.overlay_problems(POLICY, overlays, 'web3', ['web'])
    assert found == [] and warnings == [
        'port_compliance_policy_overlay.rules[0] (web3-metrics): its hosts leave out web3, and an overlay applies only '
        'to the host whose variables carry it, so this rule applies nowhere']
    # Merged into web3's policy, the rule judges web3 by its hosts: not at all. web4 never sees web3's overlay.
    assert evaluate(po.compile_host_policy(POLICY, overlays), [sock(9100, 'node')])['status'] == 'drift'
    # Scoped within the host's own groups, it applies: no warning.
    assert po.overlay_problems(POLICY, [('v', {'rules': [dict(METRICS, hosts=['group:web', '!web-legacy*'])]})],
                               'web3', ['web']) == ([], [])


def test_the_baseline_ports_are_what_the_bundled_baseline_closes():
    with open(os.path.join(REPO, 'docs', 'policies', 'baseline.yml')) as handle:
        baseline = yaml.safe_load(handle)
    closed = [rule for rule in baseline['rules'] if rule['expect'] == 'closed']
    for protocol in po.BASELINE_PROTOCOLS:
        covered = [port_set(rule['match']['ports'], protocol) for rule in closed
                   if protocol in rule['match'].get('protocols', ['tcp', 'udp'])]
        assert len(covered) == 1 and covered[0] == port_set(po.BASELINE_PORTS, protocol)
    assert 856 in port_set(po.BASELINE_PORTS, 'tcp')


def test_checks_never_raise_on_wrong_types():
    odd = [('v', {'rules': 'x', 'waivers': {'a': 1}}), ('w', ['x']), ('x', {'rules': [None, 1, {'id': 5, 'match': 3}]}),
           ('y', {'waivers': [{'rule': 7, 'ports': True}, {'rule': 'default', 'ports': 'nonsense'}]})]
    found, _warnings = po.overlay_problems(POLICY, odd, 'web3', ())
    assert isinstance(found, list)


def test_the_intersection_of_port_sets_is_exact():
    import random

    from ansible_collections.portwarden.compliance.plugins.module_utils.policy_ports import PortSet

    rng = random.Random(13)
    for _round in range(400):
        sets = []
        for _side in range(2):
            ranges = []
            # Uneven sizes too: the lookup goes from the set with fewer ranges into the other, either side.
            for _item in range(rng.choice((0, 1, 2, 6, 40))):
                start = rng.randint(0, 250)
                ranges.append((start, start + rng.randint(0, rng.choice((0, 3, 30)))))
            sets.append(PortSet(ranges))
        expected = [port for port in range(300) if port in sets[0] and port in sets[1]]
        for left, right in ((sets[0], sets[1]), (sets[1], sets[0])):
            got = left.intersection(right)
            assert [port for port in range(300) if port in got] == expected
            assert got == PortSet((port, port) for port in expected)  # merged like any PortSet


def test_the_intersection_with_the_baseline_is_exact_at_both_ends():
    from ansible_collections.portwarden.compliance.plugins.module_utils.policy_ports import ALL_PORTS, PortSet, named_set

    baseline = named_set('iana:unassigned', 'tcp')
    assert ALL_PORTS.intersection(baseline) == baseline
    assert baseline.intersection(ALL_PORTS) == baseline
    for ranges in ([(0, 0)], [(65535, 65535)], [(0, 65535)], [(855, 859)], [(854, 860), (1, 3)], [(856, 856)], []):
        wanted = PortSet(ranges)
        expected = [port for start, end in ranges for port in range(start, end + 1) if port in baseline]
        assert wanted.intersection(baseline) == PortSet((port, port) for port in expected)
        assert baseline.intersection(wanted) == wanted.intersection(baseline)
    assert (855, 859) in PortSet([(850, 860)]).intersection(baseline).ranges()  # the emblem's unassigned run
