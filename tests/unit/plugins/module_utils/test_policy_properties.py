"""Property tests: the policy language end to end, from text to verdict.

Generators, and what must hold for everything they make:

* valid policies covering the whole language (every match key, every port form, both expect
  forms, host patterns with groups and excludes, waivers naming rules or ``default``) and gather
  results (IPv4, IPv6, dual-stack and mapped addresses, ephemeral sockets, unknown owners,
  partial or failed gathers): the policy validates and compiles, and evaluate_host gives a verdict
  consistent with its findings, reasons and summary, which gate() judges without raising;
* corrupted policies, a valid one with mutations that certainly make it invalid: validate_policy
  never raises, reports a problem at or around the last mutation, one ``SOURCE: PATH: message``
  line each, sorted by path;
* near-valid policies, with mutations that may or may not be valid: whatever validates compiles;
* text and bytes, random or YAML-ish or a damaged policy: only PolicyInvalid ever escapes, and
  every error is one line.

The last section holds one minimal case for each bug the properties found.
"""

import copy
import datetime
import fnmatch
import ipaddress
import itertools
import json
import os
import random
import re
import string

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_explain
from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import (
    STATUSES,
    compile_policy,
    evaluate_host,
    gate,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_check import format_path, path_sort_key
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_ports import port_set
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import (
    BIND_CLASSES,
    DEFAULT_RULE_ID,
    FAMILIES,
    PROTOCOLS,
    SET_NAMES,
    SEVERITIES,
)
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import (
    PolicyInvalid,
    load_policy,
    parse_policy_text,
    read_policy_file,
    validate_policy,
)
from tests.conftest import REPO

SOURCE = 'policy.yml'
# About 50 s on two cores. PORTWARDEN_PROPERTY_SCALE=10 runs ten times the examples.
_SCALE = float(os.environ.get('PORTWARDEN_PROPERTY_SCALE', '1'))
VALID_EXAMPLES = int(5000 * _SCALE)
CORRUPT_EXAMPLES = int(5000 * _SCALE)
NEAR_VALID_EXAMPLES = int(500 * _SCALE)
TEXT_EXAMPLES = int(1000 * _SCALE)
TEXT_FORMAT_EXAMPLES = int(500 * _SCALE)
BYTES_EXAMPLES = int(200 * _SCALE)
YAML_EXAMPLES = int(200 * _SCALE)
JSON_EXAMPLES = int(200 * _SCALE)
WAIVER_EXAMPLES = int(500 * _SCALE)

_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                       HealthCheck.filter_too_much])

# ---- the error line format -----------------------------------------------------------------------

# A path as format_path writes it: schema property names and list indexes, or "(top level)".
_PATH = r'\(top level\)|(?:[A-Za-z_]+|\[[0-9]+\])(?:\[[0-9]+\]|\.[A-Za-z_]+)*'
_LINE = re.compile(r'(?P<source>%s): (?P<path>%s): (?P<message>\S.*)' % (re.escape(SOURCE), _PATH))
# Text that is not a policy at all: a YAML syntax error names a place in the text (line, column)
# instead of a place in the policy; a whole-document problem (nested too deeply, self-referencing
# aliases) names none. Either way one line.
_TEXT_LINE = re.compile(r'%s: (?:line [0-9]+, column [0-9]+: )?\S.*' % re.escape(SOURCE))


def parse_path(text):
    """``rules[2].match.ports[1]`` -> ``['rules', 2, 'match', 'ports', 1]``; ``(top level)`` -> []."""
    if text == '(top level)':
        return []
    return [int(index) if index else name for index, name in re.findall(r'\[([0-9]+)\]|([A-Za-z_]+)', text)]


def check_error_lines(errors):
    """Every line is one ``SOURCE: PATH: message`` line; the lines are sorted by path. Returns the paths."""
    assert isinstance(errors, list)
    parsed = []
    for line in errors:
        assert isinstance(line, str)
        assert '\n' not in line and '\r' not in line, 'an error line spans lines: %r' % line
        assert line.startswith(SOURCE + ': '), line
        match = _LINE.fullmatch(line)
        assert match, 'not SOURCE: PATH: message: %r' % line
        parts = parse_path(match.group('path'))
        assert format_path(parts) == match.group('path')
        parsed.append((path_sort_key(parts), match.group('message'), parts))
    keys = [(key, message) for key, message, _parts in parsed]
    assert keys == sorted(keys), 'error lines not sorted by path: %r' % errors
    assert len(set(errors)) == len(errors), 'repeated error lines: %r' % errors
    return [parts for _key, _message, parts in parsed]


def check_parse_error_lines(errors):
    """The lines of a PolicyInvalid from reading or parsing: one line each, naming the source first."""
    assert isinstance(errors, list) and errors
    for line in errors:
        assert isinstance(line, str)
        assert '\n' not in line and '\r' not in line, 'an error line spans lines: %r' % line
        assert _TEXT_LINE.fullmatch(line), 'not SOURCE: [line L, column C: ]message: %r' % line


def related(path, other):
    """One path lies on the other: an error at rules[1] is about a mutation at rules[1].id."""
    shorter, longer = sorted((list(path), list(other)), key=len)
    return longer[:len(shorter)] == shorter


# ---- valid policies ------------------------------------------------------------------------------
# Hypothesis spends some 30 microseconds a draw, and this file runs thousands of examples. So most
# leaves come from pools (one draw picks a value, shrinking goes to the pool's first, plainest entry),
# built once from a fixed seed out of telling values; one draw in eight uses the free strategy instead.


def _mostly(pool, free, odds=8):
    """Usually one value from ``pool`` (a list), one time in ``odds`` one from the strategy ``free``."""
    pick = st.sampled_from(pool)
    dice = st.integers(0, odds - 1)

    @st.composite
    def mostly(draw):
        return draw(pick) if draw(dice) < odds - 1 else draw(free)
    return mostly()


_RNG = random.Random(20270101)
_ID_START = string.ascii_letters + string.digits
_ID_POOL = ['ssh', 'web', 'db', 'iana-unassigned-closed', 'r1', 'R2', '0', 'a.b_c-d', 'Default', 'defaults', 'x' * 40]
ids = _mostly(_ID_POOL, st.builds(str.__add__, st.sampled_from(_ID_START), st.text(alphabet=_ID_START + '._-', max_size=8))
              .filter(lambda text: text != DEFAULT_RULE_ID))
_TEXT_POOL = ['x', 'portwarden baseline', 'SSH only from the bastion', 'caf\u00e9 \u2603', 'line one\nline two', "it's",
              '"quoted"', 'a: b', '#', ' padded ', '\U0001f600', '%s %d', '{{ jinja }}', 'CHG-1234', 'alice@example.org']
names = _mostly(_TEXT_POOL, st.text(min_size=1, max_size=10))
descriptions = _mostly([''] + _TEXT_POOL, st.text(max_size=10))

_PORTS = [22, 0, 53, 80, 443, 631, 855, 856, 859, 1023, 1024, 5353, 49151, 49152, 65535]
_PORT_TEXTS = ['{a}', ' {a} ', '00{a}', '{a}-{b}', '{a} - {b}', '\t{a}-{b} ', '{a}-{a}', '0{a}-0{b}']


def _random_port(rng):
    return rng.choice(_PORTS) if rng.random() < 0.6 else rng.randint(0, 65535)


def _random_port_item(rng):
    kind = rng.random()
    if kind < 0.35:
        return _random_port(rng)
    if kind < 0.75:
        start, end = sorted((_random_port(rng), _random_port(rng)))
        return rng.choice(_PORT_TEXTS).format(a=start, b=end)
    return rng.choice(SET_NAMES)


def _random_ports(rng):
    if rng.random() < 0.5:
        return _random_port_item(rng)
    return [_random_port_item(rng) for _index in range(rng.randint(1, 3))]


