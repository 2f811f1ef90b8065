"""port_block for real: nftables blocks in real network namespaces, checked with real TCP and UDP traffic.

The module runs as Ansible runs it on a host (its arguments as JSON on stdin), inside a namespace
(``ip netns exec``), so it changes that namespace's nftables ruleset and nothing else.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import uuid

import pytest

from tests.helpers.netns import Namespace, have_netns
from tests.helpers.nft import uncounted

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not have_netns(), reason='needs root and ip netns'),
    pytest.mark.skipif(shutil.which('nft') is None, reason='needs nft (nftables)'),
]

MODULE = 'ansible_collections.portwarden.compliance.plugins.modules.port_block'
TIMEOUT = 2.0  # a dropped TCP SYN or UDP datagram gets no answer at all: wait this long, then call it blocked

# Services that answer: TCP sends "pong" on accept, UDP echoes. Dual-stack sockets on "::" (IPv4 too).
ECHO = r'''
import json, socket, sys, threading
def tcp(sock):
    while True:
        conn, peer = sock.accept()
        try:
            conn.sendall(b"pong")
        finally:
            conn.close()
def udp(sock):
    while True:
        data, peer = sock.recvfrom(2048)
        sock.sendto(b"pong:" + data, peer)
for protocol, port in json.loads(sys.argv[1]):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    if protocol == "tcp":
        sock.listen(16)
    threading.Thread(target=tcp if protocol == "tcp" else udp, args=(sock,), daemon=True).start()
sys.stdout.write("ready\n")
sys.stdout.flush()
sys.stdin.read()
'''

# Client probes, all at once: "answer", "timeout", "refused" or "error:...".
PROBE = r'''
import json, socket, sys, threading
probes, timeout = json.loads(sys.argv[1]), float(sys.argv[2])
results = {}
def probe(protocol, host, port):
    label = "%s %s:%d" % (protocol, host, port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    try:
        if protocol == "tcp":
            sock.connect((host, port))
        else:
            sock.sendto(b"ping", (host, port))
        data = sock.recv(64)
        results[label] = "answer" if data.startswith(b"pong") else "other:%r" % data
    except socket.timeout:
        results[label] = "timeout"
    except ConnectionRefusedError:
        results[label] = "refused"
    except OSError as exc:
        results[label] = "error:%s" % exc
    finally:
        sock.close()
threads = [threading.Thread(target=probe, args=tuple(item)) for item in probes]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(results))
'''

SERVICES = [('tcp', 856), ('udp', 857), ('tcp', 858)]
HOSTS = ('127.0.0.1', '::1')
EVERY_PROBE = [(protocol, host, port) for protocol, port in SERVICES for host in HOSTS]


def label(protocol, host, port):
    return '%s %s:%d' % (protocol, host, port)


def probe(ns, probes=EVERY_PROBE):
    proc = ns.run([sys.executable, '-c', PROBE, json.dumps(probes), str(TIMEOUT)], check=True)
    return json.loads(proc.stdout)


def answers(ns, probes=EVERY_PROBE):
    return {name: result == 'answer' for name, result in probe(ns, probes).items()}


class Echo(object):
    """The echo services running in one namespace."""

    def __init__(self, ns, services):
        self.proc = subprocess.Popen(ns.command([sys.executable, '-c', ECHO, json.dumps(services)]),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != 'ready':
            self.proc.kill()
            raise RuntimeError('echo services did not start in %s' % ns.name)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_module(ns, args, env=None, check_mode=False, diff=True, outer=(), inner=(), python=None):
    """(exit code, result) of port_block run in ``ns``: arguments on stdin, as Ansible hands them over."""
    payload = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    environment = dict(os.environ)
    environment.pop('SSH_CONNECTION', None)
    environment.update(env or {})
    argv = list(outer) + ns.command(list(inner) + [python or sys.executable, '-m', MODULE])
    proc = subprocess.run(argv, input=json.dumps({'ANSIBLE_MODULE_ARGS': payload}), env=environment,
                          capture_output=True, text=True, check=False, timeout=120)
    assert 'Traceback' not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError('port_block printed no JSON (exit %d): %s %s' % (proc.returncode, proc.stdout, proc.stderr)) from None
    return proc.returncode, result


def apply(ns, args, **kwargs):
    code, result = run_module(ns, args, **kwargs)
    assert code == 0 and not result.get('failed'), result
    return result


def nft(ns, *args, check=True):
    return ns.run(['nft', *args], check=check)


def has_table(ns):
    return '"name": "portwarden"' in nft(ns, '-j', 'list', 'tables').stdout


def ruleset(ns):
    return json.loads(nft(ns, '-j', 'list', 'ruleset').stdout)


def new_name(suffix=''):
    return 'pwk-%s%s' % (uuid.uuid4().hex[:8], suffix)


@pytest.fixture(scope='module')
def namespaces():
    """Namespace A and namespace B, each with the same services listening on 856/tcp, 857/udp, 858/tcp."""
    with Namespace(new_name('a')) as ns_a, Namespace(new_name('b')) as ns_b:
        echo_a, echo_b = Echo(ns_a, SERVICES), Echo(ns_b, SERVICES)
        ns_a.holders.append(echo_a)
        ns_b.holders.append(echo_b)
        yield ns_a, ns_b, echo_a


@pytest.fixture
def env(namespaces):
    """Each test starts with no portwarden table in A, and every service answering in both namespaces."""
    ns_a, ns_b, echo_a = namespaces
    nft(ns_a, 'delete', 'table', 'inet', 'portwarden', check=False)
    assert not has_table(ns_a) and not has_table(ns_b)
    assert all(answers(ns_a).values()), probe(ns_a)
    yield ns_a, ns_b, echo_a
    nft(ns_a, 'delete', 'table', 'inet', 'portwarden', check=False)


BLOCK_856_857 = {'blocks': [{'protocol': 'tcp', 'port': 856, 'rule': 'no-rpc'}, {'protocol': 'udp', 'port': 857, 'rule': 'no-udp-857'}]}


def test_block_tcp_and_udp_then_rerun_check_mode_and_lift_all(env):
    ns_a, ns_b, echo_a = env
    started = time.monotonic()
    result = apply(ns_a, BLOCK_856_857)
    assert result['changed'] is True
    assert result['added'] == [
        {'protocol': 'tcp', 'port': 856, 'family': None, 'address': None, 'rule': 'no-rpc'},
        {'protocol': 'udp', 'port': 857, 'family': None, 'address': None, 'rule': 'no-udp-857'},
    ]
    assert result['blocks'] == result['added'] and result['removed'] == [] and result['protected'] == []
    assert result['persisted'] is None and result['drift'] == []
    assert result['diff']['before'] == '' and '856 comment "rule=no-rpc"' in result['diff']['after']

    # In A, both blocked ports are silent over IPv4 and IPv6 (TCP times out: a drop, not a refusal);
    # 858 still answers. In B, everything answers. The services in A keep running.
    seen = probe(ns_a)
    assert seen == {
        label('tcp', '127.0.0.1', 856): 'timeout', label('tcp', '::1', 856): 'timeout',
        label('udp', '127.0.0.1', 857): 'timeout', label('udp', '::1', 857): 'timeout',
        label('tcp', '127.0.0.1', 858): 'answer', label('tcp', '::1', 858): 'answer',
    }
    assert all(answers(ns_b).values()), probe(ns_b)
    assert not has_table(ns_b)
    assert echo_a.alive()
    listing = uncounted(nft(ns_a, 'list', 'table', 'inet', 'portwarden').stdout)
    assert '856 comment "rule=no-rpc"' in listing and '857 comment "rule=no-udp-857"' in listing
    assert result['table'] == result['diff']['after']

    # The same arguments again: nothing to do.
    again = apply(ns_a, BLOCK_856_857)
    assert again['changed'] is False
    assert again['added'] == [] and again['removed'] == []
    assert again['blocks'] == result['blocks']
    assert again['diff']['before'] == again['diff']['after']

    # Check mode with one more block: changed, a diff, and the ruleset untouched.
    before = ruleset(ns_a)
    checked = apply(ns_a, {'blocks': BLOCK_856_857['blocks'] + [{'protocol': 'tcp', 'port': 858, 'rule': 'no-858'}]}, check_mode=True)
    assert ruleset(ns_a) == before
    assert checked['changed'] is True
    assert checked['added'] == [{'protocol': 'tcp', 'port': 858, 'family': None, 'address': None, 'rule': 'no-858'}]
    assert checked['diff']['before'] != checked['diff']['after']
    assert '858 comment "rule=no-858"' in checked['diff']['after'] and '858' not in checked['diff']['before']
    assert answers(ns_a, [('tcp', '127.0.0.1', 858)]) == {label('tcp', '127.0.0.1', 858): True}

    # Check mode of a lift-all: changed, nothing lifted.
    checked = apply(ns_a, {'state': 'absent'}, check_mode=True)
    assert checked['changed'] is True and checked['diff']['after'] == '' and checked['table'] == ''
    assert ruleset(ns_a) == before

    # state=absent without blocks lifts everything: the table goes, the services answer again.
    lifted = apply(ns_a, {'state': 'absent'})
    assert lifted['changed'] is True
    assert lifted['removed'] == result['blocks'] and lifted['blocks'] == [] and lifted['table'] == ''
    assert not has_table(ns_a)
    assert all(answers(ns_a).values()), probe(ns_a)
    assert echo_a.alive()
    assert apply(ns_a, {'state': 'absent'})['changed'] is False
    assert time.monotonic() - started < 60


def test_family_and_address_specific_blocks(env):
    ns_a, _ns_b, _echo_a = env
    blocks = [
        {'protocol': 'tcp', 'port': 858, 'address': '::1', 'rule': 'v6-loopback'},  # IPv6 ::1 only
        {'protocol': 'udp', 'port': 857, 'family': 'ipv4', 'rule': 'v4-only'},  # IPv4 only
        {'protocol': 'tcp', 'port': 856, 'address': '127.0.0.1', 'rule': 'one-address'},  # 127.0.0.1, not 127.0.0.2
    ]
    result = apply(ns_a, {'blocks': blocks})
    assert result['changed'] is True
    assert result['blocks'] == [
        {'protocol': 'tcp', 'port': 856, 'family': 'ipv4', 'address': '127.0.0.1', 'rule': 'one-address'},
        {'protocol': 'tcp', 'port': 858, 'family': 'ipv6', 'address': '::1', 'rule': 'v6-loopback'},
        {'protocol': 'udp', 'port': 857, 'family': 'ipv4', 'address': None, 'rule': 'v4-only'},
    ]
    probes = EVERY_PROBE + [('tcp', '127.0.0.2', 856)]
    assert probe(ns_a, probes) == {
        label('tcp', '127.0.0.1', 856): 'timeout', label('tcp', '::1', 856): 'answer', label('tcp', '127.0.0.2', 856): 'answer',
        label('udp', '127.0.0.1', 857): 'timeout', label('udp', '::1', 857): 'answer',
        label('tcp', '127.0.0.1', 858): 'answer', label('tcp', '::1', 858): 'timeout',
    }
    listing = uncounted(nft(ns_a, 'list', 'table', 'inet', 'portwarden').stdout)
    assert '::1 . 858 comment "rule=v6-loopback"' in listing
    assert '127.0.0.1 . 856 comment "rule=one-address"' in listing

    # exclusive: the table ends up holding exactly the listed block
    result = apply(ns_a, {'blocks': [blocks[0]], 'exclusive': True})
    assert result['changed'] is True
    assert [item['rule'] for item in result['removed']] == ['one-address', 'v4-only']
    assert [item['rule'] for item in result['blocks']] == ['v6-loopback']
    seen = probe(ns_a)
    assert seen.pop(label('tcp', '::1', 858)) == 'timeout'
    assert set(seen.values()) == {'answer'}

    # a new rule id for a block in place updates its comment
    result = apply(ns_a, {'blocks': [dict(blocks[0], rule='renamed')]})
    assert result['changed'] is True and result['removed'][0]['rule'] == 'v6-loopback' and result['added'][0]['rule'] == 'renamed'
    assert '::1 . 858 comment "rule=renamed"' in uncounted(nft(ns_a, 'list', 'table', 'inet', 'portwarden').stdout)

    # state=absent with one block lifts that block (whatever its rule id); the table stays
    result = apply(ns_a, {'blocks': [{'protocol': 'tcp', 'port': 858, 'family': 'ipv6', 'address': '::1'}], 'state': 'absent'})
    assert result['changed'] is True and result['blocks'] == [] and len(result['removed']) == 1
    assert has_table(ns_a)
    assert all(answers(ns_a).values())
    assert apply(ns_a, {'blocks': [{'protocol': 'tcp', 'port': 858, 'address': '::1'}], 'state': 'absent'})['changed'] is False


def test_a_table_that_differs_from_the_design_is_rebuilt(env):
    ns_a, _ns_b, _echo_a = env
    apply(ns_a, BLOCK_856_857)
    # someone punches a hole into our chain, and adds a set of their own
    nft(ns_a, 'insert', 'rule', 'inet', 'portwarden', 'input', 'tcp', 'dport', '856', 'accept')
    nft(ns_a, 'add', 'set', 'inet', 'portwarden', 'mine', '{ type inet_service; }')
    assert answers(ns_a, [('tcp', '127.0.0.1', 856)]) == {label('tcp', '127.0.0.1', 856): True}
    result = apply(ns_a, BLOCK_856_857)
    assert result['changed'] is True and result['added'] == [] and result['removed'] == []
    assert len(result['drift']) == 2 and 'set mine is not part of the design' in result['drift']
    assert any(re.fullmatch(r'rule \(handle \d+\) in chain input is not part of the design', item) for item in result['drift'])
    assert result['diff']['before'].startswith('# differs from the design: ')
    assert probe(ns_a, [('tcp', '127.0.0.1', 856)]) == {label('tcp', '127.0.0.1', 856): 'timeout'}
    assert apply(ns_a, BLOCK_856_857)['changed'] is False


def test_ssh_port_and_protected_ports_are_never_blocked(env):
    ns_a, _ns_b, _echo_a = env
    # Every block refused and no table yet: nothing is made, nothing changed.
    result = apply(ns_a, {'blocks': [{'protocol': 'tcp', 'port': 856, 'rule': 'no-rpc'}]},
                   env={'SSH_CONNECTION': '10.0.0.1 50000 10.0.0.2 856'})
    assert result['changed'] is False and result['blocks'] == [] and len(result['protected']) == 1
    assert not has_table(ns_a)
    args = {'blocks': BLOCK_856_857['blocks'] + [{'protocol': 'tcp', 'port': 858, 'rule': 'no-858'}],
            'protected_ports': [{'protocol': 'udp', 'port': 857}]}
    result = apply(ns_a, args, env={'SSH_CONNECTION': '10.0.0.1 50000 10.0.0.2 856'})
    assert result['protected'] == [
        {'protocol': 'tcp', 'port': 856, 'family': None, 'address': None, 'rule': 'no-rpc',
         'reason': 'tcp port 856 carries the live SSH connection (SSH_CONNECTION); blocking it would cut the connection'},
        {'protocol': 'udp', 'port': 857, 'family': None, 'address': None, 'rule': 'no-udp-857',
         'reason': 'udp port 857 is in protected_ports'},
    ]
    assert result['changed'] is True
    assert [item['port'] for item in result['blocks']] == [858]
    seen = probe(ns_a)
    assert seen.pop(label('tcp', '127.0.0.1', 858)) == seen.pop(label('tcp', '::1', 858)) == 'timeout'
    assert set(seen.values()) == {'answer'}
    assert '856' not in nft(ns_a, 'list', 'table', 'inet', 'portwarden').stdout

    # an SSH_CONNECTION sshd could not describe protects nothing
    result = apply(ns_a, {'blocks': [{'protocol': 'tcp', 'port': 856}]}, env={'SSH_CONNECTION': 'UNKNOWN 65535 UNKNOWN 65535'})
    assert result['protected'] == [] and result['changed'] is True
    assert probe(ns_a, [('tcp', '127.0.0.1', 856)]) == {label('tcp', '127.0.0.1', 856): 'timeout'}

    # lifting a block on a protected port is always allowed
    result = apply(ns_a, {'blocks': [{'protocol': 'tcp', 'port': 856}], 'state': 'absent'}, env={'SSH_CONNECTION': '10.0.0.1 50000 10.0.0.2 856'})
    assert result['changed'] is True and result['protected'] == []
    assert answers(ns_a, [('tcp', '127.0.0.1', 856)]) == {label('tcp', '127.0.0.1', 856): True}


def test_persist_path_writes_a_loadable_file_and_lift_all_removes_it(env, tmp_path):
    ns_a, _ns_b, _echo_a = env
    directory = tmp_path / 'nftables.d'
    directory.mkdir()
    path = directory / 'portwarden.nft'
    args = dict(BLOCK_856_857, persist_path=str(path))

    checked = apply(ns_a, args, check_mode=True)
    assert checked['changed'] is True and checked['persisted'] == str(path)
    assert not path.exists() and not has_table(ns_a)
    assert checked['diff']['before'] == '# persist_path %s: absent\n' % path
    assert checked['diff']['after'].endswith('# persist_path %s: holds this table\n' % path)

    result = apply(ns_a, args)
    assert result['changed'] is True and result['persisted'] == str(path)
    text = path.read_text()
    assert text.startswith('# Managed by portwarden.compliance.port_block')
    assert 'table inet portwarden\ndelete table inet portwarden\ntable inet portwarden {\n' in text
    assert '856 comment "rule=no-rpc"' in text
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert os.listdir(directory) == ['portwarden.nft']  # no temporary file left behind
    assert nft(ns_a, '-c', '-f', str(path), check=False).returncode == 0
    again = apply(ns_a, args)
    assert again['changed'] is False and again['persisted'] == str(path)

    # Loading the file (twice) in a fresh namespace gives the same table; so does loading it over the live one.
    with Namespace(new_name('c')) as ns_c:
        for _attempt in range(2):
            loaded = nft(ns_c, '-f', str(path), check=False)
            assert loaded.returncode == 0, loaded.stderr
        assert nft(ns_c, 'list', 'table', 'inet', 'portwarden').stdout == nft(ns_a, 'list', 'table', 'inet', 'portwarden').stdout
    before = ruleset(ns_a)
    assert nft(ns_a, '-f', str(path), check=False).returncode == 0
    assert _without_handles(ruleset(ns_a)) == _without_handles(before)

    # A file changed by hand is put back.
    path.write_text(text + '# edited\n')
    restored = apply(ns_a, args)
    assert restored['changed'] is True and restored['added'] == [] and path.read_text() == text
    assert '# persist_path %s: holds something else\n' % path in restored['diff']['before']

    # Lifting everything removes the file too; check mode first leaves it.
    checked = apply(ns_a, {'state': 'absent', 'persist_path': str(path)}, check_mode=True)
    assert checked['changed'] is True and checked['persisted'] is None and path.exists()
    lifted = apply(ns_a, {'state': 'absent', 'persist_path': str(path)})
    assert lifted['changed'] is True and lifted['persisted'] is None
    assert not path.exists() and not has_table(ns_a)
    assert apply(ns_a, {'state': 'absent', 'persist_path': str(path)})['changed'] is False

    # A directory that does not exist is a clear failure, and nothing is changed.
    code, result = run_module(ns_a, dict(BLOCK_856_857, persist_path=str(tmp_path / 'missing' / 'portwarden.nft')))
    assert code == 1 and result['failed'] is True
    assert result['msg'] == 'persist_path %s: directory %s does not exist' % (tmp_path / 'missing' / 'portwarden.nft', tmp_path / 'missing')
    assert not has_table(ns_a)


def _umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _without_handles(data):
    if isinstance(data, dict):
        return dict((key, _without_handles(value)) for key, value in data.items() if key != 'handle')
    if isinstance(data, list):
        return [_without_handles(item) for item in data]
    return data


@pytest.mark.parametrize('args, message', [
    ({'blocks': [{'protocol': 'tcp', 'port': 70000}]}, 'blocks[0].port: 70000 is not a port number (1-65535)'),
    ({'blocks': [{'protocol': 'tcp', 'port': 856}, {'protocol': 'tcp', 'port': 858, 'address': '::1', 'family': 'ipv4'}]},
     "blocks[1].address: '::1' is an ipv6 address but family is ipv4"),
    ({'blocks': [{'protocol': 'tcp', 'port': 856, 'rule': 'two words'}]}, "blocks[0].rule: 'two words' is not a rule id"),
    ({'blocks': [{'protocol': 'sctp', 'port': 856}]}, 'value of protocol must be one of: tcp, udp, got: sctp found in blocks'),
    ({'protected_ports': [{'protocol': 'tcp', 'port': 0}]}, 'protected_ports[0].port: 0 is not a port number'),
])
def test_bad_arguments_fail_clearly_and_change_nothing(env, args, message):
    ns_a, _ns_b, _echo_a = env
    code, result = run_module(ns_a, args)
    assert code == 1 and result['failed'] is True
    assert message in result['msg']
    assert not has_table(ns_a)


def test_nft_missing_is_a_clear_failure(env, tmp_path):
    ns_a, _ns_b, _echo_a = env
    nft_path = shutil.which('nft', path='/usr/sbin:/sbin:/usr/local/sbin:' + os.environ['PATH'])
    # Hide nft in a private mount namespace (the module also looks in /sbin, /usr/sbin and /usr/local/sbin,
    # whatever PATH says): a non-executable empty file is mounted over it.
    empty = tmp_path / 'not-nft'
    empty.write_text('')
    hide = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" "$1" && shift && exec "$@"',
            str(empty), os.path.realpath(nft_path)]
    code, result = run_module(ns_a, BLOCK_856_857, env={'PATH': '/usr/bin:/bin'}, outer=hide)
    assert code == 1 and result['failed'] is True
    assert result['msg'].startswith('nft (nftables) not found in PATH, /sbin, /usr/sbin or /usr/local/sbin: install the nftables package')
    assert not has_table(ns_a)


def test_nft_failure_returns_its_message(env):
    """Unprivileged, nft cannot read the ruleset: the task fails with nft's own message, no traceback."""
    ns_a, _ns_b, _echo_a = env
    # The system python as nobody, with the test venv's packages (ansible) on its path.
    site_packages = sysconfig.get_paths()['purelib']
    nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
              'env', 'PYTHONPATH=%s%s%s' % (os.environ['PYTHONPATH'], os.pathsep, site_packages)]
    code, result = run_module(ns_a, BLOCK_856_857, inner=nobody, python='/usr/bin/python3')
    assert code == 1 and result['failed'] is True
    assert result['msg'].startswith('%s -j list tables failed (nft exit code 1): ' % shutil.which('nft', path='/usr/sbin:/sbin'))
    assert 'Operation not permitted' in result['msg']
    assert 'Operation not permitted' in result['stderr']
    assert not has_table(ns_a)


