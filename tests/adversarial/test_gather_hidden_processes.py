"""Attack: hide the owner of a listener from the gather's /proc, so its socket reads as a kernel socket.

- ``/proc`` mounted with ``hidepid=2`` (``invisible``) or ``hidepid=4`` (``ptraceable``), gather as a
  non-root user: other users' processes are simply absent from the listing, so the fd walk meets no
  ``EACCES`` to count, and TCP 856 of another user showed as unowned with ``complete: true``.
- The gather in a private PID namespace (``unshare -p -f --mount-proc``) with the host's network: the
  processes outside it are absent from its ``/proc`` too.

Every attack runs in a fresh network namespace and a private mount namespace (``unshare -m``): the
machine's own ``/proc`` is never remounted. The users are bare uids, so no account is created.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers.netns import LISTENERS, Listeners, Namespace, have_netns

CLI = 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli'
LISTENER_UID = 47811  # bare uids, no account: the rogue and the unprivileged auditor
GATHER_UID = 47812

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]


def _as_uid(uid):
    return ['setpriv', '--reuid', str(uid), '--regid', str(uid), '--clear-groups']


def _listen(ns, uid=None, port=856):
    """A TCP listener on 0.0.0.0:PORT in ``ns``, run as ``uid`` (root when None)."""
    prefix = _as_uid(uid) if uid is not None else []
    spec = json.dumps([{'protocol': 'tcp', 'address': '0.0.0.0', 'port': port}])
    proc = subprocess.Popen(ns.command(prefix + [sys.executable, LISTENERS, spec]),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError('listener as uid %s failed (exit %s)' % (uid, proc.returncode))
    holder = Listeners(proc, json.loads(line))
    ns.holders.append(holder)
    return holder


def _gather(ns, wrapper, uid=None):
    """``portwarden gather`` in ``ns`` under ``wrapper`` (a shell line ending in ``exec "$@"``), as ``uid``."""
    argv = ['sh', '-c', wrapper, 'sh'] + (_as_uid(uid) if uid is not None else [])
    argv += [sys.executable, '-m', CLI, 'gather', '--format', 'json']
    proc = ns.run(argv, env=dict(os.environ, HOME='/'))
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def _hidepid_proc(option):
    # A new proc instance in a private mount namespace: the machine's /proc keeps its options.
    return 'exec unshare -m --propagation private sh -c \'mount -t proc -o %s proc /proc && exec "$@"\' sh "$@"' % option


def _socket(result, port):
    found = [entry for entry in result['sockets'] if entry['port'] == port and entry['protocol'] == 'tcp']
    assert len(found) == 1, result['sockets']
    return found[0]


@pytest.fixture
def rogue_namespace():
    with Namespace() as ns:
        # Lets the rogue (a bare uid) bind 856 in this namespace only.
        ns.run(['sysctl', '-qw', 'net.ipv4.ip_unprivileged_port_start=0'], check=True)
        _listen(ns, uid=LISTENER_UID)
        yield ns


@pytest.mark.parametrize('option', ['hidepid=2', 'hidepid=invisible', 'hidepid=4'])
def test_hidepid_as_non_root_is_partial_naming_the_unowned_socket(rogue_namespace, option):
    result = _gather(rogue_namespace, _hidepid_proc(option), uid=GATHER_UID)
    coverage = result['coverage']
    assert _socket(result, 856)['processes'] == []
    assert coverage['complete'] is False
    named = [error for error in coverage['errors'] if 'tcp 0.0.0.0:856' in error]
    assert named and 'hidepid' in named[0], coverage['errors']
    assert coverage['unowned_case'] == 'not_looked_for'
    assert coverage['owner_search']['exhaustive'] is False


def test_hidepid_as_root_still_sees_the_owner(rogue_namespace):
    """Root (CAP_SYS_PTRACE) sees through hidepid: the owner is found and the gather is complete."""
    result = _gather(rogue_namespace, _hidepid_proc('hidepid=2'))
    owners = [proc['uid'] for proc in _socket(result, 856)['processes']]
    assert owners == [LISTENER_UID]
    assert result['coverage']['complete'] is True, result['coverage']['errors']


def test_private_pid_namespace_is_partial_naming_the_unowned_socket(rogue_namespace):
    result = _gather(rogue_namespace, 'exec unshare -p -f --mount-proc "$@"')
    coverage = result['coverage']
    assert _socket(result, 856)['processes'] == []
    assert coverage['complete'] is False
    named = [error for error in coverage['errors'] if 'tcp 0.0.0.0:856' in error]
    assert named and 'PID namespace' in named[0], coverage['errors']
    assert coverage['unowned_case'] == 'not_looked_for'
    assert coverage['owner_search']['pid_namespace'] == 'private'


def test_private_pid_namespace_over_the_hosts_proc_finds_the_owner(rogue_namespace):
    """Without --mount-proc the gather's /proc is still the host's: every process is looked in."""
    result = _gather(rogue_namespace, 'exec unshare -p -f "$@"')
    owners = [proc['uid'] for proc in _socket(result, 856)['processes']]
    assert owners == [LISTENER_UID]
    assert result['coverage']['complete'] is True, result['coverage']['errors']
