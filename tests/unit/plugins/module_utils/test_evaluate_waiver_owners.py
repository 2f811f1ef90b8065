"""Process-bound waivers: ``processes``, ``users``, ``exe`` and ``units`` on a waiver, matched as a rule's expect matches.

A waiver bound to processes covers a socket only when every process holding it is one it names. A holder it does
not name keeps the finding drift, and the message names that holder; holders the gather could not see (no
processes, or none of the fields the waiver matches) leave it unwaived, with a reason that makes the verdict
unknown as well.
"""

import datetime

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev

TODAY = datetime.date(2027, 1, 20)
AGENT = {'pid': 100, 'name': 'vendor-agent', 'user': 'nobody', 'uid': 65534, 'exe': '/opt/vendor/bin/vendor-agent',
         'unit': 'vendor-agent.service', 'start_time': 5000}
ROGUE = {'pid': 666, 'name': 'vendor-agent', 'user': 'root', 'uid': 0, 'exe': '/tmp/.x/vendor-agent', 'unit': None,
         'start_time': 7000}
HIDDEN = {'pid': 101, 'name': 'vendor-agent', 'user': None, 'uid': 65534, 'exe': None, 'unit': None, 'start_time': None}
CLOSED_856 = {'id': 'closed-856', 'match': {'ports': [856]}, 'expect': 'closed', 'severity': 'high'}


@pytest.fixture(autouse=True)
def _no_known_endpoints():
    ev._ENDPOINTS.clear()


def sock(processes, port=856, address='0.0.0.0'):
    return {'protocol': 'tcp', 'family': 'ipv4', 'address': address, 'port': port, 'v6only': None, 'ephemeral': False,
            'inode': port, 'processes': processes}


def waiver(**fields):
    found = {'rule': 'closed-856', 'reason': 'vendor agent', 'ticket': 'CHG-1', 'expires': '2027-06-30'}
    found.update(fields)
    return found


def evaluate(waivers, *sockets, rules=(CLOSED_856,), complete=True):
    compiled = ev.compile_policy({'policy_version': 1, 'name': 't', 'rules': list(rules), 'waivers': list(waivers)})
    gathered = {'sockets': list(sockets), 'coverage': {'complete': complete, 'errors': [] if complete else ['not root']}}
    return ev.evaluate_host(gathered, compiled, 'h1', [], TODAY)


def only(result):
    assert len(result['findings']) == 1, result['findings']
    return result['findings'][0]


@pytest.mark.parametrize('bound, holders, status', [
    ({}, [AGENT], 'waived'),  # not bound: as before
    ({}, [ROGUE], 'waived'),
    ({'processes': ['vendor-agent']}, [AGENT], 'waived'),
    ({'processes': ['vendor-agent']}, [ROGUE], 'waived'),  # a name is the process's own choice: exe binds tighter
    ({'processes': ['/opt/vendor/bin/*']}, [AGENT], 'waived'),  # a path pattern matches the executable
    ({'processes': ['/opt/vendor/bin/*']}, [ROGUE], 'drift'),
    ({'processes': ['other']}, [AGENT], 'drift'),
    ({'exe': ['/opt/vendor/bin/vendor-agent']}, [AGENT], 'waived'),
    ({'exe': ['/opt/vendor/bin/vendor-agent']}, [ROGUE], 'drift'),
    ({'exe': ['vendor-agent']}, [AGENT], 'drift'),  # exe never matches the name
    ({'exe': ['/opt/vendor/bin/vendor-agent']}, [AGENT, ROGUE], 'drift'),  # every holder must be covered
    ({'exe': ['/opt/vendor/bin/vendor-agent', '/tmp/*']}, [AGENT, ROGUE], 'waived'),
    ({'users': ['nobody']}, [AGENT], 'waived'),
    ({'users': ['65534']}, [AGENT], 'waived'),  # a uid
    ({'users': ['nobody']}, [ROGUE], 'drift'),
    ({'units': ['vendor-*.service']}, [AGENT], 'waived'),
    ({'units': ['vendor-*.service']}, [ROGUE], 'drift'),  # no unit
    ({'exe': ['/opt/vendor/bin/*'], 'users': ['root']}, [AGENT], 'drift'),  # every key must hold
    ({'exe': ['/opt/vendor/bin/*'], 'users': ['nobody'], 'units': ['vendor-agent.service'],
      'processes': ['vendor-agent']}, [AGENT], 'waived'),
    ({'exe': ['/opt/vendor/bin/vendor-agent']}, [], 'drift'),  # no holder known: never waived
    ({'exe': ['/opt/vendor/bin/vendor-agent']}, [HIDDEN], 'drift'),  # its exe not known: never waived
    ({'users': ['65534']}, [HIDDEN], 'waived'),  # the uid is known
    ({'units': ['*']}, [HIDDEN], 'drift'),  # no unit is nothing to match, not anything
])
def test_a_waiver_bound_to_processes_covers_only_them(bound, holders, status):
    finding = only(evaluate([waiver(**bound)], sock(holders)))
    assert finding['status'] == status
    assert finding['waived'] is (status == 'waived')