@st.composite
def port_strings(draw):
    """``"22"``, ``" 0022 "``, ``"855-859"``, ``"855 - 859"``: the schema's number and range texts."""
    start, end = sorted((draw(st.integers(0, 65535)), draw(st.integers(0, 65535))))
    return draw(st.sampled_from(_PORT_TEXTS)).format(a=start, b=end)


_port_items = st.one_of(st.integers(0, 65535), port_strings(), st.sampled_from(SET_NAMES))
_PORT_SPECS = [22] + [_random_ports(_RNG) for _index in range(400)]
ports = _mostly(_PORT_SPECS, st.one_of(_port_items, st.lists(_port_items, min_size=1, max_size=3)))


def _all_lists(values, longest=3):
    """Every list of 1 to ``longest`` values, repeats allowed: the schema does not forbid them."""
    return [list(items) for size in range(1, longest + 1) for items in itertools.product(values, repeat=size)]


_PROTOCOL_LISTS = _all_lists(PROTOCOLS)
_FAMILY_LISTS = _all_lists(FAMILIES)
_BIND_LISTS = _all_lists(BIND_CLASSES)
protocol_lists = st.sampled_from(_PROTOCOL_LISTS)
family_lists = st.sampled_from(_FAMILY_LISTS)
bind_lists = st.sampled_from(_BIND_LISTS)
HOSTS = ('h1', 'h2', 'web1', 'web2', 'db1', 'host-3')
GROUPS = ('web', 'db', 'prod', 'h1', 'all')
_HOST_NAMES = HOSTS + GROUPS + ('*', 'web*', 'db?', 'host-[0-9]', '[!w]*', '[', '!x', '\u00fc')
_HOST_PATTERNS = [prefix + name for prefix in ('', '!', 'group:', '!group:') for name in _HOST_NAMES]
_HOST_LISTS = [['h1']] + [_RNG.sample(_HOST_PATTERNS, _RNG.randint(1, 3)) for _index in range(300)]
host_lists = _mostly(_HOST_LISTS,
                     st.lists(st.text(min_size=1, max_size=6).filter(lambda text: text.lstrip('!') not in ('', 'group:')),
                              min_size=1, max_size=3))
_OWNERS = ['sshd', 'nginx', '*', '/usr/sbin/*', 'root', '0', '33', 'www-data', 'ssh.service', '*.service', 'cups?',
           '[!a]*', '[', '\u00fc', ' ', 'systemd-resolve']
_OWNER_LISTS = [['sshd']] + [_RNG.sample(_OWNERS, _RNG.randint(1, 3)) for _index in range(200)]
owner_patterns = _mostly(_OWNER_LISTS,
                         st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=3))
severities = st.sampled_from(SEVERITIES)


_MASKS = [st.integers(0, 2 ** count - 1) for count in range(10)]


def _optional(draw, strategies):
    """Some of the optional keys: one draw picks which, then one value each."""
    keys = sorted(strategies)
    mask = draw(_MASKS[len(keys)])
    return dict((key, draw(strategies[key])) for index, key in enumerate(keys) if mask >> index & 1)


_MATCH_KEYS = {'ports': ports, 'protocols': protocol_lists, 'families': family_lists, 'bind': bind_lists,
               'include_ephemeral': st.booleans()}
_OWNER_KEYS = {'processes': owner_patterns, 'users': owner_patterns, 'exe': owner_patterns, 'units': owner_patterns}
_EXPECT_KEYS = {'processes': owner_patterns, 'users': owner_patterns, 'exe': owner_patterns, 'units': owner_patterns,
                'bind': st.one_of(st.sampled_from(BIND_CLASSES), bind_lists)}
_RULE_KEYS = {'description': descriptions, 'severity': severities, 'hosts': host_lists}
_WAIVER_KEYS = {'hosts': host_lists, 'ports': ports, 'protocols': protocol_lists, 'ticket': names, 'approved_by': names}
_FIRST_DAY = datetime.date(2024, 1, 1)
EXPIRY_DATES = st.integers(0, 2556).map(lambda days: _FIRST_DAY + datetime.timedelta(days=days))  # to 2030-12-31


@st.composite
def _rule_bodies(draw):
    rule = {'match': _optional(draw, _MATCH_KEYS), 'expect': _optional(draw, _EXPECT_KEYS) or 'closed'}
    rule.update(_optional(draw, _RULE_KEYS))
    return rule


@st.composite
def _waiver_bodies(draw):
    waiver = {'reason': draw(names), 'expires': draw(EXPIRY_DATES).isoformat()}
    waiver.update(_optional(draw, _WAIVER_KEYS))
    if draw(st.integers(0, 2)) == 0:  # a third of the waivers bound to processes
        waiver.update(_optional(draw, _OWNER_KEYS))
    return waiver


def _random_subset(rng, choices):
    """The same keys _optional draws, with the same odds, from Python's random."""
    return dict((key, rng.choice(values)) for key, values in sorted(choices.items()) if rng.random() < 0.5)


def _random_rule_body(rng):
    rule = {'match': _random_subset(rng, {'ports': _PORT_SPECS, 'protocols': _PROTOCOL_LISTS, 'families': _FAMILY_LISTS,
                                          'bind': _BIND_LISTS, 'include_ephemeral': [False, True]}),
            'expect': _random_subset(rng, {'processes': _OWNER_LISTS, 'users': _OWNER_LISTS, 'exe': _OWNER_LISTS,
                                           'units': _OWNER_LISTS,
                                           'bind': list(BIND_CLASSES) + _BIND_LISTS}) or 'closed'}
    rule.update(_random_subset(rng, {'description': [''] + _TEXT_POOL, 'severity': SEVERITIES, 'hosts': _HOST_LISTS}))
    return rule


def _random_waiver_body(rng):
    waiver = {'reason': rng.choice(_TEXT_POOL),
              'expires': (_FIRST_DAY + datetime.timedelta(days=rng.randint(0, 2556))).isoformat()}
    waiver.update(_random_subset(rng, {'hosts': _HOST_LISTS, 'ports': _PORT_SPECS, 'protocols': _PROTOCOL_LISTS,
                                       'ticket': _TEXT_POOL, 'approved_by': _TEXT_POOL}))
    if rng.random() < 0.3:  # bound to processes
        waiver.update(_random_subset(rng, {'processes': _OWNER_LISTS, 'users': _OWNER_LISTS, 'exe': _OWNER_LISTS,
                                           'units': _OWNER_LISTS}))
    return waiver


# Whole rules and waivers from pools too (the first entries the plainest), free ones one time in eight.
rule_bodies = _mostly([{'match': {}, 'expect': 'closed'}] + [_random_rule_body(_RNG) for _index in range(3000)],
                      _rule_bodies())
waiver_bodies = _mostly([{'reason': 'x', 'expires': '2027-01-01'}] + [_random_waiver_body(_RNG) for _index in range(2000)],
                        _waiver_bodies())


def _draw_rule(draw, rule_id):
    rule = {'id': rule_id}
    rule.update(draw(rule_bodies))
    return rule


def _draw_waiver(draw, rule_ids):
    waiver = {'rule': draw(st.sampled_from(list(rule_ids) + [DEFAULT_RULE_ID]))}
    waiver.update(draw(waiver_bodies))
    return waiver


_TOP_KEYS = {
    'description': descriptions,
    'default': st.sampled_from(['allow', 'deny']),
    'default_severity': severities,
    'waiver_warning_days': st.one_of(st.integers(0, 400), st.integers(0, 10 ** 12)),
}
_RULE_IDS = [st.lists(ids, max_size=count, unique=True) for count in range(7)]
_COUNTS = [st.integers(0, count) for count in range(7)]


@st.composite
def valid_policies(draw, max_rules=5, max_waivers=3):
    rule_ids = draw(_RULE_IDS[max_rules])
    policy = {'policy_version': 1, 'name': draw(names)}
    policy.update(_optional(draw, _TOP_KEYS))
    if rule_ids or draw(st.booleans()):
        policy['rules'] = [_draw_rule(draw, rule_id) for rule_id in rule_ids]
    waivers = [_draw_waiver(draw, rule_ids) for _index in range(draw(_COUNTS[max_waivers]))]
    if waivers or draw(st.booleans()):
        policy['waivers'] = waivers
    return policy


