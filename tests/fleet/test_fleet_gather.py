"""listening_sockets_info against a real five-host fleet, over SSH, with ansible-playbook.

Every host (a network namespace) holds different listeners, or none; the playbook gathers on all of
them, normally and in check mode, and the controller keeps each registered result as JSON. Every
host must report exactly its own sockets and the processes holding them, and the quiet host an empty
list with complete coverage (it really was read: its sshd is there but holds no listening socket).
"""

import collections
import json
import os
import sys
import time

import pytest

pytestmark = [pytest.mark.netns, pytest.mark.slow]

PLAYBOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'playbooks', 'gather.yml')

# What each host listens on, in host order; None for the quiet host. The process names (comm)
# tell the holders apart in the results.
SPECS = [
    {'name': 'pwf-h01-tcp4', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856}]},
    {'name': 'pwf-h02-tcp6', 'sockets': [{'protocol': 'tcp', 'address': '::1', 'port': 857}]},
    {'name': 'pwf-h03-mixed', 'sockets': [{'protocol': 'udp', 'address': '0.0.0.0', 'port': 859},
                                          {'protocol': 'tcp', 'address': '::', 'port': 858, 'v6only': False}]},
    # A pre-fork server: the holder and one forked worker share the socket.
    {'name': 'pwf-h04-prefork', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 8080}], 'fork': 1},
    None,
]
QUIET = 4  # index of the host with no listener at all

# Where a result of the default backend comes from: the normal run or the --check run, and in each
# the task that gathers normally or the one with check_mode: true. (Run 'psutil' is tested apart.)
VARIANTS = [('run', ''), ('run', '.check'), ('--check', ''), ('--check', '.check')]
# Coverage counters that legitimately differ between two gathers: processes come and go machine-wide.
VOLATILE_COVERAGE = ('processes_scanned', 'processes_unreadable')

Gathered = collections.namedtuple('Gathered', 'fleet holders results runs namespace_processes')


def _family(address):
    return 'ipv6' if ':' in address else 'ipv4'


def _key(entry):
    return (entry['protocol'], entry['family'], entry['address'], entry['port'])


def _expected(spec):
    if spec is None:
        return set()
    return {(item['protocol'], _family(item['address']), item['address'], item['port']) for item in spec['sockets']}


@pytest.fixture(scope='module')
def gathered(module_fleet_factory, tmp_path_factory):
    started = time.monotonic()
    fleet = module_fleet_factory(5)
    print('\nfleet of %d hosts up in %.2fs' % (len(fleet.hosts), time.monotonic() - started))
    holders = {}
    for host, spec in zip(fleet.hosts, SPECS):
        if spec is not None:
            holders[host] = fleet.listen(host, spec)

    results = {}
    runs = {}
    namespace_processes = {}
    # mode -> (extra vars, --check): the default backend normally and under --check, then psutil.
    for mode, extra, check in (('run', {}, False), ('--check', {}, True), ('psutil', {'pwf_backend': 'psutil'}, False)):
        out_dir = tmp_path_factory.mktemp('gather-%s' % mode.strip('-'))
        started = time.monotonic()
        proc = fleet.playbook(PLAYBOOK, extra_vars=dict(extra, pwf_out_dir=str(out_dir)), check=check, timeout=300)
        elapsed = time.monotonic() - started
        print('ansible-playbook %s: exit %d in %.2fs' % (mode, proc.returncode, elapsed))
        assert proc.returncode == 0, 'ansible-playbook %s failed:\n%s\n%s' % (mode, proc.stdout, proc.stderr)
        runs[mode] = proc
        # Right after the run the ssh ControlMasters still hold each host's sshd -i session.
        namespace_processes[mode] = {host: fleet.processes(host) for host in fleet.hosts}
        for host in fleet.hosts:
            for suffix in ('', '.check'):
                with open(os.path.join(str(out_dir), host + suffix + '.json')) as handle:
                    results[(mode, suffix, host)] = json.load(handle)
    return Gathered(fleet, holders, results, runs, namespace_processes)


