"""Planning and verifying the remediation of ports published by NAT.

A published port is closed before NAT, by a prerouting block of its own (``plan['published']``); a local listener on
the same port keeps its input block. Ending or stopping the process behind the target is not ours to do. A published
port is ``remediated`` only when a probe from outside reached it before its block and not after it; an input-hook
block on the same port never counts (forwarded traffic does not pass input)."""

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils import remediate_plan as rp

NGINX = {'pid': 2001, 'name': 'nginx', 'user': 'root', 'uid': 0, 'exe': '/usr/sbin/nginx', 'unit': 'docker.service',
         'start_time': 5}
EXPOSURE = {'action': 'dnat', 'hooks': ['prerouting', 'output'], 'interface': None,
            'target': {'address': '172.17.0.2', 'port': 80, 'port_end': None}, 'source': 'iptables-nft',
            'table': 'nat', 'chain': 'DOCKER', 'rule': '-A DOCKER ...', 'owner': {'kind': 'unknown', 'reason': None, 'where': None}}


def published(port=856, protocol='tcp', family='ipv4', address='0.0.0.0', port_end=None, hooks=None, rule='closed'):
    exposure = dict(EXPOSURE, hooks=hooks or EXPOSURE['hooks'])
    return {'rule': rule, 'severity': 'high', 'status': 'drift', 'protocol': protocol, 'family': family,
            'address': address, 'port': port, 'service': None, 'processes': [dict(NGINX)], 'waived': False,
            'waiver': None, 'where': 'host', 'namespace': None, 'via': 'nat', 'port_end': port_end or port,
            'exposure': exposure,
            'message': '%s %s:%d published by DNAT to 172.17.0.2:80 must be closed' % (protocol, address, port)}


def listener(port=856, protocol='tcp', rule='closed'):
    return {'rule': rule, 'severity': 'high', 'status': 'drift', 'protocol': protocol, 'family': 'ipv4',
            'address': '0.0.0.0', 'port': port, 'service': None, 'processes': [dict(NGINX, pid=3001, unit=None)],
            'waived': False, 'waiver': None, 'where': 'host', 'namespace': None,
            'message': '%s 0.0.0.0:%d must be closed' % (protocol, port)}


def audit(*findings, status=None, reasons=()):
    result = ev.summarize_result({'host': 'h1', 'status': None, 'reasons': list(reasons), 'findings': list(findings),
                                  'warnings': [], 'summary': None, 'coverage': {'complete': True}})
    if status:
        result['status'] = status
    return result


BLOCK_856 = {'protocol': 'tcp', 'port': 856, 'family': 'ipv4', 'address': None, 'rule': 'closed', 'where': 'host'}
OPEN_THEN_BLOCKED = {'address': '192.0.2.1', 'before': 'open', 'after': 'blocked'}


def test_a_published_port_plans_a_prerouting_block_not_an_input_block():
    result = audit(published())
    plan = rp.plan_remediation(result, {}, 'firewall')
    assert plan['published'] == [BLOCK_856]
    assert plan['blocks'] == [] and plan['processes'] == [] and plan['services'] == []
    note = result['findings'][0]['remediation']
    assert note == {'strategy': 'firewall', 'status': rp.PLANNED, 'reason': None,
                    'target': 'tcp 0.0.0.0 port 856 before NAT (prerouting)'}


def test_a_listener_and_a_published_port_on_one_port_get_both_blocks():
    result = audit(listener(), published())
    plan = rp.plan_remediation(result, {}, 'firewall')
    assert plan['published'] == [BLOCK_856]
    assert [(b['protocol'], b['port'], b['family']) for b in plan['blocks']] == [('tcp', 856, 'ipv4')]
    assert [f['remediation']['status'] for f in result['findings']] == [rp.PLANNED, rp.PLANNED]