def test_the_message_names_the_holder_the_waiver_does_not_cover():
    result = evaluate([waiver(exe=['/opt/vendor/bin/vendor-agent'])], sock([AGENT, ROGUE]))
    finding = only(result)
    assert finding['status'] == 'drift' and finding['waiver'] is None
    assert finding['message'] == (
        'tcp 0.0.0.0:856 (not an IANA-assigned service) must be closed but is listening (vendor-agent[100], '
        'vendor-agent[666] as nobody, root); rule closed-856; waiver (CHG-1) does not cover vendor-agent[666] with '
        'executable /tmp/.x/vendor-agent; allowed executables: /opt/vendor/bin/vendor-agent')
    assert result['status'] == 'drift'
    assert result['reasons'] == []  # every holder was seen: the verdict is drift, not unknown


@pytest.mark.parametrize('bound, said', [
    ({'processes': ['x']}, 'vendor-agent[666]; allowed processes: x'),
    ({'users': ['nobody']}, 'vendor-agent[666] as user root; allowed users: nobody'),
    ({'units': ['a.service', 'b.service']}, 'vendor-agent[666] in unit (none); allowed units: a.service, b.service'),
])
def test_each_key_names_what_the_holder_has(bound, said):
    finding = only(evaluate([waiver(**bound)], sock([ROGUE])))
    assert finding['message'].endswith('; waiver (CHG-1) does not cover ' + said)


def test_holders_not_known_leave_it_drift_and_the_verdict_unknown_too():
    """A gather without root sees no holder: the waiver cannot be checked, the finding stays drift (at least as strict
    as the unwaived finding: a gate on severity still fails) and a reason makes the gate fail as unknown too."""
    result = evaluate([waiver(exe=['/opt/vendor/bin/vendor-agent'])], sock([]), complete=False)
    finding = only(result)
    assert finding['status'] == 'drift' and not finding['waived']
    assert finding['message'].endswith('; waiver (CHG-1) cannot be checked: no process holding it is known '
                                       '(run the gather with become)')
    assert result['status'] == 'drift'
    assert result['reasons'][-1] == ('waivers bound to processes could not be checked on 1 finding: the gather did not '
                                     'give the process facts they name, so those findings are not waived (run with become)')
    assert ev.gate(result, fail_on='high')
    assert ev.gate(result, fail_on='never', fail_on_unknown=True)


def test_a_holder_without_the_field_names_what_is_missing():
    result = evaluate([waiver(exe=['/opt/vendor/bin/vendor-agent'], ticket=None)], sock([AGENT, HIDDEN]), sock([HIDDEN], 857),
                      rules=[dict(CLOSED_856, match={'ports': [856, 857]})])
    assert [f['status'] for f in result['findings']] == ['drift', 'drift']
    assert all(f['message'].endswith('; waiver cannot be checked: vendor-agent[101] has no known executable '
                                     '(run the gather with become)') for f in result['findings'])
    assert 'on 2 findings:' in result['reasons'][-1]


