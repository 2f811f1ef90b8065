"""Unit tests: reading policy text on the controller."""

import pytest

from ansible_collections.portwarden.compliance.plugins.plugin_utils import policy_load

MERGED = '''
policy_version: 1
name: merged
rules:
  - &closed
    id: first
    match: {ports: [856]}
    expect: closed
    severity: high
  - <<: *closed
    id: second
    match: {ports: [857]}
'''


def test_yaml_merge_keys_work_and_written_keys_override():
    policy = policy_load.load_policy(policy_load.parse_policy_text(MERGED, 'p.yml'), 'p.yml')
    second = policy['rules'][1]
    assert second == {'id': 'second', 'match': {'ports': [857]}, 'expect': 'closed', 'severity': 'high'}


def test_duplicate_keys_are_refused_with_their_line():
    with pytest.raises(policy_load.PolicyInvalid) as caught:
        policy_load.parse_policy_text('name: a\nname: b\n', 'p.yml')
    assert caught.value.errors == ["p.yml: line 2, column 1: not valid YAML: duplicate key 'name'"]


def test_dates_stay_text_for_the_schema():
    assert policy_load.parse_policy_text('expires: 2027-01-31\n', 'p.yml') == {'expires': '2027-01-31'}


@pytest.mark.parametrize('text, fragment', [
    ('&a [*a]\n', 'refers to itself'),
    ('name: !!int x\n', 'tagged value'),
    ('ports: ' + '9' * 30 + '\n', 'number too large'),
    ('{"name": "a", "name": "b"}', 'duplicate key'),
])
def test_unusable_text_is_one_clear_line(text, fragment):
    with pytest.raises(policy_load.PolicyInvalid) as caught:
        policy_load.parse_policy_text(text, 'p.yml')
    [line] = caught.value.errors
    assert line.startswith('p.yml: ') and fragment in line and '\n' not in line


def test_json_escapes_are_read_as_json():
    policy = policy_load.parse_policy_text('{"name": "\\ud83d\\ude00"}', 'p.json')
    assert policy == {'name': '\U0001f600'}


@pytest.mark.parametrize('selector', ['host', 'other', 'container', 'container:web-*', 'docker:*', '!kubernetes:kube-system/*'])
def test_namespace_selectors_accepted(selector):
    policy = {'policy_version': 1, 'name': 'n', 'rules': [
        {'id': 'r', 'match': {'ports': [856]}, 'expect': 'closed', 'namespaces': [selector]}],
        'waivers': [{'rule': 'r', 'reason': 'x', 'expires': '2027-01-01', 'namespaces': [selector]}]}
    assert policy_load.load_policy(policy, 'p.yml') is policy


@pytest.mark.parametrize('selector', ['hosts', 'host:web', 'lxc:web', 'container:', ''])
def test_bad_namespace_selectors_are_named_with_their_path(selector):
    policy = {'policy_version': 1, 'name': 'n', 'rules': [
        {'id': 'r', 'match': {'ports': [856]}, 'expect': 'closed', 'namespaces': ['host', selector]}]}
    with pytest.raises(policy_load.PolicyInvalid) as caught:
        policy_load.load_policy(policy, 'p.yml')
    [line] = caught.value.errors
    assert line.startswith('p.yml: rules[0].namespaces[1]: %r is not a namespace selector' % selector), line
    assert '"container[:NAME]"' in line and '"kubernetes"' in line