@pytest.mark.parametrize('address, family, expected', [
    ('0.0.0.0', 'ipv4', ('ipv4', None)),
    ('::', 'ipv6', ('ipv6', None)),  # a NAT rule is per family: never both for a [::] exposure
    ('192.0.2.1', 'ipv4', ('ipv4', '192.0.2.1')),
    ('2001:db8::1', 'ipv6', ('ipv6', '2001:db8::1')),
])
def test_the_prerouting_block_is_of_the_exposures_family_and_address(address, family, expected):
    result = audit(published(address=address, family=family))
    [block] = rp.plan_remediation(result, {}, 'firewall')['published']
    assert (block['family'], block['address']) == expected


@pytest.mark.parametrize('strategy', ['kill', 'service'])
def test_ending_the_process_behind_a_published_port_is_unavailable_and_says_why(strategy):
    result = audit(published())
    plan = rp.plan_remediation(result, {}, strategy)
    assert plan['published'] == [] and plan['processes'] == [] and plan['services'] == []
    note = result['findings'][0]['remediation']
    assert note['status'] == rp.UNAVAILABLE
    assert 'the %s strategy does not apply' % strategy in note['reason']
    assert 'not for portwarden to do' in note['reason'] and 'DNAT to 172.17.0.2:80' in note['reason']
    assert 'prerouting' in note['reason']


def test_a_published_range_is_unavailable():
    result = audit(published(port=30001, port_end=32767))
    plan = rp.plan_remediation(result, {}, 'firewall')
    assert plan['published'] == []
    note = result['findings'][0]['remediation']
    assert note['status'] == rp.UNAVAILABLE and '30001-32767' in note['reason']


def test_a_port_published_only_for_local_traffic_is_unavailable():
    result = audit(published(hooks=['output']))
    assert rp.plan_remediation(result, {}, 'firewall')['published'] == []
    assert 'OUTPUT hook' in result['findings'][0]['remediation']['reason']


def test_the_protected_ssh_port_is_never_blocked_before_nat_either():
    result = audit(published(port=22))
    plan = rp.plan_remediation(result, {}, 'firewall', rp.Protection(tcp_ports=[22]))
    assert plan['published'] == []
    note = result['findings'][0]['remediation']
    assert note['status'] == rp.PROTECTED and 'live Ansible connection' in note['reason']


@pytest.mark.parametrize('status, reasons', [('unknown', ['gather failed']), ('drift', ['coverage partial'])])
def test_an_unknown_or_partial_host_gets_no_prerouting_block(status, reasons):
    result = audit(published(), status=status, reasons=reasons)
    plan = rp.plan_remediation(result, {}, 'firewall')
    assert plan['published'] == [] and plan['skipped']


def test_outcomes_of_prerouting_blocks_reach_the_finding():
    result = audit(published())
    rp.plan_remediation(result, {}, 'firewall')
    rp.apply_outcomes(result, {'blocks': {}, 'services': {}, 'processes': {},
                               'published': {rp.block_key(BLOCK_856): (rp.APPLIED, 'nftables block added')}})
    assert result['findings'][0]['remediation']['status'] == rp.APPLIED


def _verified(probe, live=(BLOCK_856,), finding=None, live_input=()):
    finding = finding or published()
    before = audit(finding)
    rp.plan_remediation(before, {}, 'firewall')
    key = rp.block_key(rp.published_block_for(finding))
    rp.apply_outcomes(before, {'blocks': {}, 'services': {}, 'processes': {}, 'published': {key: (rp.APPLIED, 'added')}})
    after = audit(dict(finding))
    probes = {key: probe} if probe is not None else {}
    final = rp.verify_remediation(before, after, list(live_input), actions=[], probes=probes, live_published=list(live))
    return final, final['findings'][0]


def test_reached_before_and_dropped_after_is_remediated():
    final, finding = _verified(OPEN_THEN_BLOCKED)
    assert finding['status'] == 'remediated' and final['status'] == 'compliant'
    assert finding['remediation']['status'] == rp.VERIFIED
    assert 'open before the block, blocked after it' in finding['remediation']['reason']
    assert 'before NAT' in finding['message']


