# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Report step: a gather result as a text table a person reads (CLI and the socket_table filter)."""

from __future__ import annotations

HOST_WHERE = 'host'


def namespace_where(namespace):
    """Where a socket (or finding) lives, from its ``namespace`` (gather with ``namespaces: all``), as a short
    name that stays the same from one run to the next:

    - ``host``: the host's own network namespace (also any socket gathered without namespace data);
    - ``KIND:NAME`` for a container (``docker:web``, ``kubernetes:shop/cart-5d9f``), with the first 12
      characters of its id where its name is unknown (``containerd:4f1c0a7e5b1d``), and ``kubernetes:pod-UID``
      for a pod's own process;
    - ``netns:INODE`` for any other network namespace (``ip netns``, an unrecognised runtime).
    """
    if not isinstance(namespace, dict) or namespace.get('host'):
        return HOST_WHERE
    container = namespace.get('container')
    if isinstance(container, dict) and container.get('kind'):
        name = container.get('name') or (container.get('id') or '')[:12]
        if not name and container.get('pod_uid'):
            name = 'pod-%s' % container['pod_uid']
        return '%s:%s' % (container['kind'], name or '?')
    return 'netns:%s' % namespace.get('inode')


def socket_label(entry, with_namespace=True):
    """``tcp 0.0.0.0:856`` / ``udp [::1]:859``, and ``tcp 0.0.0.0:856 in docker:web`` outside the host's
    network namespace (unless ``with_namespace`` is false): how a socket (or a finding) is named in messages."""
    address = entry['address']
    if entry['family'] == 'ipv6':
        address = '[%s]' % address
    label = '%s %s:%d' % (entry['protocol'], address, entry['port'])
    where = namespace_where(entry.get('namespace')) if with_namespace else HOST_WHERE
    return label if where == HOST_WHERE else '%s in %s' % (label, where)


def _processes(processes):
    if not processes:
        return '-'
    return ','.join('%s[%d]' % (proc['name'], proc['pid']) for proc in processes)


def render_socket_table(result):
    """Render a gather result (``sockets`` and ``coverage``) as aligned lines, coverage last."""
    sockets = result.get('sockets') or []
    # Gathered with namespaces: all, a WHERE column says which namespace each socket lives in.
    where = any('namespace' in entry for entry in sockets)
    rows = [('PROTO', 'LOCAL ADDRESS') + (('WHERE',) if where else ()) + ('V6ONLY', 'EPHEMERAL', 'USER', 'UNIT', 'PROCESSES')]
    for entry in sockets:
        v6only = '-' if entry.get('v6only') is None else ('yes' if entry['v6only'] else 'no')
        processes = entry.get('processes') or []
        users = sorted(set(str(proc.get('user') or proc.get('uid')) for proc in processes)) or ['-']
        units = sorted(set(proc['unit'] for proc in processes if proc.get('unit'))) or ['-']
        ephemeral = 'yes' if entry.get('ephemeral') else 'no'
        rows.append((entry['protocol'], socket_label(entry, with_namespace=False).split(' ', 1)[1])
                    + ((namespace_where(entry.get('namespace')),) if where else ())
                    + (v6only, ephemeral, ','.join(users), ','.join(units), _processes(processes)))
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
