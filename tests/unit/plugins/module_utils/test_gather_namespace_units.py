"""Unit tests: network namespace discovery, entering, and container attribution from cgroup paths.

Real container runtimes cannot run where these tests run, so the cgroup layouts are text fixtures
(copied from docker, podman, containerd, CRI-O and kubelet hosts); tests/integration/test_gather_namespaces.py
places a real process in a docker-shaped cgroup.
"""

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces as ns
from ansible_collections.portwarden.compliance.plugins.module_utils import gather_sockets as gather

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason='setns needs root')

D1 = 'f' * 12 + '0123456789abcdef' * 3 + '0123'  # 64 hex digits, like every docker/podman/containerd id
D2 = 'a' * 64
POD = '1b2c3d4e-5f60-4172-8394-a5b6c7d8e9f0'
POD_SYSTEMD = POD.replace('-', '_')
STATIC_POD = '8a2f' * 8  # a static pod's uid is a 32-hex hash


def docker(container_id):
    return {'kind': 'docker', 'id': container_id, 'pod_uid': None}


@pytest.mark.parametrize('text, expected', [
    # docker, systemd cgroup driver, cgroup v2
    ('0::/system.slice/docker-%s.scope\n' % D1, docker(D1)),
    # docker, cgroupfs driver, cgroup v1: every controller line names it
    (''.join('%d:%s:/docker/%s\n' % (i, c, D1) for i, c in enumerate(['cpu,cpuacct', 'memory', 'name=systemd'], 1))
     + '0::/\n', docker(D1)),
    # docker, cgroupfs driver, cgroup v2
    ('0::/docker/%s\n' % D1, docker(D1)),
    # hybrid: the unified line is "/", the name=systemd line tells
    ('9:name=systemd:/system.slice/docker-%s.scope\n8:pids:/system.slice/docker-%s.scope\n0::/\n' % (D1, D1), docker(D1)),
    # docker in docker: the innermost container
    ('0::/docker/%s/docker/%s\n' % (D1, D2), docker(D2)),
    # podman, systemd driver (rootful and rootless), cgroupfs driver, and a container with its own init sub-cgroup
    ('0::/machine.slice/libpod-%s.scope\n' % D1, {'kind': 'podman', 'id': D1, 'pod_uid': None}),
    ('0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-%s.scope\n' % D1,
     {'kind': 'podman', 'id': D1, 'pod_uid': None}),
    ('0::/libpod_parent/libpod-%s\n' % D1, {'kind': 'podman', 'id': D1, 'pod_uid': None}),
    ('0::/machine.slice/libpod-%s.scope/container\n' % D1, {'kind': 'podman', 'id': D1, 'pod_uid': None}),
    # a podman pod is not a Kubernetes pod
    ('0::/machine.slice/machine-libpod_pod_%s.slice/libpod-%s.scope\n' % (D2, D1), {'kind': 'podman', 'id': D1, 'pod_uid': None}),
    # conmon, podman's monitor of a container
    ('0::/machine.slice/libpod-conmon-%s.scope\n' % D1, {'kind': 'podman', 'id': D1, 'pod_uid': None}),
    # containerd: CRI outside Kubernetes, nerdctl, and the colon form of a systemd-style parent on cgroup v1
    ('0::/system.slice/cri-containerd-%s.scope\n' % D1, {'kind': 'containerd', 'id': D1, 'pod_uid': None}),
    ('0::/system.slice/nerdctl-%s.scope\n' % D1, {'kind': 'containerd', 'id': D1, 'pod_uid': None}),
    ('1:name=systemd:/system.slice/containerd.service/foo.slice:cri-containerd:%s\n' % D1,
     {'kind': 'containerd', 'id': D1, 'pod_uid': None}),
    ('0::/system.slice/crio-%s.scope\n' % D1, {'kind': 'crio', 'id': D1, 'pod_uid': None}),
    # kubelet, systemd driver: containerd, CRI-O, docker; the pod uid's dashes are underscores in the slice
    ('0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice/cri-containerd-%s.scope\n'
     % (POD_SYSTEMD, D1), {'kind': 'kubernetes', 'id': D1, 'pod_uid': POD}),
    ('0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/crio-%s.scope\n'
     % (POD_SYSTEMD, D1), {'kind': 'kubernetes', 'id': D1, 'pod_uid': POD}),
    ('0::/kubepods.slice/kubepods-pod%s.slice/docker-%s.scope\n' % (POD_SYSTEMD, D1),
     {'kind': 'kubernetes', 'id': D1, 'pod_uid': POD}),  # guaranteed QoS has no QoS slice
    # kubelet, cgroupfs driver, cgroup v1 and v2; static pod
    ('4:memory:/kubepods/burstable/pod%s/%s\n1:name=systemd:/kubepods/burstable/pod%s/%s\n' % (POD, D1, POD, D1),
     {'kind': 'kubernetes', 'id': D1, 'pod_uid': POD}),
    ('0::/kubepods/pod%s/%s\n' % (POD, D1), {'kind': 'kubernetes', 'id': D1, 'pod_uid': POD}),
    ('0::/kubepods/besteffort/pod%s/%s\n' % (STATIC_POD, D1), {'kind': 'kubernetes', 'id': D1, 'pod_uid': STATIC_POD}),
    # kubelet's colon form on cgroup v1
    ('1:name=systemd:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice:cri-containerd:%s\n'
     % (POD_SYSTEMD, D1), {'kind': 'kubernetes', 'id': D1, 'pod_uid': POD}),
    # a process of the pod itself, in no container
    ('0::/kubepods/burstable/pod%s\n' % POD, {'kind': 'kubernetes', 'id': None, 'pod_uid': POD}),
    # not containers
    ('0::/system.slice/ssh.service\n', None),
    ('0::/system.slice/docker.service\n', None),  # the docker daemon itself
    ('0::/system.slice/docker.socket\n', None),
    ('0::/user.slice/user-1000.slice/session-3.scope\n', None),
    ('0::/init.scope\n', None),
    ('0::/\n', None),
    ('9:name=systemd:/\n8:pids:/\n0::/\n', None),
    ('0::/system.slice/docker-notahexid.scope\n', None),
    ('0::/docker/%s\n' % D1[:20], None),  # a bare component must be a full 64-hex id
    ('0::/pod%s/%s\n' % (POD, D1), None),  # pod<uid> counts only under kubepods
    ('4:memory:/process_api/6d05b419352e727b7bbb3cb8d75072fe\n0::/\n', None),
    ('0::/lxc.payload.c1/system.slice/sshd.service\n', None),
    ('', None),
    ('garbage without colons\n', None),
])
def test_container_from_cgroup(text, expected):
    assert ns.container_from_cgroup(text) == expected


