"""The policy checks beyond the schema (policy_check.py), exactly: each test names the rule it guards.

Written from the survivors of scripts/mutation.sh: every problem is asserted whole (path and message),
so a check that stops, reports elsewhere or reports twice is caught by a fast test.
"""

import datetime

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import policy_check as pc


def rule(rule_id='r1', **fields):
    return dict({'id': rule_id, 'match': {'ports': [22]}, 'expect': 'closed'}, **fields)


def waiver(rule_id='r1', **fields):
    return dict({'rule': rule_id, 'reason': 'lab', 'expires': '2030-01-01'}, **fields)


def problems(rules=(), waivers=None):
    policy = {'policy_version': 1, 'name': 't', 'rules': list(rules)}
    if waivers is not None:
        policy['waivers'] = list(waivers)
    return pc.semantic_problems(policy)


@pytest.mark.parametrize('parts, text', [
    ([], '(top level)'),
    (['rules'], 'rules'),
    (['rules', 2, 'match', 'ports', 10], 'rules[2].match.ports[10]'),
    ([0, 'x'], '[0].x'),
    (['waivers', 0, 'hosts', 1], 'waivers[0].hosts[1]'),
])
def test_format_path(parts, text):
    """Rule: a path reads as the policy is written: names joined by dots, list indexes in brackets."""
    assert pc.format_path(parts) == text


def test_path_sort_key_orders_indexes_as_numbers_and_before_names():
    """Rule: rules[2] sorts before rules[10], an index before a name, a shorter path before its children."""
    paths = [['rules', 10], ['rules', 2, 'match'], ['rules', 2], ['rules', 'x'], ['name'], ['rules', 1, 'id']]
    assert sorted(paths, key=pc.path_sort_key) == [['name'], ['rules', 1, 'id'], ['rules', 2], ['rules', 2, 'match'],
                                                   ['rules', 10], ['rules', 'x']]
    assert pc.path_sort_key(['rules', 3, 'id']) == ((1, 0, 'rules'), (0, 3, ''), (1, 0, 'id'))


@pytest.mark.parametrize('value, expected', [
    ('2027-01-31', datetime.date(2027, 1, 31)),
    (datetime.date(2027, 1, 31), datetime.date(2027, 1, 31)),
    (datetime.datetime(2027, 1, 31, 12, 0), None),  # a moment is not a day
    ('2027-02-30', None),
    ('2027-1-31', None),  # strptime takes it; the format is YYYY-MM-DD
    ('2027-01-311', None),
    ('2027-01-31\n', None),
    (20270131, None),
    (None, None),
])
def test_parse_date(value, expected):
    """Rule: a waiver date is a real day written YYYY-MM-DD (or a date), nothing else."""
    assert pc.parse_date(value) == expected


def test_a_valid_policy_has_no_problems():
    """Rule: nothing is reported for a policy with unique ids, real ranges, dates and selectors."""
    assert problems([rule('r1', hosts=['web-*', '!group:legacy'], namespaces=['host', 'docker:web*']),
                     rule('r2', match={'ports': '1000-2000'})],
                    [waiver('r1', ports=[22, '10-20'], hosts=['db-1'], namespaces=['!container']), waiver('default')]) == []


@pytest.mark.parametrize('rule_id, message', [
    ('bad id', "'bad id' is not %s" % pc._ID_HINT),
    ('-leading', "'-leading' is not %s" % pc._ID_HINT),
    ('trailing\n', "'trailing\\n' is not %s" % pc._ID_HINT),
    ('default', "'default' is reserved for the findings of default: deny"),
])
def test_rule_ids(rule_id, message):
    """Rule: a rule id is an id (matched whole), and never the reserved 'default'."""
    assert problems([rule('ok'), rule(rule_id)]) == [(['rules', 1, 'id'], message)]


def test_duplicate_rule_ids_name_the_first():
    """Rule: a repeated id is reported at each repeat, naming where it first appeared."""
    assert problems([rule('a'), rule('b'), rule('a'), rule('a')]) == [
        (['rules', 2, 'id'], "duplicate rule id 'a' (first at rules[0])"),
        (['rules', 3, 'id'], "duplicate rule id 'a' (first at rules[0])")]


@pytest.mark.parametrize('ports, path, message', [
    (['900-800'], [0], "range '900-800' starts after it ends"),
    ([22, '70000'], [1], "'70000' is outside 0-65535"),
    ('900-800', [], "range '900-800' starts after it ends"),  # a single item: no index in the path
    (70000, [], 'port 70000 is outside 0-65535'),
    ([22, 'nonsense', 80], [1], "'nonsense' is not a port, a range \"A-B\" or one of "),
])
def test_rule_ports(ports, path, message):
    """Rule: each port item of a rule parses; a problem names the item (or the single value) it is in."""
    [(found_path, found_message)] = problems([rule(match={'ports': ports})])
    assert found_path == ['rules', 0, 'match', 'ports'] + path
    assert found_message.startswith(message), found_message


