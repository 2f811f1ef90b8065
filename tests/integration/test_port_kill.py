"""Kill remediation for real: the module ends exactly the gathered process, and nothing else."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import remediate_kill
from ansible_collections.portwarden.compliance.plugins.module_utils.gather_owners import ProcessDescriber

MODULE = 'ansible_collections.portwarden.compliance.plugins.modules.port_kill'
pytestmark = pytest.mark.skipif(not sys.platform.startswith('linux'), reason='needs /proc')


def run_module(tmp_path, args, check_mode=False):
    path = tmp_path / 'args.json'
    path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=check_mode, _ansible_diff=True)}))
    proc = subprocess.run([sys.executable, '-m', MODULE, str(path)], capture_output=True, text=True, check=False, timeout=60)
    assert 'Traceback' not in proc.stderr + proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def spawn(name='pwtest-rogue', ignore_term=False):
    """A real listening process with the given comm; returns the Popen and its gathered identity."""
    code = ('import ctypes, signal, socket, sys\n'
            'ctypes.CDLL(None).prctl(15, ctypes.c_char_p(%r), 0, 0, 0)\n'
            '%s'
            's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()\n'
            'print("ready", flush=True); signal.pause()\n' % (
                name.encode(), 'signal.signal(signal.SIGTERM, signal.SIG_IGN)\n' if ignore_term else ''))
    child = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == 'ready'
    info = ProcessDescriber().describe(child.pid)
    return child, {'pid': child.pid, 'start_time': info['start_time'], 'exe': info['exe'], 'name': info['name'],
                   'rule': 'iana-unassigned-closed'}


def alive(child):
    return child.poll() is None


@pytest.fixture
def children():
    started = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait()


def test_check_mode_then_real_then_again(tmp_path, children):
    child, target = spawn()
    children.append(child)
    checked = run_module(tmp_path, {'processes': [target]}, check_mode=True)
    assert checked['changed'] is True
    assert checked['processes'][0]['outcome'] == 'would_terminate'
    assert 'pwtest-rogue[%d]' % child.pid in checked['diff']['before'] and checked['diff']['after'] == ''
    assert alive(child)  # check mode changed nothing

    done = run_module(tmp_path, {'processes': [target]})
    assert done['changed'] is True
    assert done['processes'] == [{'pid': child.pid, 'name': 'pwtest-rogue', 'outcome': 'terminated',
                                  'reason': 'ended by SIGTERM', 'rule': 'iana-unassigned-closed'}]
    assert child.wait(timeout=5) == -signal.SIGTERM

    again = run_module(tmp_path, {'processes': [target]})
    assert again['changed'] is False
    assert again['processes'][0]['outcome'] == 'gone'


def test_sigkill_after_the_timeout(tmp_path, children):
    child, target = spawn(ignore_term=True)
    children.append(child)
    started = time.monotonic()
    done = run_module(tmp_path, {'processes': [target], 'timeout': 0.5})
    assert done['processes'][0]['outcome'] == 'killed'
    assert child.wait(timeout=5) == -signal.SIGKILL
    assert time.monotonic() - started >= 0.5


@pytest.mark.parametrize('change', [{'start_time': 1}, {'exe': '/usr/sbin/not-the-gathered-one'}])
def test_a_pid_now_held_by_another_process_is_left_alone(tmp_path, children, change):
    """The gathered identity no longer matches what runs under the pid: as if the pid had been reused."""
    child, target = spawn()
    children.append(child)
    target.update(change)
    done = run_module(tmp_path, {'processes': [target], 'timeout': 0.5})
    assert done['changed'] is False
    assert done['processes'][0]['outcome'] == 'mismatch'
    assert 'pid %d now' % child.pid in done['processes'][0]['reason']
    time.sleep(0.2)
    assert alive(child)


def test_a_recycled_pid_is_never_signalled(tmp_path, children):
    """The gathered process exits; a new process gets the same pid (forced with ns_last_pid); it survives."""
    child, target = spawn()
    children.append(child)
    child.kill()
    child.wait()
    last_pid = '/proc/sys/kernel/ns_last_pid'
    if not os.access(last_pid, os.W_OK):
        pytest.skip('needs root to choose the next pid')
    for _attempt in range(20):
        with open(last_pid, 'w') as handle:
            handle.write(str(target['pid'] - 1))
        successor, _info = spawn()
        children.append(successor)
        if successor.pid == target['pid']:
            break
    else:
        pytest.skip('could not make the kernel reuse the pid (busy machine)')
    done = run_module(tmp_path, {'processes': [target], 'timeout': 0.5})
    assert done['processes'][0]['outcome'] == 'mismatch', done
    time.sleep(0.2)
    assert alive(successor)


def test_protected_processes_and_pid_1_and_the_connection_chain(tmp_path, children):
    child, target = spawn(name='pwtest-guarded')
    children.append(child)
    mine = remediate_kill.read_identity(os.getpid())  # the test runs the module: an ancestor of it
    init = remediate_kill.read_identity(1)
    python = os.path.realpath(sys.executable)  # a pattern with a "/" matches the executable's full path
    done = run_module(tmp_path, {'protected_names': [python], 'processes': [
        target,
        {'pid': mine['pid'], 'start_time': mine['start_time'], 'exe': mine['exe']},
        {'pid': 1, 'start_time': init['start_time']},
    ]})
    assert done['changed'] is False
    outcomes = [(entry['outcome'], entry['reason']) for entry in done['processes']]
    assert outcomes[0][0] == 'protected' and "protected process pattern %r (its executable" % python in outcomes[0][1]
    assert outcomes[1][0] == 'protected' and 'runs this Ansible connection' in outcomes[1][1]
    assert outcomes[2] == ('protected', 'PID 1 is never signalled')
    assert alive(child)


def test_bad_arguments_fail_clearly(tmp_path):
    done = run_module(tmp_path, {'processes': [{'pid': 5}]})
    assert done['failed'] is True and 'start_time' in done['msg']
    done = run_module(tmp_path, {'processes': [], 'timeout': -1})
    assert done['failed'] is True and 'timeout' in done['msg']
