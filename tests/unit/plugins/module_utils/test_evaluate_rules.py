"""The verdict rules mutation testing found unguarded (scripts/mutation.sh): each test names the rule it guards.

Each rule here was broken by a mutant of evaluate_policy.py that every fast test still passed: a loop that
stops at the first socket no rule is about, a waiver search that gives up at the first waiver that does not
apply, a result without its coverage, a gate whose defaults let unknown through, counts that stop at one.
"""

import copy
import datetime
import gc

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb

TODAY = datetime.date(2027, 1, 20)


@pytest.fixture(autouse=True)
def _no_known_endpoints():
    """Each test starts with no endpoint known valid, so its first socket of each takes the full check."""
    ev._ENDPOINTS.clear()


AGENT = [{'pid': 100, 'name': 'agent', 'user': 'nobody', 'uid': 65534, 'exe': '/opt/agent', 'unit': None,
          'start_time': 5000}]
CLOSED_856 = {'id': 'iana-unassigned-closed', 'match': {'ports': 'iana:unassigned'}, 'expect': 'closed', 'severity': 'high'}


def sock(port, protocol='tcp', address='0.0.0.0', v6only=None, ephemeral=False, processes=None, namespace=None, inode=None):
    entry = {'protocol': protocol, 'family': 'ipv6' if ':' in address else 'ipv4', 'address': address, 'port': port,
             'v6only': v6only, 'ephemeral': ephemeral, 'inode': inode if inode is not None else port,
             'processes': AGENT if processes is None else processes}
    if namespace is not None:
        entry['namespace'] = namespace
    return entry


def gather(*sockets, complete=True, errors=None):
    return {'sockets': list(sockets), 'coverage': {'complete': complete, 'errors': list(errors or []), 'sockets': len(sockets)}}


def evaluate(rules, *sockets, waivers=None, host='web-1', default='allow', gathered=None, **coverage):
    compiled = ev.compile_policy({'policy_version': 1, 'name': 't', 'default': default, 'rules': list(rules),
                                  'waivers': list(waivers or [])})
    return ev.evaluate_host(gathered or gather(*sockets, **coverage), compiled, host, [], TODAY)


def hits(result):
    return sorted((f['rule'], f['status'], f['protocol'], f['port']) for f in result['findings'])


# ---- the socket loop judges every socket -------------------------------------------------------------

def test_a_socket_no_rule_is_about_does_not_end_the_judging():
    """Rule: every socket is judged; one that no rule is about (most of them) is skipped, not the end of the list."""
    result = evaluate([CLOSED_856], sock(8080), sock(443), sock(856))
    assert hits(result) == [('iana-unassigned-closed', 'drift', 'tcp', 856)]


def test_an_ephemeral_socket_a_rule_skips_does_not_hide_the_next_rule():
    """Rule: a rule that leaves ephemeral sockets out skips only itself; a later rule asking for them still judges."""
    skipping = {'id': 'a-udp-closed', 'match': {'ports': [50001], 'protocols': ['udp']}, 'expect': 'closed'}
    asking = {'id': 'b-udp-closed-ephemeral', 'match': {'ports': [50001], 'protocols': ['udp'], 'include_ephemeral': True},
              'expect': 'closed'}
    result = evaluate([skipping, asking], sock(50001, 'udp', ephemeral=True), sock(50002, 'udp', ephemeral=True))
    assert hits(result) == [('b-udp-closed-ephemeral', 'drift', 'udp', 50001)]


def test_a_rule_that_does_not_match_does_not_hide_the_next_rule():
    """Rule: a rule whose filters (family, bind, namespaces) leave a socket out skips only itself."""
    v6 = {'id': 'a-v6-only', 'match': {'ports': [8080], 'families': ['ipv6']}, 'expect': 'closed'}
    loopback = {'id': 'b-loopback', 'match': {'ports': [8080], 'bind': ['loopback']}, 'expect': 'closed'}
    anywhere = {'id': 'c-anywhere', 'match': {'ports': [8080]}, 'expect': 'closed'}
    result = evaluate([v6, loopback, anywhere], sock(8080, address='10.0.0.1'))
    assert hits(result) == [('c-anywhere', 'drift', 'tcp', 8080)]


