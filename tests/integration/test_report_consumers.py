"""Every report format read by the tool that really consumes it.

The fleet goes the whole way: synthetic gathers, evaluated against a policy by the evaluation
core, built into a fleet report, rendered and written as the report action writes it; then
- JSON: jsonschema (draft 2020-12, format checker) against the published schema;
- JUnit: the junitparser library, as CI test views read it;
- Prometheus: prometheus_client's own text parser, as a scrape of node_exporter's textfile collector;
- HTML: headless Chromium, its DOM and a screenshot (Chromium missing is a failure, not a skip);
- Markdown: a structural parse of its tables, as GitHub renders a step summary.

Two hosts went through remediate mode, by the remediation core as the port_remediate action drives
it (the host's answers simulated): fix-01, where a firewall block and a kill closed two findings
and a safety rail kept the port of the live connection open (a process named like an HTML tag was
the kill's target), and partial-01, skipped for its partial gather.
"""

import datetime
import json
import os
import re
import shutil
import struct
import subprocess
import zlib

import pytest
from jsonschema import Draft202012Validator
from junitparser import Error, Failure, JUnitXml, Skipped, SystemOut
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils import registry, report_schema
from ansible_collections.portwarden.compliance.plugins.module_utils import remediate_plan as rp
from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import build_report, host_entry
from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES, RENDERERS
from tests.conftest import REPO

CHROMIUM = '/usr/bin/chromium'
TODAY = datetime.date(2027, 1, 20)
GENERATED = datetime.datetime(2027, 1, 20, 6, 0, 0, tzinfo=datetime.timezone.utc)
EVIL_PROCESS = '<img src=x onerror=alert(1)>'
PIPE_PROCESS = 'x|y</td>'
ODD_HOST = 'quote"back\\slash'
DRIFTING = ['db-01', 'evil-01', 'fix-01', ODD_HOST]
POLICY = {
    'policy_version': 1,
    'name': 'integration',
    'rules': [
        {'id': 'no-telnet', 'description': 'telnet stays closed', 'match': {'ports': [23]}, 'expect': 'closed',
         'severity': 'critical'},
        {'id': 'iana-unassigned-closed', 'description': 'Ports IANA has not assigned must stay closed',
         'match': {'ports': 'iana:unassigned', 'protocols': ['tcp', 'udp']}, 'expect': 'closed', 'severity': 'high'},
        {'id': 'postgres-loopback-only', 'description': 'PostgreSQL on loopback only', 'match': {'ports': [5432]},
         'expect': {'bind': 'loopback'}, 'severity': 'high'},
        {'id': 'ssh-only-sshd', 'description': 'port 22 is sshd', 'match': {'ports': [22], 'protocols': ['tcp']},
         'expect': {'processes': ['sshd']}, 'severity': 'medium'},
    ],
    'waivers': [{'rule': 'postgres-loopback-only', 'hosts': ['web-02'], 'reason': 'replica <sync> until migration',
                 'ticket': 'OPS-7', 'approved_by': 'dba', 'expires': '2027-06-01'}],
}
RULE_IDS = [rule['id'] for rule in POLICY['rules']]


def proc(name, pid, user='root', uid=0, start_time=None):
    return {'pid': pid, 'name': name, 'user': user, 'uid': uid, 'exe': '/usr/sbin/' + name, 'unit': None,
            'start_time': start_time}


def sock(port, *processes, address='0.0.0.0', protocol='tcp'):
    return {'protocol': protocol, 'family': 'ipv6' if ':' in address else 'ipv4', 'address': address, 'port': port,
            'v6only': None, 'ephemeral': False, 'inode': port, 'processes': list(processes)}