def test_a_known_rogue_outweighs_a_holder_not_known():
    finding = only(evaluate([waiver(exe=['/opt/vendor/bin/vendor-agent'])], sock([HIDDEN, ROGUE])))
    assert finding['message'].endswith('; waiver (CHG-1) does not cover vendor-agent[666] with executable '
                                       '/tmp/.x/vendor-agent; allowed executables: /opt/vendor/bin/vendor-agent')


def test_a_waiver_that_does_not_cover_does_not_hide_the_next_one():
    result = evaluate([waiver(exe=['/usr/bin/other'], ticket='CHG-0'), waiver(exe=['/opt/vendor/bin/*'])], sock([AGENT]))
    finding = only(result)
    assert finding['status'] == 'waived' and finding['waiver']['ticket'] == 'CHG-1'
    assert finding['waiver']['exe'] == ['/opt/vendor/bin/*']
    assert 'waiver (CHG-0) does not cover vendor-agent[100]' in finding['message']
    assert result['status'] == 'compliant'


def test_a_waiver_not_about_the_socket_says_nothing_about_its_holders():
    finding = only(evaluate([waiver(ports=[857], exe=['/nowhere'])], sock([ROGUE])))
    assert finding['message'].endswith('; rule closed-856')


def test_an_expired_waiver_is_expired_before_it_is_bound():
    finding = only(evaluate([waiver(exe=['/nowhere'], expires='2027-01-01')], sock([ROGUE])))
    assert finding['message'].endswith('; waiver (CHG-1) expired 2027-01-01')
    assert finding['waiver_expired']['exe'] == ['/nowhere']


def test_a_process_bound_waiver_of_an_unknown_finding_leaves_it_unknown():
    """A rule about processes on a socket with no known holder is unknown; a bound waiver cannot make it waived."""
    rule = {'id': 'ssh-sshd', 'match': {'ports': [22]}, 'expect': {'processes': ['sshd']}}
    result = evaluate([waiver(rule='ssh-sshd', processes=['sshd'])], sock([], port=22), rules=[rule], complete=False)
    finding = only(result)
    assert finding['status'] == 'unknown'
    assert result['status'] == 'unknown'
    # an unbound waiver of the same finding waives it, as before
    result = evaluate([waiver(rule='ssh-sshd')], sock([], port=22), rules=[rule], complete=False)
    assert only(result)['status'] == 'waived'


def test_glob_characters_in_a_process_name_are_text_not_a_pattern():
    star = dict(ROGUE, name='*', exe='*')
    bracket = dict(ROGUE, name='vendor-agen[t]', exe='/opt/vendor/bin/vendor-agen[t]')
    for holder in (star, bracket):
        assert only(evaluate([waiver(processes=['vendor-agent'])], sock([holder])))['status'] == 'drift'
        assert only(evaluate([waiver(exe=['/opt/vendor/bin/vendor-agent'])], sock([holder])))['status'] == 'drift'


def test_rules_take_exe_with_the_same_meaning():
    rule = {'id': 'agent-exe', 'match': {'ports': [856]}, 'expect': {'exe': ['/opt/vendor/bin/*']}}
    assert evaluate([], sock([AGENT]), rules=[rule])['findings'] == []
    finding = only(evaluate([], sock([ROGUE]), rules=[rule]))
    assert finding['status'] == 'drift'
    assert 'is held by vendor-agent[666] with executable /tmp/.x/vendor-agent; allowed executables: /opt/vendor/bin/*' \
        in finding['message']
    finding = only(evaluate([], sock([]), rules=[rule], complete=False))
    assert finding['status'] == 'unknown'
    assert 'the allowed exe cannot be checked' in finding['message']
    finding = only(evaluate([], sock([dict(AGENT, exe=None)]), rules=[rule]))
    assert 'with executable (unknown)' in finding['message']


