"""listening_sockets_info namespaces=all on a real fleet host, over SSH, with ansible-playbook.

Host ``pwc-host01`` (a network namespace, reached through ``sshd -i`` inside it) gets two extra network
namespaces of its own: processes started from inside it with ``unshare --net``, as a container runtime
would, one listening on TCP 856 (in a podman-shaped cgroup) and one on TCP 443. The module must find
each with its listeners and namespace, mark pwc-host01's own namespace (and only it) ``host``, and with
namespaces=host show none of them.

Fleet hosts share one PID namespace with everything on this machine, so namespaces=all on pwc-host01
also sees pwc-host02 (which has a listener of its own), the machine's root namespace and any namespace
another suite has open at the time. The assertions are about the namespaces this test made, and that
none of the others is taken for the host: exactly what is expected, never "at least something".
"""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from tests.helpers.gather import refused_gaps, refused_here
from tests.helpers.netns import LISTENERS, writable_cgroup2_root

pytestmark = [pytest.mark.netns, pytest.mark.slow]

PLAYBOOK = '''---
- name: Gather the listening sockets of every namespace, then of the host's only
  hosts: "{{ pwc_target }}"
  gather_facts: false
  tasks:
    - name: Gather every network namespace
      portwarden.compliance.listening_sockets_info:
        namespaces: all
      register: pwc_all

    - name: Gather the host's network namespace only
      portwarden.compliance.listening_sockets_info:
      register: pwc_host

    - name: Keep both results on the controller
      ansible.builtin.copy:
        content: "{{ item.value | to_nice_json }}"
        dest: "{{ pwc_out_dir }}/{{ item.key }}.json"
        mode: "0644"
      delegate_to: localhost
      loop: "{{ {'all': pwc_all, 'host': pwc_host} | dict2items }}"
      loop_control:
        label: "{{ item.key }}"
'''

EXTRA = {
    'x856': {'name': 'pwc-x856', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856}]},
    'x443': {'name': 'pwc-x443', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 443},
                                             {'protocol': 'udp', 'address': '0.0.0.0', 'port': 5353}]},
}
HOST_SPEC = {'name': 'pwc-h01-svc', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 8443}]}
OTHER_HOST_SPEC = {'name': 'pwc-h02-svc', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 9443}]}


def _netns_inode(pid):
    return os.stat('/proc/%d/ns/net' % pid).st_ino


def _processes_whose_namespace_we_cannot_read():
    denied = 0
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                os.readlink('/proc/%s/ns/net' % name)
            except PermissionError:
                denied += 1
            except OSError:
                pass
    return denied


class Extra(object):
    """A listeners.py process in a network namespace of its own, started from inside a fleet host."""

    def __init__(self, fleet, host, spec):
        argv = fleet.namespace(host).command(['unshare', '--net', sys.executable, LISTENERS, json.dumps(spec)])
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError('listener for %r failed (exit %s)' % (spec, self.proc.returncode))
        ready = json.loads(line)
        self.pid = ready['pids'][0]  # ip netns exec and unshare exec, they do not fork: the same process
        assert self.pid == self.proc.pid
        self.sockets = ready['sockets']
        self.inode = _netns_inode(self.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope='module')
def gathered(module_fleet_factory, tmp_path_factory):
    fleet = module_fleet_factory(2, prefix='pwc')
    host, other = fleet.hosts
    fleet.listen(host, HOST_SPEC)
    other_holder = fleet.listen(other, OTHER_HOST_SPEC)
    extras = {}
    cgroup = None
    container_id = uuid.uuid4().hex + uuid.uuid4().hex
    try:
        for key, spec in EXTRA.items():
            extras[key] = Extra(fleet, host, spec)
        root = writable_cgroup2_root()
        if root is not None:
            cgroup = os.path.join(root, 'system.slice', 'libpod-%s.scope' % container_id)
            os.makedirs(cgroup)
            with open(os.path.join(cgroup, 'cgroup.procs'), 'w') as handle:
                handle.write(str(extras['x856'].pid))
        out_dir = tmp_path_factory.mktemp('pwc-gather')
        playbook = out_dir / 'namespaces.yml'
        playbook.write_text(PLAYBOOK)
        started = time.monotonic()
        proc = fleet.playbook(str(playbook), extra_vars={'pwc_out_dir': str(out_dir), 'pwc_target': host}, timeout=300)
        print('\nansible-playbook namespaces: exit %d in %.2fs' % (proc.returncode, time.monotonic() - started))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results = {}
        for mode in ('all', 'host'):
            with open(str(out_dir / ('%s.json' % mode))) as handle:
                results[mode] = json.load(handle)
        yield {'fleet': fleet, 'extras': extras, 'results': results, 'other': other_holder,
               'container': {'kind': 'podman', 'id': container_id, 'pod_uid': None, 'name': None} if cgroup else None}
    finally:
        for extra in extras.values():
            extra.stop()
        if cgroup:
            for _attempt in range(50):
                try:
                    os.rmdir(cgroup)
                    break
                except OSError:
                    time.sleep(0.1)


