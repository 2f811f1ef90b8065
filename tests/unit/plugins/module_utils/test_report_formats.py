"""The fleet report renderers, format by format, from one report built as the report action builds it.

The fleet: compliant hosts (one with a waived finding), drift of several severities, default-deny
drift, a host that was never reached, one seen by a partial gather, one whose rule needs process
facts, a host whose process is named like an HTML tag and whose message holds table and tag
syntax, and a host name with a quote and a backslash. Whatever the data holds, it is text in
every format, never markup.
"""

import datetime
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import report_formats as rf
from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import build_report, host_entry

GENERATED = datetime.datetime(2027, 1, 20, 12, 30, 5, tzinfo=datetime.timezone.utc)
EPOCH = 1800448205  # 2027-01-20T12:30:05Z
EVIL_PROCESS = '<img src=x onerror=alert(1)>'
EVIL_MESSAGE = 'tcp 0.0.0.0:8443 | listening </td><script>alert(2)</script> *bold* _em_ `code` [link](http://x) ~s~'
ODD_HOST = 'odd"host\\name'
POLICY_SHA = '3f' * 32
REGISTRY = {'date': '2026-08-17', 'sha256': '4b' * 32, 'records': 14533}
RULES = [
    {'id': 'no-telnet', 'severity': 'critical', 'description': 'telnet stays closed'},
    {'id': 'postgres-loopback-only', 'severity': 'high', 'description': 'PostgreSQL on loopback only'},
    {'id': 'ssh-only-sshd', 'severity': 'medium', 'description': 'port 22 is sshd'},
    {'id': 'iana-unassigned-closed', 'severity': 'low', 'description': 'unassigned ports stay closed'},
]
POLICY = {'name': 'baseline', 'sha256': POLICY_SHA, 'rules': RULES}


def proc(name, pid=100, user='root', uid=0, unit=None, exe=None):
    return {'pid': pid, 'name': name, 'user': user, 'uid': uid, 'exe': exe or '/usr/sbin/' + name, 'unit': unit,
            'cmdline': 'never --in --a-report'}


def finding(rule, severity, port, status='drift', processes=None, message=None, address='0.0.0.0', protocol='tcp',
            waiver=None, waiver_expired=None):
    processes = [proc('agent')] if processes is None else processes
    data = {'rule': rule, 'severity': severity, 'status': status, 'protocol': protocol,
            'family': 'ipv6' if ':' in address else 'ipv4', 'address': address, 'port': port, 'service': None,
            'processes': processes, 'waived': status == 'waived', 'waiver': waiver,
            'message': message or '%s %s:%d is listening (%s); rule %s' % (protocol, address, port, processes and
                                                                           processes[0]['name'], rule)}
    if waiver_expired:
        data['waiver_expired'] = waiver_expired
    return data


def audit(status, findings=(), reasons=(), warnings=()):
    """A port_audit result as the module returns it (host_entry keeps the documented fields only)."""
    return {'status': status, 'findings': list(findings), 'reasons': list(reasons), 'warnings': list(warnings),
            'coverage': {'complete': not reasons, 'errors': []}, 'evaluated_on': '2027-01-20',
            'summary': {}, 'policy': {'name': 'baseline', 'sha256': POLICY_SHA}, 'registry': REGISTRY}


WAIVER = {'rule': 'postgres-loopback-only', 'reason': 'replica <sync>', 'ticket': 'OPS-7', 'approved_by': 'dba',
          'expires': '2027-02-01'}


def fleet_hosts():
    return [
        host_entry('web-01', audit('compliant')),
        host_entry('web-02', audit('compliant', [finding('postgres-loopback-only', 'high', 5432, 'waived', waiver=WAIVER)],
                                   warnings=['waiver (OPS-7) for postgres-loopback-only on web-02 expires 2027-02-01'])),
        host_entry('db-01', audit('drift', [
            finding('no-telnet', 'critical', 23, processes=[proc('inetd', 31)]),
            finding('postgres-loopback-only', 'high', 5432, address='::', processes=[proc('postgres', 40, 'postgres', 26)]),
            finding('postgres-loopback-only', 'high', 5433,
                    waiver_expired=dict(WAIVER, expires='2027-01-01')),
        ])),
        host_entry('evil-01', audit('drift', [
            finding('iana-unassigned-closed', 'low', 8443, processes=[proc(EVIL_PROCESS, 66, 'www-data', 33)],
                    message=EVIL_MESSAGE)])),
        host_entry('deny-01', audit('drift', [finding('default', 'medium', 9100, processes=[proc('node_exporter', 77)])])),
        host_entry('lost-01', None, 'unreachable: ssh: connect to host lost-01 port 22: Connection timed out'),
        host_entry('partial-01', audit('drift', [finding('ssh-only-sshd', 'medium', 22, processes=[proc('dropbear', 12)])],
                                       reasons=['partial gather: /proc/net/udp6 unreadable'])),
        host_entry('proc-01', audit('unknown', [finding('ssh-only-sshd', 'medium', 22, 'unknown', processes=[],
                                                        message='tcp 0.0.0.0:22: no process facts')],
                                    reasons=['some rules need process facts the gather could not give (run with become)'])),
        host_entry(ODD_HOST, audit('drift', [finding('no-telnet', 'critical', 23)])),
    ]


def fleet_report(previous=None, policy=None, hosts=None):
    return build_report(fleet_hosts() if hosts is None else hosts, POLICY if policy is None else policy, REGISTRY,
                        generated_at=GENERATED, previous=previous, tool_version='0.1.0')


@pytest.fixture(scope='module')
def report():
    previous = build_report([host_entry('db-01', audit('drift', [finding('ssh-only-sshd', 'medium', 2222)])),
                             host_entry('web-01', audit('compliant'))],
                            POLICY, REGISTRY, generated_at=GENERATED - datetime.timedelta(days=1))
    return fleet_report(previous=previous)


def test_the_registry_of_renderers():
    assert sorted(rf.RENDERERS) == sorted(rf.FILE_NAMES) == ['html', 'json', 'junit', 'markdown', 'prometheus']
    assert rf.FILE_NAMES['prometheus'].endswith('.prom')


@pytest.mark.parametrize('name', sorted(rf.RENDERERS))
def test_every_format_renders_text_ending_in_a_newline(name, report):
    text = rf.RENDERERS[name](report)
    assert isinstance(text, str) and text.endswith('\n')


