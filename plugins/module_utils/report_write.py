# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Report step: write a fleet report set into its directory so that a reader only ever trusts one run's set.

- Every format is written to a temporary file first (random name, ``O_EXCL``, mode 0644 less the umask); only when
  all are written and flushed are they renamed over the reports, the JSON last. On any failure before that, the
  temporary files are removed and the previous set is untouched.
- The JSON names the run (``run_id``) and the size and sha256 of every other file of its set (``files``): a crash
  between two renames leaves files the JSON does not name, and ``portwarden gate`` tells.
- One run at a time per directory (``flock`` on the directory), from reading the previous report to
  the last rename, so two runs never interleave their files.
- Nothing in the directory is followed: links, FIFOs and devices at a report's path are never opened, and a
  directory other users may write to is refused unless it is sticky and the writer's own.

Pure standard library (the controller's report action and the tests use it).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import secrets
import stat
import time

from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES, RENDERERS

HISTORY_DIR = 'history'
HISTORY_KEEP = 30
# portwarden's own history files, and only these, are ever deleted by retention.
HISTORY_FILE = re.compile(r'^portwarden-report-(\d{8}T\d{6}Z|unknown)(?:-([1-9][0-9]{0,8}))?\.json$')
# Temporary files of this writer (a run killed halfway leaves them): removed by the next run, under the lock.
TEMP_FILE = re.compile(r'^\.(portwarden[a-z.-]*|keep)\.[0-9a-f]{16}\.tmp$')
_GENERATED_AT = re.compile(r'^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$')
FILE_MODE = 0o644
MAX_REPORT_BYTES = 1 << 30
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, 'O_CLOEXEC', 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, 'O_CLOEXEC', 0)


class ReportWriteError(Exception):
    """The report set could not be written; the message names the directory, the file and what is left."""


def render_set(report, formats):
    """``[(file name, bytes)]`` of the requested formats, the JSON last, naming the size and sha256 of the others.

    Sets ``report['files']`` (the manifest the JSON carries) when the JSON is among the formats.
    """
    others = [(FILE_NAMES[name], RENDERERS[name](report).encode('utf-8')) for name in FILE_NAMES
              if name in formats and name != 'json']
    rendered = list(others)
    if 'json' in formats:
        report['files'] = dict((file_name, {'bytes': len(data), 'sha256': hashlib.sha256(data).hexdigest()})
                               for file_name, data in others)
        rendered.append((FILE_NAMES['json'], RENDERERS['json'](report).encode('utf-8')))
    return rendered


def history_name(generated_at, serial=1):
    """The name a previous report is kept under in history/: from its own generated_at when it has the form
    portwarden writes (a forged one never names a path), ``unknown`` otherwise."""
    match = _GENERATED_AT.match(generated_at) if isinstance(generated_at, str) else None
    stamp = '%s%s%sT%s%s%sZ' % match.groups() if match else 'unknown'
    return 'portwarden-report-%s%s.json' % (stamp, '' if serial == 1 else '-%d' % serial)


def _history_order(name):
    match = HISTORY_FILE.match(name)
    return (match.group(1), int(match.group(2) or 1))


def _mode_text(mode):
    return '%04o' % stat.S_IMODE(mode)


def check_directory(info, path):
    """Why a directory cannot hold reports safely (None when it can): another user could replace the files."""
    euid = os.geteuid()
    if info.st_uid not in (euid, 0):
        return ('%s is owned by uid %d, not by the user writing the reports (uid %d): its owner could replace '
                'them' % (path, info.st_uid, euid))
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        if info.st_mode & stat.S_ISVTX and info.st_uid == euid:
            return None  # sticky and ours: others can add names, never replace ours (and we follow no link)
        return ('%s is writable by other users (mode %s): one of them could plant links or replace reports; '
                'remove their write access (chmod go-w) or make it sticky and owned by uid %d'
                % (path, _mode_text(info.st_mode), euid))
    return None


