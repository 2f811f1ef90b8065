"""The port_compliance role with port_compliance_namespaces=all on a real fleet host, over SSH.

Host ``pwx-host01`` (a network namespace reached through sshd) runs a rogue on TCP 856 / UDP 857 in its own
namespace and two "containers": processes started from inside it in network namespaces of their own
(``unshare --net``), each placed in a podman-shaped cgroup (``libpod-<id>.scope``) so that the gather
attributes them to a podman container, as it would on a real container host:

- ``web`` listens on TCP 856 / UDP 857 too: drift of the container rule, which remediates it with the firewall;
- ``legacy`` listens on the same ports, under a waiver scoped to that container.

The policy scopes its rules by namespace: the host rule (no remediation) sees only the host's namespace, the
container rule only containers.

Fleet hosts share one PID namespace with everything on this machine, where some process may hide its network
namespace even from root (this sandbox's PID 1 does): namespaces=all would then rightly be partial and the host
unknown, and nothing remediated. So this host runs in a PID namespace of its own, as a real host does: an init
(``unshare --pid --fork --mount-proc``) in its network namespace, with sshd, the rogue and the containers
started inside it (``nsenter``). The gather sees exactly the processes this test made.

Runs: report mode with namespaces=all and with host; remediate in check mode; remediate; remediate again
(changed=0); lift. Each firewall block must land in the container's own namespace, never on the host.
"""

import glob
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import REPO
from tests.fleet.harness import SSHD, play_recap
from tests.helpers.netns import writable_cgroup2_root

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HELPERS = os.path.join(REPO, 'tests', 'helpers')
ECHO = os.path.join(HELPERS, 'echo_server.py')
PROBE = os.path.join(HELPERS, 'probe.py')
PLAYBOOK = os.path.join(REPO, 'tests', 'fleet', 'playbooks', 'role_remediate.yml')
HOST = 'pwx-host01'
AS_OF = '2026-12-01'
PORTS = (('tcp', 856), ('udp', 857))


def _child(pid):
    """The one child of ``pid`` (nsenter and unshare --fork run the command as a child), waiting for it."""
    for _attempt in range(100):
        try:
            with open('/proc/%d/task/%d/children' % (pid, pid)) as handle:
                children = handle.read().split()
        except OSError:
            children = []
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError('process %d has no child' % pid)


def _inner_pid(pid):
    """The pid that the host's own PID namespace gives process ``pid`` (the last NSpid field)."""
    with open('/proc/%d/status' % pid) as handle:
        for line in handle:
            if line.startswith('NSpid:'):
                return int(line.split()[-1])
    raise RuntimeError('no NSpid for %d' % pid)


class Init(object):
    """PID 1 of the host's own PID namespace, in the host's network namespace; ``enter`` starts a process in both."""

    def __init__(self, fleet):
        argv = fleet.namespace(HOST).command(['unshare', '--pid', '--fork', '--mount-proc', 'sleep', 'infinity'])
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = _child(self.proc.pid)

    def enter(self, argv):
        return ['nsenter', '-t', str(self.pid), '-p', '-m', '-n'] + argv

    def stop(self):
        self.proc.kill()  # unshare --fork: its child, PID 1 of the namespace, gets SIGKILL and every process in it ends
        self.proc.wait()


