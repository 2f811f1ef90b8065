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
from ansible_collections.portwarden.compliance.plugins.module_utils.report_sockets import render_socket_table

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_ERROR = 2


def command_gather(args):
    try:
        result = gather_sockets.gather_listening_sockets(backend=args.backend,
                                                         protocols=args.protocol or gather_sockets.PROTOCOLS)
    except gather_sockets.GatherError as exc:
        sys.stderr.write('portwarden gather: %s\n' % exc)
        return EXIT_ERROR
    if args.format == 'json':
        # Key order is fixed by the gather core, so the output is deterministic without sort_keys.
        if args.compact:
            text = json.dumps(result, separators=(',', ':'))
        else:
            text = json.dumps(result, indent=2)
        sys.stdout.write(text + '\n')
    else:
        sys.stdout.write('\n'.join(render_socket_table(result)) + '\n')
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
