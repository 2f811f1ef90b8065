# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Gather step: the network namespaces of this host, entering them, and the containers they belong to.

Pure standard library (ctypes for setns(2) on Python < 3.12, imported when first needed).

- ``discover_namespaces``: every distinct network namespace that a process is in, by grouping
  ``/proc/*/ns/net`` by inode (namespaces held by no process, such as an empty ``ip netns add``, are
  not seen: no process means no user-space socket).
- ``open_namespace``: an fd on one of them through one of its pids. Holding the fd keeps the
  namespace alive while it is read, so it cannot vanish between being entered and read.
- ``visit_namespaces``: read each of them in one short-lived thread that enters them in turn and
  ends (``run_in_namespace``: one namespace). setns(2) changes only the calling thread, so the caller
  never leaves its own namespace.
- ``container_from_cgroup`` and ``ContainerNames``: which container a process belongs to, from the
  text of ``/proc/PID/cgroup``, and the container's name where a runtime's file says it cheaply.
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading

from ansible_collections.portwarden.compliance.plugins.module_utils.gather_owners import live_thread

CLONE_NEWNET = 0x40000000

_NS_LINK = re.compile(r'^net:\[(\d+)\]$')


class NamespaceGone(Exception):
    """Every process of the namespace exited before it could be entered: nothing listens there any more."""


class NamespaceUnreadable(Exception):
    """The namespace exists but could not be entered or read; the message says why."""


class CannotEnter(NamespaceUnreadable):
    """setns(2) into the namespace was refused (no CAP_SYS_ADMIN over it, seccomp, no setns)."""


def namespace_inode(link_text):
    """``net:[4026531840]`` (the text of a /proc/PID/ns/net link) -> 4026531840."""
    match = _NS_LINK.match(link_text)
    if match is None:
        raise ValueError('not a network namespace link: %r' % link_text)
    return int(match.group(1))


def thread_self(proc='/proc'):
    """The calling thread's own /proc directory. Not /proc/self: that is the main thread's, which another
    thread's setns does not move. /proc/thread-self exists from Linux 3.17; /proc/self/task/TID before."""
    if os.path.isdir(proc + '/thread-self'):
        return proc + '/thread-self'
    return '%s/self/task/%d' % (proc, threading.get_native_id())


def own_namespace(proc='/proc'):
    """Inode of the network namespace the calling thread is in."""
    return namespace_inode(os.readlink(thread_self(proc) + '/ns/net'))


def pid_namespace(pid, proc='/proc'):
    """Inode of the network namespace of ``pid``; OSError when it is gone or may not be inspected."""
    return namespace_inode(os.readlink('%s/%d/ns/net' % (proc, pid)))


class Discovery(object):
    """Result of ``discover_namespaces``: ``namespaces`` maps inode -> ascending pids."""

    def __init__(self):
        self.namespaces = {}
        self.mount_namespaces = {}  # mount namespace link text -> ascending pids in it, to read its mountinfo through
        self.processes_seen = 0
        self.processes_denied = 0


def discover_namespaces(proc='/proc'):
    """Group every process under ``proc`` by the inode of its network namespace.

    A process that exits meanwhile is skipped; one whose namespace may not be read is counted in
    ``processes_denied`` (its namespace may be missing from the result). A process whose leader is a zombie
    (its main thread exited, others live on) is listed by the tid of a live thread, whose /proc/TID/ns/net
    resolves where /proc/PID/ns/net no longer does.
    """
    result = Discovery()
    namespaces = result.namespaces
    readlink = os.readlink
    proc_fd = os.open(proc, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for listed in os.listdir(proc_fd):
            if not listed.isdigit():
                continue
            name = listed
            try:
                link = readlink(name + '/ns/net', dir_fd=proc_fd)
            except PermissionError:
                result.processes_denied += 1
                continue
            except OSError:  # exited since /proc was listed, or only its leader did
                thread = live_thread(int(listed), proc_fd=proc_fd)
                if thread is None:
                    continue
                name = str(thread)
                try:
                    link = readlink(name + '/ns/net', dir_fd=proc_fd)
                except PermissionError:
                    result.processes_denied += 1
                    continue
                except OSError:
                    continue
            match = _NS_LINK.match(link)
            if match is None:
                continue
            result.processes_seen += 1
            namespaces.setdefault(int(match.group(1)), []).append(int(name))
            try:
                mounts = readlink(name + '/ns/mnt', dir_fd=proc_fd)
            except OSError:  # exited meanwhile (its mounts live on in its namespace's other processes) or denied
                continue
            result.mount_namespaces.setdefault(mounts, []).append(int(name))
    finally:
        os.close(proc_fd)
    for pids in namespaces.values():
        pids.sort()
    return result


_OCTAL = re.compile(r'\\([0-7]{3})')


def nsfs_mounts(mountinfo_text):
    """``[(inode, mount point)]`` of every network namespace bind-mounted in /proc/PID/mountinfo text
    (``ip netns add`` makes one under /run/netns; any bind mount of an nsfs inode is one too)."""
    found = []
    for line in mountinfo_text.splitlines():
        fields = line.split(' ')
        if len(fields) < 7 or ' - nsfs ' not in line:
            continue
        match = _NS_LINK.match(fields[3])
        if match is not None:
            found.append((int(match.group(1)), _OCTAL.sub(lambda octal: chr(int(octal.group(1), 8)), fields[4])))
    return found


def mounted_namespaces(discovery, proc='/proc'):
    """``(paths, unreadable)``: inode -> paths to open each bind-mounted network namespace through, from the
    mountinfo of one process of each mount namespace (``/proc/PID/root`` + its mount point), and the count
    of mount namespaces whose mountinfo was refused. One whose every process exited meanwhile is skipped."""
    paths = {}
    unreadable = 0
    for pids in sorted(discovery.mount_namespaces.values()):
        for pid in sorted(pids):
            try:
                with open('%s/%d/mountinfo' % (proc, pid), 'rb') as handle:
                    text = handle.read().decode('utf-8', 'replace')
            except PermissionError:
                unreadable += 1
                break
            except OSError:  # this process exited: try the next one of the same mount namespace
                continue
            for inode, mount_point in nsfs_mounts(text):
                paths.setdefault(inode, []).append('%s/%d/root%s' % (proc, pid, mount_point))
            break
    return paths, unreadable


def open_namespace(inode, pids, proc='/proc', paths=()):
    """Open network namespace ``inode`` through the first of ``pids`` still in it, else the first of ``paths``
    (a bind mount of it, an fd open on it) that still is it; return ``(fd, pid)`` (pid None through a path).

    A pid that exited, or was reused by a process of another namespace, is skipped, and so is a path gone
    or now another namespace. Raises NamespaceGone when none is left and NamespaceUnreadable when one could
    not be opened for lack of permission.
    """
    refused = None
    candidates = [('%s/%d/ns/net' % (proc, pid), pid) for pid in pids] + [(path, None) for path in paths]
    for path, pid in candidates:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except PermissionError as exc:
            refused = refused or (path, exc)
            continue
        except OSError:  # ENOENT, ESRCH: the process exited, the mount or fd is gone
            continue
        try:
            same = os.fstat(fd).st_ino == inode
        except OSError:
            same = False
        if same:
            return fd, pid
        os.close(fd)  # the pid (or path) now belongs to another namespace
    if refused is not None:
        raise NamespaceUnreadable('cannot open %s: %s' % (refused[0], refused[1].strerror or refused[1]))
    if paths and not pids:
        # Known to exist from a mount or an fd, which can no longer be opened (unmounted, covered by another mount,
        # closed): it may still exist, held by a socket; fail closed.
        raise NamespaceUnreadable('cannot open it through %s (unmounted, covered by another mount, or closed)'
                                  % ', '.join(paths))
    raise NamespaceGone('every process of the namespace exited during the scan')


_LIBC = []


def _libc_setns():
    if not _LIBC:
        try:
            import ctypes
        except ImportError as exc:
            raise OSError(errno.ENOSYS, 'setns needs Python 3.12 or ctypes: %s' % exc) from exc
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            function = libc.setns
        except (OSError, AttributeError) as exc:
            raise OSError(errno.ENOSYS, 'the C library has no setns: %s' % exc) from exc
        function.argtypes = (ctypes.c_int, ctypes.c_int)
        function.restype = ctypes.c_int
        _LIBC.append((ctypes, function))
    return _LIBC[0]


SYS_PIDFD_OPEN = 434  # the same number on every architecture (the unified syscall table, Linux 5.3)
SYS_PIDFD_GETFD = 438  # Linux 5.6
SIOCGSKNS = 0x894C  # an fd on the network namespace of a socket (Linux 4.9)
PIDFD_THREAD = os.O_EXCL  # pidfd_open of a thread, not a thread group leader (Linux 6.9)


def _syscall(number, *args):
    ctypes, _setns = _libc_setns()
    libc = ctypes.CDLL(None, use_errno=True)
    value = libc.syscall(number, *(ctypes.c_long(arg) for arg in args))
    if value < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return value


class SocketNamespaces(object):
    """The network namespace of sockets other processes hold: a copy of the fd (pidfd_getfd, root) asked
    SIOCGSKNS. ``namespace(pid, fd)`` returns an fd open on it (the caller closes it); OSError says why not
    (ESRCH, EBADF: the process or fd went away). One pidfd per process, closed by ``close()``."""

    def __init__(self):
        self._pidfds = {}

    def namespace(self, pid, fd):
        import fcntl

        pidfd = self._pidfds.get(pid)
        if pidfd is None:
            try:
                pidfd = _syscall(SYS_PIDFD_OPEN, pid, 0)
            except OSError as exc:
                # A thread of a process whose leader is a zombie (gather_owners.live_thread): its own fd table. Not a
                # leader, pidfd_open refuses it with EINVAL before Linux 6.9 and ENOENT since, which is no socket gone.
                if exc.errno not in (errno.EINVAL, errno.ENOENT):
                    raise
                pidfd = _syscall(SYS_PIDFD_OPEN, pid, PIDFD_THREAD)
            self._pidfds[pid] = pidfd
        copy = _syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        try:
            return fcntl.ioctl(copy, SIOCGSKNS)
        finally:
            os.close(copy)

    def close(self):
        for pidfd in self._pidfds.values():
            os.close(pidfd)
        self._pidfds.clear()


def setns(fd, nstype=CLONE_NEWNET):
    """Move the calling thread into the namespace open at ``fd`` (os.setns on 3.12+, libc through ctypes before)."""
    native = getattr(os, 'setns', None)
    if native is not None:
        native(fd, nstype)
        return
    ctypes, function = _libc_setns()
    if function(fd, nstype) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def enter_namespace(fd, inode):
    """Move the calling thread into namespace ``fd`` and check that it is ``inode``; CannotEnter or
    NamespaceUnreadable (its base) say why not."""
    try:
        setns(fd, CLONE_NEWNET)
    except OSError as exc:
        raise CannotEnter('cannot enter it: setns: %s' % (exc.strerror or exc)) from exc
    entered = own_namespace()
    if entered != inode:
        raise NamespaceUnreadable('setns entered namespace %d instead' % entered)


def _in_thread(name, function):
    """Run ``function`` in a new thread and wait for it: the thread's namespace changes end with it."""
    outcome = {}

    def call():
        try:
            outcome['result'] = function()
        except BaseException as exc:  # handed to the caller's thread, which raises it
            outcome['error'] = exc

    thread = threading.Thread(target=call, name=name)
    thread.daemon = True
    thread.start()
    thread.join()
    if 'error' in outcome:
        raise outcome['error']
    if 'result' not in outcome:
        raise NamespaceUnreadable('the thread reading it ended without a result')
    return outcome['result']


def run_in_namespace(fd, inode, function):
    """Return ``function()`` called in a short-lived thread that has entered network namespace ``fd``.

    The thread enters the namespace, checks that it is ``inode``, calls ``function`` and ends, so no
    thread stays in another namespace. Sockets the function opens (a netlink socket, say) belong to
    that namespace, and ``/proc/thread-self/net`` and ``/proc/sys/net`` show it. Raises CannotEnter
    when setns is refused, or whatever ``function`` raised.
    """
    def enter_and_call():
        enter_namespace(fd, inode)
        return function()

    return _in_thread('portwarden-netns-%d' % inode, enter_and_call)


class Visit(object):
    """What reading one namespace gave: ``result``, or ``error`` (NamespaceGone, NamespaceUnreadable)."""

    def __init__(self, inode, pid):
        self.inode = inode
        self.pid = pid
        self.result = None
        self.error = None


def visit_namespaces(namespaces, read, fallback=None, proc='/proc'):
    """Call ``read()`` inside each namespace of ``namespaces`` (``[(inode, pids)]``); return a Visit for each, in order.

    One short-lived thread opens each namespace through one of its pids (open_namespace), enters it,
    checks it, calls ``read()`` there, closes it and goes on to the next; then it ends. One thread for
    all of them, not one each: handing work to a new thread costs two wake-ups, which dominate on a
    busy host, and the calling thread never leaves its namespace either way. Only the namespace being
    read is held open. Where setns is refused and ``fallback`` is given, ``fallback(inode, pid, error)``
    is called instead (it must not depend on the thread's namespace). ``read`` and ``fallback`` report a
    namespace they cannot read with NamespaceUnreadable; any other exception is raised in the caller.
    """
    visits = []

    def visit_all():
        for item in namespaces:
            inode, pids, paths = item if len(item) == 3 else (item[0], item[1], ())
            visit = Visit(inode, pids[0] if pids else None)
            visits.append(visit)
            try:
                fd, visit.pid = open_namespace(inode, pids, proc, paths)
            except (NamespaceGone, NamespaceUnreadable) as exc:
                visit.error = exc
                continue
            try:
                try:
                    enter_namespace(fd, inode)
                except CannotEnter as exc:
                    if fallback is None or visit.pid is None:  # /proc/PID/net needs a process in it
                        raise
                    visit.result = fallback(inode, visit.pid, exc)
                else:
                    visit.result = read()
            except NamespaceUnreadable as exc:
                visit.error = exc
            finally:
                os.close(fd)
        return visits

    if not namespaces:
        return []
    return _in_thread('portwarden-netns-visitor', visit_all)


# -- containers ------------------------------------------------------------------------------
#
# Real container runtimes cannot run where the tests run, so the cgroup layouts below are tested
# against text fixtures copied from docker, podman, containerd, CRI-O and kubelet hosts, and the
# integration test places a real process in a docker-shaped cgroup.

_ID = r'([0-9a-f]{12,64})'
# One cgroup path component that names a container by itself: (regex, kind).
_SCOPED = (
    (re.compile(r'^docker-%s\.scope$' % _ID), 'docker'),                 # docker, systemd cgroup driver
    (re.compile(r'^libpod-conmon-%s\.scope$' % _ID), 'podman'),          # podman's monitor of that container
    (re.compile(r'^libpod-%s(?:\.scope)?$' % _ID), 'podman'),            # podman, systemd driver or cgroupfs
    (re.compile(r'^cri-containerd-%s\.scope$' % _ID), 'containerd'),     # containerd's CRI plugin
    (re.compile(r'^nerdctl-%s\.scope$' % _ID), 'containerd'),            # nerdctl on containerd
    (re.compile(r'^crio-conmon-%s\.scope$' % _ID), 'crio'),
    (re.compile(r'^crio-%s\.scope$' % _ID), 'crio'),
)
# ``<slice>:<prefix>:<id>``: the systemd-style cgroup parent that containerd and CRI-O also write on cgroup v1.
_COLON_PREFIX = {'cri-containerd': 'containerd', 'crio': 'crio', 'docker': 'docker'}
_FULL_ID = re.compile(r'^[0-9a-f]{64}$')
_UUID = r'[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}'
# ``pod<uid>`` (cgroupfs) or ``kubepods-<qos>-pod<uid with _>.slice`` (systemd); static pods have a 32-hex uid.
_POD = re.compile(r'^(?:kubepods-(?:[a-z]+-)?)?pod(%s|[0-9a-f]{32})(?:\.slice)?$' % _UUID)


def _cgroup_paths(text):
    """The paths of /proc/PID/cgroup text, most telling first: unified (v2), then name=systemd, then the rest."""
    unified, legacy, others = [], [], []
    for line in text.splitlines():
        parts = line.split(':', 2)
        if len(parts) != 3 or not parts[2].strip() or parts[2].strip() == '/':
            continue
        hierarchy, controllers, path = parts
        if hierarchy == '0' and controllers == '':
            unified.append(path.strip())
        elif controllers == 'name=systemd':
            legacy.append(path.strip())
        else:
            others.append(path.strip())
    seen = set()
    return [path for path in unified + legacy + others if not (path in seen or seen.add(path))]


def container_from_path(path):
    """The container a cgroup path names, as ``{'kind', 'id', 'pod_uid'}``, or None.

    The innermost container wins (docker in docker). Under ``kubepods`` the kind is ``kubernetes``
    and ``pod_uid`` the pod's uid; ``id`` is the container's (None for a process of the pod itself).
    """
    kind = container_id = pod_uid = None
    kubernetes = False
    previous = None
    for component in path.split('/'):
        if not component:
            continue
        if component.startswith('kubepods'):
            kubernetes = True
        pod = _POD.match(component) if kubernetes else None
        if pod is not None:
            pod_uid = pod.group(1).replace('_', '-')
            kind, container_id = 'kubernetes', None
        elif previous == 'docker' and _FULL_ID.match(component):  # cgroupfs driver: /docker/<id>
            kind, container_id = 'docker', component
        elif pod_uid is not None and previous is not None and _POD.match(previous) and _FULL_ID.match(component):
            kind, container_id = 'kubernetes', component  # cgroupfs kubelet: /kubepods/<qos>/pod<uid>/<id>
        elif component.count(':') == 2:
            parent, prefix, value = component.split(':')
            if prefix in _COLON_PREFIX and re.match('^%s$' % _ID, value):
                kind, container_id = _COLON_PREFIX[prefix], value
                pod = _POD.match(parent) if parent.startswith('kubepods') else None
                if pod is not None:
                    kubernetes, pod_uid = True, pod.group(1).replace('_', '-')
        else:
            for pattern, runtime in _SCOPED:
                match = pattern.match(component)
                if match is not None:
                    kind, container_id = runtime, match.group(1)
                    break
        previous = component
    if kind is None:
        return None
    if kubernetes and pod_uid is not None:
        kind = 'kubernetes'
    return {'kind': kind, 'id': container_id, 'pod_uid': pod_uid if kind == 'kubernetes' else None}


def container_from_cgroup(text):
    """The container named by the text of /proc/PID/cgroup (see ``container_from_path``), or None."""
    for path in _cgroup_paths(text):
        found = container_from_path(path)
        if found is not None:
            return found
    return None


_MAX_FILE = 4 * 1024 * 1024  # runtime files larger than this are not worth parsing for a name


def _read_json(path):
    with open(path, 'rb') as handle:
        data = handle.read(_MAX_FILE + 1)
    if len(data) > _MAX_FILE:
        raise ValueError('%s is larger than %d bytes' % (path, _MAX_FILE))
    return json.loads(data.decode('utf-8'))


class ContainerNames(object):
    """Names of containers where a runtime's own file tells them cheaply; no runtime CLI is ever called.

    - docker: ``Name`` of ``/var/lib/docker/containers/<id>/config.v2.json``;
    - podman (rootful): ``names`` in ``/var/lib/containers/storage/overlay-containers/containers.json``;
    - kubernetes: ``<namespace>/<pod>`` from the kubelet's ``/var/log/pods/<namespace>_<pod>_<uid>``.
    Anything else, or a file that cannot be read, gives None. Files are read once per instance.
    """

    def __init__(self, root='/'):
        self.root = root
        self._podman = None
        self._pods = None

    def _path(self, *parts):
        return os.path.join(self.root, *parts)

    def name(self, container):
        try:
            if container['kind'] == 'docker' and container['id'] and _FULL_ID.match(container['id']):
                name = _read_json(self._path('var/lib/docker/containers', container['id'], 'config.v2.json')).get('Name')
                if isinstance(name, str) and name.strip('/'):
                    return name.lstrip('/')
                return None
            if container['kind'] == 'podman' and container['id']:
                return self._podman_names().get(container['id'])
            if container['kind'] == 'kubernetes' and container['pod_uid']:
                return self._pod_names().get(container['pod_uid'])
        except (OSError, ValueError, AttributeError, TypeError):
            return None
        return None

    def _podman_names(self):
        if self._podman is None:
            self._podman = {}
            try:
                entries = _read_json(self._path('var/lib/containers/storage/overlay-containers/containers.json'))
            except (OSError, ValueError):
                entries = []
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and entry.get('id') and entry.get('names'):
                    self._podman[entry['id']] = entry['names'][0]
        return self._podman

    def _pod_names(self):
        if self._pods is None:
            self._pods = {}
            try:
                listed = os.listdir(self._path('var/log/pods'))
            except OSError:
                listed = []
            for entry in listed:
                parts = entry.split('_')
                if len(parts) == 3:
                    self._pods[parts[2]] = '%s/%s' % (parts[0], parts[1])
        return self._pods


def describe_container(pid, names, proc='/proc'):
    """``{'kind', 'id', 'pod_uid', 'name'}`` of the container ``pid`` runs in, or None (none, or unreadable)."""
    try:
        with open('%s/%d/cgroup' % (proc, pid), 'rb') as handle:
            text = handle.read().decode('utf-8', 'replace')
    except OSError:
        return None
    container = container_from_cgroup(text)
    if container is not None:
        container['name'] = names.name(container)
    return container
