"""Integration: the gather wired together, each result checked whole on real sockets in real network namespaces.

The unit tests check each coverage rule as a pure function; these check that gather_listening_sockets puts the
rules together: the exact shape of a real result, this process's own listeners found exactly (inode, v6only,
ephemeral, owner) by every backend, the namespaces of namespaces=all (one a process is in, one only a bind mount
keeps, one only an nsfs fd keeps, one only a socket keeps), and what an unprivileged gather must say.

The test process itself moves into a network namespace of its own for the module (and back at the end), so the
"host" tables hold exactly the sockets made here. Every gather runs in this process: mutmut counts a test for a
function only when it calls it in the pytest process, and each mutant's run makes these namespaces again, so the
setup is a few forks, no exec but one ``ip link``.
"""

import array
import ctypes
import json
import os
import pwd
import signal
import socket
import subprocess
import sys

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces, gather_netlink, gather_owners
from ansible_collections.portwarden.compliance.plugins.module_utils import gather_sockets as gather
from tests.helpers.gather import refused_gaps, refused_here

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not sys.platform.startswith('linux') or os.geteuid() != 0,
                       reason='network namespaces and other processes\' fds need root on Linux'),
]

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
LIBC = ctypes.CDLL(None, use_errno=True)

HOST_RANGE = [40000, 50000]  # this module's own namespace: the gather's "host"
HOST_RESERVED = 45002
PROCESS_RANGE = [30000, 35000]  # the namespace a process is in
KERNEL_NOTE = 'sockets have no owning process though every process was looked in'
NOT_ROOT_NOTE = 'not running as root: processes of other users are not shown; use become: true'
ALL_TABLES = ('tcp/ipv4', 'tcp/ipv6', 'udp/ipv4', 'udp/ipv6')

RESULT_KEYS = {'sockets', 'coverage'}
COVERAGE_KEYS = {'backend', 'sources', 'privileged', 'complete', 'sockets', 'unowned_sockets', 'processes_scanned',
                 'processes_unreadable', 'ephemeral_port_range', 'errors', 'notes', 'owner_search', 'unowned_case'}
SOCKET_KEYS = {'protocol', 'family', 'address', 'port', 'v6only', 'ephemeral', 'inode', 'processes'}
PROCESS_KEYS = {'pid', 'name', 'user', 'uid', 'exe', 'unit', 'start_time'}
NAMESPACE_KEYS = {'inode', 'host', 'pid', 'container'}
SCANNED_KEYS = NAMESPACE_KEYS | {'sockets', 'sources', 'ephemeral_port_range'}


NAT_OFF_NOTE = 'nat: not read (nat: off, or not Linux): ports published by DNAT or REDIRECT are not seen'


def gather_sockets_only(**options):
    """gather_listening_sockets with nat off, its NAT part checked and taken away: these tests check the sockets and
    their coverage (the NAT reading has suites of its own, test_gather_nat*)."""
    result = gather.gather_listening_sockets(nat='off', **options)
    assert result.pop('exposures') == []
    coverage = result['coverage']
    assert coverage.pop('nat') == {'mode': 'off', 'sources': {}, 'tables': [], 'unreachable': [], 'exposures': 0}
    assert coverage['notes'].count(NAT_OFF_NOTE) == 1
    coverage['notes'].remove(NAT_OFF_NOTE)
    return result


def _check(value):
    if value != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _setns(fd):
    _check(LIBC.setns(fd, CLONE_NEWNET))


def _set_comm(name):
    LIBC.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()), 0, 0, 0)


def _port_range():
    with open('/proc/sys/net/ipv4/ip_local_port_range') as handle:
        return [int(value) for value in handle.read().split()]


def _write(path, text):
    with open(path, 'w') as handle:
        handle.write(text)


def _listen(protocol, address, port, v6only=None, reuseport=False):
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM if protocol == 'tcp' else socket.SOCK_DGRAM)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if v6only is not None:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
    sock.bind((address, port))
    if protocol == 'tcp':
        sock.listen(8)
    return sock


def _inode(sock):
    return os.fstat(sock.fileno()).st_ino


def described(pid):
    """What the gather must say of process ``pid``, read here from /proc (the unit through unit_from_cgroup)."""
    base = '/proc/%d' % pid
    with open(base + '/comm') as handle:
        name = handle.read().rstrip('\n')
    with open(base + '/stat') as handle:
        stat = handle.read()
    with open(base + '/status') as handle:
        uid = next(int(line.split()[2]) for line in handle if line.startswith('Uid:'))
    try:
        exe = os.readlink(base + '/exe')
    except OSError:  # its leader is a zombie: its live thread runs the executable, in its cgroup
        base = '/proc/%d/task/%d' % (pid, max(int(tid) for tid in os.listdir(base + '/task')))
        exe = os.readlink(base + '/exe')
    with open(base + '/cgroup') as handle:
        unit = gather_owners.unit_from_cgroup(handle.read())
    return {'pid': pid, 'name': name, 'user': pwd.getpwuid(uid).pw_name, 'uid': uid, 'exe': exe, 'unit': unit,
            'start_time': int(stat[stat.rindex(')') + 2:].split()[19])}


class Holder(object):
    """A forked child of this process that made a namespace and holds sockets in (or for) it until killed."""

    def __init__(self, pid, info):
        self.pid = pid
        self.info = info

    def stop(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)


def _fork_holder(body):
    """Fork a child (killed with this process, PR_SET_PDEATHSIG) that runs ``body()``, reports what it returns as
    a JSON line and waits to be killed. Forked before this process opens its own sockets, so it holds none of them."""
    ready_r, ready_w = os.pipe()
    _ready_fd[:] = [ready_w]
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            kept = []
            info = body(kept)
            if info is None:  # it reported itself from a thread of its own, and its main thread has exited
                return
            os.write(ready_w, (json.dumps(info) + '\n').encode())
            while True:
                signal.pause()
        finally:
            os._exit(1)
    os.close(ready_w)
    _ready_fd[:] = []
    line = b''
    while not line.endswith(b'\n'):
        chunk = os.read(ready_r, 4096)
        if not chunk:
            break
        line += chunk
    os.close(ready_r)
    if not line.endswith(b'\n'):
        os.waitpid(pid, 0)
        raise RuntimeError('a namespace holder failed before it was ready')
    return Holder(pid, json.loads(line))


CGROUP_ROOT = '/sys/fs/cgroup/unified'  # a v2 hierarchy with no controllers beside the v1 ones: moving is free here


def _container_cgroup():
    """A docker-shaped cgroup (system.slice/docker-ID.scope) to place a process in, or None where none can be made."""
    if not os.access(os.path.join(CGROUP_ROOT, 'cgroup.procs'), os.W_OK):
        return None
    path = os.path.join(CGROUP_ROOT, 'system.slice', 'docker-%s.scope' % os.urandom(32).hex())
    os.makedirs(path)
    return path


def _remove_cgroup(path):
    import time

    for _attempt in range(50):  # a killed process leaves the cgroup as the kernel reaps it
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


def _in_process_namespace(kept):
    """A namespace this process is in, with its own ephemeral range, in a docker-shaped cgroup: a container's."""
    _set_comm('pwt-wiring-in')
    if _cgroups:
        _write(os.path.join(_cgroups[0], 'cgroup.procs'), str(os.getpid()))
    _check(LIBC.unshare(CLONE_NEWNET))
    _write('/proc/sys/net/ipv4/ip_local_port_range', '%d %d' % tuple(PROCESS_RANGE))
    kept.extend([_listen('tcp', '0.0.0.0', 856), _listen('udp', '0.0.0.0', 31000), _listen('udp', '0.0.0.0', 45010)])
    return {'netns': os.stat('/proc/self/ns/net').st_ino, 'range': _port_range(),
            'sockets': [_inode(sock) for sock in kept]}


