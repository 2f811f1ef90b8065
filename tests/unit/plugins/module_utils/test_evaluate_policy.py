"""Table-driven tests of the evaluation core: (sockets, coverage, policy, host, groups, today) -> verdict."""

import datetime

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev

TODAY = datetime.date(2027, 1, 20)
COMPLETE = {'complete': True, 'errors': []}


def sock(port, protocol='tcp', address='0.0.0.0', family=None, v6only=None, ephemeral=False, processes=None):
    family = family or ('ipv6' if ':' in address else 'ipv4')
    if processes is None:
        processes = [{'pid': 100, 'name': 'agent', 'user': 'nobody', 'uid': 65534, 'exe': '/opt/agent', 'unit': None}]
    return {'protocol': protocol, 'family': family, 'address': address, 'port': port, 'v6only': v6only,
            'ephemeral': ephemeral, 'inode': 1, 'processes': processes}


def proc(name, user='root', uid=0, unit=None, pid=200, exe=None):
    return {'pid': pid, 'name': name, 'user': user, 'uid': uid, 'exe': exe or '/usr/sbin/' + name, 'unit': unit,
            'cmdline': 'secret --password hunter2'}


def policy(*rules, **extra):
    data = {'policy_version': 1, 'name': 'test', 'rules': list(rules)}
    data.update(extra)
    return data


UNASSIGNED_CLOSED = {'id': 'iana-unassigned-closed', 'description': 'Ports IANA has not assigned must stay closed',
                     'match': {'ports': 'iana:unassigned', 'protocols': ['tcp', 'udp']}, 'expect': 'closed',
                     'severity': 'high'}
SSH_SSHD = {'id': 'ssh-only-sshd', 'match': {'ports': [22], 'protocols': ['tcp']},
            'expect': {'processes': ['sshd']}, 'severity': 'medium'}
PG_LOOPBACK = {'id': 'postgres-loopback-only', 'match': {'ports': ['5432']}, 'expect': {'bind': 'loopback'},
               'severity': 'high'}


def evaluate(data, sockets, host='web-1', groups=(), coverage=None, today=TODAY):
    gathered = None if sockets is None else {'sockets': sockets, 'coverage': COMPLETE if coverage is None else coverage}
    return ev.evaluate_host(gathered, ev.compile_policy(data), host, groups, today)


def rules_hit(result):
    return sorted((f['rule'], f['status'], f['protocol'], f['port']) for f in result['findings'])


@pytest.mark.parametrize('rules, sockets, expected_status, expected', [
    # the emblem: 856 is unassigned for tcp and udp
    ([UNASSIGNED_CLOSED], [sock(856)], 'drift', [('iana-unassigned-closed', 'drift', 'tcp', 856)]),
    ([UNASSIGNED_CLOSED], [sock(859, 'udp')], 'drift', [('iana-unassigned-closed', 'drift', 'udp', 859)]),
    ([UNASSIGNED_CLOSED], [sock(22), sock(443)], 'compliant', []),
    ([UNASSIGNED_CLOSED], [], 'compliant', []),
    # dynamic ports are not "unassigned": a service on 50000 is not flagged by the IANA rule
    ([UNASSIGNED_CLOSED], [sock(50000)], 'compliant', []),
    # process constraints
    ([SSH_SSHD], [sock(22, processes=[proc('sshd')])], 'compliant', []),
    ([SSH_SSHD], [sock(22, processes=[proc('sshd'), proc('sshd', pid=201)])], 'compliant', []),
    ([SSH_SSHD], [sock(22, processes=[proc('dropbear')])], 'drift', [('ssh-only-sshd', 'drift', 'tcp', 22)]),
    ([SSH_SSHD], [sock(22, processes=[])], 'unknown', [('ssh-only-sshd', 'unknown', 'tcp', 22)]),
    ([SSH_SSHD], [sock(22, 'udp', processes=[])], 'compliant', []),  # the rule is tcp only
    # bind expectations, dual stack and mapped addresses
    ([PG_LOOPBACK], [sock(5432, address='127.0.0.1')], 'compliant', []),
    ([PG_LOOPBACK], [sock(5432, address='::1', v6only=True)], 'compliant', []),
    ([PG_LOOPBACK], [sock(5432, address='::ffff:127.0.0.1', v6only=False)], 'compliant', []),
    ([PG_LOOPBACK], [sock(5432)], 'drift', [('postgres-loopback-only', 'drift', 'tcp', 5432)]),
    ([PG_LOOPBACK], [sock(5432, address='::', v6only=False)], 'drift', [('postgres-loopback-only', 'drift', 'tcp', 5432)]),
    ([PG_LOOPBACK], [sock(5432, address='10.0.0.5')], 'drift', [('postgres-loopback-only', 'drift', 'tcp', 5432)]),
], ids=['tcp-856', 'udp-859', 'assigned-ports', 'no-sockets', 'dynamic-port', 'sshd', 'sshd-forked', 'not-sshd',
        'no-process-info', 'other-protocol', 'pg-v4-loopback', 'pg-v6-loopback', 'pg-mapped-loopback', 'pg-any',
        'pg-dual-stack', 'pg-specific'])
