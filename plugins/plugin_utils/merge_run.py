# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Report step, at scale, on the controller: find, load and check parts, merge them, write and gate the fleet report.

One implementation for ``portwarden merge`` and the ``port_report_merge`` action. The decisions are in
module_utils/report_merge.py (pure); this module does the file system, the inventory and the writing.

- A PART given by the user (a file, or a directory) is followed if it is a link; nothing found inside a directory
  is: a link there, a FIFO, a device or a directory other users may write to is a bad part, never read.
- A directory holds parts as a report directory does (``parts/RUN_ID/portwarden-report.json``) and reports
  (``*.json``) at its top; ``--parts-dir`` is such a ``parts/`` directory.
- A bad part (unreadable, truncated, foreign, another schema version, tampered, contradicting itself) refuses the
  merge (MergeError), or with ``skip_bad`` makes its hosts unknown with the reason.
"""

from __future__ import annotations

import datetime
import errno
import gc
import json
import os
import stat

from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import (
    ReportError,
    gate_report,
    parse_previous,
    report_stats,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_merge import MergeRefused, merge_parts, part_problems
from ansible_collections.portwarden.compliance.plugins.module_utils.report_write import (
    PARTS_DIR,
    ReportDir,
    ReportWriteError,
    check_directory,
    render_set,
)
from ansible_collections.portwarden.compliance.plugins.plugin_utils import inventory_read
from ansible_collections.portwarden.compliance.plugins.plugin_utils.report_load import (
    MAX_REPORT_BYTES,
    load_report,
    read_regular,
    set_problems,
)

PART_JSON = FILE_NAMES['json']


class MergeError(Exception):
    """The merge cannot give a verdict (exit 2): ``problems`` name the files and what is wrong."""

    def __init__(self, problems):
        self.problems = list(problems)
        super(MergeError, self).__init__('; '.join(self.problems))


def _lstat(path):
    try:
        return os.lstat(path)
    except OSError:
        return None


def _scan_directory(directory, found, bad, top=True):
    """Parts in ``directory``: ``*.json`` at its top and ``parts/*/portwarden-report.json`` (``top``), or (the
    ``--parts-dir`` itself, ``top`` False) its ``*/portwarden-report.json`` and ``*.json``."""
    try:
        info = os.stat(directory) if top else os.lstat(directory)  # a directory the user named may be a link
    except OSError:
        info = None
    problem = check_directory(info, 'directory %s' % directory) if info is not None else None
    if problem:
        bad.append({'file': directory, 'reason': 'not read: %s' % problem, 'hosts': None})
        return
    names = sorted(os.listdir(directory))
    for name in names:
        path = os.path.join(directory, name)
        entry = _lstat(path)
        if entry is None:
            continue
        if name.endswith('.json') and not name.startswith('.'):
            if stat.S_ISLNK(entry.st_mode):
                bad.append({'file': path, 'reason': 'a symbolic link; it was not followed (another user may have '
                                                    'planted it)', 'hosts': None})
            else:
                found.append(path)
    runs_dir = os.path.join(directory, PARTS_DIR) if top else directory
    runs = _lstat(runs_dir)
    if runs is None:
        return
    if stat.S_ISLNK(runs.st_mode):
        bad.append({'file': runs_dir, 'reason': 'a symbolic link; it was not followed (another user may have planted '
                                                'it)', 'hosts': None})
        return
    if not stat.S_ISDIR(runs.st_mode):
        return
    if top:
        problem = check_directory(runs, 'directory %s' % runs_dir)
        if problem:
            bad.append({'file': runs_dir, 'reason': 'not read: %s' % problem, 'hosts': None})
            return
    for name in sorted(os.listdir(runs_dir)):
        path = os.path.join(runs_dir, name)
        entry = _lstat(path)
        if entry is None or name.startswith('.'):
            continue
        if stat.S_ISLNK(entry.st_mode):
            bad.append({'file': path, 'reason': 'a symbolic link; it was not followed (another user may have planted '
                                                'it)', 'hosts': None})
        elif stat.S_ISDIR(entry.st_mode):
            problem = check_directory(entry, 'directory %s' % path)
            if problem:
                bad.append({'file': path, 'reason': 'not read: %s' % problem, 'hosts': None})
            elif _lstat(os.path.join(path, PART_JSON)) is None:
                bad.append({'file': path, 'reason': 'no %s: the run that writes this part has not finished, or was '
                                                    'killed' % PART_JSON, 'hosts': None})
            else:
                found.append(os.path.join(path, PART_JSON))


def find_parts(paths, parts_dir=None):
    """``(files to load [(path, follow links)], bad parts)`` of the PART arguments and ``--parts-dir``."""
    found = []
    bad = []
    for path in paths:
        if os.path.isdir(path):
            scanned = []
            _scan_directory(os.path.abspath(path), scanned, bad)
            found.extend((item, False) for item in scanned)
        else:
            found.append((os.path.abspath(path), True))
    if parts_dir:
        scanned = []
        if _lstat(parts_dir) is None or not os.path.isdir(parts_dir):
            bad.append({'file': parts_dir, 'reason': 'the parts directory does not exist or is not a directory',
                        'hosts': None})
        else:
            _scan_directory(os.path.abspath(parts_dir), scanned, bad, top=False)
        found.extend((item, False) for item in scanned)
    return found, bad


def _readable_hosts(path, follow):
    """The hosts a bad part names, when its JSON can still be read (None when not)."""
    try:
        report = json.loads(read_regular(path, nofollow=not follow).decode('utf-8'))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(report, dict):
        return None
    hosts = set()
    for entry in report.get('hosts') if isinstance(report.get('hosts'), list) else []:
        if isinstance(entry, dict) and isinstance(entry.get('host'), str):
            hosts.add(entry['host'])
    scope = report.get('scope')
    if isinstance(scope, dict) and isinstance(scope.get('hosts'), list):
        hosts.update(host for host in scope['hosts'] if isinstance(host, str))
    return sorted(hosts) if hosts else None


def load_parts(found, now):
    """``(good parts [{'file', 'report'}], bad parts)``: each part loaded, checked against its schema, its set and
    itself; one file given twice is one part."""
    parts = []
    bad = []
    seen = set()
    for path, follow in found:
        try:
            info = os.stat(path, follow_symlinks=follow)
        except OSError:
            info = None
        key = (info.st_dev, info.st_ino) if info is not None else path
        if key in seen:
            continue
        seen.add(key)
        try:
            report = load_report(path, nofollow=not follow)
        except ReportError as exc:
            reason = str(exc)
            if reason.startswith(path + ': '):
                reason = reason[len(path) + 2:]
            bad.append({'file': path, 'reason': reason, 'hosts': _readable_hosts(path, follow)})
            continue
        problems = part_problems(report, now=now) + set_problems(path, report)
        if problems:
            hosts = set(entry['host'] for entry in report['hosts'])
            hosts.update(host for host in (report.get('scope') or {}).get('hosts') or [] if isinstance(host, str))
            bad.append({'file': path, 'reason': '; '.join(problems),
                        'hosts': sorted(hosts)})
            continue
        parts.append({'file': path, 'report': report})
    return _drop_copies(parts), bad


def _drop_copies(parts):
    """A part copied to two places (same run id, same content) is one part; other content under one run id stays
    for merge_parts to refuse."""
    kept = []
    by_run = {}
    for item in parts:
        rid = item['report'].get('run_id')
        if rid is not None and rid in by_run and by_run[rid]['report'] == item['report']:
            continue
        by_run.setdefault(rid, item)
        kept.append(item)
    return kept


def inventory_hosts(sources):
    """Every host (``all``) of the inventory sources, read by ansible-core's own InventoryManager."""
    try:
        return inventory_read.read_inventory(sources)[0]
    except inventory_read.InventoryError as exc:
        text = str(exc)
        if text.endswith(' gives no host'):
            text += ': a merge against it would vouch for nothing'
        raise MergeError([text]) from None


