# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The ``portwarden`` command line.

``portwarden gather`` prints this host's listening sockets without Ansible,
through the same gather core the module uses.
"""

from __future__ import annotations

import argparse
import json
import sys

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_sockets

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_ERROR = 2


def _format_processes(processes):
    if not processes:
        return '-'
    return ','.join('%s[%d]' % (proc['name'], proc['pid']) for proc in processes)


def render_table(result):
    """Render a gather result as an aligned text table followed by its coverage."""
    rows = [('PROTO', 'LOCAL ADDRESS', 'V6ONLY', 'EPHEMERAL', 'USER', 'UNIT', 'PROCESSES')]
    for entry in result['sockets']:
        v6only = '-' if entry['v6only'] is None else ('yes' if entry['v6only'] else 'no')
        users = sorted(set(str(proc['user'] or proc['uid']) for proc in entry['processes'])) or ['-']
        units = sorted(set(proc['unit'] for proc in entry['processes'] if proc['unit'])) or ['-']
        rows.append((entry['protocol'], gather_sockets.socket_label(entry).split(' ', 1)[1], v6only,
                     'yes' if entry['ephemeral'] else 'no', ','.join(users), ','.join(units),
                     _format_processes(entry['processes'])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ['  '.join(cell.ljust(width) for cell, width in zip(row[:-1], widths)) + '  ' + row[-1] for row in rows]
    coverage = result['coverage']
    lines.append('')
    lines.append('coverage: backend=%s privileged=%s complete=%s sockets=%d unowned=%d'
                 % (coverage['backend'], coverage['privileged'], coverage['complete'], coverage['sockets'],
                    len(coverage['unowned_sockets'])))
    for error in coverage['errors']:
        lines.append('error: %s' % error)
    for note in coverage['notes']:
        lines.append('note: %s' % note)
    return '\n'.join(lines)


def command_gather(args):
    try:
        result = gather_sockets.gather_listening_sockets(backend=args.backend,
                                                         protocols=args.protocol or gather_sockets.PROTOCOLS)
    except gather_sockets.GatherError as exc:
        sys.stderr.write('portwarden gather: %s\n' % exc)
        return EXIT_ERROR
    if args.format == 'json':
        sys.stdout.write(json.dumps(result, indent=None if args.compact else 2, sort_keys=True) + '\n')
    else:
        sys.stdout.write(render_table(result) + '\n')
    return EXIT_OK if result['coverage']['complete'] else EXIT_PARTIAL


def build_parser():
    parser = argparse.ArgumentParser(prog='portwarden', description='Listening-port compliance for fleets.')
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.required = True
    gather = commands.add_parser('gather', help="print this host's listening sockets",
                                 description="Print this host's listening sockets and the gather coverage. "
                                             "Exit 0 when coverage is complete, 1 when partial, 2 when nothing "
                                             "could be gathered.")
    gather.add_argument('--backend', choices=gather_sockets.BACKENDS, default='auto')
    gather.add_argument('--protocol', action='append', choices=gather_sockets.PROTOCOLS,
                        help='limit to a protocol (repeatable; default: tcp and udp)')
    gather.add_argument('--format', choices=('table', 'json'), default='table')
    gather.add_argument('--compact', action='store_true', help='one-line JSON')
    gather.set_defaults(handler=command_gather)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