def test_rules(rules, sockets, expected_status, expected):
    result = evaluate(policy(*rules), sockets)
    assert result['status'] == expected_status
    assert rules_hit(result) == expected


FAMILY_RULE = {'id': 'no-v4-8080', 'match': {'ports': [8080], 'families': ['ipv4']}, 'expect': 'closed'}


@pytest.mark.parametrize('entry, hit', [
    (sock(8080), True),
    (sock(8080, address='::', v6only=False), True),  # dual-stack [::] also accepts IPv4
    (sock(8080, address='::', v6only=None), True),  # unknown v6only reads as dual-stack: conservative
    (sock(8080, address='::', v6only=True), False),
    (sock(8080, address='::1', v6only=True), False),
    (sock(8080, address='::ffff:10.1.2.3', v6only=False), True),  # v4-mapped is IPv4 traffic
], ids=['v4', 'dual-stack', 'v6only-unknown', 'v6only', 'v6-loopback', 'v4-mapped'])
def test_family_match_follows_what_the_socket_accepts(entry, hit):
    assert bool(evaluate(policy(FAMILY_RULE), [entry])['findings']) is hit


@pytest.mark.parametrize('match, entry, hit', [
    ({'bind': ['loopback']}, sock(9000, address='127.0.0.5'), True),
    ({'bind': ['loopback']}, sock(9000), False),
    ({'bind': ['any']}, sock(9000, address='::', v6only=True), True),
    ({'bind': ['specific']}, sock(9000, address='192.0.2.7'), True),
    ({'ports': '9000-9010'}, sock(9005), True),
    ({'ports': '9000-9010'}, sock(9011), False),
    ({'ports': ['system', 9000]}, sock(9000), True),
    ({'ports': 'system'}, sock(1023), True),
    ({'ports': 'system'}, sock(1024), False),
    ({'ports': 'user'}, sock(49151), True),
    ({'ports': 'dynamic'}, sock(49152), True),
    ({'ports': 'iana:reserved'}, sock(0), True),
    ({'ports': 'iana:assigned'}, sock(22), True),
    ({}, sock(1), True),  # an empty match is every socket
], ids=['bind-loopback', 'bind-loopback-miss', 'bind-any-v6', 'bind-specific', 'range', 'range-miss', 'set-and-port',
        'system-top', 'system-miss', 'user-top', 'dynamic-bottom', 'reserved-0', 'assigned-22', 'empty-match'])
def test_match_keys(match, entry, hit):
    rule = {'id': 'r', 'match': match, 'expect': 'closed'}
    assert bool(evaluate(policy(rule), [entry])['findings']) is hit


