"""Attack: malformed pids and start times given to port_kill (2**40 raised OverflowError out of the module).

Each bad value must fail the module with a clear message naming ``processes[N].pid`` (or ``.start_time``) and what
was expected, never a traceback, and nothing may be signalled (a valid target listed beside a bad one survives).
"""

import subprocess
import sys

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils.gather_owners import ProcessDescriber
from tests.helpers.kill_module import run_kill

pytestmark = pytest.mark.skipif(not sys.platform.startswith('linux'), reason='needs /proc')


@pytest.fixture
def bystander():
    """A real process listed first, with its true identity: it must survive a call that has a bad entry."""
    child = subprocess.Popen([sys.executable, '-c', 'import signal; print("ready", flush=True); signal.pause()'],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == 'ready'
    info = ProcessDescriber().describe(child.pid)
    yield child, {'pid': child.pid, 'start_time': info['start_time'], 'exe': info['exe']}
    child.kill()
    child.wait()


@pytest.mark.parametrize('field, value, words', [
    ('pid', 2 ** 40, 'is above the largest pid'),
    ('pid', 2 ** 70, 'is above the largest pid'),
    ('pid', -5, 'is not a process id'),
    ('pid', 0, 'is not a process id'),
    ('pid', True, 'is not a process id'),
    ('pid', 4.5, 'pid'),
    ('pid', 'abc', 'pid'),
    ('start_time', -1, 'is not a start time'),
    ('start_time', True, 'is not a start time'),
    ('start_time', 2 ** 70, 'is not a start time'),
    ('start_time', 'yesterday', 'start_time'),
])
def test_a_bad_pid_or_start_time_fails_clearly_and_signals_nothing(tmp_path, bystander, field, value, words):
    child, good = bystander
    bad = {'pid': 4242, 'start_time': 1000}
    bad[field] = value
    done = run_kill(tmp_path, [good, bad], timeout=1)
    assert done.get('failed') is True, done
    assert 'processes[1].%s' % field in done['msg'] and words in done['msg'], done['msg']
    assert child.poll() is None  # the valid entry before the bad one was not signalled either
