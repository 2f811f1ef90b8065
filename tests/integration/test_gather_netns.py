"""Real sockets in a fresh network namespace: every backend must return exactly them."""

import json
import os
import sys
import sysconfig

import pytest

from tests.helpers.gather import CLI_MODULE, gather_in, socket_keys
from tests.helpers.netns import Namespace, have_netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]

KNOWN = {
    'name': 'pw-holder',
    'sockets': [
        {'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856},
        {'protocol': 'tcp', 'address': '::1', 'port': 857},
        {'protocol': 'tcp', 'address': '::', 'port': 858, 'v6only': False},
        {'protocol': 'tcp', 'address': '::', 'port': 855, 'v6only': True},
        {'protocol': 'udp', 'address': '0.0.0.0', 'port': 859},
        # a connected UDP client: bound, but not listening; it must not appear
        {'protocol': 'udp', 'address': '127.0.0.1', 'port': 859, 'connect': True},
        # an unconnected UDP socket on a kernel-chosen port: listed, flagged ephemeral
        {'protocol': 'udp', 'address': '127.0.0.1', 'port': 0},
    ],
}
PREFORK = {'name': 'pw-prefork', 'fork': 1, 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 8080}]}
# an established TCP connection (both ends) that must not appear either
CLIENT = {'name': 'pw-client', 'sockets': [{'protocol': 'tcp', 'address': '127.0.0.1', 'port': 8080, 'connect': True}]}


@pytest.fixture(scope='module')
def known_namespace():
    with Namespace() as ns:
        holder = ns.listen(KNOWN)
        prefork = ns.listen(PREFORK)
        ns.listen(CLIENT)
        yield ns, holder, prefork


def expected_keys(holder, prefork, v6only_known):
    pid = (holder.pids[0],)
    ephemeral_port = holder.sockets[6]['port']

    def v6(value):
        return value if v6only_known else None

    return {
        ('tcp', 'ipv4', '0.0.0.0', 856, None, pid),
        ('tcp', 'ipv6', '::1', 857, v6(True), pid),  # the kernel sets V6ONLY on a specific-address bind
        ('tcp', 'ipv6', '::', 858, v6(False), pid),
        ('tcp', 'ipv6', '::', 855, v6(True), pid),
        ('udp', 'ipv4', '0.0.0.0', 859, None, pid),
        ('udp', 'ipv4', '127.0.0.1', ephemeral_port, None, pid),
        ('tcp', 'ipv4', '0.0.0.0', 8080, None, tuple(sorted(prefork.pids))),
    }


@pytest.mark.parametrize('backend, v6only_known', [
    ('auto', True), ('netlink', True), ('procfs', False), ('psutil', False),
])
def test_backend_returns_exactly_the_known_listeners(known_namespace, backend, v6only_known):
    ns, holder, prefork = known_namespace
    code, result = gather_in(ns, backend)
    expected = expected_keys(holder, prefork, v6only_known)
    if backend == 'psutil':
        # psutil keeps one pid per socket inode: of a socket shared by forked workers it names one.
        shared = ('tcp', 'ipv4', '0.0.0.0', 8080, None, tuple(sorted(prefork.pids)))
        expected.discard(shared)
        [seen] = [key for key in socket_keys(result) if key[3] == 8080]
        assert seen[:5] == shared[:5] and len(seen[5]) == 1 and seen[5][0] in prefork.pids
        expected.add(seen)
    assert socket_keys(result) == expected
    coverage = result['coverage']
    assert code == 0
    assert coverage['complete'] is True
    assert coverage['errors'] == []
    assert coverage['privileged'] is True
    assert coverage['unowned_sockets'] == []
    assert coverage['sockets'] == 7
    if backend in ('auto', 'netlink'):
        assert set(coverage['sources'].values()) == {'netlink'}
    if backend == 'procfs':
        assert set(coverage['sources'].values()) == {'procfs'}