def _held_namespace(how):
    """A namespace no process is in: this child makes it, opens a listener there and moves back to its own; what
    else keeps it is ``how``: a bind mount of it (in a mount namespace of the child's own, so it ends with it),
    an fd open on it, or nothing but the socket; ``empty``: an fd open on it, and no listener."""
    def body(kept):
        _set_comm('pwt-wiring-' + how)
        if how == 'mount':
            _check(LIBC.unshare(CLONE_NEWNS))
            _check(LIBC.mount(b'none', b'/', None, MS_REC | MS_PRIVATE, None))
            _check(LIBC.mount(b'pwt-wiring', b'/mnt', b'tmpfs', 0, None))
        own = os.open('/proc/self/ns/net', os.O_RDONLY)
        _check(LIBC.unshare(CLONE_NEWNET))
        inode = os.stat('/proc/self/ns/net').st_ino
        port_range = _port_range()
        if how != 'empty':
            kept.append(_listen('tcp', '0.0.0.0', 856))
        if how == 'mount':
            open('/mnt/netns', 'w').close()
            _check(LIBC.mount(b'/proc/self/ns/net', b'/mnt/netns', None, MS_BIND, None))
        elif how in ('fd', 'empty'):
            kept.append(os.open('/proc/self/ns/net', os.O_RDONLY))
        _setns(own)
        os.close(own)
        return {'netns': inode, 'range': port_range, 'sockets': [_inode(sock) for sock in kept[:1] if how != 'empty']}
    return body


_ready_fd = []  # the write end of the ready pipe of the holder being forked
_cgroups = []  # the container cgroups this module made
SYS_EXIT = {'x86_64': 60, 'aarch64': 93}


def _zombie_held(kept):
    """A namespace only a socket keeps, held by a process whose main thread has exited (its leader a zombie, whose
    /proc/PID/fd lists nothing): a worker thread makes the namespace, opens the listener, moves back and reports."""
    import platform
    import threading
    import time

    _set_comm('pwt-wiring-zomb')
    ready_w = _ready_fd[0]
    leader = os.getpid()

    def worker():
        own = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
        _check(LIBC.unshare(CLONE_NEWNET))  # this thread only
        inode = os.stat('/proc/thread-self/ns/net').st_ino
        port_range = _port_range()
        kept.append(_listen('tcp', '0.0.0.0', 856))
        _setns(own)
        while True:
            with open('/proc/%d/stat' % leader) as handle:
                text = handle.read()
            if text[text.rindex(')') + 2:].split()[0] == 'Z':
                break
            time.sleep(0.001)
        os.write(ready_w, (json.dumps({'netns': inode, 'range': port_range, 'sockets': [_inode(kept[0])],
                                       'tid': threading.get_native_id()}) + '\n').encode())
        while True:
            time.sleep(60)

    threading.Thread(target=worker, daemon=True).start()
    LIBC.syscall(SYS_EXIT[platform.machine()], 0)  # exit(2) of this thread only, not exit_group


class World(object):
    """What the module made: this process's sockets in its own namespace, and the holders of the others."""


def _send_away(unix, socks):
    """Pass ``socks`` into a unix socket queue and close them here: in flight, no process holds them."""
    fds = [sock.fileno() for sock in socks]
    unix.sendmsg([b'x'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds).tobytes())])
    for sock in socks:
        sock.close()


@pytest.fixture(scope='module')
def world():
    import psutil  # noqa: F401  imported for the psutil backend before any test changes sys.platform

    made = World()
    made.holders = {}
    made.sockets = []
    home = os.open('/proc/self/ns/net', os.O_RDONLY)
    made.home = home
    try:
        cgroup = _container_cgroup()
        _cgroups[:] = [cgroup] if cgroup else []
        made.holders['process'] = _fork_holder(_in_process_namespace)
        for how in ('mount', 'fd', 'socket', 'empty'):
            made.holders[how] = _fork_holder(_held_namespace(how))
        made.holders['zombie'] = _fork_holder(_zombie_held)
        _check(LIBC.unshare(CLONE_NEWNET))
        made.netns = os.stat('/proc/self/ns/net').st_ino
        subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
        _write('/proc/sys/net/ipv4/ip_local_port_range', '%d %d' % tuple(HOST_RANGE))
        _write('/proc/sys/net/ipv4/ip_local_reserved_ports', '%d' % HOST_RESERVED)
        # (protocol, family, address, port, v6only as the kernel has it, ephemeral in HOST_RANGE, socket)
        spec = [
            ('tcp', 'ipv4', '0.0.0.0', 856, None, False),
            ('tcp', 'ipv6', '::', 856, True, False),
            ('tcp', 'ipv6', '::', 858, False, False),  # dual-stack
            ('tcp', 'ipv4', '0.0.0.0', 860, None, False),  # two of a SO_REUSEPORT group
            ('tcp', 'ipv4', '0.0.0.0', 860, None, False),
            ('udp', 'ipv4', '0.0.0.0', 5353, None, False),  # outside the ephemeral range
            ('udp', 'ipv4', '127.0.0.1', 45000, None, True),  # inside it: a client's, most likely
            ('udp', 'ipv6', '::', 45001, True, True),
            ('udp', 'ipv4', '0.0.0.0', HOST_RESERVED, None, False),  # inside it, but reserved
        ]
        made.mine = []
        for protocol, family, address, port, v6only, ephemeral in spec:
            sock = _listen(protocol, address, port, v6only if family == 'ipv6' else None, reuseport=port == 860)
            made.sockets.append(sock)
            made.mine.append((protocol, family, address, port, v6only, ephemeral, _inode(sock)))
        made.sockets.append(os.dup(made.sockets[5].fileno()))  # the same socket twice in this process
        client = socket.create_connection(('127.0.0.1', 856))  # connections are not listening sockets
        accepted, _peer = made.sockets[0].accept()
        udp_client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp_client.connect(('127.0.0.1', 5353))  # a connected UDP socket is a client
        made.sockets += [client, accepted, udp_client]
        # Two listeners no process holds: in flight in a unix socket queue (the kernel's, for the gather).
        pair = socket.socketpair()
        made.sockets += list(pair)
        flying = [_listen('tcp', '0.0.0.0', 900), _listen('udp', '::', 901, v6only=True)]
        made.flying = [('tcp', 'ipv4', '0.0.0.0', 900, None, False, _inode(flying[0])),
                       ('udp', 'ipv6', '::', 901, True, False, _inode(flying[1]))]
        _send_away(pair[0], flying)
        made.me = described(os.getpid())
        yield made
    finally:
        _setns(home)
        os.close(home)
        for sock in made.sockets:
            if isinstance(sock, int):
                os.close(sock)
            else:
                sock.close()
        for holder in made.holders.values():
            holder.stop()
        for cgroup in _cgroups:
            _remove_cgroup(cgroup)


# -- what every result must be: the shape, and the coverage consistent with the sockets ---------------------------

def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_shape(result, mode='host'):
    """The documented shape of a gather result, with each value's type; returns the coverage."""
    assert set(result) == RESULT_KEYS
    coverage = result['coverage']
    assert set(coverage) == COVERAGE_KEYS | ({'namespaces'} if mode == 'all' else set())
    for key in ('privileged', 'complete'):
        assert isinstance(coverage[key], bool)
    for key in ('sockets', 'processes_scanned', 'processes_unreadable'):
        assert _is_int(coverage[key])
    assert all(isinstance(text, str) for key in ('errors', 'notes', 'unowned_sockets') for text in coverage[key])
    assert coverage['complete'] is (coverage['errors'] == [])
    assert coverage['sockets'] == len(result['sockets'])
    for entry in result['sockets']:
        assert set(entry) == SOCKET_KEYS | ({'namespace'} if mode == 'all' else set())
        assert _is_int(entry['port']) and isinstance(entry['ephemeral'], bool)
        assert entry['v6only'] in ((True, False, None) if entry['family'] == 'ipv6' else (None,))
        for proc in entry['processes']:
            assert set(proc) == PROCESS_KEYS
    # The documented order: protocol, port, family, address, then inode.
    keys = [(e['protocol'], e['port'], e['family'], e['address'], e['inode'] or 0) for e in result['sockets']]
    assert keys == sorted(keys)
    # unowned_sockets: sorted, exactly the labels of the sockets no process holds.
    unowned = [entry for entry in result['sockets'] if not entry['processes']]
    assert coverage['unowned_sockets'] == sorted(gather.socket_label(entry) for entry in unowned)
    return coverage


