"""The rules of report_build, one test each, exact enough that a changed rule fails a test that names it.

Written against the mutants that survived the rest (a host unknown with no reasons, counts above one, the gate's
default, a result without coverage, the exact fields of a report).
"""

import datetime
import re
import time

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb

POLICY = {'name': 'fleet', 'sha256': 'a' * 64, 'rules': []}
REGISTRY = {'date': '2026-08-17', 'sha256': 'b' * 64, 'records': 3}
WHEN = datetime.datetime(2026, 11, 26, 12, 0, 0, tzinfo=datetime.timezone.utc)
PROC = {'pid': 7, 'name': 'agent', 'user': 'nobody', 'uid': 65534, 'exe': '/opt/agent', 'unit': 'agent.service',
        'start_time': 99, 'cmdline': 'agent --token s3cret', 'cwd': '/'}


def finding(port, severity='high', status='drift', rule='r', **extra):
    return dict({'rule': rule, 'severity': severity, 'status': status, 'protocol': 'tcp', 'family': 'ipv4',
                 'address': '0.0.0.0', 'port': port, 'service': 'svc', 'waived': status == 'waived', 'waiver': None,
                 'message': 'm%d' % port, 'processes': [dict(PROC)], 'namespace': None}, **extra)


def audit(status, findings=(), reasons=(), coverage=True, **extra):
    return dict({'status': status, 'findings': list(findings), 'reasons': list(reasons), 'warnings': ['w'],
                 'coverage': {'complete': coverage} if coverage is not None else None,
                 'evaluated_on': '2026-11-26'}, **extra)


def report(hosts, **kwargs):
    return rb.build_report(hosts, POLICY, REGISTRY, generated_at=kwargs.pop('generated_at', WHEN), **kwargs)


# --------------------------------------------------------------------------------------------- host entries

def test_a_host_without_a_result_is_unknown_with_every_field():
    assert rb.host_entry('h', None, 'unreachable: timeout') == {
        'host': 'h', 'status': 'unknown', 'reasons': ['unreachable: timeout'], 'errors': ['unreachable: timeout'],
        'findings': [], 'warnings': [], 'coverage': None, 'evaluated_on': None, 'changes': None, 'remediation': None}
    assert rb.host_entry('h', {'status': 'fine'})['reasons'] == [
        'no audit result: the host was not reached or the audit did not run']


def test_an_audited_host_keeps_only_the_documented_fields():
    remediation = {'strategy': 'kill', 'status': 'applied', 'target': 'pid 7', 'reason': 'r', 'secret': 'x'}
    raw = finding(856, where='docker:web', waiver_expired={'expires': '2026-01-01'}, remediation=remediation, extra=1)
    entry = rb.host_entry('h', audit('drift', [raw, finding(857, processes=None, where=None)], evaluated_on='d',
                                     remediation={'actions': [{'strategy': 'kill', 'target': 't', 'rules': ['r'],
                                                               'outcome': 'done', 'detail': None, 'pid': 1}],
                                                  'skipped': None, 'verified': 1}))
    clean_proc = dict((key, PROC[key]) for key in ('pid', 'name', 'user', 'uid', 'exe', 'unit', 'start_time'))
    assert entry == {
        'host': 'h', 'status': 'drift', 'reasons': [], 'errors': [], 'warnings': ['w'],
        'coverage': {'complete': True}, 'evaluated_on': 'd', 'changes': None,
        'findings': [
            dict((key, raw.get(key)) for key in rb.FINDING_FIELDS if key not in ('processes',)) | {
                'processes': [clean_proc], 'waiver_expired': {'expires': '2026-01-01'},
                'remediation': {'strategy': 'kill', 'status': 'applied', 'target': 'pid 7', 'reason': 'r'}},
            dict((key, finding(857).get(key)) for key in rb.FINDING_FIELDS) | {'processes': [], 'where': 'host'},
        ],
        'remediation': {'actions': [{'strategy': 'kill', 'target': 't', 'rules': ['r'], 'outcome': 'done',
                                     'detail': None}], 'skipped': None, 'verified': True},
    }


def test_a_run_error_makes_a_compliant_host_unknown_and_is_kept():
    entry = rb.host_entry('h', audit('compliant', reasons=['partial']), 'the task erred')
    assert (entry['status'], entry['reasons']) == ('unknown', ['partial', 'the task erred'])
    assert entry['errors'] == ['the task erred']
    drift = rb.host_entry('h', audit('drift', [finding(1)]), 'the task erred')
    assert (drift['status'], drift['errors']) == ('drift', ['the task erred'])
    assert rb.host_entry('h', audit('compliant'))['errors'] == []