@pytest.mark.parametrize('expect, processes, status', [
    ({'users': ['postgres']}, [proc('postgres', user='postgres', uid=111)], 'compliant'),
    ({'users': ['111']}, [proc('postgres', user='postgres', uid=111)], 'compliant'),
    ({'users': ['postgres']}, [proc('postgres', user='root')], 'drift'),
    ({'units': ['postgresql*.service']}, [proc('postgres', unit='postgresql@15-main.service')], 'compliant'),
    ({'units': ['postgresql*.service']}, [proc('postgres', unit=None)], 'drift'),
    ({'processes': ['/usr/lib/postgresql/*/bin/postgres']}, [proc('postgres', exe='/usr/lib/postgresql/15/bin/postgres')],
     'compliant'),
    # every process holding the socket must be allowed: one stray holder is drift
    ({'processes': ['postgres']}, [proc('postgres'), proc('nc', pid=999)], 'drift'),
    ({'processes': ['postgres'], 'bind': 'any'}, [proc('postgres')], 'compliant'),
], ids=['user-name', 'user-uid', 'user-wrong', 'unit-glob', 'unit-missing', 'exe-path', 'stray-holder', 'process-and-bind'])
def test_expectations(expect, processes, status):
    rule = {'id': 'pg', 'match': {'ports': [5432]}, 'expect': expect}
    assert evaluate(policy(rule), [sock(5432, processes=processes)])['status'] == status


def test_ephemeral_udp_is_ignored_unless_a_rule_asks():
    noise = sock(50001, 'udp', ephemeral=True)
    closed = {'id': 'no-dynamic-udp', 'match': {'ports': 'dynamic', 'protocols': ['udp']}, 'expect': 'closed'}
    assert evaluate(policy(closed), [noise])['status'] == 'compliant'
    asking = dict(closed, match=dict(closed['match'], include_ephemeral=True))
    assert evaluate(policy(asking), [noise])['status'] == 'drift'
    # nor does default: deny count client noise as drift
    assert evaluate(policy(default='deny'), [noise])['status'] == 'compliant'


def test_default_deny_flags_what_no_rule_allows_once():
    data = policy(SSH_SSHD, UNASSIGNED_CLOSED, default='deny', default_severity='low')
    result = evaluate(data, [sock(22, processes=[proc('sshd')]), sock(8080), sock(856)])
    # 8080 matched no rule -> default; 856 matched the IANA rule -> that finding only, not a second default one
    assert rules_hit(result) == [('default', 'drift', 'tcp', 8080), ('iana-unassigned-closed', 'drift', 'tcp', 856)]
    default = next(f for f in result['findings'] if f['rule'] == 'default')
    assert default['severity'] == 'low'
    assert 'no rule allows it' in default['message']


def test_default_allow_ignores_unmatched_sockets():
    assert evaluate(policy(SSH_SSHD), [sock(8080)])['status'] == 'compliant'


@pytest.mark.parametrize('patterns, host, groups, applies', [
    (['db-*'], 'db-1', [], True),
    (['db-*'], 'web-1', [], False),
    (['group:databases'], 'pg-7', ['databases'], True),
    (['group:data*'], 'pg-7', ['databases'], True),
    (['group:databases'], 'pg-7', ['web'], False),
    (['db-*', '!db-3'], 'db-3', [], False),
    (['!group:legacy'], 'old-1', ['legacy'], False),
    (['!group:legacy'], 'new-1', [], True),
], ids=['name', 'name-miss', 'group', 'group-glob', 'group-miss', 'exclude-name', 'exclude-group', 'only-exclude'])
def test_rule_host_scope(patterns, host, groups, applies):
    rule = dict(UNASSIGNED_CLOSED, hosts=patterns)
    assert bool(evaluate(policy(rule), [sock(856)], host=host, groups=groups)['findings']) is applies


def waiver(**fields):
    data = {'rule': 'iana-unassigned-closed', 'reason': 'vendor agent, retired in Q1', 'expires': '2027-03-31'}
    data.update(fields)
    return data