class ReportDir:
    """A report directory opened for one run: checked, locked, every access relative to its descriptor.

    ::

        with ReportDir(path) as target:
            previous, warning = target.read_previous()
            target.write_set(render_set(report, formats), keep=previous, keep_as=..., history_keep=30)
    """

    def __init__(self, path, lock_timeout=300):
        self.path = os.path.abspath(path)
        self.lock_timeout = lock_timeout
        self.fd = None
        self.created_history = False

    def __enter__(self):
        try:
            os.makedirs(self.path, mode=0o755, exist_ok=True)
            self.fd = os.open(self.path, _DIR_FLAGS)
        except OSError as exc:
            raise ReportWriteError('cannot open the report directory %s: %s' % (self.path, exc.strerror or exc)) \
                from None
        try:
            problem = check_directory(os.fstat(self.fd), 'the report directory %s' % self.path)
            if problem:
                raise ReportWriteError('refusing to write reports: %s' % problem)
            self._lock()
            _remove_stale_temps(self.fd)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc):
        self.close()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)  # and with it the lock
        self.fd = None

    def _lock(self):
        # The directory itself is the lock (flock on its descriptor): no lock file another user could plant or hold.
        deadline = time.monotonic() + self.lock_timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ReportWriteError('cannot lock the report directory %s: %s' % (self.path, _why(exc))) from None
            if time.monotonic() >= deadline:
                raise ReportWriteError('another run has held the report directory %s for %d s; nothing was written'
                                       % (self.path, self.lock_timeout))
            time.sleep(0.05)

    def _read(self, dir_fd, name, where):
        """``(bytes, None)``, ``(None, None)`` when absent, or ``(None, why it was not read)``."""
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None, '%s is a symbolic link; it was not followed (another user may have planted it)' % where
            return None, '%s is unreadable (%s)' % (where, _why(exc))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None, '%s is not a regular file; it was not read' % where
            if info.st_size > MAX_REPORT_BYTES:
                return None, '%s is larger than %d bytes; it was not read' % (where, MAX_REPORT_BYTES)
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    return b''.join(chunks), None
                chunks.append(chunk)
        except OSError as exc:
            return None, '%s is unreadable (%s)' % (where, _why(exc))
        finally:
            os.close(fd)

    def read_previous(self):
        """The previous JSON report's bytes, never through a link: ``(bytes or None, warning or None)``."""
        name = FILE_NAMES['json']
        return self._read(self.fd, name, 'the previous report %s' % os.path.join(self.path, name))

    def _write_temp(self, dir_fd, name, data):
        temp = '.%s.%s.tmp' % (name, secrets.token_hex(8))
        fd = os.open(temp, _CREATE_FLAGS, FILE_MODE, dir_fd=dir_fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink(dir_fd, temp)
            raise
        os.close(fd)
        return temp

    def _history_fd(self):
        where = os.path.join(self.path, HISTORY_DIR)
        try:
            os.mkdir(HISTORY_DIR, 0o755, dir_fd=self.fd)
            self.created_history = True
        except FileExistsError:
            pass
        try:
            fd = os.open(HISTORY_DIR, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and stat.S_ISLNK(os.lstat(HISTORY_DIR, dir_fd=self.fd).st_mode):
                raise ReportWriteError('refusing to keep the previous report: %s is a symbolic link (another user may '
                                       'have planted it); remove it' % where) from None
            raise
        problem = check_directory(os.fstat(fd), where)
        if problem:
            os.close(fd)
            raise ReportWriteError('refusing to keep the previous report: %s' % problem)
        _remove_stale_temps(fd)
        return fd

    def _keep(self, history_fd, data, generated_at):
        """Keep ``data`` in history/ under a name no other file has (two runs within one second keep both)."""
        temp = self._write_temp(history_fd, 'keep', data)
        try:
            serial = 1
            while True:
                name = history_name(generated_at, serial)
                try:
                    os.link(temp, name, src_dir_fd=history_fd, dst_dir_fd=history_fd, follow_symlinks=False)
                    return name
                except FileExistsError:
                    serial += 1
        finally:
            _unlink(history_fd, temp)

    def prune_history(self, history_fd, keep):
        """Delete portwarden's own history files (regular files named as it names them) beyond the ``keep`` newest."""
        names = []
        for name in os.listdir(history_fd):
            if HISTORY_FILE.match(name):
                info = os.lstat(name, dir_fd=history_fd)
                if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
                    names.append(name)
        names.sort(key=_history_order)
        doomed = names[:max(len(names) - keep, 0)]
        for name in doomed:
            _unlink(history_fd, name)
        return doomed

    def write_set(self, files, keep=None, keep_as=None, history_keep=HISTORY_KEEP):
        """Write ``files`` (``[(name, bytes)]``, the JSON last) as one set; keep ``keep`` (the previous report's
        bytes, its generated_at ``keep_as``) in history/ and prune it to ``history_keep`` files.

        Returns ``{'paths': [...], 'kept': name or None, 'pruned': [...]}``.
        """
        temps = []
        history_fd = None
        kept = None
        try:
            writing = None
            try:
                for name, data in files:
                    writing = name
                    temps.append((self._write_temp(self.fd, name, data), name))
                writing = os.path.join(HISTORY_DIR, history_name(keep_as))
                if keep is not None and history_keep > 0:
                    history_fd = self._history_fd()
                    kept = self._keep(history_fd, keep, keep_as)
                elif history_keep == 0 and os.path.isdir(os.path.join(self.path, HISTORY_DIR)):
                    history_fd = self._history_fd()
            except OSError as exc:
                if kept is not None:
                    _unlink(history_fd, kept)
                if self.created_history:
                    try:
                        os.rmdir(HISTORY_DIR, dir_fd=self.fd)
                    except OSError:
                        pass
                raise ReportWriteError('cannot write the fleet report in %s: %s: %s; the previous report set is '
                                       'unchanged' % (self.path, writing, exc.strerror or exc)) from None
            done = []
            try:
                for temp, name in temps:
                    os.replace(temp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
                    done.append(name)
                os.fsync(self.fd)
                if history_fd is not None:
                    os.fsync(history_fd)
            except OSError as exc:
                left = [name for _temp, name in temps if name not in done]
                raise ReportWriteError(
                    'cannot finish the fleet report in %s: %s; %s were replaced, %s were not: the set is mixed and '
                    'portwarden gate refuses it until a run completes' % (
                        self.path, _why(exc), ', '.join(done) or 'none', ', '.join(left))) from None
            temps = []
            pruned = self.prune_history(history_fd, history_keep) if history_fd is not None else []
            return {'paths': [os.path.join(self.path, name) for name, _data in files], 'kept': kept, 'pruned': pruned}
        finally:
            for temp, _name in temps:
                _unlink(self.fd, temp)
            if history_fd is not None:
                os.close(history_fd)


PARTS_DIR = 'parts'


class PartDir(ReportDir):
    """``REPORT_DIR/parts/RUN_ID/``, made new for one part run: never another run's, never through a link.

    The report directory itself is neither locked nor cleaned: a fleet run or a merge may hold it, and a part
    never touches the fleet report. ``parts/`` and the run's directory are checked as the report directory is.
    """

    def __init__(self, path, run_id, lock_timeout=300):
        super(PartDir, self).__init__(path, lock_timeout=lock_timeout)
        self.run_id = run_id
        self.report_dir = self.path
        self.path = os.path.join(self.report_dir, PARTS_DIR, run_id)

    def __enter__(self):
        if '/' in self.run_id or self.run_id in ('', '.', '..'):
            raise ReportWriteError('refusing to write a part: run id %r cannot name a directory' % self.run_id)
        top = parts = None
        try:
            try:
                os.makedirs(self.report_dir, mode=0o755, exist_ok=True)
                top = os.open(self.report_dir, _DIR_FLAGS)
            except OSError as exc:
                raise ReportWriteError('cannot open the report directory %s: %s' % (self.report_dir, _why(exc))) from None
            problem = check_directory(os.fstat(top), 'the report directory %s' % self.report_dir)
            if problem:
                raise ReportWriteError('refusing to write a part: %s' % problem)
            parts = self._subdirectory(top, PARTS_DIR, os.path.join(self.report_dir, PARTS_DIR), exclusive=False)
            self.fd = self._subdirectory(parts, self.run_id, self.path, exclusive=True)
            return self
        finally:
            for fd in (top, parts):
                if fd is not None:
                    os.close(fd)

    @staticmethod
    def _subdirectory(parent_fd, name, where, exclusive):
        try:
            os.mkdir(name, 0o755, dir_fd=parent_fd)
        except FileExistsError:
            if exclusive:
                raise ReportWriteError('refusing to write a part: %s already exists: another run wrote it (a run id '
                                       'used twice, or forged); a part never overwrites another' % where) from None
        except OSError as exc:
            raise ReportWriteError('cannot create %s: %s' % (where, _why(exc))) from None
        try:
            fd = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise ReportWriteError('refusing to write a part: %s is not a directory (a symbolic link is never '
                                       'followed)' % where) from None
            raise ReportWriteError('cannot open %s: %s' % (where, _why(exc))) from None
        problem = check_directory(os.fstat(fd), where)
        if problem:
            os.close(fd)
            raise ReportWriteError('refusing to write a part: %s' % problem)
        return fd


def _why(exc):
    return '%s%s' % (exc.strerror or exc, ' (%s)' % exc.filename if getattr(exc, 'filename', None) else '')


def _unlink(dir_fd, name):
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def _remove_stale_temps(dir_fd):
    """Remove what a killed run of this writer left: its own temporary files (regular, ours, named as it names them)."""
    for name in os.listdir(dir_fd):
        if TEMP_FILE.match(name):
            info = os.lstat(name, dir_fd=dir_fd)
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
                _unlink(dir_fd, name)