def test_every_rule_a_socket_breaks_is_a_finding():
    """Rule: a socket is judged by every rule about its port: a closed rule's finding does not end its judging."""
    closed = {'id': 'a-closed', 'match': {'ports': [9000]}, 'expect': 'closed'}
    loopback = {'id': 'b-loopback', 'match': {'ports': [9000]}, 'expect': {'bind': 'loopback'}}
    sshd = {'id': 'c-sshd', 'match': {'ports': [9000]}, 'expect': {'processes': ['sshd']}}
    result = evaluate([closed, loopback, sshd], sock(9000), sock(9000, address='::', v6only=False, inode=2))
    assert hits(result) == sorted([(rule, 'drift', 'tcp', 9000) for rule in ('a-closed', 'b-loopback', 'c-sshd')] * 2)


def test_a_rule_met_does_not_end_the_judging_of_the_socket():
    """Rule: a rule the socket satisfies is no waiver for the next rule about it."""
    sshd_ok = {'id': 'a-agent', 'match': {'ports': [9000]}, 'expect': {'processes': ['agent']}}
    loopback = {'id': 'b-loopback', 'match': {'ports': [9000]}, 'expect': {'bind': 'loopback'}}
    assert hits(evaluate([sshd_ok, loopback], sock(9000))) == [('b-loopback', 'drift', 'tcp', 9000)]


def test_a_bind_finding_names_what_the_socket_is_bound_to_and_every_class_the_rule_allows():
    """Rule: the message of a bind finding says the socket's class and each allowed class, in order, by name."""
    rule = {'id': 'b-bind', 'match': {'ports': [9000]}, 'expect': {'bind': ['specific', 'loopback']}}
    finding, = evaluate([rule], sock(9000))['findings']
    assert finding['message'] == ('tcp 0.0.0.0:9000 (IANA: cslistener) is bound to any addresses; allowed: loopback, specific '
                                  '(agent[100] as nobody); rule b-bind')


def test_a_closed_rule_says_the_socket_must_be_closed_to_any_caller_of_violations():
    """Rule: Rule.violations of a closed rule is the one problem "must be closed", whoever calls it (the explain path
    and the evaluation judge closed rules before they ask, but the answer is still the rule's)."""
    rule = ev.compile_policy({'policy_version': 1, 'name': 't', 'rules': [CLOSED_856]}).rules[0]
    assert rule.violations(sock(856)) == (['must be closed but is listening'], [])


def test_a_policy_that_names_no_default_allows_what_no_rule_is_about():
    """Rule: default is allow when the policy does not say (the schema's default): a socket no rule is about is no finding."""
    compiled = ev.compile_policy({'policy_version': 1, 'name': 't', 'rules': [CLOSED_856]})
    assert compiled.default == 'allow'
    assert hits(ev.evaluate_host({'sockets': [sock(8080)], 'coverage': {'complete': True, 'errors': []}}, compiled,
                                 'web-1', [], TODAY)) == []


def test_default_deny_judges_every_unmatched_socket():
    """Rule: with default: deny, each socket no rule matched is a finding, however many come before it."""
    result = evaluate([CLOSED_856], sock(856), sock(8080), sock(8081), default='deny')
    assert hits(result) == [('default', 'drift', 'tcp', 8080), ('default', 'drift', 'tcp', 8081),
                            ('iana-unassigned-closed', 'drift', 'tcp', 856)]


# ---- the waiver search tries every waiver ---------------------------------------------------------------

def waiver(**fields):
    return dict({'rule': 'iana-unassigned-closed', 'reason': 'vendor agent', 'expires': '2027-06-30'}, **fields)


CONTAINER = {'inode': 4026532001, 'host': False, 'pid': 700,
             'container': {'kind': 'docker', 'id': 'ab' * 32, 'pod_uid': None, 'name': 'web'}}