@pytest.mark.parametrize('name', sorted(rf.RENDERERS))
@pytest.mark.parametrize('policy', [POLICY, {'name': 'baseline', 'sha256': POLICY_SHA}, {'name': None, 'sha256': None}],
                         ids=['with-rules', 'as-the-action-passes-it', 'no-policy-info'])
def test_every_format_renders_an_empty_fleet_and_a_policy_without_rules(name, policy):
    assert rf.RENDERERS[name](fleet_report(policy=policy, hosts=[])).endswith('\n')
    assert rf.RENDERERS[name](fleet_report(policy=policy)).endswith('\n')


# ---------------------------------------------------------------------------------------------- JSON

@pytest.mark.parametrize('value', [
    {'a': [1, 2.5, None, True, False, 'x'], 'b': {}, 'c': [], 'd': {'e': {'f': []}}},
    {7: 'int key', 2.5: 'float key', True: 'bool key', False: 'false key', None: 'null key'},
    ('tuple', ['nested', ('tuple',)]),
    {'text': 'caf\u00e9 \u2028 "quoted" back\\slash \x00 \n\t', 'big': 10 ** 30, 'neg': -0.0},
    {'nan': float('nan'), 'inf': float('inf'), '-inf': float('-inf')},
    [], {}, 'scalar', 7, None,
], ids=['containers', 'non-string-keys', 'tuples', 'strings-and-numbers', 'non-finite', 'empty-list', 'empty-dict',
        'str', 'int', 'null'])
def test_json_is_exactly_what_json_dumps_writes(value):
    assert rf.render_json(value) == json.dumps(value, indent=2) + '\n'


def test_json_of_a_report_is_the_report(report):
    text = rf.render_json(report)
    assert text == json.dumps(report, indent=2) + '\n'
    assert json.loads(text) == report


def test_json_refuses_what_json_refuses():
    with pytest.raises(TypeError):
        rf.render_json({'when': datetime.date(2027, 1, 1)})
    with pytest.raises(TypeError):
        rf.render_json({('tuple', 'key'): 1})


# --------------------------------------------------------------------------------------------- JUnit

def junit_cases(report):
    root = ET.fromstring(rf.render_junit(report))
    cases = {}
    for suite in root.findall('testsuite'):
        for case in suite.findall('testcase'):
            assert case.get('classname') == suite.get('name')
            cases[(suite.get('name'), case.get('name'))] = case
    return root, cases


def outcome(case):
    children = [child.tag for child in case if child.tag != 'system-out']
    assert len(children) <= 1, children
    return children[0] if children else 'pass'


@pytest.mark.parametrize('host, case, expected', [
    ('web-01', 'no-telnet', 'pass'),
    ('web-01', 'default', 'pass'),
    ('web-02', 'postgres-loopback-only', 'pass'),  # waived
    ('db-01', 'no-telnet', 'failure'),
    ('db-01', 'postgres-loopback-only', 'failure'),
    ('db-01', 'ssh-only-sshd', 'pass'),
    ('evil-01', 'iana-unassigned-closed', 'failure'),
    ('deny-01', 'default', 'failure'),
    ('lost-01', 'no-telnet', 'skipped'),
    ('lost-01', 'verdict', 'error'),
    ('partial-01', 'ssh-only-sshd', 'failure'),
    ('partial-01', 'verdict', 'error'),  # drift seen by a partial gather: the gate cannot vouch either
    ('proc-01', 'ssh-only-sshd', 'error'),
    ('proc-01', 'no-telnet', 'pass'),
    ('proc-01', 'verdict', 'error'),
    (ODD_HOST, 'no-telnet', 'failure'),
])
def test_junit_outcome_per_host_and_rule(report, host, case, expected):
    _root, cases = junit_cases(report)
    assert outcome(cases[(host, case)]) == expected


def test_junit_has_a_suite_per_host_and_a_case_per_rule(report):
    root, cases = junit_cases(report)
    assert [suite.get('name') for suite in root.findall('testsuite')] == [entry['host'] for entry in report['hosts']]
    rule_ids = [rule['id'] for rule in RULES] + ['default']  # default-deny findings exist: a case on every host
    for suite in root.findall('testsuite'):
        names = [case.get('name') for case in suite.findall('testcase')]
        entry = next(e for e in report['hosts'] if e['host'] == suite.get('name'))
        assert names == rule_ids + (['verdict'] if entry['status'] == 'unknown' or entry['reasons'] else [])
    assert ('web-01', 'verdict') not in cases and ('db-01', 'verdict') not in cases


def test_junit_counts_match_the_cases(report):
    root, _cases = junit_cases(report)
    totals = dict.fromkeys(('tests', 'failures', 'errors', 'skipped'), 0)
    for suite in root.findall('testsuite'):
        cases = suite.findall('testcase')
        counted = {'tests': len(cases), 'failures': sum(outcome(c) == 'failure' for c in cases),
                   'errors': sum(outcome(c) == 'error' for c in cases), 'skipped': sum(outcome(c) == 'skipped' for c in cases)}
        assert dict((key, int(suite.get(key))) for key in counted) == counted, suite.get('name')
        for key in totals:
            totals[key] += counted[key]
    assert dict((key, int(root.get(key))) for key in totals) == totals
    assert totals['failures'] == 6 and totals['errors'] == 4


def test_junit_failure_carries_the_messages_as_text(report):
    _root, cases = junit_cases(report)
    failure = cases[('db-01', 'postgres-loopback-only')].find('failure')
    assert failure.get('type') == 'drift'
    assert failure.get('message').startswith('2 drift findings (high): tcp [::]:5432; tcp 0.0.0.0:5433')
    assert 'waiver (OPS-7) expired' not in failure.text  # the message as the report has it, no more
    assert failure.text.splitlines() == ['[high] tcp :::5432 is listening (postgres); rule postgres-loopback-only',
                                         '[high] tcp 0.0.0.0:5433 is listening (agent); rule postgres-loopback-only']
    evil = cases[('evil-01', 'iana-unassigned-closed')].find('failure')
    assert evil.text == '[low] ' + EVIL_MESSAGE  # parsed back: escaped in the file, the same text
    error = cases[('lost-01', 'verdict')].find('error')
    assert error.get('type') == 'unknown'
    assert error.text == 'unreachable: ssh: connect to host lost-01 port 22: Connection timed out'
    out = cases[('web-02', 'postgres-loopback-only')].find('system-out')
    assert 'waived until 2027-02-01: replica <sync> (OPS-7), approved by dba' in out.text


