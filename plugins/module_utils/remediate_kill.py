# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Remediate step, ``kill`` strategy: end exactly the process that was gathered, never a recycled pid.

A target is ``{pid, start_time, exe, name}`` as the gather described it. Before any signal the
process now behind the pid must have the same start time (clock ticks after boot) and the same
executable; where the kernel offers pidfds the process is pinned first, so the check and every
signal reach the same process even if it exits and its pid is reused in between.

Never signalled, whatever the policy says: PID 1, the processes this module runs under (the
chain that serves the live Ansible connection) and protected processes (``protection_match``).

Protection rests on the executable, never on the name alone, which any process sets for itself
(prctl PR_SET_NAME): a pattern with a ``/`` matches the executable's full path; a pattern without
one matches the base name of an executable in a system directory (SYSTEM_EXE_DIRS, or under
SYSTEM_EXE_TREES), or the name of the system service the process runs in (``systemd-*`` matches
``systemd-resolved.service``). On the host the executable must also be owned by root and writable by
no one else. A process whose executable cannot be read is taken at its name (nothing proves it is not
the real one); a name match with an executable elsewhere protects nothing and is said so.
"""

from __future__ import annotations

import fnmatch
import os
import select
import signal
import time

from ansible_collections.portwarden.compliance.plugins.module_utils.gather_owners import live_thread, process_start_time, unit_from_cgroup

DEFAULT_PROTECTED_NAMES = ('sshd', 'sshd-session', 'systemd', 'systemd-*', 'init', 'dockerd', 'containerd',
                           'containerd-shim*', 'podman', 'conmon', 'crio', 'runc', 'crun', 'kubelet')

# Where only root installs executables: a bare protected name matches an executable directly in one of these
# directories, or anywhere under one of these trees (/usr/lib/openssh/sshd-session, /usr/lib/systemd/systemd-*).
SYSTEM_EXE_DIRS = ('/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin')
SYSTEM_EXE_TREES = ('/usr/lib/', '/usr/libexec/', '/usr/lib64/', '/lib/', '/lib64/')
_DELETED = ' (deleted)'  # readlink of /proc/PID/exe once the file was replaced (a package upgrade)

# Outcomes of one target; ``changed`` outcomes are the ones a real run would make.
TERMINATED = 'terminated'   # ended by SIGTERM
KILLED = 'killed'           # ended by SIGKILL after the timeout
WOULD_TERMINATE = 'would_terminate'  # check mode
GONE = 'gone'               # already exited: nothing to do
MISMATCH = 'mismatch'       # the pid now belongs to another process: left alone
PROTECTED = 'protected'     # never signalled
SURVIVED = 'survived'       # still alive after SIGKILL (uninterruptible sleep): reported, not hidden
CHANGED_OUTCOMES = (TERMINATED, KILLED, WOULD_TERMINATE)


PID_MAX_LIMIT = 4194304  # the kernel's hard limit for /proc/sys/kernel/pid_max (2**22)
START_TIME_MAX = 2 ** 63 - 1  # /proc/PID/stat field 22 is an unsigned long long of clock ticks


def _whole_number(value):
    """``value`` as an int when it is an integer (or a string of digits), else None; never a bool."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip('-').isdigit():
        return int(value.strip())
    return None


def pid_max(proc='/proc'):
    try:
        with open(proc + '/sys/kernel/pid_max') as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return PID_MAX_LIMIT


def normalise_targets(items, field='processes', largest_pid=None):
    """Validated copies of kill targets, or ValueError naming ``field[index].key`` and what was expected.

    Every target is checked before any is signalled, so one bad entry ends the call with nothing done.
    """
    if not isinstance(items, (list, tuple)):
        raise ValueError('%s: expected a list of {pid, start_time, exe, name, rule}, got %r' % (field, items))
    largest_pid = pid_max() if largest_pid is None else largest_pid
    targets = []
    for index, item in enumerate(items):
        where = '%s[%d]' % (field, index)
        if not isinstance(item, dict):
            raise ValueError('%s: expected a dict with pid and start_time, got %r' % (where, item))
        pid = _whole_number(item.get('pid'))
        if pid is None or pid < 1:
            raise ValueError('%s.pid: %r is not a process id (a whole number from 1 to %d)' % (where, item.get('pid'), largest_pid))
        if pid > largest_pid:
            raise ValueError('%s.pid: %r is above the largest pid of this host (%d, /proc/sys/kernel/pid_max)'
                             % (where, item.get('pid'), largest_pid))
        start_time = _whole_number(item.get('start_time'))
        if start_time is None or not 0 <= start_time <= START_TIME_MAX:
            raise ValueError('%s.start_time: %r is not a start time (clock ticks after boot, /proc/PID/stat field 22, '
                             'a whole number >= 0)' % (where, item.get('start_time')))
        for key in ('exe', 'name', 'rule'):
            if item.get(key) is not None and not isinstance(item[key], str):
                raise ValueError('%s.%s: %r is not a string' % (where, key, item[key]))
        targets.append(dict(item, pid=pid, start_time=start_time))
    return targets