@pytest.mark.parametrize('first', [
    waiver(protocols=['udp']), waiver(ports=[857]), waiver(namespaces=['container']), waiver(expires='2027-01-01'),
    waiver(rule='default'),
], ids=['other-protocol', 'other-port', 'other-namespace', 'expired', 'other-rule'])
def test_a_waiver_that_does_not_apply_does_not_end_the_search(first):
    """Rule: the waivers of a rule are tried in turn; one that does not cover the finding is passed over, not the end."""
    result = evaluate([CLOSED_856], sock(856), waivers=[first, waiver(ticket='CHG-9')])
    [finding] = result['findings']
    assert (finding['status'], finding['waived'], finding['waiver']['ticket']) == ('waived', True, 'CHG-9')
    assert result['status'] == 'compliant'


def test_each_finding_is_matched_against_the_waivers():
    """Rule: the waiver search starts afresh for each finding: one waived finding says nothing of the next."""
    result = evaluate([CLOSED_856], sock(856), sock(857), sock(858), waivers=[waiver(ports=[857])])
    assert [(f['port'], f['status']) for f in sorted(result['findings'], key=lambda f: f['port'])] == [
        (856, 'drift'), (857, 'waived'), (858, 'drift')]


def test_a_waiver_scoped_to_namespaces_waives_only_there():
    """Rule: a waiver with namespaces waives the findings in those namespaces only."""
    result = evaluate([CLOSED_856], sock(856), sock(856, namespace=CONTAINER, inode=2),
                      waivers=[waiver(namespaces=['docker:web'])])
    assert sorted((f['where'], f['status']) for f in result['findings']) == [('docker:web', 'waived'), ('host', 'drift')]


# ---- the result keeps its coverage ------------------------------------------------------------------------

@pytest.mark.parametrize('complete, errors', [(True, []), (False, ['udp/ipv6: cannot read /proc/net/udp6'])])
def test_the_result_carries_the_gathers_coverage(complete, errors):
    """Rule: the result holds the coverage it was judged on; without it the report can tell no change."""
    gathered = gather(sock(856), complete=complete, errors=errors)
    result = evaluate([CLOSED_856], gathered=copy.deepcopy(gathered))
    assert result['coverage'] == gathered['coverage']


def test_the_report_tells_new_and_resolved_drift_from_the_results_coverage():
    """Rule: new and resolved findings come from the coverage the result carries (a complete gather resolves)."""
    before = evaluate([CLOSED_856], sock(856))
    after = evaluate([CLOSED_856], sock(857))
    policy = dict(before['policy'], rules=[])
    previous = rb.build_report([rb.host_entry('web-1', before)], policy, before['registry'])
    report = rb.build_report([rb.host_entry('web-1', after)], policy, after['registry'], previous=previous)
    changes = report['hosts'][0]['changes']
    assert [item['port'] for item in changes['new']] == [857]
    assert [item['port'] for item in changes['resolved']] == [856]


# ---- what no judging leaves -------------------------------------------------------------------------------

@pytest.mark.parametrize('gathered, reason', [
    (None, 'no gather result: the listening sockets of this host were not seen'),
    ({'sockets': []}, 'no gather result: the listening sockets of this host were not seen'),
    ({'sockets': 'x', 'coverage': {'complete': True, 'errors': []}},
     "malformed gather result: sockets: expected a list of sockets, got 'x'"),
])
def test_a_host_with_no_judgeable_gather_is_unknown_with_a_whole_result(gathered, reason):
    """Rule: a host the evaluation could not judge is unknown, with empty findings, warnings and notes (lists, so every
    consumer reads them as it reads a judged host's), and the one reason."""
    compiled = ev.compile_policy({'policy_version': 1, 'name': 't', 'rules': [CLOSED_856]})
    result = ev.evaluate_host(gathered, compiled, 'web-1', [], TODAY)
    assert result['status'] == 'unknown' and result['reasons'] == [reason]
    assert result['findings'] == [] and result['warnings'] == [] and result['notes'] == []


