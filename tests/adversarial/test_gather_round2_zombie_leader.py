"""Attack: hold a listener in a process whose main thread has exited (a zombie leader, a live worker thread).

The fd walk lists ``/proc/PID/fd``, which for a zombie leader is empty, and namespace discovery reads
``/proc/PID/ns/net``, which no longer resolves; the worker thread still holds the socket (``/proc/PID/task/TID``
shows it). So TCP 856 showed with no process, called a kernel socket with ``complete: true``, and in a network
namespace only such a thread is in, ``namespaces: all`` missed the listener altogether with ``complete: true``.
The rogue names itself ``sshd`` too: its executable, which the leader's ``exe`` link no longer shows, must still
be told (from the live thread), or protection would take the process at its name.

Each attack runs in a fresh network namespace; ``namespaces: all`` also in a private mount and PID namespace
(as test_gather_namespaces_unentered.py), so nothing of the machine is read or left behind.
"""

import json
import os
import sys

import pytest

from tests.helpers.netns import HELPERS, Namespace, have_netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]

ZOMBIE_LEADER = os.path.join(HELPERS, 'zombie_leader.py')
REPO_COLLECTIONS = os.environ['PYTHONPATH'].split(os.pathsep)[0]


def _attack(namespaces, netns):
    spec = json.dumps({'port': 856, 'netns': netns, 'name': 'sshd'})
    argv = [sys.executable, ZOMBIE_LEADER, 'gather', namespaces, REPO_COLLECTIONS, spec]
    if namespaces == 'all':
        argv = ['unshare', '-m', '-p', '-f', '--mount-proc', '--propagation', 'private'] + argv
    with Namespace() as ns:
        proc = ns.run(argv, timeout=120)
    assert proc.returncode == 0, proc.stderr
    attack = json.loads(proc.stdout)
    return attack['holder'], attack['result']


def _found(result, port=856):
    return [entry for entry in result['sockets'] if entry['port'] == port and entry['protocol'] == 'tcp']


def test_listener_of_a_process_whose_main_thread_exited_is_owned():
    holder, result = _attack('host', netns=False)
    found = _found(result)
    assert [entry['inode'] for entry in found] == [holder['inode']]
    assert [proc['pid'] for proc in found[0]['processes']] == [holder['pid']], result['coverage']
    proc = found[0]['processes'][0]
    assert proc['name'] == 'sshd' and proc['start_time'] == holder['start_time']
    # The leader's exe link no longer resolves: the live thread's tells the real executable (no system sshd).
    assert proc['exe'] == os.path.realpath(sys.executable)
    assert result['coverage']['unowned_sockets'] == []
    assert result['coverage']['complete'] is True


def test_namespace_only_a_thread_of_a_zombie_leader_is_in_is_read():
    holder, result = _attack('all', netns=True)
    found = _found(result)
    assert [entry['namespace']['inode'] for entry in found] == [holder['netns']], result['coverage']
    assert [proc['pid'] for proc in found[0]['processes']] == [holder['pid']]
    assert result['coverage']['errors'] == [] and result['coverage']['complete'] is True
    scanned = [entry['inode'] for entry in result['coverage']['namespaces']['scanned']]
    assert scanned.count(holder['netns']) == 1
