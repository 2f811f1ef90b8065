"""Attack: a malformed gather result judged as a compliant host.

What reaches the controller is JSON from the managed host: a module result that a hostile or broken host,
a stale cache or a hand-edited gather file can shape at will. Each case here evaluated as ``compliant`` and
passed the gate (fail_on high, fail_on_unknown true) before the controller validated the result's shape;
each must now be ``unknown`` with a reason that names the place in the result and what was expected.
"""

import copy
import datetime

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev

TODAY = datetime.date(2027, 1, 20)


@pytest.fixture(autouse=True)
def _no_known_endpoints():
    """Each test starts with no endpoint known valid, so its first socket of each takes the full check."""
    ev._ENDPOINTS.clear()


# 856 is IANA-unassigned: the listener below is drift whenever the result is read as the gather meant it.
POLICY = ev.compile_policy({'policy_version': 1, 'name': 'baseline', 'rules': [
    {'id': 'iana-unassigned-closed', 'match': {'ports': 'iana:unassigned'}, 'expect': 'closed', 'severity': 'high'},
    {'id': 'ssh-only-sshd', 'match': {'ports': [22], 'protocols': ['tcp']}, 'expect': {'processes': ['sshd']}},
]})
SSHD = [{'pid': 812, 'name': 'sshd', 'user': 'root', 'uid': 0, 'exe': '/usr/sbin/sshd', 'unit': 'ssh.service',
         'start_time': 1700000000}]
BACKDOOR = [{'pid': 4242, 'name': 'nc', 'user': 'mallory', 'uid': 1001, 'exe': '/usr/bin/nc', 'unit': None,
             'start_time': 1700000100}]


def socket(port, processes, protocol='tcp', address='0.0.0.0', family='ipv4', v6only=None, ephemeral=False, inode=None):
    return {'protocol': protocol, 'family': family, 'address': address, 'port': port, 'v6only': v6only,
            'ephemeral': ephemeral, 'inode': inode if inode is not None else 10000 + port, 'processes': processes}


def quiet_host():
    """A complete gather of a compliant host: sshd on 22."""
    sockets = [socket(22, SSHD)]
    return {'sockets': sockets, 'coverage': {
        'backend': 'netlink', 'sources': {'tcp/ipv4': 'netlink'}, 'privileged': True, 'complete': True,
        'sockets': len(sockets), 'unowned_sockets': [], 'processes_scanned': 90, 'processes_unreadable': 0,
        'ephemeral_port_range': [32768, 60999], 'errors': [], 'notes': []}}


def host_with(*extra):
    gathered = quiet_host()
    gathered['sockets'].extend(extra)
    gathered['coverage']['sockets'] = len(gathered['sockets'])
    return gathered


def judge(gathered):
    result = ev.evaluate_host(gathered, POLICY, 'web-1', [], TODAY)
    return result, ev.gate(result, fail_on='high', fail_on_unknown=True)


def test_the_well_formed_results_are_judged():
    """The baseline the attacks start from: the quiet host passes, the backdoor on 856 is drift."""
    result, failures = judge(quiet_host())
    assert (result['status'], result['reasons'], failures) == ('compliant', [], [])
    result, failures = judge(host_with(socket(856, BACKDOOR)))
    assert result['status'] == 'drift' and failures == ['1 finding at or above high']


def _set(path, value):
    def mutate(gathered):
        target = gathered
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
        return gathered
    return mutate


def _delete(path):
    def mutate(gathered):
        target = gathered
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
        return gathered
    return mutate


def _nested(depth):
    value = []
    for _level in range(depth):
        value = [value]
    return value


def _duplicate_first(gathered):
    gathered['sockets'].append(copy.deepcopy(gathered['sockets'][0]))
    gathered['coverage']['sockets'] = len(gathered['sockets'])
    return gathered


def _duplicate(gathered):
    gathered['sockets'].append(copy.deepcopy(gathered['sockets'][-1]))
    gathered['coverage']['sockets'] = len(gathered['sockets'])
    return gathered


