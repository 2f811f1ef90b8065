"""Remediate mode of the port_compliance role on fleet hosts whose drift is published by NAT, over SSH.

Each host is a network namespace reached through sshd (tests/fleet/harness.py), and a veth from the controller's
namespace (``nat.Uplink``) makes the controller a real peer of it: published traffic from the controller goes through
the host's prerouting, DNAT and forwarding as a peer's would, and the controller's probe (port_remediate) is one.

- docker: TCP 856 published as dockerd writes it (iptables-nft, DOCKER chain, ``userland-proxy: false``) to a
  "container" namespace on a bridge whose listener answers on 80; no socket on the host.
- netavark: the same port published by netavark's nftables rules, IPv4 and IPv6, to a container on podman0.
- nodeport: a kube-proxy NodePort range (30000-32767): a range is not blocked, said why.
- udp: UDP 857 published as dockerd writes it to a container's DNS-like service on 53 that answers each datagram.
- stale: Docker's rules to a container that no longer exists (172.17.0.99): reported, owner unknown, and its block
  verified by the count alone (nothing answers before it).
- clean: no NAT at all.

Runs, in order: check mode with --diff (rulesets identical, the diff shows the prerouting rules), the real run (the
peer's connection fails, the container's process lives, the finding is remediated from the probes and the block's
packet count), a second run (changed=0, verified by the count), and a report run that lifts the blocks (the connection is back).
"""

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.fleet.harness import play_recap
from tests.helpers import nat
from tests.helpers.nft import uncounted

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(HERE, 'playbooks', 'role_remediate.yml')
POLICY = os.path.join(HERE, 'policies', 'nat_remediate.yml')
AS_OF = '2026-12-01'
SPECS = ('docker', 'netavark', 'nodeport', 'stale', 'udp', 'clean')
WEB = [{'protocol': 'tcp', 'address': '::', 'port': 80, 'v6only': False}]
ECHO = os.path.join(REPO, 'tests', 'helpers', 'echo_server.py')


class Site(object):
    def __init__(self, fleet, workdir, hosts):
        self.fleet = fleet
        self.workdir = workdir
        self.hosts = hosts
        self.uplinks = {}
        self.webs = {}

    def ruleset(self, kind):
        host = self.fleet.namespace(self.hosts[kind])
        saved = [host.run([tool, '-t', 'nat']).stdout for tool in ('iptables-nft-save', 'ip6tables-nft-save')]
        return [host.run(['nft', 'list', 'ruleset']).stdout] + [
            [line for line in text.splitlines() if not line.startswith('#')] for text in saved]  # not the timestamps

    def probe(self, kind, family='ipv4', port=856, protocol='tcp'):
        uplink = self.uplinks[kind]
        return nat.probe_from_here(protocol, port, uplink.host4 if family == 'ipv4' else uplink.host6)

    def playbook(self, name, mode='remediate', check=False, extra=None):
        extra_vars = {'port_compliance_mode': mode, 'port_compliance_policy': POLICY, 'port_compliance_as_of': AS_OF,
                      'port_compliance_fail_on': 'never', 'port_compliance_fail_on_unknown': False,
                      'port_compliance_probe_timeout': 1.0}
        extra_vars.update(extra or {})
        return self.fleet.role_run(PLAYBOOK, os.path.join(self.workdir, '%s.log' % name),
                                   os.path.join(self.workdir, 'reports'), extra_vars, check=check)

    def entry(self, report, kind):
        [entry] = [entry for entry in report['hosts'] if entry['host'] == self.hosts[kind]]
        return entry


def _published(entry):
    return sorted((finding for finding in entry['findings'] if finding.get('via') == 'nat'),
                  key=lambda finding: (finding['family'], finding['port']))