# --------------------------------------------------------------------------------------------- summary

def test_summary_counts_every_finding_and_host_not_just_one():
    many = [finding(1), finding(2), finding(3, 'low'), finding(4, status='waived'), finding(5, status='waived'),
            finding(6, status='unknown'), finding(7, status='unknown'), finding(8, status='remediated'),
            finding(9, status='remediated')]
    hosts = [
        rb.host_entry('a', audit('drift', many, reasons=['partial'], remediation={'actions': [{}, {}], 'verified': 1})),
        rb.host_entry('b', audit('drift', [finding(1)], remediation={'actions': [{}]})),
        rb.host_entry('c', audit('compliant')), rb.host_entry('d', audit('compliant')),
        rb.host_entry('e', None, 'x'), rb.host_entry('f', None, 'y'),
    ]
    assert rb.summarize(hosts) == {
        'compliant': 2, 'drift': 2, 'unknown': 2, 'hosts': 6,
        'findings_by_severity': {'info': 0, 'low': 1, 'medium': 0, 'high': 3, 'critical': 0},
        'waived_findings': 2, 'unknown_findings': 2, 'remediated_findings': 2, 'remediation_actions': 3,
        'incomplete': 3}


# --------------------------------------------------------------------------------------------- the report

def test_the_report_has_every_top_level_field():
    built = report([rb.host_entry('a', audit('compliant'))], tool_version='1.2.3', run_id='f' * 32)
    assert set(built) == {'schema_version', 'run_id', 'generated_at', 'tool', 'policy', 'registry', 'summary',
                          'hosts', 'previous'}
    assert (built['schema_version'], built['run_id'], built['generated_at']) == (rb.REPORT_SCHEMA_VERSION, 'f' * 32, '2026-11-26T12:00:00Z')
    assert built['tool'] == {'name': 'portwarden.compliance', 'version': '1.2.3'}
    assert (built['policy'], built['registry'], built['previous']) == (POLICY, REGISTRY, None)
    assert re.match('^[0-9a-f]{32}$', report([])['run_id']) and report([])['run_id'] != report([])['run_id']


def test_generated_at_is_utc_whatever_the_zone_given_or_local(monkeypatch):
    plus_two = datetime.datetime(2026, 11, 26, 14, 0, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert report([], generated_at=plus_two)['generated_at'] == '2026-11-26T12:00:00Z'
    monkeypatch.setenv('TZ', 'Asia/Tokyo')  # a controller whose local time is not UTC
    time.tzset()
    try:
        before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0, tzinfo=None)
        stamp = datetime.datetime.strptime(rb.build_report([], POLICY, REGISTRY)['generated_at'], '%Y-%m-%dT%H:%M:%SZ')
        assert before <= stamp <= before + datetime.timedelta(seconds=5)
    finally:
        monkeypatch.delenv('TZ')
        time.tzset()


def test_hosts_are_sorted_and_the_previous_report_is_named():
    previous = report([rb.host_entry('a', audit('drift', [finding(1)]))])
    built = report([rb.host_entry('b', audit('compliant')), rb.host_entry('a', audit('drift', [finding(2)]))],
                   previous=previous)
    assert [entry['host'] for entry in built['hosts']] == ['a', 'b']
    assert built['previous'] == {'generated_at': '2026-11-26T12:00:00Z'}
    assert built['hosts'][0]['changes'] == {
        'new': [{'rule': 'r', 'protocol': 'tcp', 'address': '0.0.0.0', 'port': 2, 'where': 'host'}],
        'resolved': [{'rule': 'r', 'protocol': 'tcp', 'address': '0.0.0.0', 'port': 1, 'where': 'host'}],
        'first_seen': False}


def test_a_result_without_coverage_has_no_changes_rather_than_vanishing_findings():
    previous = report([rb.host_entry('a', audit('drift', [finding(1)]))])
    built = report([rb.host_entry('a', audit('drift', [finding(1), finding(2)], coverage=None))], previous=previous)
    assert built['hosts'][0]['changes'] is None
    assert [f['port'] for f in built['hosts'][0]['findings']] == [1, 2]


# --------------------------------------------------------------------------------------------- the gate

def fleet():
    return report([rb.host_entry('a', audit('drift', [finding(856), finding(8080, 'low')])),
                   rb.host_entry('b', audit('drift', [finding(23, 'critical', where='docker:web')])),
                   rb.host_entry('c', audit('compliant')),
                   rb.host_entry('d', None, 'unreachable: timeout')])