def test_refused_after_counts_as_closed():
    _final, finding = _verified(dict(OPEN_THEN_BLOCKED, after='refused'))
    assert finding['status'] == 'remediated'


@pytest.mark.parametrize('probe, words', [
    (dict(OPEN_THEN_BLOCKED, before='blocked'), 'not reachable from the probe before the block either'),
    (dict(OPEN_THEN_BLOCKED, before='refused', after='refused'), 'not reachable from the probe before the block either'),
    (dict(OPEN_THEN_BLOCKED, after='open'), 'traffic still arrives'),
    (dict(OPEN_THEN_BLOCKED, after='error: No route to host'), 'the probe after the block failed'),
    ({'address': None, 'why': 'no probe address is known for this host'}, 'no probe address is known'),
    (None, 'no probe was made'),
])
def test_anything_else_stays_drift_not_verified_with_what_was_seen(probe, words):
    final, finding = _verified(probe)
    assert finding['status'] == 'drift' and final['status'] == 'drift'
    assert finding['remediation']['status'] == rp.NOT_VERIFIED
    assert words in finding['remediation']['reason']


def test_a_block_missing_from_the_table_after_the_change_stays_drift():
    _final, finding = _verified(OPEN_THEN_BLOCKED, live=())
    assert finding['status'] == 'drift' and 'not in table inet portwarden_published' in finding['remediation']['reason']


def test_a_udp_published_port_is_never_remediated_from_a_probe_alone():
    udp = published(protocol='udp')
    _final, finding = _verified(OPEN_THEN_BLOCKED, live=(dict(BLOCK_856, protocol='udp'),), finding=udp)
    assert finding['status'] == 'drift' and finding['remediation']['status'] == rp.NOT_VERIFIED
    assert 'UDP probe alone cannot tell' in finding['remediation']['reason']


def counted(first, second, **probe):
    """A probe with the block's packet counts read before (``first``) and after (``second``) its second attempt."""
    return dict(OPEN_THEN_BLOCKED, counter_before=first, counter_after=second, **probe)


@pytest.mark.parametrize('protocol', ['tcp', 'udp'])
@pytest.mark.parametrize('before', ['open', 'blocked', 'refused'])
def test_a_silent_probe_the_drop_counted_is_remediated_whatever_the_first_probe_saw(protocol, before):
    # 'blocked' before: a second run, the block already in place; 'open' for UDP: the service answered the datagram.
    finding = published(protocol=protocol)
    final, finding = _verified(counted(0, 2, before=before), live=(dict(BLOCK_856, protocol=protocol),), finding=finding)
    assert finding['status'] == 'remediated' and final['status'] == 'compliant'
    assert finding['remediation']['status'] == rp.VERIFIED
    assert "counted 0 packets before the second probe and 2 after it: the probe's packets were dropped by portwarden" \
        in finding['remediation']['reason']


@pytest.mark.parametrize('probe, words', [
    (counted(3, 3), "the probe's packets never reached the block"),  # stopped on the way: silence proves nothing
    (counted(5, 1), 'the count went down, so the table was rewritten meanwhile'),
    (counted(0, 4, after='open'), 'traffic still arrives'),  # the drop takes some packets, another path the probe's
    (counted(0, 4, after='refused'), 'yet the probe was answered (refused)'),  # a drop sends no reset
    (counted(0, 4, after='error: No route to host'), 'yet the probe was answered'),
    (counted(True, 9, before='blocked'), 'not reachable from the probe before the block either'),  # no count: no proof
    (counted(-1, 9, before='blocked'), 'not reachable from the probe before the block either'),
    (counted(0, None, before='blocked'), 'not reachable from the probe before the block either'),
    (counted('0', '2', before='blocked'), 'not reachable from the probe before the block either'),
])
def test_a_count_proves_only_a_silent_probe_it_took(probe, words):
    final, finding = _verified(probe)
    assert finding['status'] == 'drift' and final['status'] == 'drift'
    assert finding['remediation']['status'] == rp.NOT_VERIFIED
    assert words in finding['remediation']['reason']


