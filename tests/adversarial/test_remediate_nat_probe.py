"""Attacks on the verification of a published port: a block present is not a port closed.

Each test runs what port_remediate does for a published port, with the real pieces: the probe of
remediate_probe from a peer namespace before the block, the real port_block module (``published``) in the host,
whatever the attacker does, the probe again, and remediate_plan's verdict on a finding of the port. The attacker
makes the block useless while it stays in place, or makes the probe meaningless:

- the probe cannot reach the port before the block (the peer has no way in): never ``remediated``;
- a second DNAT of the port in a nat chain at priority -190, "before" the block's -150: the kernel runs every nat
  chain in its one nat hook at -100, so the block still drops first (the design holds, and the test says so);
- the packet rewritten by hand in the raw hook (-300), before the block: the block stays in place, traffic arrives;
- the block table is deleted between the block and the probe after it;
- an ``accept`` in an earlier (raw) hook does not undo a drop: the port is closed and said so.

Between the block and the probe after it, and again after that probe, the packets the block's drop has counted are
read (port_block's answer, then ``state: read``), as port_remediate reads them. The count is what lets a second run
(the block already in place, nothing reachable before) and a UDP port be verified; the attacks on it:

- the probe stopped on its way (the peer's own firewall), so the count does not move: never ``remediated``;
- another blocked port's count moving meanwhile (a flood to 857) proves nothing about 856;
- the table rewritten between the two readings (its counts start again): never ``remediated``.
"""

import json
import shutil
import sys

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import remediate_plan as rp
from tests.helpers import nat
from tests.helpers.netns import Namespace, have_netns
from tests.integration.test_port_block import run_module
from tests.unit.plugins.module_utils.test_remediate_exposures import audit, published

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not have_netns(), reason='needs root and ip netns'),
    pytest.mark.skipif(shutil.which('nft') is None, reason='needs nft (nftables)'),
]

PROBE = '''
import json, sys
from ansible_collections.portwarden.compliance.plugins.module_utils.remediate_probe import PROBES
print(json.dumps(PROBES[sys.argv[3]](sys.argv[1], int(sys.argv[2]), 1.0)))
'''
SECOND_DNAT = '''
table ip pwnr_sneaky {
  chain pre {
    type nat hook prerouting priority -190; policy accept;
    fib daddr type local tcp dport 856 dnat to 172.17.0.2:80
  }
}
'''
# Published without NAT: the packet's address and port rewritten by hand before conntrack (raw, -300), and the
# answer rewritten back on its way out.
RAW_REWRITE = '''
table ip pwnr_rewrite {
  chain pre {
    type filter hook prerouting priority raw; policy accept;
    ip daddr 192.0.2.1 tcp dport 856 ip daddr set 172.17.0.2 tcp dport set 80 notrack
  }
  chain post {
    type filter hook postrouting priority 0; policy accept;
    ip saddr 172.17.0.2 tcp sport 80 ip saddr set 192.0.2.1 tcp sport set 856
  }
}
'''
EARLY_ACCEPT = '''
table inet pwnr_raw {
  chain pre {
    type filter hook prerouting priority raw; policy accept;
    tcp dport 856 accept
  }
}
'''


def probe(peer, address=nat.Peer.HOST_ADDRESS, port=856, protocol='tcp'):
    proc = peer.namespace.run([sys.executable, '-c', PROBE, address, str(port), protocol], check=True)
    return json.loads(proc.stdout)


def counts(answer, finding):
    """The packets counted by the published block of ``finding`` in a port_block answer, or None."""
    key = rp.block_key(rp.published_block_for(finding))
    return next((entry['packets'] for entry in (answer.get('published') or {}).get('counters') or []
                 if rp.block_key(dict(entry, where='host')) == key), None)


