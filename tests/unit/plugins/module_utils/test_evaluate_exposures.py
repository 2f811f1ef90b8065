"""Table-driven tests: ports published by NAT (gather ``exposures``) judged with the same rules as listeners."""

import copy
import datetime

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb

TODAY = datetime.date(2027, 1, 20)
WEB = {'inode': 4026532001, 'host': False, 'pid': 2001,
       'container': {'kind': 'docker', 'id': 'ab' * 32, 'pod_uid': None, 'name': 'web'}}
NGINX = [{'pid': 2001, 'name': 'nginx', 'user': 'root', 'uid': 0, 'exe': '/usr/sbin/nginx', 'unit': None, 'start_time': 5}]
UNASSIGNED_CLOSED = {'id': 'iana-unassigned-closed', 'match': {'ports': ['iana:unassigned']}, 'expect': 'closed',
                     'severity': 'high'}


def exposure(port=856, port_end=None, owner='namespace', hooks=('prerouting', 'output'), address='0.0.0.0',
             family='ipv4', protocol='tcp', target='172.17.0.2', chain='DOCKER'):
    owners = {
        'namespace': {'kind': 'namespace', 'namespace': WEB, 'processes': NGINX, 'reason': None},
        'unknown': {'kind': 'unknown', 'namespace': None, 'processes': [],
                    'reason': 'no network namespace of this host holds 172.17.0.2'},
    }
    return {'protocol': protocol, 'family': family, 'address': address, 'port': port,
            'port_end': port if port_end is None else port_end, 'action': 'dnat', 'hooks': list(hooks),
            'interface': '!docker0', 'target': {'address': target, 'port': 80, 'port_end': 80},
            'source': 'iptables-nft', 'table': 'ip nat', 'chain': chain,
            'rule': '-A DOCKER ! -i docker0 -p tcp -m tcp --dport %d -j DNAT --to-destination 172.17.0.2:80' % port,
            'conditions': ['dst-type LOCAL'], 'owner': owners[owner]}


def sock(port):
    return {'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': port, 'v6only': None, 'ephemeral': False,
            'inode': port, 'processes': NGINX}


def gathered(exposures=(), sockets=(), nat=True, mode='auto'):
    result = {'sockets': list(sockets), 'coverage': {'complete': True, 'errors': [], 'notes': []}}
    if nat:
        result['exposures'] = list(exposures)
        result['coverage']['nat'] = {'mode': mode, 'sources': {'iptables-nft/ipv4': 'read'}, 'tables': ['ip nat'],
                                     'unreachable': [], 'exposures': len(exposures)}
    return result


def evaluate(rules, data, default='allow', waivers=()):
    policy = {'policy_version': 1, 'name': 'nat', 'default': default, 'rules': list(rules), 'waivers': list(waivers)}
    return ev.evaluate_host(data, ev.compile_policy(policy), 'docker-1', [], TODAY)


def test_a_published_856_is_drift_under_the_baseline_and_says_how_it_is_reached():
    result = evaluate([UNASSIGNED_CLOSED], gathered([exposure()]))
    assert result['status'] == 'drift' and result['reasons'] == []
    [finding] = result['findings']
    assert finding['message'].startswith('tcp 0.0.0.0:856 published by DNAT to docker:web 172.17.0.2:80 '
                                         '(not an IANA-assigned service) must be closed but is published (nginx[2001] as root)')
    assert (finding['via'], finding['port'], finding['port_end'], finding['where']) == ('nat', 856, 856, 'host')
    assert finding['exposure']['owner'] == {'kind': 'namespace', 'reason': None, 'where': 'docker:web'}
    assert finding['exposure']['chain'] == 'DOCKER' and finding['processes'][0]['pid'] == 2001


def test_a_stale_target_is_still_drift_with_no_known_process():
    [finding] = evaluate([UNASSIGNED_CLOSED], gathered([exposure(owner='unknown', target='172.17.0.99')]))['findings']
    assert finding['status'] == 'drift'
    assert '172.17.0.99:80 (owner unknown)' in finding['message'] and '(no known process)' in finding['message']