def _in_namespace(result, inode):
    return sorted((entry['protocol'], entry['port']) for entry in result['sockets'] if entry['namespace']['inode'] == inode)


def test_each_extra_namespace_is_found_with_its_listeners(gathered):
    result = gathered['results']['all']
    for key, extra in gathered['extras'].items():
        assert _in_namespace(result, extra.inode) == sorted((item['protocol'], item['port']) for item in EXTRA[key]['sockets'])
        for entry in result['sockets']:
            if entry['namespace']['inode'] != extra.inode:
                continue
            assert entry['namespace']['host'] is False
            assert entry['namespace']['pid'] == extra.pid
            assert entry['inode'] in {item['inode'] for item in extra.sockets}
            assert [(proc['pid'], proc['name']) for proc in entry['processes']] == [(extra.pid, EXTRA[key]['name'])]
        [scanned] = [item for item in result['coverage']['namespaces']['scanned'] if item['inode'] == extra.inode]
        assert (scanned['host'], scanned['pid'], scanned['sockets']) == (False, extra.pid, len(EXTRA[key]['sockets']))


def test_the_container_is_told_from_the_cgroup(gathered):
    if gathered['container'] is None:
        pytest.skip('no writable cgroup hierarchy to place a process in a container-shaped cgroup')
    result = gathered['results']['all']
    extras = gathered['extras']
    containers = {item['inode']: item['container'] for item in result['coverage']['namespaces']['scanned']}
    assert containers[extras['x856'].inode] == gathered['container']
    assert containers[extras['x443'].inode] is None
    [entry] = [entry for entry in result['sockets'] if entry['namespace']['inode'] == extras['x856'].inode]
    assert entry['namespace']['container'] == gathered['container']


def test_only_the_hosts_own_namespace_is_host(gathered):
    result = gathered['results']['all']
    fleet = gathered['fleet']
    own = os.stat('/run/netns/%s' % fleet.hosts[0]).st_ino
    scanned = result['coverage']['namespaces']['scanned']
    assert [item['inode'] for item in scanned if item['host']] == [own]
    assert scanned[0]['inode'] == own
    assert _in_namespace(result, own) == [('tcp', 8443)]  # sshd -i sessions hold no listening socket
    for extra in gathered['extras'].values():
        assert extra.inode != own
    # The other fleet host shares the PID space, so its namespace is seen too, and is not the host.
    other = os.stat('/run/netns/%s' % fleet.hosts[1]).st_ino
    assert _in_namespace(result, other) == [('tcp', 9443)]
    assert {entry['namespace']['host'] for entry in result['sockets'] if entry['namespace']['inode'] == other} == {False}
    assert gathered['other'].pids[0] in {proc['pid'] for entry in result['sockets'] for proc in entry['processes']}


def test_all_is_complete_but_for_what_no_one_here_can_read(gathered):
    coverage = gathered['results']['all']['coverage']
    mine = {extra.inode for extra in gathered['extras'].values()}
    assert not mine & {item['inode'] for item in coverage['namespaces']['unreadable']}
    assert not mine & {item['inode'] for item in coverage['namespaces']['vanished']}
    assert coverage['namespaces']['unreadable'] == []
    # Processes of the machine that even root may not inspect (hidepid, an LSM) hide their namespace:
    # the gather must then say so and be partial, and otherwise be complete.
    # Processes whose fd links root may not read (this sandbox's init) are a gap of the owner search: a socket of
    # the machine with no owner is then an error, and none of the extras' sockets may be among them.
    gaps = refused_gaps(refused_here())
    unseen = 'sockets show no owning process, and not every process could be looked in (%s): ' % '; '.join(gaps)
    for entry in gathered['results']['all']['sockets']:
        if entry['namespace']['inode'] in mine:
            assert entry['processes'], entry
    if _processes_whose_namespace_we_cannot_read() or (gaps and coverage['unowned_sockets']):
        assert coverage['complete'] is False
        assert coverage['errors'] and all(('the network namespace of' in error and 'could not be read' in error) or
                                          (gaps and unseen in error) for error in coverage['errors']), coverage['errors']
    else:
        assert coverage['complete'] is True and coverage['errors'] == []
    assert coverage['privileged'] is True
    assert coverage['sockets'] == len(gathered['results']['all']['sockets'])


def test_host_mode_shows_none_of_the_extra_namespaces(gathered):
    result = gathered['results']['host']
    assert sorted((entry['protocol'], entry['port']) for entry in result['sockets']) == [('tcp', 8443)]
    assert 'namespaces' not in result['coverage']
    assert all('namespace' not in entry for entry in result['sockets'])
    extra_inodes = {item['inode'] for extra in gathered['extras'].values() for item in extra.sockets}
    assert not extra_inodes & {entry['inode'] for entry in result['sockets']}
    assert result['coverage']['complete'] is True
