"""The fast path of parse_iptables_save (the compiled match for the lines Docker writes) against the general token
reader, over many generated and real-shaped lines: the same exposures (keys, values, order), the same unreachable
chains, the same error for a line neither can read."""

import json
import random

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_nat as gn

ADDRESSES = ['172.17.0.2/32', '192.0.2.0/24', '0.0.0.0/0', '127.0.0.0/8', '10.0.0.1', '10.0.0.1/31', '010.0.0.1/32',
             '::1/128', '2001:db8::/32', '2001:db8::2', 'fe80::1/64', 'not-an-address', '0/0']
INTERFACES = ['docker0', 'br-1a2b3c4d5e6f', 'eth0.100', 'veth+', 'lo', '"docker0"', "'q'", 'a\\b', '-x', 'c!d']
PROTOCOLS = ['tcp', 'udp', 'sctp', 'all', '0', 'icmp', 'TCP', '6']
PORTS = ['80', '0856', '0', '65535', '65536', '70000', '1000:2000', '2000:1000', ':80', '80:', '53,5000:5010',
         '\u0968\u0966', '8o', '']
DNAT_TARGETS = ['172.17.0.2:80', '172.17.0.2', '172.17.0.2-172.17.0.9:80', '172.17.0.2:8000-8010', '172.17.0.2:00080',
                '[2001:db8::2]:80', '2001:db8::2', '[2001:db8::2]', '999.17.0.2:80', '172.017.0.2:80',
                '172.17.0.2:99999', ':80', '172.17.0.2:', '1.2.3.4:80-70', '"172.17.0.2:80"']
MATCHES = ['-m tcp', '-m udp', '-m addrtype --dst-type LOCAL', '-m addrtype ! --dst-type LOCAL',
           '-m conntrack --ctstate NEW', '-m mark --mark 0x1', '-m comment --comment plain',
           '-m comment --comment "a \\"quoted\\" one"', "-m comment --comment 'single quoted'",
           '-m comment --comment "default/kubernetes:https cluster IP"', '-m statistic --mode random --probability 0.5',
           '-m set --match-set docker dst', '-m unknown-thing --weird', '-s 10.0.0.0/8', '! -s 10.0.0.1/32',
           '--sport 1024:65535', '-f', '-m physdev --physdev-in veth0']
TARGETS = ['-j RETURN', '-j ACCEPT', '-j DOCKER', '-j KUBE-SVC-NPX46M4PTMTKRN6Y', '-j MASQUERADE', '-g DOCKER',
           '-j REDIRECT --to-ports 8080', '-j REDIRECT --to-ports 8000-8010', '-j REDIRECT', '-j REDIRECT --to-ports x',
           '-j NETMAP --to 10.0.0.0/24', '-j DNAT', '-j MARK --set-xmark 0x4000/0x4000', '']


def _pick(rng, values):
    return rng.choice(values)


def docker_line(rng):
    """A line in Docker's shape, often exactly it, sometimes off by one detail."""
    if rng.random() < 0.5:
        return exact_docker_line(rng)
    parts = ['-A', _pick(rng, ['DOCKER', 'PREROUTING', 'OUTPUT', 'DOCKER-INGRESS', 'UNREACHED'])]
    if rng.random() < 0.4:
        parts += ['-d', _pick(rng, ADDRESSES)] if rng.random() < 0.8 else ['!', '-d', _pick(rng, ADDRESSES)]
    if rng.random() < 0.7:
        parts += (['!'] if rng.random() < 0.5 else []) + [_pick(rng, ['-i', '-i', '-o']), _pick(rng, INTERFACES)]
    protocol = _pick(rng, ['tcp', 'udp', 'tcp', 'udp', 'sctp'])
    parts += ['-p', protocol, '-m', _pick(rng, [protocol, 'tcp', 'udp', 'multiport'])]
    parts += [_pick(rng, ['--dport', '--dport', '--dport', '--dports', '--destination-port']), _pick(rng, PORTS[:8])]
    if rng.random() < 0.1:
        parts += _pick(rng, MATCHES).split(' ')
    parts += ['-j', 'DNAT', '--to-destination', _pick(rng, DNAT_TARGETS[:6] + ['172.%d.%d.%d:%d' % (
        rng.randrange(16, 32), rng.randrange(256), rng.randrange(256), rng.randrange(1, 65536))])]
    if rng.random() < 0.05:
        parts.append(_pick(rng, ['--random', '--persistent']))
    line = ' '.join(parts)
    if rng.random() < 0.03:
        line = line.replace(' ', '  ', 1)
    if rng.random() < 0.02:
        line = line + ' '
    return line


