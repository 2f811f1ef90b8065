"""Unit tests: the pure helpers of the gather step."""

import socket

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_sockets as gather


@pytest.mark.parametrize('text, expected', [
    ('32768\t60999\n', (32768, 60999)),
    ('1024 65000', (1024, 65000)),
])
def test_read_port_range(text, expected):
    assert gather.read_port_range(text) == expected


@pytest.mark.parametrize('text, expected', [
    ('\n', set()),
    ('8080\n', {8080}),
    ('8080,9000-9002\n', {8080, 9000, 9001, 9002}),
])
def test_read_port_list(text, expected):
    assert gather.read_port_list(text) == expected


RANGE = (32768, 60999, {40000})


@pytest.mark.parametrize('protocol, port, port_range, expected', [
    ('udp', 45000, RANGE, True),
    ('udp', 32768, RANGE, True),
    ('udp', 60999, RANGE, True),
    ('udp', 32767, RANGE, False),
    ('udp', 61000, RANGE, False),
    ('udp', 40000, RANGE, False),  # reserved ports are never handed out as ephemeral
    ('tcp', 45000, RANGE, False),  # a TCP listener is a service wherever its port lies
    ('udp', 45000, None, False),  # unknown range: never guess a socket away
])
def test_is_ephemeral(protocol, port, port_range, expected):
    assert gather.is_ephemeral(protocol, port, port_range) is expected


def test_unknown_backend_is_refused():
    with pytest.raises(gather.GatherError) as caught:
        gather.gather_listening_sockets(backend='magic')
    assert 'auto, netlink, procfs, psutil' in str(caught.value)


def test_no_protocol_is_refused_not_an_empty_success():
    with pytest.raises(gather.GatherError) as caught:
        gather.gather_listening_sockets(protocols=[])
    assert 'no protocol' in str(caught.value)


def test_read_port_list_skips_empty_items_and_reads_on():
    assert gather.read_port_list('8080,,9000-9001, 22\n') == {8080, 9000, 9001, 22}


def test_ephemeral_ports_without_reserved_ports_file_reserves_none(tmp_path):
    (tmp_path / 'ip_local_port_range').write_text('32768\t60999\n')
    assert gather.ephemeral_ports(str(tmp_path)) == (32768, 60999, set())
    assert gather.is_ephemeral('udp', 40000, gather.ephemeral_ports(str(tmp_path))) is True


def test_ephemeral_ports_reads_both_files_and_none_without_a_range(tmp_path):
    assert gather.ephemeral_ports(str(tmp_path)) is None
    (tmp_path / 'ip_local_port_range').write_text('1024 2000\n')
    (tmp_path / 'ip_local_reserved_ports').write_text('1500-1501\n')
    assert gather.ephemeral_ports(str(tmp_path)) == (1024, 2000, {1500, 1501})
    (tmp_path / 'ip_local_reserved_ports').write_text('junk\n')  # unreadable reserved ports: none reserved
    assert gather.ephemeral_ports(str(tmp_path)) == (1024, 2000, set())


@pytest.mark.parametrize('tables, expected', [
    ((), False), (('tcp6',), True), (('udp6',), True), (('tcp6', 'udp6'), True), (('tcp', 'udp'), False)])
def test_ipv6_is_available_when_either_ipv6_table_exists(tmp_path, tables, expected):
    for name in tables:
        (tmp_path / name).write_text('')
    assert gather._ipv6_available(str(tmp_path)) is expected


# -- rule: psutil's connections that are listening sockets (its list holds every connection) -----------------

class _Addr(tuple):
    """psutil's addr(ip, port)."""

    def __new__(cls, ip, port):
        value = tuple.__new__(cls, (ip, port))
        value.ip, value.port = ip, port
        return value


class _Conn(object):
    """psutil's sconn: fd, family, type, laddr, raddr, status, pid."""

    def __init__(self, kind, family=socket.AF_INET, laddr=('0.0.0.0', 856), raddr=(), status='LISTEN', pid=7):
        self.type, self.family, self.status, self.pid = kind, family, status, pid
        self.laddr = _Addr(*laddr) if laddr else ()
        self.raddr = _Addr(*raddr) if raddr else ()


TCP, UDP = socket.SOCK_STREAM, socket.SOCK_DGRAM


@pytest.mark.parametrize('conn, protocols, expected', [
    (_Conn(TCP), ('tcp', 'udp'), ('tcp', 'ipv4', '0.0.0.0', 856)),
    (_Conn(TCP, socket.AF_INET6, ('::', 22)), ('tcp',), ('tcp', 'ipv6', '::', 22)),
    (_Conn(TCP, status='ESTABLISHED', raddr=('10.0.0.1', 5000)), ('tcp', 'udp'), None),  # a connection
    (_Conn(TCP, status='NONE'), ('tcp',), None),  # a TCP socket only bound: not listening
    (_Conn(UDP, laddr=('0.0.0.0', 53)), ('tcp', 'udp'), ('udp', 'ipv4', '0.0.0.0', 53)),
    (_Conn(UDP, socket.AF_INET6, ('::1', 53)), ('udp',), ('udp', 'ipv6', '::1', 53)),
    (_Conn(UDP, raddr=('10.0.0.1', 53), status='NONE'), ('udp',), None),  # connected: a client
    (_Conn(UDP, laddr=()), ('udp',), None),  # not bound to an address
    (_Conn(TCP, laddr=()), ('tcp',), None),
    (_Conn(TCP), ('udp',), None),  # a protocol not asked
    (_Conn(UDP), ('tcp',), None),
    (_Conn(socket.SOCK_RAW), ('tcp', 'udp'), None),
])
def test_psutil_listening_key(conn, protocols, expected):
    assert gather.psutil_listening_key(conn, protocols, 'LISTEN') == expected
