"""Attack on the report's honesty: check mode said "nftables block added" (and "stopped and disabled") for changes
it only planned. Every check-mode action and finding must say what *would* happen; nothing may change.

Real run: port_remediate with ``--check`` over the local connection in a network namespace, a rogue blocked by the
firewall strategy and one in a real system.slice cgroup stopped by the service strategy (systemctl played by
tests/helpers/fake_systemctl.py).
"""

import os
import subprocess
import sys
import uuid

import pytest

from tests.adversarial.test_remediate_unit_spoof import Cgroup
from tests.conftest import REPO
from tests.helpers.local_play import local_task, stand_in_systemctl, systemctl_calls
from tests.helpers.netns import Namespace, have_netns, writable_cgroup2_root

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not have_netns(), reason='needs root and ip netns'),
    pytest.mark.skipif(writable_cgroup2_root() is None, reason='needs a writable cgroup v2 hierarchy'),
]
ECHO = os.path.join(REPO, 'tests', 'helpers', 'echo_server.py')
POLICY = '''---
policy_version: 1
name: check-mode
rules:
  - id: by-firewall
    description: closed by the firewall
    match: {ports: [858, 859]}
    expect: closed
    severity: high
    remediate: firewall
  - id: by-service
    description: closed by stopping the unit
    match: {ports: [860, 861]}
    expect: closed
    severity: high
    remediate: service
'''
DONE_WORDS = ('block added', 'stopped and disabled', 'ended by')


def test_check_mode_says_would_for_every_change_it_only_plans(tmp_path):
    unit = 'pwtest-cm-%s.service' % uuid.uuid4().hex[:8]
    policy = tmp_path / 'policy.yml'
    policy.write_text(POLICY)
    _bin, env = stand_in_systemctl(tmp_path, {unit: {'active': True, 'enabled': True, 'masked': False}})
    with Namespace() as ns, Cgroup('system.slice/' + unit) as cgroup:
        rogues = [subprocess.Popen(ns.command([sys.executable, ECHO, 'pwtest-rogue', str(tcp), str(udp)]),
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                  for tcp, udp in ((858, 859), (860, 861))]
        try:
            for rogue in rogues:
                assert rogue.stdout.readline().strip() == 'ready'
            cgroup.move(rogues[1].pid)
            result, output = local_task(ns, tmp_path, 'portwarden.compliance.port_remediate',
                                        {'policy': str(policy), 'as_of': '2026-12-01'}, check=True, environment=env)
            assert all(rogue.poll() is None for rogue in rogues)
            assert ns.run(['nft', 'list', 'ruleset']).stdout.strip() == ''
        finally:
            for rogue in rogues:
                rogue.kill()
                rogue.wait()
    assert not result.get('failed'), output[-4000:]
    assert [argv[0] for argv in systemctl_calls(env) if argv[0] not in ('show', 'is-active', 'is-enabled', 'list-unit-files')] == []
    actions = result['remediation']['actions']
    assert sorted((a['strategy'], a['outcome']) for a in actions) == [
        ('firewall', 'would_apply'), ('firewall', 'would_apply'), ('service', 'would_apply')], actions
    for action in actions:
        assert action['detail'].startswith('would '), action
        assert not any(words in action['detail'] for words in DONE_WORDS), action
    for finding in result['findings']:
        note = finding['remediation']
        assert note['status'] == 'planned', note
        assert note['reason'].startswith('would '), note
    assert 'check mode: nothing changed' in result['msg']
