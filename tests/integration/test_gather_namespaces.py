"""namespaces=all on real network namespaces, seen from a PID namespace of the test's own.

Every process on this machine shares one PID namespace (fleet hosts and other suites' namespaces too),
so a gather there would also find namespaces this test did not make. The gather here therefore runs
in a fresh PID namespace with its own /proc (``unshare --pid --fork --mount-proc``), inside network
namespace ``pwn-h-*`` (its "host"); an agent, PID 1 there, starts listeners in ``pwn-c1-*`` and ``pwn-c2-*``
and runs the gathers. The only processes that /proc shows are the agent's, so the assertions expect
exactly the namespaces the test made. When the agent (PID 1) exits, the kernel kills every process of
its PID namespace; the network namespaces are deleted afterwards, whatever happened.
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces, gather_netlink
from tests.helpers.gather import CLI_MODULE, beside_private_pid_namespace
from tests.helpers.netns import LISTENERS, have_netns, kill_namespace

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]

# The agent: PID 1 of the test's PID namespace. One JSON request per stdin line, one JSON answer per stdout line.
AGENT = r'''
import json, os, signal, subprocess, sys

LISTENERS, CLI = sys.argv[1], sys.argv[2]
holders = {}


def listen(request):
    prefix = ['ip', 'netns', 'exec', request['netns']] if request.get('netns') else []
    proc = subprocess.Popen(prefix + [sys.executable, LISTENERS, json.dumps(request['spec'])],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = json.loads(proc.stdout.readline())
    for pid in ready['pids']:
        if request.get('cgroup_fd') is not None:  # cgroup.procs, opened by the test: ip netns exec hides /sys/fs/cgroup
            os.write(request['cgroup_fd'], str(pid).encode())
    holders[request['name']] = proc
    ready['netns_inode'] = os.stat('/proc/%d/ns/net' % ready['pids'][0]).st_ino
    return ready


def kill(name):
    proc = holders.pop(name)
    proc.kill()
    proc.wait()


def gather(request):
    python = request.get('python') or sys.executable
    argv = list(request.get('prefix', [])) + [python, '-m', CLI, 'gather', '--format', request.get('format', 'json')]
    proc = subprocess.run(argv + request['args'], capture_output=True, text=True)
    output = json.loads(proc.stdout) if request.get('format', 'json') == 'json' and proc.returncode in (0, 1) else proc.stdout
    return {'rc': proc.returncode, 'output': output, 'stderr': proc.stderr}


def in_process(request):
    """The gather in this process, with a namespace's last process killed right after discovery, or setns refused."""
    from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces, gather_sockets

    real_discover, real_setns = gather_namespaces.discover_namespaces, gather_namespaces.setns

    def discover_then_kill(*args, **kwargs):
        found = real_discover(*args, **kwargs)
        kill(request['kill_after_discovery'])
        return found

    def refuse(fd, nstype=gather_namespaces.CLONE_NEWNET):
        raise PermissionError(1, 'Operation not permitted')

    if request.get('kill_after_discovery'):
        gather_namespaces.discover_namespaces = discover_then_kill
    if request.get('refuse_setns'):
        gather_namespaces.setns = refuse
    try:
        return gather_sockets.gather_listening_sockets(backend=request.get('backend', 'auto'), namespaces='all')
    finally:
        gather_namespaces.discover_namespaces, gather_namespaces.setns = real_discover, real_setns


OPS = {'listen': listen, 'gather': gather, 'in_process': in_process, 'kill': lambda request: kill(request['name'])}
sys.stdout.write(json.dumps({'pid': os.getpid(), 'netns_inode': os.stat('/proc/self/ns/net').st_ino}) + '\n')
sys.stdout.flush()
for line in sys.stdin:
    request = json.loads(line)
    try:
        answer = {'ok': OPS[request['op']](request)}
    except Exception as exc:
        answer = {'error': '%s: %s' % (type(exc).__name__, exc)}
    sys.stdout.write(json.dumps(answer) + '\n')
    sys.stdout.flush()