def test_a_partial_gather_that_names_no_error_still_says_it_was_partial():
    """Rule: complete: false with no error is a reason of its own (the verdict is unknown, never compliant)."""
    result = evaluate([CLOSED_856], sock(22), complete=False, errors=[])
    assert result['status'] == 'unknown'
    assert result['reasons'] == ['partial gather: the gather reported partial coverage']


@pytest.mark.parametrize('enabled', [True, False])
def test_the_evaluation_leaves_the_cyclic_collector_as_it_found_it(enabled):
    """Rule: the evaluation pauses the cyclic garbage collector while it builds findings and sets it back as it was,
    also when the gather result is malformed."""
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        evaluate([CLOSED_856], sock(856))
        assert gc.isenabled() is enabled
        ev.evaluate_host({'sockets': 'x', 'coverage': {'complete': True, 'errors': []}},
                         ev.compile_policy({'policy_version': 1, 'name': 't', 'rules': []}), 'web-1', [], TODAY)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


# ---- the gate's defaults fail closed ----------------------------------------------------------------------

def test_the_gate_fails_an_unknown_host_by_default():
    """Rule: gate() fails an unknown verdict unless told otherwise (fail_on_unknown defaults to true)."""
    result = evaluate([CLOSED_856], sock(22), complete=False, errors=['3 processes could not be inspected'])
    assert result['status'] == 'unknown'
    assert ev.gate(result) == ['verdict unknown: partial gather: 3 processes could not be inspected']
    assert ev.gate(result, fail_on_unknown=False) == []


def test_the_gate_names_every_reason_of_an_unknown_verdict():
    """Rule: an unknown verdict's failure gives each of its reasons, in order, one after another."""
    result = evaluate([CLOSED_856], sock(22), complete=False, errors=['3 processes could not be inspected', 'no root'])
    assert ev.gate(result) == ['verdict unknown: partial gather: 3 processes could not be inspected; partial gather: no root']


def test_the_gate_ignores_drift_by_default():
    """Rule: gate() judges drift only when told a severity (fail_on defaults to never)."""
    result = evaluate([CLOSED_856], sock(856))
    assert ev.gate(result) == []
    assert ev.gate(result, 'high') == ['1 finding at or above high']
    assert ev.gate(result, 'critical') == []


def test_the_gate_counts_the_findings_at_or_above_the_threshold():
    """Rule: the gate counts every drift finding at or above fail_on, and no waived or lower one."""
    low = {'id': 'low-8080', 'match': {'ports': [8080]}, 'expect': 'closed', 'severity': 'low'}
    result = evaluate([CLOSED_856, low], sock(856), sock(857), sock(858), sock(8080), waivers=[waiver(ports=[858])])
    assert ev.gate(result, 'high') == ['2 findings at or above high']
    assert ev.gate(result, 'low') == ['3 findings at or above low']
    assert ev.gate(result, 'medium', fail_on_unknown=True) == ['2 findings at or above medium']


# ---- the summary counts every finding ---------------------------------------------------------------------

def test_the_summary_counts_every_finding_of_each_status():
    """Rule: summary counts are counts (two waived are 2, not 1), per status and per severity."""
    sshd = {'id': 'ssh-sshd', 'match': {'ports': [22, 2222]}, 'expect': {'processes': ['sshd']}, 'severity': 'low'}
    result = evaluate([CLOSED_856, sshd], sock(856), sock(857), sock(858), sock(859), sock(22, processes=[]),
                      sock(2222, processes=[]), waivers=[waiver(ports=['858-859'])])
    assert result['summary'] == {'findings': 6, 'drift': 2, 'waived': 2, 'unknown': 2, 'remediated': 0,
                                 'drift_by_severity': {'critical': 0, 'high': 2, 'medium': 0, 'low': 0, 'info': 0}}
    for finding in result['findings']:
        if finding['status'] == 'drift':
            finding['status'] = 'remediated'
    ev.summarize_result(result)
    assert (result['summary']['remediated'], result['summary']['drift'], result['status']) == (2, 0, 'unknown')