def test_the_gate_lines_are_exact():
    code, failing, lines = rb.gate_report(fleet(), 'high')
    assert code == rb.EXIT_UNKNOWN and failing == ['b', 'a', 'd']
    assert lines == [
        '4 hosts: 1 compliant, 2 drift, 1 unknown; drift findings critical 1, high 1, low 1',
        'drift at or above high on 2 hosts: b (critical), a (high)',
        'drifted: b: tcp 0.0.0.0:23 in docker:web, rule r (critical); a: tcp 0.0.0.0:856, rule r (high)',
        'unknown on 1 host: d (unreachable: timeout)']


def test_the_gate_default_does_not_allow_unknown():
    assert rb.gate_report(fleet())[0] == rb.EXIT_UNKNOWN
    assert rb.gate_report(fleet(), 'info', True)[0] == rb.EXIT_DRIFT
    assert rb.gate_report(fleet(), 'never', True) == (rb.EXIT_COMPLIANT, [], [
        '4 hosts: 1 compliant, 2 drift, 1 unknown; drift findings critical 1, high 1, low 1'])


def test_an_unknown_host_with_no_reasons_fails_the_gate():
    entry = rb.host_entry('a', audit('compliant'))
    entry.update(status='unknown', reasons=[], errors=[])
    code, failing, lines = rb.gate_report(report([entry]), 'high')
    assert (code, failing, lines[-1]) == (rb.EXIT_UNKNOWN, ['a'], 'unknown on 1 host: a (no verdict)')


def test_a_drifting_host_with_reasons_is_unknown_and_drift_at_the_threshold_fails():
    partial = rb.host_entry('a', audit('drift', [finding(1, 'medium')], reasons=['partial gather']))
    assert rb.gate_report(report([partial]), 'medium')[:2] == (rb.EXIT_UNKNOWN, ['a', 'a'])
    assert rb.gate_report(report([partial]), 'medium', True)[:2] == (rb.EXIT_DRIFT, ['a'])
    assert rb.gate_report(report([partial]), 'high', True)[:2] == (rb.EXIT_COMPLIANT, [])
    empty = report([rb.host_entry('a', audit('compliant'))])
    assert rb.gate_report(empty, 'info')[2] == ['1 host: 1 compliant, 0 drift, 0 unknown; drift findings none']


def test_the_gate_names_ten_hosts_and_counts_the_rest():
    hosts = [rb.host_entry('h%02d' % i, audit('drift', [finding(i + 1)])) for i in range(12)]
    hosts += [rb.host_entry('u%02d' % i, None, 'gone') for i in range(12)]
    _code, failing, lines = rb.gate_report(report(hosts), 'high')
    assert failing == ['h%02d' % i for i in range(12)] + ['u%02d' % i for i in range(12)]
    assert lines[1].endswith('h08 (high), h09 (high) and 2 more') and 'h10' not in lines[1]
    assert lines[3].endswith('u09 (gone) and 2 more') and 'u10' not in lines[3]
    many = report([rb.host_entry('a', audit('drift', [finding(i + 1) for i in range(25)]))])
    assert rb.gate_report(many, 'high')[2][2].endswith('0.0.0.0:20, rule r (high) and 5 more')


# --------------------------------------------------------------------------------------------- contradictions

def test_a_consistent_report_has_no_contradictions():
    assert rb.report_contradictions(fleet(), now=WHEN) == []


@pytest.mark.parametrize('change, says', [
    (lambda r: r['summary'].update(drift=5), 'summary.drift says 5 but its hosts give 2'),
    (lambda r: r['summary']['findings_by_severity'].update(low=0), 'summary.findings_by_severity says'),
    (lambda r: r['hosts'][2].update(status='drift'), 'hosts[2]: host c is drift but its findings, reasons and '
                                                     'coverage make it compliant (0 drift findings, 0 reasons, '
                                                     'coverage complete)'),
    (lambda r: r['hosts'][0].update(status='compliant'), 'host a is compliant but its findings, reasons and coverage '
                                                         'make it drift (2 drift findings, 0 reasons, coverage complete)'),
    (lambda r: r['hosts'][2].update(reasons=['x']), 'make it unknown (0 drift findings, 1 reason, coverage complete)'),
    (lambda r: r['hosts'][2].update(errors=['x']), 'host c is compliant but'),
    (lambda r: r['hosts'][2].update(coverage=None), 'coverage incomplete or missing'),
    (lambda r: r['hosts'][2].update(coverage={'complete': 1}), 'coverage incomplete or missing'),
    (lambda r: r['hosts'][2]['findings'].append(finding(9, status='unknown', where='host')), 'host c is compliant'),
    (lambda r: r['hosts'].append(dict(r['hosts'][2])), 'hosts[4]: host c is listed twice'),
    (lambda r: r.update(hosts=[]), 'hosts: the report lists no host'),
    (lambda r: r.update(generated_at='2026-11-26T12:06:00Z'), 'is 360 s in the future'),
    (lambda r: r.update(generated_at='2026-11-26 12:00:00Z'), "generated_at '2026-11-26 12:00:00Z' is not a time"),
    (lambda r: r.update(generated_at=None), 'generated_at None is not a time'),
], ids=['summary', 'by-severity', 'drift-without', 'compliant-with', 'reasons', 'errors', 'no-coverage',
        'coverage-not-true', 'unknown-finding', 'twice', 'no-host', 'future', 'format', 'none'])