@pytest.fixture
def runtime_root(tmp_path):
    docker_dir = tmp_path / 'var/lib/docker/containers' / D1
    docker_dir.mkdir(parents=True)
    (docker_dir / 'config.v2.json').write_text(json.dumps({'ID': D1, 'Name': '/web'}))
    broken = tmp_path / 'var/lib/docker/containers' / D2
    broken.mkdir()
    (broken / 'config.v2.json').write_text('{"Name": "/trunc')
    storage = tmp_path / 'var/lib/containers/storage/overlay-containers'
    storage.mkdir(parents=True)
    (storage / 'containers.json').write_text(json.dumps([{'id': D1, 'names': ['db', 'db-alias']}, {'id': D2}]))
    pods = tmp_path / 'var/log/pods'
    pods.mkdir(parents=True)
    (pods / ('kube-system_coredns-5d78c9869d-abcde_%s' % POD)).mkdir()
    (pods / 'not-a-pod-dir').mkdir()
    return tmp_path


@pytest.mark.parametrize('container, expected', [
    ({'kind': 'docker', 'id': D1, 'pod_uid': None}, 'web'),
    ({'kind': 'docker', 'id': D2, 'pod_uid': None}, None),  # unreadable JSON: no name, no exception
    ({'kind': 'docker', 'id': 'b' * 64, 'pod_uid': None}, None),  # no such container
    ({'kind': 'docker', 'id': '../../../etc', 'pod_uid': None}, None),  # never a path outside the runtime's directory
    ({'kind': 'podman', 'id': D1, 'pod_uid': None}, 'db'),
    ({'kind': 'podman', 'id': D2, 'pod_uid': None}, None),
    ({'kind': 'kubernetes', 'id': D1, 'pod_uid': POD}, 'kube-system/coredns-5d78c9869d-abcde'),
    ({'kind': 'kubernetes', 'id': D1, 'pod_uid': STATIC_POD}, None),
    ({'kind': 'containerd', 'id': D1, 'pod_uid': None}, None),
    ({'kind': 'crio', 'id': D1, 'pod_uid': None}, None),
])
def test_container_names_from_runtime_files(runtime_root, container, expected):
    assert ns.ContainerNames(str(runtime_root)).name(container) == expected


def test_container_names_without_any_runtime_files(tmp_path):
    names = ns.ContainerNames(str(tmp_path))
    for kind in ('docker', 'podman', 'kubernetes'):
        assert names.name({'kind': kind, 'id': D1, 'pod_uid': POD}) is None