def _variants(gathered, host):
    return [(('%s%s' % (mode, suffix)), gathered.results[(mode, suffix, host)]) for mode, suffix in VARIANTS]


@pytest.mark.parametrize('index', range(5), ids=['host%02d' % (i + 1) for i in range(5)])
def test_every_host_reports_exactly_its_own_listeners(gathered, index):
    host = gathered.fleet.hosts[index]
    expected = _expected(SPECS[index])
    for label, result in _variants(gathered, host):
        seen = [_key(entry) for entry in result['sockets']]
        assert len(seen) == len(set(seen)), '%s %s: a socket is reported twice: %s' % (host, label, seen)
        assert set(seen) == expected, '%s %s' % (host, label)


@pytest.mark.parametrize('index', [i for i, spec in enumerate(SPECS) if spec is not None],
                         ids=['host%02d' % (i + 1) for i, spec in enumerate(SPECS) if spec is not None])
def test_sockets_carry_the_listener_processes(gathered, index):
    host = gathered.fleet.hosts[index]
    spec = SPECS[index]
    holder = gathered.holders[host]
    assert len(holder.pids) == 1 + spec.get('fork', 0)
    inodes = {(item['protocol'], item['port']): item['inode'] for item in holder.sockets}
    v6only = {(item['protocol'], item['port']): item.get('v6only') for item in spec['sockets']}
    for label, result in _variants(gathered, host):
        for entry in result['sockets']:
            where = '%s %s %s' % (host, label, _key(entry))
            assert entry['inode'] == inodes[(entry['protocol'], entry['port'])], where
            assert [proc['pid'] for proc in entry['processes']] == sorted(holder.pids), where
            for proc in entry['processes']:
                assert proc['name'] == spec['name'], where
                assert (proc['user'], proc['uid']) == ('root', 0), where
                assert proc['exe'] == os.path.realpath(sys.executable), where
            if entry['family'] == 'ipv4':
                assert entry['v6only'] is None, where
            elif v6only[(entry['protocol'], entry['port'])] is not None:
                assert entry['v6only'] is v6only[(entry['protocol'], entry['port'])], where
            assert entry['ephemeral'] is False, where


def test_prefork_server_lists_both_processes(gathered):
    host = gathered.fleet.hosts[3]
    holder = gathered.holders[host]
    (entry,) = gathered.results[('run', '', host)]['sockets']
    assert len(holder.pids) == 2
    assert sorted(proc['pid'] for proc in entry['processes']) == sorted(holder.pids)


def test_dual_stack_socket_is_not_v6only(gathered):
    host = gathered.fleet.hosts[2]
    tcp = [entry for entry in gathered.results[('run', '', host)]['sockets'] if entry['protocol'] == 'tcp']
    assert [(entry['address'], entry['v6only']) for entry in tcp] == [('::', False)]


def test_quiet_host_is_really_read(gathered):
    host = gathered.fleet.hosts[QUIET]
    for label, result in _variants(gathered, host):
        coverage = result['coverage']
        assert result['sockets'] == [], label
        assert coverage['complete'] is True, label
        assert coverage['errors'] == [], label
        assert coverage['sockets'] == 0, label
        assert coverage['privileged'] is True, label
        assert coverage['processes_scanned'] > 0, label
        assert sorted(coverage['sources']) == ['tcp/ipv4', 'tcp/ipv6', 'udp/ipv4', 'udp/ipv6'], label
    # The host is not empty of processes: Ansible's sshd -i sessions live in its namespace, and
    # (inetd mode, over a pipe) hold no listening socket, so the empty list above is the truth.
    for mode, by_host in gathered.namespace_processes.items():
        names = {name for _pid, name in by_host[host]}
        assert 'sshd' in names, '%s: no sshd in %s: %s' % (mode, host, by_host[host])