def _expected_socket(item, backend, processes, port_range=None):
    protocol, family, address, port, v6only, _ephemeral, inode = item
    port_range = port_range or HOST_RANGE
    if backend in ('procfs', 'psutil') or family == 'ipv4':
        v6only = None  # /proc/net and psutil cannot tell v6only; IPv4 has none
    ephemeral = protocol == 'udp' and port_range[0] <= port <= port_range[1] and port != HOST_RESERVED
    return {'protocol': protocol, 'family': family, 'address': address, 'port': port, 'v6only': v6only,
            'ephemeral': ephemeral, 'inode': None if backend == 'psutil' else inode, 'processes': processes}


def _sorted(entries):
    return sorted(entries, key=lambda e: (e['protocol'], e['port'], e['family'], e['address'], e['inode'] or 0))


def _expected_host_sockets(world, backend, protocols=('tcp', 'udp'), me=None):
    me = me or world.me
    items = [item for item in world.mine + world.flying if item[0] in protocols]
    if backend == 'psutil':  # psutil cannot tell sockets apart by inode: a SO_REUSEPORT group is one
        merged = {}
        for item in items:
            merged.setdefault(item[:4], item)
        items = list(merged.values())
    flying = set(item[6] for item in world.flying)
    return _sorted(_expected_socket(item, backend, [] if item[6] in flying else [me]) for item in items)


def _sources(backend, protocols=('tcp', 'udp')):
    source = 'netlink' if backend == 'auto' else backend
    return dict((table, source) for table in ALL_TABLES if table.split('/', maxsplit=1)[0] in protocols)


def _unowned_labels(world, protocols=('tcp', 'udp')):
    return sorted('%s %s:%d' % (item[0], '[%s]' % item[2] if item[1] == 'ipv6' else item[2], item[3])
                  for item in world.flying if item[0] in protocols)


def _kernel_note(labels):
    return ('%d sockets have no owning process though every process was looked in: kernel sockets, sockets only in '
            'flight in a unix socket queue (passed, not yet received), or owners that exited during the gather: %s'
            % (len(labels), ', '.join(labels)))


REFUSED_GAPS = refused_gaps(refused_here())  # the machine's own: a sandbox's init, say
OWNER_SEARCH_HOST = {'exhaustive': True, 'gaps': [], 'pid_namespace': 'host', 'hidepid': None}  # nothing unseen
OWNER_SEARCH_ROOT = dict(OWNER_SEARCH_HOST, exhaustive=not REFUSED_GAPS, gaps=REFUSED_GAPS)  # a root gather here


def _unowned_said(labels, gaps=REFUSED_GAPS):
    """``(errors, notes, unowned_case)`` a gather must give for its unowned sockets ``labels`` given the ``gaps`` of
    its owner search: kernel sockets (a note) when every process was looked in, else an error naming them."""
    if not labels:
        return [], (['the processes listed for each socket may miss holders that could not be looked in (%s)'
                     % '; '.join(gaps)] if gaps else []), 'none'
    if gaps:
        return (['%d sockets show no owning process, and not every process could be looked in (%s): %s'
                 % (len(labels), '; '.join(gaps), ', '.join(labels[:gather.MAX_NAMED_SOCKETS]) + (
                     ' and %d more (coverage.unowned_sockets)' % (len(labels) - gather.MAX_NAMED_SOCKETS)
                     if len(labels) > gather.MAX_NAMED_SOCKETS else ''))], [], 'not_looked_for')
    return [], [_kernel_note(labels)], 'kernel'


# -- rule: every backend finds exactly this process's listeners, with their inode, v6only, range and owner --------

@pytest.mark.parametrize('backend', ['auto', 'netlink', 'procfs', 'psutil'])
def test_every_backend_finds_exactly_the_listeners_of_its_namespace(world, backend):
    result = gather_sockets_only(backend=backend)
    coverage = _check_shape(result)
    assert result['sockets'] == _expected_host_sockets(world, backend)
    labels = _unowned_labels(world)
    walked = coverage.pop('processes_scanned')
    errors, notes, case = _unowned_said(labels)
    assert coverage == {
        'backend': backend, 'sources': _sources(backend), 'privileged': True, 'complete': not errors,
        'sockets': len(result['sockets']), 'unowned_sockets': labels, 'processes_unreadable': 0,
        'ephemeral_port_range': HOST_RANGE, 'errors': errors, 'notes': notes,
        'owner_search': OWNER_SEARCH_ROOT, 'unowned_case': case,
    }
    # psutil walks no /proc itself; the others walk every process (this one at least).
    assert walked == 0 if backend == 'psutil' else walked >= len(os.listdir('/proc/self/task'))


@pytest.mark.parametrize('backend', ['auto', 'psutil'])
def test_protocols_udp_gathers_no_tcp_and_reads_only_udp_tables(world, backend):
    result = gather_sockets_only(backend=backend, protocols=['udp'])
    coverage = _check_shape(result)
    assert result['sockets'] == _expected_host_sockets(world, backend, protocols=('udp',))
    assert coverage['sources'] == _sources(backend, ('udp',))
    assert coverage['unowned_sockets'] == _unowned_labels(world, ('udp',))
    assert coverage['errors'] == _unowned_said(_unowned_labels(world, ('udp',)))[0]


def test_protocols_are_taken_in_their_documented_order_whatever_the_order_asked(world):
    result = gather_sockets_only(protocols=['udp', 'tcp', 'udp'])
    _check_shape(result)
    assert result['sockets'] == _expected_host_sockets(world, 'auto')
    assert list(result['coverage']['sources']) == list(ALL_TABLES)


# -- rule: namespaces=all reads every namespace, however it is kept alive, and tags each socket with it -----------

def _mine(world):
    """{netns inode: holder name} of the namespaces this module made (the others are the machine's)."""
    found = dict((holder.info['netns'], name) for name, holder in world.holders.items())
    found[world.netns] = 'host'
    return found


def _foreign(text, mine):
    """Whether a note or error is about a namespace this module did not make (another test's, the machine's)."""
    words = text.split()
    for index, word in enumerate(words[:-2]):
        if word == 'namespace' and words[index + 1].rstrip(':').isdigit():
            return int(words[index + 1].rstrip(':')) not in mine
    return False


def _gather_all(world, backend='auto', protocols=('tcp', 'udp'), errors=()):
    """A namespaces=all gather checked whole where it can be: ``errors`` are those it must add about the namespaces
    this module made, after the one counting processes whose namespace even root may not ask."""
    result = gather_sockets_only(backend=backend, protocols=list(protocols), namespaces='all')
    coverage = _check_shape(result, mode='all')
    summary = coverage['namespaces']
    assert set(summary) == {'mode', 'scanned', 'unreadable', 'vanished'} and summary['mode'] == 'all'
    scanned = summary['scanned']
    inodes = [item['inode'] for item in scanned]
    assert len(inodes) == len(set(inodes))  # each namespace read once
    assert [item['host'] for item in scanned] == [True] + [False] * (len(scanned) - 1)  # the gather's own first
    for item in scanned:
        assert set(item) == SCANNED_KEYS
        assert _is_int(item['inode']) and _is_int(item['sockets'])
        assert item['sockets'] == sum(1 for entry in result['sockets'] if entry['namespace']['inode'] == item['inode'])
    for item in summary['unreadable']:
        assert set(item) == {'inode', 'pid', 'reason'}
    for item in summary['vanished']:
        assert set(item) == {'inode', 'pid'}
    by_inode = dict((item['inode'], item) for item in scanned)
    for entry in result['sockets']:
        assert entry['namespace'] == dict((key, by_inode[entry['namespace']['inode']][key]) for key in NAMESPACE_KEYS)
    mine = _mine(world)
    denied = _netns_denied()
    if errors is not None:
        assert [error for error in coverage['errors'] if not _foreign(error, mine)] == (
            ['namespaces=all: the network namespace of %d processes could not be read; a namespace only they are in is '
             'missing' % denied] if denied else []) + list(errors) + _unowned_said(coverage['unowned_sockets'])[0]
    return result, coverage, by_inode


