"""Attack: a rogue that names itself ``sshd`` is never killed, because protection rested on the process name alone.

Any user can set their process's name (comm) to ``sshd`` with prctl(PR_SET_NAME). The protection must rest on the
executable: a process called ``sshd`` that runs /tmp/.../x is not protected (and the report says it only had the
name), one that runs the system's /usr/sbin/sshd is. Real processes, the real port_kill module.
"""

import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import remediate_plan as rp
from ansible_collections.portwarden.compliance.plugins.module_utils.gather_owners import ProcessDescriber
from tests.helpers.kill_module import run_kill
from tests.helpers.netns import Namespace, have_netns

SSHD = '/usr/sbin/sshd'
pytestmark = pytest.mark.skipif(not sys.platform.startswith('linux'), reason='needs /proc')

# A listener that calls itself NAME, then waits.
LISTENER = ('import ctypes, signal, socket\n'
            'ctypes.CDLL(None).prctl(15, ctypes.c_char_p(%r), 0, 0, 0)\n'
            's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()\n'
            'print("ready", flush=True); signal.pause()\n')


def identity(pid):
    info = ProcessDescriber().describe(pid)
    return {'pid': pid, 'start_time': info['start_time'], 'exe': info['exe'], 'name': info['name'], 'rule': 'closed'}


@pytest.fixture
def rogue_named_sshd(tmp_path):
    """A real process named ``sshd`` whose executable is a copy of python at <tmp>/x."""
    exe = tmp_path / 'x'
    shutil.copy(os.path.realpath(sys.executable), str(exe))
    child = subprocess.Popen([str(exe), '-c', LISTENER % b'sshd'], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == 'ready'
        yield child, str(exe)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def test_a_rogue_named_sshd_running_tmp_x_is_killed_and_the_name_only_match_is_reported(tmp_path, rogue_named_sshd):
    child, exe = rogue_named_sshd
    target = identity(child.pid)
    assert (target['name'], target['exe']) == ('sshd', exe)
    done = run_kill(tmp_path, [target])
    [entry] = done['processes']
    assert entry['outcome'] == 'terminated', entry
    assert "named like the protected process 'sshd'" in entry['reason'] and exe in entry['reason'], entry
    assert child.wait(timeout=10) < 0


def test_the_plan_does_not_protect_a_name_and_says_so():
    rogue = {'pid': 4242, 'name': 'sshd', 'user': 'mallory', 'uid': 1000, 'exe': '/tmp/x', 'unit': None, 'start_time': 5}
    protection = rp.Protection(names=['sshd'])
    assert protection.process_reason(rogue) is None
    assert "named like the protected process 'sshd'" in protection.process_note(rogue)


@pytest.mark.parametrize('exe', ['/usr/sbin/sshd', '/usr/lib/openssh/sshd-session', None])
def test_the_system_executable_or_an_unknown_one_stays_protected(exe):
    proc = {'pid': 4242, 'name': 'sshd' if exe != '/usr/lib/openssh/sshd-session' else 'sshd-session', 'user': 'root',
            'uid': 0, 'exe': exe, 'unit': None, 'start_time': 5}
    assert rp.Protection(names=['sshd', 'sshd-session']).process_reason(proc) is not None


@pytest.mark.skipif(not have_netns() or not os.path.exists(SSHD), reason='needs root, ip netns and OpenSSH sshd')
def test_the_real_sshd_daemon_is_protected(tmp_path):
    key = tmp_path / 'host_key'
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(key)], check=True)
    os.makedirs('/run/sshd', mode=0o755, exist_ok=True)
    with Namespace() as ns:
        daemon = subprocess.Popen(ns.command([SSHD, '-D', '-e', '-f', '/dev/null', '-h', str(key), '-p', '856',
                                              '-o', 'PidFile=none', '-o', 'UsePAM=no']),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            for _attempt in range(100):
                probe = ns.run(['ss', '-Htlnp', 'sport = :856'])
                if 'sshd' in probe.stdout:
                    break
                assert daemon.poll() is None, daemon.stderr.read()
                subprocess.run(['sleep', '0.05'], check=False)
            target = identity(daemon.pid)
            assert target['exe'] == SSHD
            done = run_kill(tmp_path, [target])
            [entry] = done['processes']
            assert entry['outcome'] == 'protected' and SSHD in entry['reason'], entry
            assert daemon.poll() is None
        finally:
            daemon.kill()
            daemon.wait()
