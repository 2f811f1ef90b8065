"""Unit tests: cgroup -> systemd unit, and the fd walk and process description on this very process."""

import os
import socket

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_owners as owners
from ansible_collections.portwarden.compliance.plugins.module_utils import gather_sockets as gather


@pytest.mark.parametrize('text, expected', [
    ('0::/system.slice/nginx.service\n', 'nginx.service'),
    ('0::/system.slice/system-getty.slice/getty@tty1.service\n', 'getty@tty1.service'),
    ('0::/user.slice/user-1000.slice/session-3.scope\n', '/user.slice/user-1000.slice/session-3.scope'),
    ('0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-foo.scope\n',
     '/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-foo.scope'),
    ('0::/user.slice/user-1000.slice/user@1000.service/app.slice/syncthing.service\n',
     '/user.slice/user-1000.slice/user@1000.service/app.slice/syncthing.service'),
    ('0::/init.scope\n', '/init.scope'),
    ('0::/system.slice/docker-4f1c0a.scope\n', 'docker-4f1c0a.scope'),
    ('0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-ab12.scope\n',
     '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-ab12.scope'),
    ('0::/system.slice/dev-mqueue.mount\n', 'dev-mqueue.mount'),
    ('0::/system.slice/docker.socket\n', 'docker.socket'),
    ('0::/\n', None),
    ('0::/system.slice\n', None),
    ('0::/lxc.payload.c1/system.slice/sshd.service\n', '/lxc.payload.c1/system.slice/sshd.service'),
    # cgroup v1 / hybrid: the name=systemd hierarchy names the unit; "0::/" of hybrid mode is empty.
    ('12:pids:/system.slice/cron.service\n1:name=systemd:/system.slice/cron.service\n0::/\n', 'cron.service'),
    ('9:name=systemd:/\n8:pids:/\n0::/\n', None),
    # unified wins over legacy when both name a unit
    ('1:name=systemd:/system.slice/old.service\n0::/system.slice/new.service\n', 'new.service'),
    ('', None),
    ('garbage without colons\n', None),
], ids=lambda value: value if isinstance(value, str) and '\n' not in value else None)
def test_unit_from_cgroup(text, expected):
    assert owners.unit_from_cgroup(text) == expected


def test_walk_finds_this_process_for_its_own_socket_and_only_wanted_inodes():
    wanted = socket.socket()
    other = socket.socket()
    try:
        inode = os.fstat(wanted.fileno()).st_ino
        walk = owners.walk_fds([inode])
        assert walk.owners == {inode: [os.getpid()]}
        assert walk.processes_seen >= 1
    finally:
        wanted.close()
        other.close()


def test_walk_lists_a_pid_once_for_a_duplicated_fd():
    sock = socket.socket()
    duplicate = os.dup(sock.fileno())
    try:
        inode = os.fstat(sock.fileno()).st_ino
        assert owners.walk_fds([inode]).owners[inode] == [os.getpid()]
    finally:
        os.close(duplicate)
        sock.close()


def test_walk_of_an_unreadable_proc_root_raises(tmp_path):
    with pytest.raises(OSError):
        owners.walk_fds([1], proc=str(tmp_path / 'missing'))


def test_describe_this_process():
    describer = owners.ProcessDescriber()
    info = describer.describe(os.getpid())
    with open('/proc/self/comm') as handle:
        comm = handle.read().strip()
    assert info['pid'] == os.getpid()
    assert info['name'] == comm
    assert info['uid'] == os.geteuid()
    assert info['exe'] == os.path.realpath('/proc/self/exe')
    assert describer.describe(os.getpid()) is info  # cached
    # psutil reads the same field; its create_time is boot time + start_time / ticks per second
    with open('/proc/self/stat') as handle:
        assert info['start_time'] == owners.process_start_time(handle.read()) > 0


@pytest.mark.parametrize('stat, expected', [
    ('1 (systemd) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 42 1000 10', 42),
    # a process may name itself with spaces and parentheses; field 22 is counted from the last ')'
    ('77 (a) b) (c) S 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 987654321 0 0', 987654321),
])
def test_process_start_time(stat, expected):
    assert owners.process_start_time(stat) == expected


@pytest.mark.parametrize('workers', [1, 2, 4])
def test_parallel_walk_finds_the_same_owners(workers):
    sockets = [socket.socket() for _index in range(5)]
    try:
        inodes = [os.fstat(sock.fileno()).st_ino for sock in sockets]
        walk = owners.walk_fds(inodes, workers=workers)
        assert walk.owners == dict((inode, [os.getpid()]) for inode in inodes)
        assert walk.processes_seen >= 1
    finally:
        for sock in sockets:
            sock.close()


# -- what the walked /proc can list: hidepid and the PID namespace ---------------------------------

MOUNTINFO = (
    '22 27 0:21 / /proc rw,relatime - proc proc rw\n'
    '23 27 0:22 / /sys rw,relatime - sysfs sysfs rw\n'
    '47 22 0:41 / /proc rw,relatime shared:7 master:1 - proc proc rw,hidepid=invisible,gid=27\n'
    '48 22 0:4 net:[4026532310] /run/netns/x rw - nsfs nsfs rw\n'
)