def _netns_denied():
    """How many processes even root may not ask their network namespace (a supervisor in a user namespace of its
    own, say): the gather must count them in an error."""
    denied = 0
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                os.readlink('/proc/%s/ns/net' % name)
            except PermissionError:
                denied += 1
            except OSError:
                pass
    return denied


def _in(result, netns):
    return [dict((key, value) for key, value in entry.items() if key != 'namespace') for entry in result['sockets']
            if entry['namespace']['inode'] == netns]


def _held_items(holder):
    return [('tcp', 'ipv4', '0.0.0.0', 856, None, False, holder.info['sockets'][0])]


@pytest.mark.parametrize('backend', ['auto', 'procfs'])
def test_all_reads_each_namespace_however_it_is_kept_and_names_the_owners(world, backend):
    result, coverage, by_inode = _gather_all(world, backend)
    sources = _sources(backend)
    container = gather_namespaces.describe_container(os.getpid(), gather_namespaces.ContainerNames())
    assert coverage['namespaces']['scanned'][0] == {
        'inode': world.netns, 'host': True, 'pid': os.getpid(), 'container': container,
        'sockets': len(world.mine) + len(world.flying), 'sources': sources, 'ephemeral_port_range': HOST_RANGE}
    assert coverage['ephemeral_port_range'] == HOST_RANGE
    assert _in(result, world.netns) == _expected_host_sockets(world, backend)
    # A namespace a process is in: found through the process, read in its own ephemeral range.
    holder = world.holders['process']
    netns = holder.info['netns']
    assert holder.info['range'] == PROCESS_RANGE
    if _cgroups:  # its container named from its cgroup
        assert by_inode[netns]['container']['kind'] == 'docker'
        assert by_inode[netns]['container']['id'] == _cgroups[0].rpartition('docker-')[2][:-len('.scope')]
    assert by_inode[netns] == {
        'inode': netns, 'host': False, 'pid': holder.pid,
        'container': gather_namespaces.describe_container(holder.pid, gather_namespaces.ContainerNames()),
        'sockets': 3, 'sources': sources, 'ephemeral_port_range': PROCESS_RANGE}
    items = [('tcp', 'ipv4', '0.0.0.0', 856, None, False), ('udp', 'ipv4', '0.0.0.0', 31000, None, True),
             ('udp', 'ipv4', '0.0.0.0', 45010, None, False)]
    assert _in(result, netns) == _sorted(
        _expected_socket(item + (inode,), backend, [described(holder.pid)], PROCESS_RANGE)
        for item, inode in zip(items, holder.info['sockets']))
    # No process in them: kept by a bind mount, an fd on it, or only by the socket a process outside holds.
    for how in ('mount', 'fd', 'socket', 'zombie'):
        holder = world.holders[how]
        netns = holder.info['netns']
        assert by_inode[netns] == {'inode': netns, 'host': False, 'pid': None, 'container': None, 'sockets': 1,
                                   'sources': sources, 'ephemeral_port_range': holder.info['range']}, how
        assert _in(result, netns) == [_expected_socket(_held_items(holder)[0], backend, [described(holder.pid)],
                                                       holder.info['range'])], how
    # Kept only by an fd on it, with no socket at all: read (through that fd), and empty.
    holder = world.holders['empty']
    assert by_inode[holder.info['netns']] == {'inode': holder.info['netns'], 'host': False, 'pid': None, 'container': None,
                                              'sockets': 0, 'sources': sources, 'ephemeral_port_range': holder.info['range']}
    mine = _mine(world)
    notes = [note for note in coverage['notes'] if not _foreign(note, mine)]
    assert notes == _unowned_said(coverage['unowned_sockets'])[1]
    assert set(_unowned_labels(world)) <= set(coverage['unowned_sockets'])
    assert coverage['privileged'] is True and coverage['backend'] == backend


def test_all_reads_a_namespace_only_the_socket_of_a_process_with_a_zombie_leader_keeps(world):
    """A listener in a namespace no process is in, held by a process whose main thread exited: the fd walk meets
    the socket through the live thread; asking the socket's namespace must go through that thread, not miss it."""
    result, _coverage, by_inode = _gather_all(world)
    holder = world.holders['zombie']
    netns = holder.info['netns']
    assert by_inode.get(netns) == {'inode': netns, 'host': False, 'pid': None, 'container': None, 'sockets': 1,
                                   'sources': _sources('auto'), 'ephemeral_port_range': holder.info['range']}
    # Its owner is the process (the leader's pid), not the thread the walk read the fd through.
    assert _in(result, netns) == [_expected_socket(_held_items(holder)[0], 'auto', [described(holder.pid)],
                                                   holder.info['range'])]


def test_all_with_udp_reads_only_udp_tables_in_every_namespace(world):
    result, coverage, by_inode = _gather_all(world, protocols=('udp',))
    assert set(entry['protocol'] for entry in result['sockets']) == {'udp'}
    for item in coverage['namespaces']['scanned']:
        assert item['sources'] == _sources('auto', ('udp',))
    assert by_inode[world.holders['process'].info['netns']]['sockets'] == 2
    for how in ('mount', 'fd', 'socket', 'zombie'):  # their only socket is TCP: they are still read, and hold nothing
        assert by_inode[world.holders[how].info['netns']]['sockets'] == 0


def test_psutil_cannot_read_other_namespaces_and_says_so(world):
    with pytest.raises(gather.GatherError) as caught:
        gather_sockets_only(backend='psutil', namespaces='all')
    assert 'psutil sees only its own' in str(caught.value)


# -- rule: unprivileged, the gather says what it could not see (and never calls itself complete) -----------------

class _Nobody(object):
    """This process with effective uid nobody (the real and saved uid stay root, to come back); dumpable, so it can
    read its own /proc entries as a process of that user can."""

    def __enter__(self):
        self.uid = pwd.getpwnam('nobody').pw_uid
        os.setresuid(-1, self.uid, -1)
        LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        return self

    def __exit__(self, *exc):
        os.setresuid(-1, 0, -1)
        LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


@pytest.mark.parametrize('backend', ['auto', 'procfs'])
def test_unprivileged_gather_is_partial_and_says_which_processes_it_could_not_read(world, backend):
    with _Nobody():
        me = described(os.getpid())
        result = gather_sockets_only(backend=backend)
    coverage = _check_shape(result)
    assert me['user'] == 'nobody'
    assert result['sockets'] == _expected_host_sockets(world, backend, me=me)
    denied = coverage['processes_unreadable']
    assert denied > 0 and coverage['processes_scanned'] >= 1  # its own, at least
    assert coverage['errors'] == ['%d processes could not be inspected (not running as root); their sockets show no '
                                  'processes' % denied]
    assert coverage['notes'] == [NOT_ROOT_NOTE]
    assert coverage['privileged'] is False and coverage['complete'] is False
    assert coverage['owner_search'] == dict(OWNER_SEARCH_HOST, exhaustive=False)
    assert coverage['unowned_case'] == 'not_looked_for'
    assert coverage['ephemeral_port_range'] == HOST_RANGE and coverage['sources'] == _sources(backend)