@pytest.mark.parametrize('via, judged', [
    (None, {'listen', 'nat'}),
    (['listen', 'nat'], {'listen', 'nat'}),
    (['listen'], {'listen'}),
    (['nat'], {'nat'}),
])
def test_via_tells_listeners_and_exposures_apart(via, judged):
    rule = {'id': 'closed-856', 'match': {'ports': [856]}, 'expect': 'closed'}
    if via is not None:
        rule['match']['via'] = via
    result = evaluate([rule], gathered([exposure()], [sock(856)]))
    assert set(finding.get('via', 'listen') for finding in result['findings']) == judged


def test_a_published_range_is_judged_at_the_first_port_each_rule_covers():
    rules = [UNASSIGNED_CLOSED, {'id': 'no-9000', 'match': {'ports': ['9000-9010']}, 'expect': 'closed'}]
    result = evaluate(rules, gathered([exposure(800, 9005)]))
    found = dict((finding['rule'], (finding['port'], finding['port_end'])) for finding in result['findings'])
    assert found['no-9000'] == (9000, 9005)
    assert found['iana-unassigned-closed'][1] == 9005 and found['iana-unassigned-closed'][0] >= 800
    assert ', port 9000 ' in next(f for f in result['findings'] if f['rule'] == 'no-9000')['message']


def test_default_deny_flags_a_published_port_no_rule_allows():
    allow_80 = {'id': 'web', 'match': {'ports': [80]}, 'expect': {'processes': ['nginx']}}
    result = evaluate([allow_80], gathered([exposure(80), exposure(856)]), default='deny')
    assert [(finding['rule'], finding['port']) for finding in result['findings']] == [('default', 856)]
    assert 'is published (nginx[2001] as root) and no rule allows it; policy default: deny' in result['findings'][0]['message']


def test_a_process_rule_on_a_target_with_no_known_owner_is_unknown():
    allow = {'id': 'web', 'match': {'ports': [856]}, 'expect': {'processes': ['nginx']}}
    assert evaluate([allow], gathered([exposure()]))['status'] == 'compliant'
    result = evaluate([allow], gathered([exposure(owner='unknown')]))
    assert result['status'] == 'unknown' and result['findings'][0]['status'] == 'unknown'


def test_an_output_only_exposure_is_local_traffic_for_bind_rules():
    rule = {'id': 'exposed-856', 'match': {'ports': [856], 'bind': ['any', 'specific']}, 'expect': 'closed'}
    assert evaluate([rule], gathered([exposure(hooks=('output',))]))['findings'] == []
    assert len(evaluate([rule], gathered([exposure(hooks=('prerouting',))]))['findings']) == 1
    [finding] = evaluate([UNASSIGNED_CLOSED], gathered([exposure(hooks=('output',))]))['findings']
    assert 'local traffic only' in finding['message']


def test_a_waiver_waives_the_exposure_finding_like_a_socket_finding():
    waiver = {'rule': 'iana-unassigned-closed', 'ports': [856], 'reason': 'migration', 'expires': '2027-12-31'}
    result = evaluate([UNASSIGNED_CLOSED], gathered([exposure()]), waivers=[waiver])
    assert result['status'] == 'compliant' and result['findings'][0]['status'] == 'waived'


def test_the_finding_key_of_a_socket_is_unchanged_and_an_exposure_of_the_same_port_differs():
    result = evaluate([UNASSIGNED_CLOSED], gathered([exposure()], [sock(856)]))
    by_via = dict((finding.get('via', 'listen'), finding) for finding in result['findings'])
    assert rb.finding_key(by_via['listen']) == ('iana-unassigned-closed', 'tcp', '0.0.0.0', 856, 'host')
    assert rb.finding_key(by_via['nat']) != rb.finding_key(by_via['listen'])


def test_an_old_gather_without_exposures_is_judged_as_before_with_a_note():
    old = evaluate([UNASSIGNED_CLOSED], gathered(sockets=[sock(856)], nat=False))
    assert old['status'] == 'drift' and old['warnings'] == [] and old['reasons'] == []
    assert old['notes'] == [ev.NAT_NOT_READ % 'gathered before NAT was read, or by an older collection']
    assert old['notes'][0].startswith('this gather did not read the NAT (gathered before NAT was read, or by an older '
                                      'collection), so ports that DNAT or REDIRECT rules publish')
    off = evaluate([UNASSIGNED_CLOSED], gathered(mode='off'))
    assert off['status'] == 'compliant' and off['notes'] == [ev.NAT_NOT_READ % 'nat: off']
    assert evaluate([UNASSIGNED_CLOSED], gathered([exposure(80)]))['notes'] == []