def hosts_from_file(path):
    """Host names, one a line (``#`` comments and blank lines ignored)."""
    try:
        text = read_regular(path, limit=MAX_REPORT_BYTES).decode('utf-8')
    except (OSError, ValueError) as exc:
        raise MergeError(['hosts file %s: %s' % (path, getattr(exc, 'strerror', None) or exc)]) from None
    hosts = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith('#')]
    if not hosts:
        raise MergeError(['hosts file %s names no host' % path])
    return hosts


def expected_hosts(inventory=None, hosts=None, hosts_file=None):
    """``(expected hosts or None, where they came from or None)``."""
    if inventory:
        return inventory_hosts(inventory), 'inventory %s' % ', '.join(inventory)
    if hosts is not None:
        names = [host.strip() for host in hosts if host.strip()]
        if not names:
            raise MergeError(['--hosts names no host'])
        return names, 'hosts'
    if hosts_file:
        return hosts_from_file(hosts_file), 'hosts file %s' % hosts_file
    return None, None


def _read_previous_unlocked(report_dir):
    path = os.path.join(report_dir, PART_JSON)
    try:
        return read_regular(path, nofollow=True), None
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        if getattr(exc, 'errno', None) == errno.ELOOP:
            return None, 'the previous report %s is a symbolic link; it was not followed' % path
        return None, 'the previous report %s is unreadable (%s)' % (path, getattr(exc, 'strerror', None) or exc)