def test_proc_super_options_of_the_walked_mount():
    assert owners.proc_super_options(MOUNTINFO, '0:41') == {'rw': '', 'hidepid': 'invisible', 'gid': '27'}
    assert owners.proc_super_options(MOUNTINFO, '0:21') == {'rw': ''}
    assert owners.proc_super_options(MOUNTINFO, '0:99') is None


def test_proc_super_options_last_mount_of_the_device_wins():
    text = MOUNTINFO + '49 22 0:41 / /proc rw - proc proc rw,hidepid=ptraceable\n'
    assert owners.proc_super_options(text, '0:41')['hidepid'] == 'ptraceable'


def test_proc_super_options_skip_lines_without_separator():
    assert owners.proc_super_options('47 22 0:41 / /proc rw,relatime proc proc rw,hidepid=2\n', '0:41') is None


@pytest.mark.parametrize('options, level', [
    (None, 0), ({}, 0), ({'rw': ''}, 0),
    ({'hidepid': '0'}, 0), ({'hidepid': 'off'}, 0),
    ({'hidepid': '1'}, 1), ({'hidepid': 'noaccess'}, 1),
    ({'hidepid': '2'}, 2), ({'hidepid': 'invisible'}, 2),
    ({'hidepid': '4'}, 4), ({'hidepid': 'ptraceable'}, 4),
    ({'hidepid': 'someday'}, 2),  # a spelling we do not know counts as hiding
])
def test_hidepid_level(options, level):
    assert owners.hidepid_level(options) == level


PTRACE = 1 << 19  # CAP_SYS_PTRACE
INIT_USER = 0xEFFFFFFD  # PROC_USER_INIT_INO
INIT_PID = 0xEFFFFFFC  # PROC_PID_INIT_INO


@pytest.mark.parametrize('options, groups, caps, userns, sees', [
    ({'hidepid': 'invisible'}, {1000}, 0, INIT_USER, False),
    ({'hidepid': 'invisible', 'gid': '27'}, {1000, 27}, 0, INIT_USER, True),
    ({'hidepid': 'invisible', 'gid': '27'}, {1000}, 0, INIT_USER, False),
    ({'hidepid': 'invisible'}, set(), PTRACE, INIT_USER, True),
    ({'hidepid': 'invisible'}, set(), PTRACE, 4026532400, False),  # root of a user namespace: not over the host's
    ({'hidepid': 'invisible'}, set(), PTRACE - 1, INIT_USER, False),
    (None, set(), 0, None, False),
])
def test_sees_hidden_processes(options, groups, caps, userns, sees):
    assert owners.sees_hidden_processes(options, groups, caps, userns) is sees


@pytest.mark.parametrize('own, first, view', [
    (INIT_PID, None, 'host'),
    (4026532500, INIT_PID, 'host'),  # unshare -p without a proc of its own: the host's /proc
    (4026532500, 4026532500, 'private'),
    (4026532500, None, 'private'),
    (None, 4026532500, 'private'),
    (None, None, 'unknown'),
])
def test_pid_namespace_view(own, first, view):
    assert owners.pid_namespace_view(own, first) == view


def test_read_proc_view_of_this_process():
    view = owners.read_proc_view()
    assert view.pid_namespace in ('host', 'private')
    assert view.as_dict() == {'pid_namespace': view.pid_namespace, 'hidepid': view.hidepid}
    if os.geteuid() == 0:
        assert view.sees_hidden is True and view.hides is False


def test_the_initial_namespace_inodes_are_the_kernels():
    assert (owners.INIT_PID_NAMESPACE, owners.INIT_USER_NAMESPACE, owners.CAP_SYS_PTRACE) == (INIT_PID, INIT_USER, 19)


# A unit name is the system manager's only when every cgroup above it is a slice and the first slice is
# system.slice; anything else is given as its cgroup path, which no system unit name can be taken for.
@pytest.mark.parametrize('text, expected', [
    ('0::/user.slice/user-1000.slice/user@1000.service/app.slice/ssh.service\n',
     '/user.slice/user-1000.slice/user@1000.service/app.slice/ssh.service'),
    ('0::/system.slice/docker-%s.scope/system.slice/ssh.service\n' % ('a' * 64),
     '/system.slice/docker-%s.scope/system.slice/ssh.service' % ('a' * 64)),
    ('0::/kubepods/burstable/pod1/%s/system.slice/ssh.service\n' % ('b' * 64),
     '/kubepods/burstable/pod1/%s/system.slice/ssh.service' % ('b' * 64)),
    ('0::/lxc.payload.c1/system.slice/sshd.service\n', '/lxc.payload.c1/system.slice/sshd.service'),
    ('0::/init.scope\n', '/init.scope'),
    ('0::/init.scope/ssh.service\n', '/init.scope/ssh.service'),
    ('0::/pwtest.slice/ssh.service\n', '/pwtest.slice/ssh.service'),
    ('0::/ssh.service\n', '/ssh.service'),
    ('0::/user.slice/user-1000.slice/session-3.scope\n', '/user.slice/user-1000.slice/session-3.scope'),
    # a forged second unified line (a cgroup name with a newline; the kernel refuses those): ambiguous, no unit
    ('0::/user.slice/user-1000.slice/user@1000.service/app.slice/x\n0::/system.slice/ssh.service\n', None),
    # a component that is no unit name systemd makes is no unit
    ('0::/system.slice/ssh service.service\n', '/system.slice/ssh service.service'),
    # hybrid: an empty unified line defers to name=systemd, which is held to the same rule
    ('1:name=systemd:/user.slice/user-1000.slice/user@1000.service/app.slice/ssh.service\n0::/\n',
     '/user.slice/user-1000.slice/user@1000.service/app.slice/ssh.service'),
], ids=lambda value: value.strip() if isinstance(value, str) else None)
def test_unit_from_cgroup_never_names_a_system_unit_for_another_manager(text, expected):
    assert owners.unit_from_cgroup(text) == expected


