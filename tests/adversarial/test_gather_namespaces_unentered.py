"""Attack: listen in a network namespace no process is in, so ``namespaces: all`` never reads it.

A process enters a namespace, opens TCP 856 and moves back (setns) to its own; the socket it keeps holds
the namespace alive. ``namespaces: all`` found namespaces only from ``/proc/*/ns/net``, so 856 was missed
with ``complete: true``, whatever else kept the namespace: an ``ip netns`` mount under /run/netns, a bind
mount of it elsewhere, an fd open on it, or nothing but the socket.

Each attack runs in a private mount and PID namespace (tests/helpers/hidden_netns.py), so the gather sees
none of the machine's other namespaces and nothing of this is left behind: the mounts and the namespace
end with it.
"""

import json
import os
import sys

import pytest

from tests.helpers.gather import beside_private_pid_namespace
from tests.helpers.netns import HELPERS, Namespace, have_netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]

HIDDEN = os.path.join(HELPERS, 'hidden_netns.py')
REPO_COLLECTIONS = os.environ['PYTHONPATH'].split(os.pathsep)[0]


def _attack(how):
    with Namespace() as ns:  # the gather's own ("host") network namespace: none of the machine's sockets
        proc = ns.run(['unshare', '-m', '-p', '-f', '--mount-proc', '--propagation', 'private',
                       sys.executable, HIDDEN, how, REPO_COLLECTIONS], timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize('how', ['run-netns', 'bind-elsewhere', 'fd', 'socket'])
def test_listener_in_a_namespace_no_process_is_in_is_found(how):
    attack = _attack(how)
    result = attack['result']
    found = [entry for entry in result['sockets'] if entry['port'] == 856 and entry['protocol'] == 'tcp']
    assert [entry['namespace']['inode'] for entry in found] == [attack['netns']], result['coverage']
    assert [proc['pid'] for proc in found[0]['processes']] == [attack['holder']]
    # The gather runs in a private PID namespace (for isolation): partial for that alone, and it says so.
    assert beside_private_pid_namespace(result['coverage']) == []
    scanned = [entry['inode'] for entry in result['coverage']['namespaces']['scanned']]
    assert scanned.count(attack['netns']) == 1