def _broken(change):
    data = gathered([exposure()])
    change(data)
    return data


@pytest.mark.parametrize('change, reason', [
    (lambda d: d['coverage'].pop('nat'), 'coverage.nat: expected a mapping (the gather returned exposures), got nothing'),
    (lambda d: d.pop('exposures'), 'exposures: expected a list of exposures, got nothing'),
    (lambda d: d['coverage']['nat'].update(exposures=2), 'coverage.nat.exposures: expected the number of exposures, 1, got 2'),
    (lambda d: d['exposures'][0].update(port='856'), "exposures[0].port: expected a port number 0-65535, got '856'"),
    (lambda d: d['exposures'][0].update(port_end=855), 'exposures[0].port_end: expected a port at or above port 856, got 855'),
    (lambda d: d['exposures'][0].update(address='::'), "exposures[0].address: expected an IPv4 address or network, got '::'"),
    (lambda d: d['exposures'][0].update(hooks=[]), 'exposures[0].hooks: expected a list of prerouting and output, got a list'),
    (lambda d: d['exposures'][0]['owner'].update(kind='container'),
     "exposures[0].owner.kind: expected one of namespace, local, unknown, got 'container'"),
    (lambda d: d['exposures'][0]['owner'].update(processes=None), 'exposures[0].owner.processes: expected a list of processes, got nothing'),
    (lambda d: d['exposures'].append(copy.deepcopy(d['exposures'][0])) or d['coverage']['nat'].update(exposures=2),
     'exposures[1]: expected each exposure once, got a repeat of an earlier exposure'),
    (lambda d: d['coverage']['nat'].update(mode='on'), "coverage.nat.mode: expected auto or off, got 'on'"),
    # The NAT summary itself (mutation survivors: a check that still said unknown, but not where or why).
    (lambda d: d['coverage'].update(nat=5), 'coverage.nat: expected a mapping, got 5'),
    (lambda d: d['coverage']['nat'].update(sources=['x']), 'coverage.nat.sources: expected a mapping, got a list'),
    (lambda d: d.update(exposures={'a': 1}), 'exposures: expected a list of exposures, got a mapping'),
    (lambda d: d['coverage']['nat'].update(mode='off'), 'exposures: expected none when coverage.nat.mode is off, got 1'),
    # Every field of an exposure, each wrong in its type or its value (a check that let one pass would judge it).
    (lambda d: d['exposures'].__setitem__(0, 'x'), "exposures[0]: expected an exposure mapping, got 'x'"),
    (lambda d: d['exposures'][0].update(protocol='sctp'), "exposures[0].protocol: expected tcp or udp, got 'sctp'"),
    (lambda d: d['exposures'][0].update(protocol=6), 'exposures[0].protocol: expected tcp or udp, got 6'),
    (lambda d: d['exposures'][0].update(family='ipv5'), "exposures[0].family: expected ipv4 or ipv6, got 'ipv5'"),
    (lambda d: d['exposures'][0].pop('family'), 'exposures[0].family: expected ipv4 or ipv6, got None'),
    (lambda d: d['exposures'][0].update(address=5), 'exposures[0].address: expected an IPv4 address or network, got 5'),
    (lambda d: d['exposures'][0].update(family='ipv6'),
     "exposures[0].address: expected an IPv6 address or network, got '0.0.0.0'"),
    (lambda d: d['exposures'][0].update(port=None), 'exposures[0].port: expected a port number 0-65535, got None'),
    (lambda d: d['exposures'][0].update(port_end=70000), 'exposures[0].port_end: expected a port number 0-65535, got 70000'),
    (lambda d: d['exposures'][0].update(action='snat'), "exposures[0].action: expected dnat or redirect, got 'snat'"),
    (lambda d: d['exposures'][0].pop('action'), 'exposures[0].action: expected dnat or redirect, got None'),
    (lambda d: d['exposures'][0].update(hooks='prerouting'),
     "exposures[0].hooks: expected a list of prerouting and output, got 'prerouting'"),
    (lambda d: d['exposures'][0].update(hooks=['prerouting', 'input']),
     'exposures[0].hooks: expected a list of prerouting and output, got a list'),
    (lambda d: d['exposures'][0].update(hooks=[1]), 'exposures[0].hooks: expected a list of prerouting and output, got a list'),
    (lambda d: d['exposures'][0].update(interface=5), 'exposures[0].interface: expected a string or null, got 5'),
    (lambda d: d['exposures'][0].update(source=None), 'exposures[0].source: expected a string, got None'),
    (lambda d: d['exposures'][0].update(table=1), 'exposures[0].table: expected a string, got 1'),
    (lambda d: d['exposures'][0].update(chain=['DOCKER']), 'exposures[0].chain: expected a string, got a list'),
    (lambda d: d['exposures'][0].update(rule=None), 'exposures[0].rule: expected a string, got None'),
    (lambda d: d['exposures'][0].update(conditions=[1]), 'exposures[0].conditions[0]: expected a string, got 1'),
    (lambda d: d['exposures'][0].update(conditions='dst-type LOCAL'),
     "exposures[0].conditions: expected a list of strings, got 'dst-type LOCAL'"),
    (lambda d: d['exposures'][0].update(target='172.17.0.2:80'),
     "exposures[0].target: expected a target mapping, got '172.17.0.2:80'"),
    (lambda d: d['exposures'][0]['target'].update(address=5), 'exposures[0].target.address: expected an address, "?" or null, got 5'),
    (lambda d: d['exposures'][0]['target'].update(port='80'),
     "exposures[0].target.port: expected a port number 0-65535 or null, got '80'"),
    (lambda d: d['exposures'][0]['target'].update(port_end=70000),
     'exposures[0].target.port_end: expected a port number 0-65535 or null, got 70000'),
    (lambda d: d['exposures'][0].update(owner=None), 'exposures[0].owner: expected an owner mapping, got None'),
    (lambda d: d['exposures'][0].update(owner='nginx'), "exposures[0].owner: expected an owner mapping, got 'nginx'"),
    (lambda d: d['exposures'][0]['owner'].update(kind=None),
     'exposures[0].owner.kind: expected one of namespace, local, unknown, got None'),
    (lambda d: d['exposures'][0]['owner'].update(reason=5), 'exposures[0].owner.reason: expected a string or null, got 5'),
    (lambda d: d['exposures'][0]['owner'].update(namespace=None),
     'exposures[0].owner.namespace: expected the namespace of a namespace owner, got nothing'),
    (lambda d: d['exposures'][0]['owner'].update(namespace='web'),
     "exposures[0].owner.namespace: expected a namespace mapping or null, got 'web'"),
])
def test_a_malformed_exposure_makes_the_host_unknown_saying_where(change, reason):
    result = evaluate([UNASSIGNED_CLOSED], _broken(change))
    assert result['status'] == 'unknown' and result['findings'] == []
    assert result['reasons'] == ['malformed gather result: %s' % reason]


