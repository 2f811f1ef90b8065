"""Attack: a rogue takes over a port a waiver grants to one process, and hopes the waiver covers it.

The waiver grants TCP 856 to a vendor agent: a copy of this Python at ``.../pwvb/agent``, its comm ``pwv-agent``.
Real processes hold real sockets in fresh network namespaces; the real ``portwarden gather`` reads them (as root,
and as nobody) and the verdict comes from the evaluation the audit uses. Each attack must leave the port drift:

- a rogue that takes the agent's name (comm) but runs another executable;
- a rogue whose name is the agent's path, against a waiver that names the agent by path in ``processes``;
- the agent itself, sharing its listening socket with a rogue child it passed the fd to;
- a gather without root, which sees the socket but no process: never waived, and the verdict unknown too;
- names carrying glob characters (``*``, ``[t]``) and an escape sequence, which are text, never patterns, and are
  shown escaped by ``portwarden explain``.
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from tests.helpers.gather import CLI_MODULE, gather_in
from tests.helpers.hostile import listen_as
from tests.helpers.netns import Listeners, Namespace, have_netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]

TODAY = datetime.date(2027, 1, 20)
AGENT = 'pwv-agent'
PYTHON = os.path.realpath(sys.executable)
CLOSED = {'id': 'iana-unassigned-closed', 'match': {'ports': 'iana:unassigned'}, 'expect': 'closed', 'severity': 'high'}
SOCKET = [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856}]

# Run by the agent's binary: hold 856, then start a rogue (this Python, named pwv-rogue) that inherits the
# listening socket, and report both pids; both exit when stdin closes.
SHARE = '\n'.join([
    'import ctypes, json, os, socket, subprocess, sys',
    'ctypes.CDLL(None).prctl(15, b"pwv-agent", 0, 0, 0)',
    'sock = socket.socket()',
    'sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
    'sock.bind(("0.0.0.0", 856))',
    'sock.listen(8)',
    'rogue = subprocess.Popen([sys.argv[1], "-c", "import ctypes, sys; ctypes.CDLL(None).prctl(15, b\'pwv-rogue\', 0, 0, 0);'
    ' sys.stdin.read()"], pass_fds=[sock.fileno()], stdin=subprocess.PIPE)',
    'print(json.dumps({"pids": [os.getpid(), rogue.pid], "sockets": []}), flush=True)',
    'sys.stdin.read()',
    'rogue.stdin.close()',
    'rogue.wait()',
])


@pytest.fixture(scope='module')
def agent(tmp_path_factory):
    """The agent's binary: this Python, copied to .../pwvb/agent."""
    directory = tmp_path_factory.mktemp('pwv') / 'pwvb'
    directory.mkdir()
    path = str(directory / 'agent')
    shutil.copy2(PYTHON, path)
    return path


def policy(**bound):
    waiver = {'rule': 'iana-unassigned-closed', 'ports': [856], 'reason': 'vendor agent', 'ticket': 'PWV-1',
              'expires': '2027-06-30'}
    waiver.update(bound)
    return {'policy_version': 1, 'name': 'pwv', 'rules': [CLOSED], 'waivers': [waiver]}


def judge(gathered, **bound):
    ev._ENDPOINTS.clear()
    result = ev.evaluate_host(gathered, ev.compile_policy(policy(**bound)), 'pwv-host', [], TODAY)
    (finding,) = [finding for finding in result['findings'] if finding['port'] == 856]
    return result, finding


def gather_as_root(namespace):
    code, gathered = gather_in(namespace, 'auto')
    assert code == 0, gathered['coverage']
    return gathered


def test_a_rogue_with_the_agents_name_is_not_covered_by_its_executable(agent):
    with Namespace() as namespace:
        rogue = listen_as(namespace, PYTHON, AGENT, SOCKET)
        gathered = gather_as_root(namespace)
    result, finding = judge(gathered, exe=[agent])
    assert finding['status'] == 'drift' and result['status'] == 'drift'
    assert finding['message'].endswith('; waiver (PWV-1) does not cover %s[%d] with executable %s; allowed executables: %s'
                                       % (AGENT, rogue.pids[0], PYTHON, agent))
    # The name alone is the rogue's own choice: a waiver bound by name only is fooled, which is why the README
    # says to bind by exe or unit.
    assert judge(gathered, processes=[AGENT])[1]['status'] == 'waived'


def test_the_agent_is_covered(agent):
    with Namespace() as namespace:
        listen_as(namespace, agent, AGENT, SOCKET)
        gathered = gather_as_root(namespace)
    for bound in ({'exe': [agent]}, {'processes': [agent]}, {'processes': ['*/pwvb/agent']}, {'users': ['root']}):
        assert judge(gathered, **bound)[1]['status'] == 'waived', bound