# ---- gather results ------------------------------------------------------------------------------

_IPV4 = [('ipv4', address, None) for address in ('0.0.0.0', '127.0.0.1', '127.0.0.53', '10.0.0.5', '192.0.2.7')]
_IPV6 = [('ipv6', address, v6only) for address in ('::', '::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::ffff:0.0.0.0',
                                                   'fe80::1', '2001:db8::1') for v6only in (True, False, None)]
_PROCESSES = [
    {'pid': 812, 'name': 'sshd', 'user': 'root', 'uid': 0, 'exe': '/usr/sbin/sshd', 'unit': 'ssh.service'},
    {'pid': 900, 'name': 'nginx', 'user': 'www-data', 'uid': 33, 'exe': '/usr/sbin/nginx', 'unit': 'nginx.service'},
    {'pid': 901, 'name': 'nginx', 'user': 'root', 'uid': 0, 'exe': '/usr/sbin/nginx', 'unit': 'nginx.service'},
    {'pid': 77, 'name': 'cupsd', 'user': 'root', 'uid': 0, 'exe': None, 'unit': 'cups.service'},
    {'pid': 4242, 'name': 'python3', 'user': None, 'uid': 1000, 'exe': '/usr/bin/python3', 'unit': 'user@1000.service'},
    {'pid': 5, 'name': 'systemd-resolve', 'user': 'systemd-resolve', 'uid': 991, 'exe': None, 'unit': None},
    {'pid': 6, 'name': '[', 'user': '\u00fc', 'uid': 65534, 'exe': None, 'unit': None},
    {'pid': 7, 'name': '/usr/sbin/sshd', 'user': 'root', 'uid': 0, 'exe': '/tmp/x', 'unit': None},  # a name is chosen
]


def _random_socket(rng):
    if rng.random() < 0.8:
        family, address, v6only = rng.choice(_IPV4 if rng.random() < 0.5 else _IPV6)
    elif rng.random() < 0.5:
        family, address, v6only = 'ipv4', str(ipaddress.IPv4Address(rng.getrandbits(32))), None
    else:
        family, address, v6only = 'ipv6', str(ipaddress.IPv6Address(rng.getrandbits(128))), rng.choice([True, False, None])
    return {'protocol': rng.choice(PROTOCOLS), 'family': family, 'address': address, 'port': _random_port(rng),
            'v6only': v6only, 'ephemeral': rng.random() < 0.2, 'inode': rng.randint(1, 2 ** 32),
            'processes': [dict(process) for process in rng.sample(_PROCESSES, rng.choice([0, 1, 1, 1, 2, 4]))]}


@st.composite
def _free_sockets(draw):
    """A socket from free values: any address of either family, any process facts."""
    if draw(st.booleans()):
        family, address, v6only = 'ipv4', str(draw(st.ip_addresses(v=4))), None
    else:
        family, address, v6only = 'ipv6', str(draw(st.ip_addresses(v=6))), draw(st.sampled_from([True, False, None]))
    free_process = st.fixed_dictionaries({
        'pid': st.integers(1, 4194304), 'name': st.text(max_size=15), 'user': st.one_of(st.none(), st.text(max_size=8)),
        'uid': st.integers(0, 2 ** 32 - 1), 'exe': st.one_of(st.none(), st.text(max_size=8)),
        'unit': st.one_of(st.none(), st.text(max_size=8))})
    return {'protocol': draw(st.sampled_from(PROTOCOLS)), 'family': family, 'address': address,
            'port': draw(st.integers(0, 65535)), 'v6only': v6only, 'ephemeral': draw(st.booleans()), 'inode': None,
            'processes': draw(st.lists(st.one_of(st.sampled_from(_PROCESSES), free_process), max_size=5))}


sockets = _mostly([_random_socket(_RNG) for _index in range(2000)], _free_sockets(), odds=16)
_COVERAGES = [
    {'backend': 'netlink', 'privileged': True, 'complete': True, 'errors': [], 'notes': []},
    {'complete': True, 'errors': []},
    {'complete': True, 'errors': ['complete, yet an error was noted']},
    {'complete': False, 'errors': ['3 processes could not be inspected']},
    {'complete': False, 'errors': ['udp/ipv6: cannot read /proc/net/udp6', 'not running as root']},
    {'complete': False, 'errors': []},  # partial without a word why
    {'errors': []},  # no 'complete' at all
    {'complete': None},
]
coverages = _mostly(_COVERAGES, st.builds(lambda errors: {'complete': False, 'errors': errors},
                                          st.lists(st.text(min_size=1, max_size=8), max_size=2)))


# One socket is listed once (a repeat is a malformed gather result, test_evaluate_gathered.py).
_SOCKET_LISTS = st.lists(sockets, max_size=6, unique_by=lambda entry: (entry['protocol'], entry['family'], entry['address'],
                                                                       entry['port'], entry['inode']))


@st.composite
def gather_results(draw):
    shape = draw(st.integers(0, 11))
    if shape == 11:
        return None  # the gather failed
    socket_list = draw(_SOCKET_LISTS)
    if shape == 10:
        return {'sockets': socket_list}  # no coverage: as good as no gather
    return {'sockets': socket_list, 'coverage': draw(coverages)}


def well_formed_coverage(gathered):
    """The coverage the gather writes: ``complete`` a real boolean, ``errors`` a list of strings, none when complete.
    Any other is a malformed gather result: unknown, with no findings."""
    coverage = gathered.get('coverage') if isinstance(gathered, dict) else None
    return (isinstance(coverage, dict) and isinstance(coverage.get('complete'), bool) and isinstance(coverage.get('errors'), list)
            and all(isinstance(error, str) for error in coverage['errors']) and not (coverage['complete'] and coverage['errors']))


def complete_gather(gathered):
    return well_formed_coverage(gathered) and gathered['coverage']['complete']


def check_result(policy, gathered, result, host):
    rule_ids = set(rule['id'] for rule in policy.get('rules') or [])
    assert result['status'] in STATUSES
    assert result['host'] == host
    findings = result['findings']
    reasons = result['reasons']
    statuses = [finding['status'] for finding in findings]
    assert set(statuses) <= {'drift', 'waived', 'unknown'}
    if result['status'] == 'compliant':
        assert complete_gather(gathered)
        assert not {'drift', 'unknown'} & set(statuses)
        assert reasons == []
    if not complete_gather(gathered):
        assert result['status'] != 'compliant'
        assert reasons
    if gathered is None:
        assert result['status'] == 'unknown' and findings == []
    # The verdict follows from findings and reasons.
    expected = 'drift' if 'drift' in statuses else 'unknown' if reasons else 'compliant'
    assert result['status'] == expected
    if 'unknown' in statuses:
        assert reasons
    for finding in findings:
        assert finding['rule'] in rule_ids or finding['rule'] == DEFAULT_RULE_ID
        if finding['rule'] == DEFAULT_RULE_ID:
            assert policy.get('default') == 'deny'
        assert finding['severity'] in SEVERITIES
        assert finding['protocol'] in PROTOCOLS
        assert 0 <= finding['port'] <= 65535
        assert isinstance(finding['message'], str) and finding['message']
        if finding['waived']:
            assert finding['status'] == 'waived'
            assert finding['waiver'] is not None and finding['waiver']['rule'] == finding['rule']
        else:
            assert finding['status'] != 'waived'
            assert finding['waiver'] is None
    summary = result['summary']
    assert summary['findings'] == len(findings)
    assert summary['drift'] + summary['waived'] + summary['unknown'] == summary['findings']
    assert summary['drift'] == statuses.count('drift')
    assert summary['waived'] == statuses.count('waived')
    assert summary['unknown'] == statuses.count('unknown')
    assert set(summary['drift_by_severity']) == set(SEVERITIES)
    assert sum(summary['drift_by_severity'].values()) == summary['drift']
    json.dumps(result)  # what the action returns must serialise
    for fail_on in ('never',) + SEVERITIES:
        failures = gate(result, fail_on=fail_on, fail_on_unknown=True)
        assert isinstance(failures, list)
        if reasons:
            assert failures
        if fail_on != 'never' and any(f['status'] == 'drift' and SEVERITIES.index(f['severity']) >= SEVERITIES.index(fail_on)
                                      for f in findings):
            assert failures
        assert isinstance(gate(result, fail_on=fail_on, fail_on_unknown=False), list)
    if result['status'] == 'compliant':
        assert gate(result, 'info', True) == []


