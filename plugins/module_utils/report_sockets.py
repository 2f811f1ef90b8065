# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Report step: a gather result as a text table a person reads (CLI and the socket_table filter)."""

from __future__ import annotations

import re

HOST_WHERE = 'host'

# What a terminal, a browser or a renderer acts on or hides, in text a host gave us (process names, exe
# paths, unit and container names): C0 and C1 controls and DEL, the soft hyphen, bidi embeddings,
# overrides, isolates and marks, zero-width and other format characters (Unicode category Cf, as of
# Unicode 16), line and paragraph separators, invisible fillers, and surrogates (bytes of a path that
# are not UTF-8, as os.fsdecode keeps them).
_UNPRINTABLE_CLASS = (
    '\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u2028-\u202e'
    '\u2060-\u206f\u3164\ud800-\udfff\ufeff\uffa0\ufff9-\ufffb\ufffe\uffff'
    '\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2'
    '\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a'
    '\U000e0001\U000e0020-\U000e007f')
_UNPRINTABLE = re.compile('[%s]' % _UNPRINTABLE_CLASS)
_UNPRINTABLE_BUT_NEWLINE = re.compile('[%s]' % _UNPRINTABLE_CLASS.replace('\x00-\x1f', '\x00-\x09\x0b-\x1f'))
_SHORT_ESCAPES = {'\n': '\\n', '\r': '\\r', '\t': '\\t'}


def _escape(match):
    char = match.group()
    code = ord(char)
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    if 0xdc80 <= code <= 0xdcff:  # a byte that was not UTF-8: show the byte
        return '\\x%02x' % (code - 0xdc00)
    if code <= 0xff:
        return '\\x%02x' % code
    if code <= 0xffff:
        return '\\u%04x' % code
    return '\\U%08x' % code


def printable(value, newlines=False):
    """``value`` as text safe to show a person: every control or invisible character of it (see
    ``_UNPRINTABLE_CLASS``) written as a Python-style escape (``\\x1b``, ``\\n``, ``\\u202e``, ``\\xff`` for
    a byte that was not UTF-8), everything else as it is. The result is printable ASCII plus the
    printable Unicode the value held, always encodable as UTF-8, and ``printable(printable(x)) ==
    printable(x)``, so layers may each apply it. With ``newlines``, line feeds are kept (for a block
    of lines the caller joined itself).

    Every output that shows text from a host (the socket table, CLI messages, the reports, messages
    Ansible prints) passes it through this first.
    """
    text = value if isinstance(value, str) else str(value)
    # ASCII (known in O(1)) needs escapes only for its controls and DEL, which isprintable finds in one C pass,
    # several times faster than the class's search: JSON output of megabytes (a gather with thousands of exposures).
    if text.isascii() and (text.isprintable() or (newlines and text.replace('\n', ' ').isprintable())):
        return text
    pattern = _UNPRINTABLE_BUT_NEWLINE if newlines else _UNPRINTABLE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)


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
    return ','.join('%s[%d]' % (printable(proc['name']), proc['pid']) for proc in processes)


def render_socket_table(result):
    """Render a gather result (``sockets`` and ``coverage``) as aligned lines, coverage last; text from the
    host (process, user, unit and container names, errors) is shown through ``printable``."""
    sockets = result.get('sockets') or []
    # Gathered with namespaces: all, a WHERE column says which namespace each socket lives in.
    where = any('namespace' in entry for entry in sockets)
    rows = [('PROTO', 'LOCAL ADDRESS') + (('WHERE',) if where else ()) + ('V6ONLY', 'EPHEMERAL', 'USER', 'UNIT', 'PROCESSES')]
    for entry in sockets:
        v6only = '-' if entry.get('v6only') is None else ('yes' if entry['v6only'] else 'no')
        processes = entry.get('processes') or []
        users = sorted(set(printable(proc.get('user') or proc.get('uid')) for proc in processes)) or ['-']
        units = sorted(set(printable(proc['unit']) for proc in processes if proc.get('unit'))) or ['-']
        ephemeral = 'yes' if entry.get('ephemeral') else 'no'
        rows.append((entry['protocol'], socket_label(entry, with_namespace=False).split(' ', 1)[1])
                    + ((printable(namespace_where(entry.get('namespace'))),) if where else ())
                    + (v6only, ephemeral, ','.join(users), ','.join(units), _processes(processes)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ['  '.join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + '  ' + row[-1] for row in rows]
    coverage = result.get('coverage') or {}
    lines.append('')
    lines.append('coverage: backend=%s privileged=%s complete=%s sockets=%s unowned=%d'
                 % (coverage.get('backend'), coverage.get('privileged'), coverage.get('complete'),
                    coverage.get('sockets'), len(coverage.get('unowned_sockets') or [])))
    lines.extend('error: %s' % printable(error) for error in coverage.get('errors') or [])
    lines.extend('note: %s' % printable(note) for note in coverage.get('notes') or [])
    return lines


def _ports(low, high):
    return '%d' % low if high in (None, low) else '%d-%d' % (low, high)


def exposure_target(exposure):
    """``docker:web 172.17.0.2:80``, ``this host:53`` (REDIRECT), ``172.17.0.9:80 (owner unknown)``: who answers."""
    target = exposure.get('target') or {}
    address = target.get('address')
    port = target.get('port')
    shown = 'this host' if address is None else ('[%s]' % address if ':' in address else address)
    shown += ':%s' % (_ports(port, target.get('port_end')) if port is not None else 'same port')
    owner = exposure.get('owner') or {}
    kind = owner.get('kind')
    if kind == 'namespace':
        return '%s %s' % (namespace_where(owner.get('namespace')), shown)
    if kind == 'local':
        names = ','.join('%s[%s]' % (proc.get('name'), proc.get('pid')) for proc in (owner.get('processes') or [])[:3])
        return '%s (%s)' % (shown, names or 'local listener')
    return '%s (owner unknown)' % shown


def exposure_label(exposure):
    """``tcp 0.0.0.0:856 published by DNAT to docker:web 172.17.0.2:80``: how an exposure is named in messages."""
    address = exposure['address']
    if exposure['family'] == 'ipv6':
        address = '[%s]' % address
    how = 'DNAT' if exposure.get('action') == 'dnat' else 'REDIRECT'
    local = ' (local traffic only: OUTPUT)' if exposure.get('hooks') == ['output'] else ''
    return '%s %s:%s published by %s to %s%s' % (exposure['protocol'], address,
                                                 _ports(exposure['port'], exposure.get('port_end')), how,
                                                 exposure_target(exposure), local)


def exposure_lines(result):
    """The exposures of a gather result (NAT), one line each with the rule that makes it, after the socket table."""
    exposures = result.get('exposures')
    nat = (result.get('coverage') or {}).get('nat')
    if exposures is None or not isinstance(nat, dict):
        return []
    lines = ['', 'nat: mode=%s sources=%s exposures=%d' % (nat.get('mode'), ','.join(sorted(nat.get('sources') or {})) or '-',
                                                           len(exposures))]
    for exposure in exposures:
        lines.append(printable('%s  [%s %s chain %s]' % (exposure_label(exposure), exposure.get('source'),
                                                         exposure.get('table'), exposure.get('chain'))))
    return lines