def exact_docker_line(rng):
    """A line exactly in the shape of Docker's, its values drawn at random (valid or not)."""
    parts = ['-A', _pick(rng, ['DOCKER', 'PREROUTING', 'OUTPUT', 'DOCKER-INGRESS', 'UNREACHED'])]
    if rng.random() < 0.4:
        parts += ['-d', _pick(rng, ['172.17.0.2/32', '127.0.0.1/32', '192.0.2.0/24', '0.0.0.0/0', '10.0.0.1',
                                    '::1/128', '010.0.0.1/32', '10.0.0.1/33'])]
    if rng.random() < 0.8:
        parts += ['!'] if rng.random() < 0.6 else []
        parts += ['-i', _pick(rng, ['docker0', 'br-1a2b3c4d5e6f', 'eth0.100', 'veth+', 'c!d'])]
    protocol = _pick(rng, ['tcp', 'udp'])
    parts += ['-p', protocol, '-m', _pick(rng, [protocol, protocol, 'tcp', 'udp']), '--dport',
              _pick(rng, ['%d' % rng.randrange(1, 65536)] * 6 + ['0', '0856', '65535', '65536', '99999'])]
    address = '172.%d.%d.%d' % (rng.randrange(16, 32), rng.randrange(256), rng.randrange(256))
    if rng.random() < 0.05:
        address = _pick(rng, ['172.017.0.2', '256.1.1.1', '1.2.3', '0.0.0.0'])
    port = _pick(rng, ['%d' % rng.randrange(1, 65536)] * 8 + ['0', '00080', '65536', '99999'])
    parts += ['-j', 'DNAT', '--to-destination', '%s:%s' % (address, port)]
    return ' '.join(parts)


def any_line(rng):
    """A line of any shape: negations, interfaces, masks, ranges, multiport, REDIRECT, quotes, ip6, unknown matches."""
    parts = ['-A', _pick(rng, ['DOCKER', 'PREROUTING', 'OUTPUT', 'KUBE-SERVICES', 'UNREACHED'])]
    for _match in range(rng.randrange(0, 5)):
        kind = rng.randrange(6)
        negate = ['!'] if rng.random() < 0.2 else []
        if kind == 0:
            parts += negate + ['-d', _pick(rng, ADDRESSES)]
        elif kind == 1:
            parts += negate + [_pick(rng, ['-i', '-o', '--in-interface']), _pick(rng, INTERFACES)]
        elif kind == 2:
            parts += negate + [_pick(rng, ['-p', '--protocol']), _pick(rng, PROTOCOLS)]
        elif kind == 3:
            parts += negate + [_pick(rng, ['--dport', '--dports', '--destination-port']), _pick(rng, PORTS)]
        elif kind == 4:
            parts += ['-m', 'multiport'] + negate + ['--dports', _pick(rng, PORTS)]
        else:
            parts += _pick(rng, MATCHES).split(' ')
    if rng.random() < 0.5:
        parts += ['-j', 'DNAT', '--to-destination', _pick(rng, DNAT_TARGETS)]
    else:
        parts += _pick(rng, TARGETS).split(' ')
    return ' '.join(part for part in parts if part)