def test_describe_container_reads_the_cgroup_of_the_pid(tmp_path, runtime_root):
    (tmp_path / 'proc' / '42').mkdir(parents=True)
    (tmp_path / 'proc' / '42' / 'cgroup').write_text('0::/system.slice/docker-%s.scope\n' % D1)
    (tmp_path / 'proc' / '43').mkdir()
    (tmp_path / 'proc' / '43' / 'cgroup').write_text('0::/system.slice/ssh.service\n')
    names = ns.ContainerNames(str(runtime_root))
    proc = str(tmp_path / 'proc')
    assert ns.describe_container(42, names, proc) == {'kind': 'docker', 'id': D1, 'pod_uid': None, 'name': 'web'}
    assert ns.describe_container(43, names, proc) is None
    assert ns.describe_container(44, names, proc) is None  # exited


@pytest.mark.parametrize('text, expected', [
    ('net:[4026531840]', 4026531840),
    ('net:[1]', 1),
])
def test_namespace_inode(text, expected):
    assert ns.namespace_inode(text) == expected


@pytest.mark.parametrize('text', ['mnt:[4026531840]', 'net:4026531840', 'net:[]', ''])
def test_namespace_inode_refuses_other_links(text):
    with pytest.raises(ValueError):
        ns.namespace_inode(text)


def test_discovery_groups_processes_by_namespace_inode(tmp_path):
    proc = tmp_path / 'proc'
    links = {'1': 'net:[100]', '7': 'net:[100]', '30': 'net:[200]', '5': 'net:[100]', '12': 'net:[300]'}
    for pid, link in links.items():
        (proc / pid / 'ns').mkdir(parents=True)
        os.symlink(link, str(proc / pid / 'ns' / 'net'))  # /proc's links are dangling too
    (proc / '99').mkdir()  # exited between listdir and readlink: no ns/net
    (proc / 'self').mkdir()
    (proc / 'sys').mkdir()
    (proc / '13' / 'ns').mkdir(parents=True)
    os.symlink('garbage', str(proc / '13' / 'ns' / 'net'))
    found = ns.discover_namespaces(str(proc))
    assert found.namespaces == {100: [1, 5, 7], 200: [30], 300: [12]}
    assert found.processes_seen == 5
    assert found.processes_denied == 0


def test_discovery_of_this_host_finds_this_process_in_its_own_namespace():
    found = ns.discover_namespaces()
    own = ns.own_namespace()
    assert own == ns.namespace_inode(os.readlink('/proc/self/ns/net'))
    assert os.getpid() in found.namespaces[own]
    assert all(pids == sorted(pids) for pids in found.namespaces.values())


def test_open_namespace_skips_exited_and_reused_pids():
    own = ns.own_namespace()
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()  # reaped: its pid is free
    fd, pid = ns.open_namespace(own, [child.pid, os.getpid()])
    try:
        assert pid == os.getpid()
        assert os.fstat(fd).st_ino == own
    finally:
        os.close(fd)
    # A pid now in another namespace than the one discovered (reused) is never taken for it.
    with pytest.raises(ns.NamespaceGone):
        ns.open_namespace(own + 1, [os.getpid()])
    with pytest.raises(ns.NamespaceGone):
        ns.open_namespace(own, [child.pid])
    with pytest.raises(ns.NamespaceGone):
        ns.open_namespace(own, [])


@needs_root
def test_run_in_namespace_runs_in_another_thread_that_ends():
    own = ns.own_namespace()
    fd = os.open('/proc/self/ns/net', os.O_RDONLY)
    try:
        seen = ns.run_in_namespace(fd, own, lambda: (threading.current_thread().name, ns.own_namespace()))
    finally:
        os.close(fd)
    assert seen == ('portwarden-netns-%d' % own, own)
    assert not [thread for thread in threading.enumerate() if thread.name.startswith('portwarden-netns-')]


@needs_root
def test_run_in_namespace_hands_back_the_functions_exception_and_checks_the_namespace():
    own = ns.own_namespace()
    fd = os.open('/proc/self/ns/net', os.O_RDONLY)

    def fails():
        raise KeyError('inside')

    try:
        with pytest.raises(KeyError):
            ns.run_in_namespace(fd, own, fails)
        with pytest.raises(ns.NamespaceUnreadable) as caught:
            ns.run_in_namespace(fd, own + 1, lambda: 'never')
        assert 'instead' in str(caught.value)
    finally:
        os.close(fd)


def test_setns_refused_is_cannot_enter_and_the_caller_stays_put():
    own = ns.own_namespace()
    read_end, write_end = os.pipe()  # not a namespace: setns refuses it (EINVAL, or EPERM unprivileged)
    try:
        with pytest.raises(ns.CannotEnter) as caught:
            ns.run_in_namespace(read_end, own, lambda: 'never')
    finally:
        os.close(read_end)
        os.close(write_end)
    assert 'setns' in str(caught.value)
    assert ns.own_namespace() == own