def test_a_published_port_is_waived_for_the_target_owner():
    """On a port published by NAT, the holders are the processes that own the target socket (the exposure's owner)."""
    def exposure(processes, kind='local'):
        return {'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': 856, 'port_end': 856,
                'action': 'redirect', 'hooks': ['prerouting'], 'interface': None, 'conditions': [],
                'target': {'address': None, 'port': 8856, 'port_end': 8856}, 'source': 'nft', 'table': 'ip nat',
                'chain': 'prerouting', 'rule': 'tcp dport 856 redirect to :8856',
                'owner': {'kind': kind, 'reason': None, 'namespace': None, 'processes': processes}}

    def published(processes, kind='local'):
        compiled = ev.compile_policy({'policy_version': 1, 'name': 't', 'rules': [CLOSED_856],
                                      'waivers': [waiver(exe=['/opt/vendor/bin/vendor-agent'])]})
        gathered = {'sockets': [], 'exposures': [exposure(processes, kind)],
                    'coverage': {'complete': True, 'errors': [], 'nat': {'mode': 'auto', 'sources': {}, 'exposures': 1}}}
        return ev.evaluate_host(gathered, compiled, 'h1', [], TODAY)

    assert only(published([AGENT]))['status'] == 'waived'
    finding = only(published([ROGUE]))
    assert finding['status'] == 'drift' and 'does not cover vendor-agent[666]' in finding['message']
    result = published([], kind='unknown')
    assert only(result)['status'] == 'drift' and 'cannot be checked' in result['findings'][0]['message']
    assert result['reasons']


def test_judge_says_why():
    compiled = ev.compile_policy({'policy_version': 1, 'name': 't', 'rules': [CLOSED_856], 'waivers': [
        waiver(protocols=['udp']), waiver(ports=[857]), waiver(namespaces=['container']), waiver(expires='2027-01-19'),
        waiver(exe=['/x']), waiver(exe=['/x'])]})
    finding = {'protocol': 'tcp', 'port': 856, 'namespace': None, 'processes': [AGENT]}
    verdicts = [item.judge(finding, TODAY)[0] for item in compiled.waivers[:5]]
    assert verdicts == ['protocols', 'ports', 'namespaces', 'expired', 'not_covered']
    assert compiled.waivers[5].judge(dict(finding, processes=[]), TODAY) == ('unknown', 'no process holding it is known')
    covered = dict(finding, processes=[dict(AGENT, exe='/x'), dict(AGENT, pid=101, exe='/x')])
    assert compiled.waivers[5].judge(covered, TODAY) == ('covers', None)
    two = dict(finding, processes=[ROGUE, dict(ROGUE, pid=667), HIDDEN, dict(HIDDEN, pid=102)])
    assert compiled.waivers[5].judge(two, TODAY) == ('not_covered', 'vendor-agent[666] with executable /tmp/.x/vendor-agent; '
                                                     'allowed executables: /x; vendor-agent[667] with executable '
                                                     '/tmp/.x/vendor-agent; allowed executables: /x')
    blind = dict(finding, processes=[HIDDEN, dict(HIDDEN, pid=102)])
    assert compiled.waivers[5].judge(blind, TODAY) == ('unknown', 'vendor-agent[101] has no known executable; '
                                                       'vendor-agent[102] has no known executable')
    assert ev.compile_policy({'policy_version': 1, 'name': 't', 'waivers': [waiver()]}).waivers[0].judge(
        finding, TODAY) == ('covers', None)


@pytest.mark.parametrize('patterns, holder, covered', [
    (['*/bin/vendor-agent'], dict(ROGUE, name='/bin/vendor-agent'), False),  # a name is no path
    (['*/bin/vendor-agent'], AGENT, True),
    (['/opt/*', 'vendor-agent'], dict(ROGUE, name='/opt/x'), False),  # the slash-free pattern needs the name to match
    (['/opt/*', 'vendor-agent'], ROGUE, True),  # ... and it does: by name
    (['*/bin/vendor-agent'], dict(AGENT, exe=None), None),  # the path is what it needs, and it is not known
])
def test_a_process_pattern_with_a_slash_is_matched_against_the_executable_only(patterns, holder, covered):
    finding = only(evaluate([waiver(processes=patterns)], sock([holder])))
    assert finding['status'] == ('waived' if covered else 'drift')
    if covered is None:
        assert 'cannot be checked: vendor-agent[100] has no known executable' in finding['message']
    rule = {'id': 'agent', 'match': {'ports': [856]}, 'expect': {'processes': patterns}}
    assert bool(evaluate([], sock([holder]), rules=[rule])['findings']) is not bool(covered)


