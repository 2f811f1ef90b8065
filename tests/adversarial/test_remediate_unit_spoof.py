"""Attack: a process in a cgroup that only *names* a system unit makes the service strategy stop that system unit.

The unit used to be the last component of the cgroup path, so a user's own ``…/user@1000.service/app.slice/ssh.service``
(or a container's inner systemd, ``…/docker-<id>.scope/system.slice/ssh.service``) was taken for the system's
``ssh.service``, which the service strategy then stopped and disabled. Here the exact cgroup path is made in the real
cgroup v2 hierarchy, a real listener is moved into it, and the real remediation (port_remediate over the local
connection, systemctl played by tests/helpers/fake_systemctl.py, whose ``stop`` really ends the processes) runs:
the system ssh.service must never be asked about, the listener must survive, and the report must say why.
"""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.helpers.local_play import local_task, stand_in_systemctl, systemctl_calls
from tests.helpers.netns import Namespace, have_netns, writable_cgroup2_root

ROOT = writable_cgroup2_root()
pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not have_netns(), reason='needs root and ip netns'),
    pytest.mark.skipif(ROOT is None, reason='needs a writable cgroup v2 hierarchy'),
]

ECHO = os.path.join(REPO, 'tests', 'helpers', 'echo_server.py')
CONTAINER = 'c0ffee' * 10 + 'beef'  # 64 hex digits
POD = '1b2c3d4e-5f60-4172-8394-a5b6c7d8e9f0'
POLICY = '''---
policy_version: 1
name: unit-spoof
rules:
  - id: unassigned-service
    description: Unassigned ports stay closed; the systemd unit that listens there is stopped
    match: {ports: iana:unassigned}
    expect: closed
    severity: high
    remediate: service
'''
SYSTEM_UNITS = {'ssh.service': {'active': True, 'enabled': True, 'masked': False}}

SPOOFS = {
    'user-manager': 'user.slice/user-1000.slice/user@1000.service/app.slice/ssh.service',
    'docker-inner-systemd': 'system.slice/docker-%s.scope/system.slice/ssh.service' % CONTAINER,
    'kubepods-cgroupfs': 'kubepods/burstable/pod%s/%s/system.slice/ssh.service' % (POD, CONTAINER),
    'kubepods-systemd': ('kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/cri-containerd-%s.scope/'
                         'system.slice/ssh.service' % (POD.replace('-', '_'), CONTAINER)),
    'lxc': 'lxc.payload.pwtest/system.slice/ssh.service',
    'init-scope': 'init.scope/ssh.service',
    'outside-system-slice': 'pwtest.slice/ssh.service',
}


class Cgroup(object):
    """A cgroup path made (with its missing parents) under the cgroup v2 root, removed again with them."""

    def __init__(self, relative):
        self.path = os.path.join(ROOT, relative)
        self.made = []

    def __enter__(self):
        parts = os.path.relpath(self.path, ROOT).split('/')
        for depth in range(1, len(parts) + 1):
            path = os.path.join(ROOT, *parts[:depth])
            if not os.path.isdir(path):
                os.mkdir(path)
                self.made.append(path)
        return self

    def move(self, pid):
        with open(os.path.join(self.path, 'cgroup.procs'), 'w') as handle:
            handle.write(str(pid))

    def __exit__(self, *exc):
        for path in reversed(self.made):
            with open(os.path.join(path, 'cgroup.procs')) as handle:
                pids = [line.strip() for line in handle if line.strip()]
            for pid in pids:
                try:
                    with open(os.path.join(ROOT, 'cgroup.procs'), 'w') as handle:
                        handle.write(pid)
                except OSError:
                    pass
            try:
                os.rmdir(path)
            except OSError:
                pass


