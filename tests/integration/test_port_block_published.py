"""port_block's prerouting table for ports published by NAT, for real: a Docker-shaped DNAT to a "container" on a
bridge, a peer namespace beside the host, the module run as Ansible runs it inside the host's namespace.

Check mode and diff show the prerouting rules and change nothing; a real run closes the published port to the peer
while the container's listener lives; the second run changes nothing; lifting removes exactly portwarden's table
(the NAT rules stay), and lifting only input blocks leaves the prerouting table alone."""

import shutil

import pytest

from tests.helpers import nat
from tests.helpers.netns import Namespace, have_netns
from tests.integration.test_port_block import run_module

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not have_netns(), reason='needs root and ip netns'),
    pytest.mark.skipif(shutil.which('nft') is None, reason='needs nft (nftables)'),
]

PUBLISHED = [{'protocol': 'tcp', 'port': 856, 'family': 'ipv4', 'rule': 'iana-unassigned-closed'}]


@pytest.fixture
def site():
    with Namespace() as host, nat.Container(host) as container, nat.Peer(host) as peer:
        web = container.namespace.listen([{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 80}])
        nat.apply(host, nat.docker_rules(856, '172.17.0.2:80'))
        assert peer.probe('tcp', 856) == 'open'
        yield host, peer, web


def rules(host):
    saved = host.run(['iptables-nft-save', '-t', 'nat']).stdout
    return host.run(['nft', 'list', 'ruleset']).stdout, [line for line in saved.splitlines() if not line.startswith('#')]


def test_check_mode_shows_the_prerouting_rules_and_changes_nothing(site):
    host, peer, _web = site
    before = rules(host)
    rc, result = run_module(host, {'published': PUBLISHED}, check_mode=True)
    assert rc == 0 and result['changed'] is True
    assert rules(host) == before and peer.probe('tcp', 856) == 'open'
    after = result['diff']['after']
    assert 'table inet portwarden_published {' in after
    assert 'type filter hook prerouting priority -150; policy accept;' in after
    assert 'fib daddr type local meta nfproto ipv4 tcp dport @tcp_ports_v4 drop' in after
    assert '856 comment "rule=iana-unassigned-closed"' in after
    assert result['diff']['before'] == ''
    assert result['published']['added'] == [dict(PUBLISHED[0], address=None)]
    assert result['blocks'] == [] and result['table'] == ''  # no input table is made for nothing


def test_apply_is_idempotent_lifting_removes_only_portwardens_table(site):
    host, peer, web = site
    nat_before = rules(host)[1]
    rc, result = run_module(host, {'published': PUBLISHED})
    assert rc == 0 and result['changed'] is True
    assert peer.probe('tcp', 856) == 'blocked'
    assert web.proc.poll() is None
    assert [b['port'] for b in result['published']['blocks']] == [856]
    rc, again = run_module(host, {'published': PUBLISHED})
    assert rc == 0 and again['changed'] is False and again['published']['added'] == []
    # Lifting input blocks only (state absent with blocks) leaves the prerouting table.
    rc, lifted = run_module(host, {'state': 'absent', 'blocks': [{'protocol': 'tcp', 'port': 856}]})
    assert rc == 0 and lifted['changed'] is False and peer.probe('tcp', 856) == 'blocked'
    rc, lifted = run_module(host, {'state': 'absent'})
    assert rc == 0 and lifted['changed'] is True
    assert peer.probe('tcp', 856) == 'open'
    assert 'portwarden' not in host.run(['nft', 'list', 'tables']).stdout
    assert rules(host)[1] == nat_before  # Docker's rules are as they were