def run_merge(*args, **kwargs):
    """Merge, write (unless ``check_mode``) and gate (see _run_merge), with the cyclic collector paused: parts
    are trees of fresh objects without cycles, and for 100,000 hosts the collector would only rescan them (it
    took two thirds of the time spent parsing and merging)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run_merge(*args, **kwargs)
    finally:
        if collecting:
            gc.enable()


def _run_merge(paths=(), parts_dir=None, report_dir=None, inventory=None, hosts=None, hosts_file=None, max_age=None,
               skip_bad=False, allow_mixed=False, formats=tuple(FILE_NAMES), history_keep=30, fail_on='high',
               allow_unknown=False, check_mode=False, tool_version=None, now=None):
    """Merge, write (unless ``check_mode``) and gate. Returns ``{'report', 'paths', 'history', 'code', 'failing',
    'lines', 'warnings', 'skipped', 'stats'}``; raises MergeError when no verdict can be given."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    report_dir = os.path.abspath(report_dir)
    expected, expected_source = expected_hosts(inventory, hosts, hosts_file)
    found, bad = find_parts(list(paths), parts_dir)
    parts, bad_loaded = load_parts(found, now)
    bad.extend(bad_loaded)
    if bad and not skip_bad:
        raise MergeError(['%s: %s' % (item['file'], item['reason']) for item in bad]
                         + ['(--skip-bad makes the hosts of a bad part unknown instead)'])
    warnings = []

    def build(previous):
        try:
            return merge_parts(parts, expected=expected, expected_source=expected_source, now=now, max_age=max_age,
                               allow_mixed=allow_mixed, skipped=bad, previous=previous, tool_version=tool_version)
        except MergeRefused as exc:
            raise MergeError(exc.problems) from None

    def previous_of(raw, warning):
        previous = None
        if raw is not None:
            previous, warning = parse_previous(raw, os.path.join(report_dir, PART_JSON))
        if warning:
            warnings.append(warning + ('' if 'findings are not listed' in warning
                                       else '; new and resolved findings are not listed'))
        return previous

    written = {'kept': None, 'pruned': []}
    try:
        if check_mode:
            report = build(previous_of(*_read_previous_unlocked(report_dir)))
            render_set(report, list(formats))  # what would be written renders, or fails here
        else:
            with ReportDir(report_dir) as target:
                raw, warning = target.read_previous()
                previous = previous_of(raw, warning)
                report = build(previous)
                files = render_set(report, list(formats))
                written = target.write_set(files, keep=raw if previous is not None and 'json' in formats else None,
                                           keep_as=(previous or {}).get('generated_at'), history_keep=history_keep)
    except ReportWriteError as exc:
        raise MergeError([str(exc)]) from None
    warnings = list(report['scope']['warnings']) + warnings
    paths_out = dict((name, os.path.join(report_dir, FILE_NAMES[name])) for name in formats)
    code, failing, lines = gate_report(report, fail_on, allow_unknown=allow_unknown)
    return {'report': report, 'paths': paths_out, 'history': written, 'code': code, 'failing': failing,
            'lines': lines, 'warnings': warnings, 'skipped': bad,
            'stats': report_stats(report, code, paths_out.get('json'))}
