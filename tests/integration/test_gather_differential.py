"""Differential test: random socket sets in a namespace; every backend must agree with every other and with ss.

The seed is printed; rerun one with PW_DIFF_SEED=<seed>. PW_DIFF_ROUNDS sets the number of rounds.
"""

import os
import random
import subprocess

import pytest

from tests.helpers.gather import gather_in
from tests.helpers.netns import Namespace, have_netns
from tests.helpers.ss import parse_ss

pytestmark = [pytest.mark.netns, pytest.mark.slow,
              pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]

ROUNDS = int(os.environ.get('PW_DIFF_ROUNDS', '25'))
SEED = int(os.environ.get('PW_DIFF_SEED', random.SystemRandom().randrange(2 ** 32)))
V4_ADDRESSES = ['0.0.0.0', '127.0.0.1', '127.0.0.2', '127.13.7.9']
V6_ADDRESSES = ['::', '::1', '::ffff:127.0.0.1']


def random_holders(rng):
    """A few holder processes with random sockets; ports never collide except in SO_REUSEPORT groups."""
    ports = iter(rng.sample(range(1, 65536), 200))
    holders = []
    for index in range(rng.randint(1, 4)):
        sockets = []
        for _socket in range(rng.randint(0, 12)):
            protocol = rng.choice(['tcp', 'tcp', 'udp'])
            address = rng.choice(V4_ADDRESSES + V6_ADDRESSES)
            spec = {'protocol': protocol, 'address': address, 'port': next(ports)}
            if address == '::':
                spec['v6only'] = rng.random() < 0.5
            roll = rng.random()
            if roll < 0.15:  # a SO_REUSEPORT group: two sockets on one address and port
                spec['reuseport'] = True
                sockets.append(dict(spec))
            elif roll < 0.25 and protocol == 'udp' and address not in ('0.0.0.0', '::'):
                spec['connect'] = True  # a connected UDP client, not a listener
            sockets.append(spec)
        holders.append({'name': 'pw-diff%d' % index, 'fork': rng.choice([0, 0, 1, 2]), 'sockets': sockets})
    return holders


def by_inode(result):
    return {entry['inode']: (entry['protocol'], entry['family'], entry['address'], entry['port'], entry['v6only'],
                             tuple(sorted(proc['pid'] for proc in entry['processes'])))
            for entry in result['sockets']}


def test_backends_agree_with_each_other_and_with_ss():
    print('PW_DIFF_SEED=%d' % SEED)
    rng = random.Random(SEED)
    checked = 0
    for round_number in range(ROUNDS):
        with Namespace() as ns:
            holders = [ns.listen(spec) for spec in random_holders(rng)]
            expected_count = sum(1 for holder in holders for sock in holder.sockets if not sock['connect'])
            results = dict((backend, gather_in(ns, backend)[1]) for backend in ('auto', 'netlink', 'procfs', 'psutil'))
            ss = ns.run(['ss', '-H', '-ltnupe'])
            assert ss.returncode == 0, ss.stderr
        where = 'seed %d round %d' % (SEED, round_number)
        reference = {entry['inode']: (entry['protocol'], entry['family'], entry['address'], entry['port'],
                                      entry['v6only'], entry['pids'])
                     for entry in parse_ss(ss.stdout)}
        assert len(reference) == expected_count, where
        # netlink and auto agree with ss on everything, v6only and inode included.
        assert by_inode(results['netlink']) == reference, where
        assert by_inode(results['auto']) == reference, where
        # procfs agrees with everything but v6only, which /proc/net cannot show.
        without_v6only = {inode: key[:4] + (None,) + key[5:] for inode, key in reference.items()}
        assert by_inode(results['procfs']) == without_v6only, where
        # psutil: the same (protocol, family, address, port) set; of the pids, one per socket.
        merged = {}
        for key in reference.values():
            merged.setdefault(key[:4], set()).update(key[5])
        psutil_view = {(e['protocol'], e['family'], e['address'], e['port']): [p['pid'] for p in e['processes']]
                       for e in results['psutil']['sockets']}
        assert set(psutil_view) == set(merged), where
        for key, pids in psutil_view.items():
            assert pids and set(pids) <= merged[key], where
        for result in results.values():
            assert result['coverage']['complete'], (where, result['coverage'])
        checked += len(reference)
    assert checked > ROUNDS  # the rounds really held sockets


def test_ss_parser_reads_every_address_form():
    with Namespace() as ns:
        ns.listen({'sockets': [
            {'protocol': 'tcp', 'address': '::', 'port': 858, 'v6only': False},
            {'protocol': 'tcp', 'address': '::', 'port': 855, 'v6only': True},
            {'protocol': 'udp', 'address': '::ffff:127.0.0.1', 'port': 859},
            {'protocol': 'tcp', 'address': '127.0.0.1', 'port': 856},
        ]})
        output = subprocess.run(ns.command(['ss', '-H', '-ltnupe']), capture_output=True, text=True, check=False).stdout
    got = {(e['protocol'], e['family'], e['address'], e['port'], e['v6only']) for e in parse_ss(output)}
    assert got == {('tcp', 'ipv6', '::', 858, False), ('tcp', 'ipv6', '::', 855, True),
                   ('udp', 'ipv6', '::ffff:127.0.0.1', 859, False), ('tcp', 'ipv4', '127.0.0.1', 856, None)}