@pytest.mark.parametrize('ports', [[True], True, [22.5], [None], {'a': 1}, [[22]]])
def test_ports_of_the_wrong_type_are_left_to_the_schema(ports):
    """Rule: a bool, float, null or nested port is the schema's to report; reported here too, it would show twice."""
    assert problems([rule(match={'ports': ports})]) == []
    assert problems([rule()], [waiver(ports=ports)]) == []


@pytest.mark.parametrize('patterns, index', [(['', 'web'], 0), (['web', 'group:'], 1), (['!'], 0), (['!group:'], 0)])
def test_host_patterns_that_name_nothing(patterns, index):
    """Rule: a host pattern names a host or a group (after an optional "!")."""
    assert problems([rule(hosts=patterns)]) == [(['rules', 0, 'hosts', index], '%r names no host or group' % patterns[index])]
    assert problems([rule()], [waiver(hosts=patterns)]) == [
        (['waivers', 0, 'hosts', index], '%r names no host or group' % patterns[index])]


@pytest.mark.parametrize('patterns', [['group:web'], ['!web-1'], ['g'], ['X'], ['!Xgroup:'], 'group:', None, [None, 7]])
def test_host_patterns_that_name_something(patterns):
    """Rule: any non-empty name or group is a pattern; a value that is not a list of strings is the schema's."""
    assert problems([rule(hosts=patterns)]) == []


@pytest.mark.parametrize('selector', ['docker:', 'vm', 'host:x', '!', 'other:*', 'DOCKER'])
def test_namespace_selectors(selector):
    """Rule: a namespace selector is host, other, container[:NAME] or RUNTIME[:NAME], "!" before any."""
    message = '%r is not %s' % (selector, pc.NAMESPACE_HINT)
    assert problems([rule(namespaces=['host', selector])]) == [(['rules', 0, 'namespaces', 1], message)]
    assert problems([rule()], [waiver(namespaces=[selector])]) == [(['waivers', 0, 'namespaces', 0], message)]


def test_waivers_name_a_rule():
    """Rule: a waiver names a rule of the policy or 'default'; the message lists what it could name."""
    assert problems([rule('b'), rule('a')], [waiver('a'), waiver('default'), waiver('c'), waiver('bad id')]) == [
        (['waivers', 2, 'rule'], "'c' names no rule; expected one of a, b, default"),
        (['waivers', 3, 'rule'], "'bad id' is not %s" % pc._ID_HINT)]


def test_a_duplicate_rule_is_still_a_rule_a_waiver_can_name():
    """Rule: the first rule of a repeated id counts; a waiver naming it names a rule."""
    assert problems([rule('a'), rule('a')], [waiver('a')]) == [(['rules', 1, 'id'], "duplicate rule id 'a' (first at rules[0])")]


@pytest.mark.parametrize('expires, reported', [('2027-02-30', True), ('2027-2-3', True), ('someday', True),
                                               ('2027-02-28', False), (20270228, False)])
def test_waiver_dates(expires, reported):
    """Rule: a waiver's expires is a real day (a string that is no date is reported; other types are the schema's)."""
    found = problems([rule()], [waiver(expires=expires)])
    assert found == ([(['waivers', 0, 'expires'], '%r is not a date; expected YYYY-MM-DD' % expires)] if reported else [])


def test_waiver_ports():
    """Rule: a waiver's ports parse like a rule's, with the problem at the waiver's item."""
    assert problems([rule()], [waiver(ports=[22, '9-1'])]) == [(['waivers', 0, 'ports', 1], "range '9-1' starts after it ends")]


def test_every_problem_of_every_rule_and_waiver_sorted_by_path():
    """Rule: checking goes on past a problem and past what is not a rule: all problems come back, in path order
    (rules[3] before rules[11])."""
    rules = [rule('r%d' % index) for index in range(12)]
    rules[1] = 'not a rule'  # skipped, not the end of the checking
    rules[3] = rule('r3', match={'ports': ['5-4']}, hosts=[''], namespaces=['vm'])
    rules[11] = rule('r2')
    found = problems(rules, ['not a waiver', waiver('r3', ports=['3-2'], expires='nope', hosts=['!'], namespaces=['x']),
                             waiver('zz')])
    assert [pc.format_path(path) for path, _message in found] == [
        'rules[3].hosts[0]', 'rules[3].match.ports[0]', 'rules[3].namespaces[0]', 'rules[11].id',
        'waivers[1].expires', 'waivers[1].hosts[0]', 'waivers[1].namespaces[0]', 'waivers[1].ports[0]', 'waivers[2].rule']


@pytest.mark.parametrize('policy', [None, [], 'x', {'rules': 'x', 'waivers': 3}, {'rules': [None, 3], 'waivers': [None]},
                                    {'rules': [{'id': 7, 'match': 'x'}], 'waivers': [{'rule': 7, 'expires': 7}]}])
def test_shapes_the_schema_reports_are_not_reported_again(policy):
    """Rule: semantic_problems never raises, and leaves wrong types to the schema."""
    assert pc.semantic_problems(policy) == []