def remediate(tmp_path, relative, units, allowed_slices=None):
    """Start the rogue (TCP 856, UDP 857) in ``relative``, remediate with the service strategy; returns
    (result, output, systemctl calls, the rogue's Popen)."""
    policy = tmp_path / 'policy.yml'
    policy.write_text(POLICY)
    _bin_dir, env = stand_in_systemctl(tmp_path, units)
    args = {'policy': str(policy), 'as_of': '2026-12-01'}
    if allowed_slices is not None:
        args['service_slices'] = allowed_slices
    with Namespace() as ns, Cgroup(relative) as cgroup:
        rogue = subprocess.Popen(ns.command([sys.executable, ECHO, 'pwtest-rogue', '856', '857']),
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert rogue.stdout.readline().strip() == 'ready'
            cgroup.move(rogue.pid)
            with open('/proc/%d/cgroup' % rogue.pid) as handle:
                assert '0::/%s\n' % relative in handle.read()
            result, output = local_task(ns, tmp_path, 'portwarden.compliance.port_remediate', args, environment=env)
            alive = rogue.poll() is None
        finally:
            if rogue.poll() is None:
                rogue.kill()
            rogue.wait()
    return result, output, systemctl_calls(env), alive


@pytest.mark.parametrize('relative', list(SPOOFS.values()), ids=list(SPOOFS))
def test_a_cgroup_that_names_ssh_service_never_touches_the_system_ssh_service(tmp_path, relative):
    result, output, calls, alive = remediate(tmp_path, relative, SYSTEM_UNITS)
    assert not result.get('failed'), output[-4000:]
    assert [argv for argv in calls if 'ssh.service' in argv] == [], calls
    assert alive, 'the stand-in systemd stopped ssh.service and so ended the rogue'
    [proc] = [finding['processes'][0] for finding in result['findings'] if finding['port'] == 856]
    assert proc['unit'] != 'ssh.service'  # the report never calls it the system's ssh.service
    for finding in result['findings']:
        note = finding['remediation']
        assert (finding['status'], note['strategy'], note['status']) == ('drift', 'service', 'protected'), finding
        assert 'the service strategy stops only' in note['reason'], note
    assert result['status'] == 'drift'


def test_the_report_names_the_user_manager(tmp_path):
    result, _output, _calls, _alive = remediate(tmp_path, SPOOFS['user-manager'], SYSTEM_UNITS)
    [finding] = [finding for finding in result['findings'] if finding['port'] == 856]
    assert finding['processes'][0]['unit'] == '/' + SPOOFS['user-manager']
    assert 'user@1000.service' in finding['remediation']['reason'], finding['remediation']


def test_explicitly_allowing_user_slice_still_never_reaches_into_a_user_manager(tmp_path):
    result, _output, calls, alive = remediate(tmp_path, SPOOFS['user-manager'], SYSTEM_UNITS,
                                              allowed_slices=['system.slice', 'user.slice'])
    assert [argv for argv in calls if 'ssh.service' in argv] == [] and alive
    assert set(finding['remediation']['status'] for finding in result['findings']) == {'protected'}


def test_a_service_in_a_slice_allowed_explicitly_is_stopped(tmp_path):
    units = {'pwtest-allowed.service': {'active': True, 'enabled': True, 'masked': False}}
    result, output, calls, alive = remediate(tmp_path, 'pwtest.slice/pwtest-allowed.service', units,
                                             allowed_slices=['system.slice', 'pwtest.slice'])
    assert not alive, output[-4000:]
    assert ['stop', 'pwtest-allowed.service'] in [[word for word in argv if not word.startswith('-')] for argv in calls]
    assert result['status'] == 'compliant', result


def test_a_system_unit_with_escapes_is_stopped_by_its_exact_name(tmp_path):
    unit = 'openvpn@pw\\x2dvpn.service'  # systemd-escape "pw-vpn"
    units = {unit: {'active': True, 'enabled': True, 'masked': False}}
    result, output, calls, alive = remediate(tmp_path, 'system.slice/system-openvpn.slice/' + unit, units)
    assert not alive, output[-4000:]
    changes = [[word for word in argv if not word.startswith('-')] for argv in calls]
    assert ['stop', unit] in changes and ['disable', unit] in changes, changes
    assert set(word for argv in changes for word in argv[1:]) == {unit}
    assert result['status'] == 'compliant', result


def test_the_kernel_refuses_a_cgroup_name_with_a_newline():
    # A newline in a cgroup name would forge a second "0::/system.slice/ssh.service" line in /proc/PID/cgroup;
    # the kernel refuses it (and unit_from_cgroup refuses text with two unified lines, see the unit tests).
    forged = os.path.join(ROOT, 'pwtest\n0::')
    with pytest.raises(OSError) as raised:
        os.mkdir(forged)
    assert raised.value.errno == 22