def test_findings_are_ordered_worst_first_then_by_rule_and_socket():
    """Rule: findings come worst severity first, then by rule, protocol, port and address (waived among drift)."""
    low = {'id': 'a-low', 'match': {'ports': [8080, 8081]}, 'expect': 'closed', 'severity': 'low'}
    result = evaluate([CLOSED_856, low], sock(8081), sock(857), sock(8080), sock(856), waivers=[waiver(ports=[856])])
    assert [(f['severity'], f['status'], f['port']) for f in result['findings']] == [
        ('high', 'waived', 856), ('high', 'drift', 857), ('low', 'drift', 8080), ('low', 'drift', 8081)]


# ---- what findings and errors say, exactly --------------------------------------------------------------

def proc(name, user, uid, unit=None, pid=300):
    return {'pid': pid, 'name': name, 'user': user, 'uid': uid, 'exe': '/usr/bin/' + name, 'unit': unit, 'start_time': 1}


@pytest.mark.parametrize('expect, holder, said', [
    ({'users': ['postgres']}, proc('pg', 'root', 0), 'is held by pg[300] as user root; allowed users: postgres'),
    ({'users': ['postgres']}, proc('pg', None, 4242), 'is held by pg[300] as user 4242; allowed users: postgres'),
    ({'users': ['4242']}, proc('pg', None, 4242), None),  # a uid matches as text when the name is not known
    ({'users': ['postgres']}, proc('pg', None, None), 'is held by pg[300] as user None; allowed users: postgres'),
    ({'units': ['postgresql*.service']}, proc('pg', 'root', 0),
     'is held by pg[300] in unit (none); allowed units: postgresql*.service'),
    ({'units': ['postgresql*.service']}, proc('pg', 'root', 0, unit='cron.service'),
     'is held by pg[300] in unit cron.service; allowed units: postgresql*.service'),
    ({'processes': ['postgres', 'pgbouncer']}, proc('nc', 'root', 0),
     'is held by nc[300]; allowed processes: postgres, pgbouncer'),
])
def test_a_process_finding_names_the_holder_and_what_is_allowed(expect, holder, said):
    """Rule: a process, user or unit finding says who holds the socket (name[pid], the user or else the uid, the unit
    or (none)) and what the rule allows."""
    result = evaluate([{'id': 'pg', 'match': {'ports': [5432]}, 'expect': expect}], sock(5432, processes=[holder]))
    if said is None:
        assert result['findings'] == []
        return
    [finding] = result['findings']
    assert finding['message'] == 'tcp 0.0.0.0:5432 (IANA: postgresql) %s (%s[300] as %s); rule pg' % (
        said, holder['name'], holder['user'] or holder['uid'])


@pytest.mark.parametrize('expect, names', [
    ({'processes': ['sshd']}, 'processes'), ({'users': ['root'], 'units': ['ssh.service']}, 'users/units'),
    ({'processes': ['sshd'], 'users': ['root'], 'units': ['ssh.service'], 'bind': 'any'}, 'processes/users/units'),
])
def test_an_unknown_finding_names_what_could_not_be_checked(expect, names):
    """Rule: without an owning process a process rule is unknown, saying which of processes/users/units it could not check."""
    result = evaluate([{'id': 'ssh', 'match': {'ports': [22]}, 'expect': expect}], sock(22, processes=[]))
    [finding] = result['findings']
    assert finding['status'] == 'unknown'
    assert finding['message'] == ('tcp 0.0.0.0:22 (IANA: ssh): no owning process is known, so the allowed %s cannot be '
                                  'checked; rule ssh' % names)


def test_a_waived_finding_carries_the_waiver():
    """Rule: a waived finding carries the waiver that waived it: rule, reason, ticket, approver and expiry."""
    result = evaluate([CLOSED_856], sock(856), waivers=[waiver(ticket='CHG-1', approved_by='alice')])
    [finding] = result['findings']
    assert finding['waiver'] == {'rule': 'iana-unassigned-closed', 'reason': 'vendor agent', 'ticket': 'CHG-1',
                                 'approved_by': 'alice', 'expires': '2027-06-30'}


