"""Property test of policy_baseline: for any generated set of gather results (hosts sharing ports or not, adjacent
ports, IPv4, IPv6, dual-stack, loopback and specific addresses, holders with hostile names, unknown owners, units,
ephemeral UDP, inventory groups) and any strictness options:

* the baseline, re-evaluated against those very gathers with evaluate_policy.evaluate_host, is compliant on every
  host, and its text parses back to it and validates;
* removing any one generated rule makes exactly the (non-ephemeral) sockets it covered drift, as ``default``
  findings, on exactly the hosts it covered, and nothing else changes.

Ports IANA has not assigned are left out here: their listeners stay drift by design (tested in
test_policy_baseline.py).
"""

import datetime
import fnmatch
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.portwarden.compliance.plugins.module_utils import policy_baseline as pb
from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import (
    bind_class,
    compile_policy,
    evaluate_host,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_ports import port_set
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import parse_policy_text, validate_policy

TODAY = datetime.date(2026, 12, 2)
EXAMPLES = int(100 * float(os.environ.get('PORTWARDEN_PROPERTY_SCALE', '1')))
_UNASSIGNED = dict((protocol, port_set('iana:unassigned', protocol)) for protocol in ('tcp', 'udp'))
_PORTS = [port for port in [21, 22, 23, 53, 80, 443, 444, 445, 5432, 5433, 8080, 8081, 8082, 9100, 40000, 40001]
          if port not in _UNASSIGNED['tcp'] and port not in _UNASSIGNED['udp']]
_ADDRESSES = ['0.0.0.0', '127.0.0.1', '10.0.0.1', '10.0.0.2', '::', '::1', '2001:db8::1', '::ffff:127.0.0.1']
_NAMES = ['web', 'sshd', '*', 'a?b', '[x]', 'new\nline', '#c', '{y}', 'db']
_HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8', 'h9', 'h10', 'h11', 'web-*', 'h[1]']

_process = st.fixed_dictionaries({'name': st.sampled_from(_NAMES), 'unit': st.sampled_from([None, 'a.service', '*.service'])})
_socket = st.fixed_dictionaries({
    'protocol': st.sampled_from(['tcp', 'udp']), 'address': st.sampled_from(_ADDRESSES), 'port': st.sampled_from(_PORTS),
    'v6only': st.sampled_from([None, True, False]), 'processes': st.lists(_process, max_size=2)})


def _gather(raw):
    sockets = []
    seen = set()
    for index, item in enumerate(raw):
        family = 'ipv6' if ':' in item['address'] else 'ipv4'
        key = (item['protocol'], item['address'], item['port'])
        if key in seen:
            continue
        seen.add(key)
        processes = [{'pid': 100 + index * 3 + number, 'name': proc['name'], 'user': 'root', 'uid': 0, 'exe': None,
                      'unit': proc['unit']} for number, proc in enumerate(item['processes'])]
        sockets.append({'protocol': item['protocol'], 'family': family, 'address': item['address'], 'port': item['port'],
                        'v6only': item['v6only'] if family == 'ipv6' else None,
                        'ephemeral': item['protocol'] == 'udp' and item['port'] >= 40000, 'inode': 1000 + index,
                        'processes': processes})
    return {'sockets': sockets, 'coverage': {'complete': True, 'errors': [], 'sockets': len(sockets)}}


_fleet = st.dictionaries(st.sampled_from(_HOSTS), st.lists(_socket, max_size=7), min_size=1, max_size=12)
_options = st.fixed_dictionaries({'processes': st.booleans(), 'bind': st.booleans(),
                                  'ephemeral': st.sampled_from(pb.EPHEMERAL_MODES)})


@st.composite
def _fleets(draw):
    raw = draw(_fleet)
    gathers = dict((host, _gather(sockets)) for host, sockets in raw.items())
    hosts = sorted(gathers)
    groups = {}
    for name in ('g1', 'g2'):
        members = draw(st.lists(st.sampled_from(hosts), unique=True, max_size=len(hosts)))
        if members:
            groups[name] = members
    return gathers, groups, draw(_options)


def _groups_of(groups):
    found = {}
    for name, members in groups.items():
        for host in members:
            found.setdefault(host, []).append(name)
    return found


def _covers(rule, host, host_groups, entry):
    """Whether ``rule`` (a generated allow rule) covers the socket: read from the rule, not from the evaluator."""
    if 'hosts' in rule:
        if any(fnmatch.fnmatchcase(host, item[1:]) for item in rule['hosts'] if item.startswith('!')):
            return False
        included = [item for item in rule['hosts'] if not item.startswith('!')]
        if included and not any(item[len('group:'):] in host_groups if item.startswith('group:')
                                else fnmatch.fnmatchcase(host, item) for item in included):
            return False
    match = rule['match']
    if entry['protocol'] not in match['protocols'] or (entry['ephemeral'] and not match.get('include_ephemeral')):
        return False
    low, _dash, high = str(match['ports'][0]).partition('-')
    if not int(low) <= entry['port'] <= int(high or low):
        return False
    return 'bind' not in match or bind_class(entry['address']) in match['bind']


def _drift(result):
    return sorted((item['rule'], item['protocol'], item['address'], item['port'])
                  for item in result['findings'] if item['status'] != 'compliant')


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_fleets())
def test_baseline_is_compliant_and_each_rule_covers_exactly_its_sockets(case):
    gathers, groups, options = case
    items = [pb.host_from_gather(gathered, host, '%s.json' % host) for host, gathered in sorted(gathers.items())]
    policy, proposals = pb.build_baseline(items, pb.Options(today=TODAY, **options), groups=groups)
    assert proposals == []
    text = pb.render_baseline(policy, proposals)
    assert parse_policy_text(text, 'p.yml') == policy
    assert validate_policy(policy, 'p.yml') == []
    host_groups = _groups_of(groups)
    compiled = compile_policy(policy)
    for host, gathered in gathers.items():
        result = evaluate_host(gathered, compiled, host, host_groups.get(host, ()), TODAY)
        assert (result['status'], result['findings'], result['reasons']) == ('compliant', [], []), text
    ids = [rule['id'] for rule in policy['rules']]
    assert len(set(ids)) == len(ids)
    for index, rule in enumerate(policy['rules'][1:], start=1):
        smaller = dict(policy, rules=policy['rules'][:index] + policy['rules'][index + 1:])
        compiled = compile_policy(smaller)
        for host, gathered in gathers.items():
            result = evaluate_host(gathered, compiled, host, host_groups.get(host, ()), TODAY)
            covered = sorted(('default', entry['protocol'], entry['address'], entry['port'])
                             for entry in gathered['sockets']
                             if not entry['ephemeral'] and _covers(rule, host, host_groups.get(host, ()), entry))
            assert _drift(result) == covered, (rule['id'], host, text)