def test_unprivileged_psutil_says_it_cannot_name_other_users_processes(world):
    with _Nobody():
        me = described(os.getpid())
        result = gather_sockets_only(backend='psutil')
    coverage = _check_shape(result)
    assert result['sockets'] == _expected_host_sockets(world, 'psutil', me=me)
    assert coverage['errors'] == ['not running as root: psutil cannot name the processes of other users; '
                                  'their sockets show no processes']
    assert coverage['notes'] == [NOT_ROOT_NOTE]
    assert coverage['privileged'] is False and coverage['complete'] is False
    assert coverage['processes_scanned'] == 0 and coverage['processes_unreadable'] == 0
    assert coverage['owner_search'] == dict(OWNER_SEARCH_HOST, exhaustive=False)


def test_unprivileged_all_reads_only_its_own_namespace(world):
    with _Nobody():
        me = described(os.getpid())
        result = gather_sockets_only(namespaces='all')
    coverage = _check_shape(result, mode='all')
    host = {'inode': world.netns, 'host': True, 'pid': os.getpid(),
            'container': gather_namespaces.describe_container(os.getpid(), gather_namespaces.ContainerNames())}
    assert coverage['namespaces'] == {
        'mode': 'all', 'unreadable': [], 'vanished': [],
        'scanned': [dict(host, sockets=len(world.mine) + len(world.flying), sources=_sources('auto'),
                         ephemeral_port_range=HOST_RANGE)]}
    assert result['sockets'] == [dict(entry, namespace=host) for entry in _expected_host_sockets(world, 'auto', me=me)]
    denied = coverage['processes_unreadable']
    assert coverage['errors'] == [
        'namespaces=all: not running as root, so only the network namespace the gather runs in was read; other '
        'namespaces can be neither listed nor entered (use become: true)',
        '%d processes could not be inspected (not running as root); their sockets show no processes' % denied]
    assert coverage['notes'] == [NOT_ROOT_NOTE]
    assert coverage['privileged'] is False


# -- rule: a table one backend cannot read falls back (a note); the last backend failing is an error --------------

def _netlink_fails(monkeypatch, tables):
    real = gather_netlink.dump_listening

    def dump(family, protocol):
        if '%s/%s' % (protocol, family) in tables:
            raise gather_netlink.NetlinkError('sock_diag refused')  # a kernel without udp_diag, say
        return real(family, protocol)

    monkeypatch.setattr(gather_netlink, 'dump_listening', dump)


def test_auto_falls_back_to_procfs_for_a_table_netlink_cannot_read(world, monkeypatch):
    _netlink_fails(monkeypatch, {'udp/ipv6'})
    result = gather_sockets_only()
    coverage = _check_shape(result)
    assert coverage['sources'] == dict(_sources('auto'), **{'udp/ipv6': 'procfs'})
    errors, notes, _case = _unowned_said(_unowned_labels(world))
    assert coverage['errors'] == errors and coverage['complete'] is not errors
    assert coverage['notes'] == ['udp/ipv6: netlink backend failed (sock_diag refused); fell back'] + notes
    expected = _expected_host_sockets(world, 'auto')
    for entry in expected:
        if entry['protocol'] == 'udp' and entry['family'] == 'ipv6':
            entry['v6only'] = None  # read from /proc/net
    assert result['sockets'] == expected


def test_netlink_alone_failing_a_table_is_an_error_and_its_sockets_are_missing(world, monkeypatch):
    _netlink_fails(monkeypatch, {'tcp/ipv6'})
    result = gather_sockets_only(backend='netlink')
    coverage = _check_shape(result)
    assert coverage['sources'] == dict((table, 'netlink') for table in ALL_TABLES if table != 'tcp/ipv6')
    assert coverage['errors'] == ['tcp/ipv6: netlink backend: sock_diag refused'] + _unowned_said(
        coverage['unowned_sockets'])[0]
    assert coverage['complete'] is False
    assert result['sockets'] == [entry for entry in _expected_host_sockets(world, 'netlink')
                                 if (entry['protocol'], entry['family']) != ('tcp', 'ipv6')]


def test_no_table_read_at_all_raises_naming_each_failure(world, monkeypatch):
    _netlink_fails(monkeypatch, set(ALL_TABLES))
    with pytest.raises(gather.GatherError) as caught:
        gather_sockets_only(backend='netlink', protocols=['tcp'])
    assert str(caught.value) == ('no socket table could be read: tcp/ipv4: netlink backend: sock_diag refused; '
                                 'tcp/ipv6: netlink backend: sock_diag refused')


def test_a_kernel_without_ipv6_reads_only_the_ipv4_tables_and_says_so(world, monkeypatch):
    monkeypatch.setattr(gather, '_ipv6_available', lambda proc_net='/proc/net': False)  # booted with ipv6.disable=1
    result = gather_sockets_only(backend='procfs')
    coverage = _check_shape(result)
    assert coverage['sources'] == {'tcp/ipv4': 'procfs', 'udp/ipv4': 'procfs'}
    assert coverage['notes'][0] == 'IPv6 is not enabled on this host; only IPv4 tables exist'
    assert coverage['errors'] == _unowned_said(coverage['unowned_sockets'])[0]
    assert coverage['unowned_sockets'] == [label for label in _unowned_labels(world) if '[' not in label]
    assert result['sockets'] == [entry for entry in _expected_host_sockets(world, 'procfs') if entry['family'] == 'ipv4']


# -- rule: where the platform is not Linux, psutil is the only backend and nothing of /proc is read --------------

def test_off_linux_auto_is_psutil_and_the_linux_backends_are_refused(world, monkeypatch):
    monkeypatch.setattr(gather.sys, 'platform', 'freebsd14')
    for backend in ('netlink', 'procfs'):
        with pytest.raises(gather.GatherError) as caught:
            gather_sockets_only(backend=backend)
        assert str(caught.value) == 'the %s backend works only on Linux; use backend=psutil or auto' % backend
    result = gather_sockets_only()
    monkeypatch.undo()
    coverage = _check_shape(result)
    me = dict(world.me, unit=None, start_time=None)  # what psutil tells of a process
    expected = _expected_host_sockets(world, 'psutil', me=me)
    for entry in expected:
        entry['ephemeral'] = False  # no range known off Linux: never guessed away
    assert result['sockets'] == expected
    assert coverage['sources'] == {'tcp': 'psutil', 'udp': 'psutil'}
    assert coverage['backend'] == 'psutil' and coverage['ephemeral_port_range'] is None
    assert coverage['owner_search'] == {'exhaustive': True, 'gaps': [], 'pid_namespace': None, 'hidepid': None}


def test_without_geteuid_the_gather_never_assumes_root(world, monkeypatch):
    monkeypatch.delattr(os, 'geteuid')
    result = gather_sockets_only(backend='procfs')
    monkeypatch.undo()
    coverage = _check_shape(result)
    assert coverage['privileged'] is False
    assert coverage['notes'][0] == NOT_ROOT_NOTE


def test_describe_with_psutil_names_this_process_and_none_for_a_gone_one(world):
    assert gather._describe_with_psutil(os.getpid()) == dict(world.me, unit=None, start_time=None)
    holder = _fork_holder(lambda kept: {})
    holder.stop()
    assert gather._describe_with_psutil(holder.pid) is None


# -- rule: the psutil backend fails closed: no psutil, or psutil refused, is an error, never an empty host --------

def test_psutil_missing_is_said_not_an_empty_host(world, monkeypatch):
    monkeypatch.setitem(sys.modules, 'psutil', None)  # what `import psutil` meets where it is not installed
    with pytest.raises(gather.PsutilMissing) as caught:
        gather_sockets_only(backend='psutil')
    assert str(caught.value) == 'the psutil backend needs the psutil Python library on the managed host'


@pytest.mark.parametrize('error, expected', [
    ('denied', 'psutil could not list sockets (access denied: (pid=1)); run with become'),
    ('other', 'psutil could not list sockets: sysctl failed'),
])
def test_psutil_refusing_to_list_sockets_is_a_gather_error(world, monkeypatch, error, expected):
    import psutil

    def refuse(kind='inet'):
        # What psutil raises where the platform refuses (macOS without root, a BSD sysctl error).
        raise psutil.AccessDenied(pid=1) if error == 'denied' else RuntimeError('sysctl failed')

    monkeypatch.setattr(psutil, 'net_connections', refuse)
    with pytest.raises(gather.GatherError) as caught:
        gather_sockets_only(backend='psutil')
    assert str(caught.value) == expected