def read_identity(pid, proc='/proc'):
    """``{'pid', 'start_time', 'exe', 'name', 'ppid', 'zombie', 'via'}`` of the process now behind ``pid``, or None
    if there is none. A leader that is a zombie while other threads live on (its main thread ended with exit(2))
    is a live process: ``zombie`` is False, and ``exe`` is read through ``via``, the live thread's id (else pid)."""
    base = '%s/%d' % (proc, pid)
    try:
        with open(base + '/stat', 'rb') as handle:
            stat = handle.read().decode('utf-8', 'replace')
        with open(base + '/comm', 'rb') as handle:
            name = handle.read().decode('utf-8', 'replace').rstrip('\n')
    except OSError:
        return None
    try:
        exe = os.readlink(base + '/exe')
    except OSError:
        exe = None
    try:
        ppid = int(stat[stat.rindex(')') + 2:].split()[1])
        start_time = process_start_time(stat)
    except (ValueError, IndexError):
        return None
    state = stat[stat.rindex(')') + 2:].split()[0]
    via = pid
    zombie = state in ('Z', 'X')
    if zombie:
        thread = live_thread(pid, proc)
        if thread is not None:
            zombie, via = False, thread
            if exe is None:
                try:
                    exe = os.readlink('%s/%d/exe' % (proc, thread))
                except OSError:
                    exe = None
    return {'pid': pid, 'start_time': start_time, 'exe': exe, 'name': name, 'ppid': ppid, 'zombie': zombie, 'via': via}


def executable_path(exe):
    """The path of /proc/PID/exe's target without the `` (deleted)`` the kernel adds once it was replaced."""
    if exe and exe.endswith(_DELETED):
        return exe[:-len(_DELETED)]
    return exe


def system_executable(exe):
    """Whether ``exe`` (an absolute, normal path) lies where only root installs executables."""
    path = executable_path(exe)
    if not path or not path.startswith('/') or os.path.normpath(path) != path:
        return False
    return os.path.dirname(path) in SYSTEM_EXE_DIRS or path.startswith(SYSTEM_EXE_TREES)


def protection_match(name, exe, patterns, unit=None):
    """``(pattern, evidence)`` when a process (name, executable, unit as gathered) is protected, else
    ``(None, note)``: note is None, or says that only the name matched (which protects nothing)."""
    path = executable_path(exe)
    named = None
    for pattern in patterns:
        if '/' in pattern:
            if path and fnmatch.fnmatchcase(path, pattern):
                return pattern, 'its executable %s' % exe
            continue
        if path and system_executable(path) and fnmatch.fnmatchcase(os.path.basename(path), pattern):
            return pattern, 'its executable %s' % exe
        if unit and '/' not in unit and unit.endswith('.service') and fnmatch.fnmatchcase(unit[:-len('.service')], pattern):
            return pattern, 'its system unit %s' % unit
        if named is None and name and fnmatch.fnmatchcase(name, pattern):
            named = pattern
    if named is None:
        return None, None
    if not path:
        return named, 'its name %s (its executable cannot be read, so it is taken at its word)' % name
    return None, ('%s is named like the protected process %r but runs %s, not a system executable: '
                  'a name alone protects nothing' % (name, named, exe))


def protected_pattern(name, exe, patterns, unit=None):
    """The protected pattern the process matches (protection_match), or None."""
    return protection_match(name, exe, patterns, unit)[0]


def _root_owned(pid, proc):
    """Whether the executable of ``pid`` is owned by root and writable by no one else (a copy a user made is not)."""
    try:
        info = os.stat('%s/%d/exe' % (proc, pid))
    except OSError:
        return False
    return info.st_uid == 0 and not info.st_mode & 0o022


def _unit(pid, proc):
    try:
        with open('%s/%d/cgroup' % (proc, pid), 'rb') as handle:
            return unit_from_cgroup(handle.read().decode('utf-8', 'replace'))
    except OSError:
        return None


def connection_chain(pid=None, proc='/proc'):
    """This process and its ancestors: the chain that runs this module, and so serves the live
    Ansible connection (the ssh session, its sshd, a become wrapper)."""
    chain = set()
    pid = os.getpid() if pid is None else pid
    while pid > 0 and pid not in chain:
        chain.add(pid)
        identity = read_identity(pid, proc)
        if identity is None:
            break
        pid = identity['ppid']
    return chain