def test_a_rogue_named_like_the_agents_path_is_not_covered(agent):
    """comm is anything up to 15 bytes, a slash included: a path pattern in ``processes`` matches the executable only."""
    with Namespace() as namespace:
        rogue = listen_as(namespace, PYTHON, '/pwvb/agent', SOCKET)
        gathered = gather_as_root(namespace)
    (entry,) = gathered['sockets']
    assert [proc['name'] for proc in entry['processes']] == ['/pwvb/agent']
    result, finding = judge(gathered, processes=['*/pwvb/agent'])
    assert finding['status'] == 'drift', finding['message']
    assert finding['message'].endswith('does not cover /pwvb/agent[%d]; allowed processes: */pwvb/agent' % rogue.pids[0])
    assert result['status'] == 'drift'


def test_the_agent_sharing_its_socket_with_a_rogue_is_not_waived(agent):
    with Namespace() as namespace:
        proc = subprocess.Popen(namespace.command([agent, '-c', SHARE, PYTHON]), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        holder = Listeners(proc, json.loads(proc.stdout.readline()))
        namespace.holders.append(holder)
        gathered = gather_as_root(namespace)
    agent_pid, rogue_pid = holder.pids
    (entry,) = gathered['sockets']
    expected = sorted([(agent_pid, agent), (rogue_pid, PYTHON)])
    assert sorted((proc['pid'], proc['exe']) for proc in entry['processes']) == expected
    result, finding = judge(gathered, exe=[agent])
    assert finding['status'] == 'drift' and result['status'] == 'drift'
    assert finding['message'].endswith('; waiver (PWV-1) does not cover pwv-rogue[%d] with executable %s; allowed '
                                       'executables: %s' % (rogue_pid, PYTHON, agent))
    assert judge(gathered, exe=[agent, PYTHON])[1]['status'] == 'waived'  # both named: both covered


def _gather_as_nobody(namespace):
    # The system python as nobody (the test venv's interpreter may live under /root, which nobody cannot read).
    site_packages = sysconfig.get_paths()['purelib']
    nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
              'env', 'PYTHONPATH=%s%s%s' % (os.environ['PYTHONPATH'], os.pathsep, site_packages)]
    code, gathered = gather_in(namespace, 'auto', python='/usr/bin/python3', prefix=nobody)
    assert code == 1 and gathered['coverage']['privileged'] is False
    return gathered


def test_a_gather_without_root_never_waives(agent, tmp_path):
    with Namespace() as namespace:
        listen_as(namespace, agent, AGENT, SOCKET)  # the granted agent itself: not seen, so not waived
        gathered = _gather_as_nobody(namespace)
    (entry,) = gathered['sockets']
    assert entry['processes'] == []
    for bound in ({'exe': [agent]}, {'processes': [AGENT]}, {'users': ['*']}, {'units': ['*']}):
        result, finding = judge(gathered, **bound)
        assert finding['status'] == 'drift' and not finding['waived'], bound
        assert 'waiver (PWV-1) cannot be checked: no process holding it is known' in finding['message']
        assert any(reason.startswith('waivers bound to processes could not be checked on 1 finding') for reason in
                   result['reasons'])
        assert ev.gate(result, fail_on='critical', fail_on_unknown=True)
    # explain says so too, from the same gather
    (tmp_path / 'pwv-host.json').write_text(json.dumps(gathered))
    (tmp_path / 'policy.json').write_text(json.dumps(policy(exe=[agent])))
    proc = subprocess.run([sys.executable, '-m', CLI_MODULE, 'explain', '--policy', str(tmp_path / 'policy.json'),
                           '--port', '856', str(tmp_path / 'pwv-host.json')], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert 'waiver (PWV-1): it is bound to exe %s and cannot be checked: no process holding it is known' % agent \
        in proc.stdout
    assert 'decision: drift (decided by iana-unassigned-closed)' in proc.stdout
    assert 'host verdict also: waivers bound to processes could not be checked' in proc.stdout


@pytest.mark.parametrize('name', ['*', 'pwv-agen[t]', 'pwv-agent*', 'pwv\x1b[2J*'])
def test_glob_characters_in_a_name_are_text(agent, tmp_path, name):
    with Namespace() as namespace:
        listen_as(namespace, PYTHON, name, SOCKET)
        gathered = gather_as_root(namespace)
    for bound in ({'processes': [AGENT]}, {'processes': ['pwv-agen?']}, {'exe': [agent]}):
        assert judge(gathered, **bound)[1]['status'] == 'drift', (name, bound)
    (tmp_path / 'pwv-host.json').write_text(json.dumps(gathered))
    (tmp_path / 'policy.json').write_text(json.dumps(policy(processes=[AGENT])))
    proc = subprocess.run([sys.executable, '-m', CLI_MODULE, 'explain', '--policy', str(tmp_path / 'policy.json'),
                           '--port', '856', str(tmp_path / 'pwv-host.json')], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert '\x1b' not in proc.stdout
    shown = name.replace('\x1b', '\\x1b')
    assert 'held by: %s[' % shown in proc.stdout
    assert 'does not cover %s[' % shown in proc.stdout
