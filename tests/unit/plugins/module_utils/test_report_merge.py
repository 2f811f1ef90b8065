"""Unit tests: the pure merge of part reports into one fleet report (plugins/module_utils/report_merge.py)."""

import copy
import datetime

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb

POLICY = {'name': 'fleet', 'sha256': 'a' * 64, 'rules': [{'id': 'iana-unassigned-closed', 'severity': 'high'}]}
OTHER_POLICY = {'name': 'other', 'sha256': 'c' * 64, 'rules': [{'id': 'iana-unassigned-closed', 'severity': 'high'}]}
REGISTRY = {'date': '2026-08-17', 'sha256': 'b' * 64, 'records': 14533}
NOW = datetime.datetime(2026, 11, 26, 12, 0, 0, tzinfo=datetime.timezone.utc)


def rm():
    from ansible_collections.portwarden.compliance.plugins.module_utils import report_merge
    return report_merge


def finding(port, severity='high', status='drift'):
    return {'rule': 'iana-unassigned-closed', 'severity': severity, 'status': status, 'protocol': 'tcp',
            'family': 'ipv4', 'address': '0.0.0.0', 'port': port, 'service': None, 'waived': False, 'waiver': None,
            'message': 'tcp 0.0.0.0:%d must be closed' % port, 'processes': []}


def audit(status, findings=()):
    return {'status': status, 'findings': list(findings), 'reasons': [], 'warnings': [],
            'coverage': {'complete': True, 'errors': []}, 'evaluated_on': '2026-11-26'}


ENTRIES = {
    'web-1': lambda: rb.host_entry('web-1', audit('compliant')),
    'web-2': lambda: rb.host_entry('web-2', audit('drift', [finding(856)])),
    'db-1': lambda: rb.host_entry('db-1', audit('compliant')),
    'db-2': lambda: rb.host_entry('db-2', None, 'unreachable: timeout'),
}


def part(hosts, minutes_ago=10, policy=None, run_id=None, entries=None):
    """A part report as port_report writes it with scope part."""
    policy = policy or POLICY
    entries = entries or [ENTRIES[host]() for host in hosts]
    built = rb.build_report(entries, policy, REGISTRY, generated_at=NOW - datetime.timedelta(minutes=minutes_ago),
                            run_id=run_id)
    built['scope'] = rm().report_scope('part', built['run_id'], [entry['host'] for entry in entries], policy,
                                       REGISTRY)
    return built


def merge(parts, **kwargs):
    kwargs.setdefault('now', NOW)
    return rm().merge_parts([{'file': '/parts/%d.json' % index, 'report': report} for index, report in enumerate(parts)],
                            **kwargs)


def comparable(report):
    """A report without what differs between runs: timestamps, run ids, scope, the per-host part."""
    report = copy.deepcopy(report)
    for key in ('generated_at', 'run_id', 'scope', 'files', 'previous'):
        report.pop(key, None)
    for entry in report['hosts']:
        entry.pop('part', None)
    return report


def test_two_parts_merge_to_what_one_report_of_the_same_hosts_says():
    merged = merge([part(['web-1', 'web-2']), part(['db-1', 'db-2'])], expected=['web-1', 'web-2', 'db-1', 'db-2'])
    whole = rb.build_report([ENTRIES[host]() for host in ENTRIES], POLICY, REGISTRY, generated_at=NOW)
    assert comparable(merged) == comparable(whole)
    assert rb.gate_report(merged) == rb.gate_report(whole)
    assert merged['scope']['kind'] == 'fleet'
    assert [item['hosts'] for item in merged['scope']['parts']] == [['web-1', 'web-2'], ['db-1', 'db-2']]
    assert rb.report_contradictions(merged, now=NOW) == []


def test_a_host_no_part_covers_is_unknown_no_report():
    merged = merge([part(['web-1'])], expected=['web-1', 'db-1'])
    db = next(entry for entry in merged['hosts'] if entry['host'] == 'db-1')
    assert db['status'] == 'unknown'
    assert db['reasons'] == ['no report: no part covers this host']
    assert db['part'] is None
    assert rb.gate_report(merged)[0] == rb.EXIT_UNKNOWN