@pytest.mark.parametrize('backend', ['auto', 'procfs', 'psutil'])
def test_process_details_and_ephemeral_flag(known_namespace, backend):
    ns, holder, _prefork = known_namespace
    _code, result = gather_in(ns, backend)
    by_port = {(entry['protocol'], entry['port']): entry for entry in result['sockets']}
    ephemeral_port = holder.sockets[6]['port']
    low, high = result['coverage']['ephemeral_port_range']
    assert low <= ephemeral_port <= high
    assert by_port[('udp', ephemeral_port)]['ephemeral'] is True
    assert by_port[('udp', 859)]['ephemeral'] is False
    assert not any(entry['ephemeral'] for entry in result['sockets'] if entry['protocol'] == 'tcp')
    proc = by_port[('tcp', 856)]['processes'][0]
    assert proc['name'] == 'pw-holder'
    assert (proc['user'], proc['uid']) == ('root', 0)
    assert proc['exe'] == os.path.realpath('/proc/%d/exe' % holder.pids[0])
    workers = 1 if backend == 'psutil' else 2  # psutil names one pid of a shared socket
    assert [p['name'] for p in by_port[('tcp', 8080)]['processes']] == ['pw-prefork'] * workers
    if backend != 'psutil':
        assert by_port[('tcp', 856)]['inode'] == holder.sockets[0]['inode']


def test_protocol_filter(known_namespace):
    ns, _holder, _prefork = known_namespace
    proc = ns.run([sys.executable, '-m', CLI_MODULE, 'gather', '--protocol', 'udp', '--format', 'json'])
    result = json.loads(proc.stdout)
    assert {entry['protocol'] for entry in result['sockets']} == {'udp'}
    assert set(result['coverage']['sources']) == {'udp/ipv4', 'udp/ipv6'}


@pytest.mark.parametrize('backend', ['auto', 'procfs', 'psutil'])
def test_unprivileged_gather_lists_sockets_without_processes_and_says_why(known_namespace, backend):
    ns, holder, prefork = known_namespace
    # The system python as nobody (the test venv's interpreter may live under /root, which nobody
    # cannot read), with the venv's site-packages for psutil.
    site_packages = sysconfig.get_paths()['purelib']
    nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
              'env', 'PYTHONPATH=%s%s%s' % (os.environ['PYTHONPATH'], os.pathsep, site_packages)]
    code, result = gather_in(ns, backend, python='/usr/bin/python3', prefix=nobody)
    assert code == 1
    v6only_known = backend == 'auto'
    assert socket_keys(result, with_pids=False) == {key[:5] for key in expected_keys(holder, prefork, v6only_known)}
    assert all(entry['processes'] == [] for entry in result['sockets'])
    coverage = result['coverage']
    assert coverage['privileged'] is False
    assert coverage['complete'] is False
    assert any('not running as root' in error for error in coverage['errors'])
    assert len(coverage['unowned_sockets']) == 7


def test_empty_namespace_is_complete_and_empty():
    with Namespace() as ns:
        code, result = gather_in(ns, 'auto')
    assert code == 0
    assert result['sockets'] == []
    assert result['coverage']['complete'] is True
    assert result['coverage']['errors'] == []


def _cgroup_root():
    for root in ('/sys/fs/cgroup/unified', '/sys/fs/cgroup'):
        if os.path.exists(os.path.join(root, 'cgroup.controllers')):
            return root
    if os.path.isdir('/sys/fs/cgroup/systemd'):
        return '/sys/fs/cgroup/systemd'
    return None


def test_unit_comes_from_the_real_cgroup_of_the_process():
    root = _cgroup_root()
    if root is None or not os.access(root, os.W_OK):
        pytest.skip('no writable cgroup hierarchy to place a process in a unit-named cgroup')
    unit_dir = os.path.join(root, 'system.slice', 'pwtest-listener.service')
    os.makedirs(unit_dir, exist_ok=True)
    try:
        with Namespace() as ns:
            holder = ns.listen({'sockets': [{'protocol': 'tcp', 'address': '127.0.0.1', 'port': 856}]})
            with open(os.path.join(unit_dir, 'cgroup.procs'), 'w') as handle:
                handle.write(str(holder.pids[0]))
            _code, result = gather_in(ns, 'auto')
            [entry] = result['sockets']
            assert entry['processes'][0]['unit'] == 'pwtest-listener.service'
    finally:
        os.rmdir(unit_dir)