@pytest.fixture(scope='module')
def site(module_fleet_factory, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('pwnr'))
    fleet = module_fleet_factory(len(SPECS), prefix='pwnr', workdir=workdir)
    hosts = dict(zip(SPECS, fleet.hosts))
    state = Site(fleet, workdir, hosts)
    subnet = nat.Uplink.free_subnet()
    tag = os.urandom(2).hex()
    containers = []
    try:
        for index, kind in enumerate(SPECS):
            uplink = nat.Uplink(fleet.namespace(hosts[kind]), 'nr%s%d' % (tag, index), subnet, index).__enter__()
            state.uplinks[kind] = uplink
            fleet.set_hostvars(hosts[kind], {'port_compliance_probe_addresses': [uplink.host4, uplink.host6]})
        docker = nat.Container(fleet.namespace(hosts['docker'])).__enter__()
        containers.append(docker)
        state.webs['docker'] = docker.namespace.listen(WEB)
        nat.apply(fleet.namespace(hosts['docker']), nat.docker_rules(856, '172.17.0.2:80'))
        podman = nat.Container(fleet.namespace(hosts['netavark']), bridge='podman0', bridge_address='172.18.0.1/24',
                               address='172.18.0.2/24').__enter__()
        containers.append(podman)
        fleet.run(hosts['netavark'], ['ip', '-6', 'addr', 'add', 'fd5e:822b:4924:c112::1/64', 'dev', 'podman0', 'nodad'], check=True)
        podman.namespace.run(['ip', '-6', 'addr', 'add', 'fd5e:822b:4924:c112::2/64', 'dev', 'eth0', 'nodad'], check=True)
        podman.namespace.run(['ip', '-6', 'route', 'add', 'default', 'via', 'fd5e:822b:4924:c112::1'], check=True)
        state.webs['netavark'] = podman.namespace.listen(WEB)
        nat.nft(fleet.namespace(hosts['netavark']), nat.NETAVARK_RULESET % {'port': 856})
        nat.apply(fleet.namespace(hosts['nodeport']), nat.nodeport_range_rules())
        nat.apply(fleet.namespace(hosts['stale']), nat.docker_rules(856, '172.17.0.99:80'))
        dns = nat.Container(fleet.namespace(hosts['udp'])).__enter__()
        containers.append(dns)
        echo = subprocess.Popen(dns.namespace.command([sys.executable, ECHO, 'dns', '8053', '53']), stdout=subprocess.PIPE,
                                text=True)
        state.webs['udp'] = echo
        assert echo.stdout.readline().strip() == 'ready'
        rules = nat.docker_rules(856, '172.17.0.2:80')[:-1] + [
            ['iptables-nft', '-t', 'nat', '-A', 'DOCKER', '!', '-i', 'docker0', '-p', 'udp', '-m', 'udp', '--dport', '857',
             '-j', 'DNAT', '--to-destination', '172.17.0.2:53']]
        nat.apply(fleet.namespace(hosts['udp']), rules)
        yield state
    finally:
        if 'udp' in state.webs:
            state.webs['udp'].kill()
            state.webs['udp'].wait()
        for container in containers:
            container.__exit__(None, None, None)
        for uplink in state.uplinks.values():
            uplink.__exit__(None, None, None)


@pytest.fixture(scope='module')
def before(site):
    # IPv6 forwarding waits for the new links' duplicate address detection (about 2 s): a peer is patient.
    for _attempt in range(20):
        if site.probe('netavark', 'ipv6') == 'open':
            break
        time.sleep(0.5)
    seen = dict((kind, (site.probe(kind), site.probe(kind, 'ipv6'))) for kind in ('docker', 'netavark'))
    seen['udp'] = site.probe('udp', port=857, protocol='udp')
    return seen


@pytest.fixture(scope='module')
def check_run(site, before):
    rulesets = dict((kind, site.ruleset(kind)) for kind in SPECS)
    output, report = site.playbook('check', check=True)
    return rulesets, output, report


@pytest.fixture(scope='module')
def real_run(site, check_run):
    return site.playbook('real')


@pytest.fixture(scope='module')
def second_run(site, real_run):
    return site.playbook('second')


@pytest.fixture(scope='module')
def lift_run(site, second_run):
    return site.playbook('lift', mode='report', extra={'port_compliance_firewall_lift': True})


def test_before_a_peer_reaches_the_containers_through_the_published_port(before):
    assert before['docker'][0] == 'open'  # IPv4 only: Docker's rules here are iptables-nft's ip family
    assert before['netavark'] == ('open', 'open')
    assert before['udp'] == 'open'  # the container's service answers the datagram through the DNAT


def test_check_mode_changes_no_ruleset_and_shows_the_prerouting_rules(site, check_run):
    rulesets, output, report = check_run
    for kind in SPECS:
        assert site.ruleset(kind) == rulesets[kind], kind
    assert site.probe('docker') == 'open'
    assert 'table inet portwarden_published' in output
    assert 'type filter hook prerouting priority -150; policy accept;' in output
    assert 'fib daddr type local meta nfproto ipv4 tcp dport @tcp_ports_v4 drop' in output
    assert '856 comment "rule=unassigned-firewall"' in output
    recap = play_recap(output)
    assert dict((kind, recap[site.hosts[kind]]['changed']) for kind in SPECS) == {
        'docker': 1, 'netavark': 1, 'nodeport': 0, 'stale': 1, 'udp': 1, 'clean': 0}
    [finding] = _published(site.entry(report, 'docker'))
    assert finding['status'] == 'drift' and finding['remediation']['status'] == 'planned'
    assert finding['remediation']['target'] == 'tcp 0.0.0.0 port 856 before NAT (prerouting)'


