"""A published port is closed before NAT, not at input: real rules, a real container, a real peer.

The host publishes TCP 856 to a container as Docker does (iptables-nft, no proxy); a peer namespace reaches it.
The input-hook block of remediate_firewall leaves it open (the bug of issue 12); the prerouting table of
remediate_prerouting closes it, the container's listener stays alive, the NAT rules stay as they were, loading it
twice changes no block, and lifting it opens the port again."""

import re
import subprocess

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import remediate_firewall, remediate_prerouting
from tests.helpers import nat
from tests.helpers.netns import Namespace, have_netns
from tests.helpers.nft import uncounted

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]


def nat_rules(namespace):
    return [line for line in namespace.run(['iptables-nft-save', '-t', 'nat']).stdout.splitlines() if not line.startswith('#')]


BLOCK = remediate_firewall.normalise_blocks([{'protocol': 'tcp', 'port': 856, 'rule': 'iana-unassigned-closed'}])


def load(namespace, script):
    proc = subprocess.run(namespace.command(['nft', '-f', '-']), input=script, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_an_input_block_leaves_a_published_port_open_and_a_prerouting_block_closes_it():
    with Namespace() as host, nat.Container(host) as container, nat.Peer(host) as peer:
        holder = container.namespace.listen([{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 80}])
        nat.apply(host, nat.docker_rules(856, '172.17.0.2:80'))
        before = nat_rules(host)
        assert peer.probe('tcp', 856) == 'open'
        load(host, remediate_firewall.nft_script(BLOCK))  # the input hook: forwarded traffic never passes it
        assert peer.probe('tcp', 856) == 'open'
        load(host, remediate_firewall.lift_script())
        load(host, remediate_prerouting.nft_script(BLOCK))
        assert peer.probe('tcp', 856) == 'blocked'
        assert holder.proc.poll() is None  # the container's process is alive: only the published port is closed
        first = host.run(['nft', 'list', 'table', 'inet', 'portwarden_published']).stdout
        assert re.search(r'856 counter packets [1-9][0-9]* ', first), first  # the drop counted the probe's packets
        load(host, remediate_prerouting.nft_script(BLOCK))
        assert uncounted(host.run(['nft', 'list', 'table', 'inet', 'portwarden_published']).stdout) == uncounted(first)
        assert nat_rules(host) == before
        load(host, remediate_prerouting.lift_script())
        assert peer.probe('tcp', 856) == 'open'
        assert 'portwarden_published' not in host.run(['nft', 'list', 'tables']).stdout


def test_a_prerouting_block_drops_only_traffic_for_the_host_itself():
    """Traffic the host routes to another machine's 856 (here the container's own address) is not its to drop."""
    with Namespace() as host, nat.Container(host) as container, nat.Peer(host) as peer:
        container.namespace.listen([{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856}])
        peer.namespace.run(['ip', 'route', 'add', '172.17.0.0/16', 'via', nat.Peer.HOST_ADDRESS], check=True)
        load(host, remediate_prerouting.nft_script(BLOCK))
        assert peer.probe('tcp', 856, '172.17.0.2') == 'open'
        assert peer.probe('tcp', 856) == 'blocked'  # for the host's own address: dropped