def test_without_an_expected_set_the_union_is_used_and_the_report_says_so():
    merged = merge([part(['web-1']), part(['db-1'])])
    assert [entry['host'] for entry in merged['hosts']] == ['db-1', 'web-1']
    assert merged['scope']['expected'] is None
    assert any('expected hosts were not given' in warning for warning in merged['scope']['warnings'])


def test_a_stale_part_makes_its_hosts_unknown():
    merged = merge([part(['web-1'], minutes_ago=180), part(['db-1'], minutes_ago=5)], max_age=7200,
                   expected=['web-1', 'db-1'])
    by_host = dict((entry['host'], entry) for entry in merged['hosts'])
    assert by_host['db-1']['status'] == 'compliant'
    web = by_host['web-1']
    assert web['status'] == 'unknown' and web['findings'] == []
    run_id = merged['scope']['parts'][0]['run_id']
    assert web['reasons'] == ['stale: part %s from 2026-11-26T09:00:00Z is older than 7200 s' % run_id]


def test_the_newer_audit_of_a_host_wins_and_the_entry_names_both_parts():
    old = part(['web-2'], minutes_ago=60)
    new = part(['web-2'], minutes_ago=5, entries=[rb.host_entry('web-2', audit('compliant'))])
    merged = merge([new, old])
    entry = merged['hosts'][0]
    assert entry['status'] == 'compliant'
    assert entry['part']['run_id'] == new['run_id']
    assert entry['part']['covered_by'] == sorted([new['run_id'], old['run_id']])
    # and the other way round: the newer drift wins over an older pass
    merged = merge([part(['web-2'], minutes_ago=5), part(['web-2'], minutes_ago=60,
                                                         entries=[rb.host_entry('web-2', audit('compliant'))])])
    assert merged['hosts'][0]['status'] == 'drift'


def test_a_tie_between_two_audits_goes_to_the_worse_verdict():
    passing = part(['web-2'], entries=[rb.host_entry('web-2', audit('compliant'))])
    drifting = part(['web-2'])
    assert merge([passing, drifting])['hosts'][0]['status'] == 'drift'
    assert merge([drifting, passing])['hosts'][0]['status'] == 'drift'


def test_mixed_policies_are_refused_naming_files_and_digests():
    with pytest.raises(rm().MergeRefused) as refused:
        merge([part(['web-1']), part(['db-1'], policy=OTHER_POLICY)])
    text = str(refused.value)
    assert '/parts/0.json' in text and '/parts/1.json' in text
    assert 'a' * 64 in text and 'c' * 64 in text


def test_mixed_policies_allowed_list_each_policy_and_its_hosts():
    merged = merge([part(['web-1']), part(['db-1'], policy=OTHER_POLICY)], allow_mixed=True)
    policies = merged['scope']['policies']
    judged = sorted((item['policy_sha256'], item['hosts']) for item in policies)
    assert judged == [('a' * 64, ['web-1']), ('c' * 64, ['db-1'])]
    assert rb.report_contradictions(merged, now=NOW) == []


def test_part_problems_find_a_hosts_list_that_disagrees_with_the_entries():
    claimed = part(['web-1', 'web-2'])
    claimed['scope']['hosts'] = ['web-1']
    problems = rm().part_problems(claimed, now=NOW)
    assert any('scope.hosts' in problem and 'web-2' in problem for problem in problems)


def test_part_problems_refuse_a_part_from_the_future():
    future = part(['web-1'], minutes_ago=-60 * 24)
    assert any('in the future' in problem for problem in rm().part_problems(future, now=NOW))


def test_part_problems_refuse_a_compliant_host_with_drift():
    lying = part(['web-2'])
    lying['hosts'][0]['status'] = 'compliant'
    lying['summary'] = rb.summarize(lying['hosts'])
    assert any('web-2 is compliant but' in problem for problem in rm().part_problems(lying, now=NOW))


