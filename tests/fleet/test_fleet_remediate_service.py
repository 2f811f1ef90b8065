"""The ``service`` strategy of remediate mode against a real three-host fleet, over SSH.

This machine has no systemd as PID 1, so the one step that cannot run for real is systemd itself:
``ansible.builtin.systemd_service`` runs for real, but the ``systemctl`` it finds first on PATH is
tests/helpers/fake_systemctl.py, which keeps each host's unit state in a JSON file, logs every call,
and on ``stop`` really ends the processes in the unit's cgroup, as systemd would. Everything else is
real: the listeners, their cgroups (``/sys/fs/cgroup[/unified]/system.slice/<unit>``, so the gather reads the
unit from /proc/PID/cgroup), the SSH connection, the role, the action and the reports.

Hosts and what the policy (policies/remediate_service.yml: IANA-unassigned ports closed, ``remediate: service``)
makes of them:

- pws-host01: a rogue service (TCP 856, UDP 857) in unit pwtest-rogue-pws1.service, active and enabled:
  stopped (its process gets SIGTERM) and disabled.
- pws-host02: nothing the service strategy may touch: a listener in a ``.scope`` (856/857), one in the
  root cgroup, no unit at all (858/859): unavailable; and one named ``sshd`` in
  pwtest-sshd-pws2.service (863/864): protected, not by its name (a copy of python may call itself sshd) but by
  its system unit, which the host's protected patterns name (``pwtest-sshd-*``). systemctl is never called; the
  host stays drift.
- pws-host03: the rogue service again, in pwtest-rogue-pws3.service, with port_compliance_service_mask:
  stopped and masked.

Runs, in order: check mode with --diff (only read-only systemctl calls, the diff names the unit), the
real run, a second real run (changed=0 everywhere).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.fleet.harness import play_recap
from tests.helpers.netns import writable_cgroup2_root

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(HERE, 'playbooks', 'role_remediate_service.yml')
POLICY = os.path.join(HERE, 'policies', 'remediate_service.yml')
HELPERS = os.path.join(REPO, 'tests', 'helpers')
ECHO = os.path.join(HELPERS, 'echo_server.py')
PROBE = os.path.join(HELPERS, 'probe.py')
FAKE_SYSTEMCTL = os.path.join(HELPERS, 'fake_systemctl.py')
AS_OF = '2026-12-01'
SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
RULE = 'unassigned-service'

# The harness suffixes the prefix with PORTWARDEN_FLEET_TAG (two checkouts' fleets at once).
H = dict(('h%d' % index, 'pws%s-host%02d' % (os.environ.get('PORTWARDEN_FLEET_TAG', ''), index)) for index in range(1, 4))
# name -> (host key, process name, tcp port, udp port, cgroup (None: the root cgroup), unit the fake systemd knows)
SERVICES = {
    'rogue1': ('h1', 'pws-rogue', 856, 857, 'pwtest-rogue-pws1.service', True),
    'scoped': ('h2', 'pws-scoped', 856, 857, 'pwtest-rogue-pws2.scope', False),
    'unitless': ('h2', 'pws-unitless', 858, 859, None, False),
    'sshd': ('h2', 'sshd', 863, 864, 'pwtest-sshd-pws2.service', True),
    'rogue3': ('h3', 'pws-rogue', 856, 857, 'pwtest-rogue-pws3.service', True),
}
UNIT1 = SERVICES['rogue1'][4]
UNIT3 = SERVICES['rogue3'][4]
READ_ONLY = ('show', 'is-active', 'is-enabled', 'list-unit-files')


def _hosts(report):
    return dict((entry['host'], entry) for entry in report['hosts'])


def _move(pid, cgroup):
    with open(os.path.join(cgroup, 'cgroup.procs'), 'w') as handle:
        handle.write(str(pid))


def _remove_cgroup(path):
    """Move what is left in ``path`` back to the parent cgroup, then remove it."""
    if not os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    for _attempt in range(50):
        with open(os.path.join(path, 'cgroup.procs')) as handle:
            pids = [int(line) for line in handle if line.strip()]
        for pid in pids:
            try:
                _move(pid, parent)
            except OSError:  # exited meanwhile
                pass
        try:
            os.rmdir(path)
            return
        except OSError:  # EBUSY while a process is still on its way out
            time.sleep(0.1)
    os.rmdir(path)


class Site(object):
    """The fleet with its services, its stand-in systemd, and what the tests look at."""

    def __init__(self, fleet, workdir, cgroup_root):
        self.fleet = fleet
        self.workdir = workdir
        self.cgroup_root = cgroup_root
        self.procs = {}
        self.state_dir = os.path.join(workdir, 'systemd')
        self.bin_dir = os.path.join(workdir, 'bin')

    def cgroup(self, name):
        return os.path.join(self.cgroup_root, 'system.slice', name)

    def install_systemctl(self):
        os.makedirs(self.state_dir, exist_ok=True)
        os.makedirs(self.bin_dir, exist_ok=True)
        wrapper = os.path.join(self.bin_dir, 'systemctl')
        with open(wrapper, 'w') as handle:
            handle.write('#!/bin/sh\nexec %s %s "$@"\n' % (sys.executable, FAKE_SYSTEMCTL))
        os.chmod(wrapper, 0o755)
        for key in H:
            units = dict((spec[4], {'active': True, 'enabled': True, 'masked': False})
                         for spec in SERVICES.values() if spec[0] == key and spec[5])
            with open(self.state_path(key), 'w') as handle:
                json.dump({'units': units}, handle, indent=2, sort_keys=True)

    def start(self, name):
        key, comm, tcp, udp, cgroup, _known = SERVICES[name]
        proc = subprocess.Popen(self.fleet.namespace(H[key]).command([sys.executable, ECHO, comm, str(tcp), str(udp)]),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs[name] = proc
        assert proc.stdout.readline().strip() == 'ready', name
        if cgroup is None:
            _move(proc.pid, self.cgroup_root)  # the root cgroup: no unit at all
        else:
            os.makedirs(self.cgroup(cgroup), exist_ok=True)
            _move(proc.pid, self.cgroup(cgroup))
        return proc

    def state_path(self, key):
        return os.path.join(self.state_dir, '%s.state.json' % H[key])

    def state(self, key):
        with open(self.state_path(key)) as handle:
            return json.load(handle)['units']

    def calls(self, key):
        """Every argv the host's stand-in systemctl was called with, in order."""
        path = os.path.join(self.state_dir, '%s.log' % H[key])
        if not os.path.exists(path):
            return []
        with open(path) as handle:
            return [json.loads(line)['argv'] for line in handle if line.strip()]

    def probe(self, key, kind, port):
        return self.fleet.run(H[key], [sys.executable, PROBE, kind, str(port)], timeout=30).stdout.strip()

    def playbook(self, name, check=False):
        extra_vars = {'port_compliance_mode': 'remediate', 'port_compliance_policy': POLICY, 'port_compliance_as_of': AS_OF,
                      'port_compliance_fail_on': 'never', 'port_compliance_fail_on_unknown': False,
                      'pws_path': self.bin_dir + os.pathsep + SYSTEM_PATH, 'pws_state_dir': self.state_dir}
        return self.fleet.role_run(PLAYBOOK, os.path.join(self.workdir, '%s.log' % name),
                                   os.path.join(self.workdir, 'reports'), extra_vars, check=check)