# ---- a reference evaluation: the documented semantics, written plainly ------------------------------

def _applies(patterns, host, groups):
    """Host patterns: shell-style names, "group:NAME" for groups, "!" before either to exclude."""
    def hit(pattern):
        if pattern.startswith('group:'):
            return any(fnmatch.fnmatchcase(group, pattern[len('group:'):]) for group in groups)
        return fnmatch.fnmatchcase(host, pattern)
    patterns = patterns or []
    if any(hit(pattern[1:]) for pattern in patterns if pattern.startswith('!')):
        return False
    include = [pattern for pattern in patterns if not pattern.startswith('!')]
    return not include or any(hit(pattern) for pattern in include)


def _address(entry):
    """(bind class, families the socket takes): '::' without v6only=True is dual-stack; ::ffff:a.b.c.d is IPv4."""
    try:
        ip = ipaddress.ip_address(entry['address'])
    except ValueError:
        return 'specific', {entry['family']}
    mapped = getattr(ip, 'ipv4_mapped', None)
    families = {entry['family']}
    if mapped is not None:
        ip, families = mapped, {'ipv4'}
    bind = 'any' if ip.is_unspecified else 'loopback' if ip.is_loopback else 'specific'
    if entry['family'] == 'ipv6' and mapped is None and bind == 'any' and entry['v6only'] is not True:
        families = {'ipv4', 'ipv6'}
    return bind, families


def _owner_problems(expect, processes):
    problems = 0
    for proc in processes:
        for key, values in (('processes', (proc['name'], proc['exe'])), ('users', (proc['user'], str(proc['uid']))),
                            ('exe', (proc['exe'],)), ('units', (proc['unit'],))):
            if key in expect and not any(value is not None and fnmatch.fnmatchcase(value, pattern)
                                         for pattern in expect[key]
                                         # a processes pattern with a slash is a path: the executable's, never a name
                                         for value in (values[1:] if key == 'processes' and '/' in pattern else values)):
                problems += 1
    return problems


def reference_findings(policy, gathered, host, groups, today):
    """``(rule, protocol, address, port, status)`` of every finding evaluate_host should report."""
    if not well_formed_coverage(gathered):
        return []
    rules = [rule for rule in policy.get('rules') or [] if _applies(rule.get('hosts'), host, groups)]
    findings = []
    for entry in gathered.get('sockets') or []:
        protocol, port = entry['protocol'], entry['port']
        bind, families = _address(entry)
        matched = False
        for rule in rules:
            match = rule['match']
            if protocol not in (match.get('protocols') or PROTOCOLS):
                continue
            if 'ports' in match and port not in port_set(match['ports'], protocol):
                continue
            if entry['ephemeral'] and not match.get('include_ephemeral'):
                continue
            if match.get('families') and not families & set(match['families']):
                continue
            if match.get('bind') and bind not in match['bind']:
                continue
            matched = True
            expect = rule['expect']
            if expect == 'closed':
                findings.append([rule['id'], protocol, entry['address'], port, 'drift', entry['processes']])
                continue
            wanted = expect.get('bind')
            drift = wanted is not None and bind not in (wanted if isinstance(wanted, list) else [wanted])
            owners = any(key in expect for key in _OWNER_KEYS)
            drift = drift or bool(owners and _owner_problems(expect, entry['processes']))
            if drift or (owners and not entry['processes']):
                findings.append([rule['id'], protocol, entry['address'], port, 'drift' if drift else 'unknown',
                                 entry['processes']])
        if policy.get('default') == 'deny' and not matched and not entry['ephemeral']:
            findings.append([DEFAULT_RULE_ID, protocol, entry['address'], port, 'drift', entry['processes']])
    for finding in findings:
        for waiver in policy.get('waivers') or []:
            if waiver['rule'] != finding[0] or not _applies(waiver.get('hosts'), host, groups):
                continue
            if finding[1] not in (waiver.get('protocols') or PROTOCOLS):
                continue
            if 'ports' in waiver and finding[3] not in port_set(waiver['ports'], finding[1]):
                continue
            holders = finding[5]
            if any(key in waiver for key in _OWNER_KEYS) and (not holders or _owner_problems(waiver, holders)):
                continue  # bound to processes: every holder known and allowed, as a rule's expect would allow it
            if datetime.date.fromisoformat(waiver['expires']) >= today:
                finding[4] = 'waived'
                break
    return sorted(tuple(finding[:5]) for finding in findings)


def _rule_findings(result):
    return sorted((f['rule'], f['protocol'], f['address'], f['port'], f['status'], f['message'])
                  for f in result['findings'] if f['rule'] != DEFAULT_RULE_ID)


_PLACES = [(host, list(groups)) for host in HOSTS for size in range(3) for groups in itertools.combinations(GROUPS, size)]


@settings(max_examples=VALID_EXAMPLES, **_SETTINGS)
@given(policy=valid_policies(), gathered=gather_results(), place=st.sampled_from(_PLACES), day=st.integers(-3, 400),
       near_expiry=st.booleans())
def test_valid_policies_validate_compile_and_evaluate(policy, gathered, place, day, near_expiry):
    assert validate_policy(policy, SOURCE) == []
    compiled = compile_policy(policy)
    host, groups = place
    expiries = sorted(datetime.date.fromisoformat(waiver['expires']) for waiver in policy.get('waivers') or [])
    if expiries and near_expiry:  # around a waiver's last day: active, warned about, expired
        today = expiries[day % len(expiries)] + datetime.timedelta(days=day % 24 - 3)
    else:
        today = datetime.date(2024, 1, 1) + datetime.timedelta(days=day * 7)
    before = json.dumps(gathered, sort_keys=True)
    result = evaluate_host(gathered, compiled, host, groups, today)
    check_result(policy, gathered, result, host)
    assert sorted((f['rule'], f['protocol'], f['address'], f['port'], f['status']) for f in result['findings']) \
        == reference_findings(policy, gathered, host, groups, today)
    # default: allow or deny changes only the default findings, never what the rules find.
    other = dict(policy, default='allow' if policy.get('default') == 'deny' else 'deny')
    other_result = evaluate_host(gathered, compile_policy(other), host, groups, today)
    check_result(other, gathered, other_result, host)
    assert _rule_findings(result) == _rule_findings(other_result)
    assert json.dumps(gathered, sort_keys=True) == before, 'evaluate_host changed its input'


@settings(max_examples=YAML_EXAMPLES, **_SETTINGS)
@given(policy=valid_policies(), flow=st.booleans())
def test_valid_policies_survive_yaml_text(policy, flow):
    # allow_unicode=False: PyYAML's emitter writes U+0085 raw, and its reader then folds it like a line break.
    parsed = parse_policy_text(yaml.safe_dump(policy, default_flow_style=flow), SOURCE)
    assert parsed == policy
    assert validate_policy(parsed, SOURCE) == []


@settings(max_examples=JSON_EXAMPLES, **_SETTINGS)
@given(policy=valid_policies())
def test_valid_policies_survive_json_text(policy):
    """parse_policy_text reads JSON too ("a subset" of YAML): json.dumps output must read back unchanged."""
    assert parse_policy_text(json.dumps(policy), SOURCE) == policy