def test_junit_without_policy_rules_names_the_rules_of_the_findings():
    _root, cases = junit_cases(fleet_report(policy={'name': 'baseline', 'sha256': POLICY_SHA}))
    assert sorted(name for host, name in cases if host == 'web-01') == [
        'default', 'iana-unassigned-closed', 'no-telnet', 'postgres-loopback-only', 'ssh-only-sshd']


def test_junit_stays_valid_xml_whatever_a_process_is_named():
    hosts = [host_entry('ctl-\x01host', audit('drift', [finding('no-telnet', 'critical', 23, processes=[proc('a\x07b\x1b[0m')],
                                                                message='bell \x07 escape \x1b[31m surrogate \udcff')]))]
    root, cases = junit_cases(fleet_report(hosts=hosts))
    # shown as escapes, still readable: a byte that was not UTF-8 (a surrogate) as the byte
    assert ('ctl-\\x01host', 'no-telnet') in cases
    assert cases[('ctl-\\x01host', 'no-telnet')].find('failure').text == '[critical] bell \\x07 escape \\x1b[31m surrogate \\xff'
    assert root.get('failures') == '1'


# ------------------------------------------------------------------------------------------ Markdown

@pytest.mark.parametrize('value, expected', [
    ('plain-host.example.com', 'plain-host.example.com'),
    ('a|b', 'a\\|b'),
    ('<img src=x onerror=alert(1)>', '&lt;img src=x onerror=alert(1)&gt;'),
    ('</td>', '&lt;/td&gt;'),
    ('*bold* _em_ `code`', '\\*bold\\* \\_em\\_ \\`code\\`'),
    ('[link](http://x)', '\\[link\\](http<!-- -->://x)'),  # no bare URL either
    ('back\\slash*', 'back\\\\slash\\*'),  # the backslash itself, or it would escape the escape
    ('&lt;entity', '&amp;lt;entity'),
    ('two\nlines\r\tcell', 'two\\\\nlines\\\\r\\\\tcell'),  # shown as \\n, \\r, \\t: no cell break, nothing hidden
    ('~strike~', '\\~strike\\~'),
    (42, '42'),
])
def test_markdown_escape(value, expected):
    assert rf.markdown_escape(value) == expected


