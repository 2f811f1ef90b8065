"""Unit tests: the fleet report, drift over time and the gate on a report."""

import datetime

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb

POLICY = {'name': 'fleet', 'sha256': 'a' * 64, 'rules': [{'id': 'iana-unassigned-closed', 'severity': 'high'}]}
REGISTRY = {'date': '2026-08-17', 'sha256': 'b' * 64, 'records': 14533}
WHEN = datetime.datetime(2026, 11, 26, 12, 0, 0, tzinfo=datetime.timezone.utc)


def finding(port, severity='high', status='drift', rule='iana-unassigned-closed'):
    return {'rule': rule, 'severity': severity, 'status': status, 'protocol': 'tcp', 'family': 'ipv4',
            'address': '0.0.0.0', 'port': port, 'service': None, 'waived': status == 'waived', 'waiver': None,
            'message': 'tcp 0.0.0.0:%d must be closed' % port,
            'processes': [{'pid': 1, 'name': 'agent', 'user': 'nobody', 'uid': 65534, 'exe': '/opt/agent',
                           'unit': None, 'cmdline': 'agent --token s3cret'}]}


def audit(status, findings=(), reasons=()):
    return {'status': status, 'findings': list(findings), 'reasons': list(reasons), 'warnings': [],
            'coverage': {'complete': not reasons, 'errors': list(reasons)}, 'evaluated_on': '2026-11-26'}


def report(hosts, previous=None):
    return rb.build_report(hosts, POLICY, REGISTRY, generated_at=WHEN, previous=previous)


FLEET = [
    rb.host_entry('web-1', audit('compliant')),
    rb.host_entry('web-2', audit('drift', [finding(856), finding(8080, 'low', rule='other')])),
    rb.host_entry('db-1', audit('compliant', [finding(856, status='waived')])),
    rb.host_entry('gone-1', None, 'unreachable: ssh: connect to host gone-1 port 22: No route to host'),
    rb.host_entry('part-1', audit('drift', [finding(857, 'medium')], reasons=['partial gather: 3 processes'])),
]


def test_every_host_appears_and_missing_ones_are_unknown():
    built = report(FLEET)
    assert [entry['host'] for entry in built['hosts']] == ['db-1', 'gone-1', 'part-1', 'web-1', 'web-2']
    gone = built['hosts'][1]
    assert gone['status'] == 'unknown' and gone['coverage'] is None
    assert gone['errors'] == ['unreachable: ssh: connect to host gone-1 port 22: No route to host']
    assert rb.host_entry('x')['status'] == 'unknown'  # no result at all is never compliant


def test_summary_counts():
    summary = report(FLEET)['summary']
    assert (summary['hosts'], summary['compliant'], summary['drift'], summary['unknown']) == (5, 2, 2, 1)
    assert summary['findings_by_severity'] == {'info': 0, 'low': 1, 'medium': 1, 'high': 1, 'critical': 0}
    assert summary['waived_findings'] == 1


def test_report_carries_no_command_lines():
    built = report(FLEET)
    for entry in built['hosts']:
        for item in entry['findings']:
            for proc in item['processes']:
                assert set(proc) == {'pid', 'name', 'user', 'uid', 'exe', 'unit', 'start_time'}
    assert 's3cret' not in repr(built)


def test_a_compliant_audit_with_a_run_error_is_not_compliant():
    entry = rb.host_entry('h', audit('compliant'), 'the audit task reported an error')
    assert entry['status'] == 'unknown'


def test_new_and_resolved_findings_against_the_previous_report():
    before = report([rb.host_entry('web-2', audit('drift', [finding(856), finding(857)]))])
    after = report([rb.host_entry('web-2', audit('drift', [finding(857), finding(858)])),
                    rb.host_entry('new-1', audit('drift', [finding(859)]))], previous=before)
    changes = dict((entry['host'], entry['changes']) for entry in after['hosts'])
    assert [item['port'] for item in changes['web-2']['new']] == [858]
    assert [item['port'] for item in changes['web-2']['resolved']] == [856]
    assert changes['new-1']['first_seen'] is True and [item['port'] for item in changes['new-1']['new']] == [859]
    assert after['previous'] == {'generated_at': '2026-11-26T12:00:00Z'}
    assert report(FLEET)['hosts'][0]['changes'] is None  # no previous report: no changes


@pytest.mark.parametrize('fail_on, allow_unknown, code', [
    ('high', False, rb.EXIT_UNKNOWN),  # unknown outranks drift: the gate cannot vouch for the fleet
    ('high', True, rb.EXIT_DRIFT),
    ('critical', True, rb.EXIT_COMPLIANT),
    ('never', True, rb.EXIT_COMPLIANT),
    ('low', True, rb.EXIT_DRIFT),
])
def test_gate_codes(fail_on, allow_unknown, code):
    assert rb.gate_report(report(FLEET), fail_on, allow_unknown)[0] == code


def test_gate_names_the_worst_hosts_first():
    code, failing, lines = rb.gate_report(report(FLEET), 'medium', allow_unknown=False)
    assert code == rb.EXIT_UNKNOWN
    assert failing[:2] == ['web-2', 'part-1']  # high before medium
    assert lines[0] == '5 hosts: 2 compliant, 2 drift, 1 unknown; drift findings high 1, medium 1, low 1'
    assert 'web-2 (high), part-1 (medium)' in lines[1]
    assert lines[2] == ('drifted: web-2: tcp 0.0.0.0:856, rule iana-unassigned-closed (high); '
                        'part-1: tcp 0.0.0.0:857, rule iana-unassigned-closed (medium)')  # not the low 8080
    assert 'gone-1 (unreachable' in lines[3] and 'part-1 (partial gather' in lines[3]


def test_a_compliant_fleet_passes():
    code, failing, _lines = rb.gate_report(report([rb.host_entry('a', audit('compliant'))]), 'info', False)
    assert (code, failing) == (rb.EXIT_COMPLIANT, [])


def test_unseen_and_partial_hosts_resolve_nothing():
    before = report([rb.host_entry('gone-1', audit('drift', [finding(856)])),
                     rb.host_entry('part-1', audit('drift', [finding(856), finding(857)]))])
    after = report([rb.host_entry('gone-1', None, 'unreachable: timeout'),
                    rb.host_entry('part-1', audit('drift', [finding(858)], reasons=['partial gather']))],
                   previous=before)
    changes = dict((entry['host'], entry['changes']) for entry in after['hosts'])
    assert changes['gone-1'] is None  # its 856 is unseen, not resolved
    assert changes['part-1']['resolved'] == []  # a partial gather cannot say 856 and 857 are gone
    assert [item['port'] for item in changes['part-1']['new']] == [858]
    assert after['summary']['incomplete'] == 2