@settings(max_examples=WAIVER_EXAMPLES, **_SETTINGS)
@given(policy=valid_policies(), gathered=gather_results())
def test_waivers_for_everything_leave_no_drift(policy, gathered):
    """Waive every rule and the default everywhere: the same findings, none of them drift; expired waivers change nothing."""
    today = datetime.date(2027, 6, 1)
    bare = dict((key, value) for key, value in policy.items() if key != 'waivers')
    everything = [rule['id'] for rule in policy.get('rules') or []] + [DEFAULT_RULE_ID]
    waived = dict(bare, waivers=[{'rule': rule_id, 'reason': 'all', 'expires': '2099-12-31'} for rule_id in everything])
    expired = dict(bare, waivers=[{'rule': rule_id, 'reason': 'old', 'expires': '2027-05-31'} for rule_id in everything])
    results = {}
    for name, variant in (('bare', bare), ('waived', waived), ('expired', expired)):
        assert validate_policy(variant, SOURCE) == []
        results[name] = evaluate_host(gathered, compile_policy(variant), 'h1', ['web'], today)
        check_result(variant, gathered, results[name], 'h1')

    def sockets_found(result):
        return sorted((f['rule'], f['protocol'], f['address'], f['port']) for f in result['findings'])

    assert sockets_found(results['waived']) == sockets_found(results['bare']) == sockets_found(results['expired'])
    assert results['waived']['status'] != 'drift'
    assert all(finding['waived'] for finding in results['waived']['findings'])
    assert [f['status'] for f in results['expired']['findings']] == [f['status'] for f in results['bare']['findings']]
    assert all('waiver_expired' in finding for finding in results['expired']['findings'])
    assert results['expired']['status'] == results['bare']['status']


EXPLAIN_EXAMPLES = int(1000 * _SCALE)


def _socket_key(item):
    return (item['protocol'], item['family'], item['address'], item['port'])


@settings(max_examples=EXPLAIN_EXAMPLES, **_SETTINGS)
@given(policy=valid_policies(), gathered=gather_results(), place=st.sampled_from(_PLACES), day=st.integers(-3, 400))
def test_explain_decides_as_the_evaluation(policy, gathered, place, day):
    """portwarden explain, for every socket of a gather: the findings the evaluation gives that socket (rule, status,
    message), and so its decision; a rule that gave a finding is one the explanation says matched."""
    if not well_formed_coverage(gathered) or ev.gather_problem(gathered) is not None:
        return
    compiled = compile_policy(policy)
    host, groups = place
    today = datetime.date(2024, 1, 1) + datetime.timedelta(days=day * 7)
    result = evaluate_host(gathered, compiled, host, groups, today)
    by_socket = {}
    for finding in result['findings']:
        by_socket.setdefault(_socket_key(finding), []).append(finding)
    explained = []
    for entry in gathered['sockets']:
        explanation = evaluate_explain.explain_socket(entry, compiled, host, groups, today, gathered['coverage'])
        explained.extend((_socket_key(entry), f['rule'], f['status'], f['message']) for f in explanation['findings'])
        matched = set(step['rule'] for step in explanation['rules'] if step['matched'])
        assert set(f['rule'] for f in explanation['findings']) - {DEFAULT_RULE_ID} <= matched
        assert [step['rule'] for step in explanation['rules']] == [rule['id'] for rule in policy.get('rules') or []]
        if sum(1 for other in gathered['sockets'] if _socket_key(other) == _socket_key(entry)) == 1:
            assert explanation['decision'] == evaluate_explain.socket_decision(by_socket.get(_socket_key(entry), []))
        assert evaluate_explain.explain_lines(explanation)[-1 - len(explanation['host_notes'])].startswith(
            'decision: %s' % explanation['decision'])
    assert sorted(explained) == sorted((_socket_key(f), f['rule'], f['status'], f['message']) for f in result['findings'])


# ---- corrupted policies --------------------------------------------------------------------------

# (Numbers past Python's 4300-digit int-to-str limit have their own test: Hypothesis cannot print them either.)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2 ** 63), st.floats(),
                     st.text(max_size=8), st.binary(max_size=4), st.dates())
# Keys as YAML can write them: text, numbers, null, booleans, !!binary bytes, !!timestamp dates.
_keys = st.one_of(st.text(max_size=6), st.integers(), st.none(), st.booleans(), st.binary(max_size=3), st.dates())


def _containers(inner):
    return st.one_of(st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3))


garbage = st.recursive(_scalars, _containers, max_leaves=6)


def _wrong(*types):
    """Garbage that is none of ``types``. A bool is no int here, but 2.0 is one: JSON Schema's integer admits it."""
    def wrong(value):
        if isinstance(value, bool):
            return bool not in types
        if isinstance(value, float) and value.is_integer() and int in types:
            return False
        return not isinstance(value, types)
    return garbage.filter(wrong)