@pytest.mark.parametrize('bad, message', [
    ({'waivers': [waiver(ports=['9-1'])]}, "waiver for iana-unassigned-closed: range '9-1' starts after it ends"),
    ({'waivers': [waiver(expires='2027-02-30')]}, "waiver for iana-unassigned-closed: expires '2027-02-30' is not a date"),
    ({'rules': [dict(CLOSED_856, match={'ports': ['9-1']})]}, "rule iana-unassigned-closed: range '9-1' starts after it ends"),
    ({'rules': [dict(CLOSED_856, severity='dire')]}, "rule iana-unassigned-closed: unknown severity 'dire'"),
    ({'rules': [dict(CLOSED_856, expect=['closed'])]}, 'rule iana-unassigned-closed: expect must be "closed" or a mapping'),
])
def test_compile_refuses_what_it_cannot_compile(bad, message):
    """Rule: compile_policy refuses a policy it cannot compile with a PolicyError naming the rule or waiver."""
    policy = dict({'policy_version': 1, 'name': 't', 'rules': [CLOSED_856]}, **bad)
    with pytest.raises(ev.PolicyError) as raised:
        ev.compile_policy(policy)
    assert str(raised.value) == message


# ---- what a socket accepts -------------------------------------------------------------------------------

@pytest.mark.parametrize('address, v6only, families', [
    ('0.0.0.0', None, ('ipv4',)),
    ('::', False, ('ipv4', 'ipv6')),
    ('::', None, ('ipv4', 'ipv6')),
    ('::', True, ('ipv6',)),
    ('::1', False, ('ipv6',)),
    ('::ffff:10.1.2.3', False, ('ipv4',)),
    ('64:ff9b::192.0.2.1', True, ('ipv6',)),  # NAT64: written with a dot, but IPv6 traffic
    ('::192.0.2.1', True, ('ipv6',)),  # IPv4-compatible (deprecated): IPv6
    ('::ffff:0:0', True, ('ipv4',)),  # mapped, written without a dot (as Python's ipaddress writes ::ffff:0.0.0.0)
    ('::ffff:a01:203', False, ('ipv4',)),  # mapped 10.1.2.3, hex words
])
def test_reachable_families(address, v6only, families):
    """Rule: a socket accepts the families it can be reached over: [::] dual-stack unless v6only, ::ffff:a.b.c.d IPv4."""
    entry = sock(1, address=address, v6only=v6only)
    assert ev.reachable_families(entry) == families
    v6_rule = {'id': 'v6', 'match': {'ports': [1], 'families': ['ipv6']}, 'expect': 'closed'}
    assert bool(evaluate([v6_rule], entry)['findings']) is ('ipv6' in families)


@pytest.mark.parametrize('address, bind', [('0.0.0.0', 'any'), ('::', 'any'), ('127.0.0.9', 'loopback'), ('::1', 'loopback'),
                                           ('::ffff:127.0.0.1', 'loopback'), ('::ffff:0.0.0.0', 'any'),
                                           ('192.0.2.7', 'specific'), ('fe80::1', 'specific'), ('not an address', 'specific')])
def test_bind_class(address, bind):
    """Rule: any (unspecified), loopback (127/8, ::1, mapped), else specific, which is also what an unparsable address is."""
    assert ev.bind_class(address) == bind
    assert ev.bind_class(address) == bind  # again, from the cache


# ---- the compiled policy ---------------------------------------------------------------------------------

def test_a_compiled_policy_reports_its_name_digest_and_remediation_defaults():
    """Rule: the compiled policy names itself (empty when unnamed), and tells each rule's remediate and the default's."""
    plain = ev.compile_policy({'policy_version': 1, 'rules': [CLOSED_856]})
    assert plain.info() == {'name': '', 'sha256': ev.policy_digest({'policy_version': 1, 'rules': [CLOSED_856]})}
    assert plain.remediation() == {'iana-unassigned-closed': None, 'default': None}
    told = ev.compile_policy({'policy_version': 1, 'name': 'fleet', 'default_remediate': 'firewall',
                              'rules': [dict(CLOSED_856, remediate='kill'), {'id': 'x', 'match': {'ports': [1]}, 'expect': 'closed'}]})
    assert told.info()['name'] == 'fleet'
    assert told.remediation() == {'iana-unassigned-closed': 'kill', 'x': None, 'default': 'firewall'}


