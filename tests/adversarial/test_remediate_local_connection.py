"""Attack: with ``-c local`` (ansible-pull) the connection has no port, so a rule on sshd's port blocks sshd.

A real sshd listens in a network namespace on TCP 856, which the policy says must be closed by the firewall; the real
port_remediate runs there with ``ansible-playbook -c local``. No block may go on 856 and the report must say it is
protected and why; a rogue's ports (858/859) are still blocked, so the rail does not switch remediation off.
"""

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.helpers.local_play import local_task
from tests.helpers.netns import Namespace, have_netns
from tests.helpers.nft import uncounted

SSHD = '/usr/sbin/sshd'
ECHO = os.path.join(REPO, 'tests', 'helpers', 'echo_server.py')
pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not have_netns(), reason='needs root and ip netns'),
    pytest.mark.skipif(not os.path.exists(SSHD), reason='needs OpenSSH sshd'),
]
POLICY = '''---
policy_version: 1
name: local-connection
rules:
  - id: unassigned-firewall
    description: Unassigned ports stay closed; the firewall closes them
    match: {ports: iana:unassigned}
    expect: closed
    severity: high
    remediate: firewall
'''


def _wait_listening(ns, port, proc):
    for _attempt in range(200):
        if ':%d ' % port in ns.run(['ss', '-Htln']).stdout:
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise AssertionError('nothing listens on %d' % port)


def test_a_local_run_never_blocks_the_port_sshd_listens_on(tmp_path):
    key = tmp_path / 'host_key'
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', str(key)], check=True)
    os.makedirs('/run/sshd', mode=0o755, exist_ok=True)
    policy = tmp_path / 'policy.yml'
    policy.write_text(POLICY)
    with Namespace() as ns:
        sshd = subprocess.Popen(ns.command([SSHD, '-D', '-e', '-f', '/dev/null', '-h', str(key), '-p', '856',
                                            '-o', 'PidFile=none', '-o', 'UsePAM=no']),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        rogue = subprocess.Popen(ns.command([sys.executable, ECHO, 'pwtest-rogue', '858', '859']),
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert rogue.stdout.readline().strip() == 'ready'
            _wait_listening(ns, 856, sshd)
            result, output = local_task(ns, tmp_path, 'portwarden.compliance.port_remediate',
                                        {'policy': str(policy), 'as_of': '2026-12-01'})
            assert not result.get('failed'), output[-4000:]
            table = ns.run(['nft', 'list', 'ruleset']).stdout
            assert '858' in table and '859' in table, table  # the rogue's ports are blocked
            assert '856' not in table, table
            notes = dict(((f['protocol'], f['port']), f['remediation']) for f in result['findings'])
            assert notes[('tcp', 856)]['status'] == 'protected', notes
            assert 'the local connection has no port of its own' in notes[('tcp', 856)]['reason']
            assert 'sshd[%d]' % sshd.pid in notes[('tcp', 856)]['reason'] and SSHD in notes[('tcp', 856)]['reason']
            assert ('firewall', 'protected') in [(a['strategy'], a['outcome']) for a in result['remediation']['actions']
                                                 if '856' in a['target']]
            assert ns.run([sys.executable, os.path.join(REPO, 'tests', 'helpers', 'probe.py'), 'tcp', '856']).stdout.strip() == 'open'
        finally:
            for proc in (sshd, rogue):
                proc.kill()
                proc.wait()


def test_a_dual_stack_listener_is_blocked_for_both_families(tmp_path):
    policy = tmp_path / 'policy.yml'
    policy.write_text(POLICY)
    with Namespace() as ns:
        ns.listen({'sockets': [{'protocol': 'tcp', 'address': '::', 'port': 858, 'v6only': False},
                               {'protocol': 'udp', 'address': '0.0.0.0', 'port': 859}]})
        result, output = local_task(ns, tmp_path, 'portwarden.compliance.port_remediate',
                                    {'policy': str(policy), 'as_of': '2026-12-01'})
        assert not result.get('failed'), output[-4000:]
        assert [(a['target'], a['outcome']) for a in result['remediation']['actions']] == [
            ('tcp any address port 858', 'applied'), ('udp 0.0.0.0 port 859', 'applied')], result['remediation']
        assert result['status'] == 'compliant', result['findings']
        table = uncounted(ns.run(['nft', 'list', 'table', 'inet', 'portwarden']).stdout)
        assert 'tcp_ports {' in table and '858 comment' in table, table