@pytest.mark.parametrize('change, findings', [
    (lambda d: d['exposures'][0].update(address='10.0.0.0/8'), 1),  # a destination network
    (lambda d: d['exposures'][0].update(address='10.1.2.3/8'), 1),  # written with host bits, as a hand-made rule may be
    (lambda d: d['exposures'][0].update(address='0.0.0.0/0'), 1),  # the whole family
    (lambda d: d['exposures'][0].update(interface=None), 1),  # any interface
    (lambda d: d['exposures'][0]['target'].update(address=None, port=None, port_end=None), 1),  # REDIRECT-like
    # The same port published by two rules is two exposures, each judged.
    (lambda d: d['exposures'].append(dict(copy.deepcopy(d['exposures'][0]), rule='another rule'))
     or d['coverage']['nat'].update(exposures=2), 2),
    (lambda d: d['exposures'].append(dict(copy.deepcopy(d['exposures'][0]), chain='OTHER'))
     or d['coverage']['nat'].update(exposures=2), 2),
])
def test_a_well_formed_exposure_of_another_shape_is_judged(change, findings):
    result = evaluate([UNASSIGNED_CLOSED], _broken(change))
    assert result['status'] == 'drift' and result['reasons'] == []
    assert len(result['findings']) == findings and {item['port'] for item in result['findings']} == {856}


def test_a_namespace_owner_must_agree_with_the_sockets_description_of_it():
    data = gathered([exposure()], [dict(sock(80), namespace=dict(WEB, pid=9))])
    result = evaluate([UNASSIGNED_CLOSED], data)
    assert result['status'] == 'unknown' and 'owner.namespace' in result['reasons'][0]


