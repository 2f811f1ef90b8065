"""Remediate mode of the port_compliance role against a real seven-host fleet, over SSH.

Hosts (network namespaces) and what the policy (policies/remediate.yml) says of them:

- pwm-host01, pwm-host02 (group fix): a rogue service on TCP 856 and UDP 857; the firewall closes them.
- pwm-host03: the same rogue service; its rule does not opt in to remediation: it stays open.
- pwm-host04 (group kill): the rogue service, and an allowed web listener; the rogue process is ended.
- pwm-host05 (group ssh): a real sshd daemon on TCP 2222 carries the Ansible connection, and the policy
  says 2222 must be closed. The controller knows the port (ansible_port 2222): refused as protected.
- pwm-host06 (group ssh): the same, but the inventory does not say the port; the host-side rail
  (SSH_CONNECTION of the session that runs the module) refuses the block.
- pwm-host07 (group fix): the gather fails (psutil backend without psutil): unknown, never touched.

Runs, in order: check mode with --diff (nothing changes, the diff shows it all), the real run
(connections fail where blocked, answer elsewhere, processes alive except the killed one), a second
real run (changed=0 everywhere), and a report run that lifts every portwarden block.
"""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.fleet.harness import SSHD, play_recap

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(HERE, 'playbooks', 'role_remediate.yml')
POLICY = os.path.join(HERE, 'policies', 'remediate.yml')
HELPERS = os.path.join(REPO, 'tests', 'helpers')
ECHO = os.path.join(HELPERS, 'echo_server.py')
PROBE = os.path.join(HELPERS, 'probe.py')
PIPE = os.path.join(HELPERS, 'tcp_pipe.py')
AS_OF = '2026-12-01'

# The harness suffixes the prefix with PORTWARDEN_FLEET_TAG (two checkouts' fleets at once).
H = dict(('h%d' % index, 'pwm%s-host%02d' % (os.environ.get('PORTWARDEN_FLEET_TAG', ''), index)) for index in range(1, 8))
ROGUE_HOSTS = ('h1', 'h2', 'h3', 'h4', 'h7')


class Site(object):
    """The fleet with its services, and what the tests look at."""

    def __init__(self, fleet, workdir):
        self.fleet = fleet
        self.workdir = workdir
        self.rogues = {}
        self.others = []

    def start(self, host, argv):
        proc = subprocess.Popen(self.fleet.namespace(host).command(argv), stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        return proc

    def probe(self, host, kind, port):
        found = self.fleet.run(host, [sys.executable, PROBE, kind, str(port)], timeout=30)
        return found.stdout.strip()

    def ruleset(self, host):
        return self.fleet.run(host, ['nft', 'list', 'ruleset'], timeout=30).stdout

    def playbook(self, name, mode='remediate', check=False, extra=None, limit=None):
        extra_vars = {'port_compliance_mode': mode, 'port_compliance_policy': POLICY, 'port_compliance_as_of': AS_OF,
                      'port_compliance_fail_on': 'never', 'port_compliance_fail_on_unknown': False,
                      'port_compliance_kill_timeout': 3}
        extra_vars.update(extra or {})
        return self.fleet.role_run(PLAYBOOK, os.path.join(self.workdir, '%s.log' % name),
                                   os.path.join(self.workdir, 'reports'), extra_vars, check=check, limit=limit)


def _hosts(report):
    return dict((entry['host'], entry) for entry in report['hosts'])


@pytest.fixture(scope='module')
def site(module_fleet_factory, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('pwm'))
    proxy = '-o ProxyCommand="ip netns exec %%h %s %s 127.0.0.1 2222"' % (sys.executable, PIPE)
    groups = {'fix': [H['h1'], H['h2'], H['h7']], 'kill': [H['h4']], 'ssh': [H['h5'], H['h6']]}
    hostvars = {H['h5']: {'ansible_port': 2222, 'ansible_ssh_common_args': proxy},
                H['h6']: {'ansible_ssh_common_args': proxy},
                H['h7']: {'port_compliance_backend': 'psutil', 'ansible_python_interpreter': '/usr/bin/python3'}}
    fleet = module_fleet_factory(7, prefix='pwm', workdir=workdir, groups=groups, hostvars=hostvars)
    # ssh looks a non-default port up as [host]:port in known_hosts.
    with open(fleet.path('known_hosts')) as handle:
        key = handle.read().split(None, 1)[1]
    with open(fleet.path('known_hosts'), 'a') as handle:
        handle.write('[%s]:2222 %s' % (H['h5'], key))
    state = Site(fleet, workdir)
    for key in ROGUE_HOSTS:
        proc = state.start(H[key], [sys.executable, ECHO, 'pwm-rogue', '856', '857'])
        assert proc.stdout.readline().strip() == 'ready'
        state.rogues[key] = proc
    state.web = fleet.listen(H['h4'], {'name': 'pwm-web', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 8080}]})
    for key in ('h5', 'h6'):  # a real sshd daemon that carries the Ansible connection over TCP 2222
        state.others.append(state.start(H[key], [SSHD, '-D', '-f', fleet.sshd_config, '-o', 'ListenAddress=127.0.0.1:2222']))
    for key in ('h5', 'h6'):
        for _attempt in range(50):
            if state.probe(H[key], 'tcp', 2222) == 'open':
                break
        else:
            raise AssertionError('sshd on %s:2222 did not come up' % H[key])
    try:
        yield state
    finally:
        for proc in list(state.rogues.values()) + state.others:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@pytest.fixture(scope='module')