COMPLETE = {'complete': True, 'errors': []}
GATHERS = {
    'web-01': {'sockets': [sock(22, proc('sshd', 10))], 'coverage': COMPLETE},
    'web-02': {'sockets': [sock(22, proc('sshd', 10)), sock(5432, proc('postgres', 20, 'postgres', 26))],
               'coverage': COMPLETE},
    'db-01': {'sockets': [sock(5432, proc('postgres', 20, 'postgres', 26)), sock(23, proc('inetd', 30))],
              'coverage': COMPLETE},
    'evil-01': {'sockets': [sock(856, proc(EVIL_PROCESS, 66, 'www-data', 33), proc(PIPE_PROCESS, 67))],
                'coverage': COMPLETE},
    ODD_HOST: {'sockets': [sock(23, proc('telnetd', 40))], 'coverage': COMPLETE},
    'partial-01': {'sockets': [sock(22, proc('sshd', 10))],
                   'coverage': {'complete': False, 'errors': ['/proc/net/tcp6 unreadable']}},
}
# remediate mode: what each rule's drift gets, and the gather made after the changes
STRATEGIES = {'no-telnet': 'firewall', 'iana-unassigned-closed': 'kill', 'ssh-only-sshd': 'kill'}
FIX_TARGET = EVIL_PROCESS + '[66]'
FIX_BEFORE = {'sockets': [sock(23, proc('telnetd', 40, start_time=900)), sock(22, proc('dropbear', 12, start_time=800)),
                          sock(856, proc(EVIL_PROCESS, 66, 'www-data', 33, start_time=1000))], 'coverage': COMPLETE}
FIX_AFTER = {'sockets': [sock(23, proc('telnetd', 40, start_time=900)), sock(22, proc('dropbear', 12, start_time=800))],
             'coverage': COMPLETE}  # telnet still listens behind the block; the killed process is gone
REMEDIATED = {'fix-01': (FIX_BEFORE, FIX_AFTER), 'partial-01': (GATHERS['partial-01'], None)}


def remediate(host, before_gather, after_gather, compiled):
    """What port_remediate does on a host, its modules' answers simulated: plan, apply, gather again, verify."""
    before = ev.evaluate_host(before_gather, compiled, host, today=TODAY)
    plan = rp.plan_remediation(before, STRATEGIES, 'none', rp.Protection.for_host(before_gather, [22]))
    actions = rp.refused_actions(before)
    outcomes = {'blocks': {}, 'services': {}, 'processes': {}}
    for block in plan['blocks']:
        outcomes['blocks'][rp.block_key(block)] = (rp.APPLIED, 'nftables block added to table inet portwarden')
        actions.append({'strategy': 'firewall', 'target': rp.describe_block(block), 'rules': [block['rule']],
                        'outcome': 'applied', 'detail': 'nftables block added to table inet portwarden'})
    for target in plan['processes']:
        outcomes['processes'][target['pid']] = (rp.APPLIED, 'ended by SIGTERM')
        actions.append({'strategy': 'kill', 'target': '%s[%d]' % (target['name'], target['pid']), 'rules': [target['rule']],
                        'outcome': 'terminated', 'detail': 'ended by SIGTERM'})
    rp.apply_outcomes(before, outcomes)
    if plan['skipped']:
        before['remediation'] = {'actions': actions, 'skipped': plan['skipped'], 'verified': False}
        return before
    after = ev.evaluate_host(after_gather, compiled, host, today=TODAY)
    return rp.verify_remediation(before, after, plan['blocks'], actions)


@pytest.fixture(scope='module')
def report():
    compiled = ev.compile_policy(POLICY)
    hosts = [host_entry(host, ev.evaluate_host(gathered, compiled, host, today=TODAY))
             for host, gathered in GATHERS.items() if host not in REMEDIATED]
    hosts += [host_entry(host, remediate(host, before, after, compiled)) for host, (before, after) in REMEDIATED.items()]
    hosts.append(host_entry('lost-01', None, 'unreachable: ssh: connect to host lost-01 port 22: Connection timed out'))
    rules = [{'id': rule['id'], 'severity': rule['severity'], 'description': rule['description']} for rule in POLICY['rules']]
    policy_info = dict(compiled.info(), rules=rules)
    previous = build_report([host_entry('db-01', ev.evaluate_host({'sockets': [sock(857, proc('telnetd', 9))],
                                                                   'coverage': COMPLETE}, compiled, 'db-01', today=TODAY))],
                            policy_info, registry.registry_info(), generated_at=GENERATED - datetime.timedelta(days=1))
    return build_report(hosts, policy_info, registry.registry_info(), generated_at=GENERATED, previous=previous,
                        tool_version='0.1.0')


@pytest.fixture(scope='module')
def written(report, tmp_path_factory):
    """The report in every format, written where the report action writes it."""
    directory = tmp_path_factory.mktemp('report')
    paths = {}
    for name, render in RENDERERS.items():
        paths[name] = directory / FILE_NAMES[name]
        paths[name].write_text(render(report), encoding='utf-8')
    return paths


