"""Property: a damaged gather result is never judged more compliant than the result it was damaged from.

A valid gather result (the shape gather_listening_sockets returns) is damaged in one place: a value
replaced by one of a type that place never holds (a string for a boolean, a float or a bool for a port,
a mapping for a list...), a required key deleted, a socket repeated, the socket count changed. The damaged
result either evaluates exactly as the valid one (the damage was somewhere the verdict does not read) or
is ``unknown`` and fails the gate: never compliant where the valid one was not, never a finding lost.
"""

import copy
import datetime
import json
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_check import format_path

TODAY = datetime.date(2027, 1, 20)


@pytest.fixture(autouse=True)
def _no_known_endpoints():
    """Each test starts with no endpoint known valid, so its first socket of each takes the full check."""
    ev._ENDPOINTS.clear()


_SCALE = float(os.environ.get('PORTWARDEN_PROPERTY_SCALE', '1'))
EXAMPLES = max(20, int(1500 * _SCALE))

POLICIES = [ev.compile_policy(policy) for policy in (
    {'policy_version': 1, 'name': 'baseline', 'rules': [
        {'id': 'iana-unassigned-closed', 'match': {'ports': 'iana:unassigned'}, 'expect': 'closed', 'severity': 'high'},
        {'id': 'ssh-only-sshd', 'match': {'ports': [22], 'protocols': ['tcp']}, 'expect': {'processes': ['sshd']}},
        {'id': 'db-loopback', 'match': {'ports': [5432]}, 'expect': {'bind': 'loopback'}},
        {'id': 'no-ssh-in-containers', 'namespaces': ['container'], 'match': {'ports': [2222]}, 'expect': 'closed'},
    ], 'waivers': [{'rule': 'iana-unassigned-closed', 'ports': [857], 'reason': 'lab', 'expires': '2030-01-01'}]},
    {'policy_version': 1, 'name': 'deny', 'default': 'deny', 'rules': [
        {'id': 'web', 'match': {'ports': [80, 443], 'protocols': ['tcp']}, 'expect': {'users': ['www-data']}},
        {'id': 'dns-v4', 'match': {'ports': [53], 'families': ['ipv4']}, 'expect': {'units': ['*.service']}},
    ]},
)]

_PROCESS_LISTS = [
    [],
    [{'pid': 812, 'name': 'sshd', 'user': 'root', 'uid': 0, 'exe': '/usr/sbin/sshd', 'unit': 'ssh.service',
      'start_time': 1700000000}],
    [{'pid': 4242, 'name': 'nc', 'user': None, 'uid': 1001, 'exe': None, 'unit': None, 'start_time': None}],
    [{'pid': 90, 'name': 'nginx', 'user': 'www-data', 'uid': 33, 'exe': '/usr/sbin/nginx', 'unit': 'nginx.service',
      'start_time': 1700000001},
     {'pid': 91, 'name': 'nginx', 'user': 'www-data', 'uid': 33, 'exe': '/usr/sbin/nginx', 'unit': 'nginx.service',
      'start_time': 1700000001}],
]
_NAMESPACES = [
    None,
    {'inode': 4026531840, 'host': True, 'pid': 1, 'container': None},
    {'inode': 4026532001, 'host': False, 'pid': 700,
     'container': {'kind': 'docker', 'id': 'ab' * 32, 'pod_uid': None, 'name': 'web'}},
    {'inode': 4026532002, 'host': False, 'pid': 701, 'container': None},
]
_ADDRESSES = [('ipv4', '0.0.0.0', None), ('ipv4', '127.0.0.1', None), ('ipv4', '10.1.2.3', None),
              ('ipv6', '::', False), ('ipv6', '::', True), ('ipv6', '::1', None), ('ipv6', '::ffff:127.0.0.1', None)]
_PORTS = [22, 53, 80, 443, 856, 857, 2222, 5432, 8080, 50000, 60000]