def refusal(target, current, protected_names=DEFAULT_PROTECTED_NAMES, chain=frozenset(), proc='/proc'):
    """Why ``target`` must not be signalled, given ``current`` (read_identity now): ``(outcome, reason)``,
    or ``(None, note)`` when it may be (note: a name-only match to a protected pattern, or None)."""
    pid = target['pid']
    if pid <= 1:
        return PROTECTED, 'PID %d is never signalled' % pid
    if current is None or current['zombie']:
        return GONE, 'pid %d has exited' % pid
    if current['start_time'] != target.get('start_time'):
        return MISMATCH, ('pid %d now belongs to another process (%s, started at tick %s, not %s): '
                          'the gathered process has exited and its pid was reused' % (
                              pid, current['name'], current['start_time'], target.get('start_time')))
    if target.get('exe') and current['exe'] != target['exe']:
        return MISMATCH, 'pid %d now runs %s, not %s' % (pid, current['exe'], target['exe'])
    if pid in chain:
        return PROTECTED, 'pid %d (%s) runs this Ansible connection' % (pid, current['name'])
    via = current.get('via', pid)  # a live thread when the leader is a zombie: its exe and cgroup resolve
    pattern, evidence = protection_match(current['name'], current['exe'], protected_names, _unit(via, proc))
    if pattern is not None and evidence.startswith('its executable') and not _root_owned(via, proc):
        pattern, evidence = None, '%s runs %s, which root does not own alone: not protected by %r' % (
            current['name'], current['exe'], pattern)
    if pattern is not None:
        return PROTECTED, 'pid %d (%s) matches the protected process pattern %r (%s)' % (pid, current['name'], pattern, evidence)
    return None, evidence


class _Pinned(object):
    """A process pinned by a pidfd where the kernel has them (Linux 5.3+), else addressed by pid."""

    def __init__(self, pid):
        self.pid = pid
        self.fd = None
        if hasattr(os, 'pidfd_open'):
            try:
                self.fd = os.pidfd_open(pid)
            except OSError:  # gone already, or pidfds unavailable (old kernel, seccomp)
                self.fd = None

    def signal(self, number):
        try:
            if self.fd is not None:
                signal.pidfd_send_signal(self.fd, number)
            else:
                os.kill(self.pid, number)
        except ProcessLookupError:
            pass

    def wait(self, timeout, identity):
        """True when the process has ended within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        if self.fd is not None:
            poller = select.poll()
            poller.register(self.fd, select.POLLIN)
            return bool(poller.poll(max(0.0, timeout) * 1000))
        while True:  # no pidfd: the pid ended when it is gone, a zombie, or another process
            current = read_identity(self.pid)
            if current is None or current['zombie'] or current['start_time'] != identity['start_time']:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def terminate(target, timeout=10.0, check_mode=False, protected_names=DEFAULT_PROTECTED_NAMES, chain=None, proc='/proc'):
    """End the gathered process ``target``: SIGTERM, then SIGKILL after ``timeout`` seconds.

    Returns ``{'pid', 'name', 'outcome', 'reason'}``; never raises for a process that is gone or changed.
    """
    chain = connection_chain(proc=proc) if chain is None else chain
    pid = target['pid']
    pinned = _Pinned(pid)
    try:
        current = read_identity(pid, proc)  # read after pinning: a pinned pid cannot be reused
        outcome, reason = refusal(target, current, protected_names, chain, proc)
        name = current['name'] if current else target.get('name')
        if outcome is not None:
            return {'pid': pid, 'name': name, 'outcome': outcome, 'reason': reason}
        note = ' (%s)' % reason if reason else ''
        if check_mode:
            return {'pid': pid, 'name': name, 'outcome': WOULD_TERMINATE,
                    'reason': 'would send SIGTERM, then SIGKILL after %gs%s' % (timeout, note)}
        pinned.signal(signal.SIGTERM)
        if pinned.wait(timeout, current):
            return {'pid': pid, 'name': name, 'outcome': TERMINATED, 'reason': 'ended by SIGTERM' + note}
        pinned.signal(signal.SIGKILL)
        if pinned.wait(5.0, current):
            return {'pid': pid, 'name': name, 'outcome': KILLED,
                    'reason': 'still running %gs after SIGTERM; ended by SIGKILL%s' % (timeout, note)}
        return {'pid': pid, 'name': name, 'outcome': SURVIVED, 'reason': 'still running 5s after SIGKILL' + note}
    finally:
        pinned.close()