# (case id, the result to start from, the damage, the path the reason must name)
CASES = [
    # The whole socket list hidden: the backdoor is not read at all.
    ('no-sockets-key', 'backdoor', _delete(['sockets']), 'sockets'),
    ('sockets-null', 'backdoor', _set(['sockets'], None), 'sockets'),
    ('sockets-mapping', 'backdoor', _set(['sockets'], {}), 'sockets'),
    ('sockets-string', 'backdoor', _set(['sockets'], 'tcp 0.0.0.0:856'), 'sockets'),
    ('sockets-nested-deep', 'backdoor', _set(['sockets'], _nested(5000)), 'sockets[0]'),
    # Booleans as strings: "false" and "no" are true in Python.
    ('complete-string-false', 'partial', _set(['coverage', 'complete'], 'false'), 'coverage.complete'),
    ('complete-int', 'partial', _set(['coverage', 'complete'], 1), 'coverage.complete'),
    ('complete-with-errors', 'partial', _set(['coverage', 'complete'], True), 'coverage.errors'),
    ('errors-not-a-list', 'quiet', _set(['coverage', 'errors'], 'a table could not be read'), 'coverage.errors'),
    ('errors-missing', 'partial', _delete(['coverage', 'errors']), 'coverage.errors'),
    ('complete-with-two-errors', 'quiet', _set(['coverage', 'errors'], ['a', 'b']), 'coverage.errors'),
    ('notes-not-strings', 'quiet', _set(['coverage', 'notes'], [7]), 'coverage.notes[0]'),
    ('coverage-string', 'quiet', _set(['coverage'], 'full'), 'coverage'),
    ('errors-not-strings', 'quiet', _set(['coverage', 'errors'], [{'table': 'udp/ipv6'}]), 'coverage.errors[0]'),
    ('coverage-count-lies', 'backdoor', _set(['coverage', 'sockets'], 7), 'coverage.sockets'),
    ('coverage-count-bool', 'quiet', _set(['coverage', 'sockets'], True), 'coverage.sockets'),
    ('ephemeral-string-no', 'backdoor', _set(['sockets', 1, 'ephemeral'], 'no'), 'sockets[1].ephemeral'),
    ('ephemeral-int', 'backdoor', _set(['sockets', 1, 'ephemeral'], 1), 'sockets[1].ephemeral'),
    ('ephemeral-missing', 'backdoor', _delete(['sockets', 1, 'ephemeral']), 'sockets[1].ephemeral'),
    # Ports no rule can match.
    ('port-string', 'backdoor', _set(['sockets', 1, 'port'], '856'), 'sockets[1].port'),
    ('port-bool', 'quiet', _set(['sockets', 0, 'port'], True), 'sockets[0].port'),
    ('port-negative', 'backdoor', _set(['sockets', 1, 'port'], -856), 'sockets[1].port'),
    ('port-too-large', 'backdoor', _set(['sockets', 1, 'port'], 65536 + 856), 'sockets[1].port'),
    ('port-nan', 'backdoor', _set(['sockets', 1, 'port'], float('nan')), 'sockets[1].port'),
    ('port-float', 'backdoor', _set(['sockets', 1, 'port'], 856.0), 'sockets[1].port'),
    ('port-huge-int', 'backdoor', _set(['sockets', 1, 'port'], 10 ** 5000), 'sockets[1].port'),
    ('protocol-upper', 'backdoor', _set(['sockets', 1, 'protocol'], 'TCP'), 'sockets[1].protocol'),
    ('protocol-list', 'backdoor', _set(['sockets', 1, 'protocol'], ['tcp']), 'sockets[1].protocol'),
    ('family-junk', 'backdoor', _set(['sockets', 1, 'family'], 'inet'), 'sockets[1].family'),
    ('family-mismatch', 'backdoor', _set(['sockets', 1, 'family'], 'ipv6'), 'sockets[1].address'),
    ('address-junk', 'backdoor', _set(['sockets', 1, 'address'], 'everywhere'), 'sockets[1].address'),
    ('v6only-string', 'dual-stack', _set(['sockets', 1, 'v6only'], 'true'), 'sockets[1].v6only'),
    ('inode-string', 'backdoor', _set(['sockets', 1, 'inode'], '10856'), 'sockets[1].inode'),
    # Owners: a rule about processes cannot be checked without them.
    ('processes-missing', 'ssh-backdoor', _delete(['sockets', 0, 'processes']), 'sockets[0].processes'),
    ('processes-mapping', 'ssh-backdoor', _set(['sockets', 0, 'processes'], {'name': 'sshd'}), 'sockets[0].processes'),
    ('processes-string', 'ssh-backdoor', _set(['sockets', 0, 'processes'], 'sshd'), 'sockets[0].processes'),
    ('process-not-mapping', 'ssh-backdoor', _set(['sockets', 0, 'processes', 0], 'sshd'), 'sockets[0].processes[0]'),
    ('process-pid-string', 'quiet', _set(['sockets', 0, 'processes', 0, 'pid'], '812'), 'sockets[0].processes[0].pid'),
    ('process-name-list', 'quiet', _set(['sockets', 0, 'processes', 0, 'name'], ['sshd']), 'sockets[0].processes[0].name'),
    ('process-start-nan', 'quiet', _set(['sockets', 0, 'processes', 0, 'start_time'], float('nan')),
     'sockets[0].processes[0].start_time'),
    # Namespaces: a socket moved out of every rule's reach, or junk copied into the report.
    ('namespace-string', 'backdoor', _set(['sockets', 1, 'namespace'], 'host'), 'sockets[1].namespace'),
    ('namespace-junk-key', 'quiet', _set(['sockets', 0, 'namespace'], {'inode': 4026531840, 'host': True, 'pid': 1,
                                                                       'container': None, 'x': _nested(50)}),
     'sockets[0].namespace'),
    ('namespace-inode-string', 'quiet', _set(['sockets', 0, 'namespace'], {'inode': '4026531840', 'host': True, 'pid': 1,
                                                                           'container': None}),
     'sockets[0].namespace.inode'),
    ('namespace-host-string', 'quiet', _set(['sockets', 0, 'namespace'], {'inode': 4026531840, 'host': 'yes', 'pid': 1,
                                                                          'container': None}),
     'sockets[0].namespace.host'),
    ('container-not-mapping', 'quiet', _set(['sockets', 0, 'namespace'], {'inode': 4026532001, 'host': False, 'pid': 7,
                                                                          'container': 'docker'}),
     'sockets[0].namespace.container'),
    ('socket-not-mapping', 'quiet', _set(['sockets', 0], 'tcp 0.0.0.0:22'), 'sockets[0]'),
    ('duplicate-socket', 'backdoor', _duplicate, 'sockets[2]'),
    ('duplicate-first-socket', 'backdoor', _duplicate_first, 'sockets[2]'),
    ('v6only-missing', 'dual-stack', _delete(['sockets', 1, 'v6only']), 'sockets[1].v6only'),
    ('coverage-namespaces-list', 'quiet', _set(['coverage', 'namespaces'], ['all']), 'coverage.namespaces'),
]