def test_no_process_but_the_listeners_is_reported(gathered):
    listener_pids = {pid for holder in gathered.holders.values() for pid in holder.pids}
    sshd_pids = {pid for by_host in gathered.namespace_processes.values()
                 for processes in by_host.values() for pid, name in processes if name == 'sshd'}
    assert sshd_pids, 'expected sshd -i sessions in the fleet namespaces'
    for (mode, suffix, host), result in gathered.results.items():
        for entry in result['sockets']:
            pids = {proc['pid'] for proc in entry['processes']}
            assert pids <= listener_pids, (mode, suffix, host, entry)
            assert not pids & sshd_pids, (mode, suffix, host, entry)


def test_no_host_sees_another_hosts_ports(gathered):
    hosts = gathered.fleet.hosts
    for index, host in enumerate(hosts):
        others = {key[3] for other, spec in enumerate(SPECS) if other != index for key in _expected(spec)}
        for label, result in _variants(gathered, host):
            leaked = {entry['port'] for entry in result['sockets']} & others
            assert not leaked, '%s %s sees ports of other hosts: %s' % (host, label, sorted(leaked))


def test_every_gather_is_complete_and_unchanged(gathered):
    for (mode, suffix, host), result in gathered.results.items():
        where = '%s%s %s' % (mode, suffix, host)
        coverage = result['coverage']
        assert result['changed'] is False, where
        assert not result.get('failed'), where
        assert coverage['complete'] is True and coverage['errors'] == [], where
        assert coverage['unowned_sockets'] == [], where
        assert coverage['sockets'] == len(result['sockets']), where
        assert coverage['processes_unreadable'] == 0, where


def test_check_mode_returns_the_same_data(gathered):
    for host in gathered.fleet.hosts:
        (base_label, base), *others = _variants(gathered, host)
        for label, result in others:
            assert result['sockets'] == base['sockets'], '%s: %s differs from %s' % (host, label, base_label)
            stable = {key: value for key, value in result['coverage'].items() if key not in VOLATILE_COVERAGE}
            base_stable = {key: value for key, value in base['coverage'].items() if key not in VOLATILE_COVERAGE}
            assert stable == base_stable, '%s: %s differs from %s' % (host, label, base_label)


def test_recap_shows_every_host_ok(gathered):
    for mode, proc in gathered.runs.items():
        for host in gathered.fleet.hosts:
            recap = [line for line in proc.stdout.splitlines() if line.startswith(host + ' ')]
            assert len(recap) == 1, '%s: no recap line for %s' % (mode, host)
            assert 'unreachable=0' in recap[0] and 'failed=0' in recap[0], recap[0]


@pytest.mark.parametrize('index', range(5), ids=['host%02d' % (i + 1) for i in range(5)])
def test_psutil_backend_reports_the_same_sockets(gathered, index):
    host = gathered.fleet.hosts[index]
    holder = gathered.holders.get(host)
    for suffix in ('', '.check'):
        result = gathered.results[('psutil', suffix, host)]
        where = 'psutil%s %s' % (suffix, host)
        assert result['coverage']['backend'] == 'psutil', where
        assert result['coverage']['complete'] is True, where
        assert {_key(entry) for entry in result['sockets']} == _expected(SPECS[index]), where
        for entry in result['sockets']:
            # psutil gives neither inode nor v6only.
            assert (entry['inode'], entry['v6only']) == (None, None), where
            pids = [proc['pid'] for proc in entry['processes']]
            assert pids and set(pids) <= set(holder.pids), where
            assert {proc['name'] for proc in entry['processes']} == {SPECS[index]['name']}, where


def test_psutil_backend_names_one_prefork_worker_as_documented(gathered):
    # psutil.net_connections() keeps one pid per socket inode; the module documents that limit.
    host = gathered.fleet.hosts[3]
    (entry,) = gathered.results[('psutil', '', host)]['sockets']
    pids = [proc['pid'] for proc in entry['processes']]
    assert len(pids) == 1
    assert pids[0] in gathered.holders[host].pids