def test_an_unknown_owner_behind_a_published_port_says_to_gather_the_namespaces():
    """root cannot tell who answers behind a DNAT to another namespace without the namespace gather: the advice says
    so, not only "run with become" (which it already does)."""
    waiver = {'rule': 'iana-unassigned-closed', 'ports': [856], 'processes': ['nginx'], 'reason': 'vendor',
              'expires': '2099-12-31'}
    result = evaluate([UNASSIGNED_CLOSED], gathered([exposure(owner='unknown')]), waivers=[waiver])
    assert result['status'] == 'drift'
    [finding] = result['findings']
    assert finding['message'].endswith('(%s)' % ev.PUBLISHED_OWNER_HINT)
    assert result['reasons'][-1].endswith('(run with become; for a published port, gather with namespaces: all so the '
                                          'process behind it is known)')
    result = evaluate([{'id': 'nat', 'match': {'ports': [856]}, 'expect': {'processes': ['nginx']}}],
                      gathered([exposure(owner='unknown')]))
    assert result['status'] == 'unknown' and result['reasons'][-1] == (
        'some rules need process facts the gather could not give (run with become; %s)' % ev.PUBLISHED_OWNER_HINT)
    result = evaluate([{'id': 'nat', 'match': {'ports': [856]}, 'expect': {'processes': ['nginx']}}],
                      gathered([], [dict(sock(856), processes=[])]))
    assert result['reasons'][-1] == 'some rules need process facts the gather could not give (run with become)'


def _published_finding(**changes):
    finding = {'rule': 'iana-unassigned-closed', 'severity': 'high', 'status': 'drift', 'protocol': 'tcp', 'family': 'ipv4',
               'address': '0.0.0.0', 'port': 856, 'v6only': None, 'service': None, 'processes': NGINX, 'waived': False,
               'waiver': None, 'where': 'host', 'namespace': None, 'via': 'nat', 'port_end': 856,
               'exposure': {'action': 'dnat', 'hooks': ['prerouting', 'output'], 'interface': '!docker0',
                            'target': {'address': '172.17.0.2', 'port': 80, 'port_end': 80}, 'source': 'iptables-nft',
                            'table': 'ip nat', 'chain': 'DOCKER',
                            'rule': '-A DOCKER ! -i docker0 -p tcp -m tcp --dport 856 -j DNAT --to-destination 172.17.0.2:80',
                            'owner': {'kind': 'namespace', 'reason': None, 'where': 'docker:web'}},
               'message': 'tcp 0.0.0.0:856 published by DNAT to docker:web 172.17.0.2:80 (not an IANA-assigned service) '
                          'must be closed but is published (nginx[2001] as root); rule iana-unassigned-closed'}
    finding.update(changes)
    return finding


def test_the_finding_of_a_published_port_is_the_whole_record_reports_read():
    """Every key of a finding made from an exposure, as the report schema and the reports read it: a key renamed, a
    value lost (the service, the interface, the owner's reason and place) or a finding born waived is caught here."""
    result = evaluate([UNASSIGNED_CLOSED], gathered([exposure()]))
    assert result['findings'] == [_published_finding()]
    # An IANA service on IPv6, any interface, only the host's own traffic (OUTPUT), an owner nobody could tell.
    published = exposure(port=80, owner='unknown', hooks=('output',), address='::', family='ipv6', target='fd00::2')
    published['interface'] = None
    result = evaluate([{'id': 'no-web', 'match': {'ports': [80]}, 'expect': 'closed'}], gathered([published]))
    expected = _published_finding(
        rule='no-web', severity='medium', family='ipv6', address='::', port=80, port_end=80, service='http', processes=[],
        message='tcp [::]:80 published by DNAT to [fd00::2]:80 (owner unknown) (local traffic only: OUTPUT) (IANA: http) '
                'must be closed but is published (no known process); rule no-web')
    expected['exposure'] = dict(expected['exposure'], hooks=['output'], interface=None, rule=published['rule'],
                                target={'address': 'fd00::2', 'port': 80, 'port_end': 80},
                                owner={'kind': 'unknown', 'reason': 'no network namespace of this host holds 172.17.0.2',
                                       'where': None})
    assert result['findings'] == [expected]