def _whole_number(value, least):
    """What JSON Schema's {"type": "integer", "minimum": least} admits: 3 and 3.0, not True."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value >= least and (isinstance(value, int) or value.is_integer())


_not_one = garbage.filter(lambda value: not (_whole_number(value, 1) and value == 1))
_bad_port_items = st.one_of(
    st.sampled_from([-1, 65536, 10 ** 20, -10 ** 20, True, False, 1.5, None, 'ssh', 'System', 'iana:unasigned', 'iana',
                     'dynamic ', '859-855', '1-70000', '70000', '', ' ', '22-', '-22', '22,23', '22 23', '0x16', [], {}]),
    st.integers(min_value=65536), st.integers(max_value=-1),
    st.tuples(st.integers(1, 65535), st.integers(0, 65535)).filter(lambda pair: pair[0] > pair[1])
    .map(lambda pair: '%d-%d' % pair),
    st.integers(65536, 10 ** 9).map(str),
    _wrong(int, str, list),
)
_bad_protocols = st.one_of(st.sampled_from(['tcp', [], ['sctp'], ['TCP'], ['tcp', 'udp', 'icmp'], [None], [['tcp']]]),
                           _wrong(list))
_bad_strings = st.one_of(st.just(''), _wrong(str))
_bad_severities = st.one_of(st.sampled_from(['hihg', 'HIGH', 'crit', 'warning', '', 'medium ', 'Info']), _wrong(str))
_bad_hosts = st.one_of(st.sampled_from(['web1', [], [''], ['!'], ['group:'], ['!group:'], [1], [None], ['a', '']]),
                       _wrong(list))
_bad_dates = st.one_of(
    st.sampled_from(['2027-02-30', '2027-13-01', 'tomorrow', '2027-1-1', 20270101, None, '2027-01-01T00:00:00',
                     ' 2027-01-01', '2027-00-10', '0000-01-01', '2027/01/01', '2027-02-29', '', '2027-01-32']),
    _wrong(str))
_bad_ids = st.one_of(st.sampled_from(['', '-a', '.a', '_a', 'a b', 'a/b', 'a:b', '\u00e4', 'a\tb']), _wrong(str))

_bad_owner_lists = st.one_of(st.sampled_from(['sshd', [], [''], [1], [None], {}, None, True, [['sshd']]]), _wrong(list))
# The value slots of the language and the values that certainly do not belong there.
BAD_VALUES = {
    'policy_version': st.one_of(st.sampled_from([2, '1', 0, None, True, 1.5, [1], -1]), _not_one),
    'name': _bad_strings,
    'description': _wrong(str),
    'default': st.one_of(st.sampled_from(['alow', 'Allow', 'DENY', 'denied', '', 'permit', 'closed']), _wrong(str)),
    'default_severity': _bad_severities,
    'waiver_warning_days': st.one_of(st.sampled_from([-1, -10 ** 30, '14', True, 1.5, None, [], 'fourteen']),
                                     garbage.filter(lambda value: not _whole_number(value, 0))),
    'rules': _wrong(list),
    'waivers': _wrong(list),
    'rule': _wrong(dict),
    'waiver': _wrong(dict),
    'rule.id': st.one_of(_bad_ids, st.just(DEFAULT_RULE_ID)),
    'rule.description': _wrong(str),
    'rule.match': _wrong(dict),
    'rule.expect': st.one_of(
        st.sampled_from(['open', 'Closed', 'closed ', {}, [], None, 1, True, {'process': ['x']}, {'processes': 'sshd'},
                         {'processes': []}, {'processes': ['']}, {'bind': 'localhost'}, {'bind': []}, {'users': [1]},
                         {'units': None}, {'processes': ['a'], 'extra': 1}, {'bind': ['any', 'all']}]),
        _wrong(dict).filter(lambda value: value != 'closed')),
    'rule.severity': _bad_severities,
    'rule.hosts': _bad_hosts,
    'match.ports': _bad_port_items,
    'match.protocols': _bad_protocols,
    'match.families': st.one_of(st.sampled_from(['ipv4', [], ['ipv5'], ['inet'], [4], ['IPv6']]), _wrong(list)),
    'match.bind': st.one_of(st.sampled_from(['any', [], ['localhost'], ['Any'], ['any', 'everywhere']]), _wrong(list)),
    'match.include_ephemeral': st.one_of(st.sampled_from(['yes', 'true', 1, 0, None, []]), _wrong(bool)),
    'waiver.rule': _bad_ids,
    'waiver.hosts': _bad_hosts,
    'waiver.ports': _bad_port_items,
    'waiver.protocols': _bad_protocols,
    'waiver.reason': _bad_strings,
    'waiver.ticket': _bad_strings,
    'waiver.approved_by': _bad_strings,
    'waiver.expires': _bad_dates,
    'waiver.processes': _bad_owner_lists,
    'waiver.users': _bad_owner_lists,
    'waiver.exe': _bad_owner_lists,
    'waiver.units': _bad_owner_lists,
}
ALLOWED_KEYS = {
    'top': ('policy_version', 'name', 'description', 'default', 'default_severity', 'waiver_warning_days', 'rules',
            'waivers'),
    'rule': ('id', 'description', 'match', 'expect', 'severity', 'hosts'),
    'match': ('ports', 'protocols', 'families', 'bind', 'include_ephemeral'),
    'expect': ('processes', 'users', 'exe', 'units', 'bind'),
    'waiver': ('rule', 'hosts', 'ports', 'protocols', 'processes', 'users', 'exe', 'units', 'reason', 'ticket', 'approved_by',
               'expires'),
}
REQUIRED_KEYS = {'top': ('policy_version', 'name'), 'rule': ('id', 'match', 'expect'),
                 'waiver': ('rule', 'reason', 'expires')}
_unknown_keys = st.one_of(
    st.sampled_from(['severty', 'port', 'protocol', 'Rules', 'version', 'hots', 'expire', 'process', 'ID', 'Name',
                     'waiver', 'rule', 'match', 'expect']),
    st.text(max_size=8), st.integers(), st.none(), st.booleans(), st.binary(max_size=3))


def _get(policy, path):
    node = policy
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return None
        elif not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _mappings(policy):
    """``(kind, path)`` of every mapping a mutation can work on."""
    found = [('top', [])]
    for list_key, kind in (('rules', 'rule'), ('waivers', 'waiver')):
        items = policy.get(list_key)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            found.append((kind, [list_key, index]))
            if kind == 'rule':
                if isinstance(item.get('match'), dict):
                    found.append(('match', [list_key, index, 'match']))
                if isinstance(item.get('expect'), dict):
                    found.append(('expect', [list_key, index, 'expect']))
    return found


def _slots(policy):
    """``(slot name, path)`` of every value a bad value can replace or be added at."""
    slots = []
    for kind, path in _mappings(policy):
        if kind == 'top':
            slots.extend((key, [key]) for key in ALLOWED_KEYS['top'])
            for list_key, item_kind in (('rules', 'rule'), ('waivers', 'waiver')):
                if isinstance(policy.get(list_key), list):
                    slots.extend((item_kind, [list_key, index]) for index in range(len(policy[list_key])))
        elif kind in ('rule', 'match', 'waiver'):
            slots.extend(('%s.%s' % (kind, key), path + [key]) for key in ALLOWED_KEYS[kind])
    return [(name, path) for name, path in slots if name in BAD_VALUES]


def _set(policy, path, value):
    _get(policy, path[:-1])[path[-1]] = value


def _rule_ids(policy):
    """The rule ids a waiver could name: text ids of rules that are mappings."""
    rules = policy.get('rules') if isinstance(policy, dict) else None
    if not isinstance(rules, list):
        return []
    return [rule['id'] for rule in rules if isinstance(rule, dict) and isinstance(rule.get('id'), str)]


_MUTATIONS = st.sampled_from(['bad value', 'bad value', 'bad value', 'bad port in list', 'unknown key', 'drop required',
                              'duplicate id', 'unknown waiver rule', 'top level', 'self-reference'])


_CORRUPTION_BASES = valid_policies(max_rules=3, max_waivers=2)


@st.composite
def corrupted_policies(draw):
    """A valid policy with 1-3 mutations, each of which certainly makes it invalid.

    Returns ``(policy, path)``, the path where the last mutation struck: some error must be about it.
    """
    policy = copy.deepcopy(draw(_CORRUPTION_BASES))
    path = None
    for _round in range(draw(st.integers(1, 3))):
        kind = draw(_MUTATIONS)
        if kind == 'bad value':
            name, path = draw(st.sampled_from(_slots(policy)))
            _set(policy, path, draw(BAD_VALUES[name]))
        elif kind == 'self-reference':  # YAML writes it as  &a [*a]
            _name, path = draw(st.sampled_from(_slots(policy)))
            loop = []
            loop.append(loop)
            _set(policy, path, loop)
        elif kind == 'bad port in list':
            lists = [mapping_path + ['ports'] for mapping_kind, mapping_path in _mappings(policy)
                     if mapping_kind in ('match', 'waiver') and isinstance(_get(policy, mapping_path).get('ports'), list)]
            if not lists:
                continue
            ports_path = draw(st.sampled_from(lists))
            path = ports_path + [draw(st.integers(0, len(_get(policy, ports_path)) - 1))]
            _set(policy, path, draw(_bad_port_items))
        elif kind == 'unknown key':
            mapping_kind, mapping_path = draw(st.sampled_from(_mappings(policy)))
            key = draw(_unknown_keys.filter(lambda key, allowed=ALLOWED_KEYS[mapping_kind]: key not in allowed))
            path = mapping_path + [key]
            _get(policy, mapping_path)[key] = draw(garbage)
        elif kind == 'drop required':
            candidates = [(mapping_path, key) for mapping_kind, mapping_path in _mappings(policy)
                          for key in REQUIRED_KEYS.get(mapping_kind, ()) if key in _get(policy, mapping_path)]
            if not candidates:
                continue
            mapping_path, key = draw(st.sampled_from(candidates))
            del _get(policy, mapping_path)[key]
            path = mapping_path + [key]
        elif kind == 'duplicate id':
            rules = policy.get('rules')
            pairs = [(first, second) for first in range(len(rules or [])) for second in range(first + 1, len(rules))
                     if isinstance(rules, list) and isinstance(rules[first], dict) and isinstance(rules[second], dict)
                     and isinstance(rules[first].get('id'), str)] if isinstance(rules, list) else []
            if not pairs:
                continue
            first, second = draw(st.sampled_from(pairs))
            rules[second]['id'] = rules[first]['id']
            path = ['rules', second, 'id']
        elif kind == 'unknown waiver rule':
            waivers = policy.get('waivers')
            indexes = [index for index, waiver in enumerate(waivers) if isinstance(waiver, dict)] \
                if isinstance(waivers, list) else []
            if not indexes:
                continue
            index = draw(st.sampled_from(indexes))
            known = set(_rule_ids(policy)) | {DEFAULT_RULE_ID}
            waivers[index]['rule'] = draw(ids.filter(lambda rule_id, known=known: rule_id not in known))
            path = ['waivers', index, 'rule']
        else:  # the whole policy is not a mapping (None has its own test)
            policy = draw(st.one_of(st.sampled_from([[], 'x', 1, 0, True, 1.5, 'policy_version: 1', [policy]]),
                                    _wrong(dict).filter(lambda value: value is not None)))
            return policy, []
    if path is None:  # no mutation applied: corrupt the top level mapping
        key = draw(_unknown_keys.filter(lambda key: key not in ALLOWED_KEYS['top']))
        policy[key] = draw(garbage)
        path = [key]
    return policy, path


@settings(max_examples=CORRUPT_EXAMPLES, **_SETTINGS)
@given(case=corrupted_policies())
@example(case=({'policy_version': 1, 'name': 'x', 'rules': [
    {'id': 'r%d' % index, 'match': {}, 'expect': 'closed', 'severity': 'hihg' if index in (2, 10) else 'high'}
    for index in range(11)]}, ['rules', 10, 'severity']))
@example(case=([], []))
@example(case=({'name': 'x'}, ['policy_version']))
def test_corrupted_policies_are_reported_line_by_line(case):
    policy, path = case
    errors = validate_policy(policy, SOURCE)
    assert errors, 'a corrupted policy passed validation'
    paths = check_error_lines(errors)
    assert any(related(error_path, path) for error_path in paths), \
        'no error about %s: %r' % (format_path(path), errors)


# ---- near-valid policies: whatever validates also compiles -----------------------------------------

_maybe_values = {
    'waiver_warning_days': st.sampled_from([0, 10 ** 30, 3.0, 0.0]),
    'policy_version': st.sampled_from([1, 1.0]),
    'match.ports': st.one_of(st.sampled_from([22.0, 0.0, 65535.0, ' 22 ', '22\n', '\t855-859\n']),
                             st.lists(st.sampled_from([22, 22.0, 'system', '1-1']), min_size=1, max_size=3)),
    'waiver.ports': st.sampled_from([22.0, [443.0, 'dynamic']]),
    'rule.id': st.sampled_from(['a\n', 'default\n']),
    'waiver.rule': st.sampled_from(['a\n', 'default\n']),
    'match.protocols': st.sampled_from([['tcp', 'tcp'], ['udp', 'tcp', 'udp']]),
    'rule.hosts': st.sampled_from([['!!h1'], ['group:*'], ['!group:web', '*'], ['[']]),
}


@st.composite
def near_valid_policies(draw):
    policy = copy.deepcopy(draw(valid_policies()))
    for _round in range(draw(st.integers(1, 3))):
        choices = [(name, path) for name, path in _slots(policy) if name in _maybe_values]
        name, path = draw(st.sampled_from(choices))
        _set(policy, path, draw(_maybe_values[name]))
    return policy


@settings(max_examples=NEAR_VALID_EXAMPLES, **_SETTINGS)
@given(policy=near_valid_policies(), gathered=gather_results())
def test_what_validates_compiles_and_evaluates(policy, gathered):
    errors = validate_policy(policy, SOURCE)
    check_error_lines(errors)
    if errors:
        return
    compiled = compile_policy(policy)  # PolicyError here: validation let through what cannot be compiled
    result = evaluate_host(gathered, compiled, 'h1', ['web'], datetime.date(2027, 1, 1))
    check_result(policy, gathered, result, 'h1')


# ---- text ----------------------------------------------------------------------------------------

_yaml_tokens = st.sampled_from([
    'policy_version: 1\n', 'name: x\n', 'rules:\n', '  - id: a\n', '    match: {ports: 22}\n', '    expect: closed\n',
    'waivers: [{rule: a, reason: r, expires: 2027-01-01}]\n', '- ', ': ', '? ', '[', ']', '{', '}', ',', '"', "'", '#',
    '&a ', '*a', '&b [*b]', '<<: *a\n', '!!binary aGk=', '!!set {a}', '!!timestamp 2027-01-01', '!!python/name:os.system',
    '!!float 22', '.nan', '.inf', '~', 'null', 'yes', 'no', 'on', '0x16', '0o17', '1e3', '2027-02-30', '\t', '\n', '  ',
    '---\n', '...\n', '%YAML 1.1\n', '\ufeff', '\x00', '\x01', '\x7f', '\x85', '\u2028', '\ud800', '|\n  x\n', '>-\n',
    '\\', '\\u', '"\\x', 'policy_version: 1\nname: x\nname: y\n', '{[a]: 1}', '{{a: 1}: 2}', '@', '`', '%',
    '!!int ', '!!float ', '!!bool ', '!!null ', '!!str ', '!!timestamp ', '!!binary ', '!!map ', '!!seq ', '!!omap ',
    '!!pairs ', '!!set ', '!<tag:yaml.org,2002:int> ', '!local ', '0x', '0b', '0o', '1_000', '1:30', '-.inf',
    '9' * 4400, '0x' + 'f' * 4000,
])


@st.composite
def yamlish_texts(draw):
    return ''.join(draw(st.lists(st.one_of(_yaml_tokens, st.text(max_size=4)), max_size=25)))


@st.composite
def damaged_policy_texts(draw):
    """A valid policy as YAML with a few characters deleted, replaced or inserted."""
    text = yaml.safe_dump(draw(valid_policies()), allow_unicode=True, default_flow_style=draw(st.booleans()))
    for _round in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 8)))
        text = text[:start] + draw(st.one_of(st.just(''), _yaml_tokens, st.text(max_size=3))) + text[end:]
    return text


def _parse_and_validate(text):
    """parse_policy_text then validate_policy: the error lines, whichever step found them.

    Any exception but PolicyInvalid propagates.
    """
    try:
        policy = parse_policy_text(text, SOURCE)
    except PolicyInvalid as exc:
        return exc.errors, True
    return validate_policy(policy, SOURCE), False


texts = st.one_of(st.text(), yamlish_texts(), damaged_policy_texts())


@settings(max_examples=TEXT_EXAMPLES, **_SETTINGS)
@given(text=texts)
def test_text_only_ever_raises_policy_invalid(text):
    # The line format has its own property below, so that a format slip does not hide a traceback here.
    _parse_and_validate(text)


@settings(max_examples=TEXT_FORMAT_EXAMPLES, **_SETTINGS)
@given(text=texts)
def test_text_errors_are_single_lines(text):
    errors, parsing = _parse_and_validate(text)
    if parsing:
        check_parse_error_lines(errors)
    else:
        check_error_lines(errors)


@pytest.fixture(scope='module')
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp('policy-bytes')


@settings(max_examples=BYTES_EXAMPLES, **_SETTINGS)
@given(raw=st.one_of(st.binary(max_size=64), yamlish_texts().map(lambda text: text.encode('utf-8', 'surrogatepass'))))
def test_policy_files_only_ever_raise_policy_invalid(scratch, raw):
    path = scratch / 'policy.yml'
    path.write_bytes(raw)
    try:
        policy = read_policy_file(str(path), SOURCE)
    except PolicyInvalid as exc:
        check_parse_error_lines(exc.errors)
        return
    check_error_lines(validate_policy(policy, SOURCE))


# ---- fixed examples ------------------------------------------------------------------------------

def _policy(**extra):
    policy = {'policy_version': 1, 'name': 'x'}
    policy.update(extra)
    return policy


def _rule(rule_id, **extra):
    rule = {'id': rule_id, 'match': {'ports': 22}, 'expect': 'closed'}
    rule.update(extra)
    return rule


def test_bad_severity_message():
    policy = _policy(rules=[_rule('a'), _rule('b'), _rule('c', severity='hihg')])
    errors = validate_policy(policy, SOURCE)
    assert errors == ["policy.yml: rules[2].severity: 'hihg' is not one of info, low, medium, high, critical"
                      " (did you mean 'high'?)"]
    with pytest.raises(PolicyInvalid) as raised:
        load_policy(policy, SOURCE)
    assert raised.value.errors == errors


def test_errors_sorted_numerically_by_path():
    rules = [_rule('r%d' % index) for index in range(12)]
    rules[10]['severity'] = 'hihg'
    rules[2]['match'] = {'ports': [22, '859-855']}
    policy = _policy(rules=rules, waivers=[{'rule': 'nope', 'reason': 'r', 'expires': '2027-13-01'}], bogus=1)
    errors = validate_policy(policy, SOURCE)
    assert [line.split(': ', 2)[1] for line in errors] == [
        '(top level)', 'rules[2].match.ports[1]', 'rules[10].severity', 'waivers[0].expires', 'waivers[0].rule']
    assert errors[0] == ("policy.yml: (top level): unknown key 'bogus'; expected default, default_remediate, default_severity, description, "
                         "name, overlays, policy_version, rules, waiver_warning_days, waivers")
    assert errors[1] == "policy.yml: rules[2].match.ports[1]: range '859-855' starts after it ends"
    assert errors[3] == "policy.yml: waivers[0].expires: '2027-13-01' is not a date; expected YYYY-MM-DD"
    assert errors[4].startswith("policy.yml: waivers[0].rule: 'nope' names no rule; expected one of r0, r1, ")
    check_error_lines(errors)


@pytest.mark.parametrize('value, message', [
    ('2027-02-30', "'2027-02-30' is not a date; expected YYYY-MM-DD"),
    ('2027-13-01', "'2027-13-01' is not a date; expected YYYY-MM-DD"),
    ('tomorrow', "'tomorrow' is not a date; expected YYYY-MM-DD"),
    ('2027-1-1', "'2027-1-1' is not a date; expected YYYY-MM-DD"),
])
def test_bad_expiry_messages(value, message):
    policy = _policy(rules=[_rule('a')], waivers=[{'rule': 'a', 'reason': 'r', 'expires': value}])
    errors = validate_policy(policy, SOURCE)
    assert 'policy.yml: waivers[0].expires: ' + message in errors
    assert all(line.startswith('policy.yml: waivers[0].expires: ') for line in errors)


@pytest.mark.parametrize('rule_ids, message', [
    (['a', 'a'], "policy.yml: rules[1].id: duplicate rule id 'a' (first at rules[0])"),
    (['default'], "policy.yml: rules[0].id: 'default' is reserved for the findings of default: deny"),
])
def test_rule_id_messages(rule_ids, message):
    assert validate_policy(_policy(rules=[_rule(rule_id) for rule_id in rule_ids]), SOURCE) == [message]


@pytest.mark.parametrize('policy', [[], 'x', 7, [{'policy_version': 1}]])
def test_non_mapping_top_level(policy):
    errors = validate_policy(policy, SOURCE)
    assert len(errors) == 1 and errors[0].startswith('policy.yml: (top level): expected a mapping, got ')


def test_bundled_baseline_is_valid():
    policy = load_policy(os.path.join(REPO, 'docs', 'policies', 'baseline.yml'), SOURCE)
    assert validate_policy(policy, SOURCE) == []
    result = evaluate_host({'sockets': [{'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': 856,
                                         'v6only': None, 'ephemeral': False, 'processes': []}],
                            'coverage': {'complete': True, 'errors': []}},
                           compile_policy(policy), 'h1', [], datetime.date(2027, 1, 1))
    assert result['status'] == 'drift'
    assert [finding['rule'] for finding in result['findings']] == ['iana-unassigned-closed']


# ---- what the properties found: one minimal case each (they fail until the product is fixed) -------

def test_empty_policy_line_names_the_top_level():
    """An empty file (None) is reported like every other problem: ``SOURCE: (top level): message``."""
    for text in ('', '# nothing but a comment\n', '---\n', 'null\n', '~'):
        check_error_lines(validate_policy(parse_policy_text(text, SOURCE), SOURCE))


def test_unacceptable_character_error_is_one_line_with_a_place():
    """PyYAML's ReaderError has a position but no mark, and its text spans two lines."""
    with pytest.raises(PolicyInvalid) as raised:
        parse_policy_text('policy_version: 1\nname: x\x01\n', SOURCE)
    check_parse_error_lines(raised.value.errors)


