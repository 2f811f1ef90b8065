# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Report step, on the controller: load a saved report (a fleet report or a part) and check its set.

Shared by ``portwarden gate``, ``portwarden merge`` and the merge action. Never blocks on a FIFO, never reads a
device or a file larger than MAX_REPORT_BYTES, and (``nofollow``) never follows a link at the last component.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat

_MAX_AGE_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400}


def parse_age(text):
    """An age (``--max-age``): seconds, or a number with s, m, h or d; ValueError says what is wrong."""
    text = str(text).strip()
    unit = text[-1:].lower()
    number = text[:-1] if unit in _MAX_AGE_UNITS else text
    try:
        value = int(number) * _MAX_AGE_UNITS.get(unit, 1)
    except ValueError:
        raise ValueError('%r is not an age (like 3600, 90m, 24h or 7d)' % text) from None
    if value <= 0:
        raise ValueError('%r: the age must be more than 0' % text)
    return value


MAX_REPORT_BYTES = 1 << 30


def _no_constants(name):
    raise ValueError('%s is not JSON (a report never holds NaN or Infinity)' % name)


def read_regular(path, limit=MAX_REPORT_BYTES, nofollow=False):
    """The bytes of a regular file, never blocking on a FIFO or reading a device; OSError or ValueError say why not."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0) | (os.O_NOFOLLOW if nofollow else 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError('not a regular file')
        if info.st_size > limit:
            raise ValueError('larger than %d bytes' % limit)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b''.join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def load_report(path, nofollow=False):
    """A saved fleet report, checked against its schema; ReportError says why it cannot be used."""
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import (
        REPORT_SCHEMA_VERSION,
        ReportError,
    )
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import refuse_duplicate_keys

    try:
        raw = read_regular(path, nofollow=nofollow)
    except OSError as exc:
        if nofollow and exc.errno == errno.ELOOP:
            raise ReportError('%s: a symbolic link; it was not followed (another user may have planted it)' % path) \
                from None
        raise ReportError('%s: cannot read the report: %s' % (path, exc.strerror or exc)) from None
    except ValueError as exc:
        raise ReportError('%s: cannot read the report: %s' % (path, exc)) from None
    if raw.startswith(b'\xef\xbb\xbf'):
        raise ReportError('%s: starts with a byte order mark: not a report as portwarden writes it (re-encoded?)' % path)
    try:
        report = json.loads(raw.decode('utf-8'), parse_constant=_no_constants, object_pairs_hook=refuse_duplicate_keys)
    except UnicodeDecodeError as exc:
        raise ReportError('%s: not UTF-8 (%s); a report is never trusted re-encoded or corrupted' % (path, exc)) from None
    except RecursionError:
        raise ReportError('%s: not a report: JSON nested too deeply to be one' % path) from None
    except ValueError as exc:
        raise ReportError('%s: not a complete JSON report (%s); a truncated report is never trusted' % (path, exc)) \
            from None
    if not isinstance(report, dict) or report.get('schema_version') != REPORT_SCHEMA_VERSION \
            or isinstance(report.get('schema_version'), bool):
        version = report.get('schema_version') if isinstance(report, dict) else None
        raise ReportError('%s: report schema version %r; this portwarden reads version %d'
                          % (path, version, REPORT_SCHEMA_VERSION))
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_schema import REPORT_SCHEMA, report_valid

    try:
        if report_valid(report):  # the schema's own check, compiled: a large report is valid in a fraction of the time
            return report
    except RecursionError:
        raise ReportError('%s: not a report: nested too deeply to be one' % path) from None
    from jsonschema import Draft202012Validator  # the controller-side dependency: the message of what is invalid

    try:
        errors = sorted(Draft202012Validator(REPORT_SCHEMA).iter_errors(report), key=lambda error: list(error.path))
    except RecursionError:
        raise ReportError('%s: not a report: nested too deeply to be one' % path) from None
    if errors:
        first = errors[0]
        where = '.'.join(str(part) for part in first.absolute_path) or '(top level)'
        more = ' (and %d more)' % (len(errors) - 1) if len(errors) > 1 else ''
        message = first.message if len(first.message) <= 300 else first.message[:300] + '...'
        raise ReportError('%s: not a valid report: %s: %s%s' % (path, where, message, more))
    return report


def set_problems(path, report):
    """Files of the report's set, beside it, that are not the ones its JSON names (a mixed set: a crash between
    two renames or another writer). A file that is absent is no problem: the JSON may have been copied alone."""
    problems = []
    directory = os.path.dirname(os.path.abspath(path))
    for name, expected in sorted((report.get('files') or {}).items()):
        beside = os.path.join(directory, name)
        try:
            data = read_regular(beside)
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            problems.append('%s: cannot be checked against the JSON of its set: %s' % (beside, getattr(exc, 'strerror', None)
                                                                                       or exc))
            continue
        if len(data) != expected['bytes'] or hashlib.sha256(data).hexdigest() != expected['sha256']:
            problems.append('%s is not of this run (%s): its size or sha256 differs from what the JSON names, so the '
                            'set is mixed (a crash between two renames, or another writer); run the report again'
                            % (beside, report.get('run_id')))
    return problems