def _namespace_of(ns, echo):
    return {'inode': os.stat('/run/netns/%s' % ns.name).st_ino, 'pid': echo.proc.pid}


def test_namespace_blocks_in_that_namespace_only(env):
    """Run from namespace B (as on a host), told to block in namespace A (as in a container): A's table holds
    the blocks and A's services stop answering; B's ruleset and services are untouched."""
    ns_a, ns_b, echo_a = env
    before_b = ruleset(ns_b)
    args = dict(BLOCK_856_857, namespace=_namespace_of(ns_a, echo_a))
    checked = apply(ns_b, args, check_mode=True)
    assert checked['changed'] is True and not has_table(ns_a)
    result = apply(ns_b, args)
    assert result['changed'] is True and has_table(ns_a)
    assert ruleset(ns_b) == before_b and not has_table(ns_b)
    found = probe(ns_a)
    assert found[label('tcp', '127.0.0.1', 856)] == 'timeout' and found[label('udp', '::1', 857)] == 'timeout'
    assert found[label('tcp', '127.0.0.1', 858)] == 'answer'
    assert all(answers(ns_b).values()) and echo_a.alive()
    assert apply(ns_b, args)['changed'] is False
    lifted = apply(ns_b, {'state': 'absent', 'namespace': args['namespace']})
    assert lifted['changed'] is True and not has_table(ns_a) and all(answers(ns_a).values())