@pytest.mark.parametrize('text', [
    pytest.param('policy_version: 1\nname: &a [*a]\n', id='list-containing-itself'),
    pytest.param('policy_version: 1\nname: x\nrules: &r [*r]\n', id='rules-containing-themselves'),
    pytest.param('policy_version: 1\nname: {!!binary aGk=: 1}\n', id='bytes-key'),
    pytest.param('policy_version: 1\nname: {!!timestamp 2027-01-01: 1}\n', id='date-key'),
    pytest.param('{a: ' * 300 + '1' + '}' * 300, id='deep-mappings'),
    pytest.param('[' * 1000 + ']' * 1000, id='deep-lists'),
])
def test_odd_yaml_raises_only_policy_invalid(text):
    errors, parsing = _parse_and_validate(text)
    if parsing:
        check_parse_error_lines(errors)
    else:
        check_error_lines(errors)


@pytest.mark.parametrize('text', [
    'name: !!int x', 'name: !!int', 'name: !!int 0x', 'name: !!float ;', 'name: !!float', 'name: !!bool x',
    'name: !!timestamp x', 'name: !!timestamp 2027-13-01', 'name: !!map [1]',
])
def test_explicit_tags_on_unconvertible_values_raise_only_policy_invalid(text):
    """PyYAML's constructors raise ValueError, IndexError, KeyError, AttributeError; _construct_mapping TypeError."""
    with pytest.raises(PolicyInvalid) as raised:
        parse_policy_text(text, SOURCE)
    check_parse_error_lines(raised.value.errors)