def check_run(site):
    before = dict((key, site.ruleset(host)) for key, host in H.items())
    output, report = site.playbook('check', check=True)
    return before, output, report


@pytest.fixture(scope='module')
def real_run(site, check_run):
    output, report = site.playbook('real')
    return output, report


def test_check_mode_changes_nothing_and_shows_every_change(site, check_run):
    before, output, report = check_run
    for key, host in H.items():
        assert site.ruleset(host) == before[key], key
    for key in ROGUE_HOSTS:
        assert site.rogues[key].poll() is None, key
    assert site.probe(H['h1'], 'tcp', 856) == 'open' and site.probe(H['h1'], 'udp', 857) == 'open'
    # The diff shows the table a real run would make, and the process it would end.
    assert 'table inet portwarden' in output
    assert 'pwm-rogue[%d]' % site.rogues['h4'].pid in output
    assert dict((host, counts['changed']) for host, counts in play_recap(output).items()) == dict(
        (H[key], 1 if key in ('h1', 'h2', 'h4') else 0) for key in H)
    hosts = _hosts(report)
    h1 = hosts[H['h1']]
    assert h1['status'] == 'drift'  # check mode judges the host as it is
    assert sorted((f['protocol'], f['port'], f['remediation']['status']) for f in h1['findings']) == [
        ('tcp', 856, 'planned'), ('udp', 857, 'planned')]
    assert sorted(action['outcome'] for action in h1['remediation']['actions']) == ['would_apply', 'would_apply']
    assert [a['outcome'] for a in hosts[H['h4']]['remediation']['actions']] == ['would_terminate']


def test_firewall_closes_the_ports_and_the_service_keeps_running(site, real_run):
    output, report = real_run
    # Changed exactly where something was changed: not where the only change was refused or not asked for.
    assert dict((host, counts['changed']) for host, counts in play_recap(output).items()) == dict(
        (H[key], 1 if key in ('h1', 'h2', 'h4') else 0) for key in H)
    hosts = _hosts(report)
    for key in ('h1', 'h2'):
        entry = hosts[H[key]]
        assert entry['status'] == 'compliant', entry
        assert sorted((f['protocol'], f['port'], f['status'], f['remediation']['status']) for f in entry['findings']) == [
            ('tcp', 856, 'remediated', 'verified'), ('udp', 857, 'remediated', 'verified')]
        actions = sorted((a['strategy'], a['target'], a['rules'], a['outcome']) for a in entry['remediation']['actions'])
        assert actions == [('firewall', 'tcp 0.0.0.0 port 856', ['unassigned-firewall'], 'applied'),
                           ('firewall', 'udp 0.0.0.0 port 857', ['unassigned-firewall'], 'applied')]
        assert site.probe(H[key], 'tcp', 856) == 'blocked'
        assert site.probe(H[key], 'udp', 857) == 'blocked'
        assert site.rogues[key].poll() is None  # the service keeps running
        assert 'unassigned-firewall' in site.ruleset(H[key])
    # The same ports on a host whose rule does not opt in still answer.
    assert hosts[H['h3']]['status'] == 'drift' and hosts[H['h3']]['remediation']['actions'] == []
    assert site.probe(H['h3'], 'tcp', 856) == 'open' and site.probe(H['h3'], 'udp', 857) == 'open'
    assert 'portwarden' not in site.ruleset(H['h3'])
    assert report['summary']['remediated_findings'] >= 5