def test_the_real_run_closes_the_published_port_and_the_container_lives(site, real_run):
    output, report = real_run
    recap = play_recap(output)
    assert dict((kind, recap[site.hosts[kind]]['changed']) for kind in SPECS) == {
        'docker': 1, 'netavark': 1, 'nodeport': 0, 'stale': 1, 'udp': 1, 'clean': 0}
    assert site.probe('docker') == 'blocked'
    assert site.probe('netavark') == 'blocked' and site.probe('netavark', 'ipv6') == 'blocked'
    assert site.probe('udp', port=857, protocol='udp') == 'blocked'
    for kind in ('docker', 'netavark'):
        assert site.webs[kind].proc.poll() is None, kind  # the container's process is alive
    assert site.webs['udp'].poll() is None
    for kind in ('docker', 'netavark'):
        entry = site.entry(report, kind)
        assert entry['status'] == 'compliant', (kind, entry)
        for finding in _published(entry):
            assert finding['status'] == 'remediated', finding
            assert finding['remediation']['status'] == 'verified'
            assert 'open before the block, blocked after it' in finding['remediation']['reason'], finding
    [finding] = _published(site.entry(report, 'docker'))
    assert 'probe from the controller to %s' % site.uplinks['docker'].host4 in finding['remediation']['reason']
    probed = [action for action in site.entry(report, 'docker')['remediation']['actions'] if action['outcome'] == 'probed']
    assert [action['target'] for action in probed] == ['tcp 0.0.0.0 port 856 before NAT (prerouting)']
    assert 'packets counted by the block: 0 before the second probe' in probed[0]['detail'], probed
    # The NAT rules are Docker's and stay as they were; portwarden's own table holds the block.
    table = uncounted(site.fleet.run(site.hosts['docker'], ['nft', 'list', 'table', 'inet', 'portwarden_published']).stdout)
    assert '856 comment "rule=unassigned-firewall"' in table
    assert 'portwarden' not in site.fleet.run(site.hosts['docker'], ['iptables-nft-save', '-t', 'nat']).stdout


def test_a_stale_dnat_rule_is_blocked_and_the_count_shows_the_block_drops_it(site, real_run):
    _output, report = real_run
    entry = site.entry(report, 'stale')
    [finding] = _published(entry)
    assert finding['exposure']['owner']['kind'] == 'unknown'
    # Before the block the DNAT sent the probe nowhere (the target's network is gone), so the probes alone tell
    # nothing; the block's own count of the second probe's packets does.
    assert 'error: Network is unreachable before the block, blocked after it' in finding['remediation']['reason'], \
        finding['remediation']['reason']
    assert finding['status'] == 'remediated' and entry['status'] == 'compliant'
    assert finding['remediation']['status'] == 'verified'
    assert "the probe's packets were dropped by portwarden" in finding['remediation']['reason']
    assert '856' in site.fleet.run(site.hosts['stale'], ['nft', 'list', 'table', 'inet', 'portwarden_published']).stdout


def test_a_published_udp_port_is_closed_and_verified_by_the_count(site, real_run):
    _output, report = real_run
    entry = site.entry(report, 'udp')
    [finding] = _published(entry)
    assert (finding['protocol'], finding['port']) == ('udp', 857)
    assert finding['status'] == 'remediated' and entry['status'] == 'compliant', finding
    reason = finding['remediation']['reason']
    assert 'open before the block, blocked after it' in reason, reason  # answered, then silent
    assert "the probe's packets were dropped by portwarden" in reason, reason
    [probe] = [action for action in entry['remediation']['actions'] if action['outcome'] == 'probed']
    assert probe['target'] == 'udp 0.0.0.0 port 857 before NAT (prerouting)'


def test_a_nodeport_range_is_not_blocked_and_says_why(site, real_run):
    _output, report = real_run
    [finding] = _published(site.entry(report, 'nodeport'))
    assert finding['status'] == 'drift' and finding['remediation']['status'] == 'unavailable'
    assert '-32767' in finding['remediation']['reason']
    assert 'portwarden' not in site.fleet.run(site.hosts['nodeport'], ['nft', 'list', 'tables']).stdout
    assert site.entry(report, 'clean')['status'] == 'compliant'


def test_the_second_run_changes_nothing_and_verifies_by_the_count(site, second_run):
    output, report = second_run
    recap = play_recap(output)
    assert all(recap[site.hosts[kind]]['changed'] == 0 for kind in SPECS), recap
    assert site.probe('docker') == 'blocked'
    for kind in ('docker', 'netavark', 'stale', 'udp'):
        entry = site.entry(report, kind)
        assert entry['status'] == 'compliant', (kind, entry)
        for finding in _published(entry):
            # The block was there before this run: no probe could reach the port first, but its drop counted the
            # second probe's packets.
            assert finding['status'] == 'remediated' and finding['remediation']['status'] == 'verified', finding
            assert 'blocked before the block, blocked after it' in finding['remediation']['reason'], finding
            assert "the probe's packets were dropped by portwarden" in finding['remediation']['reason'], finding


def test_lifting_restores_the_connection(site, lift_run):
    _output, _report = lift_run
    assert site.probe('docker') == 'open'
    assert site.probe('netavark') == 'open' and site.probe('netavark', 'ipv6') == 'open'
    assert site.probe('udp', port=857, protocol='udp') == 'open'
    for kind in SPECS:
        assert 'portwarden' not in site.fleet.run(site.hosts[kind], ['nft', 'list', 'tables']).stdout, kind
    assert 'DNAT' in site.fleet.run(site.hosts['docker'], ['iptables-nft-save', '-t', 'nat']).stdout
