"""The probe of a published port: what a TCP connect saw, and where to probe a host."""

import socket
import threading

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import remediate_probe as rpr


def test_probe_tcp_tells_open_from_refused():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(('127.0.0.1', 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        assert rpr.probe_tcp('127.0.0.1', port, 2.0) == 'open'
    finally:
        server.close()
    assert rpr.probe_tcp('127.0.0.1', port, 2.0) == 'refused'


@pytest.mark.parametrize('values, fallback, expected, why', [
    (['192.0.2.1', '2001:db8::1'], 'ignored', {'ipv4': '192.0.2.1', 'ipv6': '2001:db8::1'}, None),
    (['[2001:db8::1]'], None, {'ipv6': '2001:db8::1'}, None),
    (['not-an-address'], None, {}, "'not-an-address' is not an IP address"),
    ([], '198.51.100.7', {'ipv4': '198.51.100.7'}, None),
    ([], None, {}, 'no probe address is known'),
    ([], 'no-such-host.invalid', {}, 'does not resolve here'),
])
def test_probe_addresses(values, fallback, expected, why):
    found, reason = rpr.probe_addresses(values, fallback)
    assert found == expected
    assert (reason is None) if why is None else (why in reason)


@pytest.mark.parametrize('block, expected', [
    ({'protocol': 'tcp', 'port': 856, 'family': 'ipv4', 'address': None}, ('192.0.2.1', None)),
    ({'protocol': 'tcp', 'port': 856, 'family': 'ipv4', 'address': '203.0.113.9'}, ('203.0.113.9', None)),
    ({'protocol': 'tcp', 'port': 856, 'family': 'ipv6', 'address': None}, (None, 'no ipv6 probe address')),
    ({'protocol': 'udp', 'port': 857, 'family': 'ipv4', 'address': None}, ('192.0.2.1', None)),
    ({'protocol': 'udp', 'port': 857, 'family': 'ipv6', 'address': None}, (None, 'no ipv6 probe address')),
])
def test_probe_target(block, expected):
    address, why = rpr.probe_target(block, {'ipv4': '192.0.2.1'}, None)
    assert address == expected[0]
    assert (why is None) if expected[1] is None else (expected[1] in why)


@pytest.mark.parametrize('values, fallback', [(['127.0.0.1'], None), (['::1'], None), ([], 'localhost'),
                                              ([], '127.0.0.1'), (['::ffff:127.0.0.1'], None)])
def test_a_loopback_address_is_never_a_view_from_outside(values, fallback):
    found, reason = rpr.probe_addresses(values, fallback)
    assert found == {} and 'loopback' in reason


def test_probe_many_answers_in_the_order_asked_for_both_protocols():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(('127.0.0.1', 0))
    server.listen(4)
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(('127.0.0.1', 0))  # bound, never listening: refused
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(('127.0.0.1', 0))
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(('127.0.0.1', 0))  # takes the datagram, never answers: silence, as a drop looks
    gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    gone.bind(('127.0.0.1', 0))
    gone_port = gone.getsockname()[1]
    gone.close()  # nothing there: the kernel answers ICMP port unreachable

    def answer():
        data, peer = echo.recvfrom(100)
        echo.sendto(data, peer)

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        targets = [('tcp', '127.0.0.1', closed.getsockname()[1]), ('tcp', '127.0.0.1', server.getsockname()[1]),
                   ('udp', '127.0.0.1', echo.getsockname()[1]), ('udp', '127.0.0.1', silent.getsockname()[1]),
                   ('udp', '127.0.0.1', gone_port)]
        assert rpr.probe_many(targets, 0.5) == ['refused', 'open', 'open', 'blocked', 'refused']
        assert silent.recv(100) == rpr.PROBE_DATAGRAM  # the silent port did get the datagram
        assert rpr.probe_many([], 2.0) == []
    finally:
        thread.join()
        for sock in (server, closed, echo, silent):
            sock.close()
