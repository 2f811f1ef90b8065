"""Unit tests: a host's overlays validated on the controller, with errors naming the host and the variable."""

import datetime

import pytest

from ansible_collections.portwarden.compliance.plugins.plugin_utils import policy_load

POLICY = {'policy_version': 1, 'name': 'fleet', 'rules': [
    {'id': 'iana-unassigned-closed', 'match': {'ports': 'iana:unassigned'}, 'expect': 'closed', 'severity': 'high'}]}
VAR = 'port_compliance_policy_overlay'


def errors(variables, host='web3'):
    with pytest.raises(policy_load.PolicyInvalid) as caught:
        policy_load.load_host_overlays(POLICY, variables, host, ['web'])
    return caught.value.errors


@pytest.mark.parametrize('overlay, expected', [
    ('allow 8080', ["host web3: port_compliance_policy_overlay: expected a mapping, got 'allow 8080'"]),
    ([{'id': 'x'}], ['host web3: port_compliance_policy_overlay: expected a mapping, got [{"id": "x"}]']),
    ({'rules': {'id': 'x'}}, ['host web3: port_compliance_policy_overlay.rules: expected a list, got {"id": "x"}']),
    ({'default': 'allow'}, ["host web3: port_compliance_policy_overlay: unknown key 'default'; expected description, "
                            "rules, waivers; an overlay only adds rules and waivers, the policy's default and "
                            "settings stay its own"]),
    ({'rules': [{'id': 'm', 'match': {'ports': ['9100', True]}, 'expect': 'closed'}]},
     ['host web3: port_compliance_policy_overlay.rules[0].match.ports[1]: true is not a port (0-65535), a range "A-B" '
      'or one of system, user, dynamic, iana:unassigned, iana:reserved, iana:assigned']),
    ({'rules': [{'id': 'm', 'match': {'ports': '9100-9000'}, 'expect': 'closed'}]},
     ["host web3: port_compliance_policy_overlay.rules[0].match.ports: range '9100-9000' starts after it ends"]),
    ({'rules': [{'id': 'm', 'match': {'ports': [9100]}, 'expect': {'processes': 'node'}}]},
     ['host web3: port_compliance_policy_overlay.rules[0].expect: {"processes": "node"} is not "closed" or a mapping '
      'with processes, users, exe, units and/or bind']),
    ({'waivers': [{'rule': 'default', 'ports': [8080], 'reason': 'r', 'expires': 'soon'}]},
     ["host web3: port_compliance_policy_overlay.waivers[0].expires: 'soon' is not a date; expected YYYY-MM-DD"]),
])
def test_wrong_types_and_values_are_named_by_host_variable_and_path(overlay, expected):
    assert errors({VAR: overlay}) == expected


def test_errors_of_several_variables_sort_by_variable_then_path():
    found = errors({VAR + '_web': {'rules': [{'id': 'iana-unassigned-closed', 'match': {}, 'expect': 'closed'}]},
                    VAR: {'waivers': [{'rule': 'nope', 'reason': 'r', 'expires': '2027-01-01'}]}})
    assert found == [
        "host web3: port_compliance_policy_overlay.waivers[0].rule: 'nope' names no rule; expected one of "
        "iana-unassigned-closed, default",
        "host web3: port_compliance_policy_overlay_web.rules[0].id: 'iana-unassigned-closed' is a rule of the policy "
        "fleet; an overlay adds rules and never redefines one (choose another id)"]


def test_a_value_that_is_not_plain_data_is_named():
    assert errors({VAR: {'rules': [{'id': 'x', 'match': {}, 'expect': object()}]}}) == [
        'host web3: port_compliance_policy_overlay.rules[0].expect: a object value is not plain data; expected a '
        'mapping, list, text, number or boolean']


def test_an_unquoted_yaml_date_is_a_date_and_a_valid_overlay_loads():
    overlay = {'waivers': [{'rule': 'default', 'ports': [8080], 'reason': 'r', 'expires': datetime.date(2027, 1, 31)}]}
    overlays, warnings = policy_load.load_host_overlays(POLICY, {VAR: overlay, 'other': 1}, 'web3', ['web'])
    assert overlays == [(VAR, {'waivers': [{'rule': 'default', 'ports': [8080], 'reason': 'r',
                                            'expires': '2027-01-31'}]})]
    assert warnings == []


def test_the_policy_settings_are_validated_too():
    bad = dict(POLICY, overlays={'allow': ['rules', 'defaults'], 'may_weaken_baseline': 'no'})
    found = policy_load.validate_policy(bad, 'p.yml')
    assert found == ["p.yml: overlays.allow[1]: 'defaults' is not one of rules, waivers",
                     "p.yml: overlays.may_weaken_baseline: expected true or false, got 'no'"]