def test_reports_say_what_a_waiver_is_bound_to():
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import _waiver_text

    finding = only(evaluate([waiver(exe=['/opt/vendor/bin/*'], units=['vendor-*'], approved_by='secops')], sock([AGENT])))
    assert _waiver_text(finding) == ('waived until 2027-06-30: vendor agent (CHG-1), approved by secops, bound to exe '
                                     '/opt/vendor/bin/*; units vendor-*')
    assert ev.OWNER_KEYS == ('processes', 'users', 'exe', 'units')


@pytest.mark.parametrize('bound, said', [
    ({'users': ['nobody']}, 'has no known user'),
    ({'processes': ['/opt/*', 'vendor-agent']}, 'has no known name or executable'),
    ({'processes': ['/opt/*']}, 'has no known executable'),
    ({'exe': ['/opt/*'], 'users': ['nobody']}, 'has no known user or executable'),
])
def test_what_a_holder_lacks_is_named(bound, said):
    blank = {'pid': 5, 'name': None, 'user': None, 'uid': None, 'exe': None, 'unit': None}
    finding = only(evaluate([waiver(**bound)], sock([blank])))
    assert finding['status'] == 'drift'
    assert finding['message'].endswith('; waiver (CHG-1) cannot be checked: None[5] %s (run the gather with become)' % said)


def test_owner_keys_in_order():
    owners = ev.Owners({'units': ['u'], 'exe': ['/e'], 'processes': 'p', 'users': ['x'], 'bind': 'any'})
    assert owners.keys() == ['processes', 'users', 'exe', 'units']
    assert owners.describe() == {'processes': ['p'], 'users': ['x'], 'exe': ['/e'], 'units': ['u']}
    assert [key for key, _miss in owners.misses(ROGUE)] == ['processes', 'users', 'exe', 'units']
    assert owners.unknown({'pid': 1}) == ['processes', 'users', 'exe']
    assert not ev.Owners({'bind': 'any'}) and ev.Owners({'exe': ['/e']})


@pytest.mark.parametrize('patterns, holder, verdict', [
    (['/opt/*'], dict(ROGUE, exe='/tmp/y'), 'not_covered'),  # the executable is known: it is not covered
    (['/opt/*'], dict(ROGUE, exe=None), 'unknown'),  # a path pattern needs the executable, whatever the name
    (['/opt/*', 'other'], dict(ROGUE, exe=None), 'not_covered'),  # a name pattern has the name to judge
    (['other'], dict(ROGUE, name=None, exe=None), 'unknown'),
])
def test_what_a_processes_pattern_reads_decides_unknown_or_not_covered(patterns, holder, verdict):
    compiled = ev.compile_policy({'policy_version': 1, 'name': 't', 'rules': [CLOSED_856],
                                  'waivers': [waiver(processes=patterns)]})
    finding = {'protocol': 'tcp', 'port': 856, 'namespace': None, 'processes': [holder]}
    assert compiled.waivers[0].judge(finding, TODAY)[0] == verdict


def test_what_a_waiver_says_of_a_finding_it_does_not_waive_follows_the_findings_own_message():
    """Rule: each waiver that does not waive a finding adds its words after the finding's message, in policy order;
    none replaces what the finding said."""
    plain = only(evaluate([], sock([HIDDEN])))['message']
    assert plain == ('tcp 0.0.0.0:856 (not an IANA-assigned service) must be closed but is listening '
                     '(vendor-agent[101] as 65534); rule closed-856')
    result = evaluate([waiver(exe=['/opt/vendor/bin/vendor-agent']), waiver(ticket='CHG-2', expires='2027-01-01')],
                      sock([HIDDEN]))
    finding = only(result)
    assert finding['status'] == 'drift' and not finding['waived']
    assert finding['message'] == plain + ('; waiver (CHG-1) cannot be checked: vendor-agent[101] has no known executable '
                                          '(run the gather with become); waiver (CHG-2) expired 2027-01-01')