def valid_gather(rng):
    """A gather result as gather_listening_sockets returns one (process lists and namespaces shared)."""
    processes = [copy.deepcopy(found) for found in _PROCESS_LISTS]
    namespaces = copy.deepcopy(_NAMESPACES)
    sockets = []
    seen = set()
    with_namespaces = rng.random() < 0.5
    for _index in range(rng.randint(0, 6)):
        family, address, v6only = rng.choice(_ADDRESSES)
        protocol = rng.choice(('tcp', 'udp'))
        port = rng.choice(_PORTS)
        inode = rng.choice([None, rng.randint(1, 2 ** 32)])
        entry = {'protocol': protocol, 'family': family, 'address': address, 'port': port, 'v6only': v6only,
                 'ephemeral': protocol == 'udp' and port >= 50000, 'inode': inode, 'processes': rng.choice(processes)}
        namespace = rng.choice(namespaces[1:]) if with_namespaces else None
        if namespace is not None:
            entry['namespace'] = namespace
        key = (protocol, family, address, port, inode, namespace and namespace['inode'])
        if key in seen:
            continue
        seen.add(key)
        sockets.append(entry)
    complete = rng.random() < 0.7
    coverage = {'backend': 'netlink', 'sources': {'tcp/ipv4': 'netlink', 'udp/ipv4': 'netlink'}, 'privileged': True,
                'complete': complete, 'sockets': len(sockets), 'unowned_sockets': [], 'processes_scanned': 12,
                'processes_unreadable': 0, 'ephemeral_port_range': [32768, 60999],
                'errors': [] if complete else ['udp/ipv6: cannot read /proc/net/udp6'], 'notes': ['a note']}
    if with_namespaces:
        coverage['namespaces'] = {'mode': 'all', 'scanned': [], 'unreadable': [], 'vanished': []}
    return {'sockets': sockets, 'coverage': coverage, 'changed': False}


_JUNK = [None, 'false', 'no', '', 'yes', True, False, 0, 1, -1, 70000, 1.5, float('nan'), float('inf'), [], {},
         [[['deep']]], {'x': 1}, 2 ** 70]
# Places that may hold None or another type as well as the type of the valid value there: junk of those
# types may be valid, so it is not junk there.
_NULLABLE = {'v6only': (bool,), 'inode': (int,), 'name': (str,), 'user': (str,), 'exe': (str,), 'unit': (str,),
             'uid': (int,), 'start_time': (int,), 'namespace': (dict,), 'container': (dict,), 'pid': (int,),
             'id': (str,), 'pod_uid': (str,), 'ephemeral_port_range': (list,)}
# Strings of a closed set: any other string is junk.
_CLOSED_STRINGS = ('protocol', 'family', 'address', 'kind')
_REQUIRED = {(): ('sockets', 'coverage'), ('coverage',): ('complete', 'errors'),
             ('sockets', '*'): ('protocol', 'family', 'address', 'port', 'v6only', 'ephemeral', 'processes'),
             ('sockets', '*', 'processes', '*'): ('pid',), ('sockets', '*', 'namespace'): ('inode', 'host')}
# Parts of the result the verdict does not read: junk there may leave the verdict as it was.
_UNREAD = ('changed', 'backend', 'sources', 'privileged', 'unowned_sockets', 'processes_scanned', 'processes_unreadable',
           'ephemeral_port_range', 'notes',
           'mode', 'scanned', 'unreadable', 'vanished')  # coverage.namespaces: only that it is there is read