@pytest.mark.parametrize('policy, message', [
    ({'rules': [{'match': {}}]}, "policy cannot be compiled: 'id'"),
    ({'rules': [], 'waivers': [{'rule': 'x', 'expires': '2030-01-01'}]}, "policy cannot be compiled: 'reason'"),
    ([], 'a policy is a mapping'),
])
def test_compile_refuses_a_policy_missing_what_it_needs(policy, message):
    """Rule: what validation should have refused is refused again by compile_policy, never guessed at."""
    with pytest.raises(ev.PolicyError) as raised:
        ev.compile_policy(policy)
    assert str(raised.value) == message


def test_the_policy_digest_is_the_sha256_of_its_canonical_json():
    """Rule: the digest is sha256 of the policy as JSON with sorted keys and no spaces (dates as ISO text): the same for
    the file and for the dict, so a consumer can recompute it."""
    import hashlib

    policy = {'name': 'n', 'rules': [{'id': 'a', 'expect': 'closed'}], 'waivers': [{'expires': datetime.date(2030, 1, 2)}]}
    canonical = b'{"name":"n","rules":[{"expect":"closed","id":"a"}],"waivers":[{"expires":"2030-01-02"}]}'
    assert ev.policy_digest(policy) == hashlib.sha256(canonical).hexdigest()
    assert ev.policy_digest({'name': 'ü'}) == hashlib.sha256('{"name":"\\u00fc"}'.encode('ascii')).hexdigest()


@pytest.mark.parametrize('port, rules', [(0, ['at-0']), (1, []), (65534, []), (65535, ['at-65535'])])
def test_the_lowest_and_highest_ports_meet_only_their_rules(port, rules):
    """Rule: the rule table covers 0-65535 exactly: port 0 and port 65535 meet the rules about them, no others."""
    policy = [{'id': 'at-0', 'match': {'ports': [0]}, 'expect': 'closed'},
              {'id': 'at-65535', 'match': {'ports': [65535]}, 'expect': 'closed'}]
    assert [f['rule'] for f in evaluate(policy, sock(port))['findings']] == rules


@pytest.mark.parametrize('count, who', [
    (3, 'p0[1], p1[2], p2[3] as u0, u1, u2'),
    (4, 'p0[1], p1[2], p2[3] and 1 more as u0, u1, u2, u3'),
    (6, 'p0[1], p1[2], p2[3] and 3 more as u0, u1, u2, u3, u4, u5'),
])
def test_a_finding_names_at_most_three_holders(count, who):
    """Rule: a finding's message names the first three holders and counts the rest; it lists every user."""
    holders = [dict(proc('p%d' % index, 'u%d' % index, 1000 + index), pid=index + 1) for index in range(count)]
    [finding] = evaluate([CLOSED_856], sock(856, processes=holders))['findings']
    assert finding['message'] == ('tcp 0.0.0.0:856 (not an IANA-assigned service) must be closed but is listening (%s); '
                                  'rule iana-unassigned-closed' % who)
    assert [p['pid'] for p in finding['processes']] == list(range(1, count + 1))
    assert finding['processes'][0] == {'pid': 1, 'name': 'p0', 'user': 'u0', 'uid': 1000, 'exe': '/usr/bin/p0', 'unit': None,
                                       'start_time': 1}


def test_an_ipv6_finding_writes_its_address_in_brackets():
    """Rule: a finding's label writes an IPv6 address in brackets ([::]:856), an IPv4 one bare."""
    [finding] = evaluate([CLOSED_856], sock(856, address='::', v6only=False))['findings']
    assert finding['message'].startswith('tcp [::]:856 (not an IANA-assigned service) must be closed')