def table_rows(text):
    """Each Markdown table of ``text`` as its rows of cells (split on pipes that are not escaped)."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith('|'):
            cells = [cell.strip() for cell in re.split(r'(?<!\\)\|', line)[1:-1]]
            if current is None:
                current = []
                tables.append(current)
            current.append(cells)
        else:
            current = None
    return tables


def test_markdown_summary(report):
    text = rf.render_markdown(report)
    lines = text.splitlines()
    assert lines[0] == '## \u274c Port compliance: not compliant (drift on 5 and no verdict on 2 of 9 hosts)'
    assert 'Policy **baseline** (sha256 %s)' % POLICY_SHA[:12] in text
    assert 'IANA registry 2026-08-17' in text and 'generated 2027-01-20T12:30:05Z' in text
    tables = table_rows(text)
    assert tables[0] == [['Hosts', 'Compliant', 'Drift', 'Unknown'], ['---:'] * 4, ['9', '2', '5', '2']]
    assert tables[1][0] == ['Drift findings', 'Critical', 'High', 'Medium', 'Low', 'Info', 'Waived', 'Unjudged']
    assert tables[1][2] == ['7', '2', '2', '2', '1', '0', '1', '1']
    for table in tables:
        assert len(set(len(row) for row in table)) == 1, table
    assert '<img' not in text and '</td>' not in text and '<script' not in text


def test_markdown_lists_the_hosts_needing_attention_worst_first(report):
    hosts = table_rows(rf.render_markdown(report))[2]
    assert hosts[0] == ['Host', 'Status', 'Worst', 'Critical', 'High', 'Medium', 'Low', 'Info', 'Waived', 'New', 'Resolved',
                        'Detail']
    assert [row[0] for row in hosts[2:]] == ['db-01', 'odd"host\\\\name', 'partial-01', 'deny-01', 'evil-01', 'lost-01',
                                             'proc-01']
    evil = hosts[2:][4]
    assert evil[1:3] == ['drift', 'low']
    assert evil[-1] == rf.markdown_escape(EVIL_MESSAGE)
    assert hosts[2:][2][1] == 'drift, no full verdict'
    assert hosts[2:][5][-1] == 'unreachable: ssh: connect to host lost-01 port 22: Connection timed out'
    db = hosts[2:][0]
    assert db[3:11] == ['1', '2', '\u00b7', '\u00b7', '\u00b7', '\u00b7', '3', '1']  # all 3 new since yesterday, ssh 2222 resolved


def test_markdown_changes_line(report):
    text = rf.render_markdown(report)
    assert ('Since the previous report (2027-01-19T12:30:05Z): **7 new** drift findings on 5 hosts, **1 resolved** on 1 host, '
            '6 hosts seen for the first time.') in text
    assert 'Since the previous report' not in rf.render_markdown(fleet_report())
    assert 'New' not in table_rows(rf.render_markdown(fleet_report()))[2][0]


@pytest.mark.parametrize('hosts, rows, more', [(3, 3, None), (50, 50, None), (51, 50, '1 more host'), (130, 50, '80 more hosts')])
def test_markdown_host_table_is_limited(hosts, rows, more):
    fleet = [host_entry('h%03d' % i, audit('drift', [finding('no-telnet', 'critical', 23)])) for i in range(hosts)]
    text = rf.render_markdown(fleet_report(hosts=fleet))
    assert len(table_rows(text)[2]) == rows + 2
    if more:
        assert '\u2026 and %s with drift or no verdict' % more in text
    else:
        assert 'more host' not in text


def test_markdown_of_a_compliant_fleet():
    text = rf.render_markdown(fleet_report(hosts=[host_entry('web-01', audit('compliant'))]))
    assert text.startswith('## \u2705 Port compliance: compliant (all 1 host)\n')
    assert len(table_rows(text)) == 2  # no host table


# ---------------------------------------------------------------------------------------------- HTML

class Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse_html(text):
    parser = Tags()
    parser.feed(text)
    parser.close()
    return parser


ALLOWED_TAGS = {'html', 'head', 'meta', 'title', 'style', 'body', 'header', 'h1', 'h2', 'span', 'dl', 'div', 'dt', 'dd',
                'main', 'section', 'p', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'a', 'details', 'summary', 'ul',
                'li', 'strong', 'br', 'footer'}


def test_html_is_self_contained_and_data_is_never_markup(report):
    text = rf.render_html(report)
    parsed = parse_html(text)
    assert set(tag for tag, _attrs in parsed.tags) <= ALLOWED_TAGS
    for tag, attrs in parsed.tags:
        assert not [name for name in attrs if name.startswith('on')], (tag, attrs)
        assert tag != 'a' or attrs['href'].startswith('#host-')
    assert 'url(' not in text and '@import' not in text and 'http' not in text.replace('http://x', '')
    visible = ''.join(parsed.text)
    assert EVIL_PROCESS in visible and '</td><script>alert(2)</script>' in visible  # shown, as text
    assert '&lt;img src=x onerror=alert(1)&gt;' in text and '&lt;/td&gt;&lt;script&gt;' in text
    assert 'odd&quot;host\\name' in text and ODD_HOST in visible
    assert 'replica &lt;sync&gt;' in text


def test_html_header_and_summary(report):
    visible = ' '.join(parse_html(rf.render_html(report)).text)
    for expected in ('baseline', POLICY_SHA[:16], '2026-08-17 (14533 records)', '2027-01-20T12:30:05Z',
                     'Previous report', '2027-01-19T12:30:05Z', 'drift on 5 and no verdict on 2 of 9 hosts',
                     '+7 new \u00b7 1 resolved'):
        assert expected in visible, expected


def heat_rows(text):
    body = text.split('<table class="heat">', 1)[1].split('</table>', 1)[0]
    return re.findall(r'<tr class="(\w+)"><td class="h"><a href="#(host-\d+)">(.*?)</a></td>(.*?)</tr>', body)


def test_html_heat_map_worst_first_unknown_marked(report):
    text = rf.render_html(report)
    rows = heat_rows(text)
    assert [(css, host) for css, _anchor, host, _cells in rows] == [
        ('drift', 'db-01'), ('drift', 'odd&quot;host\\name'), ('unknown', 'partial-01'), ('drift', 'deny-01'),
        ('drift', 'evil-01'), ('unknown', 'lost-01'), ('unknown', 'proc-01'), ('compliant', 'web-02')]
    cells = re.findall(r'<td class="c ([^"]*)">(\d+)</td>', rows[0][3])
    assert cells[:5] == [('critical l1', '1'), ('high l2', '2'), ('z', '0'), ('z', '0'), ('z', '0')]
    # every row links to its drill-down; web-01 (compliant, nothing to show) is only listed by name
    for _css, anchor, _host, _cells in rows:
        assert '<details class="host" id="%s"' % anchor in text
    assert '<details class="clean"><summary>1 compliant host without findings</summary><ul><li>web-01</li></ul>' in text


def test_html_drill_down(report):
    text = rf.render_html(report)
    drill = text.split('<details class="host" id="host-4">', 1)[1].split('</details>', 1)[0]
    assert '<span class="h">evil-01</span>' in drill
    assert '&lt;img src=x onerror=alert(1)&gt;[66] as www-data /usr/sbin/&lt;img src=x onerror=alert(1)&gt;' in drill
    assert 'tcp 0.0.0.0:8443' in drill and 'iana-unassigned-closed' in drill
    lost = text.split('<details class="host" id="host-5">', 1)[1].split('</details>', 1)[0]
    assert 'Why there is no full verdict' in lost and 'Connection timed out' in lost
    web02 = text.split('<details class="host" id="host-7">', 1)[1].split('</details>', 1)[0]
    assert 'waived until 2027-02-01: replica &lt;sync&gt; (OPS-7), approved by dba' in web02
    assert 'Warnings' in web02 and 'expires 2027-02-01' in web02
    db = text.split('<details class="host" id="host-0" open>', 1)[1].split('</details>', 1)[0]
    assert 'waiver expired 2027-01-01' in db and 'tcp [::]:5432' in db
    assert ('New since the previous report: no-telnet tcp 0.0.0.0:23, postgres-loopback-only tcp 0.0.0.0:5433, '
            'postgres-loopback-only tcp [::]:5432</p>') in db
    assert 'Resolved since the previous report: ssh-only-sshd tcp 0.0.0.0:2222</p>' in db


def test_html_limits_findings_per_host():
    fleet = [host_entry('busy', audit('drift', [finding('default', 'medium', port) for port in range(1000, 1250)]))]
    text = rf.render_html(fleet_report(hosts=fleet), findings_per_host=200)
    assert text.count('<td class="sock">') == 200
    assert '\u2026 and 50 more findings: see the JSON report.' in text


# ---------------------------------------------------------------------------------------- Prometheus

def samples(text):
    found = {}
    for line in text.splitlines():
        if line.startswith('#'):
            continue
        name_labels, value = line.rsplit(' ', 1)
        found[name_labels] = value
    return found


def test_prometheus_families_have_help_and_type_first(report):
    text = rf.render_prometheus(report)
    seen = []
    for line in text.splitlines():
        if line.startswith('# HELP '):
            seen.append(line.split()[2])
        elif line.startswith('# TYPE '):
            assert line == '# TYPE %s gauge' % seen[-1]
        else:
            assert re.match(r'%s\{' % seen[-1], line), line
    assert seen == ['portwarden_host_compliant', 'portwarden_host_status', 'portwarden_host_findings',
                    'portwarden_host_waived_findings', 'portwarden_last_audit_timestamp_seconds', 'portwarden_fleet_hosts']


@pytest.mark.parametrize('series, value', [
    ('portwarden_host_compliant{host="web-01"}', '1'),
    ('portwarden_host_compliant{host="web-02"}', '1'),
    ('portwarden_host_compliant{host="db-01"}', '0'),
    ('portwarden_host_compliant{host="lost-01"}', '0'),
    ('portwarden_host_status{host="db-01",status="drift"}', '1'),
    ('portwarden_host_status{host="db-01",status="compliant"}', '0'),
    ('portwarden_host_status{host="db-01",status="unknown"}', '0'),
    ('portwarden_host_status{host="lost-01",status="unknown"}', '1'),
    ('portwarden_host_findings{host="db-01",severity="critical"}', '1'),
    ('portwarden_host_findings{host="db-01",severity="high"}', '2'),
    ('portwarden_host_findings{host="db-01",severity="info"}', '0'),
    ('portwarden_host_findings{host="web-02",severity="high"}', '0'),  # waived, not drift
    ('portwarden_host_findings{host="proc-01",severity="medium"}', '0'),  # unjudged, not drift
    ('portwarden_host_waived_findings{host="web-02"}', '1'),
    ('portwarden_host_waived_findings{host="db-01"}', '0'),
    ('portwarden_last_audit_timestamp_seconds{host="lost-01"}', str(EPOCH)),
    ('portwarden_host_compliant{host="odd\\"host\\\\name"}', '0'),
    ('portwarden_host_findings{host="odd\\"host\\\\name",severity="critical"}', '1'),
    ('portwarden_fleet_hosts{status="compliant"}', '2'),
    ('portwarden_fleet_hosts{status="drift"}', '5'),
    ('portwarden_fleet_hosts{status="unknown"}', '2'),
])
def test_prometheus_samples(report, series, value):
    assert samples(rf.render_prometheus(report))[series] == value


def test_prometheus_counts_series(report):
    found = samples(rf.render_prometheus(report))
    hosts = len(report['hosts'])
    assert len(found) == hosts * (1 + 3 + 5 + 1 + 1) + 3
    for entry in report['hosts']:
        host = entry['host'].replace('\\', '\\\\').replace('"', '\\"')
        one_hot = [found['portwarden_host_status{host="%s",status="%s"}' % (host, s)] for s in ('compliant', 'drift', 'unknown')]
        assert sorted(one_hot) == ['0', '0', '1']


def test_prometheus_escapes_newlines_in_label_values():
    # printable shows the line feed as \\n (no control character reaches a dashboard), the format escapes its backslash
    text = rf.render_prometheus(fleet_report(hosts=[host_entry('two\nlines', None)]))
    assert 'portwarden_host_compliant{host="two\\\\nlines"} 0\n' in text


# ------------------------------------------------------------------------------------ ten thousand

def test_ten_thousand_hosts_render(report):
    """The same fleet a thousand times over: every format, no format quadratic in the hosts."""
    hosts = []
    for copy in range(1112):
        for entry in fleet_hosts():
            hosts.append(dict(entry, host='%s-%04d' % (entry['host'], copy)))
    big = fleet_report(hosts=hosts)
    assert big['summary']['hosts'] == 10008
    texts = dict((name, render(big)) for name, render in rf.RENDERERS.items())
    assert json.loads(texts['json'])['summary'] == big['summary']
    assert ET.fromstring(texts['junit']).get('tests') == str(10008 * 5 + 1112 * 3)
    assert texts['markdown'].count('\n| ') == 3 + 3 + 2 + 50
    assert texts['html'].count('<details class="host"') == 8 * 1112
    assert len(samples(texts['prometheus'])) == 10008 * 11 + 3


# ------------------------------------------------------------------------------------- remediation
#
# A fleet from remediate mode: a host whose drift was closed (firewall block verified, a process
# ended), a host where a safety rail refused one change (its drift stays, protected), a host in check
# mode (changes planned, one of them for a process named like an HTML tag), a host skipped for its
# unknown verdict, a host with nothing to do, and an unreachable host (no remediation at all).

SKIPPED = 'no remediation on a host whose verdict is unknown: partial gather: /proc/net/udp6 unreadable'
PROTECTED = 'dropbear[12] listens on the port of the live Ansible connection'


def note(strategy, status, target=None, reason=None):
    return {'strategy': strategy, 'status': status, 'target': target, 'reason': reason}


def action(strategy, target, rules, outcome, detail=None):
    return {'strategy': strategy, 'target': target, 'rules': list(rules), 'outcome': outcome, 'detail': detail}


def remediated(data, remediation):
    return dict(data, remediation=remediation)


def remediate_audit(status, findings=(), actions=(), skipped=None, verified=False, reasons=()):
    return dict(audit(status, findings, reasons=reasons), remediation={'actions': list(actions), 'skipped': skipped,
                                                                       'verified': verified})


def remediation_hosts():
    return [
        host_entry('fixed-01', remediate_audit('compliant', [
            remediated(finding('no-telnet', 'critical', 23, 'remediated',
                               message='tcp 0.0.0.0:23 is listening (agent); rule no-telnet; remediated: blocked by the portwarden firewall'),
                       note('firewall', 'verified', 'tcp 0.0.0.0 port 23', 'blocked by the portwarden firewall (tcp 0.0.0.0 port 23, rule no-telnet)')),
            remediated(finding('iana-unassigned-closed', 'low', 8568, 'remediated', processes=[proc('inetd', 31)],
                               message='tcp 0.0.0.0:8568 no longer listens; remediated (kill: inetd[31])'),
                       note('kill', 'verified', 'inetd[31]', 'ended by SIGTERM; the socket no longer listens')),
        ], [action('firewall', 'tcp 0.0.0.0 port 23', ['no-telnet'], 'applied', 'nftables block added to table inet portwarden'),
            action('kill', 'inetd[31]', ['iana-unassigned-closed'], 'terminated', 'ended by SIGTERM')], verified=True)),
        host_entry('guard-01', remediate_audit('drift', [
            remediated(finding('ssh-only-sshd', 'medium', 22, processes=[proc('dropbear', 12)]), note('kill', 'protected', None, PROTECTED)),
            remediated(finding('postgres-loopback-only', 'high', 5432, 'remediated', processes=[proc('postgres', 40, unit='postgresql.service')],
                               message='tcp 0.0.0.0:5432 no longer listens; remediated (service: postgresql.service)'),
                       note('service', 'verified', 'postgresql.service', 'stopped and disabled; the socket no longer listens')),
        ], [action('service', 'postgresql.service', ['postgres-loopback-only'], 'applied', 'stopped and disabled'),
            action('kill', 'tcp 0.0.0.0:22', ['ssh-only-sshd'], 'protected', PROTECTED)], verified=True)),
        host_entry('plan-01', remediate_audit('drift', [
            remediated(finding('no-telnet', 'critical', 23), note('firewall', 'planned', 'tcp 0.0.0.0 port 23')),
            remediated(finding('iana-unassigned-closed', 'low', 8443, processes=[proc(EVIL_PROCESS, 66, 'www-data', 33)]),
                       note('kill', 'planned', EVIL_PROCESS + '[66]')),
        ], [action('firewall', 'tcp 0.0.0.0 port 23', ['no-telnet'], 'would_apply', 'nftables block added to table inet portwarden'),
            action('kill', EVIL_PROCESS + '[66]', ['iana-unassigned-closed'], 'would_terminate', 'check mode: ' + EVIL_MESSAGE)])),
        host_entry('skip-01', remediate_audit('unknown', [finding('ssh-only-sshd', 'medium', 22, processes=[proc('dropbear', 12)])],
                                              skipped=SKIPPED, reasons=['partial gather: /proc/net/udp6 unreadable'])),
        host_entry('web-01', remediate_audit('compliant')),
        host_entry('lost-01', None, 'unreachable: ssh: connect to host lost-01 port 22: Connection timed out'),
    ]


@pytest.fixture(scope='module')
def remediation_report():
    return fleet_report(hosts=remediation_hosts())


def test_remediation_fleet_is_what_the_tests_expect(remediation_report):
    assert dict((entry['host'], entry['status']) for entry in remediation_report['hosts']) == {
        'fixed-01': 'compliant', 'guard-01': 'drift', 'plan-01': 'drift', 'skip-01': 'unknown', 'web-01': 'compliant',
        'lost-01': 'unknown'}
    summary = remediation_report['summary']
    assert (summary['remediated_findings'], summary['remediation_actions'], summary['unknown_findings']) == (3, 6, 0)


def test_host_counts_keep_remediated_findings_apart(remediation_report):
    counts = dict((entry['host'], rf._host_counts(entry)) for entry in remediation_report['hosts'])
    drift, waived, unknown, worst, fixed = counts['fixed-01']
    assert (sum(drift.values()), waived, unknown, worst, fixed) == (0, 0, 0, -1, 2)  # neither drift nor unjudged
    drift, waived, unknown, worst, fixed = counts['guard-01']
    assert (drift['medium'], sum(drift.values()), unknown, fixed) == (1, 1, 0, 1)  # the protected finding is drift


def test_remediation_json_is_the_report(remediation_report):
    text = rf.render_json(remediation_report)
    assert text == json.dumps(remediation_report, indent=2) + '\n'
    assert json.loads(text)['hosts'][0]['remediation']['actions'][0]['outcome'] == 'applied'


@pytest.mark.parametrize('host, case, expected', [
    ('fixed-01', 'no-telnet', 'pass'),  # remediated
    ('fixed-01', 'iana-unassigned-closed', 'pass'),
    ('guard-01', 'postgres-loopback-only', 'pass'),
    ('guard-01', 'ssh-only-sshd', 'failure'),  # drift a safety rail kept open
    ('plan-01', 'no-telnet', 'failure'),  # check mode only planned the change
    ('plan-01', 'iana-unassigned-closed', 'failure'),
    ('skip-01', 'ssh-only-sshd', 'failure'),
    ('skip-01', 'verdict', 'error'),
    ('web-01', 'no-telnet', 'pass'),
    ('lost-01', 'no-telnet', 'skipped'),
])
def test_junit_remediation_outcomes(remediation_report, host, case, expected):
    _root, cases = junit_cases(remediation_report)
    assert outcome(cases[(host, case)]) == expected


def test_junit_remediation_texts(remediation_report):
    root, cases = junit_cases(remediation_report)
    assert cases[('fixed-01', 'no-telnet')].find('system-out').text == (
        'remediated: tcp 0.0.0.0:23 is listening (agent); rule no-telnet; remediated: blocked by the portwarden firewall '
        '(firewall: tcp 0.0.0.0 port 23)')
    assert cases[('guard-01', 'postgres-loopback-only')].find('system-out').text == (
        'remediated: tcp 0.0.0.0:5432 no longer listens; remediated (service: postgresql.service)')  # not twice
    assert cases[('guard-01', 'ssh-only-sshd')].find('failure').text == (
        '[medium] tcp 0.0.0.0:22 is listening (dropbear); rule ssh-only-sshd; remediation protected (kill): ' + PROTECTED)
    assert cases[('plan-01', 'iana-unassigned-closed')].find('failure').text == (
        '[low] tcp 0.0.0.0:8443 is listening (%s); rule iana-unassigned-closed; remediation planned (kill: %s[66])'
        % (EVIL_PROCESS, EVIL_PROCESS))
    suites = dict((suite.get('name'), suite) for suite in root.findall('testsuite'))
    assert suites['fixed-01'].find('system-out').text.splitlines() == [
        'remediation: 2 actions, verified by a gather after the changes',
        'applied: firewall tcp 0.0.0.0 port 23 (rule no-telnet): nftables block added to table inet portwarden',
        'terminated: kill inetd[31] (rule iana-unassigned-closed): ended by SIGTERM']
    assert suites['guard-01'].find('system-out').text.splitlines()[2] == (
        'protected: kill tcp 0.0.0.0:22 (rule ssh-only-sshd): ' + PROTECTED)
    assert suites['plan-01'].find('system-out').text.splitlines() == [
        'remediation: 2 actions, not verified',
        'would_apply: firewall tcp 0.0.0.0 port 23 (rule no-telnet): nftables block added to table inet portwarden',
        'would_terminate: kill %s[66] (rule iana-unassigned-closed): check mode: %s' % (EVIL_PROCESS, EVIL_MESSAGE)]
    assert suites['skip-01'].find('system-out').text == 'remediation skipped: ' + SKIPPED
    for quiet in ('web-01', 'lost-01'):  # nothing done, nothing skipped: nothing to say
        assert suites[quiet].find('system-out') is None
    # the suite's own system-out is not a test case: the counts stay those of the cases
    assert (root.get('failures'), root.get('errors'), root.get('skipped')) == ('4', '2', '4')
    assert int(root.get('tests')) == sum(len(suite.findall('testcase')) for suite in suites.values())


def test_junit_of_report_mode_has_no_remediation(report):
    text = rf.render_junit(report)
    assert 'remediat' not in text
    assert all(suite.find('system-out') is None for suite in ET.fromstring(text).findall('testsuite'))


def test_markdown_remediation(remediation_report):
    text = rf.render_markdown(remediation_report)
    tables = table_rows(text)
    assert tables[1][0] == ['Drift findings', 'Critical', 'High', 'Medium', 'Low', 'Info', 'Waived', 'Unjudged', 'Remediated']
    assert tables[1][2] == ['4', '1', '0', '2', '1', '0', '0', '0', '3']
    assert '### Remediation\n\n**6 actions** on 3 hosts (applied 2, protected 1, terminated 1, would\\_apply 1, would\\_terminate 1) ' \
           '\u00b7 3 findings remediated\n' in text
    attention = [row[0] for row in tables[2][2:]]
    assert 'fixed-01' not in attention and 'guard-01' in attention  # remediated is not drift
    actions = tables[3]
    assert actions[0] == ['Host', 'Strategy', 'Target', 'Rules', 'Outcome', 'Detail']
    assert actions[2:] == [
        ['fixed-01', 'firewall', 'tcp 0.0.0.0 port 23', 'no-telnet', 'applied', 'nftables block added to table inet portwarden'],
        ['fixed-01', 'kill', 'inetd\\[31\\]', 'iana-unassigned-closed', 'terminated', 'ended by SIGTERM'],
        ['guard-01', 'service', 'postgresql.service', 'postgres-loopback-only', 'applied', 'stopped and disabled'],
        ['guard-01', 'kill', 'tcp 0.0.0.0:22', 'ssh-only-sshd', 'protected', rf.markdown_escape(PROTECTED)],
        ['plan-01', 'firewall', 'tcp 0.0.0.0 port 23', 'no-telnet', 'would\\_apply', 'nftables block added to table inet portwarden'],
        ['plan-01', 'kill', '&lt;img src=x onerror=alert(1)&gt;\\[66\\]', 'iana-unassigned-closed', 'would\\_terminate',
         rf.markdown_escape(rf._short('check mode: ' + EVIL_MESSAGE))],
    ]
    assert tables[4] == [['Host', 'Why remediation was skipped'], [':---', ':---'], ['skip-01', rf.markdown_escape(SKIPPED)]]
    assert 'Nothing done on 1 host:' in text
    for table in tables:
        assert len(set(len(row) for row in table)) == 1, table
    assert '<img' not in text and '</td>' not in text and '<script' not in text


def test_markdown_remediation_actions_are_limited():
    fleet = [host_entry('h%03d' % i, remediate_audit('compliant', actions=[
        action('kill', 'agent[%d]' % i, ['default'], 'gone', 'already exited')])) for i in range(60)]
    fleet += [host_entry('s%03d' % i, remediate_audit('unknown', skipped=SKIPPED, reasons=['partial'])) for i in range(3)]
    text = rf.render_markdown(fleet_report(hosts=fleet), max_rows=50)
    tables = table_rows(text)
    assert len(tables[-2]) == 50 + 2 and tables[-2][-1][0] == 'h049'
    assert '\u2026 and 10 more actions: see the HTML or JSON report.' in text
    assert '**60 actions** on 60 hosts (gone 60) \u00b7 0 findings remediated' in text
    assert len(tables[-1]) == 3 + 2
    text = rf.render_markdown(fleet_report(hosts=fleet), max_rows=2)
    assert '\u2026 and 1 more host skipped: see the HTML or JSON report.' in text


def test_markdown_of_remediate_mode_with_nothing_to_do():
    text = rf.render_markdown(fleet_report(hosts=[host_entry('web-01', remediate_audit('compliant'))]))
    assert '### Remediation\n\nNo remediation action on any host \u00b7 0 findings remediated.\n' in text
    assert len(table_rows(text)) == 2 and 'Remediated' not in text  # no remediated column for a count of 0


def test_markdown_of_report_mode_has_no_remediation(report):
    text = rf.render_markdown(report)
    assert 'Remediat' not in text and len(table_rows(text)) == 3


def test_html_remediation_is_text_and_self_contained(remediation_report):
    text = rf.render_html(remediation_report)
    parsed = parse_html(text)
    assert set(tag for tag, _attrs in parsed.tags) <= ALLOWED_TAGS
    for tag, attrs in parsed.tags:
        assert not [name for name in attrs if name.startswith('on')], (tag, attrs)
    assert 'url(' not in text and '@import' not in text and 'http' not in text.replace('http://x', '')
    visible = ''.join(parsed.text)
    assert EVIL_PROCESS + '[66]' in visible and '</td><script>alert(2)</script>' in visible
    assert '<td class="target">&lt;img src=x onerror=alert(1)&gt;[66]</td>' in text
    assert 'check mode: tcp 0.0.0.0:8443 | listening &lt;/td&gt;&lt;script&gt;alert(2)&lt;/script&gt;' in text
    assert '<img' not in text and '<script' not in text


def html_drill_down(text, host):
    for part in text.split('<details class="host" id="host-')[1:]:
        if '<span class="h">%s</span>' % host in part:
            return part.split('</details>', 1)[0]
    raise AssertionError(host)


def test_html_remediation_summary_and_heat_map(remediation_report):
    text = rf.render_html(remediation_report)
    visible = ' '.join(parse_html(text).text)
    assert ('<div class="card remediated"><div class="n">3</div><div class="l">Remediated findings</div>'
            '<div class="l" style="margin-top:6px">6 actions on 3 hosts \u00b7 applied 2 \u00b7 protected 1 \u00b7 terminated 1 '
            '\u00b7 would_apply 1 \u00b7 would_terminate 1 \u00b7 skipped on 1 host</div></div>') in text
    assert 'Waived 0 \u00b7 unjudged 0' in visible
    assert '<th>Waived</th><th>Unjudged</th><th>Remediated</th></tr>' in text
    rows = dict((host, cells) for _css, _anchor, host, cells in heat_rows(text))
    assert rows['fixed-01'].endswith('<td class="c z">0</td><td class="c z">0</td><td class="c">2</td>')
    assert rows['guard-01'].endswith('<td class="c z">0</td><td class="c">1</td>')
    assert rows['plan-01'].endswith('<td class="c z">0</td><td class="c z">0</td><td class="c z">0</td>')
    assert '.badge.remediated' in text  # the remediation styles come with remediation


def test_html_remediation_drill_down(remediation_report):
    text = rf.render_html(remediation_report)
    fixed = html_drill_down(text, 'fixed-01')
    assert '<span class="meta">2 remediated</span>' in fixed
    assert '<th>Waiver</th><th>Remediation</th>' in fixed
    assert '<span class="badge remediated">remediated</span>' in fixed
    assert ('<td class="rem"><span class="badge r-ok">verified</span> firewall: tcp 0.0.0.0 port 23<br><span class="muted">'
            'blocked by the portwarden firewall (tcp 0.0.0.0 port 23, rule no-telnet)</span></td>') in fixed
    assert ('<tr><td>firewall</td><td class="target">tcp 0.0.0.0 port 23</td><td>no-telnet</td>'
            '<td><span class="badge r-ok">applied</span></td><td class="rem">nftables block added to table inet portwarden</td></tr>') in fixed
    assert 'Verified by a gather after the changes.' in fixed
    guard = html_drill_down(text, 'guard-01')
    assert '<span class="badge drift">drift</span>' in guard
    assert '<td class="rem"><span class="badge r-held">protected</span> kill<br><span class="muted">%s</span></td>' % PROTECTED in guard
    assert '<td><span class="badge r-held">protected</span></td><td class="rem">%s</td>' % PROTECTED in guard
    plan = html_drill_down(text, 'plan-01')
    assert '<span class="badge r-plan">planned</span> kill: &lt;img src=x onerror=alert(1)&gt;[66]</td>' in plan
    assert '<span class="badge r-plan">would_terminate</span>' in plan and '<span class="badge r-plan">would_apply</span>' in plan
    assert 'Not verified by a gather after the changes.' in plan
    skip = html_drill_down(text, 'skip-01')
    assert '<strong>Remediation</strong><p class="muted">Skipped: %s</p>' % SKIPPED in skip
    assert 'remediation skipped' in skip and '<th>Remediation</th>' not in skip  # no finding has a remediation note
    assert '<details class="clean"><summary>1 compliant host without findings</summary><ul><li>web-01</li></ul>' in text


def test_html_of_report_mode_has_no_remediation(report):
    text = rf.render_html(report)
    assert 'emediat' not in text and 'r-ok' not in text


def test_prometheus_remediation(remediation_report):
    text = rf.render_prometheus(remediation_report)
    found = samples(text)
    assert found['portwarden_host_remediated_findings{host="fixed-01"}'] == '2'
    assert found['portwarden_host_remediated_findings{host="guard-01"}'] == '1'
    assert found['portwarden_host_remediated_findings{host="plan-01"}'] == '0'
    assert found['portwarden_host_remediated_findings{host="lost-01"}'] == '0'
    actions = dict((series, value) for series, value in found.items() if series.startswith('portwarden_host_remediation_actions'))
    assert actions == {
        'portwarden_host_remediation_actions{host="fixed-01",outcome="applied"}': '1',
        'portwarden_host_remediation_actions{host="fixed-01",outcome="terminated"}': '1',
        'portwarden_host_remediation_actions{host="guard-01",outcome="applied"}': '1',
        'portwarden_host_remediation_actions{host="guard-01",outcome="protected"}': '1',
        'portwarden_host_remediation_actions{host="plan-01",outcome="would_apply"}': '1',
        'portwarden_host_remediation_actions{host="plan-01",outcome="would_terminate"}': '1',
    }
    # remediated findings are not drift; the protected one is
    assert [found['portwarden_host_findings{host="fixed-01",severity="%s"}' % s] for s in SEVERITIES_ORDER] == ['0'] * 5
    assert found['portwarden_host_findings{host="guard-01",severity="medium"}'] == '1'
    assert found['portwarden_host_compliant{host="fixed-01"}'] == '1'
    names = [line.split()[2] for line in text.splitlines() if line.startswith('# HELP ')]
    assert names == ['portwarden_host_compliant', 'portwarden_host_status', 'portwarden_host_findings',
                     'portwarden_host_waived_findings', 'portwarden_host_remediated_findings',
                     'portwarden_host_remediation_actions', 'portwarden_last_audit_timestamp_seconds', 'portwarden_fleet_hosts']
    assert '# TYPE portwarden_host_remediation_actions gauge\n' in text
    assert len(found) == 6 * (1 + 3 + 5 + 1 + 1 + 1) + 6 + 3


def test_prometheus_of_report_mode_has_no_remediation(report):
    assert 'remediat' not in rf.render_prometheus(report)


SEVERITIES_ORDER = ('critical', 'high', 'medium', 'low', 'info')


# ----------------------------------------------------------------------- hostile text in every format
#
# A process name, an exe path, a message, a reason or a policy name may carry what a terminal, a
# browser or GitHub acts on: every format shows it escaped (\x1b, \u202e) and still readable.

HOSTILE_CATEGORIES = ('Cc', 'Cf', 'Cs', 'Zl', 'Zp')
HOSTILE_NAME = 'x\x1b[2J\u202eevil\u200b'
HOSTILE_EXE = '/tmp/\x1b]8;;https://x\x07/\udcffpython'


def hostile_report():
    found = finding('iana-unassigned-closed', 'low', 856, processes=[proc(HOSTILE_NAME, 66, exe=HOSTILE_EXE)],
                    message='tcp 0.0.0.0:856 is listening (%s[66] as root)\nforged line' % HOSTILE_NAME)
    hostile = audit('drift', [found], reasons=['partial: /proc/\x9b2J unreadable'], warnings=['warn \u2028 sep'])
    hosts = [host_entry('h\x1b[31m-01', hostile)]
    policy = dict(POLICY, name='base\u202eline', sha256='\x1b' + POLICY_SHA[1:])
    return fleet_report(hosts=hosts, policy=policy)


def hostile_chars(text, allowed='\n'):
    import unicodedata

    return sorted(set(char for char in text if char not in allowed and unicodedata.category(char) in HOSTILE_CATEGORIES))


@pytest.mark.parametrize('name', ['junit', 'markdown', 'html', 'prometheus'])
def test_no_format_carries_a_control_or_invisible_character(name):
    text = rf.RENDERERS[name](hostile_report())
    assert hostile_chars(text) == []
    text.encode('utf-8')


def test_junit_shows_control_characters_recognisably():
    _root, cases = junit_cases(hostile_report())
    case = cases[('h\\x1b[31m-01', 'iana-unassigned-closed')]
    assert case.find('failure').text == ('[low] tcp 0.0.0.0:856 is listening (x\\x1b[2J\\u202eevil\\u200b[66] as root)'
                                         '\\nforged line')
    assert cases[('h\\x1b[31m-01', 'verdict')].find('error').get('message') == 'partial: /proc/\\x9b2J unreadable'


def test_html_shows_control_characters_recognisably_in_text_and_attributes():
    page = rf.render_html(hostile_report())
    assert 'x\\x1b[2J\\u202eevil\\u200b[66] as root /tmp/\\x1b]8;;https://x\\x07/\\xffpython' in page
    assert 'title="\\x1b' in page  # the policy sha256 in an attribute
    assert 'base\\u202eline' in page


@pytest.mark.parametrize('value, shown', [
    ('@ops please', '@<!-- -->ops please'),
    ('mail ops@example.com', 'mail ops@<!-- -->example.com'),
    ('see #123 and GH-7', 'see #<!-- -->123 and GH-<!-- -->7'),
    ('go https://evil.example/x or http://e', 'go https<!-- -->://evil.example/x or http<!-- -->://e'),
    ('www.evil.example', 'www<!-- -->.evil.example'),
    ('ESC\x1b[2J', 'ESC\\\\x1b\\[2J'),
    ('bidi\u202e', 'bidi\\\\u202e'),
])
def test_markdown_neutralises_what_github_acts_on(value, shown):
    assert rf.markdown_escape(value) == shown


def test_prometheus_label_values_escape_controls():
    text = rf.render_prometheus(hostile_report())
    assert 'portwarden_host_compliant{host="h\\\\x1b[31m-01"} 0\n' in text