# -- rule: a namespace that cannot be entered is read through /proc/PID/net where a process is in it (a note: its
#    range unknown), and is an error where none is or with netlink, which can only read from inside ------------------

def _refuse_setns(monkeypatch):
    def refuse(fd, nstype=gather_namespaces.CLONE_NEWNET):
        raise PermissionError(1, 'Operation not permitted')  # a seccomp filter or an LSM refusing setns(2)

    monkeypatch.setattr(gather_namespaces, 'setns', refuse)


REFUSED = 'cannot enter it: setns: Operation not permitted'


def _fd_kept(world):
    """The holders of the namespaces only fds keep (an nsfs fd, a socket), in the order they are read: by inode."""
    return sorted([world.holders[name] for name in ('fd', 'socket', 'zombie', 'empty')], key=lambda h: h.info['netns'])


@pytest.mark.parametrize('backend', ['auto', 'procfs', 'netlink'])
def test_refused_setns_reads_proc_pid_net_where_a_process_is_in_the_namespace(world, monkeypatch, backend):
    _refuse_setns(monkeypatch)
    holder = world.holders['process']
    netns = holder.info['netns']
    # In the order read: the namespaces processes are in or mounts keep (by inode), then those only fds keep.
    failed = sorted([world.holders['mount']] + ([holder] if backend == 'netlink' else []), key=lambda h: h.info['netns'])
    failed += _fd_kept(world)
    pids = dict((other.info['netns'], other.pid if other is holder else None) for other in failed)
    result, coverage, by_inode = _gather_all(world, backend, errors=[
        'network namespace %d (pid %s) could not be read: %s' % (other.info['netns'], pids[other.info['netns']], REFUSED)
        for other in failed])
    unreadable = dict((item['inode'], item) for item in coverage['namespaces']['unreadable'])
    for inode, pid in pids.items():
        assert inode not in by_inode and unreadable[inode] == {'inode': inode, 'pid': pid, 'reason': REFUSED}
    assert coverage['complete'] is False
    if backend == 'netlink':
        return
    assert netns not in unreadable
    assert by_inode[netns] == {
        'inode': netns, 'host': False, 'pid': holder.pid,
        'container': gather_namespaces.describe_container(holder.pid, gather_namespaces.ContainerNames()),
        'sockets': 3, 'sources': _sources('procfs'), 'ephemeral_port_range': None}
    items = [('tcp', 'ipv4', '0.0.0.0', 856), ('udp', 'ipv4', '0.0.0.0', 31000), ('udp', 'ipv4', '0.0.0.0', 45010)]
    assert _in(result, netns) == _sorted(
        dict(zip(('protocol', 'family', 'address', 'port'), item), v6only=None, ephemeral=False, inode=inode,
             processes=[described(holder.pid)]) for item, inode in zip(items, holder.info['sockets']))
    assert ('network namespace %d: %s; read /proc/%d/net instead, so its ephemeral port range is unknown'
            % (netns, REFUSED, holder.pid)) in coverage['notes']


def _read_holders(world):
    return [world.holders[name] for name in ('process', 'mount', 'fd', 'socket', 'zombie', 'empty')]


def _netlink_fails_inside(monkeypatch):
    """netlink refused in every namespace but the gather's own (read from the calling thread, the others each in
    the visitor thread): a kernel without sock_diag there."""
    import threading

    real = gather_netlink.dump_listening

    def dump(family, protocol):
        if threading.current_thread() is not threading.main_thread():
            raise gather_netlink.NetlinkError('sock_diag refused')
        return real(family, protocol)

    monkeypatch.setattr(gather_netlink, 'dump_listening', dump)


def test_a_namespace_whose_tables_cannot_be_read_is_unreadable_and_auto_falls_back_inside_it(world, monkeypatch):
    _netlink_fails_inside(monkeypatch)
    reason = 'no socket table could be read: ' + '; '.join(
        '%s: netlink backend: sock_diag refused' % table for table in ALL_TABLES)
    holders = world.holders
    failed = sorted([holders['process'], holders['mount']], key=lambda h: h.info['netns'])
    failed += _fd_kept(world)
    result, coverage, by_inode = _gather_all(world, 'netlink', errors=[
        'network namespace %d (pid %s) could not be read: %s' % (
            other.info['netns'], other.pid if other is holders['process'] else None, reason) for other in failed])
    for holder in _read_holders(world):
        inode = holder.info['netns']
        assert inode not in by_inode
        assert {'inode': inode, 'pid': holder.pid if holder is world.holders['process'] else None,
                'reason': reason} in coverage['namespaces']['unreadable']
    assert by_inode[world.netns]['sources'] == _sources('netlink')
    result, coverage, by_inode = _gather_all(world, 'auto')
    for holder in _read_holders(world):
        inode = holder.info['netns']
        assert by_inode[inode]['sources'] == _sources('procfs')
        assert ['network namespace %d: %s: netlink backend failed (sock_diag refused); fell back' % (inode, table)
                for table in ALL_TABLES] == [note for note in coverage['notes'] if note.startswith(
                    'network namespace %d:' % inode)]
    netns = world.holders['process'].info['netns']
    assert [entry['port'] for entry in _in(result, netns)] == [856, 31000, 45010]
    assert by_inode[netns]['ephemeral_port_range'] == PROCESS_RANGE


# -- rule: what namespaces=all could not list is an error; a /proc that lists only a container's processes a note --

def _scan(world, view=None):
    coverage = {'errors': [], 'notes': [], 'sources': _sources('auto')}
    scans = gather._scan_namespaces('auto', ('tcp', 'udp'), [], coverage, True, view)
    mine = _mine(world)
    return scans, coverage, [note for note in coverage['notes'] if not _foreign(note, mine)]


PRIVATE_PID_NOTE = ('namespaces=all: the gather runs in a private PID namespace (or cannot tell which one /proc lists), '
                    'so only the network namespaces its processes are in, mount or keep open were read; those of '
                    'processes outside it are not seen')


@pytest.mark.parametrize('pid_namespace, noted', [('private', True), ('unknown', True), ('host', False), (None, False)])
def test_all_notes_when_proc_lists_only_the_processes_of_a_private_pid_namespace(world, pid_namespace, noted):
    view = None if pid_namespace is None else gather_owners.ProcView(pid_namespace, None, True, False)
    scans, _coverage, notes = _scan(world, view)
    assert notes == ([PRIVATE_PID_NOTE] if noted else [])
    assert scans[0][0] == {'inode': world.netns, 'host': True, 'pid': os.getpid(), 'container': gather_namespaces.
                           describe_container(os.getpid(), gather_namespaces.ContainerNames())}
    assert scans[0][1] is None and scans[0][2] == []
    assert world.holders['process'].info['netns'] in [entry['inode'] for entry, _range, _found in scans]


def test_all_that_cannot_list_the_processes_namespaces_reads_only_its_own_and_says_so(world, monkeypatch):
    def unlistable(proc='/proc'):
        raise PermissionError(13, 'Permission denied')  # /proc itself unreadable (an LSM, a broken mount)

    monkeypatch.setattr(gather_namespaces, 'discover_namespaces', unlistable)
    scans, coverage, _notes = _scan(world)
    assert coverage['errors'] == ['namespaces=all: cannot list the network namespaces of the processes under /proc: '
                                  '[Errno 13] Permission denied; only the network namespace the gather runs in was read']
    host = {'inode': world.netns, 'host': True, 'pid': os.getpid(),
            'container': gather_namespaces.describe_container(os.getpid(), gather_namespaces.ContainerNames())}
    assert scans == [(host, None, [])]
    assert coverage['namespaces'] == {'mode': 'all', 'unreadable': [], 'vanished': [],
                                      'scanned': [dict(host, sockets=0, sources=_sources('auto'), ephemeral_port_range=None)]}