@pytest.mark.parametrize('case', ['wrong-inode', 'gone-pid', 'persist'])
def test_namespace_that_cannot_be_entered_fails_and_changes_nothing(env, tmp_path, case):
    ns_a, ns_b, echo_a = env
    namespace = _namespace_of(ns_a, echo_a)
    args = dict(BLOCK_856_857, namespace=namespace)
    if case == 'wrong-inode':
        namespace['inode'] = os.stat('/run/netns/%s' % ns_b.name).st_ino  # the pid is not in that namespace
        message = 'cannot be entered'
    elif case == 'gone-pid':
        namespace['pid'] = 2 ** 22 + 1  # above pid_max's default ceiling: no such process
        message = 'cannot be entered'
    else:
        args['persist_path'] = str(tmp_path / 'portwarden.nft')
        message = 'persist_path cannot be used with namespace'
    code, result = run_module(ns_b, args)
    assert code != 0 and result['failed'] and message in result['msg'], result
    assert not has_table(ns_a) and not has_table(ns_b)
    assert not os.path.exists(str(tmp_path / 'portwarden.nft'))


def test_lifting_in_a_namespace_that_is_gone_changes_nothing(env):
    _ns_a, ns_b, _echo_a = env
    result = apply(ns_b, {'state': 'absent', 'namespace': {'inode': 4026599999, 'pid': 2 ** 22 + 1}})
    assert result['changed'] is False and 'is gone' in result['msg'] and result['blocks'] == []