def _places(value, path=()):
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _places(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _places(item, path + (index,))


def _shape(path):
    return tuple('*' if isinstance(part, int) else part for part in path)


def _is_junk(path, original, junk):
    field = path[-1] if path and isinstance(path[-1], str) else None
    if field in _CLOSED_STRINGS and isinstance(junk, str):
        return True
    allowed = {type(original)}
    if field in _NULLABLE:
        allowed.update(_NULLABLE[field])
        allowed.add(type(None))
    return type(junk) not in allowed


def damages(gathered):
    """Every single damage of ``gathered``: ``(description, function that applies it to a copy)``."""
    found = []
    for path, original in _places(gathered):
        if not path:
            continue
        for junk in _JUNK:
            if _is_junk(path, original, junk):
                found.append(('%s = %r' % (list(path), junk), path, ('set', junk)))
        parent = _shape(path[:-1])
        if isinstance(path[-1], str) and path[-1] in _REQUIRED.get(parent, ()):
            found.append(('del %s' % list(path), path, ('delete', None)))
    for index in range(len(gathered['sockets'])):
        found.append(('sockets[%d] repeated' % index, ('sockets', index), ('repeat', None)))
    found.append(('coverage.sockets + 1', ('coverage', 'sockets'), ('set', len(gathered['sockets']) + 1)))
    return found


def apply(gathered, path, action):
    damaged = copy.deepcopy(gathered)
    kind, value = action
    if kind == 'repeat':
        damaged['sockets'].append(copy.deepcopy(damaged['sockets'][path[1]]))
        damaged['coverage']['sockets'] = len(damaged['sockets'])
        return damaged
    target = damaged
    for part in path[:-1]:
        target = target[part]
    if kind == 'delete':
        del target[path[-1]]
    else:
        target[path[-1]] = copy.deepcopy(value)
    return damaged


def verdict(result):
    return (result['status'], result['findings'], result['reasons'], result['warnings'], result['summary'])


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1), policy_index=st.integers(0, len(POLICIES) - 1), pick=st.randoms())
def test_a_damaged_gather_result_is_judged_as_the_valid_one_or_unknown(seed, policy_index, pick):
    compiled = POLICIES[policy_index]
    gathered = valid_gather(random.Random(seed))
    valid = ev.evaluate_host(copy.deepcopy(gathered), compiled, 'web-1', [], TODAY)
    assert valid['status'] in ev.STATUSES
    description, path, action = pick.choice(damages(gathered))
    result = ev.evaluate_host(apply(gathered, path, action), compiled, 'web-1', [], TODAY)
    if verdict(result) == verdict(valid):
        # Only damage where the verdict does not read may leave it as it was.
        assert any(part in _UNREAD for part in path if isinstance(part, str)), description
        return
    assert result['status'] == 'unknown', (description, result['status'], result['reasons'])
    assert ev.gate(result, fail_on='never', fail_on_unknown=True), description
    assert result['findings'] == [], description
    assert len(result['reasons']) == 1, (description, result['reasons'])
    assert result['reasons'][0].startswith(('malformed gather result: ', 'no gather result')), (description, result['reasons'])


def test_every_damage_of_a_verdict_place_is_unknown():
    """Exhaustively, for a few results: damage anywhere the verdict reads never leaves it as it was."""
    for seed in range(6):
        gathered = valid_gather(random.Random(seed))
        for compiled in POLICIES:
            valid = ev.evaluate_host(copy.deepcopy(gathered), compiled, 'web-1', [], TODAY)
            for description, path, action in damages(gathered):
                if any(part in _UNREAD for part in path if isinstance(part, str)):
                    continue
                result = ev.evaluate_host(apply(gathered, path, action), compiled, 'web-1', [], TODAY)
                assert result['status'] == 'unknown', (seed, description, verdict(valid)[0], result['status'])
                assert result['reasons'][0].startswith(('malformed gather result: ', 'no gather result')), \
                    (description, result['reasons'])


def _reason_path(reason):
    return reason[len('malformed gather result: '):].partition(': expected ')[0]


