"""Attack: a rogue whose main thread exited (a zombie leader, a worker thread listening on TCP 856) is reported
``gone`` by port_kill, which signals nothing, while it keeps listening.

port_kill read the leader's /proc/PID/stat, saw ``Z`` and took the process for exited. The process is alive: a
signal to the pid reaches the whole thread group. Its leader's exe link no longer resolves either, so a rogue
that calls itself ``sshd`` would be taken at its name (``its executable cannot be read``): the executable must
come from a live thread. Real processes (tests/helpers/zombie_leader.py) in a fresh network namespace, the real
port_kill module.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.helpers.kill_module import run_kill
from tests.helpers.netns import HELPERS, Namespace, have_netns

ZOMBIE_LEADER = os.path.join(HELPERS, 'zombie_leader.py')
pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]


@pytest.fixture
def rogue():
    with Namespace() as ns:
        proc = subprocess.Popen(ns.command([sys.executable, ZOMBIE_LEADER, json.dumps({'port': 856, 'name': 'sshd'})]),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            assert line, 'the zombie-leader holder failed (exit %s)' % proc.wait()
            yield proc, json.loads(line)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _listening(holder):
    return os.path.exists('/proc/%d/task/%d' % (holder['pid'], holder['tid']))


@pytest.mark.parametrize('exe', ['gathered', None], ids=['with-exe', 'exe-unknown'])
def test_zombie_leader_rogue_is_ended_not_reported_gone(tmp_path, rogue, exe):
    proc, holder = rogue
    target = {'pid': holder['pid'], 'start_time': holder['start_time'], 'name': 'sshd', 'rule': 'iana-unassigned',
              'exe': os.path.realpath(sys.executable) if exe else None}
    checked = run_kill(tmp_path, [target], check_mode=True)
    assert [entry['outcome'] for entry in checked['processes']] == ['would_terminate'], checked
    assert _listening(holder)
    done = run_kill(tmp_path, [target])
    assert [entry['outcome'] for entry in done['processes']] == ['terminated'], done
    assert 'taken at its word' not in done['processes'][0]['reason']
    deadline = time.monotonic() + 5
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is not None and not _listening(holder)
    again = run_kill(tmp_path, [target])
    assert [entry['outcome'] for entry in again['processes']] == ['gone'] and again['changed'] is False