def test_kill_ends_exactly_the_gathered_process(site, real_run):
    _output, report = real_run
    entry = _hosts(report)[H['h4']]
    assert site.rogues['h4'].wait(timeout=10) is not None
    assert all(proc.poll() is None for proc in [site.web.proc]), 'the allowed listener was touched'
    assert entry['status'] == 'compliant'
    assert [(a['strategy'], a['target'], a['outcome']) for a in entry['remediation']['actions']] == [
        ('kill', 'pwm-rogue[%d]' % site.rogues['h4'].pid, 'terminated')]
    assert sorted((f['port'], f['status']) for f in entry['findings']) == [(856, 'remediated'), (857, 'remediated')]


@pytest.mark.parametrize('key, rail', [('h5', 'tcp port 2222 carries the live Ansible connection'),
                                       ('h6', 'tcp port 2222 carries the live SSH connection (SSH_CONNECTION)')])
def test_the_port_of_the_live_connection_is_protected(site, real_run, key, rail):
    _output, report = real_run
    entry = _hosts(report)[H[key]]
    [finding] = [f for f in entry['findings'] if f['port'] == 2222]
    assert finding['status'] == 'drift' and finding['remediation']['status'] == 'protected'
    assert rail in finding['remediation']['reason']
    assert [(a['target'], a['outcome']) for a in entry['remediation']['actions']] == [('tcp 127.0.0.1 port 2222', 'protected')]
    assert '2222' not in site.ruleset(H[key])
    assert site.probe(H[key], 'tcp', 2222) == 'open'


def test_an_unknown_host_is_never_touched(site, real_run):
    _output, report = real_run
    entry = _hosts(report)[H['h7']]
    assert entry['status'] == 'unknown'
    assert entry['remediation'] is None or entry['remediation']['actions'] == []
    assert site.probe(H['h7'], 'tcp', 856) == 'open'
    assert site.rogues['h7'].poll() is None


def test_second_run_changes_nothing(site, real_run):
    output, report = site.playbook('again')
    recap = play_recap(output)
    assert set(recap) == set(H.values())
    assert dict((host, counts['changed']) for host, counts in recap.items()) == dict((host, 0) for host in H.values())
    hosts = _hosts(report)
    assert hosts[H['h1']]['status'] == 'compliant'
    assert sorted(a['outcome'] for a in hosts[H['h1']]['remediation']['actions']) == ['unchanged', 'unchanged']
    assert site.probe(H['h1'], 'tcp', 856) == 'blocked'


def test_lifting_the_blocks_restores_the_service(site, real_run):
    # The fleet report of the two hosts (with --limit the role would write a part by default).
    _output, report = site.playbook('lift', mode='report', extra={'port_compliance_firewall_lift': True,
                                                                  'port_compliance_report_scope': 'fleet'},
                                    limit=','.join([H['h1'], H['h2']]))
    for key in ('h1', 'h2'):
        assert site.probe(H[key], 'tcp', 856) == 'open'
        assert site.probe(H[key], 'udp', 857) == 'open'
        assert 'portwarden' not in site.ruleset(H[key])
        assert _hosts(report)[H[key]]['status'] == 'drift'