@pytest.mark.parametrize('seed', range(8))
def test_every_damage_after_a_json_round_trip_is_unknown_where_it_was_done(seed):
    """As the controller gets it (JSON from the module: every socket its own process list and namespace), each damage
    makes the result unknown, and the reason names the place damaged (or the value holding it)."""
    rng = random.Random(seed)
    gathered = valid_gather(rng)
    while len(gathered['sockets']) < 3 or 'namespaces' not in gathered['coverage']:
        gathered = valid_gather(rng)
    gathered = json.loads(json.dumps(gathered))
    valid = ev.evaluate_host(copy.deepcopy(gathered), POLICIES[0], 'web-1', [], TODAY)
    assert valid['coverage'] is not None, valid['reasons']  # the round trip itself is no damage
    for description, path, action in damages(gathered):
        if any(part in _UNREAD for part in path if isinstance(part, str)) or path == ('coverage',):
            continue
        result = ev.evaluate_host(apply(gathered, path, action), POLICIES[0], 'web-1', [], TODAY)
        assert result['status'] == 'unknown' and result['findings'] == [], (description, result['status'])
        [reason] = result['reasons']
        assert reason.startswith('malformed gather result: '), (description, reason)
        if action[0] == 'repeat':
            expected = 'sockets[%d]' % len(gathered['sockets'])
        elif description == 'coverage.sockets + 1':
            expected = 'coverage.sockets'
        else:
            expected = format_path(list(path))
        found = _reason_path(reason)
        assert expected == found or expected.startswith(found + '.') or expected.startswith(found + '['), (description, reason)


@pytest.mark.parametrize('value, said', [
    (True, 'True'), (None, 'None'), (-3, '-3'), (2 ** 70, 'an integer of 71 bits'), (-(10 ** 18), 'an integer of 60 bits'),
    (10 ** 18, 'an integer of 60 bits'), (10 ** 18 - 1, repr(10 ** 18 - 1)), (-(10 ** 18) + 1, repr(-(10 ** 18) + 1)),
    (5 * 10 ** 18, 'an integer of 63 bits'), (70000, '70000'), (-856, '-856'),
    (1.5, '1.5'), (float('nan'), 'nan'), ('x' * 41, repr('x' * 40) + '...'), ('x' * 40, repr('x' * 40)),
    ({'port': 1}, 'a mapping'), ([1], 'a list'), ((1,), 'a tuple'),
])
def test_a_reason_describes_the_value_found_briefly(value, said):
    """Rule: the reason shows the value found, never more than 40 characters of it nor the repr of a structure."""
    gathered = {'sockets': [{'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': value, 'v6only': None,
                             'ephemeral': False, 'processes': []}], 'coverage': {'complete': True, 'errors': []}}
    result = ev.evaluate_host(gathered, POLICIES[0], 'web-1', [], TODAY)
    assert result['reasons'] == ['malformed gather result: sockets[0].port: expected a port number 0-65535, got %s' % said]


NAMESPACE = {'inode': 4026532001, 'host': False, 'pid': 700,
             'container': {'kind': 'docker', 'id': 'ab' * 32, 'pod_uid': None, 'name': 'web'}}