@pytest.mark.parametrize('text, expected', [
    ('0::/system.slice/ssh.service\n', 'ssh.service'),
    ('0::/system.slice/system-openvpn.slice/openvpn@pw\\x2dvpn.service\n', 'openvpn@pw\\x2dvpn.service'),
    ('0::/system.slice/docker.service/payload\n', 'docker.service'),  # a delegated sub-cgroup is still the unit's
])
def test_unit_from_cgroup_names_a_system_service_by_its_exact_name(text, expected):
    assert owners.unit_from_cgroup(text) == expected


@pytest.mark.parametrize('unit, slices, name, words', [
    ('ssh.service', ('system.slice',), 'ssh.service', None),
    ('ssh.service', ('pwtest.slice',), None, 'runs in system.slice, not in pwtest.slice'),
    ('/pwtest.slice/sub.slice/rogue.service', ('system.slice', 'pwtest.slice'), 'rogue.service', None),
    ('/pwtest.slice/sub.slice/rogue.service', ('system.slice',), None, 'runs in pwtest.slice/sub.slice, not in system.slice'),
    ('/pwtest.slice/rogue.service', None, 'rogue.service', None),
    ('/rogue.service', ('system.slice',), None, 'runs in the root slice'),
    ('/user.slice/user-1000.slice/user@1000.service/app.slice/ssh.service', None, None,
     'ssh.service is a unit of the user manager user@1000.service'),
    ('/system.slice/docker-%s.scope/system.slice/ssh.service' % ('a' * 64), None, None, 'runs inside docker-'),
    ('/lxc.payload.c1/system.slice/ssh.service', None, None, 'is not a systemd unit of this host'),
    (None, None, None, 'no unit'),
])
def test_system_unit(unit, slices, name, words):
    found, why = owners.system_unit(unit, slices)
    assert found == name
    assert (why is None) if words is None else (words in why), why


COVERED_MOUNTINFO = '\n'.join([
    '22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw',
    '23 22 0:38 / /proc/sys/fs/binfmt_misc rw,relatime shared:13 - binfmt_misc binfmt_misc rw',
    '24 22 0:39 / /proc/fs/nfsd rw,relatime - nfsd nfsd rw',
    '25 22 254:0 /tmp/fake /proc/1234 rw,relatime - ext4 /dev/vda rw',
    '26 22 254:0 /tmp/fd /proc/77/fd rw,relatime - ext4 /dev/vda rw',
    '27 22 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw',
    '28 1 254:0 /srv /srv/proc/99 rw,relatime - ext4 /dev/vda rw',
    '29 22 254:0 /tmp/x /proc/12\\040x rw,relatime - ext4 /dev/vda rw',
])


def test_covered_entries_are_the_mounts_at_or_below_a_process_entry():
    # binfmt_misc, nfsd, a masked /proc/kcore are the kernel's own; /proc/1234 and /proc/77/fd are processes'.
    assert owners.covered_entries(COVERED_MOUNTINFO) == ['/proc/1234', '/proc/77/fd']
    assert owners.covered_entries(COVERED_MOUNTINFO, proc='/srv/proc') == ['/srv/proc/99']


def test_covered_mounts_make_the_gather_partial_naming_them():
    view = owners.ProcView('host', None, False, False, ['/proc/1234', '/proc/77/fd'])
    errors = gather.covered_proc_errors(view)
    assert len(errors) == 1 and '/proc/1234, /proc/77/fd' in errors[0] and 'pids 77, 1234' in errors[0]
    assert gather.covered_proc_errors(owners.ProcView('host', None, False, False)) == []
    assert 'unknown' in gather.covered_proc_errors(owners.ProcView('host', None, False, False, None))[0]
    coverage = gather.finish_coverage({'errors': [], 'notes': [], 'unowned_sockets': []}, view, True)
    assert coverage['complete'] is False and coverage['owner_search']['exhaustive'] is False