def _second_run(probe):
    finding = published()
    before = audit(finding)
    rp.plan_remediation(before, {}, 'firewall')
    key = rp.block_key(rp.published_block_for(finding))
    rp.apply_outcomes(before, {'blocks': {}, 'services': {}, 'processes': {},
                               'published': {key: (rp.APPLIED, rp.ALREADY_IN_PLACE)}})
    final = rp.verify_remediation(before, audit(dict(finding)), [], actions=[], probes={key: probe},
                                  live_published=[BLOCK_856])
    return final['findings'][0]


def test_a_second_run_verifies_by_the_count_and_says_to_lift_only_without_one():
    assert _second_run(counted(7, 8, before='blocked'))['status'] == 'remediated'
    finding = _second_run(counted(7, None, before='blocked'))
    assert finding['status'] == 'drift' and 'lift the blocks (lift_firewall) and remediate again' in finding['remediation']['reason']
    finding = _second_run(counted(7, 7, before='blocked'))
    assert finding['status'] == 'drift' and 'lift_firewall' not in finding['remediation']['reason']


def test_an_input_block_on_the_same_port_does_not_make_a_published_port_remediated():
    live = [{'protocol': 'tcp', 'port': 856, 'family': 'ipv4', 'address': None, 'rule': 'closed', 'where': 'host'}]
    final, finding = _verified(OPEN_THEN_BLOCKED, live=(), live_input=live)
    assert finding['status'] == 'drift' and final['status'] == 'drift'


def test_a_published_port_no_longer_published_after_the_block_is_listed_remediated():
    before = audit(published())
    rp.plan_remediation(before, {}, 'firewall')
    key = rp.block_key(BLOCK_856)
    rp.apply_outcomes(before, {'blocks': {}, 'services': {}, 'processes': {}, 'published': {key: (rp.APPLIED, 'added')}})
    final = rp.verify_remediation(before, audit(), [], actions=[], probes={}, live_published=[BLOCK_856])
    [finding] = final['findings']
    assert finding['status'] == 'remediated' and 'no longer published' in finding['message']


def _listener_verified(probe):
    before = audit(listener())
    plan = rp.plan_remediation(before, {}, 'firewall')
    [block] = plan['blocks']
    key = rp.block_key(block)
    rp.apply_outcomes(before, {'blocks': {key: (rp.APPLIED, 'added')}, 'services': {}, 'processes': {}, 'published': {}})
    live = [dict(block)]
    final = rp.verify_remediation(before, audit(listener()), live, [], {}, [], {key: probe} if probe else {})
    return final['findings'][0]


def test_a_local_listener_still_reached_from_outside_after_its_input_block_stays_drift():
    finding = _listener_verified({'address': '192.0.2.1', 'before': 'open', 'after': 'open'})
    assert finding['status'] == 'drift' and finding['remediation']['status'] == rp.NOT_VERIFIED
    assert 'traffic still arrives' in finding['remediation']['reason']


@pytest.mark.parametrize('probe', [None, {'address': '192.0.2.1', 'before': 'open', 'after': 'blocked'},
                                   {'address': '192.0.2.1', 'before': 'refused', 'after': 'blocked'}])
def test_a_local_listener_keeps_the_rule_based_verification_unless_a_probe_gets_through(probe):
    finding = _listener_verified(probe)
    assert finding['status'] == 'remediated' and finding['remediation']['status'] == rp.VERIFIED
    if probe:
        assert 'probe from the controller to 192.0.2.1' in finding['remediation']['reason']