class Echo(object):
    """An echo server on TCP 856 / UDP 857 started inside the host's PID namespace (``argv`` prefixes it)."""

    def __init__(self, init, name, prefix=()):
        argv = init.enter(list(prefix) + [sys.executable, ECHO, 'pwx-' + name, '856', '857'])
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if self.proc.stdout.readline().strip() != 'ready':
            raise RuntimeError('%s did not start' % name)
        self.pid = _child(self.proc.pid)  # nsenter forks into the PID namespace; unshare, sh and python exec
        self.inner_pid = _inner_pid(self.pid)
        self.inode = os.stat('/proc/%d/ns/net' % self.pid).st_ino

    def alive(self):
        return os.path.exists('/proc/%d' % self.pid) and self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Container(Echo):
    """An echo server in a network namespace of its own (loopback up), in a podman-shaped cgroup."""

    def __init__(self, init, name, cgroup_root):
        super(Container, self).__init__(init, name, ['unshare', '--net', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"'])
        self.id = uuid.uuid4().hex + uuid.uuid4().hex
        self.where = 'podman:' + self.id[:12]
        self.cgroup = os.path.join(cgroup_root, 'system.slice', 'libpod-%s.scope' % self.id)
        os.makedirs(self.cgroup)
        with open(os.path.join(self.cgroup, 'cgroup.procs'), 'w') as handle:
            handle.write(str(self.pid))

    def inside(self, argv):
        return subprocess.run(['nsenter', '-t', str(self.pid), '-n'] + argv, capture_output=True, text=True, timeout=30,
                              check=False).stdout

    def probe(self, kind, port):
        return self.inside([sys.executable, PROBE, kind, str(port)]).strip()

    def stop(self):
        super(Container, self).stop()
        for _attempt in range(50):
            try:
                os.rmdir(self.cgroup)
                return
            except OSError:
                time.sleep(0.1)


def _policy(legacy):
    return {
        'policy_version': 1, 'name': 'containers',
        'rules': [
            {'id': 'host-unassigned-closed', 'namespaces': ['host'], 'match': {'ports': 'iana:unassigned'},
             'expect': 'closed', 'severity': 'high'},
            {'id': 'containers-unassigned-closed', 'namespaces': ['container'], 'match': {'ports': 'iana:unassigned'},
             'expect': 'closed', 'severity': 'critical', 'remediate': 'firewall'},
        ],
        'waivers': [{'rule': 'containers-unassigned-closed', 'namespaces': ['podman:%s*' % legacy.id[:16]],
                     'reason': 'legacy agent, moving out of the container', 'ticket': 'CHG-856', 'expires': '2027-06-30'}],
    }


class Site(object):

    def __init__(self, fleet, workdir, web, legacy):
        self.fleet = fleet
        self.workdir = workdir
        self.web = web
        self.legacy = legacy
        self.policy = os.path.join(workdir, 'policy.json')
        with open(self.policy, 'w') as handle:
            json.dump(_policy(legacy), handle)

    def run(self, name, mode='report', namespaces='all', check=False, extra=None):
        report_dir = os.path.join(self.workdir, 'reports-%s' % name)
        extra_vars = {'port_compliance_mode': mode, 'port_compliance_policy': self.policy,
                      'port_compliance_namespaces': namespaces, 'port_compliance_as_of': AS_OF,
                      'port_compliance_fail_on': 'never', 'port_compliance_fail_on_unknown': False}
        extra_vars.update(extra or {})
        output, report = self.fleet.role_run(PLAYBOOK, os.path.join(self.workdir, '%s.log' % name), report_dir,
                                             extra_vars, check=check)
        [entry] = report['hosts']
        with open(os.path.join(report_dir, 'portwarden.prom')) as handle:
            prometheus = handle.read()
        return {'output': output, 'host': entry, 'prometheus': prometheus}

    def host_tables(self):
        return self.fleet.run(HOST, ['nft', 'list', 'tables'], timeout=30).stdout

    def host_probe(self, kind, port):
        return self.fleet.run(HOST, [sys.executable, PROBE, kind, str(port)], timeout=30).stdout.strip()


def _mine(entry, site):
    """The findings about what this test made: (rule, where, protocol, port, status)."""
    wanted = {'host', site.web.where, site.legacy.where}
    return sorted((f['rule'], f['where'], f['protocol'], f['port'], f['status']) for f in entry['findings']
                  if f['where'] in wanted and f['port'] in (856, 857))


@pytest.fixture(scope='module')
def site(module_fleet_factory, tmp_path_factory):
    root = writable_cgroup2_root()
    if root is None:
        pytest.skip('no writable cgroup hierarchy to place processes in container-shaped cgroups')
    workdir = str(tmp_path_factory.mktemp('pwx'))
    # sshd -i runs inside the host's PID namespace: the ProxyCommand enters it through its init's pid.
    enter = os.path.join(workdir, 'enter-host.sh')
    pid_file = os.path.join(workdir, 'init.pid')
    hostvars = {HOST: {'ansible_ssh_common_args': '-o ProxyCommand="%s"' % enter}}
    fleet = module_fleet_factory(1, prefix='pwx', workdir=workdir, hostvars=hostvars)
    with open(enter, 'w') as handle:
        handle.write('#!/bin/sh\nexec nsenter -t "$(cat %s)" -p -m -n %s -i -f %s\n' % (pid_file, SSHD, fleet.sshd_config))
    os.chmod(enter, 0o755)
    init = Init(fleet)
    started = []
    try:
        with open(pid_file, 'w') as handle:
            handle.write(str(init.pid))
        for make in (lambda: Echo(init, 'rogue'), lambda: Container(init, 'web', root),
                     lambda: Container(init, 'legacy', root)):
            started.append(make())
        state = Site(fleet, workdir, started[1], started[2])
        state.rogue = started[0]
        yield state
    finally:
        for process in reversed(started):
            process.stop()
        init.stop()


@pytest.fixture(scope='module')
def runs(site):
    """Every run, in order; each test looks at the runs it is about."""
    found = {'report': site.run('report'), 'report-host': site.run('report-host', namespaces='host')}
    found['ruleset_before_check'] = (site.host_tables(), site.web.inside(['nft', 'list', 'ruleset']))
    found['check'] = site.run('check', mode='remediate', check=True)
    found['ruleset_after_check'] = (site.host_tables(), site.web.inside(['nft', 'list', 'ruleset']))
    found['remediate'] = site.run('remediate', mode='remediate')
    found['probes'] = {'web': [site.web.probe(kind, port) for kind, port in PORTS],
                       'legacy': [site.legacy.probe(kind, port) for kind, port in PORTS],
                       'host': [site.host_probe(kind, port) for kind, port in PORTS],
                       'host_tables': site.host_tables(),
                       'web_ruleset': site.web.inside(['nft', 'list', 'table', 'inet', 'portwarden']),
                       'alive': [site.web.alive(), site.legacy.alive(), site.rogue.alive()]}
    found['again'] = site.run('again', mode='remediate')
    found['lift'] = site.run('lift', mode='report', extra={'port_compliance_firewall_lift': True})
    found['probes_after_lift'] = [site.web.probe(kind, port) for kind, port in PORTS]
    found['web_tables_after_lift'] = site.web.inside(['nft', 'list', 'tables'])
    return found


def test_all_finds_and_attributes_the_container_listeners(site, runs):
    entry = runs['report']['host']
    assert entry['status'] == 'drift'
    assert _mine(entry, site) == sorted(
        [('host-unassigned-closed', 'host', proto, port, 'drift') for proto, port in PORTS]
        + [('containers-unassigned-closed', site.web.where, proto, port, 'drift') for proto, port in PORTS]
        + [('containers-unassigned-closed', site.legacy.where, proto, port, 'waived') for proto, port in PORTS])
    web = [f for f in entry['findings'] if f['where'] == site.web.where]
    for finding in web:
        assert finding['namespace']['inode'] == site.web.inode and finding['namespace']['pid'] == site.web.inner_pid
        assert finding['namespace']['container'] == {'kind': 'podman', 'id': site.web.id, 'pod_uid': None, 'name': None}
        assert ' in %s ' % site.web.where in finding['message']
        assert [proc['pid'] for proc in finding['processes']] == [site.web.inner_pid]
    waived = [f for f in entry['findings'] if f['where'] == site.legacy.where]
    assert {f['waiver']['ticket'] for f in waived} == {'CHG-856'}
    # Nothing outside the host's namespace and these two containers is in the policy's scope.
    assert {f['where'] for f in entry['findings']} == {'host', site.web.where, site.legacy.where}
    # In its own PID namespace the host sees its own namespace and the two containers, all of them; it shares the
    # machine's /run/netns, so any other namespace mounted there (another test's) is read too, and nothing else.
    assert entry['coverage']['complete'] is True and entry['reasons'] == []
    scanned = set(item['inode'] for item in entry['coverage']['namespaces']['scanned'])
    expected = {os.stat('/run/netns/%s' % HOST).st_ino, site.web.inode, site.legacy.inode}
    assert expected <= scanned
    assert scanned - expected <= set(os.stat(path).st_ino for path in glob.glob('/run/netns/*'))
    assert [item['inode'] for item in entry['coverage']['namespaces']['scanned'] if item['host']] == [os.stat('/run/netns/%s' % HOST).st_ino]
    assert 'portwarden_host_namespace_findings{host="%s",where="%s"} 2' % (HOST, site.web.where) in runs['report']['prometheus']


def test_host_mode_sees_only_the_host_namespace(site, runs):
    entry = runs['report-host']['host']
    assert _mine(entry, site) == [('host-unassigned-closed', 'host', proto, port, 'drift') for proto, port in PORTS]
    assert {f['where'] for f in entry['findings']} == {'host'}
    assert all(f['namespace'] is None for f in entry['findings'])
    assert entry['warnings'] == ["rule containers-unassigned-closed is only about namespaces other than the host's, "
                                 "which this gather did not read (namespaces: host; use namespaces: all)"]
    assert runs['report']['host']['warnings'] == []
    assert 'portwarden_host_namespace_findings' not in runs['report-host']['prometheus']


def test_check_mode_changes_nothing_and_shows_the_container_block(site, runs):
    assert runs['ruleset_after_check'] == runs['ruleset_before_check']
    assert 'portwarden' not in runs['ruleset_after_check'][1]
    output = runs['check']['output']
    assert 'nftables table inet portwarden in %s' % site.web.where in output
    notes = dict(((f['where'], f['protocol']), f.get('remediation')) for f in runs['check']['host']['findings'])
    assert notes[(site.web.where, 'tcp')]['status'] == 'planned'
    assert notes[(site.web.where, 'tcp')]['target'] == 'tcp 0.0.0.0 port 856 in %s' % site.web.where
    assert notes[('host', 'tcp')] is None and notes[(site.legacy.where, 'tcp')] is None
    assert play_recap(runs['check']['output'])[HOST]['changed'] == 1


def test_remediation_blocks_in_the_container_namespace_only(site, runs):
    probes = runs['probes']
    assert probes['web'] == ['blocked', 'blocked']    # from inside the container: closed by its own table
    assert probes['legacy'] == ['open', 'open']       # waived: untouched
    assert probes['host'] == ['open', 'open']         # the host rule does not remediate; the host table is not made
    assert 'portwarden' not in probes['host_tables']
    assert 'comment "rule=containers-unassigned-closed"' in probes['web_ruleset']
    assert probes['alive'] == [True, True, True]      # the firewall strategy keeps every service running
    entry = runs['remediate']['host']
    assert _mine(entry, site) == sorted(
        [('host-unassigned-closed', 'host', proto, port, 'drift') for proto, port in PORTS]
        + [('containers-unassigned-closed', site.web.where, proto, port, 'remediated') for proto, port in PORTS]
        + [('containers-unassigned-closed', site.legacy.where, proto, port, 'waived') for proto, port in PORTS])
    actions = entry['remediation']['actions']
    assert sorted((a['target'], a['outcome']) for a in actions) == [
        ('tcp 0.0.0.0 port 856 in %s' % site.web.where, 'applied'), ('udp 0.0.0.0 port 857 in %s' % site.web.where, 'applied')]
    assert entry['remediation']['verified'] is True
    assert play_recap(runs['remediate']['output'])[HOST]['changed'] == 1


def test_second_run_changes_nothing(site, runs):
    assert play_recap(runs['again']['output'])[HOST]['changed'] == 0
    statuses = set((f['where'], f['status']) for f in runs['again']['host']['findings'] if f['where'] == site.web.where)
    assert statuses == {(site.web.where, 'remediated')}


def test_lift_removes_the_container_blocks(site, runs):
    assert runs['probes_after_lift'] == ['open', 'open']
    assert 'portwarden' not in runs['web_tables_after_lift']
    assert play_recap(runs['lift']['output'])[HOST]['changed'] == 1