def test_a_filtered_rule_leaves_ephemeral_sockets_out_too():
    """Rule: a rule with filters (families, bind, namespaces) leaves ephemeral sockets out unless it asks for them."""
    v4 = {'id': 'v4-udp', 'match': {'ports': [50001], 'families': ['ipv4'], 'protocols': ['udp']}, 'expect': 'closed'}
    assert evaluate([v4], sock(50001, 'udp', ephemeral=True))['findings'] == []
    asking = dict(v4, match=dict(v4['match'], include_ephemeral=True))
    assert len(evaluate([asking], sock(50001, 'udp', ephemeral=True))['findings']) == 1


def test_a_user_rule_does_not_match_the_text_none_for_an_unknown_uid():
    """Rule: an unknown uid is no uid: a users pattern matching the text 'None' does not allow an owner with neither."""
    rule = {'id': 'u', 'match': {'ports': [5432]}, 'expect': {'users': ['N*']}}
    result = evaluate([rule], sock(5432, processes=[proc('pg', None, None)]))
    assert [f['status'] for f in result['findings']] == ['drift']


def test_port_0_meets_no_rule_about_the_top_of_the_range():
    """Rule: the rule table starts at port 0 even when no rule does: port 0 never meets the rules of the last segment."""
    top = {'id': 'at-65535', 'match': {'ports': ['65000-65535']}, 'expect': 'closed'}
    assert evaluate([top], sock(0), sock(1))['findings'] == []
    assert [f['port'] for f in evaluate([top], sock(65535))['findings']] == [65535]


@pytest.mark.parametrize('expires, ticket, message, warning', [
    ('2027-01-01', None, '; waiver expired 2027-01-01', None),
    ('2027-01-01', 'CHG-7', '; waiver (CHG-7) expired 2027-01-01', None),
    ('2027-01-21', None, '', 'waiver for iana-unassigned-closed on web-1 tcp 0.0.0.0:856 expires 2027-01-21, in 1 day'),
    ('2027-01-22', 'CHG-7', '', 'waiver (CHG-7) for iana-unassigned-closed on web-1 tcp 0.0.0.0:856 expires 2027-01-22, in 2 days'),
    ('2027-01-20', None, '', 'waiver for iana-unassigned-closed on web-1 tcp 0.0.0.0:856 expires 2027-01-20, in 0 days'),
])
def test_what_an_expired_or_expiring_waiver_says(expires, ticket, message, warning):
    """Rule: an expired waiver is said at the end of the finding's message (its ticket when it has one); one expiring
    within waiver_warning_days is a warning naming the ticket, rule, host, socket, date and days left."""
    result = evaluate([CLOSED_856], sock(856), waivers=[waiver(expires=expires, ticket=ticket)])
    [finding] = result['findings']
    assert finding['message'] == ('tcp 0.0.0.0:856 (not an IANA-assigned service) must be closed but is listening '
                                  '(agent[100] as nobody); rule iana-unassigned-closed' + message)
    assert result['warnings'] == ([warning] if warning else [])


def test_one_compiled_policy_judges_each_host_by_its_own_rules():
    """Rule: a compiled policy serves many hosts: each is judged by the rules in its scope, even when another host's
    rules in scope are as many (the rule tables are cached per set of rules, not per count)."""
    web = {'id': 'web-no-856', 'hosts': ['web-*'], 'match': {'ports': [856]}, 'expect': 'closed'}
    db = {'id': 'db-no-857', 'hosts': ['db-*'], 'match': {'ports': [857]}, 'expect': 'closed'}
    compiled = ev.compile_policy({'policy_version': 1, 'name': 't', 'rules': [web, db]})
    gathered = gather(sock(856), sock(857))
    assert hits(ev.evaluate_host(copy.deepcopy(gathered), compiled, 'web-1', [], TODAY)) == [('web-no-856', 'drift', 'tcp', 856)]
    assert hits(ev.evaluate_host(copy.deepcopy(gathered), compiled, 'db-1', [], TODAY)) == [('db-no-857', 'drift', 'tcp', 857)]