def test_a_rule_publishing_every_port_is_well_formed_and_judged_on_its_unassigned_ports():
    """A DNAT with no port match publishes 0-65535: port 0 and 65535 are ports, and the range holds unassigned ones."""
    result = evaluate([UNASSIGNED_CLOSED], gathered([exposure(port=0, port_end=65535)]))
    assert result['status'] == 'drift' and result['reasons'] == []
    [finding] = result['findings']
    assert finding['via'] == 'nat' and finding['port'] <= 856 <= finding['port_end'] == 65535
    assert finding['exposure']['rule'].endswith('--dport 0 -j DNAT --to-destination 172.17.0.2:80')


def test_an_unknown_finding_of_a_published_port_names_no_process_it_could_not_see():
    rules = [{'id': 'nat', 'match': {'ports': [856]}, 'expect': {'processes': ['nginx']}}]
    result = evaluate(rules, gathered([exposure(owner='unknown')]))
    assert result['status'] == 'unknown'
    assert [(item['status'], item['message']) for item in result['findings']] == [(
        'unknown', 'tcp 0.0.0.0:856 published by DNAT to 172.17.0.2:80 (owner unknown) (not an IANA-assigned service): '
                   'no owning process is known, so the allowed processes cannot be checked; rule nat')]


def test_an_ip6_nat_exposure_is_reached_over_ipv6_only_and_an_output_only_one_from_the_host_only():
    """An ip6 nat DNAT publishes the port to IPv6 peers alone (no dual-stack socket behind it), and one reached only
    from the nat output hook takes the host's own traffic: a rule for IPv4, or one expecting a loopback bind, reads
    them so."""
    ipv4_closed = {'id': 'v4-closed', 'match': {'ports': [856], 'families': ['ipv4']}, 'expect': 'closed'}
    six = exposure(address='::', family='ipv6', target='fd00::2')
    assert evaluate([ipv4_closed], gathered([six]))['status'] == 'compliant'
    assert evaluate([ipv4_closed], gathered([exposure()]))['status'] == 'drift'
    loopback = {'id': 'lo', 'match': {'ports': [856]}, 'expect': {'bind': 'loopback'}}
    assert evaluate([loopback], gathered([exposure(hooks=('output',))]))['status'] == 'compliant'
    [finding] = evaluate([loopback], gathered([exposure()]))['findings']
    assert ' is bound to any addresses; allowed: loopback ' in finding['message']


def test_a_rule_that_does_not_match_an_exposure_leaves_the_next_rule_on_its_port_to_judge_it():
    """Rules are tried in turn at each port of an exposure: one that does not match it (a rule for listeners only)
    must not end the search, or the rule after it is never asked and default: deny speaks instead."""
    listen_only = {'id': 'listen-856', 'match': {'ports': [856], 'via': ['listen']}, 'expect': {'processes': ['nginx']}}
    closed = {'id': 'closed-856', 'match': {'ports': [856]}, 'expect': 'closed'}
    result = evaluate([listen_only, closed], gathered([exposure()]), default='deny')
    assert [(finding['rule'], finding['port'], finding['via']) for finding in result['findings']] == [
        ('closed-856', 856, 'nat')]


def test_each_problem_of_a_published_port_is_named_in_its_message():
    rule = {'id': 'web', 'match': {'ports': [856]}, 'expect': {'processes': ['sshd'], 'bind': 'loopback'}}
    [finding] = evaluate([rule], gathered([exposure()]))['findings']
    assert finding['status'] == 'drift'
    assert finding['message'] == (
        'tcp 0.0.0.0:856 published by DNAT to docker:web 172.17.0.2:80 (not an IANA-assigned service) is bound to any '
        'addresses; allowed: loopback; is held by nginx[2001]; allowed processes: sshd (nginx[2001] as root); rule web')


def test_every_closed_rule_about_a_published_port_judges_it():
    """Two rules that both keep 856 closed are two findings, as for a socket: the first one's finding does not end
    the search at that port."""
    closed = {'id': 'closed-856', 'match': {'ports': [856]}, 'expect': 'closed'}
    result = evaluate([UNASSIGNED_CLOSED, closed], gathered([exposure()]))
    assert sorted(finding['rule'] for finding in result['findings']) == ['closed-856', 'iana-unassigned-closed']
    sockets = evaluate([UNASSIGNED_CLOSED, closed], gathered([], [sock(856)]))
    assert sorted(finding['rule'] for finding in sockets['findings']) == ['closed-856', 'iana-unassigned-closed']