def host(report, name):
    return next(entry for entry in report['hosts'] if entry['host'] == name)


def test_the_fleet_is_what_the_tests_expect(report):
    assert dict((entry['host'], entry['status']) for entry in report['hosts']) == {
        'db-01': 'drift', 'evil-01': 'drift', 'fix-01': 'drift', 'lost-01': 'unknown', 'partial-01': 'unknown',
        ODD_HOST: 'drift', 'web-01': 'compliant', 'web-02': 'compliant'}
    evil = host(report, 'evil-01')
    assert EVIL_PROCESS in evil['findings'][0]['message'] and PIPE_PROCESS in evil['findings'][0]['message']
    fix = host(report, 'fix-01')
    assert [(f['rule'], f['status'], f['remediation']['status']) for f in fix['findings']] == [
        ('no-telnet', 'remediated', 'verified'), ('iana-unassigned-closed', 'remediated', 'verified'),
        ('ssh-only-sshd', 'drift', 'protected')]  # the port of the live connection is never touched
    assert [(a['strategy'], a['target'], a['outcome']) for a in fix['remediation']['actions']] == [
        ('kill', 'dropbear[12]', 'protected'),  # refused at planning: the auditor sees it too
        ('firewall', 'tcp 0.0.0.0 port 23', 'applied'), ('kill', FIX_TARGET, 'terminated')]
    assert fix['remediation']['verified'] is True
    assert host(report, 'partial-01')['remediation']['skipped'].startswith('no remediation on a host whose verdict is unknown')
    assert host(report, 'web-01')['remediation'] is None  # report mode
    assert (report['summary']['remediated_findings'], report['summary']['remediation_actions']) == (2, 3)


# ---------------------------------------------------------------------------------------------- JSON

