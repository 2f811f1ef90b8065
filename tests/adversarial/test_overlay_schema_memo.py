"""Attacks on the memoised schema check of overlays (plugin_utils/policy_load.py): a fleet's validation checks a
group's overlay once for all its hosts. Try to make one value pass on another's check: lookalike values (1 against
1.0, true and "1"; [] against {}; the same keys in another order), a value changed after it was checked, errors
that would carry the first host's name to the next, and a flood of distinct values."""

import copy

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import OVERLAY_SCHEMA
from ansible_collections.portwarden.compliance.plugins.plugin_utils import policy_load
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import (
    PolicyInvalid,
    load_host_overlays,
    load_policy,
)

POLICY = {'policy_version': 1, 'name': 'fleet', 'default': 'deny',
          'rules': [{'id': 'ssh', 'match': {'ports': [22], 'protocols': ['tcp']}, 'expect': {'processes': ['sshd']}}]}
RULE = {'id': 'metrics', 'match': {'ports': [9100], 'protocols': ['tcp']}, 'expect': {'processes': ['node_exporter']}}


def rule_with(**changes):
    rule = copy.deepcopy(RULE)
    rule['match'].update(changes)
    return {'rules': [rule]}


# Values whose JSON a careless key would fold together, each with its own verdict under the schema.
LOOKALIKES = [
    rule_with(ports=[9100]),
    rule_with(ports=[9100.0]),
    rule_with(ports=[True]),
    rule_with(ports=['9100']),
    rule_with(ports=[]),
    rule_with(ports={}),
    rule_with(ports=None),
    {'rules': []},
    {'rules': {}},
    {'waivers': [{'rule': 'ssh', 'reason': 'r', 'expires': '2027-01-01'}]},
    {'waivers': [{'expires': '2027-01-01', 'reason': 'r', 'rule': 'ssh'}]},  # the same keys in another order
    {'waivers': [{'rule': 'ssh', 'reason': 'r', 'expires': '2027-01-01', 'extra': 1}]},
    {'waivers': [{'rule': 'ssh', 'reason': 'r', 'expires': '2027-01-01', 'extra': 1.0}]},
]


@pytest.fixture(autouse=True)
def fresh_memo():
    policy_load._OVERLAY_SCHEMA_ERRORS.clear()  # pylint: disable=protected-access
    yield
    policy_load._OVERLAY_SCHEMA_ERRORS.clear()  # pylint: disable=protected-access


def direct(overlay):
    """The schema's errors of ``overlay`` checked afresh, as the memo's values are."""
    return sorted((tuple(path), message)
                  for path, message in policy_load._schema_errors(overlay, OVERLAY_SCHEMA))  # pylint: disable=protected-access


def memoised(overlay):
    return sorted(policy_load._overlay_schema_errors(overlay))  # pylint: disable=protected-access


def test_lookalike_values_each_get_their_own_errors_in_any_order():
    expected = [direct(overlay) for overlay in LOOKALIKES]
    assert expected[0] == [] and any(expected[1:])  # valid and invalid ones both, or the attack tests nothing
    assert len(set(map(tuple, expected))) > 4
    for order in (list(range(len(LOOKALIKES))), list(reversed(range(len(LOOKALIKES))))):
        policy_load._OVERLAY_SCHEMA_ERRORS.clear()  # pylint: disable=protected-access
        for index in order + order:  # the second pass is all hits
            assert memoised(LOOKALIKES[index]) == expected[index], LOOKALIKES[index]


def test_a_value_changed_after_its_check_is_checked_again():
    policy = load_policy(POLICY)
    overlay = rule_with(ports=[9100])
    found, _warnings = load_host_overlays(policy, {'port_compliance_policy_overlay_web': overlay}, 'web1', ['web'])
    assert [variable for variable, _value in found] == ['port_compliance_policy_overlay_web']
    overlay['rules'][0]['match']['ports'] = [9100.5]  # the same dict, now wrong
    with pytest.raises(PolicyInvalid) as caught:
        load_host_overlays(policy, {'port_compliance_policy_overlay_web': overlay}, 'web2', ['web'])
    assert any(line.startswith('host web2: port_compliance_policy_overlay_web.rules[0].match.ports')
               for line in caught.value.errors), caught.value.errors


def test_each_host_is_named_in_its_own_errors_when_the_check_is_remembered():
    policy = load_policy(POLICY)
    overlay = rule_with(ports=['not a port'])
    lines = {}
    for host in ('web1', 'web2', 'web3'):
        with pytest.raises(PolicyInvalid) as caught:
            load_host_overlays(policy, {'port_compliance_policy_overlay_web': copy.deepcopy(overlay)}, host, ['web'])
        lines[host] = caught.value.errors
        assert lines[host] and all(line.startswith('host %s: ' % host) for line in lines[host]), lines[host]
    assert [line.replace('web2', 'web1') for line in lines['web2']] == lines['web1']
    assert len(policy_load._OVERLAY_SCHEMA_ERRORS) == 1  # pylint: disable=protected-access


def test_a_flood_of_distinct_overlays_keeps_the_memo_bounded_and_true():
    most = policy_load._OVERLAY_SCHEMA_ERRORS_MAX  # pylint: disable=protected-access
    for index in range(most + 50):
        overlay = rule_with(ports=[1024 + index]) if index % 2 else rule_with(ports=['bad %d' % index])
        assert memoised(overlay) == ([] if index % 2 else direct(overlay))
        assert len(policy_load._OVERLAY_SCHEMA_ERRORS) <= most  # pylint: disable=protected-access


def test_a_value_json_cannot_write_is_checked_without_the_memo():
    overlay = {'rules': [{'id': 'x', 'match': {'ports': [float('nan')]}, 'expect': 'closed'}]}
    assert memoised(overlay) == direct(overlay)
    assert not policy_load._OVERLAY_SCHEMA_ERRORS  # pylint: disable=protected-access
