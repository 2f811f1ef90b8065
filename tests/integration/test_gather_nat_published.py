"""The gather reads the NAT: ports published by DNAT/REDIRECT with no socket on the host, in real namespaces.

Each test builds a fresh "host" network namespace and writes the rules there exactly as Docker (iptables-nft,
``userland-proxy: false``), netavark (nftables) and kube-proxy (a NodePort range) write them, then runs
``portwarden gather`` in it."""

import pytest

from tests.helpers import nat
from tests.helpers.netns import Namespace, have_netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]


def _one(result, port, **expected):
    found = [item for item in nat.by_port(result['exposures'], port)
             if all(item.get(key) == value for key, value in expected.items())]
    assert len(found) == 1, (port, expected, result.get('exposures'), result['coverage'].get('errors'))
    return found[0]


def test_docker_publish_without_a_proxy_is_an_exposure_with_no_socket():
    with Namespace() as host:
        nat.apply(host, nat.docker_rules(856, '172.17.0.2:80'))
        rc, result = nat.gather(host)
    assert not [entry for entry in result['sockets'] if entry['port'] == 856]  # userland-proxy: false
    exposure = _one(result, 856, protocol='tcp', family='ipv4')
    assert (exposure['address'], exposure['port_end'], exposure['action']) == ('0.0.0.0', 856, 'dnat')
    assert exposure['target'] == {'address': '172.17.0.2', 'port': 80, 'port_end': 80}
    assert (exposure['source'], exposure['table'], exposure['chain']) == ('iptables-nft', 'ip nat', 'DOCKER')
    assert exposure['interface'] == '!docker0'
    assert sorted(exposure['hooks']) == ['output', 'prerouting']  # PREROUTING and OUTPUT both jump to DOCKER
    assert exposure['owner']['kind'] == 'unknown'  # namespaces: host cannot tell who holds 172.17.0.2
    assert 'namespaces: all' in exposure['owner']['reason']
    assert rc == 0 and result['coverage']['complete'] is True
    assert result['coverage']['nat']['sources'] == {'iptables-nft/ipv4': 'read'}  # no ip6 nat table exists


def test_netavark_nftables_publish_is_read_for_both_families():
    with Namespace() as host:
        nat.nft(host, nat.NETAVARK_RULESET % {'port': 8080})
        rc, result = nat.gather(host)
    four = _one(result, 8080, family='ipv4')
    six = _one(result, 8080, family='ipv6')
    assert four['target']['address'] == '172.18.0.2' and six['target']['address'] == 'fd5e:822b:4924:c112::2'
    assert (four['source'], four['table'], four['chain']) == ('nft', 'inet netavark', 'nv_2f259bab_172_18_0_0_nm24_dnat')
    assert (four['address'], six['address']) == ('0.0.0.0', '::')
    assert rc == 0 and result['coverage']['nat']['sources'] == {'nft': 'read'}
    assert result['coverage']['nat']['tables'] == ['inet netavark']


def test_kube_proxy_nodeport_range_is_one_exposure_of_the_range():
    with Namespace() as host:
        nat.apply(host, [
            ['iptables-nft', '-t', 'nat', '-N', 'KUBE-SERVICES'],
            ['iptables-nft', '-t', 'nat', '-N', 'KUBE-NODEPORTS'],
            ['iptables-nft', '-t', 'nat', '-A', 'PREROUTING', '-m', 'comment', '--comment', 'kubernetes service portals',
             '-j', 'KUBE-SERVICES'],
            ['iptables-nft', '-t', 'nat', '-A', 'KUBE-SERVICES', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'KUBE-NODEPORTS'],
            ['iptables-nft', '-t', 'nat', '-A', 'KUBE-NODEPORTS', '-p', 'tcp', '-m', 'tcp', '--dport', '30000:32767',
             '-j', 'DNAT', '--to-destination', '10.244.1.5:8080'],
        ])
        rc, result = nat.gather(host)
    exposure = _one(result, 31000)
    assert (exposure['port'], exposure['port_end'], exposure['chain']) == (30000, 32767, 'KUBE-NODEPORTS')
    assert exposure['target']['address'] == '10.244.1.5'
    assert rc == 0


def test_redirect_to_a_local_listener_names_its_process():
    with Namespace() as host:
        holder = host.listen([{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 8856}])
        nat.apply(host, [['iptables-nft', '-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '856', '-j', 'REDIRECT',
                          '--to-ports', '8856']])
        rc, result = nat.gather(host)
    assert rc == 0
    exposure = _one(result, 856)
    assert exposure['action'] == 'redirect' and exposure['target'] == {'address': None, 'port': 8856, 'port_end': 8856}
    assert exposure['owner']['kind'] == 'local'
    assert [proc['pid'] for proc in exposure['owner']['processes']] == holder.pids