def test_all_counts_the_mount_namespaces_whose_mounts_it_could_not_read(world, monkeypatch):
    real = gather_namespaces.mounted_namespaces
    monkeypatch.setattr(gather_namespaces, 'mounted_namespaces', lambda discovery: (real(discovery)[0], 2))  # EACCES twice
    _scans, coverage, _notes = _scan(world)
    assert ('namespaces=all: the mounts of 2 mount namespaces could not be read; a network namespace only mounted there '
            '(ip netns, a bind mount) may be missed') in coverage['errors']


def test_a_walk_that_cannot_open_proc_is_an_error_and_no_socket_is_owned(world, monkeypatch):
    def unwalkable(wanted, proc='/proc', workers=None, collect=False):
        raise FileNotFoundError(2, 'No such file or directory', '/proc')  # /proc not mounted

    monkeypatch.setattr(gather_owners, 'walk_fds', unwalkable)
    result = gather_sockets_only()
    coverage = _check_shape(result)
    assert coverage['errors'] == ["cannot walk /proc for socket owners: [Errno 2] No such file or directory: '/proc'"]
    assert all(entry['processes'] == [] for entry in result['sockets'])
    assert coverage['complete'] is False and coverage['owner_search']['exhaustive'] is False
    assert coverage['processes_scanned'] == 0 and coverage['unowned_case'] == 'not_looked_for'
    assert len(coverage['unowned_sockets']) == len(world.mine) + len(world.flying)


# -- rule: the host entry is the gather's own namespace, named by its first process, its container said -----------

class _InContainer(object):
    """This process in a docker-shaped cgroup for a while (and back where it was)."""

    def __enter__(self):
        self.path = _container_cgroup()
        with open('/proc/self/cgroup') as handle:
            self.home = next(line.partition('0::')[2].strip() for line in handle if line.startswith('0::'))
        if self.path is not None:
            _write(os.path.join(self.path, 'cgroup.procs'), str(os.getpid()))
        return self

    def __exit__(self, *exc):
        if self.path is not None:
            _write(os.path.join(CGROUP_ROOT + self.home, 'cgroup.procs'), str(os.getpid()))
            _remove_cgroup(self.path)


def test_the_host_entry_names_the_container_the_gather_runs_in(world):
    with _InContainer() as placed:
        if placed.path is None:
            pytest.skip('no writable cgroup v2 hierarchy to make a container cgroup in')
        container = gather_namespaces.describe_container(os.getpid(), gather_namespaces.ContainerNames())
        scans, _coverage, _notes = _scan(world)
    assert container['kind'] == 'docker' and container['id'] == placed.path.rpartition('docker-')[2][:-len('.scope')]
    assert scans[0][0] == {'inode': world.netns, 'host': True, 'pid': os.getpid(), 'container': container}


def test_the_host_entry_is_named_by_the_first_process_of_the_namespace(world):
    """Gathered from the machine's namespace, the host entry's pid is its lowest pid, not the gather's."""
    here = os.open('/proc/self/ns/net', os.O_RDONLY)
    _setns(world.home)
    try:
        machine = os.fstat(world.home).st_ino
        pids = []
        for name in os.listdir('/proc'):
            try:
                if name.isdigit() and os.stat('/proc/%s/ns/net' % name).st_ino == machine:
                    pids.append(int(name))
            except OSError:
                pass
        coverage = {'errors': [], 'notes': [], 'sources': _sources('auto')}
        scans = gather._scan_namespaces('auto', ('tcp',), [], coverage, True)
    finally:
        _setns(here)
        os.close(here)
    assert scans[0][0]['inode'] == machine and scans[0][0]['pid'] == min(pids) != os.getpid()
    assert world.holders['process'].info['netns'] in [entry['inode'] for entry, _range, _found in scans[1:]]


# -- rule: the namespace of a socket that cannot be asked is an error; one gone meanwhile is skipped --------------

def test_a_socket_whose_namespace_cannot_be_asked_is_an_error_and_the_others_are_still_asked(world):
    """A pid gone is skipped (nothing left holds its socket); an fd that is no socket any more (closed and reused
    between the walk and the question) cannot be asked: an error naming it, and the next socket is still asked."""
    dead = _fork_holder(lambda kept: {})
    dead.stop()
    read_end, write_end = os.pipe()
    sock = world.sockets[0]
    link = 'socket:[%d]' % _inode(sock)
    coverage = {'errors': []}
    try:
        found = gather._socket_namespaces([('socket:[1]', dead.pid, 3), ('socket:[2]', os.getpid(), read_end),
                                           (link, os.getpid(), sock.fileno())], set(), coverage)
        assert list(found) == [world.netns]
        for fd in found.values():
            os.close(fd)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert coverage['errors'] == ['namespaces=all: 1 sockets could not be asked which network namespace they belong to, '
                                  'so a namespace only they keep alive may be missed: socket:[2] (pid %d): '
                                  'Inappropriate ioctl for device' % os.getpid()]


def test_exactly_the_budget_of_sockets_is_asked(world, monkeypatch):
    monkeypatch.setattr(gather, 'SOCKET_NAMESPACE_BUDGET', 1)
    coverage = {'errors': []}
    sock = world.sockets[0]
    found = gather._socket_namespaces([('socket:[%d]' % _inode(sock), os.getpid(), sock.fileno())], set(), coverage)
    assert list(found) == [world.netns] and coverage['errors'] == []
    for fd in found.values():
        os.close(fd)


# -- rule: processes the walk was denied as root are an error saying why (hidepid, an LSM, missing capabilities) ---

def test_processes_denied_to_root_are_an_error_that_does_not_blame_root(world, monkeypatch):
    real = gather_owners.walk_fds

    def denied(*args, **kwargs):
        walk = real(*args, **kwargs)
        walk.processes_denied += 2  # what an LSM refusing root two processes' fds does to the walk
        return walk

    monkeypatch.setattr(gather_owners, 'walk_fds', denied)
    result = gather_sockets_only()
    coverage = _check_shape(result)
    assert coverage['errors'] == ['2 processes could not be inspected (access denied (hidepid, LSM or missing '
                                  'capabilities)); their sockets show no processes'] + _unowned_said(
                                      _unowned_labels(world))[0]
    assert coverage['processes_unreadable'] == 2 and coverage['complete'] is False
    assert coverage['owner_search']['exhaustive'] is False and coverage['unowned_case'] == 'not_looked_for'


def test_a_walk_that_could_read_no_process_at_all_says_so(world, monkeypatch):
    real = gather_owners.walk_fds

    def none_readable(*args, **kwargs):
        walk = real(*args, **kwargs)
        # What an LSM refusing every fd directory does (a process may always read its own, so it cannot be made here).
        walk.processes_denied, walk.processes_seen = walk.processes_seen, 0
        walk.owners.clear()
        return walk

    monkeypatch.setattr(gather_owners, 'walk_fds', none_readable)
    result = gather_sockets_only(backend='procfs')
    coverage = _check_shape(result)
    assert coverage['errors'] == ['no process file descriptors could be read under /proc'] + _unowned_said(
        coverage['unowned_sockets'])[0]
    assert coverage['processes_scanned'] == 0 and coverage['processes_unreadable'] > 0
    assert all(entry['processes'] == [] for entry in result['sockets']) and coverage['complete'] is False


# -- rule: a gather in a private PID namespace (a container) says what it cannot see --------------------------------