def _changes(calls):
    """(command, unit) of every call that is not read-only."""
    changes = []
    for argv in calls:
        words = [word for word in argv if not word.startswith('-')]
        if words and words[0] not in READ_ONLY:
            changes.append(tuple(words))
    return changes


@pytest.fixture(scope='module')
def site(module_fleet_factory, tmp_path_factory):
    root = writable_cgroup2_root()
    if root is None:
        pytest.skip('no writable cgroup v2 hierarchy to put a process in a unit-named cgroup')
    cgroups = [os.path.join(root, 'system.slice', spec[4]) for spec in SERVICES.values() if spec[4]]
    for path in cgroups:  # left over by a crashed run
        _remove_cgroup(path)
    workdir = str(tmp_path_factory.mktemp('pws'))
    fleet = module_fleet_factory(3, prefix='pws', workdir=workdir,
                                 hostvars={H['h2']: {'port_compliance_protected_processes': ['sshd', 'pwtest-sshd-*']},
                                           H['h3']: {'port_compliance_service_mask': True}})
    state = Site(fleet, workdir, root)
    try:
        state.install_systemctl()
        for name in SERVICES:
            state.start(name)
        yield state
    finally:
        for proc in state.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for path in cgroups:
            _remove_cgroup(path)


@pytest.fixture(scope='module')
def check_run(site):
    before = dict((key, site.state(key)) for key in H)
    output, report = site.playbook('check', check=True)
    return before, output, report


