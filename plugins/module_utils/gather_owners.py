# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Gather step: which processes hold which sockets, and who those processes are.

One walk of /proc/*/fd finds every pid holding a wanted socket inode; forked
workers that share one listening socket are all found. Only the processes that
hold a wanted socket are described afterwards.
"""

from __future__ import annotations

import os
import re
import threading

try:
    import pwd
except ImportError:  # not on POSIX hosts; user names are then left out
    pwd = None

# Unit types a process can sit in directly (slices only group other units).
_UNIT_SUFFIXES = ('.service', '.scope', '.socket', '.mount', '.swap')


class FdWalk(object):
    """Result of one walk: ``owners`` maps inode -> sorted pids; counts explain what could not be read.

    ``refused`` lists the processes whose fd directory could be listed but whose links the kernel refused to read
    (ptrace access: a caller without CAP_SYS_PTRACE beside a process holding capabilities it lacks, or an LSM): their
    sockets are unknown, as if they could not be listed at all, though no directory listing failed."""

    def __init__(self):
        self.owners = {}
        self.refused = []
        self.foreign = {}  # walk_fds(collect=True): link text of other sockets and nsfs handles -> [(pid, fd)]
        self.processes_seen = 0
        self.processes_denied = 0
        self.processes_vanished = 0
        self.leaders = {}  # tid -> pid: a process whose leader is a zombie, walked through its live thread tid

    def process_of(self, holder):
        """The process (thread group) of a holder id in ``foreign``: a tid walked for its zombie leader, else itself."""
        return self.leaders.get(holder, holder)

    def merge(self, other):
        for inode, pids in other.owners.items():
            self.owners.setdefault(inode, []).extend(pids)
        for link, holders in other.foreign.items():
            self.foreign.setdefault(link, []).extend(holders)
        self.processes_seen += other.processes_seen
        self.processes_denied += other.processes_denied
        self.processes_vanished += other.processes_vanished
        self.refused.extend(other.refused)
        self.leaders.update(other.leaders)


def _walk_worker(proc_fd, next_pid, wanted, collect=False):
    """Walk whole processes handed out by ``next_pid`` until none is left; return an FdWalk."""
    result = FdWalk()
    owners = result.owners
    foreign = result.foreign if collect else None
    readlink = os.readlink
    flags = os.O_RDONLY | os.O_DIRECTORY
    while True:
        name = next_pid()
        if name is None:
            return result
        try:
            fd_dir = os.open(name + '/fd', flags, dir_fd=proc_fd)
        except PermissionError:
            result.processes_denied += 1
            continue
        except OSError:  # exited since /proc was listed
            result.processes_vanished += 1
            continue
        try:
            try:
                fds = os.listdir(fd_dir)
            except PermissionError:
                result.processes_denied += 1
                continue
            except OSError:
                result.processes_vanished += 1
                continue
            pid = holder = int(name)
            if not fds and _threads(name, proc_fd) > 1:  # a zombie leader whose other threads hold the fd table
                thread = live_thread(pid, proc_fd=proc_fd)
                if thread is not None:
                    try:
                        thread_dir = os.open('%d/fd' % thread, flags, dir_fd=proc_fd)
                    except OSError:
                        thread_dir = None
                    if thread_dir is not None:
                        os.close(fd_dir)
                        fd_dir = thread_dir
                        try:
                            fds = os.listdir(fd_dir)
                        except OSError:
                            fds = []
                        holder = thread
                        result.leaders[thread] = pid
            refused = False
            for fd in fds:
                try:
                    link = readlink(fd, dir_fd=fd_dir)
                except PermissionError:  # listed but not readable: no fd of this process can be read
                    refused = True
                    break
                except OSError:  # the fd was closed while we walked
                    continue
                inode = wanted.get(link)
                if inode is not None:
                    pids = owners.setdefault(inode, [])
                    if not pids or pids[-1] != pid:
                        pids.append(pid)
                elif foreign is not None and (link.startswith('socket:[') or link.startswith('net:[')):
                    foreign.setdefault(link, []).append((holder, int(fd)))
            if refused:
                result.refused.append(pid)
            else:
                result.processes_seen += 1
        finally:
            os.close(fd_dir)


def _threads(name, proc_fd):
    """How many threads process ``name`` has: /proc/PID/task's link count is 2 + its threads (one stat,
    cheaper than reading /proc/PID/stat for each of the many kernel threads, whose fd tables are empty too)."""
    try:
        return os.stat(name + '/task', dir_fd=proc_fd).st_nlink - 2
    except OSError:
        return 0


def _stat_state(path, proc_fd):
    """The state letter of /proc/PID/stat (``R``, ``S``, ``Z``...); the name before it may hold ``)``."""
    fd = os.open(path, os.O_RDONLY, dir_fd=proc_fd)
    try:
        text = os.read(fd, 4096).decode('utf-8', 'replace')
    finally:
        os.close(fd)
    return text[text.rindex(')') + 2:].split(' ', 1)[0]


def live_thread(pid, proc='/proc', proc_fd=None):
    """A live thread (its tid) of process ``pid`` when the leader is a zombie, else None.

    A main thread that ended with exit(2), not exit_group(2), stays a zombie while the other threads run on
    with the process's fds, namespaces and memory; /proc/PID/fd then lists nothing and /proc/PID/ns/net,
    /proc/PID/exe do not resolve, but /proc/TID/... of a live thread shows them all."""
    prefix = '' if proc_fd is not None else proc + '/'
    try:
        if _stat_state('%s%d/stat' % (prefix, pid), proc_fd) not in ('Z', 'X'):
            return None
        task = os.open('%s%d/task' % (prefix, pid), os.O_RDONLY | os.O_DIRECTORY, dir_fd=proc_fd)
        try:
            tids = sorted(int(tid) for tid in os.listdir(task) if tid.isdigit())
        finally:
            os.close(task)
    except (OSError, ValueError, IndexError):
        return None
    for tid in tids:
        if tid == pid:
            continue
        try:
            if _stat_state('%s%d/stat' % (prefix, tid), proc_fd) not in ('Z', 'X'):
                return tid
        except (OSError, ValueError, IndexError):
            continue
    return None


def walk_workers():
    """How many threads walk /proc: the cost is kernel time in readlink, which releases the GIL,
    so walking whole processes on each usable CPU (at most 4) divides the wall time."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def walk_fds(wanted_inodes, proc='/proc', workers=None, collect=False):
    """Walk every process's fd table once and map each wanted socket inode to its (sorted) pids.

    With ``collect``, ``foreign`` also gets every other socket and every fd open on a network namespace
    (``net:[INODE]``, an nsfs handle), with the ``(pid, fd)`` holding each: where namespaces=all looks for
    namespaces no process is in. A process whose leader is a zombie (its main thread exited, others live)
    is walked through a live thread: its sockets are owned by the process, and ``foreign`` names the thread
    (``/proc/TID/fd/N`` resolves, ``/proc/PID/fd/N`` does not; ``leaders`` maps it back)."""
    # Comparing the readlink text avoids parsing an integer for every fd of every process.
    wanted = dict(('socket:[%d]' % inode, inode) for inode in wanted_inodes)
    proc_fd = os.open(proc, os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = [name for name in os.listdir(proc_fd) if name.isdigit()]
        pending = iter(names)
        lock = threading.Lock()

        def next_pid():
            with lock:
                return next(pending, None)

        count = walk_workers() if workers is None else workers
        count = min(count, max(1, len(names) // 8))  # threads are not worth it for a handful of processes
        if count == 1:
            result = _walk_worker(proc_fd, next_pid, wanted, collect)
        else:
            partials = [None] * count

            def run(index):
                partials[index] = _walk_worker(proc_fd, next_pid, wanted, collect)

            threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            result = FdWalk()
            for partial in partials:
                if partial is None:
                    raise OSError('a /proc walker thread failed')
                result.merge(partial)
    finally:
        os.close(proc_fd)
    for pids in result.owners.values():
        pids.sort()
    result.refused.sort()
    return result


def fd_links_refused(proc='/proc'):
    """The pids whose fd directory lists but whose first fd link the kernel refuses to read (see FdWalk.refused).

    For a backend that walks /proc itself and skips what it cannot read without saying so (psutil): one readlink
    per process tells which processes it could not have looked in."""
    refused = []
    proc_fd = os.open(proc, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in os.listdir(proc_fd):
            if not name.isdigit():
                continue
            try:
                fds = os.listdir('%s/%s/fd' % (proc, name))
            except OSError:  # denied (counted by the caller's own rules) or exited
                continue
            for fd in fds:
                try:
                    os.readlink('%s/fd/%s' % (name, fd), dir_fd=proc_fd)
                except PermissionError:
                    refused.append(int(name))
                except OSError:  # closed meanwhile: try the next
                    continue
                break
    finally:
        os.close(proc_fd)
    return sorted(refused)


# -- what the walked /proc can show ----------------------------------------------------------------
#
# hidepid=invisible hides other users' processes from the listing itself, and a private PID namespace's
# /proc lists only its own: the walk meets no EACCES to count, so these facts say what it could not see.

INIT_PID_NAMESPACE = 0xEFFFFFFC  # PROC_PID_INIT_INO: the inode of the initial PID namespace (Linux >= 3.8)
INIT_USER_NAMESPACE = 0xEFFFFFFD  # PROC_USER_INIT_INO
CAP_SYS_PTRACE = 19
# hidepid= as mountinfo spells it (names from Linux 5.8, numbers before) -> level; >= 2 hides the listing.
HIDEPID_LEVELS = {'0': 0, 'off': 0, '1': 1, 'noaccess': 1, '2': 2, 'invisible': 2, '4': 4, 'ptraceable': 4}
HIDEPID_HIDES = 2


def proc_super_options(mountinfo_text, device):
    """Super options (``{'hidepid': 'invisible', 'gid': '10'}``) of the mount of device ``MAJ:MIN`` in
    /proc/PID/mountinfo text, the last one listed (the one mounted on top); None when it is not there."""
    found = None
    for line in mountinfo_text.splitlines():
        fields = line.split(' ')
        if len(fields) < 7 or fields[2] != device:
            continue
        try:
            tail = fields[fields.index('-', 6) + 1:]
        except ValueError:
            continue
        options = {}
        for option in (tail[2] if len(tail) > 2 else '').split(','):
            key, _sep, value = option.partition('=')
            options[key] = value
        found = options
    return found


def hidepid_level(options):
    """The hidepid level of proc super options; an unknown spelling counts as hiding (fail closed)."""
    if not options or 'hidepid' not in options:
        return 0
    return HIDEPID_LEVELS.get(options['hidepid'], HIDEPID_HIDES)


def sees_hidden_processes(options, groups, cap_effective, user_namespace):
    """Whether hidepid hides nothing from this caller: a member of the mount's ``gid=``, or
    CAP_SYS_PTRACE in the initial user namespace (ptrace access to every process)."""
    gid = (options or {}).get('gid')
    if gid is not None and gid.isdigit() and int(gid) in groups:
        return True
    return bool(cap_effective >> CAP_SYS_PTRACE & 1) and user_namespace == INIT_USER_NAMESPACE


def pid_namespace_view(own, first):
    """Which PID namespace a /proc lists: ``host`` (the initial one: every process of the machine),
    ``private`` or ``unknown``. ``own`` is the inode of /proc/self/ns/pid read through it (None when
    /proc/self does not resolve there), ``first`` that of its /proc/1/ns/pid (None when unreadable)."""
    if INIT_PID_NAMESPACE in (own, first):
        return 'host'
    if own is None and first is None:
        return 'unknown'
    return 'private'


def _namespace_link_inode(path):
    try:
        text = os.readlink(path)
    except OSError:
        return None
    _kind, _sep, rest = text.partition(':[')
    return int(rest[:-1]) if rest[:-1].isdigit() else None


def _cap_effective(status_text):
    for line in status_text.splitlines():
        if line.startswith('CapEff:'):
            return int(line.split()[1], 16)
    return 0


class ProcView(object):
    """What a walk of ``proc`` can list: ``pid_namespace`` (see pid_namespace_view), ``hidepid`` (the
    mount's option text, None when unset or unreadable), whether this caller ``sees_hidden`` processes,
    and ``hides`` (True when hidepid hides processes from this caller, None when the options are unknown).
    ``covered``: the mount points below a process's entry (``/proc/PID``, see covered_entries), None when the
    mounts could not be read."""

    def __init__(self, pid_namespace, hidepid, sees_hidden, hides, covered=()):
        self.pid_namespace = pid_namespace
        self.hidepid = hidepid
        self.sees_hidden = sees_hidden
        self.hides = hides
        self.covered = None if covered is None else list(covered)

    def as_dict(self):
        return {'pid_namespace': self.pid_namespace, 'hidepid': self.hidepid}


_MOUNT_ESCAPE = re.compile(r'\\([0-7]{3})')


def covered_entries(mountinfo_text, proc='/proc'):
    """The mount points at or below a process's entry of ``proc`` (``/proc/1234``, ``/proc/1234/fd``) in
    /proc/PID/mountinfo text, sorted. The kernel's view of a process is never under a mount: whatever is
    mounted there (a careless ``mount --bind``) hides its fds, or forges them, its name and its executable."""
    prefix = proc.rstrip('/') + '/'
    found = set()
    for line in mountinfo_text.splitlines():
        fields = line.split(' ')
        if len(fields) < 5:
            continue
        point = _MOUNT_ESCAPE.sub(lambda octal: chr(int(octal.group(1), 8)), fields[4])
        if point.startswith(prefix) and point[len(prefix):].split('/', 1)[0].isdigit():
            found.add(point)
    return sorted(found, key=lambda point: (len(point.split('/')), point))


def read_proc_view(proc='/proc'):
    """The ProcView of ``proc`` for the calling process (a few small reads of its own /proc entries)."""
    own = _namespace_link_inode(proc + '/self/ns/pid')
    first = None if own == INIT_PID_NAMESPACE else _namespace_link_inode(proc + '/1/ns/pid')
    try:
        st_dev = os.stat(proc).st_dev
        mountinfo = _read(proc + '/self/mountinfo')
        options = proc_super_options(mountinfo, '%d:%d' % (os.major(st_dev), os.minor(st_dev)))
        covered = covered_entries(mountinfo, proc)
    except OSError:
        options = covered = None
    try:
        cap_effective = _cap_effective(_read(proc + '/self/status'))
    except OSError:
        cap_effective = 0
    user_namespace = _namespace_link_inode(proc + '/self/ns/user')
    sees = sees_hidden_processes(options, set(os.getgroups()) | {os.getegid()}, cap_effective, user_namespace)
    if options is None:
        hides = None if not sees else False
    else:
        hides = hidepid_level(options) >= HIDEPID_HIDES and not sees
    return ProcView(pid_namespace_view(own, first), (options or {}).get('hidepid'), sees, hides, covered)


# Characters of a unit name systemd makes (anything else is \xNN-escaped), and the longest name it makes.
_UNIT_NAME = re.compile(r'^[A-Za-z0-9:_.@\\-]+$')
_UNIT_NAME_MAX = 255
_USER_MANAGER = re.compile(r'^user@[0-9]+\.service$')
SYSTEM_SLICE = 'system.slice'


def _is_slice(component):
    return component.endswith('.slice') and bool(_UNIT_NAME.match(component))


def _is_unit(component):
    return component.endswith(_UNIT_SUFFIXES) and len(component) <= _UNIT_NAME_MAX and bool(_UNIT_NAME.match(component))


def _unit_of_path(components):
    """The unit of a cgroup path (its components): a bare name for the system manager's unit in system.slice,
    else the cgroup path down to the innermost unit-like component (``/...``), or None."""
    inner = max((index for index, component in enumerate(components) if component.endswith(_UNIT_SUFFIXES)), default=None)
    for index, component in enumerate(components):
        if _is_slice(component):
            continue
        if not _is_unit(component):
            # Not made by the system manager (a cgroupfs container runtime, lxc): whatever unit is named below
            # belongs to a manager inside it, never to this host's.
            return None if inner is None else '/' + '/'.join(components[:inner + 1])
        if any(part.endswith(_UNIT_SUFFIXES + ('.slice',)) for part in components[index + 1:]):
            # A delegated subtree (user@UID.service, a container's own systemd): another manager's unit.
            return '/' + '/'.join(components[:inner + 1])
        if index > 0 and components[0] == SYSTEM_SLICE:
            return component
        return '/' + '/'.join(components[:index + 1])
    return None


def unit_from_cgroup(text):
    """Return the systemd unit of the text of /proc/PID/cgroup, or None.

    Prefers the unified (v2) hierarchy line ``0::/path`` and falls back to the v1 ``name=systemd``
    line. A unit is named bare (``ssh.service``) only when it is the system manager's and sits in
    ``system.slice``: every cgroup above it is a slice, the first one system.slice, and nothing below
    it is another manager's (``user@1000.service/app.slice/ssh.service`` is the user's ssh.service).
    Any other unit is given as its cgroup path down to the innermost unit (``/user.slice/.../ssh.service``,
    ``/init.scope``), which no system unit name can be mistaken for: a unit name never holds a ``/``.
    Text with two different lines for one hierarchy (a forged line) names no unit.
    """
    unified, legacy = set(), set()
    for line in text.splitlines():
        parts = line.split(':', 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == '0' and controllers == '':
            unified.add(path)
        elif controllers == 'name=systemd':
            legacy.add(path)
    if len(unified) > 1 or len(legacy) > 1:
        return None
    for paths in (unified, legacy):
        components = [part for part in next(iter(paths), '').split('/') if part]
        if components:
            return _unit_of_path(components)
    return None


def system_unit(unit, slices=(SYSTEM_SLICE,)):
    """``(name, None)`` when ``unit`` (as unit_from_cgroup gives it) is a unit of the system manager whose
    top slice is one of ``slices`` (None: any), else ``(None, why not)``."""
    if not unit:
        return None, 'no unit'
    if '/' not in unit:
        if slices is None or SYSTEM_SLICE in slices:
            return unit, None
        return None, 'unit %s runs in %s, not in %s' % (unit, SYSTEM_SLICE, ' or '.join(slices))
    components = [part for part in unit.split('/') if part]
    for index, component in enumerate(components):
        if _is_slice(component):
            continue
        if not _is_unit(component):
            return None, 'cgroup %s is not a systemd unit of this host (%s is no slice or unit of the system manager)' % (
                unit, component)
        if index < len(components) - 1:
            if _USER_MANAGER.match(component):
                return None, '%s is a unit of the user manager %s (cgroup %s), not of the system manager' % (
                    components[-1], component, unit)
            return None, '%s runs inside %s (cgroup %s), under a manager of its own, not the system manager' % (
                components[-1], component, unit)
        if slices is not None and (index == 0 or components[0] not in slices):
            return None, 'unit %s runs in %s, not in %s' % (
                component, '/'.join(components[:index]) if index else 'the root slice', ' or '.join(slices))
        return component, None
    return None, 'cgroup %s holds no unit' % unit


def process_start_time(stat_text):
    """Field 22 of /proc/PID/stat (starttime, clock ticks after boot); the name (field 2) may hold
    spaces and parentheses, so the fields are counted from its closing parenthesis."""
    return int(stat_text[stat_text.rindex(')') + 2:].split()[19])


def _read(path):
    with open(path, 'rb') as handle:
        return handle.read().decode('utf-8', 'replace')


class ProcessDescriber(object):
    """Describes pids (name, uid, user, exe, unit, start_time), caching per pid and per uid.

    ``start_time`` (clock ticks after boot, /proc/PID/stat field 22) with ``exe`` identifies the
    process: a pid the kernel has since recycled has another start time.
    """

    def __init__(self, proc='/proc'):
        self.proc = proc
        self._by_pid = {}
        self._users = {}
        self.errors = 0

    def user_name(self, uid):
        if uid is None or pwd is None:
            return None
        if uid not in self._users:
            try:
                self._users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                self._users[uid] = None
        return self._users[uid]

    def describe(self, pid):
        """Return a dict describing pid, or None when the process is gone."""
        if pid in self._by_pid:
            return self._by_pid[pid]
        base = '%s/%d' % (self.proc, pid)
        try:
            name = _read(base + '/comm').rstrip('\n')
            start_time = process_start_time(_read(base + '/stat'))
            uid = None
            for line in _read(base + '/status').splitlines():
                if line.startswith('Uid:'):
                    uid = int(line.split()[2])  # effective uid
                    break
        except (OSError, ValueError, IndexError):
            self.errors += 1
            self._by_pid[pid] = None
            return None
        try:
            exe = os.readlink(base + '/exe')
        except OSError:  # kernel threads, other users' processes without privilege, a zombie leader
            exe = None
            thread = live_thread(pid, self.proc)
            if thread is not None:  # its main thread exited: a live thread still runs the executable
                base = '%s/%d' % (self.proc, thread)
                try:
                    exe = os.readlink(base + '/exe')
                except OSError:
                    exe = None
        try:
            unit = unit_from_cgroup(_read(base + '/cgroup'))
        except OSError:
            unit = None
        info = {'pid': pid, 'name': name, 'user': self.user_name(uid), 'uid': uid, 'exe': exe, 'unit': unit,
                'start_time': start_time}
        self._by_pid[pid] = info
        return info
