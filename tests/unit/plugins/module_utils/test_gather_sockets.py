"""Unit tests: the pure helpers of the gather step."""

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
