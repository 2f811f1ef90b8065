"""port_audit over SSH on fleet hosts whose drift is published by NAT, with no socket on the host.

Each host is a network namespace reached through sshd (tests/fleet/harness.py); the rules are written exactly as
Docker (iptables-nft, ``userland-proxy: false``, a "container" namespace on a bridge with nginx-like listener on 80),
netavark (nftables) and kube-proxy (a NodePort range) write them. The baseline's unassigned ports (856, most of the
NodePort range) must be closed: every published host is drift, the finding says how the port is reached, and the
host without NAT stays compliant. The real module, the action plugin's validation and the evaluation all run.
"""

import json
import os

import pytest

from tests.fleet.test_fleet_audit import AS_OF, PLAYBOOK
from tests.helpers import nat

pytestmark = [pytest.mark.netns, pytest.mark.slow]

SPECS = ('docker', 'netavark', 'nodeport', 'stale', 'clean')


@pytest.fixture(scope='module')
def audited(module_fleet_factory, tmp_path_factory):
    fleet = module_fleet_factory(len(SPECS), prefix='pwn')
    hosts = dict(zip(SPECS, fleet.hosts))
    docker = fleet.namespace(hosts['docker'])
    container = nat.Container(docker).__enter__()
    try:
        container.namespace.listen([{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 80}])
        nat.apply(docker, nat.docker_rules(856, '172.17.0.2:80'))
        nat.nft(fleet.namespace(hosts['netavark']), nat.NETAVARK_RULESET % {'port': 856})
        nat.apply(fleet.namespace(hosts['nodeport']), nat.nodeport_range_rules())
        nat.apply(fleet.namespace(hosts['stale']), nat.docker_rules(856, '172.17.0.99:80'))
        out_dir = str(tmp_path_factory.mktemp('nat-audit'))
        proc = fleet.playbook(PLAYBOOK, extra_vars={'pwa_out_dir': out_dir, 'pwa_as_of': AS_OF}, timeout=300)
        results = {}
        for kind, host in hosts.items():
            with open(os.path.join(out_dir, host + '.json')) as handle:
                results[kind] = json.load(handle)
        yield proc, results
    finally:
        container.__exit__(None, None, None)


def _published(result):
    return [finding for finding in result['findings'] if finding.get('via') == 'nat']


def test_the_run_succeeds_and_every_published_host_is_drift(audited):
    proc, results = audited
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for kind in ('docker', 'netavark', 'nodeport', 'stale'):
        result = results[kind]
        assert result['status'] == 'drift' and result['reasons'] == [], (kind, result.get('reasons'), result.get('msg'))
        assert _published(result), kind
        assert not [finding for finding in result['findings'] if finding.get('via') != 'nat'], kind  # no socket at all
    assert results['clean']['status'] == 'compliant' and results['clean']['findings'] == []


def test_the_findings_say_how_each_port_is_reached(audited):
    _proc, results = audited
    [docker] = _published(results['docker'])
    assert docker['message'].startswith('tcp 0.0.0.0:856 published by DNAT to 172.17.0.2:80 (owner unknown)')
    assert docker['exposure']['chain'] == 'DOCKER' and docker['exposure']['source'] == 'iptables-nft'
    netavark = sorted((finding['family'], finding['exposure']['target']['address']) for finding in _published(results['netavark']))
    assert netavark == [('ipv4', '172.18.0.2'), ('ipv6', 'fd5e:822b:4924:c112::2')]
    [nodeport] = _published(results['nodeport'])
    assert (nodeport['port_end'], nodeport['exposure']['chain']) == (32767, 'KUBE-NODEPORTS')
    assert 30000 <= nodeport['port'] <= 32767 and ', port %d ' % nodeport['port'] in nodeport['message']
    [stale] = _published(results['stale'])
    assert stale['exposure']['owner']['kind'] == 'unknown' and stale['processes'] == []


def test_the_coverage_says_which_nat_sources_were_read(audited):
    _proc, results = audited
    assert results['docker']['coverage']['nat']['sources'] == {'iptables-nft/ipv4': 'read'}
    assert results['netavark']['coverage']['nat']['sources'] == {'nft': 'read'}
    clean = results['clean']['coverage']
    assert clean['nat']['sources'] == {} and clean['complete'] is True
    assert any('no NAT table exists' in note for note in clean['notes'])
