# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Gather step, netlink backend: listening sockets from a NETLINK_SOCK_DIAG dump.

Pure standard library. The kernel filters by state, so the cost does not grow
with established connections: TCP is asked for LISTEN only, UDP for unconnected
(TCP_CLOSE) sockets only.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLM_F_DUMP_INTR = 0x10
INET_DIAG_SKV6ONLY = 11

TCP_ESTABLISHED = 1
TCP_CLOSE = 7
TCP_LISTEN = 10

# Which kernel state a "listening" socket of each protocol is in.
LISTEN_STATE = {'tcp': TCP_LISTEN, 'udp': TCP_CLOSE}
PROTOCOL_NUMBER = {'tcp': socket.IPPROTO_TCP, 'udp': socket.IPPROTO_UDP}
FAMILY_NUMBER = {'ipv4': socket.AF_INET, 'ipv6': socket.AF_INET6}
FAMILY_NAME = {socket.AF_INET: 'ipv4', socket.AF_INET6: 'ipv6'}

_NLMSGHDR = struct.Struct('=IHHII')
# struct inet_diag_req_v2: family, protocol, ext, pad, states, then a zeroed inet_diag_sockid (48 bytes).
_REQ_V2 = struct.Struct('=BBBxI48x')
# struct inet_diag_msg (72 bytes): family, state, timer, retrans, sport, dport, src[16], dst[16], if,
# cookie[2], expires, rqueue, wqueue, uid, inode. Only family, state, sport, src and inode are read.
# Ports are big-endian, the rest is host order.
_DIAG_MSG = struct.Struct('=BBxx2s2x16s16x4x8x16xI')
_RTATTR = struct.Struct('=HH')
_NLMSG_ERRNO = struct.Struct('=i')

_RECV_SIZE = 32768  # the kernel never fills a dump message beyond 32 KiB
_MAX_ATTEMPTS = 3  # a dump interrupted by a concurrent change is retried, then reported


class NetlinkError(Exception):
    """A sock_diag dump that could not be completed; errno is set when the kernel gave one."""

    def __init__(self, message, errno_value=None):
        super(NetlinkError, self).__init__(message)
        self.errno = errno_value


def build_request(family, protocol, states, seq=1):
    """Return the bytes of one SOCK_DIAG_BY_FAMILY dump request."""
    payload = _REQ_V2.pack(FAMILY_NUMBER[family], PROTOCOL_NUMBER[protocol], 0, states)
    header = _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), SOCK_DIAG_BY_FAMILY,
                            NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    return header + payload


_ADDRESS_CACHE = {}


def _address(family_number, raw):
    if family_number == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw)


def decode_messages(data, protocol, want_state, records):
    """Decode one buffer of a dump into ``records``.

    Each record is ``(protocol, family, address, port, v6only, inode)``; ``v6only``
    is None for IPv4. Returns ``(done, interrupted)``. Raises NetlinkError on an
    error message or a malformed buffer.
    """
    view = memoryview(data)
    size = len(data)
    addresses = _ADDRESS_CACHE
    offset = 0
    done = interrupted = False
    unpack_header = _NLMSGHDR.unpack_from
    unpack_msg = _DIAG_MSG.unpack_from
    unpack_attr = _RTATTR.unpack_from
    while offset + _NLMSGHDR.size <= size:
        length, msg_type, flags, _seq, _pid = unpack_header(view, offset)
        if length < _NLMSGHDR.size or offset + length > size:
            raise NetlinkError('malformed netlink message (length %d at offset %d of %d)' % (length, offset, size))
        if flags & NLM_F_DUMP_INTR:
            interrupted = True
        body = offset + _NLMSGHDR.size
        if msg_type == SOCK_DIAG_BY_FAMILY:
            if length < _NLMSGHDR.size + _DIAG_MSG.size:
                raise NetlinkError('truncated inet_diag message (length %d)' % length)
            family_number, state, sport, src, inode = unpack_msg(view, body)
            if state == want_state:
                v6only = None
                if family_number == socket.AF_INET6:
                    v6only = False
                    attr = body + _DIAG_MSG.size
                    end = offset + length
                    while attr + _RTATTR.size <= end:
                        attr_len, attr_type = unpack_attr(view, attr)
                        if attr_len < _RTATTR.size:
                            break
                        if attr_type == INET_DIAG_SKV6ONLY and attr_len > _RTATTR.size:
                            v6only = view[attr + _RTATTR.size] != 0
                        attr += (attr_len + 3) & ~3
                key = (family_number, src)
                address = addresses.get(key)
                if address is None:  # most sockets share a handful of addresses
                    address = addresses[key] = _address(family_number, src)
                records.append((protocol, FAMILY_NAME.get(family_number, str(family_number)),
                                address, (sport[0] << 8) | sport[1], v6only, inode))
        elif msg_type == NLMSG_DONE:
            done = True
            break
        elif msg_type == NLMSG_ERROR:
            code = -_NLMSG_ERRNO.unpack_from(view, body)[0] if length >= _NLMSGHDR.size + 4 else 0
            if code:
                raise NetlinkError('sock_diag dump refused: %s' % os.strerror(code), code)
        offset += (length + 3) & ~3
    return done, interrupted


def dump_listening(family, protocol):
    """Dump the listening sockets of one (family, protocol) table of this network namespace.

    Returns a list of records (see ``decode_messages``). Raises NetlinkError when the
    dump cannot be completed consistently: a partial answer is never returned.
    """
    want_state = LISTEN_STATE[protocol]
    request = build_request(family, protocol, 1 << want_state)
    for _attempt in range(_MAX_ATTEMPTS):
        records = []
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
        except (OSError, AttributeError) as exc:
            raise NetlinkError('cannot open a NETLINK_SOCK_DIAG socket: %s' % exc, getattr(exc, 'errno', None)) from exc
        try:
            sock.sendall(request)
            done = interrupted = False
            while not done:
                data = sock.recv(_RECV_SIZE)
                if not data:
                    raise NetlinkError('netlink socket closed before the dump ended')
                done, more_interrupted = decode_messages(data, protocol, want_state, records)
                interrupted = interrupted or more_interrupted
        except OSError as exc:
            raise NetlinkError('sock_diag dump failed: %s' % exc, exc.errno) from exc
        finally:
            sock.close()
        if not interrupted:
            return records
    raise NetlinkError('sock_diag dump kept being interrupted by concurrent socket changes', errno.EINTR)
