# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Report step: a gather result as a text table a person reads (CLI and the socket_table filter)."""

from __future__ import annotations


def socket_label(entry):
    """``tcp 0.0.0.0:856`` / ``udp [::1]:859``: how a socket is named in messages."""
    address = entry['address']
    if entry['family'] == 'ipv6':
        address = '[%s]' % address
    return '%s %s:%d' % (entry['protocol'], address, entry['port'])


def _processes(processes):
    if not processes:
        return '-'
    return ','.join('%s[%d]' % (proc['name'], proc['pid']) for proc in processes)


def render_socket_table(result):
    """Render a gather result (``sockets`` and ``coverage``) as aligned lines, coverage last."""
    rows = [('PROTO', 'LOCAL ADDRESS', 'V6ONLY', 'EPHEMERAL', 'USER', 'UNIT', 'PROCESSES')]
    for entry in result.get('sockets') or []:
        v6only = '-' if entry.get('v6only') is None else ('yes' if entry['v6only'] else 'no')
        processes = entry.get('processes') or []
        users = sorted(set(str(proc.get('user') or proc.get('uid')) for proc in processes)) or ['-']
        units = sorted(set(proc['unit'] for proc in processes if proc.get('unit'))) or ['-']
        ephemeral = 'yes' if entry.get('ephemeral') else 'no'
        rows.append((entry['protocol'], socket_label(entry).split(' ', 1)[1], v6only, ephemeral,
                     ','.join(users), ','.join(units), _processes(processes)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ['  '.join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + '  ' + row[-1] for row in rows]
    coverage = result.get('coverage') or {}
    lines.append('')
    lines.append('coverage: backend=%s privileged=%s complete=%s sockets=%s unowned=%d'
                 % (coverage.get('backend'), coverage.get('privileged'), coverage.get('complete'),
                    coverage.get('sockets'), len(coverage.get('unowned_sockets') or [])))
    lines.extend('error: %s' % error for error in coverage.get('errors') or [])
    lines.extend('note: %s' % note for note in coverage.get('notes') or [])
    return lines
