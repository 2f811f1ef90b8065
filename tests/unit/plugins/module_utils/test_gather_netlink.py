"""Unit tests: decoding NETLINK_SOCK_DIAG dumps captured from a real kernel (6.18).

The captures were taken in a scratch network namespace holding:
TCP [::]:858 dual-stack (inode 8471), TCP [::1]:857 V6ONLY (8472) with one established
connection to it, TCP [::ffff:127.0.0.1]:861 (8473), UDP 0.0.0.0:859 (8477) plus a connected UDP
client, and TCP 127.0.0.1:856 (8479). The TCP6 and UDP4 dumps asked for every state, so
they also hold sockets the decoder must drop.
"""

import binascii
import errno
import socket
import struct

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_netlink as nl

TCP6_ALL_STATES = binascii.unhexlify(
    '8400000014000200010000009f1000000a0a000003590000000000000000000000000000000000010000000000000000'
    '000000000000000000000000020000000000000000000000000000008000000000000000182100000500080000000000'
    '05000b000100000008000f00000000000c00150001000000000000000600160012000000840000001400020001000000'
    '9f1000000a0a0000035d000000000000000000000000ffff7f0000010000000000000000000000000000000000000000'
    '03000000000000000000000000000000800000000000000019210000050008000000000005000b000000000008000f00'
    '000000000c001500010000000000000006001600120000008400000014000200010000009f1000000a0a0000035a0000'
    '000000000000000000000000000000000000000000000000000000000000000000000000040000000000000000000000'
    '00000000800000000000000017210000050008000000000005000b000000000008000f00000000000c00150001000000'
    '0000000006001600120000007c00000014000200010000009f1000000a010000813e0359000000000000000000000000'
    '000000010000000000000000000000000000000100000000050000000000000000000000000000000000000000000000'
    '1a210000050008000000000008000f00000000000c001500010000000000000006001600120000007c00000014000200'
    '010000009f1000000a0100000359813e0000000000000000000000000000000100000000000000000000000000000001'
    '000000000600000000000000000000000000000000000000000000001b210000050008000000000008000f0000000000'
    '0c001500010000000000000006001600120000001400000003000200010000009f10000000000000'
)
UDP4_ALL_STATES = binascii.unhexlify(
    '7c00000014000200010000009f10000002010000ec7f035b7f0000010000000000000000000000007f00000100000000'
    '0000000000000000000000000700000000000000000000000000000000000000000000001e2100000500080000000000'
    '08000f00000000000c001500010000000000000006001600500000007c00000014000200010000009f10000002070000'
    '035b00000000000000000000000000000000000000000000000000000000000000000000000000000800000000000000'
    '000000000000000000000000000000001d210000050008000000000008000f00000000000c0015000100000000000000'
    '06001600500000001400000003000200010000009f10000000000000'
)
TCP4_LISTEN = binascii.unhexlify(
    '7c00000014000200010000009f100000020a0000035800007f0000010000000000000000000000000000000000000000'
    '0000000000000000000000000900000000000000000000000000000080000000000000001f2100000500080000000000'
    '08000f00000000000c001500010000000000000006001600520000001400000003000200010000009f10000000000000'
)


def _header(length, msg_type, flags=0, seq=1):
    return struct.pack('=IHHII', length, msg_type, flags, seq, 0)


def _done():
    return _header(20, nl.NLMSG_DONE, 0x2) + struct.pack('=i', 0)


def _error(code):
    return _header(36, nl.NLMSG_ERROR) + struct.pack('=i', -code) + _header(72, nl.SOCK_DIAG_BY_FAMILY)


@pytest.mark.parametrize('data, protocol, expected', [
    (TCP6_ALL_STATES, 'tcp', [
        ('tcp', 'ipv6', '::', 858, False, 8471),
        ('tcp', 'ipv6', '::1', 857, True, 8472),
        ('tcp', 'ipv6', '::ffff:127.0.0.1', 861, False, 8473),
    ]),
    (UDP4_ALL_STATES, 'udp', [('udp', 'ipv4', '0.0.0.0', 859, None, 8477)]),
    (TCP4_LISTEN, 'tcp', [('tcp', 'ipv4', '127.0.0.1', 856, None, 8479)]),
], ids=['tcp6-dual-v6only-mapped-and-established', 'udp4-connected-client-dropped', 'tcp4-listen'])
def test_decode_captured_dump(data, protocol, expected):
    records = []
    done, interrupted = nl.decode_messages(data, protocol, nl.LISTEN_STATE[protocol], records)
    assert (done, interrupted) == (True, False)
    assert sorted(records, key=lambda r: r[5]) == expected