def remediate(host, peer, attack_before=None, attack_between=None, attack_after=None, finding=None, also=()):
    """The finding (tcp 856 unless given) after remediation as port_remediate would judge it, and what the probes
    and the counts saw. ``also`` are more published findings blocked in the same call."""
    finding = finding or published()
    if attack_before:
        attack_before()
    block = rp.published_block_for(finding)
    seen = {'address': nat.Peer.HOST_ADDRESS, 'before': probe(peer, port=finding['port'], protocol=finding['protocol']),
            'after': None}
    blocks = [block] + [rp.published_block_for(other) for other in also]
    rc, result = run_module(host, {'published': [rp.module_block(item) for item in blocks]})
    assert rc == 0 and not result.get('failed'), result
    seen['counter_before'] = counts(result, finding)
    if attack_between:
        attack_between()
    seen['after'] = probe(peer, port=finding['port'], protocol=finding['protocol'])
    if attack_after:
        attack_after()
    rc, read = run_module(host, {'state': 'read'})
    assert rc == 0 and not read.get('failed') and not read['changed'], read
    seen['counter_after'] = counts(read, finding)
    before = audit(finding)
    rp.plan_remediation(before, {}, 'firewall')
    rp.apply_outcomes(before, {'blocks': {}, 'services': {}, 'processes': {},
                               'published': {rp.block_key(block): (rp.APPLIED, 'nftables block added')}})
    live = [dict(item, where='host') for item in result['published']['blocks']]
    final = rp.verify_remediation(before, audit(dict(finding)), [], [], {rp.block_key(block): seen}, live)
    return final['findings'][0], seen


def cut(peer, port=856):
    """The peer's own firewall drops what it sends to ``port``: its probes see silence, whatever the host does."""
    nat.nft(peer.namespace, 'table inet pwnr_out {\n chain out {\n  type filter hook output priority 0;\n'
                            '  tcp dport %d drop\n  udp dport %d drop\n }\n}\n' % (port, port))


@pytest.fixture
def site():
    with Namespace() as host, nat.Container(host) as container, nat.Peer(host) as peer:
        web = container.namespace.listen([{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 80}])
        nat.apply(host, nat.docker_rules(856, '172.17.0.2:80'))
        yield host, peer, web


def test_the_honest_case_is_remediated(site):
    host, peer, web = site
    finding, seen = remediate(host, peer)
    assert (seen['before'], seen['after']) == ('open', 'blocked')
    assert seen['counter_before'] == 0 and seen['counter_after'] >= 1  # the probe's SYNs, dropped by the block
    assert finding['status'] == 'remediated' and web.proc.poll() is None
    assert "the probe's packets were dropped by portwarden" in finding['remediation']['reason']


def test_a_probe_that_cannot_reach_the_port_before_the_block_does_not_make_it_remediated(site):
    host, peer, _web = site

    finding, seen = remediate(host, peer, attack_before=lambda: cut(peer))
    assert (seen['before'], seen['after']) == ('blocked', 'blocked')
    assert seen['counter_before'] == seen['counter_after'] == 0  # the probe never reached the host
    assert finding['status'] == 'drift' and finding['remediation']['status'] == rp.NOT_VERIFIED
    assert "the probe's packets never reached the block" in finding['remediation']['reason']


def test_a_second_dnat_at_an_earlier_nat_priority_does_not_get_past_the_block(site):
    host, peer, _web = site
    finding, seen = remediate(host, peer, attack_before=lambda: nat.nft(host, SECOND_DNAT))
    # Every nat chain runs inside the kernel's one nat hook (dstnat, -100), ordered among themselves by their
    # priority: a nat chain at -190 still rewrites after the block at -150 has dropped the packet.
    assert (seen['before'], seen['after']) == ('open', 'blocked') and seen['counter_after'] > seen['counter_before']
    assert finding['status'] == 'remediated'


def test_a_stateless_rewrite_in_the_raw_hook_keeps_the_port_reachable_and_it_stays_drift(site):
    host, peer, _web = site
    finding, seen = remediate(host, peer, attack_before=lambda: nat.nft(host, RAW_REWRITE))
    assert seen['after'] == 'open'  # rewritten at raw (-300) to 172.17.0.2:80: the block at -150 never sees 856
    assert 'portwarden_published' in host.run(['nft', 'list', 'tables']).stdout  # the block is there, and useless
    assert finding['status'] == 'drift' and finding['remediation']['status'] == rp.NOT_VERIFIED
    assert 'traffic still arrives' in finding['remediation']['reason']