@pytest.mark.parametrize('namespace, reason', [
    (dict(NAMESPACE, junk=1), 'sockets[1].namespace: expected only the keys container, host, inode, pid, got also junk'),
    (dict(NAMESPACE, junk=1, image='x'),
     'sockets[1].namespace: expected only the keys container, host, inode, pid, got also image, junk'),
    (dict(NAMESPACE, container=dict(NAMESPACE['container'], image='x', labels={})),
     'sockets[1].namespace.container: expected only the keys id, kind, name, pod_uid, got also image, labels'),
    (dict(NAMESPACE, **{'k' * 100: 1}), 'sockets[1].namespace: expected only the keys container, host, inode, pid, got also '
                                        + 'k' * 80),
    (dict(NAMESPACE, container=dict(NAMESPACE['container'], **{'c' * 100: 1})),
     'sockets[1].namespace.container: expected only the keys id, kind, name, pod_uid, got also ' + 'c' * 80),
    (dict(NAMESPACE, inode=-1), 'sockets[1].namespace.inode: expected a namespace inode, got -1'),
    (dict(NAMESPACE, inode=True), 'sockets[1].namespace.inode: expected a namespace inode, got True'),
    (dict(NAMESPACE, host=0), 'sockets[1].namespace.host: expected true or false, got 0'),
    (dict(NAMESPACE, pid='700'), "sockets[1].namespace.pid: expected a process id or null, got '700'"),
    (dict(NAMESPACE, pid=-7), 'sockets[1].namespace.pid: expected a process id or null, got -7'),
    (dict(NAMESPACE, container=['docker']), 'sockets[1].namespace.container: expected a container mapping or null, got a list'),
    (dict(NAMESPACE, container=dict(NAMESPACE['container'], image='x')),
     'sockets[1].namespace.container: expected only the keys id, kind, name, pod_uid, got also image'),
    (dict(NAMESPACE, container=dict(NAMESPACE['container'], kind='lxc')),
     "sockets[1].namespace.container.kind: expected one of docker, podman, containerd, crio, kubernetes, got 'lxc'"),
    (dict(NAMESPACE, container=dict(NAMESPACE['container'], kind=None)),
     'sockets[1].namespace.container.kind: expected one of docker, podman, containerd, crio, kubernetes, got None'),
    (dict(NAMESPACE, container=dict(NAMESPACE['container'], id=7)), 'sockets[1].namespace.container.id: expected a string or null, got 7'),
    (dict(NAMESPACE, container=dict(NAMESPACE['container'], pod_uid=[])),
     'sockets[1].namespace.container.pod_uid: expected a string or null, got a list'),
    (dict(NAMESPACE, container=dict(NAMESPACE['container'], name=False)),
     'sockets[1].namespace.container.name: expected a string or null, got False'),
    (dict(NAMESPACE, container=dict(NAMESPACE['container'], name='db')),
     'sockets[1].namespace: expected the namespace 4026532001 as the other sockets there describe it, got another description'),
    (dict(NAMESPACE, pid=701), 'sockets[1].namespace: expected the namespace 4026532001 as the other sockets there describe it, '
                               'got another description'),
    (dict(NAMESPACE, container=None), 'sockets[1].namespace: expected the namespace 4026532001 as the other sockets there '
                                      'describe it, got another description'),
])
@pytest.mark.parametrize('first', ['same-namespace', 'host'])
def test_a_namespace_of_a_later_socket_is_checked_too(namespace, reason, first):
    """Rule: every socket's namespace is checked, not only the first socket's (the fast check of the common case lets
    nothing through that the full one would refuse)."""
    processes = [{'pid': 9, 'name': 'nginx', 'user': 'www-data', 'uid': 33, 'exe': None, 'unit': None, 'start_time': 1}]
    base = {'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': 8080, 'v6only': None, 'ephemeral': False,
            'inode': 1, 'processes': processes}
    earlier = dict(base, namespace=copy.deepcopy(NAMESPACE)) if first == 'same-namespace' else dict(base)
    later = dict(base, inode=2, processes=copy.deepcopy(processes), namespace=namespace)
    if first == 'host' and reason.endswith('got another description'):
        return  # the first socket says nothing of that namespace: the later one is its first description
    gathered = {'sockets': [earlier, later], 'coverage': {'complete': True, 'errors': [], 'namespaces': {'mode': 'all'}}}
    result = ev.evaluate_host(gathered, POLICIES[0], 'web-1', [], TODAY)
    assert result['reasons'] == ['malformed gather result: ' + reason]


@pytest.mark.parametrize('field, value, said', [
    ('pid', None, 'pid: expected a process id, got None'), ('pid', -1, 'pid: expected a process id, got -1'),
    ('pid', True, 'pid: expected a process id, got True'),
    ('uid', -1, 'uid: expected a user id or null, got -1'), ('uid', '0', "uid: expected a user id or null, got '0'"),
    ('start_time', -5, 'start_time: expected clock ticks (an integer) or null, got -5'),
    ('start_time', 1.5, 'start_time: expected clock ticks (an integer) or null, got 1.5'),
    ('name', 7, 'name: expected a string or null, got 7'), ('user', [], 'user: expected a string or null, got a list'),
    ('exe', {}, 'exe: expected a string or null, got a mapping'), ('unit', False, 'unit: expected a string or null, got False'),
])
def test_the_processes_of_a_later_socket_are_checked_too(field, value, said):
    """Rule: every socket's processes are checked, each field, in whichever socket they come."""
    good = {'pid': 9, 'name': 'nginx', 'user': 'www-data', 'uid': 33, 'exe': '/usr/sbin/nginx', 'unit': 'nginx.service',
            'start_time': 1}
    base = {'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': 8080, 'v6only': None, 'ephemeral': False,
            'inode': 1, 'processes': [dict(good)]}
    later = dict(base, inode=2, processes=[dict(good), dict(good, **{field: value})])
    gathered = {'sockets': [base, later], 'coverage': {'complete': True, 'errors': []}}
    result = ev.evaluate_host(gathered, POLICIES[0], 'web-1', [], TODAY)
    assert result['reasons'] == ['malformed gather result: sockets[1].processes[1].' + said]
    later['processes'] = 'nginx'
    result = ev.evaluate_host(gathered, POLICIES[0], 'web-1', [], TODAY)
    assert result['reasons'] == ["malformed gather result: sockets[1].processes: expected a list of processes, got 'nginx'"]


