"""Unit tests: overlays in the report: each host records what applied, the digests add up, parts still merge."""

import datetime

import jsonschema
import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils import policy_overlay as po
from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb
from ansible_collections.portwarden.compliance.plugins.module_utils import report_formats
from ansible_collections.portwarden.compliance.plugins.module_utils import report_merge as rm
from ansible_collections.portwarden.compliance.plugins.module_utils.report_schema import REPORT_SCHEMA, report_valid

TODAY = datetime.date(2026, 11, 26)
NOW = datetime.datetime(2026, 11, 26, 12, 0, 0, tzinfo=datetime.timezone.utc)
POLICY = {'policy_version': 1, 'name': 'fleet', 'default': 'deny', 'rules': [
    {'id': 'iana-unassigned-closed', 'match': {'ports': 'iana:unassigned'}, 'expect': 'closed', 'severity': 'high'}]}
COMPILED = ev.compile_policy(POLICY)
POLICY_INFO = dict(COMPILED.info(), rules=[{'id': 'iana-unassigned-closed', 'severity': 'high'}])
REGISTRY = {'date': '2026-08-17', 'sha256': 'b' * 64, 'records': 14533}


def overlay(port):
    return {'rules': [{'id': 'allow-%d' % port, 'match': {'ports': [port], 'protocols': ['tcp']},
                       'expect': {'processes': ['svc']}}]}


def sock(port):
    return {'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': port, 'v6only': None,
            'ephemeral': False, 'inode': port, 'processes': [{'pid': 1000 + port, 'name': 'svc', 'user': 'root',
                                                              'uid': 0, 'exe': '/usr/bin/svc', 'unit': None}]}


def entry(host, ports, overlays=()):
    compiled = po.compile_host_policy(POLICY, list(overlays)) if overlays else COMPILED
    audit = ev.evaluate_host({'sockets': [sock(port) for port in ports], 'coverage': {'complete': True, 'errors': []}},
                             compiled, host, [], TODAY)
    return rb.host_entry(host, audit)


def part(entries, minutes_ago=10):
    built = rb.build_report(entries, POLICY_INFO, REGISTRY, generated_at=NOW - datetime.timedelta(minutes=minutes_ago))
    built['scope'] = rm.report_scope('part', built['run_id'], [item['host'] for item in entries], POLICY_INFO, REGISTRY)
    return built


def test_a_host_entry_records_the_overlays_and_the_effective_digest_only_when_some_applied():
    with_overlay = entry('web3', [9100], [('port_compliance_policy_overlay', overlay(9100))])
    assert with_overlay['status'] == 'compliant'
    assert with_overlay['policy'] == {
        'sha256': po.effective_digest(COMPILED.digest, with_overlay['policy']['overlays']),
        'base_sha256': COMPILED.digest,
        'overlays': [{'variable': 'port_compliance_policy_overlay', 'sha256': ev.policy_digest(overlay(9100)),
                      'rules': ['allow-9100'], 'waivers': 0}]}
    plain = entry('web4', [9100])
    assert plain['status'] == 'drift' and 'policy' not in plain
    report = part([with_overlay, plain])
    jsonschema.Draft202012Validator(REPORT_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(report)
    assert report_valid(report) is True
    assert rb.report_contradictions(report, now=NOW) == []


@pytest.mark.parametrize('tamper, fragment', [
    (lambda policy: policy['overlays'][0].update(sha256='0' * 64), 'is not the digest of its policy and the overlays'),
    (lambda policy: policy['overlays'].pop(), 'is not the digest of its policy and the overlays'),
    (lambda policy: policy.update(base_sha256='1' * 64), 'was judged under policy 1111'),
    (lambda policy: policy.update(overlays='none'), 'policy.overlays is not a list'),
])
def test_a_report_whose_overlay_digests_do_not_add_up_contradicts_itself(tamper, fragment):
    report = part([entry('web3', [9100], [('port_compliance_policy_overlay', overlay(9100))])])
    tamper(report['hosts'][0]['policy'])
    problems = rb.report_contradictions(report, now=NOW)
    assert problems and all(problem.startswith('hosts[0]: host web3') for problem in problems), problems
    assert any(fragment in problem for problem in problems), problems


def test_parts_whose_hosts_have_different_overlays_merge_and_keep_each_hosts_record():
    first = part([entry('web1', [9100], [('port_compliance_policy_overlay', overlay(9100))]), entry('web2', [])])
    second = part([entry('db1', [5432], [('port_compliance_policy_overlay_db', overlay(5432))])])
    for report in (first, second):
        assert rm.part_problems(report, now=NOW) == []
    merged = rm.merge_parts([{'file': 'a.json', 'report': first}, {'file': 'b.json', 'report': second}],
                            expected=['web1', 'web2', 'db1'], now=NOW)
    hosts = dict((item['host'], item) for item in merged['hosts'])
    assert [hosts[name]['status'] for name in ('db1', 'web1', 'web2')] == ['compliant'] * 3
    assert hosts['web1']['policy'] == first['hosts'][0]['policy']
    assert hosts['db1']['policy']['overlays'][0]['variable'] == 'port_compliance_policy_overlay_db'
    assert 'policy' not in hosts['web2']
    assert merged['policy']['sha256'] == COMPILED.digest and 'policies' not in merged['scope']
    assert rm.part_problems(merged, now=NOW) == [] and rb.report_contradictions(merged, now=NOW) == []


def test_a_host_audited_again_with_a_changed_overlay_takes_the_newer_audit():
    old = part([entry('web1', [9100], [('port_compliance_policy_overlay', overlay(9100))])], minutes_ago=20)
    new = part([entry('web1', [9100], [('port_compliance_policy_overlay', overlay(9200))])], minutes_ago=5)
    merged = rm.merge_parts([{'file': 'old.json', 'report': old}, {'file': 'new.json', 'report': new}],
                            expected=['web1'], now=NOW)
    web1 = merged['hosts'][0]
    assert web1['status'] == 'drift' and web1['policy'] == new['hosts'][0]['policy'] != old['hosts'][0]['policy']


def test_the_html_report_names_the_overlays_a_host_was_judged_with():
    judged = entry('web3', [9100, 856], [('port_compliance_policy_overlay_web', overlay(9100))])
    html = report_formats.render_html(part([judged, entry('web4', [856])]))
    line = ('Judged with overlays from its variables: port_compliance_policy_overlay_web (sha256 %s); effective policy '
            'sha256 %s.' % (judged['policy']['overlays'][0]['sha256'][:12], judged['policy']['sha256'][:12]))
    assert html.count('Judged with overlays') == 1 and line in html


def test_the_markdown_summary_names_the_hosts_judged_with_overlays():
    judged = entry('web3', [9100, 856], [('port_compliance_policy_overlay_web', overlay(9100)),
                                         ('port_compliance_policy_overlay', overlay(9101))])
    markdown = report_formats.render_markdown(part([judged, entry('web4', [856])]))
    variables = ', '.join(item['variable'].replace('_', '\\_') for item in judged['policy']['overlays'])
    assert ('Judged with overlays from inventory variables on 1 host: web3 (%s); each host\'s effective policy sha256 '
            'is in the JSON report.' % variables in markdown.splitlines()), markdown
    many = [entry('web%d' % index, [9100], [('port_compliance_policy_overlay', overlay(9100))]) for index in range(12)]
    markdown = report_formats.render_markdown(part(many))
    assert 'on 12 hosts: web0 (' in markdown and ' and 2 more; each host' in markdown
    assert 'Judged with overlays' not in report_formats.render_markdown(part([entry('web4', [856])]))