@pytest.fixture(scope='module')
def real_run(site, check_run):
    offsets = dict((key, len(site.calls(key))) for key in H)
    output, report = site.playbook('real')
    calls = dict((key, site.calls(key)[offsets[key]:]) for key in H)
    return output, report, calls


def test_the_gather_resolves_each_unit_from_the_real_cgroup(site, check_run):
    _before, _output, report = check_run
    hosts = _hosts(report)
    for name, (key, comm, tcp, udp, cgroup, _known) in SERVICES.items():
        with open('/proc/%d/cgroup' % site.procs[name].pid) as handle:
            assert '0::/%s\n' % ('system.slice/' + cgroup if cgroup else '') in handle.read(), name
        findings = [f for f in hosts[H[key]]['findings'] if f['port'] in (tcp, udp)]
        assert sorted((f['protocol'], f['port']) for f in findings) == [('tcp', tcp), ('udp', udp)], name
        for finding in findings:
            [proc] = finding['processes']
            assert (proc['pid'], proc['name'], proc['unit']) == (site.procs[name].pid, comm, cgroup), name


def test_check_mode_only_reads_and_shows_the_unit_it_would_stop(site, check_run):
    before, output, report = check_run
    for key in H:
        assert site.state(key) == before[key], key
        assert _changes(site.calls(key)) == [], site.calls(key)
    for name, proc in site.procs.items():
        assert proc.poll() is None, name
    assert site.probe('h1', 'tcp', 856) == 'open' and site.probe('h1', 'udp', 857) == 'open'
    # systemd_service asked the stand-in, read-only, about exactly the unit of each service host.
    for key, unit in (('h1', UNIT1), ('h3', UNIT3)):
        calls = site.calls(key)
        assert ['show', unit] in calls and ['is-enabled', unit, '-l'] in calls, calls
        assert set(word for argv in calls for word in argv[1:] if not word.startswith('-')) == {unit}
    assert site.calls('h2') == []
    # The diff shows the unit a real run would stop.
    assert 'systemd unit %s' % UNIT1 in output and 'systemd unit %s' % UNIT3 in output
    assert '-active, enabled\n+inactive, disabled, masked' in output  # pws-host03 masks; the before is what systemd said
    assert dict((host, counts['changed']) for host, counts in play_recap(output).items()) == {H['h1']: 1, H['h2']: 0, H['h3']: 1}
    hosts = _hosts(report)
    for key, unit in (('h1', UNIT1), ('h3', UNIT3)):
        entry = hosts[H[key]]
        assert entry['status'] == 'drift'  # check mode judges the host as it is
        assert sorted((f['protocol'], f['port'], f['status'], f['remediation']['strategy'], f['remediation']['status'],
                       f['remediation']['target']) for f in entry['findings']) == [
            ('tcp', 856, 'drift', 'service', 'planned', unit), ('udp', 857, 'drift', 'service', 'planned', unit)]
        assert [(a['strategy'], a['target'], a['rules'], a['outcome']) for a in entry['remediation']['actions']] == [
            ('service', unit, [RULE], 'would_apply')]


def test_the_real_run_stops_and_disables_the_unit(site, real_run):
    output, report, calls = real_run
    assert dict((host, counts['changed']) for host, counts in play_recap(output).items()) == {H['h1']: 1, H['h2']: 0, H['h3']: 1}
    assert _changes(calls['h1']) == [('disable', UNIT1), ('stop', UNIT1)]
    assert site.state('h1') == {UNIT1: {'active': False, 'enabled': False, 'masked': False}}
    # The stand-in's stop ended the process of the unit's cgroup with SIGTERM, as systemd would.
    assert site.procs['rogue1'].wait(timeout=10) == -signal.SIGTERM
    assert site.probe('h1', 'tcp', 856) == 'refused'
    entry = _hosts(report)[H['h1']]
    assert entry['status'] == 'compliant', entry
    assert sorted((f['protocol'], f['port'], f['status'], f['remediation']['strategy'], f['remediation']['status'],
                   f['remediation']['target']) for f in entry['findings']) == [
        ('tcp', 856, 'remediated', 'service', 'verified', UNIT1), ('udp', 857, 'remediated', 'service', 'verified', UNIT1)]
    assert [(a['strategy'], a['target'], a['rules'], a['outcome'], a['detail']) for a in entry['remediation']['actions']] == [
        ('service', UNIT1, [RULE], 'applied', 'stopped and disabled')]
    assert entry['remediation']['verified'] is True
    assert 'systemd unit %s' % UNIT1 in output