# What each reason says, whole: the place, what was expected there and what was found.
REASONS = {
    'no-sockets-key': 'sockets: expected a list of sockets, got nothing',
    'sockets-null': 'sockets: expected a list of sockets, got None',
    'sockets-mapping': 'sockets: expected a list of sockets, got a mapping',
    'sockets-string': "sockets: expected a list of sockets, got 'tcp 0.0.0.0:856'",
    'sockets-nested-deep': 'sockets[0]: expected a socket mapping, got a list',
    'complete-string-false': "coverage.complete: expected true or false, got 'false'",
    'complete-int': 'coverage.complete: expected true or false, got 1',
    'complete-with-errors': 'coverage.errors: expected no errors when coverage.complete is true, got 1 error',
    'errors-not-a-list': "coverage.errors: expected a list of strings, got 'a table could not be read'",
    'errors-not-strings': 'coverage.errors[0]: expected a string, got a mapping',
    'errors-missing': 'coverage.errors: expected a list of strings, got nothing',
    'complete-with-two-errors': 'coverage.errors: expected no errors when coverage.complete is true, got 2 errors',
    'notes-not-strings': 'coverage.notes[0]: expected a string, got 7',
    'coverage-string': "coverage: expected a mapping, got 'full'",
    'coverage-count-lies': 'coverage.sockets: expected the number of sockets, 2, got 7',
    'coverage-count-bool': 'coverage.sockets: expected the number of sockets, 1, got True',
    'ephemeral-string-no': "sockets[1].ephemeral: expected true or false, got 'no'",
    'ephemeral-int': 'sockets[1].ephemeral: expected true or false, got 1',
    'ephemeral-missing': 'sockets[1].ephemeral: expected true or false, got nothing',
    'port-string': "sockets[1].port: expected a port number 0-65535, got '856'",
    'port-bool': 'sockets[0].port: expected a port number 0-65535, got True',
    'port-negative': 'sockets[1].port: expected a port number 0-65535, got -856',
    'port-too-large': 'sockets[1].port: expected a port number 0-65535, got 66392',
    'port-nan': 'sockets[1].port: expected a port number 0-65535, got nan',
    'port-float': 'sockets[1].port: expected a port number 0-65535, got 856.0',
    'port-huge-int': 'sockets[1].port: expected a port number 0-65535, got an integer of 16610 bits',
    'protocol-upper': "sockets[1].protocol: expected tcp or udp, got 'TCP'",
    'protocol-list': 'sockets[1].protocol: expected tcp or udp, got a list',
    'family-junk': "sockets[1].family: expected ipv4 or ipv6, got 'inet'",
    'family-mismatch': "sockets[1].address: expected an IPv6 address, got '0.0.0.0'",
    'address-junk': "sockets[1].address: expected an IPv4 address, got 'everywhere'",
    'v6only-string': "sockets[1].v6only: expected true, false or null, got 'true'",
    'inode-string': "sockets[1].inode: expected a socket inode or null, got '10856'",
    'processes-missing': 'sockets[0].processes: expected a list of processes, got nothing',
    'processes-mapping': 'sockets[0].processes: expected a list of processes, got a mapping',
    'processes-string': "sockets[0].processes: expected a list of processes, got 'sshd'",
    'process-not-mapping': "sockets[0].processes[0]: expected a mapping, got 'sshd'",
    'process-pid-string': "sockets[0].processes[0].pid: expected a process id, got '812'",
    'process-name-list': 'sockets[0].processes[0].name: expected a string or null, got a list',
    'process-start-nan': 'sockets[0].processes[0].start_time: expected clock ticks (an integer) or null, got nan',
    'namespace-string': "sockets[1].namespace: expected a namespace mapping or null, got 'host'",
    'namespace-junk-key': 'sockets[0].namespace: expected only the keys container, host, inode, pid, got also x',
    'namespace-inode-string': "sockets[0].namespace.inode: expected a namespace inode, got '4026531840'",
    'namespace-host-string': "sockets[0].namespace.host: expected true or false, got 'yes'",
    'container-not-mapping': "sockets[0].namespace.container: expected a container mapping or null, got 'docker'",
    'socket-not-mapping': "sockets[0]: expected a socket mapping, got 'tcp 0.0.0.0:22'",
    'duplicate-socket': 'sockets[2]: expected each socket once, got a repeat of an earlier socket',
    'duplicate-first-socket': 'sockets[2]: expected each socket once, got a repeat of an earlier socket',
    'v6only-missing': 'sockets[1].v6only: expected true, false or null, got nothing',
    'coverage-namespaces-list': 'coverage.namespaces: expected a mapping, got a list',
}