@pytest.mark.parametrize('waivers, host, status, finding_status, warned', [
    ([waiver()], 'web-1', 'compliant', 'waived', False),
    ([waiver(expires='2027-01-20')], 'web-1', 'compliant', 'waived', True),  # the last day still holds
    ([waiver(expires='2027-01-19')], 'web-1', 'drift', 'drift', False),  # expired yesterday
    ([waiver(expires='2027-02-03')], 'web-1', 'compliant', 'waived', True),  # 14 days: warned
    ([waiver(expires='2027-02-04')], 'web-1', 'compliant', 'waived', False),  # 15 days: not yet
    ([waiver(hosts=['legacy-*'])], 'web-1', 'drift', 'drift', False),
    ([waiver(hosts=['legacy-*'])], 'legacy-2', 'compliant', 'waived', False),
    ([waiver(ports=[857])], 'web-1', 'drift', 'drift', False),
    ([waiver(ports=['855-859'], protocols=['tcp'])], 'web-1', 'compliant', 'waived', False),
    ([waiver(protocols=['udp'])], 'web-1', 'drift', 'drift', False),
    ([waiver(rule='ssh-only-sshd')], 'web-1', 'drift', 'drift', False),
    # an expired waiver does not hide a valid one behind it
    ([waiver(expires='2026-12-31'), waiver(ticket='CHG-2')], 'web-1', 'compliant', 'waived', False),
], ids=['valid', 'last-day', 'expired', 'warned', 'not-yet-warned', 'other-host', 'host-pattern', 'other-port',
        'range-and-protocol', 'other-protocol', 'other-rule', 'expired-then-valid'])
def test_waivers(waivers, host, status, finding_status, warned):
    result = evaluate(policy(UNASSIGNED_CLOSED, SSH_SSHD, waivers=waivers), [sock(856)], host=host)
    assert result['status'] == status
    [finding] = result['findings']
    assert finding['status'] == finding_status
    assert finding['waived'] is (finding_status == 'waived')
    assert bool(result['warnings']) is warned
    if finding_status == 'waived':
        assert finding['waiver']['reason'] == 'vendor agent, retired in Q1'


def test_expired_waiver_says_so_and_stays_visible():
    result = evaluate(policy(UNASSIGNED_CLOSED, waivers=[waiver(expires='2027-01-01', ticket='CHG-1234')]), [sock(856)])
    [finding] = result['findings']
    assert finding['waiver_expired']['ticket'] == 'CHG-1234'
    assert 'waiver (CHG-1234) expired 2027-01-01' in finding['message']


def test_waiver_warning_days_is_configurable():
    data = policy(UNASSIGNED_CLOSED, waivers=[waiver(expires='2027-01-25')], waiver_warning_days=3)
    assert evaluate(data, [sock(856)])['warnings'] == []
    data['waiver_warning_days'] = 5
    [warning] = evaluate(data, [sock(856)])['warnings']
    assert 'expires 2027-01-25, in 5 days' in warning


@pytest.mark.parametrize('sockets, coverage, status, reason', [
    (None, None, 'unknown', 'no gather result'),
    ([], {'complete': False, 'errors': ['tcp/ipv6: netlink backend: refused']}, 'unknown', 'tcp/ipv6'),
    # drift is certain even on a partial gather, but the verdict stays incomplete
    ([sock(856)], {'complete': False, 'errors': ['3 processes could not be inspected']}, 'drift', 'inspected'),
    # no "complete" key: never assume complete
    ([], {'sockets': 0}, 'unknown', 'malformed gather result: coverage.complete: expected true or false, got nothing'),
], ids=['gather-failed', 'partial-empty', 'partial-with-drift', 'coverage-without-complete'])
def test_coverage_decides_unknown(sockets, coverage, status, reason):
    data = policy(UNASSIGNED_CLOSED)
    if sockets is None:
        result = ev.evaluate_host(None, ev.compile_policy(data), 'web-1', [], TODAY)
    else:
        result = evaluate(data, sockets, coverage=coverage)
    assert result['status'] == status
    assert any(reason in text for text in result['reasons'])
    assert ev.gate(result, 'never', fail_on_unknown=True)  # unknown fails closed
    assert ev.gate(result, 'never', fail_on_unknown=False) == []


@pytest.mark.parametrize('fail_on, failed', [
    ('never', False), ('info', True), ('medium', True), ('high', True), ('critical', False),
])
def test_gate_thresholds(fail_on, failed):
    result = evaluate(policy(UNASSIGNED_CLOSED), [sock(856)])  # one high finding
    assert bool(ev.gate(result, fail_on, fail_on_unknown=True)) is failed