def test_ip6tables_and_iptables_legacy_rules_are_read():
    with Namespace() as host:
        nat.apply(host, [
            ['ip6tables-nft', '-t', 'nat', '-A', 'PREROUTING', '-p', 'udp', '--dport', '857', '-j', 'DNAT',
             '--to-destination', '[fd00::2]:53'],
            ['iptables-legacy', '-t', 'nat', '-A', 'PREROUTING', '-d', '192.0.2.7', '-p', 'tcp', '--dport', '858', '-j', 'DNAT',
             '--to-destination', '10.0.0.9:22'],
        ])
        rc, result = nat.gather(host)
    six = _one(result, 857)
    assert (six['protocol'], six['family'], six['source'], six['table']) == ('udp', 'ipv6', 'iptables-nft', 'ip6 nat')
    assert six['target'] == {'address': 'fd00::2', 'port': 53, 'port_end': 53}
    legacy = _one(result, 858)
    assert (legacy['source'], legacy['address'], legacy['target']['address']) == ('iptables-legacy', '192.0.2.7', '10.0.0.9')
    assert result['coverage']['nat']['sources']['iptables-legacy/ipv4'] == 'read'
    assert rc == 0


def test_container_behind_the_dnat_is_the_owner_with_namespaces_all():
    with Namespace() as host, nat.Container(host) as container:
        nat.apply(host, nat.docker_rules(856, '172.17.0.2:80'))
        answer = nat.gather_all_with_listener(host, container, [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 80}])
    exposure = _one(answer['result'], 856)
    owner = exposure['owner']
    assert owner['kind'] == 'namespace', owner
    assert owner['namespace']['host'] is False
    assert [proc['pid'] for proc in owner['processes']] == answer['listener_pids']
    # The container's own socket is in the gather too, under its inside port 80, in the same namespace.
    inside = [entry for entry in answer['result']['sockets'] if entry['port'] == 80 and entry.get('namespace', {}).get('host') is False]
    assert inside and inside[0]['namespace'] == owner['namespace']


def test_a_stale_dnat_to_nothing_is_reported_with_owner_unknown():
    with Namespace() as host, nat.Container(host) as container:
        nat.apply(host, nat.docker_rules(856, '172.17.0.99:80'))  # the container that had .99 is gone
        answer = nat.gather_all_with_listener(host, container, [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 80}])
    exposure = _one(answer['result'], 856)
    assert exposure['owner']['kind'] == 'unknown' and exposure['owner']['processes'] == []
    assert 'no network namespace of this host holds 172.17.0.99' in exposure['owner']['reason']


def test_a_container_address_with_nothing_listening_is_owner_unknown_in_that_namespace():
    with Namespace() as host, nat.Container(host) as container:
        nat.apply(host, nat.docker_rules(856, '172.17.0.2:8080'))
        answer = nat.gather_all_with_listener(host, container, [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 80}])
    owner = _one(answer['result'], 856)['owner']
    assert owner['kind'] == 'unknown' and owner['namespace'] is not None
    assert 'nothing listens on tcp 8080 there' in owner['reason']


def test_a_host_with_no_nat_table_is_complete_says_why_and_creates_none():
    with Namespace() as host:
        before = nat.ruleset(host)
        rc, result = nat.gather(host)
        after = nat.ruleset(host)
    assert rc == 0 and result['coverage']['complete'] is True and result['exposures'] == []
    assert result['coverage']['nat']['sources'] == {} and result['coverage']['nat']['tables'] == []
    assert any('no NAT table exists' in note and 'netlink' in note for note in result['coverage']['notes'])
    assert before == after and 'nat' not in after[2]  # iptables-legacy-save was not run: it would create the table


def test_nat_off_reads_nothing_and_says_so():
    with Namespace() as host:
        nat.apply(host, nat.docker_rules(856, '172.17.0.2:80'))
        _rc, result = nat.gather(host, '--nat', 'off')
    assert result['exposures'] == [] and result['coverage']['nat']['mode'] == 'off'
    assert any('nat: not read' in note for note in result['coverage']['notes'])


def test_a_peer_reaches_the_container_through_the_published_port_that_no_host_socket_holds():
    """The fixture is real: the port the gather reports is open to a peer, and the stale one answers nothing."""
    with Namespace() as host, nat.Container(host) as container, nat.Peer(host) as peer:
        container.namespace.listen([{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 80}])
        nat.apply(host, nat.docker_rules(856, '172.17.0.2:80'))
        nat.apply(host, [['iptables-nft', '-t', 'nat', '-A', 'DOCKER', '!', '-i', 'docker0', '-p', 'tcp', '-m', 'tcp',
                          '--dport', '857', '-j', 'DNAT', '--to-destination', '172.17.0.99:80']])
        rc, result = nat.gather(host)
        assert (peer.probe('tcp', 856), peer.probe('tcp', 857), peer.probe('tcp', 858)) == ('open', 'blocked', 'refused')
    assert rc == 0 and not [entry for entry in result['sockets'] if entry['port'] in (856, 857)]
    assert sorted(item['port'] for item in result['exposures']) == [856, 857]