def test_each_contradiction_is_named(change, says):
    lying = fleet()
    change(lying)
    problems = rb.report_contradictions(lying, now=WHEN)
    assert any(says in problem for problem in problems), problems


def test_the_clock_rules():
    assert rb.report_contradictions(fleet(), now=WHEN - datetime.timedelta(seconds=rb.FUTURE_SKEW_SECONDS)) == []
    assert rb.report_contradictions(fleet(), now=WHEN + datetime.timedelta(hours=2), max_age=7200) == []
    assert rb.report_contradictions(fleet(), now=WHEN + datetime.timedelta(hours=2, seconds=1), max_age=7200) == [
        'generated_at 2026-11-26T12:00:00Z is 7201 s old, older than --max-age 7200 s']
    assert rb.parse_generated_at('2026-11-26T12:00:00Z') == WHEN
    assert rb.parse_generated_at('2026-11-26T12:00:00Z ') is None and rb.parse_generated_at(5) is None
    assert rb.parse_generated_at('2026-13-26T12:00:00Z') is None
    recent = rb.build_report(fleet()['hosts'], POLICY, REGISTRY)
    assert rb.report_contradictions(recent, max_age=60) == []  # now defaults to the clock


def test_expected_status_follows_the_evaluation_rule():
    assert rb.expected_status(rb.host_entry('a', audit('drift', [finding(1)], reasons=['p']))) == 'drift'
    assert rb.expected_status(rb.host_entry('a', audit('compliant'))) == 'compliant'
    assert rb.expected_status(rb.host_entry('a', None)) == 'unknown'
    assert rb.expected_status(rb.host_entry('a', audit('compliant', [finding(1, status='waived')]))) == 'compliant'


def test_the_gate_lines_say_host_and_hosts_rightly():
    one = report([rb.host_entry('a', audit('drift', [finding(1)])), rb.host_entry('u', None, 'gone'),
                  rb.host_entry('v', None, 'gone')])
    lines = rb.gate_report(one, 'high')[2]
    assert lines[1] == 'drift at or above high on 1 host: a (high)'
    assert lines[3] == 'unknown on 2 hosts: u (gone); v (gone)'


def test_drift_is_named_by_host_then_port_number_and_twenty_are_all_named():
    built = report([rb.host_entry('a', audit('drift', [finding(1000), finding(999)]))])
    assert rb.gate_report(built, 'high')[2][2] == ('drifted: a: tcp 0.0.0.0:999, rule r (high); '
                                                   'a: tcp 0.0.0.0:1000, rule r (high)')
    twenty = report([rb.host_entry('a', audit('drift', [finding(i + 1) for i in range(20)]))])
    assert rb.gate_report(twenty, 'high')[2][2].endswith('0.0.0.0:20, rule r (high)')


def test_a_host_without_coverage_gets_no_other_key_when_compared():
    previous = report([rb.host_entry('a', audit('drift', [finding(1)]))])
    built = report([rb.host_entry('a', None, 'gone')], previous=previous)
    assert set(built['hosts'][0]) == {'host', 'status', 'reasons', 'errors', 'findings', 'warnings', 'coverage',
                                      'evaluated_on', 'changes', 'remediation'}


def test_an_honest_unknown_is_no_contradiction_and_one_finding_is_singular():
    entry = rb.host_entry('a', audit('compliant'))
    entry['status'] = 'unknown'  # claims less than its findings support: fails closed, not a lie
    assert rb.expected_status(entry) == 'unknown'
    lying = report([rb.host_entry('a', audit('drift', [finding(1)]))])
    lying['hosts'][0]['status'] = 'compliant'
    assert '(1 drift finding, 0 reasons, coverage complete)' in rb.report_contradictions(lying, now=WHEN)[0]
