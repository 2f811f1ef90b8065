"""Attacks on the prerouting table itself: someone else's ``inet portwarden_published``, and two runs at once.

- A table of that name already holds someone else's content: an ``accept`` of the port before the drops, a chain
  of its own, a set the design does not have, and an element on the port of the live SSH connection. port_block
  treats the name as its own: check mode reports what differs and changes nothing; a real run rebuilds the table
  to the design (the foreign rules gone, the port really closed), and never writes back a block of the SSH port.
- Two port_block runs at once, each with a published block (and one with an input block too), through an nft that
  waits 1 s before applying: every block of both runs is in the tables afterwards.
"""

import shutil

import pytest

from tests.adversarial.test_remediate_firewall_race import finish, slow_nft, start
from tests.helpers import nat
from tests.helpers.netns import Namespace, have_netns
from tests.helpers.nft import uncounted
from tests.integration.test_port_block import run_module

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not have_netns(), reason='needs root and ip netns'),
    pytest.mark.skipif(shutil.which('nft') is None, reason='needs nft (nftables)'),
]

HOSTILE = '''
table inet portwarden_published {
  set tcp_ports_v4 {
    type inet_service
    elements = { 22 comment "rule=theirs" }
  }
  set theirs {
    type ipv4_addr
  }
  chain prerouting {
    type filter hook prerouting priority -160; policy accept;
    tcp dport 856 accept
  }
  chain sidecar {
    tcp dport 9999 accept
  }
}
'''
PUBLISHED = [{'protocol': 'tcp', 'port': 856, 'family': 'ipv4', 'rule': 'iana-unassigned-closed'}]
SSH = {'SSH_CONNECTION': '192.0.2.2 50000 192.0.2.1 22'}


@pytest.fixture
def site():
    with Namespace() as host, nat.Container(host) as container, nat.Peer(host) as peer:
        container.namespace.listen([{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 80}])
        nat.apply(host, nat.docker_rules(856, '172.17.0.2:80'))
        nat.nft(host, HOSTILE)
        yield host, peer


def test_check_mode_reports_the_foreign_content_and_changes_nothing(site):
    host, peer = site
    before = host.run(['nft', 'list', 'ruleset']).stdout
    rc, result = run_module(host, {'published': PUBLISHED}, env=SSH, check_mode=True)
    assert rc == 0 and result['changed'] is True
    assert host.run(['nft', 'list', 'ruleset']).stdout == before
    drift = result['published']['drift']
    assert 'set theirs is not part of the design' in drift and 'chain sidecar is not part of the design' in drift
    assert any('chain prerouting is' in problem for problem in drift), drift
    assert '# differs from the design' in result['diff']['before']
    assert peer.probe('tcp', 856) == 'open'


def test_a_real_run_rebuilds_it_to_the_design_and_never_writes_back_a_block_of_the_ssh_port(site):
    host, peer = site
    rc, result = run_module(host, {'published': PUBLISHED}, env=SSH)
    assert rc == 0 and result['changed'] is True
    table = host.run(['nft', 'list', 'table', 'inet', 'portwarden_published']).stdout
    assert 'accept' not in table.replace('policy accept', '') and 'sidecar' not in table and 'theirs' not in table.replace(
        'rule=theirs', '')
    assert 'priority mangle' in table  # -150, as nft names it
    assert [b['port'] for b in result['published']['blocks']] == [856], result['published']
    assert ' 22 ' not in table and '{ 22' not in table
    assert any('tcp 22' in problem and 'SSH' in problem for problem in result['published']['drift']), result['published']
    assert peer.probe('tcp', 856) == 'blocked'
    rc, again = run_module(host, {'published': PUBLISHED}, env=SSH)
    assert rc == 0 and again['changed'] is False and again['published']['drift'] == []


def test_two_runs_at_once_keep_every_block(tmp_path):
    bin_dir = slow_nft(tmp_path)
    with Namespace() as host:
        first = start(host, {'published': [{'protocol': 'tcp', 'port': 856, 'family': 'ipv4', 'rule': 'first'}]}, bin_dir)
        second = start(host, {'published': [{'protocol': 'tcp', 'port': 857, 'family': 'ipv4', 'rule': 'second'}],
                              'blocks': [{'protocol': 'tcp', 'port': 858, 'rule': 'second'}]}, bin_dir)
        results = [finish(first), finish(second)]
        for result in results:
            assert not result.get('failed'), result
        published = uncounted(host.run(['nft', 'list', 'table', 'inet', 'portwarden_published']).stdout)
        assert '856 comment "rule=first"' in published and '857 comment "rule=second"' in published, published
        assert '858 comment "rule=second"' in uncounted(host.run(['nft', 'list', 'table', 'inet', 'portwarden']).stdout)