def test_both_tables_in_one_call(site):
    host, peer, _web = site
    rc, result = run_module(host, {'blocks': [{'protocol': 'tcp', 'port': 857, 'rule': 'local'}], 'published': PUBLISHED})
    assert rc == 0 and result['changed'] is True
    tables = host.run(['nft', 'list', 'tables']).stdout
    assert 'table inet portwarden\n' in tables and 'table inet portwarden_published' in tables
    assert [b['port'] for b in result['blocks']] == [857] and [b['port'] for b in result['published']['blocks']] == [856]
    assert peer.probe('tcp', 856) == 'blocked'
    rc, lifted = run_module(host, {'state': 'absent', 'published': [{'protocol': 'tcp', 'port': 856, 'family': 'ipv4'}]})
    assert rc == 0 and lifted['published']['removed'] and lifted['blocks'] == result['blocks']
    assert peer.probe('tcp', 856) == 'open'


def test_persist_path_holds_both_tables_and_loads_again(site, tmp_path):
    host, peer, _web = site
    path = str(tmp_path / 'portwarden.nft')
    rc, result = run_module(host, {'published': PUBLISHED, 'persist_path': path})
    assert rc == 0 and result['persisted'] == path
    with open(path) as handle:
        text = handle.read()
    assert 'table inet portwarden_published {' in text and 'table inet portwarden {' not in text
    run_module(host, {'state': 'absent'})
    assert peer.probe('tcp', 856) == 'open'
    assert host.run(['nft', '-f', path]).returncode == 0
    assert peer.probe('tcp', 856) == 'blocked'
    rc, again = run_module(host, {'published': PUBLISHED, 'persist_path': path})
    assert rc == 0 and again['changed'] is False


def test_each_block_counts_what_it_drops_and_state_read_changes_nothing(site):
    """The count a probe moves is the proof the remediation reads: the peer's SYNs to the published port are counted
    by that block's element, not another's; a second run keeps the count (no rebuild); state=read changes nothing."""
    host, peer, _web = site
    other = {'protocol': 'tcp', 'port': 857, 'family': 'ipv4', 'rule': 'other'}
    rc, result = run_module(host, {'published': PUBLISHED + [other]})
    assert rc == 0 and result['changed'] is True
    assert [(item['port'], item['packets']) for item in result['published']['counters']] == [(856, 0), (857, 0)]
    assert peer.probe('tcp', 856) == 'blocked'
    before = rules(host)
    rc, read = run_module(host, {'state': 'read'})
    assert rc == 0 and read['changed'] is False and rules(host) == before
    counts = dict((item['port'], item['packets']) for item in read['published']['counters'])
    assert counts[856] >= 1 and counts[857] == 0, counts
    assert read['published']['blocks'] == result['published']['blocks'] and read['counters'] == []
    rc, again = run_module(host, {'published': PUBLISHED + [other]})
    assert rc == 0 and again['changed'] is False
    assert dict((item['port'], item['packets']) for item in again['published']['counters'])[856] == counts[856]


def test_a_table_written_before_its_sets_counted_is_rebuilt_once(site):
    host, _peer, _web = site
    rc, _result = run_module(host, {'published': PUBLISHED})
    assert rc == 0
    # The same table as an older portwarden wrote it: its sets count nothing.
    old = host.run(['nft', 'list', 'table', 'inet', 'portwarden_published']).stdout
    old = '\n'.join(line for line in old.splitlines() if line.strip() != 'counter').replace(' counter packets 0 bytes 0', '')
    nat.nft(host, 'delete table inet portwarden_published\n' + old + '\n')
    rc, checked = run_module(host, {'published': PUBLISHED}, check_mode=True)
    assert rc == 0 and checked['changed'] is True
    assert 'set tcp_ports_v4 has no packet counter per element' in checked['published']['drift']
    assert [item['packets'] for item in checked['published']['counters']] == [None]
    rc, rebuilt = run_module(host, {'published': PUBLISHED})
    assert rc == 0 and rebuilt['changed'] is True and rebuilt['published']['drift']
    rc, again = run_module(host, {'published': PUBLISHED})
    assert rc == 0 and again['changed'] is False and again['published']['drift'] == []
    assert [item['packets'] for item in again['published']['counters']] == [0]