def test_waived_findings_do_not_trip_the_gate():
    result = evaluate(policy(UNASSIGNED_CLOSED, waivers=[waiver()]), [sock(856)])
    assert ev.gate(result, 'info', fail_on_unknown=True) == []


def test_finding_content_is_actionable_and_carries_no_command_line():
    result = evaluate(policy(UNASSIGNED_CLOSED), [sock(856, processes=[proc('agent', user='nobody', uid=65534)])])
    [finding] = result['findings']
    assert finding['severity'] == 'high'
    assert finding['service'] is None
    assert finding['message'] == ('tcp 0.0.0.0:856 (not an IANA-assigned service) must be closed but is listening '
                                  '(agent[200] as nobody); rule iana-unassigned-closed: Ports IANA has not assigned '
                                  'must stay closed')
    assert set(finding['processes'][0]) == {'pid', 'name', 'user', 'uid', 'exe', 'unit', 'start_time'}
    ssh = evaluate(policy(SSH_SSHD), [sock(22, processes=[proc('dropbear')])])['findings'][0]
    assert ssh['service'] == 'ssh'
    assert 'tcp 0.0.0.0:22 (IANA: ssh) is held by dropbear[200]; allowed processes: sshd' in ssh['message']


def test_result_names_policy_and_registry():
    data = policy(UNASSIGNED_CLOSED)
    result = evaluate(data, [])
    assert result['policy'] == {'name': 'test', 'sha256': ev.policy_digest(data)}
    assert result['registry']['date'] == '2026-08-17'
    assert result['evaluated_on'] == '2027-01-20'
    assert result['summary'] == {'findings': 0, 'drift': 0, 'waived': 0, 'unknown': 0, 'remediated': 0,
                                 'drift_by_severity': {'info': 0, 'low': 0, 'medium': 0, 'high': 0, 'critical': 0}}


def test_findings_are_sorted_worst_first_and_counted():
    low = {'id': 'low-rule', 'match': {'ports': [8080]}, 'expect': 'closed', 'severity': 'low'}
    result = evaluate(policy(low, UNASSIGNED_CLOSED), [sock(8080), sock(856), sock(857)])
    assert [f['severity'] for f in result['findings']] == ['high', 'high', 'low']
    assert result['summary']['drift_by_severity']['high'] == 2
    assert result['summary']['drift'] == 3


def test_policy_digest_does_not_depend_on_key_order():
    assert ev.policy_digest({'a': 1, 'b': [1, 2]}) == ev.policy_digest({'b': [1, 2], 'a': 1})
    assert ev.policy_digest({'a': 1}) != ev.policy_digest({'a': 2})


def test_malformed_socket_entries_make_the_host_unknown_not_crash():
    result = evaluate(policy(UNASSIGNED_CLOSED), [{'protocol': 'tcp'}, sock(22)])
    assert result['status'] == 'unknown'
    assert result['reasons'] == ['malformed gather result: sockets[0].family: expected ipv4 or ipv6, got None']


@pytest.mark.parametrize('address, family, v6only', [
    ('::', 'ipv6', False),  # dual-stack: reachable over IPv4 too
    ('::', 'ipv6', True),   # IPv6 only
    ('::', 'ipv6', None),   # unknown (procfs, psutil): read as dual-stack
    ('0.0.0.0', 'ipv4', None),
])
def test_findings_say_whether_a_listener_is_dual_stack(address, family, v6only):
    """Rule: a finding carries the socket's v6only, so the report tells a dual-stack [::] listener from an IPv6-only one."""
    from jsonschema import Draft202012Validator

    from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_schema import REPORT_SCHEMA

    result = evaluate(policy(UNASSIGNED_CLOSED), [sock(856, address=address, family=family, v6only=v6only)])
    [finding] = result['findings']
    assert 'v6only' in finding and finding['v6only'] is v6only
    entry = rb.host_entry('web-1', result)
    [clean] = entry['findings']
    assert 'v6only' in clean and clean['v6only'] is v6only
    report = rb.build_report([entry], dict(result['policy'], rules=[]), result['registry'])
    Draft202012Validator(REPORT_SCHEMA).validate(report)
    assert REPORT_SCHEMA['$defs']['finding']['properties']['v6only']['type'] == ['boolean', 'null']