def test_a_gather_whose_proc_lists_a_private_pid_namespace_calls_unowned_sockets_errors(world, monkeypatch):
    # What /proc shows inside a container's PID namespace (tests/adversarial/test_gather_round2_zombie_leader.py
    # makes one for real, out of this process).
    monkeypatch.setattr(gather_owners, 'read_proc_view', lambda proc='/proc': gather_owners.ProcView('private', None, True, False))
    _result, coverage, _by_inode = _gather_all(world, errors=None)
    gaps = ['the gather runs in a private PID namespace, whose /proc lists only the processes in it'] + REFUSED_GAPS
    prefix = 'sockets show no owning process, and not every process could be looked in (%s): ' % '; '.join(gaps)
    [error] = [error for error in coverage['errors'] if prefix in error]
    assert coverage['errors'][-1] == error  # after what the reads met
    count, _sep, labels = error.partition(' ' + prefix)
    assert int(count) == len(coverage['unowned_sockets']) >= 2
    assert labels.split(', ') == coverage['unowned_sockets'][:gather.MAX_NAMED_SOCKETS]
    assert set(_unowned_labels(world)) <= set(coverage['unowned_sockets'])
    assert PRIVATE_PID_NOTE in coverage['notes'] and coverage['complete'] is False
    assert coverage['owner_search'] == {'exhaustive': False, 'pid_namespace': 'private', 'hidepid': None, 'gaps': gaps}


# -- rule: the namespaces read on an IPv6-less kernel read only IPv4 tables, and say so once ------------------------

def test_all_on_a_kernel_without_ipv6_notes_it_once_and_reads_ipv4_everywhere(world, monkeypatch):
    monkeypatch.setattr(gather, '_ipv6_available', lambda proc_net='/proc/net': False)
    result, coverage, by_inode = _gather_all(world)
    mine = _mine(world)
    assert [note for note in coverage['notes'] if 'IPv6' in note] == ['IPv6 is not enabled on this host; only IPv4 '
                                                                      'tables exist']
    assert set(entry['family'] for entry in result['sockets']) == {'ipv4'}
    for inode in mine:
        assert by_inode[inode]['sources'] == {'tcp/ipv4': 'netlink', 'udp/ipv4': 'netlink'}


@pytest.mark.parametrize('backend', ['auto', 'procfs'])
def test_refused_setns_on_a_kernel_without_ipv6_reads_ipv4_through_proc_pid_net(world, monkeypatch, backend):
    monkeypatch.setattr(gather, '_ipv6_available', lambda proc_net='/proc/net': False)
    _refuse_setns(monkeypatch)
    result = gather_sockets_only(backend=backend, namespaces='all')
    netns = world.holders['process'].info['netns']
    scanned = dict((item['inode'], item) for item in result['coverage']['namespaces']['scanned'])
    assert scanned[netns]['sources'] == {'tcp/ipv4': 'procfs', 'udp/ipv4': 'procfs'}
    assert [note for note in result['coverage']['notes'] if 'IPv6' in note] == [
        'IPv6 is not enabled on this host; only IPv4 tables exist']


# -- rule: a table one namespace cannot read is an error of that namespace, its other tables still read ------------

def test_a_table_netlink_cannot_read_in_another_namespace_is_its_error(world, monkeypatch):
    import threading

    real = gather_netlink.dump_listening

    def dump(family, protocol):
        if threading.current_thread() is not threading.main_thread() and (protocol, family) == ('udp', 'ipv6'):
            raise gather_netlink.NetlinkError('sock_diag refused')
        return real(family, protocol)

    monkeypatch.setattr(gather_netlink, 'dump_listening', dump)
    holders = world.holders
    order = sorted([holders['process'], holders['mount']], key=lambda h: h.info['netns']) + _fd_kept(world)
    _result, _coverage, by_inode = _gather_all(world, 'netlink', errors=[
        'network namespace %d: udp/ipv6: netlink backend: sock_diag refused' % holder.info['netns'] for holder in order])
    for holder in order:
        assert by_inode[holder.info['netns']]['sources'] == dict(
            (table, 'netlink') for table in ALL_TABLES if table != 'udp/ipv6')


# -- rule: psutil describes a process as far as it can tell ----------------------------------------------------------

def test_psutil_describes_a_process_with_a_zombie_leader_without_its_executable(world):
    holder = world.holders['zombie']
    described_now = gather._describe_with_psutil(holder.pid)
    assert described_now == dict(described(holder.pid), exe=None, unit=None, start_time=None)


# -- rule: a namespace an nsfs fd of another process shows is also read through its socket: that fd may be closed
#    before the visit (another gather asking the same socket, say), and the namespace must not read as unreadable ---

def test_a_namespace_whose_only_nsfs_fd_closes_after_the_walk_is_still_read_through_its_socket(world, monkeypatch):
    holder = world.holders['socket']
    netns = holder.info['netns']
    fd = _socket_fd(holder)
    asker = gather_namespaces.SocketNamespaces()
    try:
        handle = [asker.namespace(holder.pid, fd)]  # what a second gather holds for a moment
    finally:
        asker.close()
    real = gather_owners.walk_fds

    def walk_then_close(*args, **kwargs):
        walk = real(*args, **kwargs)
        if handle:
            os.close(handle.pop())  # that gather is done with it before this one visits the namespace
        return walk

    monkeypatch.setattr(gather_owners, 'walk_fds', walk_then_close)
    try:
        _result, coverage, by_inode = _gather_all(world)
    finally:
        for left in handle:
            os.close(left)
    assert netns not in [item['inode'] for item in coverage['namespaces']['unreadable']]
    assert by_inode[netns]['sockets'] == 1


def _socket_fd(holder):
    """The fd number of the holder's listener (its only socket)."""
    for name in os.listdir('/proc/%d/fd' % holder.pid):
        if os.readlink('/proc/%d/fd/%s' % (holder.pid, name)) == 'socket:[%d]' % holder.info['sockets'][0]:
            return int(name)
    raise AssertionError('the holder has no socket')


def test_a_socket_the_kernel_refuses_to_copy_is_an_error_of_the_gather(world, monkeypatch):
    """pidfd_getfd refused (an LSM, a seccomp filter) for the socket-only namespace's holder: that namespace is
    missed, and the gather says which socket it could not ask."""
    holder = world.holders['socket']
    real = gather_namespaces.SocketNamespaces.namespace

    def namespace(self, pid, fd):
        if pid == holder.pid:
            raise PermissionError(1, 'Operation not permitted')
        return real(self, pid, fd)

    monkeypatch.setattr(gather_namespaces.SocketNamespaces, 'namespace', namespace)
    result = gather_sockets_only(namespaces='all')
    coverage = _check_shape(result, mode='all')
    link = 'socket:[%d]' % holder.info['sockets'][0]
    [error] = [error for error in coverage['errors'] if 'could not be asked' in error]
    assert error == ('namespaces=all: 1 sockets could not be asked which network namespace they belong to, so a '
                     'namespace only they keep alive may be missed: %s (pid %d): Operation not permitted'
                     % (link, holder.pid))
    assert holder.info['netns'] not in [item['inode'] for item in coverage['namespaces']['scanned']]
    assert coverage['complete'] is False


def test_refused_setns_and_an_unreadable_proc_pid_net_is_unreadable_saying_both(world, monkeypatch):
    import threading

    from ansible_collections.portwarden.compliance.plugins.module_utils import gather_procfs

    real = gather_procfs.read_listening

    def read(family, protocol, proc_net='/proc/net'):
        if threading.current_thread() is not threading.main_thread():
            raise gather_procfs.ProcfsError('%s: Permission denied' % proc_net)  # /proc/PID/net refused (an LSM)
        return real(family, protocol, proc_net)

    monkeypatch.setattr(gather_procfs, 'read_listening', read)
    _refuse_setns(monkeypatch)
    holder = world.holders['process']
    result = gather_sockets_only(backend='procfs', namespaces='all')
    unreadable = dict((item['inode'], item) for item in result['coverage']['namespaces']['unreadable'])
    net = '/proc/%d/net' % holder.pid
    assert unreadable[holder.info['netns']] == {'inode': holder.info['netns'], 'pid': holder.pid, 'reason': (
        '%s; %s: no socket table could be read: %s' % (REFUSED, net, '; '.join(
            '%s: procfs backend: %s: Permission denied' % (table, net) for table in ALL_TABLES)))}