REAL_LINES = [
    '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
    '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER',
    '-A DOCKER -i docker0 -j RETURN',
    '-A DOCKER ! -i docker0 -p tcp -m tcp --dport 20000 -j DNAT --to-destination 172.17.0.2:80',
    '-A DOCKER ! -i br-5f1e2a3b4c5d -p udp -m udp --dport 5353 -j DNAT --to-destination 172.18.0.4:53',
    '-A DOCKER -d 127.0.0.1/32 ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80',
    '-A DOCKER -d 192.0.2.10/32 ! -i docker0 -p tcp -m tcp --dport 443 -j DNAT --to-destination 172.17.0.3:8443',
    '-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8000:8010 -j DNAT --to-destination 172.17.0.5:8000-8010',
    '-A DOCKER ! -i docker0 -p tcp -m tcp --dport 22 -j DNAT --to-destination [2001:db8::2]:22',
    '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"'
    ' -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j KUBE-EXT-ABCDEF',
    '-A KUBE-SEP-XYZ -p tcp -m comment --comment "default/kubernetes:https" -m tcp -j DNAT --to-destination 192.168.49.2:8443',
    '-A PREROUTING -p tcp -m multiport --dports 80,443 -j REDIRECT --to-ports 3128',
    '-A PREROUTING -i eth0 -p udp -m udp --dport 53 -j REDIRECT --to-ports 5353',
    '-A PREROUTING -p tcp -m tcp ! --dport 22 -j DNAT --to-destination 10.0.0.1:80',
]


def table(lines, hooks=True):
    chains = sorted(set(line.split()[1] for line in lines if len(line.split()) > 1) | {'DOCKER', 'UNREACHED'})
    head = ['# Generated by iptables-nft-save v1.8.9', '*filter', ':INPUT ACCEPT [0:0]', '-A INPUT -j ACCEPT', 'COMMIT',
            '*nat', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]']
    head += [':%s - [0:0]' % name for name in chains if name not in ('PREROUTING', 'OUTPUT')]
    if hooks:
        head += ['-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
                 '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER', '-A PREROUTING -j KUBE-SERVICES',
                 '-A OUTPUT -p tcp -j DOCKER-INGRESS']
    return '\n'.join(head + list(lines) + ['COMMIT', '']) + '\n'


def outcome(text, family):
    """What parse_iptables_save gives, as text that holds every key, value and order, or the error it raises."""
    try:
        exposures, unreachable, found = gn.parse_iptables_save(text, family, 'iptables-nft')
    except gn.NatParseError as exc:
        return 'error: %s' % exc
    return json.dumps([exposures, unreachable, found])


def general(monkeypatch, text, family):
    """The same text read by the general token reader alone (the fast path turned off)."""
    with monkeypatch.context() as patch:
        patch.setattr(gn, '_ipt_publish', lambda line, family: None)
        return outcome(text, family)


def lines_of(seed, count):
    rng = random.Random(seed)
    return [docker_line(rng) if rng.random() < 0.6 else any_line(rng) for _line in range(count)]


@pytest.mark.parametrize('family', ['ipv4', 'ipv6'])
def test_each_line_reads_the_same_through_the_fast_path_and_the_general_reader(monkeypatch, family):
    fast_taken = 0
    for line in REAL_LINES + lines_of(1234, 3000):
        text = table([line])
        expected = general(monkeypatch, text, family)
        assert outcome(text, family) == expected, line
        try:
            fast_taken += gn._ipt_publish(line.strip(), family) is not None
        except ValueError:  # a line the fast path takes and refuses, as the general reader does (checked above)
            fast_taken += 1
    if family == 'ipv4':
        assert fast_taken > 500  # the generator does reach the fast path, not only its near misses


@pytest.mark.parametrize('family', ['ipv4', 'ipv6'])
def test_whole_tables_read_the_same_through_the_fast_path_and_the_general_reader(monkeypatch, family):
    readable = [line for line in REAL_LINES + lines_of(99, 3000)
                if not general(monkeypatch, table([line]), family).startswith('error')]
    assert len(readable) > 500
    for seed in range(4):
        lines = list(readable)
        random.Random(seed).shuffle(lines)
        text = table(lines, hooks=seed != 3)
        assert outcome(text, family) == general(monkeypatch, text, family)


def test_the_benchmark_table_reads_the_same_through_both(monkeypatch):
    lines = ['-A DOCKER ! -i docker0 -p tcp -m tcp --dport %d -j DNAT --to-destination 172.17.%d.%d:80'
             % (20000 + index, index // 250, index % 250 + 2) for index in range(2000)]
    text = table(['-A DOCKER -i docker0 -j RETURN'] + lines)
    assert outcome(text, 'ipv4') == general(monkeypatch, text, 'ipv4')
    assert len(json.loads(outcome(text, 'ipv4'))[0]) == 2000