def test_captured_dump_holds_sockets_the_decoder_drops():
    # The all-states capture also carries the established pair: decoding it for that state finds it.
    established = []
    nl.decode_messages(TCP6_ALL_STATES, 'tcp', nl.TCP_ESTABLISHED, established)
    assert len(established) == 2
    assert {record[3] for record in established} >= {857}


def test_decode_split_buffers_keep_going_until_done():
    cut = 0
    records = []
    # Split the capture at a message boundary: the first part must not report done.
    length = struct.unpack_from('=I', TCP6_ALL_STATES, 0)[0]
    cut = (length + 3) & ~3
    assert nl.decode_messages(TCP6_ALL_STATES[:cut], 'tcp', nl.TCP_LISTEN, records) == (False, False)
    assert nl.decode_messages(TCP6_ALL_STATES[cut:], 'tcp', nl.TCP_LISTEN, records) == (True, False)
    assert len(records) == 3


@pytest.mark.parametrize('code', [errno.ENOENT, errno.EPERM, errno.EPROTONOSUPPORT])
def test_error_message_raises_with_errno(code):
    with pytest.raises(nl.NetlinkError) as caught:
        nl.decode_messages(_error(code), 'udp', nl.TCP_CLOSE, [])
    assert caught.value.errno == code
    assert 'refused' in str(caught.value)


def test_error_zero_is_an_acknowledgement_not_a_failure():
    records = []
    assert nl.decode_messages(_error(0) + _done(), 'tcp', nl.TCP_LISTEN, records) == (True, False)
    assert records == []


def test_interrupted_dump_is_flagged():
    first = bytearray(TCP4_LISTEN)
    struct.pack_into('=H', first, 6, struct.unpack_from('=H', first, 6)[0] | nl.NLM_F_DUMP_INTR)
    assert nl.decode_messages(bytes(first), 'tcp', nl.TCP_LISTEN, [])[1] is True


@pytest.mark.parametrize('data', [
    _header(8, nl.SOCK_DIAG_BY_FAMILY),  # length shorter than a header
    _header(400, nl.SOCK_DIAG_BY_FAMILY) + b'\0' * 20,  # length past the buffer
    _header(40, nl.SOCK_DIAG_BY_FAMILY) + b'\0' * 24,  # shorter than an inet_diag_msg
], ids=['short-length', 'overrun', 'truncated-diag-msg'])
def test_malformed_buffers_raise(data):
    with pytest.raises(nl.NetlinkError):
        nl.decode_messages(data, 'tcp', nl.TCP_LISTEN, [])


def test_empty_dump_is_done_with_no_records():
    records = []
    assert nl.decode_messages(_done(), 'tcp', nl.TCP_LISTEN, records) == (True, False)
    assert records == []


@pytest.mark.parametrize('family, protocol, states, expected', [
    ('ipv4', 'tcp', 1 << nl.TCP_LISTEN, (socket.AF_INET, socket.IPPROTO_TCP, 0x400)),
    ('ipv6', 'udp', 1 << nl.TCP_CLOSE, (socket.AF_INET6, socket.IPPROTO_UDP, 0x80)),
])
def test_build_request(family, protocol, states, expected):
    request = nl.build_request(family, protocol, states, seq=7)
    length, msg_type, flags, seq, pid = struct.unpack_from('=IHHII', request)
    assert (length, msg_type, flags, seq, pid) == (72, nl.SOCK_DIAG_BY_FAMILY, nl.NLM_F_REQUEST | nl.NLM_F_DUMP, 7, 0)
    fam, proto, ext, wanted = struct.unpack_from('=BBBxI', request, 16)
    assert (fam, proto, wanted) == expected
    assert ext == 0
    assert request[24:] == b'\0' * 48
