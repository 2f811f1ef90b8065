"""Unit tests: parsing /proc/net/{tcp,tcp6,udp,udp6} lines."""

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_procfs as procfs

TCP_HEADER = ('  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode')
TCP6_HEADER = ('  sl  local_address                         remote_address                        st tx_queue '
               'rx_queue tr tm->when retrnsmt   uid  timeout inode')


@pytest.mark.parametrize('text, byteorder, expected', [
    ('0100007F:0016', 'little', ('ipv4', '127.0.0.1', 22)),
    ('7F000001:0016', 'big', ('ipv4', '127.0.0.1', 22)),
    ('00000000:0358', 'little', ('ipv4', '0.0.0.0', 856)),
    ('0101A8C0:01BB', 'little', ('ipv4', '192.168.1.1', 443)),
    ('00000000000000000000000001000000:0359', 'little', ('ipv6', '::1', 857)),
    ('00000000000000000000000000000001:0359', 'big', ('ipv6', '::1', 857)),
    ('00000000000000000000000000000000:035A', 'little', ('ipv6', '::', 858)),
    ('0000000000000000FFFF00000100007F:035D', 'little', ('ipv6', '::ffff:127.0.0.1', 861)),
    ('000080FE00000000FF27000AA1664EFE:0016', 'little', ('ipv6', 'fe80::a00:27ff:fe4e:66a1', 22)),
], ids=['v4-loopback', 'v4-big-endian-host', 'v4-any', 'v4-private', 'v6-loopback', 'v6-loopback-big-endian',
        'v6-any', 'v6-v4-mapped', 'v6-link-local'])
def test_decode_address(text, byteorder, expected):
    assert procfs.decode_address(text, byteorder) == expected


@pytest.mark.parametrize('text', ['0100007F0016', '0100:0016', 'zz00007F:0016'])
def test_decode_address_rejects_garbage(text):
    with pytest.raises((procfs.ProcfsError, ValueError)):
        procfs.decode_address(text, 'little')


TCP_LINES = [
    TCP_HEADER,
    '   0: 00000000:0358 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6333 1 0 100 0 0 10 0',
    '   1: 0100007F:0016 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 7001 1 0 20 4 30 10 -1',
    # sl beyond 9999 widens the first column: parsing must not rely on offsets.
    '10000: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 7002 1 0 100 0 0 10 0',
    # state 06 (TIME_WAIT) with inode 0 must be dropped.
    '   2: 0100007F:0017 0100007F:C000 06 00000000:00000000 03:00000F9C 00000000     0        0 0 3 0',
]
TCP6_LINES = [
    TCP6_HEADER,
    '   0: 00000000000000000000000000000000:035A 00000000000000000000000000000000:0000 0A 00000000:00000000 '
    '00:00000000 00000000     0        0 6334 1 0 100 0 0 10 0',
    '   1: 00000000000000000000000001000000:0359 00000000000000000000000000000000:0000 0A 00000000:00000000 '
    '00:00000000 00000000     0        0 6335 1 0 100 0 0 10 0',
    '   2: 00000000000000000000000001000000:0359 00000000000000000000000001000000:D5A0 01 00000000:00000000 '
    '00:00000000 00000000     0        0 6399 1 0 20 4 30 10 -1',
]
UDP_LINES = [
    '   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer '
    'drops',
    '  12: 00000000:035B 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 6336 2 0 0',
    # a connected UDP client (state 01) is not listening
    '  13: 0100007F:8C2A 0100007F:035B 01 00000000:00000000 00:00000000 00000000     0        0 6337 2 0 0',
    # uid 7 prints as "7", never as the state word "07"
    '  14: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     7        0 6338 2 0 0',
]


@pytest.mark.parametrize('lines, protocol, expected', [
    (TCP_LINES, 'tcp', [('tcp', 'ipv4', '0.0.0.0', 856, None, 6333), ('tcp', 'ipv4', '127.0.0.1', 8080, None, 7002)]),
    (TCP6_LINES, 'tcp', [('tcp', 'ipv6', '::', 858, None, 6334), ('tcp', 'ipv6', '::1', 857, None, 6335)]),
    (UDP_LINES, 'udp', [('udp', 'ipv4', '0.0.0.0', 859, None, 6336), ('udp', 'ipv4', '127.0.0.1', 53, None, 6338)]),
    ([TCP_HEADER], 'tcp', []),
], ids=['tcp4', 'tcp6', 'udp4', 'header-only'])
def test_parse_table(lines, protocol, expected):
    assert procfs.parse_table(lines, protocol, 'little') == expected


def test_read_listening_names_the_file_when_missing(tmp_path):
    with pytest.raises(procfs.ProcfsError) as caught:
        procfs.read_listening('ipv6', 'udp', proc_net=str(tmp_path))
    assert str(tmp_path / 'udp6') in str(caught.value)


def test_read_listening_rejects_a_file_that_is_not_a_socket_table(tmp_path):
    (tmp_path / 'tcp').write_text('something else\n')
    with pytest.raises(procfs.ProcfsError) as caught:
        procfs.read_listening('ipv4', 'tcp', proc_net=str(tmp_path))
    assert 'unexpected header' in str(caught.value)


def test_read_listening_from_a_file(tmp_path):
    (tmp_path / 'tcp6').write_text('\n'.join(TCP6_LINES) + '\n')
    records = procfs.read_listening('ipv6', 'tcp', proc_net=str(tmp_path))
    assert [record[3] for record in records] == [858, 857]