def test_part_problems_refuse_scope_digests_other_than_the_reports():
    forged = part(['web-1'])
    forged['scope']['policy_sha256'] = 'd' * 64
    assert any('policy_sha256' in problem for problem in rm().part_problems(forged, now=NOW))


def test_two_parts_with_one_run_id_and_other_content_are_refused():
    first = part(['web-1'], run_id='1' * 32)
    second = part(['db-1'], run_id='1' * 32)
    with pytest.raises(rm().MergeRefused) as refused:
        merge([first, second])
    assert 'run_id %s' % ('1' * 32) in str(refused.value)


def test_skipped_parts_make_their_hosts_unknown_with_the_reason():
    merged = merge([part(['web-1'])], expected=['web-1', 'db-1', 'db-2'],
                   skipped=[{'file': '/parts/bad.json', 'reason': 'truncated', 'hosts': ['db-1']},
                            {'file': '/parts/worse.json', 'reason': 'not JSON', 'hosts': None}])
    by_host = dict((entry['host'], entry) for entry in merged['hosts'])
    assert by_host['db-1']['status'] == 'unknown'
    assert by_host['db-1']['reasons'] == ['bad part /parts/bad.json skipped: truncated']
    assert by_host['db-2']['reasons'] == ['no report: no part covers this host (a part skipped as bad may have: '
                                          '/parts/worse.json: not JSON)']
    assert [item['file'] for item in merged['scope']['skipped']] == ['/parts/bad.json', '/parts/worse.json']


def test_an_unreadable_skipped_part_without_an_expected_set_is_refused():
    with pytest.raises(rm().MergeRefused) as refused:
        merge([part(['web-1'])], skipped=[{'file': '/parts/worse.json', 'reason': 'not JSON', 'hosts': None}])
    assert '/parts/worse.json' in str(refused.value) and '--inventory' in str(refused.value)


def test_a_merged_report_merged_again_keeps_each_hosts_audit_time():
    """Re-merging a merged report must not launder a stale audit into a fresh one."""
    first = merge([part(['web-1'], minutes_ago=180)], now=NOW)
    again = merge([first], now=NOW + datetime.timedelta(minutes=1), max_age=7200)
    assert again['hosts'][0]['status'] == 'unknown'
    assert again['hosts'][0]['reasons'][0].startswith('stale: part ')


def test_no_part_at_all_is_refused():
    with pytest.raises(rm().MergeRefused):
        merge([], expected=['web-1'])


def test_run_ids_from_awx_are_unique_and_fit_the_schema():
    first, second = rm().make_run_id(1234), rm().make_run_id(1234)
    assert first != second and first.startswith('awx-1234-')
    assert rm().RUN_ID.match(first) and rm().RUN_ID.match(rm().make_run_id(None))
    assert rm().make_run_id('12; rm -rf /').startswith('awx-') is False


def test_hosts_only_the_parts_name_are_left_out_of_the_expected_fleet_and_said():
    merged = merge([part(['web-1', 'db-1'])], expected=['web-1'])
    assert [entry['host'] for entry in merged['hosts']] == ['web-1']
    assert any('left out of the report: db-1' in warning for warning in merged['scope']['warnings'])


def test_a_report_of_an_older_portwarden_without_scope_merges_as_a_fleet_report():
    old = rb.build_report([ENTRIES['web-1'](), ENTRIES['db-1']()], POLICY, REGISTRY,
                          generated_at=NOW - datetime.timedelta(minutes=30))
    assert 'scope' not in old and rm().part_problems(old, now=NOW) == []
    newer = part(['db-1'], minutes_ago=5, entries=[rb.host_entry('db-1', audit('drift', [finding(856)]))])
    merged = merge([old, newer], expected=['web-1', 'db-1'])
    by_host = dict((entry['host'], entry) for entry in merged['hosts'])
    assert by_host['web-1']['status'] == 'compliant' and by_host['web-1']['part']['run_id'] == old['run_id']
    assert by_host['db-1']['status'] == 'drift'
    assert merged['scope']['parts'][0]['kind'] == 'fleet'
