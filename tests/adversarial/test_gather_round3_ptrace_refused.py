"""Attack: a gather as root that may list a process's fds but not read them (no CAP_SYS_PTRACE, as in docker's
default capability set, beside a process holding capabilities it lacks).

The kernel lets root list /proc/PID/fd (root's directory) and refuses it the links (ptrace access). The walk took
each refused link for an fd closed while it walked and counted the process as looked in: its listener showed no
owner, as a kernel socket, with ``complete: true``, so a process rule passed on a socket whose owner was never seen.
A process whose fd links cannot be read is one the walk could not look in: it is named as a gap of the owner search,
and a socket with no owner behind that gap is an error naming it, so the coverage is partial.
"""

import json
import os
import sys

import pytest

from tests.helpers.netns import HELPERS, Namespace, have_netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]

REFUSED = os.path.join(HELPERS, 'ptrace_refused.py')
REPO_COLLECTIONS = os.environ['PYTHONPATH'].split(os.pathsep)[0]


@pytest.mark.parametrize('backend', ['auto', 'procfs', 'psutil'])  # psutil walks /proc itself, skipping them unsaid
def test_a_process_whose_fd_links_are_refused_makes_its_unowned_socket_an_error(backend):
    with Namespace() as ns:
        proc = ns.run([sys.executable, REFUSED, REPO_COLLECTIONS, backend], timeout=120)
    assert proc.returncode == 0, proc.stderr
    attack = json.loads(proc.stdout)
    coverage = attack['result']['coverage']
    [found] = [entry for entry in attack['result']['sockets'] if entry['port'] == 856]
    assert found['inode'] == (None if backend == 'psutil' else attack['inode'])
    assert found['processes'] == []  # its owner could not be read ...
    # ... which is said: the holder is named as a process not looked in, so its socket is not a kernel socket.
    search = coverage['owner_search']
    assert search['exhaustive'] is False and coverage['unowned_case'] == 'not_looked_for'
    [gap] = [gap for gap in search['gaps'] if gap.startswith('the fd links of ')]
    refused = [int(pid) for pid in gap.split(': pid ', 1)[1].split(', ')]
    assert attack['holder'] in refused
    assert gap == ('the fd links of %d process(es) could not be read (ptrace access refused: the gather lacks '
                   'CAP_SYS_PTRACE or capabilities they hold, or an LSM denies it): pid %s'
                   % (len(refused), ', '.join(str(pid) for pid in refused)))
    assert coverage['errors'] == ['%d sockets show no owning process, and not every process could be looked in (%s): '
                                  '%s' % (len(coverage['unowned_sockets']), '; '.join(search['gaps']),
                                          ', '.join(coverage['unowned_sockets']))]
    assert 'tcp 127.0.0.1:856' in coverage['unowned_sockets']
    assert coverage['complete'] is False
    assert attack['holder'] not in [note for note in coverage['notes'] if 'kernel sockets' in note]
    assert not [note for note in coverage['notes'] if 'though every process was looked in' in note]