def test_json_validates_against_the_published_schema(written, report):
    with open(os.path.join(REPO, 'docs', 'report.schema.json'), encoding='utf-8') as handle:
        assert handle.read() == report_schema.schema_text()
    Draft202012Validator.check_schema(report_schema.REPORT_SCHEMA)
    validator = Draft202012Validator(report_schema.REPORT_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    document = json.loads(written['json'].read_text(encoding='utf-8'))
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
    assert not errors, '\n'.join('%s: %s' % (list(error.absolute_path), error.message) for error in errors)
    assert document == json.loads(json.dumps(report))
    # jsonschema checks 'date-time' only with rfc3339-validator installed: the report's own format, checked here
    datetime.datetime.strptime(document['generated_at'], '%Y-%m-%dT%H:%M:%SZ')


@pytest.mark.parametrize('path, value', [
    (('registry', 'date'), '17 Aug 2026'),  # format: date, so the format checker is really on
    (('policy', 'sha256'), 'not-a-digest'),
    (('hosts', 0, 'status'), 'fine'),
    (('hosts', 0, 'findings', 0, 'port'), 70000),
    (('summary', 'findings_by_severity', 'severe'), 1),
    (('schema_version',), 3),  # versions 1 and 2 are read
    (('hosts', 2, 'findings', 0, 'status'), 'fixed'),  # hosts[2] is fix-01
    (('hosts', 2, 'findings', 0, 'remediation', 'status'), 'done'),
    (('hosts', 2, 'remediation', 'actions', 0, 'strategy'), 'reboot'),
    (('hosts', 2, 'remediation', 'verified'), 'yes'),
])
def test_the_schema_rejects_a_broken_report(written, path, value):
    document = json.loads(written['json'].read_text(encoding='utf-8'))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    validator = Draft202012Validator(report_schema.REPORT_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert list(validator.iter_errors(document))


# --------------------------------------------------------------------------------------------- JUnit

def test_junitparser_reads_a_suite_per_host(written, report):
    xml = JUnitXml.fromfile(str(written['junit']))
    suites = dict((suite.name, suite) for suite in xml)
    assert sorted(suites) == sorted(entry['host'] for entry in report['hosts'])
    for name, suite in suites.items():
        cases = dict((case.name, case) for case in suite)
        no_verdict = name in ('lost-01', 'partial-01')
        assert list(cases) == RULE_IDS + (['verdict'] if no_verdict else []), name
        assert all(case.classname == name for case in suite)
        stated = (suite.tests, suite.failures, suite.errors, suite.skipped)
        suite.update_statistics()  # junitparser's own count of the cases
        assert (suite.tests, suite.failures, suite.errors, suite.skipped) == stated, name
    assert (xml.tests, xml.failures, xml.errors) == (sum(s.tests for s in xml), 5, 2)  # fix-01 fails on its protected drift


@pytest.mark.parametrize('host, case, result, type_, text', [
    ('db-01', 'no-telnet', Failure, 'drift', 'inetd[30] as root'),
    ('db-01', 'postgres-loopback-only', Failure, 'drift', 'postgres[20] as postgres'),
    ('evil-01', 'iana-unassigned-closed', Failure, 'drift', EVIL_PROCESS + '[66]'),
    ('evil-01', 'iana-unassigned-closed', Failure, 'drift', PIPE_PROCESS + '[67]'),
    (ODD_HOST, 'no-telnet', Failure, 'drift', 'telnetd[40]'),
    ('lost-01', 'verdict', Error, 'unknown', 'Connection timed out'),
    ('lost-01', 'no-telnet', Skipped, None, None),
    ('partial-01', 'verdict', Error, 'unknown', 'partial gather: /proc/net/tcp6 unreadable'),
    ('web-01', 'no-telnet', None, None, None),
    ('web-02', 'postgres-loopback-only', None, None, None),  # waived
    ('fix-01', 'no-telnet', None, None, None),  # remediated: blocked by the firewall
    ('fix-01', 'iana-unassigned-closed', None, None, None),  # remediated: the process was killed
    ('fix-01', 'ssh-only-sshd', Failure, 'drift',
     'remediation protected (kill: dropbear[12]): tcp port 22 carries the live Ansible connection'),
])
def test_junitparser_results(written, host, case, result, type_, text):
    xml = JUnitXml.fromfile(str(written['junit']))
    [suite] = [suite for suite in xml if suite.name == host]
    [found] = [item for item in suite if item.name == case]
    if result is None:
        assert found.is_passed and not found.result
        return
    [outcome] = found.result
    assert isinstance(outcome, result)
    assert outcome.type == type_
    if text is not None:
        assert text in outcome.text
        assert outcome.message


def test_junitparser_waived_findings_in_system_out(written):
    xml = JUnitXml.fromfile(str(written['junit']))
    [suite] = [suite for suite in xml if suite.name == 'web-02']
    [case] = [item for item in suite if item.name == 'postgres-loopback-only']
    assert 'waived until 2027-06-01: replica <sync> until migration (OPS-7), approved by dba' in case.system_out


def test_junitparser_remediation_in_system_out(written):
    xml = JUnitXml.fromfile(str(written['junit']))
    suites = dict((suite.name, suite) for suite in xml)
    cases = dict((case.name, case) for case in suites['fix-01'])
    assert cases['no-telnet'].is_passed and cases['no-telnet'].system_out == (
        'remediated: tcp 0.0.0.0:23 (IANA: telnet) must be closed but is listening (telnetd[40] as root); rule no-telnet: '
        'telnet stays closed; remediated: blocked by the portwarden firewall (firewall: tcp 0.0.0.0 port 23)')
    assert cases['iana-unassigned-closed'].system_out == 'remediated: tcp 0.0.0.0:856 no longer listens; remediated (kill: %s)' % FIX_TARGET
    assert suites['fix-01'].child(SystemOut).text.splitlines() == [
        'remediation: 3 actions, verified by a gather after the changes',
        'protected: kill dropbear[12] (rule ssh-only-sshd): tcp port 22 carries the live Ansible connection',
        'applied: firewall tcp 0.0.0.0 port 23 (rule no-telnet): nftables block added to table inet portwarden',
        'terminated: kill %s (rule iana-unassigned-closed): ended by SIGTERM' % FIX_TARGET]
    assert suites['partial-01'].child(SystemOut).text == (
        'remediation skipped: no remediation on a host whose verdict is unknown: partial gather: /proc/net/tcp6 unreadable')
    assert suites['web-01'].child(SystemOut) is None


# ---------------------------------------------------------------------------------------- Prometheus

def test_prometheus_client_parses_the_textfile(written, report):
    families = dict((family.name, family) for family in
                    text_string_to_metric_families(written['prometheus'].read_text(encoding='utf-8')))
    assert sorted(families) == sorted(['portwarden_host_compliant', 'portwarden_host_status', 'portwarden_host_findings',
                                       'portwarden_host_waived_findings', 'portwarden_host_remediated_findings',
                                       'portwarden_host_remediation_actions', 'portwarden_last_audit_timestamp_seconds',
                                       'portwarden_fleet_hosts'])
    for family in families.values():
        assert family.type == 'gauge' and family.documentation
    series = {}
    for family in families.values():
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in series, key  # the textfile collector rejects duplicate series
            series[key] = sample.value
    hosts = [entry['host'] for entry in report['hosts']]
    assert sorted(labels[0][1] for (name, labels) in series if name == 'portwarden_host_compliant') == sorted(hosts)

    def value(name, **labels):
        return series[(name, tuple(sorted(labels.items())))]

    assert value('portwarden_host_compliant', host=ODD_HOST) == 0  # the quote and backslash came back intact
    assert value('portwarden_host_findings', host=ODD_HOST, severity='critical') == 1
    assert value('portwarden_host_compliant', host='web-02') == 1
    assert value('portwarden_host_waived_findings', host='web-02') == 1
    assert value('portwarden_host_findings', host='db-01', severity='high') == 1
    assert value('portwarden_host_findings', host='evil-01', severity='high') == 1
    assert value('portwarden_host_status', host='lost-01', status='unknown') == 1
    assert value('portwarden_host_status', host='lost-01', status='compliant') == 0
    for host in hosts:
        assert sum(value('portwarden_host_status', host=host, status=s) for s in ('compliant', 'drift', 'unknown')) == 1
        assert value('portwarden_last_audit_timestamp_seconds', host=host) == GENERATED.timestamp()
    assert [value('portwarden_fleet_hosts', status=s) for s in ('compliant', 'drift', 'unknown')] == [2, 4, 2]
    # remediation: a gauge per host, and the actions by outcome where there were some
    assert dict((host, value('portwarden_host_remediated_findings', host=host)) for host in hosts) == dict(
        (host, 2 if host == 'fix-01' else 0) for host in hosts)
    assert dict((labels, sample) for (name, labels), sample in series.items() if name == 'portwarden_host_remediation_actions') == {
        (('host', 'fix-01'), ('outcome', 'applied')): 1, (('host', 'fix-01'), ('outcome', 'terminated')): 1,
        (('host', 'fix-01'), ('outcome', 'protected')): 1}
    assert value('portwarden_host_findings', host='fix-01', severity='critical') == 0  # remediated, not drift
    assert value('portwarden_host_findings', host='fix-01', severity='medium') == 1  # the protected drift


# ---------------------------------------------------------------------------------------------- HTML

def chromium(tmp_path, *args):
    # A missing browser fails the test: CI gets it from scripts/setup.sh test, so absent means broken set-up.
    assert os.access(CHROMIUM, os.X_OK), '%s is missing: apt-get install chromium (scripts/setup.sh test does)' % CHROMIUM
    profile = tmp_path / 'chromium-profile'
    argv = [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
            '--disable-component-update', '--disable-sync', '--no-first-run', '--user-data-dir=%s' % profile] + list(args)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=180)
    finally:
        shutil.rmtree(str(profile), ignore_errors=True)
    assert proc.returncode == 0, '%s failed (%d): %s' % (argv, proc.returncode, proc.stderr[-3000:])
    return proc.stdout


def test_chromium_dom_shows_data_as_text(written, tmp_path):
    dom = chromium(tmp_path, '--dump-dom', written['html'].as_uri())
    assert '<details class="host"' in dom and '<table class="heat">' in dom
    for host in DRIFTING:
        # in text nodes the DOM serializer escapes only & < > (and nbsp)
        assert '>%s</a>' % host in dom, host
    assert '&lt;img src=x onerror=alert(1)&gt;' in dom
    assert 'x|y&lt;/td&gt;' in dom
    assert '<img' not in dom.lower() and '<script' not in dom.lower() and 'onerror=alert(1)>' not in dom
    heat = dom.split('<table class="heat">', 1)[1].split('</table>', 1)[0]
    assert heat.count('<tr class="unknown">') == 2  # lost-01 and partial-01, visibly marked
    # remediation: the action's target, a process named like a tag, is text in the actions table
    fix = dom.split('<span class="h">fix-01</span>', 1)[1].split('</details>', 1)[0]
    assert '<table class="actions">' in fix
    assert '<td class="target">&lt;img src=x onerror=alert(1)&gt;[66]</td>' in fix
    assert '<span class="badge r-ok">terminated</span>' in fix and '<span class="badge remediated">remediated</span>' in fix
    assert '<span class="badge r-held">protected</span> kill: dropbear[12]' in fix
    partial = dom.split('<span class="h">partial-01</span>', 1)[1].split('</details>', 1)[0]
    assert 'Skipped: no remediation on a host whose verdict is unknown' in partial
    assert '<div class="n">2</div><div class="l">Remediated findings</div>' in dom


def png_size(data):
    assert data[:8] == b'\x89PNG\r\n\x1a\n'
    length, kind = struct.unpack('>I4s', data[8:16])
    assert kind == b'IHDR' and length == 13
    return struct.unpack('>II', data[16:24])


def png_pixels(data):
    """The decompressed scanlines (filter bytes included): enough to see that something was drawn."""
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack('>I4s', data[offset:offset + 8])
        if kind == b'IDAT':
            chunks.append(data[offset + 8:offset + 8 + length])
        offset += 12 + length
    return zlib.decompress(b''.join(chunks))


def test_chromium_screenshot(written, tmp_path):
    shot = tmp_path / 'report.png'
    chromium(tmp_path, '--screenshot=%s' % shot, '--window-size=1280,1600', written['html'].as_uri())
    data = shot.read_bytes()
    assert png_size(data) == (1280, 1600)
    assert len(data) > 20000, len(data)
    pixels = png_pixels(data)
    assert len(set(pixels[::101])) > 50  # many colours: a rendered page, not a blank one


# ------------------------------------------------------------------------------------------ Markdown

def markdown_tables(text):
    """GitHub-flavoured tables: a header row, a delimiter row, body rows; cells split on unescaped pipes."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith('|') and line.endswith('|'):
            cells = [cell.strip() for cell in re.split(r'(?<!\\)\|', line)[1:-1]]
            if current is None:
                current = []
                tables.append(current)
            current.append(cells)
        else:
            current = None
    return tables


def test_markdown_structure(written):
    text = written['markdown'].read_text(encoding='utf-8')
    assert text.startswith('## \u274c Port compliance: not compliant (drift on 4 and no verdict on 2 of 8 hosts)\n')
    tables = markdown_tables(text)
    assert len(tables) == 5  # totals, findings, hosts, remediation actions, hosts remediation skipped
    for table in tables:
        assert len(table) >= 3
        width = len(table[0])
        assert all(len(row) == width for row in table), table
        assert all(re.fullmatch(r':?-{3,}:?', cell) for cell in table[1])
    hosts = [row[0] for row in tables[2][2:]]
    assert hosts == ['db-01', 'quote"back\\\\slash', 'evil-01', 'fix-01', 'lost-01', 'partial-01']
    assert '<img' not in text and '</td>' not in text
    assert re.sub(r'</?sub>', '', text).count('<') == 0
    assert '&lt;img src=x onerror=alert(1)&gt;\\[66\\]' in text and 'x\\|y&lt;/td&gt;\\[67\\]' in text
    assert '**5 new** drift findings on 4 hosts, **1 resolved** on 1 host' in text
    assert tables[1][0][-1] == 'Remediated' and tables[1][2][-1] == '2'
    assert '### Remediation\n\n**3 actions** on 1 host (applied 1, protected 1, terminated 1) \u00b7 2 findings remediated\n' in text
    assert tables[3][2:] == [
        ['fix-01', 'kill', 'dropbear\\[12\\]', 'ssh-only-sshd', 'protected', 'tcp port 22 carries the live Ansible connection'],
        ['fix-01', 'firewall', 'tcp 0.0.0.0 port 23', 'no-telnet', 'applied', 'nftables block added to table inet portwarden'],
        ['fix-01', 'kill', '&lt;img src=x onerror=alert(1)&gt;\\[66\\]', 'iana-unassigned-closed', 'terminated', 'ended by SIGTERM']]
    assert tables[4][2:] == [['partial-01', 'no remediation on a host whose verdict is unknown: partial gather: /proc/net/tcp6 unreadable']]
