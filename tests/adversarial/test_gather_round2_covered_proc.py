"""Attack: a mount over a process's /proc entry (``mount --bind DIR /proc/PID``) hides or forges its fds.

The fd walk and the describer read /proc/PID/fd, comm, stat, exe of whatever is mounted there. An empty
directory over the holder of TCP 856 made the walk take it for a process that had exited: 856 showed with no
owner, as a kernel socket, with ``complete: true``. A directory dressed as an ``sshd`` over a bystander's
entry (fd/3 a symlink reading ``socket:[INODE]``, exe a symlink to /usr/sbin/sshd) made 856 owned by "sshd
/usr/sbin/sshd", a protected process, with ``complete: true``. The kernel's own view of a process is never
under a mount, so any mount below /proc/PID must make the gather partial, naming the pid.

Real mounts, in a private mount namespace inside a fresh network namespace: nothing of the machine is covered.
"""

import json
import os
import sys

import pytest

from tests.helpers.netns import HELPERS, Namespace, have_netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]

COVERED = os.path.join(HELPERS, 'covered_proc.py')
REPO_COLLECTIONS = os.environ['PYTHONPATH'].split(os.pathsep)[0]


def _attack(how):
    with Namespace() as ns:
        proc = ns.run(['unshare', '-m', '--propagation', 'private', sys.executable, COVERED, how, REPO_COLLECTIONS],
                      timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize('how', ['hide', 'fake-owner'])
def test_mount_over_a_proc_entry_makes_the_gather_partial(how):
    attack = _attack(how)
    coverage = attack['result']['coverage']
    found = [entry for entry in attack['result']['sockets'] if entry['port'] == 856 and entry['protocol'] == 'tcp']
    assert [entry['inode'] for entry in found] == [attack['inode']]
    assert coverage['complete'] is False
    covered = [attack['holder']] + ([attack['bystander']] if how == 'fake-owner' else [])
    named = [error for error in coverage['errors'] if 'mounted over' in error]
    assert len(named) == 1, coverage['errors']
    for pid in covered:
        assert '/proc/%d' % pid in named[0]