'''


def _cgroup_root():
    """A writable cgroup hierarchy to place a process in (unified v2, or v1 name=systemd), or None."""
    for root in ('/sys/fs/cgroup/unified', '/sys/fs/cgroup'):
        if os.path.exists(os.path.join(root, 'cgroup.controllers')) and os.access(root, os.W_OK):
            return root
    if os.path.isdir('/sys/fs/cgroup/systemd') and os.access('/sys/fs/cgroup/systemd', os.W_OK):
        return '/sys/fs/cgroup/systemd'
    return None


class Agent(object):
    """The agent process, PID 1 of a fresh PID namespace inside network namespace ``netns``."""

    def __init__(self, netns, names, pass_fds=()):
        # A /run/netns of its own holding only the test's namespaces: namespaces=all also finds namespaces from their
        # mounts, and the machine's other ip netns mounts are not the test's (the agent's mount namespace is private).
        keep = ('mount -t tmpfs pwt-keep /srv && for name in $PWN_NAMES; do '
                'touch /srv/$name && mount --bind /run/netns/$name /srv/$name; done && umount -R /run/netns && mount -t tmpfs pwt-netns /run/netns '
                '&& for name in $PWN_NAMES; do touch /run/netns/$name && mount --bind /srv/$name /run/netns/$name; done '
                '&& exec "$@"')
        argv = ['ip', 'netns', 'exec', netns, 'unshare', '--pid', '--fork', '--mount-proc', '--kill-child',
                'env', 'PWN_NAMES=%s' % ' '.join(names), 'sh', '-c', keep, 'sh',
                sys.executable, '-c', AGENT, LISTENERS, CLI_MODULE]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
                                     pass_fds=pass_fds)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError('the agent did not start (exit %s)' % self.proc.returncode)
        hello = json.loads(line)
        self.pid = hello['pid']
        self.netns_inode = hello['netns_inode']

    def ask(self, op, **request):
        request['op'] = op
        self.proc.stdin.write(json.dumps(request) + '\n')
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if 'error' in answer:
            raise AssertionError('agent %s failed: %s' % (op, answer['error']))
        return answer['ok']

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Made(object):
    """The namespaces and listeners this test made, and the agent that sees only them."""

    def __init__(self, suffix):
        self.host, self.c1, self.c2, self.c3 = ('pwn-%s-%s' % (role, suffix) for role in ('h', 'c1', 'c2', 'c3'))
        self.names = [self.host, self.c1, self.c2, self.c3]
        self.container_id = uuid.uuid4().hex + uuid.uuid4().hex
        self.cgroup = None
        self.cgroup_fd = None
        self.agent = None
        self.holders = {}

    def inode(self, name):
        return os.stat('/run/netns/%s' % name).st_ino


def _remove_cgroup(path):
    for _attempt in range(50):  # the killed processes leave the cgroup as the kernel reaps them
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


@pytest.fixture(scope='module')
def made():
    made = Made(uuid.uuid4().hex[:6])
    try:
        for name in made.names:
            kill_namespace(name)
            subprocess.run(['ip', 'netns', 'add', name], check=True)
            subprocess.run(['ip', 'netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up'], check=True)
        # pwn-c1 and pwn-c2 have ephemeral port ranges of their own: each must be read inside its namespace.
        for name, port_range in ((made.c1, '21000 21100'), (made.c2, '20000 20100')):
            subprocess.run(['ip', 'netns', 'exec', name, 'sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=' + port_range],
                           check=True)
        root = _cgroup_root()
        if root is not None:
            made.cgroup = os.path.join(root, 'system.slice', 'docker-%s.scope' % made.container_id)
            os.makedirs(made.cgroup)
            # A pid written here is read in the writer's PID namespace: the agent writes its own pids.
            made.cgroup_fd = os.open(os.path.join(made.cgroup, 'cgroup.procs'), os.O_WRONLY)
        made.agent = Agent(made.host, made.names, pass_fds=[made.cgroup_fd] if made.cgroup_fd is not None else [])
        specs = [
            ('host', None, {'name': 'pwn-host-svc',
                            'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 8443},
                                        {'protocol': 'udp', 'address': '0.0.0.0', 'port': 20050}]}, None),
            ('c1', made.c1, {'name': 'pwn-c1-856', 'fork': 1,
                             'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856},
                                         {'protocol': 'tcp', 'address': '::', 'port': 856, 'v6only': True}]}, made.cgroup_fd),
            ('c2', made.c2, {'name': 'pwn-c2-443',
                             'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 443},
                                         {'protocol': 'udp', 'address': '0.0.0.0', 'port': 20050}]}, None),
        ]
        for key, netns, spec, cgroup_fd in specs:
            made.holders[key] = made.agent.ask('listen', name=key, netns=netns, spec=spec, cgroup_fd=cgroup_fd)
        yield made
    finally:
        if made.agent is not None:
            made.agent.close()
        if made.cgroup_fd is not None:
            os.close(made.cgroup_fd)
        for name in made.names:
            kill_namespace(name)
        if made.cgroup:
            _remove_cgroup(made.cgroup)


def _gather(made, *args, **kwargs):
    answer = made.agent.ask('gather', args=list(args), **kwargs)
    assert answer['rc'] in (0, 1), answer['stderr']
    return answer['rc'], answer['output']


@pytest.fixture(scope='module')
def gathered(made):
    return {backend: _gather(made, '--namespaces', 'all', '--backend', backend) for backend in ('auto', 'netlink', 'procfs')}


def _by_key(result):
    return {(entry['protocol'], entry['family'], entry['port']): entry for entry in result['sockets']}


def test_the_agent_sees_only_what_the_test_made(made):
    # Sanity of the design: the agent is PID 1 of its own PID namespace, in pwn-h's network namespace.
    assert made.agent.pid == 1
    assert made.agent.netns_inode == made.inode(made.host)
    assert made.holders['c1']['netns_inode'] == made.inode(made.c1)
    assert made.holders['c2']['netns_inode'] == made.inode(made.c2)


@pytest.mark.parametrize('backend', ['auto', 'netlink', 'procfs'])
def test_all_finds_exactly_the_namespaces_the_test_made(made, gathered, backend):
    code, result = gathered[backend]
    coverage = result['coverage']
    assert code == 1, coverage['errors']  # partial only for the private PID namespace it runs in
    assert beside_private_pid_namespace(coverage) == []
    summary = coverage['namespaces']
    assert summary['mode'] == 'all'
    assert [(item['inode'], item['host']) for item in summary['scanned']] == [(made.inode(made.host), True)] + sorted(
        [(made.inode(made.c1), False), (made.inode(made.c2), False), (made.inode(made.c3), False)])
    assert summary['unreadable'] == [] and summary['vanished'] == []
    # pwn-c3 has no process (yet): it is found through its mount (/run/netns), and read: nothing listens there.
    counts = {item['inode']: item['sockets'] for item in summary['scanned']}
    assert counts == {made.inode(made.host): 2, made.inode(made.c1): 2, made.inode(made.c2): 2, made.inode(made.c3): 0}
    assert [item['pid'] for item in summary['scanned'] if item['inode'] == made.inode(made.c3)] == [None]
    expected_source = 'procfs' if backend == 'procfs' else 'netlink'
    for item in summary['scanned']:
        assert set(item['sources'].values()) == {expected_source}
        assert sorted(item['sources']) == ['tcp/ipv4', 'tcp/ipv6', 'udp/ipv4', 'udp/ipv6']


@pytest.mark.parametrize('backend', ['auto', 'netlink', 'procfs'])
def test_each_socket_is_attributed_to_its_namespace(made, gathered, backend):
    _code, result = gathered[backend]
    sockets = _by_key(result)
    assert len(sockets) == len(result['sockets']) - 1  # udp 20050 is in two namespaces
    c1 = made.holders['c1']
    for family in ('ipv4', 'ipv6'):
        entry = sockets[('tcp', family, 856)]
        assert entry['namespace'] == {'inode': made.inode(made.c1), 'host': False, 'pid': min(c1['pids']),
                                      'container': entry['namespace']['container']}
        assert sorted(proc['pid'] for proc in entry['processes']) == sorted(c1['pids'])
        assert {proc['name'] for proc in entry['processes']} == {'pwn-c1-856'}
    assert {socket['inode'] for socket in c1['sockets']} == {sockets[('tcp', f, 856)]['inode'] for f in ('ipv4', 'ipv6')}
    entry = sockets[('tcp', 'ipv4', 443)]
    assert entry['namespace'] == {'inode': made.inode(made.c2), 'host': False, 'pid': made.holders['c2']['pids'][0],
                                  'container': None}
    assert entry['inode'] == made.holders['c2']['sockets'][0]['inode']
    entry = sockets[('tcp', 'ipv4', 8443)]
    assert entry['namespace']['inode'] == made.inode(made.host) and entry['namespace']['host'] is True
    assert [proc['name'] for proc in entry['processes']] == ['pwn-host-svc']
    # pid 1 is the agent: the lowest pid of the gather's own namespace
    assert entry['namespace']['pid'] == 1
    # The same port in two namespaces is two sockets, each with its namespace and its namespace's ephemeral range:
    # 20050 is inside pwn-c2's range (20000-20100), outside pwn-h's default one.
    udp = sorted((entry for entry in result['sockets'] if entry['port'] == 20050), key=lambda entry: entry['namespace']['host'])
    assert [(entry['namespace']['inode'], entry['ephemeral']) for entry in udp] == [
        (made.inode(made.c2), True), (made.inode(made.host), False)]
    ranges = {item['inode']: item['ephemeral_port_range'] for item in result['coverage']['namespaces']['scanned']}
    # One thread visits pwn-c1 and pwn-c2 in turn: each must show its own range, never the one read before.
    assert ranges[made.inode(made.c2)] == [20000, 20100]
    assert ranges[made.inode(made.host)] == result['coverage']['ephemeral_port_range'] != [20000, 20100]
    assert ranges[made.inode(made.c1)] == [21000, 21100]


def test_container_is_told_from_the_cgroup_path(made, gathered):
    if made.cgroup is None:
        pytest.skip('no writable cgroup hierarchy to place a process in a container-shaped cgroup')
    _code, result = gathered['auto']
    expected = {'kind': 'docker', 'id': made.container_id, 'pod_uid': None, 'name': None}
    sockets = _by_key(result)
    assert sockets[('tcp', 'ipv4', 856)]['namespace']['container'] == expected
    containers = {item['inode']: item['container'] for item in result['coverage']['namespaces']['scanned']}
    assert containers == {made.inode(made.c1): expected, made.inode(made.c2): None, made.inode(made.host): None,
                          made.inode(made.c3): None}


def test_host_mode_sees_none_of_the_other_namespaces(made):
    code, result = _gather(made)
    assert code == 0
    assert sorted((entry['protocol'], entry['port']) for entry in result['sockets']) == [('tcp', 8443), ('udp', 20050)]
    assert 'namespaces' not in result['coverage']
    assert all('namespace' not in entry for entry in result['sockets'])
    inodes = {socket['inode'] for key in ('c1', 'c2') for socket in made.holders[key]['sockets']}
    assert not inodes & {entry['inode'] for entry in result['sockets']}


def test_table_lists_each_namespace_and_its_sockets(made):
    answer = made.agent.ask('gather', args=['--namespaces', 'all'], format='table')
    assert answer['rc'] == 1, answer['stderr']  # partial: it runs in a private PID namespace
    lines = answer['output'].splitlines()
    assert 'network namespaces: 4 scanned, 0 unreadable, 0 vanished' in lines
    assert 'netns %d (host) pid 1: tcp 0.0.0.0:8443, udp 0.0.0.0:20050' % made.inode(made.host) in lines
    where = ' docker %s' % made.container_id[:12] if made.cgroup else ''
    assert 'netns %d pid %d%s: tcp 0.0.0.0:856, tcp [::]:856' % (made.inode(made.c1), min(made.holders['c1']['pids']), where) in lines


def test_unprivileged_all_reads_only_its_own_namespace_and_is_partial(made):
    # The system python as nobody (the test venv's interpreter may live where nobody cannot read);
    # PYTHONPATH, which finds the collection, is inherited from this test through the agent.
    nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
    answer = made.agent.ask('gather', args=['--namespaces', 'all'], prefix=nobody, python='/usr/bin/python3')
    assert answer['rc'] == 1, answer['stderr']
    result = answer['output']
    coverage = result['coverage']
    assert coverage['privileged'] is False and coverage['complete'] is False
    assert any('namespaces=all: not running as root' in error for error in coverage['errors'])
    scanned = coverage['namespaces']['scanned']
    assert [(item['inode'], item['host']) for item in scanned] == [(made.inode(made.host), True)]
    assert sorted((entry['protocol'], entry['port']) for entry in result['sockets']) == [('tcp', 8443), ('udp', 20050)]
    assert {entry['namespace']['inode'] for entry in result['sockets']} == {made.inode(made.host)}


def test_refused_setns_is_an_error_with_netlink_and_a_procfs_fallback_with_auto(made):
    netlink = made.agent.ask('in_process', backend='netlink', refuse_setns=True)
    coverage = netlink['coverage']
    assert coverage['complete'] is False
    unreadable = coverage['namespaces']['unreadable']
    # pwn-c3, found through its mount only, has no process whose /proc/PID/net could stand in either.
    assert sorted(item['inode'] for item in unreadable) == sorted([made.inode(made.c1), made.inode(made.c2), made.inode(made.c3)])
    assert all('setns: Operation not permitted' in item['reason'] for item in unreadable)
    assert len([error for error in coverage['errors'] if 'could not be read' in error]) == 3
    assert {entry['port'] for entry in netlink['sockets']} == {8443, 20050}  # the own namespace is still read

    auto = made.agent.ask('in_process', backend='auto', refuse_setns=True)
    coverage = auto['coverage']
    assert coverage['complete'] is False
    assert [item['inode'] for item in coverage['namespaces']['unreadable']] == [made.inode(made.c3)]
    errors = beside_private_pid_namespace(coverage)
    assert len(errors) == 1 and 'network namespace %d' % made.inode(made.c3) in errors[0]
    assert {entry['port'] for entry in auto['sockets']} == {443, 856, 8443, 20050}
    for item in coverage['namespaces']['scanned'][1:]:
        assert set(item['sources'].values()) == {'procfs'}
        assert item['ephemeral_port_range'] is None  # /proc/sys/net shows only the reader's own namespace
    assert len([note for note in coverage['notes'] if 'read /proc/%d/net instead' % made.holders['c2']['pids'][0] in note]) == 1


def test_mounted_namespace_whose_processes_exit_after_discovery_is_still_read(made):
    # Its mount keeps pwn-c3 alive once its processes are gone: it is entered through the mount, and holds nothing.
    made.agent.ask('listen', name='c3', netns=made.c3, spec={'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856}]})
    c3 = made.inode(made.c3)
    result = made.agent.ask('in_process', kill_after_discovery='c3')
    coverage = result['coverage']
    assert beside_private_pid_namespace(coverage) == []
    assert coverage['namespaces']['vanished'] == [] and coverage['namespaces']['unreadable'] == []
    assert [item['sockets'] for item in coverage['namespaces']['scanned'] if item['inode'] == c3] == [0]
    assert len(coverage['namespaces']['scanned']) == 4
    assert not [entry for entry in result['sockets'] if entry['namespace']['inode'] == c3]


def _unshared_listener(port):
    """A listener in a new, unnamed network namespace: it dies with its last process."""
    spec = json.dumps({'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': port}]})
    proc = subprocess.Popen(['unshare', '--net', sys.executable, LISTENERS, spec], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    ready = json.loads(proc.stdout.readline())
    return proc, ready, os.stat('/proc/%d/ns/net' % proc.pid).st_ino


def _listening_inodes():
    return {record[5] for record in gather_netlink.dump_listening('ipv4', 'tcp')}


def test_namespace_gone_before_it_is_entered_raises_namespace_gone():
    proc, ready, inode = _unshared_listener(856)
    assert ready['pids'] == [proc.pid]
    proc.kill()
    proc.wait()
    with pytest.raises(gather_namespaces.NamespaceGone):
        gather_namespaces.open_namespace(inode, [proc.pid])


def test_an_entered_namespace_is_held_open_while_its_process_exits():
    proc, ready, inode = _unshared_listener(856)
    try:
        fd, pid = gather_namespaces.open_namespace(inode, [proc.pid])
    finally:
        proc.kill()
        proc.wait()
    try:
        assert pid == proc.pid
        # The namespace lives on through the fd; the socket died with its process, so nothing listens.
        seen = gather_namespaces.run_in_namespace(fd, inode, _listening_inodes)
    finally:
        os.close(fd)
    assert ready['sockets'][0]['inode'] not in seen
    assert seen == set()


def test_an_entered_namespace_is_dumped_from_inside():
    proc, ready, inode = _unshared_listener(856)
    try:
        fd, _pid = gather_namespaces.open_namespace(inode, [proc.pid])
        try:
            seen = gather_namespaces.run_in_namespace(fd, inode, _listening_inodes)
        finally:
            os.close(fd)
        assert seen == {ready['sockets'][0]['inode']}
        assert ready['sockets'][0]['inode'] not in _listening_inodes()  # the caller never left its namespace
    finally:
        proc.stdin.close()
        proc.wait()