@needs_root
def test_setns_through_ctypes_as_on_python_before_3_12(monkeypatch):
    monkeypatch.delattr(os, 'setns', raising=False)
    own = ns.own_namespace()
    fd = os.open('/proc/self/ns/net', os.O_RDONLY)
    try:
        assert ns.run_in_namespace(fd, own, ns.own_namespace) == own
    finally:
        os.close(fd)
    ctypes_module, function = ns._libc_setns()
    assert function(-1, ns.CLONE_NEWNET) == -1 and ctypes_module.get_errno() != 0


@needs_root
def test_visit_namespaces_reads_each_in_one_thread_and_reports_the_others():
    own = ns.own_namespace()
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    seen = []

    def read():
        seen.append(threading.current_thread().name)
        return ns.own_namespace()

    visits = ns.visit_namespaces([(own, [child.pid, os.getpid()]), (own + 1, [child.pid]), (own, [os.getpid()])], read)
    assert [(visit.inode, visit.pid, visit.result, type(visit.error)) for visit in visits] == [
        (own, os.getpid(), own, type(None)), (own + 1, child.pid, None, ns.NamespaceGone), (own, os.getpid(), own, type(None))]
    assert seen == ['portwarden-netns-visitor'] * 2
    assert ns.own_namespace() == own
    assert ns.visit_namespaces([], read) == []


@needs_root
def test_visit_namespaces_raises_what_is_not_a_namespace_problem():
    def broken():
        raise ZeroDivisionError('a bug')

    with pytest.raises(ZeroDivisionError):
        ns.visit_namespaces([(ns.own_namespace(), [os.getpid()])], broken)


def test_refused_setns_falls_back_to_proc_pid_net_with_auto_and_procfs_and_is_unreadable_with_netlink(monkeypatch):
    """``auto``/``procfs`` read /proc/PID/net where entering is refused; ``netlink`` cannot, and says so."""
    def refuse(fd, nstype=ns.CLONE_NEWNET):
        raise PermissionError(1, 'Operation not permitted')

    monkeypatch.setattr(ns, 'setns', refuse)
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    inode = os.fstat(listener.fileno()).st_ino
    own = ns.own_namespace()
    pid = os.getpid()

    def fallback(namespace, via, refused):
        return gather._read_namespace_through_pid(namespace, via, ('tcp',), True, refused)

    try:
        [visit] = ns.visit_namespaces([(own, [pid])], lambda: pytest.fail('read without entering'), fallback)
        records, local, port_range = visit.result
        assert inode in [record[5] for record in records]
        assert port_range is None
        assert set(local['sources'].values()) == {'procfs'}
        assert local['notes'] == ['cannot enter it: setns: Operation not permitted; read /proc/%d/net instead, '
                                  'so its ephemeral port range is unknown' % pid]
        [visit] = ns.visit_namespaces([(own, [pid])], lambda: pytest.fail('read without entering'))
        assert isinstance(visit.error, ns.CannotEnter)
        # A pid no longer in the namespace is never read as if it were.
        with pytest.raises(ns.NamespaceUnreadable) as caught:
            fallback(own + 1, pid, ns.CannotEnter('cannot enter it'))
        assert 'left the namespace' in str(caught.value)
    finally:
        listener.close()


def test_unknown_namespaces_mode_is_refused():
    with pytest.raises(gather.GatherError) as caught:
        gather.gather_listening_sockets(namespaces='some')
    assert 'host, all' in str(caught.value)


def test_psutil_cannot_read_other_namespaces_so_all_is_refused():
    with pytest.raises(gather.GatherError) as caught:
        gather.gather_listening_sockets(backend='psutil', namespaces='all')
    assert 'namespaces=all' in str(caught.value)


def test_host_mode_adds_no_namespace_fields():
    result = gather.gather_listening_sockets(namespaces='host')
    assert 'namespaces' not in result['coverage']
    assert all('namespace' not in entry for entry in result['sockets'])


def test_nsfs_mounts_of_mountinfo_text():
    from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces as namespaces

    text = ('22 27 0:21 / /proc rw,relatime - proc proc rw\n'
            '48 40 0:4 net:[4026532310] /run/netns/web rw shared:5 - nsfs nsfs rw\n'
            '49 40 0:4 net:[4026532311] /var/tmp/with\\040space rw - nsfs nsfs rw\n'
            '50 40 0:4 mnt:[4026532312] /run/mnt-ns rw - nsfs nsfs rw\n')
    assert namespaces.nsfs_mounts(text) == [(4026532310, '/run/netns/web'), (4026532311, '/var/tmp/with space')]