def start(name):
    return copy.deepcopy(_start(name))  # the damage never reaches the shared process lists


def _start(name):
    if name == 'quiet':
        return quiet_host()
    if name == 'backdoor':
        return host_with(socket(856, BACKDOOR))
    if name == 'dual-stack':
        return host_with(socket(856, BACKDOOR, address='::', family='ipv6', v6only=True))
    if name == 'ssh-backdoor':
        gathered = quiet_host()
        gathered['sockets'][0]['processes'] = BACKDOOR
        return gathered
    assert name == 'partial'
    gathered = quiet_host()
    gathered['coverage'].update(complete=False, errors=['udp/ipv6: cannot read /proc/net/udp6'])
    return gathered


@pytest.mark.parametrize('case, base, damage, path', CASES, ids=[case[0] for case in CASES])
def test_a_malformed_gather_result_is_unknown(case, base, damage, path):
    gathered = damage(start(base))
    result, failures = judge(gathered)
    assert result['status'] == 'unknown', (case, result['status'], result['reasons'])
    assert failures, 'a malformed result passed the gate'
    assert result['findings'] == [] and result['coverage'] is None
    assert len(result['reasons']) == 1
    reason = result['reasons'][0]
    assert reason.startswith('malformed gather result: %s: expected ' % path), reason
    assert reason == 'malformed gather result: ' + REASONS[case]
    assert len(reason) < 300 and '\n' not in reason, reason