@pytest.mark.parametrize('text', [
    pytest.param('policy_version: 1\nname: x\nwaiver_warning_days: ' + '9' * 4400 + '\n', id='decimal'),
    pytest.param('policy_version: 1\nname: x\nrules: [{id: a, match: {ports: 0x' + 'f' * 4000 + '}, expect: closed}]\n',
                 id='hex-port'),
    pytest.param('policy_version: 1\nname: 0x' + 'f' * 4000 + '\n', id='hex-name'),
])
def test_numbers_beyond_the_int_str_limit_raise_only_policy_invalid(text):
    """Python refuses str() of ints over 4300 digits: PyYAML's int() of a long decimal, jsonschema's error messages."""
    errors, parsing = _parse_and_validate(text)
    assert errors
    if parsing:
        check_parse_error_lines(errors)
    else:
        check_error_lines(errors)


def test_integral_float_port_that_validates_also_compiles():
    """JSON Schema's integer admits 22.0 (YAML ``!!float 22``, JSON ``22.0``); parse_port_item refuses it."""
    text = 'policy_version: 1\nname: x\nrules: [{id: a, match: {ports: 22.0}, expect: closed}]\n'
    policy = parse_policy_text(text, SOURCE)
    if validate_policy(policy, SOURCE) == []:
        compile_policy(policy)


@pytest.mark.parametrize('policy', [
    _policy(rules=[_rule('a\n')]),
    _policy(rules=[_rule('a')], waivers=[{'rule': 'a\n', 'reason': 'r', 'expires': '2027-01-01'}]),
])
def test_id_with_trailing_newline_is_refused(policy):
    """JSON Schema patterns are ECMA-262, where '$' matches only at the very end: the published schema refuses 'a\\n'.

    Python's re.search lets '$' match before a final newline, so validate_policy accepts it.
    """
    errors = validate_policy(policy, SOURCE)
    assert errors
    check_error_lines(errors)


def test_json_escapes_of_astral_characters_read_back():
    """json.dumps writes U+1F600 as the surrogate pair \\ud83d\\ude00; PyYAML reads two lone surrogates."""
    policy = _policy(description='\U0001f600')
    assert parse_policy_text(json.dumps(policy), SOURCE) == policy
