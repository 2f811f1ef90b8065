"""Attack: a gather with more distinct addresses than the evaluation's caches hold, to grow them or to poison a verdict.

The evaluation remembers, per address, its family, its bind class, whether it is IPv4-mapped, and which
(protocol, family, address) endpoints it found valid. A hostile host can send any number of distinct addresses. Each
cache must stay at its bound (``_CACHE_LIMIT``, made small here so that the flood is quick) and every verdict after a
cache was emptied must be the one a fresh evaluation gives: an address once judged loopback stays loopback, a
malformed address is still refused.
"""

import datetime

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev

TODAY = datetime.date(2027, 1, 20)
LIMIT = 16
CACHES = ('_ENDPOINTS', '_FAMILY_OF', '_BIND_CACHE', '_MAPPED_CACHE')
POLICY = ev.compile_policy({'policy_version': 1, 'name': 'flood', 'rules': [
    {'id': 'loopback-only', 'match': {'ports': [9000]}, 'expect': {'bind': 'loopback'}, 'severity': 'high'},
    {'id': 'no-v4-on-9001', 'match': {'ports': [9001], 'families': ['ipv4']}, 'expect': 'closed', 'severity': 'high'},
]})


@pytest.fixture(autouse=True)
def small_caches(monkeypatch):
    monkeypatch.setattr(ev, '_CACHE_LIMIT', LIMIT)
    for name in CACHES:
        getattr(ev, name).clear()
    yield
    for name in CACHES:
        getattr(ev, name).clear()


def sock(address, port, inode):
    family = 'ipv6' if ':' in address else 'ipv4'
    return {'protocol': 'tcp', 'family': family, 'address': address, 'port': port,
            'v6only': False if family == 'ipv6' else None, 'ephemeral': False, 'inode': inode, 'processes': []}


def evaluate(sockets):
    return ev.evaluate_host({'sockets': sockets, 'coverage': {'complete': True, 'errors': []}}, POLICY, 'h', [], TODAY)


def flood(count):
    """count sockets on distinct addresses: loopback, specific, IPv4-mapped IPv6 (which IPv4 rules reach) and plain
    IPv6, on the two ports the rules are about."""
    sockets = []
    for index in range(count):
        kind = index % 4
        address = ('127.0.%d.%d' % (index // 250, index % 250 + 1), '10.9.%d.%d' % (index // 250, index % 250 + 1),
                   '::ffff:10.8.%d.%d' % (index // 250, index % 250 + 1), 'fd00::%x' % (index + 1))[kind]
        sockets.append(sock(address, 9000 if kind < 2 else 9001, index + 1))
    return sockets


def expected(entry):
    """The finding each socket must have, whatever the caches held."""
    if entry['port'] == 9000:
        return None if entry['address'].startswith('127.') else 'loopback-only'
    return 'no-v4-on-9001' if entry['address'].startswith('::ffff:') else None


def test_a_flood_of_addresses_keeps_every_cache_at_its_bound_and_every_verdict_true():
    # One new address at a time, so that each cache is looked at after every address it may have added.
    for count in range(1, 10 * LIMIT):
        evaluate(flood(count))
        for name in CACHES:
            assert len(getattr(ev, name)) <= LIMIT, (name, count)
    sockets = flood(10 * LIMIT)
    result = evaluate(sockets)
    assert result['status'] == 'drift' and result['reasons'] == []
    found = sorted((finding['rule'], finding['address']) for finding in result['findings'])
    assert found == sorted((expected(entry), entry['address']) for entry in sockets if expected(entry))


def test_after_a_flood_the_first_addresses_are_judged_afresh_and_alike():
    sockets = flood(10 * LIMIT)
    first = evaluate(sockets[:8])
    evaluate(sockets)  # every cache emptied at least once since
    again = evaluate(sockets[:8])
    assert again['findings'] == first['findings'] and again['status'] == first['status']


def test_a_malformed_address_is_refused_even_after_its_family_was_forgotten():
    bad = dict(sock('10.0.0.1', 9000, 1), address='10.0.0.999')
    reason = ('malformed gather result: sockets[%d].address: expected an IPv4 address, got \'10.0.0.999\'')
    assert evaluate([bad])['reasons'] == [reason % 0]
    sockets = flood(10 * LIMIT)
    assert evaluate(sockets)['reasons'] == []
    assert evaluate(sockets + [dict(bad, inode=10 ** 6)])['reasons'] == [reason % len(sockets)]