@pytest.mark.parametrize('gathered', [[], 'compliant', 0, True], ids=['list', 'string', 'zero', 'true'])
def test_a_result_that_is_not_a_mapping_is_unknown(gathered):
    result, failures = judge(gathered)
    assert result['status'] == 'unknown' and failures
    assert result['reasons'][0].startswith('malformed gather result: (top level): expected a mapping'), result['reasons']


HOST_NS = {'inode': 4026531840, 'host': True, 'pid': 1, 'container': None}
SSH_IN_CONTAINERS = ev.compile_policy({'policy_version': 1, 'name': 'containers', 'rules': [
    {'id': 'no-ssh-in-containers', 'namespaces': ['container'], 'match': {'ports': [2222]}, 'expect': 'closed',
     'severity': 'high'}]})


def test_one_namespace_described_two_ways_is_unknown():
    """A container's listener whose namespace claims the host's inode, listed after a host socket on the same port:
    the selector verdict cached for that inode (the host's: not a container) judges the container's socket too."""
    container = {'inode': 4026531840, 'host': False, 'pid': 700,
                 'container': {'kind': 'docker', 'id': 'ab' * 32, 'pod_uid': None, 'name': 'web'}}
    # The host's own sshd on 2222 (allowed: the rule is about containers), then the container's.
    gathered = host_with(dict(socket(2222, SSHD, inode=501), namespace=dict(HOST_NS)),
                         dict(socket(2222, BACKDOOR, inode=502), namespace=container))
    gathered['sockets'][0]['namespace'] = dict(HOST_NS)
    gathered['coverage']['namespaces'] = {'mode': 'all', 'scanned': [], 'unreadable': [], 'vanished': []}
    alone = ev.evaluate_host({'sockets': [gathered['sockets'][2]], 'coverage': dict(gathered['coverage'], sockets=1)},
                             SSH_IN_CONTAINERS, 'web-1', [], TODAY)
    assert alone['status'] == 'drift'  # judged alone, the container's socket is drift
    result = ev.evaluate_host(gathered, SSH_IN_CONTAINERS, 'web-1', [], TODAY)
    assert result['status'] == 'unknown', (result['status'], result['reasons'])
    assert result['reasons'] == ['malformed gather result: sockets[2].namespace: expected the namespace 4026531840 as the '
                                 'other sockets there describe it, got another description']