def _fast_path_gather():
    """Sockets on one endpoint whose processes and namespaces take every well-formed shape (each nullable field null
    and set, zero where zero is allowed), as JSON gives them: every socket its own copies."""
    processes = [
        [{'pid': 0, 'name': None, 'user': None, 'uid': None, 'exe': None, 'unit': None, 'start_time': None}],
        [{'pid': 7, 'name': 'nginx', 'user': 'www-data', 'uid': 0, 'exe': '/usr/sbin/nginx', 'unit': 'nginx.service',
          'start_time': 0}],
        [],
        [{'pid': 8}],  # the optional fields may be missing
    ]
    namespaces = [
        None,
        {'inode': 4026531840, 'host': True, 'pid': 1, 'container': None},
        {'inode': 0, 'host': False, 'pid': None, 'container': None},
        {'inode': 4026532001, 'host': False, 'pid': 0,
         'container': {'kind': 'kubernetes', 'id': 'ab' * 32, 'pod_uid': 'f00d', 'name': 'kube-system/dns'}},
        {'inode': 4026532002, 'host': False, 'pid': 9, 'container': {'kind': 'docker', 'id': None, 'pod_uid': None,
                                                                     'name': None}},
        {'inode': 4026532003, 'host': False},  # pid and container may be missing
    ]
    sockets = []
    for index in range(2 * len(processes) * len(namespaces)):
        entry = {'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': index, 'v6only': [None, False][index % 2],
                 'ephemeral': index % 3 == 0, 'inode': [None, 0, 5000 + index][index % 3],
                 'processes': processes[index % len(processes)]}
        namespace = namespaces[(index // 2) % len(namespaces)]
        if namespace is not None:
            entry['namespace'] = namespace
        sockets.append(entry)
    return json.loads(json.dumps({'sockets': sockets, 'coverage': {'complete': True, 'errors': [], 'sockets': len(sockets),
                                                                   'notes': [], 'namespaces': {'mode': 'all'}}}))


def test_the_common_socket_takes_the_fast_check(monkeypatch):
    """Rule: validation stays fast (the fleet evaluates thousands of sockets per host): after the first socket of an
    endpoint, a well-formed socket passes the one-expression check, whatever the shape of its processes and namespace,
    and only what that check does not pass is looked at field by field."""
    gathered = _fast_path_gather()
    detailed = []
    check = ev._check_socket

    def counted(entry, index, checked, seen):
        detailed.append(index)
        return check(entry, index, checked, seen)

    monkeypatch.setattr(ev, '_check_socket', counted)
    ev._ENDPOINTS.clear()
    assert ev.gather_problem(gathered) is None
    assert detailed == [0]
    detailed[:] = []
    assert ev.gather_problem(gathered) is None
    assert detailed == []  # the endpoint is known from the last result
    gathered['sockets'].append(dict(gathered['sockets'][1], inode=99999, address='10.0.0.1'))
    gathered['coverage']['sockets'] += 1
    assert ev.gather_problem(gathered) is None
    assert detailed == [len(gathered['sockets']) - 1]  # a new endpoint is checked in full once
