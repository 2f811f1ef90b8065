# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Gather step, procfs backend: listening sockets from /proc/net/{tcp,tcp6,udp,udp6}.

The fallback where sock_diag is not available. /proc/net cannot tell a V6ONLY
socket from a dual-stack one, so ``v6only`` is None (unknown) for IPv6 here.
"""

from __future__ import annotations

import socket
import struct
import sys

# Hex kernel state of a listening socket: TCP_LISTEN for tcp, TCP_CLOSE (unconnected) for udp.
LISTEN_STATE_HEX = {'tcp': '0A', 'udp': '07'}
TABLE_FILE = {
    ('tcp', 'ipv4'): 'tcp', ('tcp', 'ipv6'): 'tcp6',
    ('udp', 'ipv4'): 'udp', ('udp', 'ipv6'): 'udp6',
}

_NATIVE_WORD = '<I' if sys.byteorder == 'little' else '>I'


class ProcfsError(Exception):
    """A /proc/net table that could not be read or parsed."""


def decode_address(text, byteorder=None):
    """Decode a /proc/net address such as ``0100007F:0016`` into ``(family, address, port)``.

    The kernel prints each 32-bit word of the address in host byte order; the
    port is plain hex. ``byteorder`` defaults to this host's.
    """
    word = _NATIVE_WORD if byteorder is None else ('<I' if byteorder == 'little' else '>I')
    hex_address, _sep, hex_port = text.partition(':')
    if len(hex_address) == 8:
        family, family_number = 'ipv4', socket.AF_INET
    elif len(hex_address) == 32:
        family, family_number = 'ipv6', socket.AF_INET6
    else:
        raise ProcfsError('unexpected address %r' % text)
    raw = b''.join(struct.pack(word, int(hex_address[i:i + 8], 16)) for i in range(0, len(hex_address), 8))
    return family, socket.inet_ntop(family_number, raw), int(hex_port, 16)


def parse_table(lines, protocol, byteorder=None):
    """Parse the lines of one /proc/net table into listening-socket records.

    Records are ``(protocol, family, address, port, v6only, inode)``, the same shape
    as the netlink backend's. The header line and sockets in other states are skipped.
    """
    want = LISTEN_STATE_HEX[protocol]
    needle = ' %s ' % want
    records = []
    for line in lines:
        # Cheap pre-filter: no other column can hold the state's two hex digits as a word.
        if needle not in line:
            continue
        fields = line.split()
        if len(fields) < 10 or fields[3] != want:
            continue
        family, address, port = decode_address(fields[1], byteorder)
        records.append((protocol, family, address, port, None, int(fields[9])))
    return records


def read_listening(family, protocol, proc_net='/proc/net'):
    """Read one table of this network namespace. Raises ProcfsError when it cannot be read."""
    path = '%s/%s' % (proc_net, TABLE_FILE[(protocol, family)])
    try:
        with open(path) as handle:
            header = handle.readline()
            if 'local_address' not in header:
                raise ProcfsError('%s: unexpected header %r' % (path, header.strip()))
            return parse_table(handle, protocol)
    except (OSError, ValueError) as exc:
        raise ProcfsError('%s: %s' % (path, exc)) from exc