def test_the_real_run_with_service_mask_stops_and_masks_the_unit(site, real_run):
    _output, report, calls = real_run
    changes = _changes(calls['h3'])
    assert ('mask', UNIT3) in changes and ('stop', UNIT3) in changes, changes
    assert set(unit for _command, unit in changes) == {UNIT3}
    state = site.state('h3')[UNIT3]
    assert (state['active'], state['masked']) == (False, True)
    assert site.procs['rogue3'].wait(timeout=10) == -signal.SIGTERM
    entry = _hosts(report)[H['h3']]
    assert entry['status'] == 'compliant', entry
    assert sorted((f['port'], f['status'], f['remediation']['status']) for f in entry['findings']) == [
        (856, 'remediated', 'verified'), (857, 'remediated', 'verified')]
    assert [(a['target'], a['outcome'], a['detail']) for a in entry['remediation']['actions']] == [
        (UNIT3, 'applied', 'stopped and disabled and masked')]


def test_a_masked_unit_is_disabled_too(site, real_run):
    _output, _report, calls = real_run
    assert ('disable', UNIT3) in _changes(calls['h3'])
    assert site.state('h3')[UNIT3]['enabled'] is False


def test_what_is_not_a_service_unit_is_unavailable_and_a_protected_name_is_never_stopped(site, real_run):
    _output, report, calls = real_run
    assert calls['h2'] == [] and site.calls('h2') == []  # nothing ever asked of systemd for this host
    assert site.state('h2') == {SERVICES['sshd'][4]: {'active': True, 'enabled': True, 'masked': False}}
    for name in ('scoped', 'unitless', 'sshd'):
        assert site.procs[name].poll() is None, name
    assert site.probe('h2', 'tcp', 856) == 'open' and site.probe('h2', 'tcp', 863) == 'open'
    entry = _hosts(report)[H['h2']]
    assert entry['status'] == 'drift'
    notes = dict((f['port'], (f['status'], f['remediation']['strategy'], f['remediation']['status'], f['remediation']['target']))
                 for f in entry['findings'])
    scope, sshd_unit = SERVICES['scoped'][4], SERVICES['sshd'][4]
    assert notes == {856: ('drift', 'service', 'unavailable', scope), 857: ('drift', 'service', 'unavailable', scope),
                     858: ('drift', 'service', 'unavailable', 'no unit'), 859: ('drift', 'service', 'unavailable', 'no unit'),
                     863: ('drift', 'service', 'protected', sshd_unit), 864: ('drift', 'service', 'protected', sshd_unit)}
    reasons = dict((f['port'], f['remediation']['reason']) for f in entry['findings'])
    assert 'not every owning process runs in a systemd service unit (%s)' % scope in reasons[856]
    assert 'not every owning process runs in a systemd service unit (no unit)' in reasons[858]
    assert "matches the protected process pattern 'pwtest-sshd-*' (its system unit %s)" % sshd_unit in reasons[863]
    # What a safety rail refused is listed as an action; nothing was applied.
    assert sorted((a['strategy'], a['target'], a['outcome']) for a in entry['remediation']['actions']) == [
        ('service', sshd_unit, 'protected'), ('service', sshd_unit, 'protected')]


def test_second_run_changes_nothing(site, real_run):
    offsets = dict((key, len(site.calls(key))) for key in H)
    output, report = site.playbook('again')
    recap = play_recap(output)
    assert dict((host, counts['changed']) for host, counts in recap.items()) == dict((host, 0) for host in H.values())
    hosts = _hosts(report)
    for key in ('h1', 'h3'):
        assert hosts[H[key]]['status'] == 'compliant'
        assert hosts[H[key]]['findings'] == [] and hosts[H[key]]['remediation']['actions'] == []
        assert _changes(site.calls(key)[offsets[key]:]) == []
    assert site.state('h1')[UNIT1] == {'active': False, 'enabled': False, 'masked': False}
    assert hosts[H['h2']]['status'] == 'drift'
    assert site.calls('h2') == []