def test_the_block_table_deleted_between_the_block_and_the_probe_stays_drift(site):
    host, peer, _web = site

    def delete():
        host.run(['nft', 'delete', 'table', 'inet', 'portwarden_published'], check=True)

    finding, seen = remediate(host, peer, attack_between=delete)
    assert (seen['before'], seen['after']) == ('open', 'open') and seen['counter_after'] is None
    assert finding['status'] == 'drift' and finding['remediation']['status'] == rp.NOT_VERIFIED


def test_an_accept_in_an_earlier_hook_does_not_reopen_the_port(site):
    host, peer, _web = site
    finding, seen = remediate(host, peer, attack_before=lambda: nat.nft(host, EARLY_ACCEPT))
    assert seen['after'] == 'blocked'  # an accept ends only its own base chain; the drop at -150 still comes
    assert finding['status'] == 'remediated'


def test_a_second_run_with_the_block_already_in_place_is_verified_by_the_count(site):
    host, peer, web = site
    first, _seen = remediate(host, peer)
    assert first['status'] == 'remediated'
    finding, seen = remediate(host, peer)  # nothing reachable before: only the count can tell
    assert (seen['before'], seen['after']) == ('blocked', 'blocked')
    assert seen['counter_after'] > seen['counter_before'] >= 1  # the first probe of this run was counted before it
    assert finding['status'] == 'remediated' and web.proc.poll() is None


def test_a_published_udp_port_is_verified_by_the_count(site):
    host, peer, _web = site
    nat.apply(host, [['iptables-nft', '-t', 'nat', '-A', 'DOCKER', '!', '-i', 'docker0', '-p', 'udp', '-m', 'udp',
                      '--dport', '857', '-j', 'DNAT', '--to-destination', '172.17.0.2:53']])
    udp = published(protocol='udp', port=857)
    finding, seen = remediate(host, peer, finding=udp)
    # Nothing answers on 53 in the container: the kernel's port unreachable comes back before the block, silence
    # after it, and the count says the silence is the block's.
    assert (seen['before'], seen['after']) == ('refused', 'blocked')
    assert seen['counter_after'] > seen['counter_before']
    assert finding['status'] == 'remediated'


def test_a_udp_probe_stopped_on_its_way_is_not_verified(site):
    host, peer, _web = site
    nat.apply(host, [['iptables-nft', '-t', 'nat', '-A', 'DOCKER', '!', '-i', 'docker0', '-p', 'udp', '-m', 'udp',
                      '--dport', '857', '-j', 'DNAT', '--to-destination', '172.17.0.2:53']])
    finding, seen = remediate(host, peer, finding=published(protocol='udp', port=857), attack_before=lambda: cut(peer, 857))
    # A local drop of a datagram is told to its sender (EPERM), unlike a TCP SYN's, which is retried in silence.
    assert seen['before'] == seen['after'] == 'error: Operation not permitted'
    assert seen['counter_after'] == seen['counter_before'] == 0
    assert finding['status'] == 'drift' and finding['remediation']['status'] == rp.NOT_VERIFIED
    assert "the probe's packets never reached the block" in finding['remediation']['reason']


def test_another_blocked_port_counting_meanwhile_proves_nothing_about_this_one(site):
    host, peer, _web = site

    def flood():
        for _attempt in range(2):
            assert probe(peer, port=857) == 'blocked'  # dropped by 857's block: its count moves, 856's must not

    finding, seen = remediate(host, peer, attack_before=lambda: cut(peer), attack_between=flood,
                              also=[published(port=857)])
    assert seen['counter_before'] == seen['counter_after'] == 0
    assert finding['status'] == 'drift' and finding['remediation']['status'] == rp.NOT_VERIFIED


def test_the_table_rewritten_between_the_two_readings_is_not_verified(site):
    host, peer, _web = site
    remediate(host, peer)  # the block in place, its count above zero

    def rewrite():
        # Another run at the same moment rewrites the table (lift all, block again): the counts start again.
        assert run_module(host, {'state': 'absent'})[0] == 0
        assert run_module(host, {'published': [rp.module_block(rp.published_block_for(published()))]})[0] == 0

    finding, seen = remediate(host, peer, attack_before=lambda: cut(peer), attack_after=rewrite)
    assert seen['counter_after'] < seen['counter_before']
    assert finding['status'] == 'drift' and 'the table was rewritten meanwhile' in finding['remediation']['reason']
