"""Attack: a local user names a listening process (comm) and its executable's path so that the text takes
over the operator's terminal (clear the screen, an OSC 8 hyperlink, a forged line), reorders what is
shown (a bidi override), hides in it (zero-width), pings people or links issues and URLs from a
pull-request comment, or crashes the writer (a path that is not UTF-8).

Real processes, real sockets in a fresh network namespace, the real ``portwarden gather`` and the real
reports built from its output: no control or invisible character reaches any output, and the text is
still recognisable (``\\x1b`` shown as ``\\x1b``).
"""

import datetime
import html.parser
import json
import os
import re
import sys
import unicodedata
import xml.etree.ElementTree as ET

import pytest
from markdown_it import MarkdownIt
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils import registry
from ansible_collections.portwarden.compliance.plugins.module_utils.atomic_write import write_atomically
from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import build_report, host_entry
from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES, RENDERERS
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import load_policy
from tests.conftest import REPO
from tests.helpers.gather import CLI_MODULE
from tests.helpers.hostile import hostile_python, listen_as
from tests.helpers.netns import Namespace, have_netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]

CLEAR = '\x1b[2J\u202eevil\nx'  # clears the screen, reverses what follows, forges a new line
MENTION = '@ops #12 www.x'  # a mention, an issue reference and a bare URL in a PR comment
LINK = 'https://e.vil'
HOSTILE_HOST = 'web\x1b[31m\u2066-01'  # a name from a dynamic inventory (cloud tags)
TODAY = datetime.date(2027, 1, 20)
# Ports IANA has not assigned (the baseline's emblem and its neighbours): each listener drifts.
PORTS = {CLEAR: 856, MENTION: 857, LINK: 858}


def hostile_chars(text, allowed='\n'):
    """Every character of ``text`` a terminal or a renderer would act on or hide: controls, format
    characters (bidi, zero-width), line separators, surrogates (undecodable bytes)."""
    return sorted(set(char for char in text if char not in allowed
                      and unicodedata.category(char) in ('Cc', 'Cf', 'Cs', 'Zl', 'Zp')))


@pytest.fixture(scope='module')
def hostile(tmp_path_factory):
    """A namespace where three hostile processes listen; yields (namespace, pids by name, python path)."""
    python = hostile_python(str(tmp_path_factory.mktemp('exe')))
    with Namespace() as namespace:
        pids = {}
        for name, port in PORTS.items():
            holder = listen_as(namespace, python, name, [{'protocol': 'tcp', 'address': '127.0.0.1', 'port': port}])
            pids[name] = holder.pids[0]
        yield namespace, pids, python


def gather(namespace, *args):
    return namespace.run([sys.executable, '-m', CLI_MODULE, 'gather'] + list(args), text=False, timeout=120)


@pytest.fixture(scope='module')
def gathered(hostile):
    namespace, pids, python = hostile
    proc = gather(namespace, '--format', 'json')
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    names = dict((p['pid'], p) for entry in result['sockets'] for p in entry['processes'])
    # the gather saw the hostile text as it is (the kernel's comm, the exe's undecodable byte kept)
    assert names[pids[CLEAR]]['name'] == CLEAR
    assert names[pids[LINK]]['exe'] == os.fsdecode(python)
    return result


def test_the_gather_table_shows_hostile_names_escaped(hostile, gathered):
    namespace, pids, _python = hostile
    proc = gather(namespace)
    assert proc.returncode == 0, proc.stderr
    assert b'Traceback' not in proc.stderr
    text = proc.stdout.decode('utf-8')  # valid UTF-8, whatever the host held
    assert hostile_chars(text) == []
    lines = text.splitlines()
    # a header, one row per socket, a blank line, the coverage, then only notes and the NAT summary: the newline in
    # a name forged no line
    coverage = [index for index, line in enumerate(lines) if line.startswith('coverage: ')]
    assert coverage == [1 + len(PORTS) + 1], lines
    assert lines[1 + len(PORTS)] == ''
    assert all(line == '' or line.startswith(('note: ', 'nat: ')) for line in lines[coverage[0] + 1:]), lines
    row = next(line for line in lines if ':856 ' in line)
    assert row.endswith('\\x1b[2J\\u202eevil\\nx[%d]' % pids[CLEAR])
    assert any(line.endswith('%s[%d]' % (MENTION, pids[MENTION])) for line in lines)


def test_gather_json_carries_no_raw_control_byte(hostile):
    proc = gather(hostile[0], '--format', 'json', '--compact')
    assert proc.returncode == 0, proc.stderr
    assert re.search(rb'[\x00-\x09\x0b-\x1f\x7f-\xff]', proc.stdout) is None  # ASCII, every escape a JSON one


@pytest.fixture(scope='module')
def rendered(gathered, tmp_path_factory):
    """The fleet report of the hostile host (and a hostile inventory name), in every format, written as
    port_report writes it; each file's text."""
    compiled = ev.compile_policy(load_policy(os.path.join(REPO, 'docs', 'policies', 'baseline.yml')))
    # Markdown details a host by its first drift: one host per hostile process.
    hosts = []
    for name, port in (('ns-01', PORTS[CLEAR]), (HOSTILE_HOST, PORTS[MENTION]), ('link-01', PORTS[LINK])):
        mine = [entry for entry in gathered['sockets'] if entry['port'] == port]
        # The result must stay well-formed: its coverage counts the sockets it carries.
        own = dict(gathered, sockets=mine, coverage=dict(gathered['coverage'], sockets=len(mine)))
        hosts.append(host_entry(name, ev.evaluate_host(own, compiled, name, today=TODAY)))
    report = build_report(hosts, compiled.info(), registry.registry_info(), tool_version='0.1.0')
    assert [entry['status'] for entry in report['hosts']] == ['drift'] * 3
    directory = tmp_path_factory.mktemp('report')
    texts = {}
    for name, render in RENDERERS.items():
        path = str(directory / FILE_NAMES[name])
        write_atomically(path, render(report))  # a path that is not UTF-8 must not stop the writer
        with open(path, 'rb') as handle:
            texts[name] = handle.read().decode('utf-8')
    return texts


@pytest.mark.parametrize('name', sorted(FILE_NAMES))
def test_no_report_carries_a_hostile_character(rendered, name):
    assert hostile_chars(rendered[name]) == []


class _Text(html.parser.HTMLParser):
    def __init__(self):
        html.parser.HTMLParser.__init__(self)
        self.text = []
        self.attributes = []

    def handle_data(self, data):
        self.text.append(data)

    def handle_starttag(self, tag, attrs):
        self.attributes.extend(value for _name, value in attrs if value)


def test_html_report_shows_the_hostile_text_recognisably(rendered):
    page = _Text()
    page.feed(rendered['html'])
    text = ''.join(page.text)
    assert '\\x1b[2J\\u202eevil\\nx' in text
    assert '\\x1b]8;;https:\\x07link' in text and '\\xff/python3' in text  # the exe path, its undecodable byte
    assert hostile_chars(text + ''.join(page.attributes)) == []


def test_junit_report_shows_the_hostile_text_recognisably(rendered):
    root = ET.fromstring(rendered['junit'])
    names = sorted(suite.get('name') for suite in root.iter('testsuite'))
    assert names == ['link-01', 'ns-01', 'web\\x1b[31m\\u2066-01']
    failure = next(suite for suite in root.iter('testsuite') if suite.get('name') == 'ns-01').find('testcase/failure')
    assert '\\x1b[2J\\u202eevil\\nx' in failure.text


def test_prometheus_labels_parse_to_the_escaped_host_name(rendered):
    hosts = set(sample.labels['host'] for family in text_string_to_metric_families(rendered['prometheus'])
                for sample in family.samples if 'host' in sample.labels)
    assert hosts == {'ns-01', 'web\\x1b[31m\\u2066-01', 'link-01'}


def test_markdown_report_pings_nobody_and_links_nothing(rendered):
    source = rendered['markdown']
    # GitHub links @name, #123 and bare URLs (http://, https://, www.) in a comment's text.
    assert re.search(r'(?<![\w`])@[A-Za-z0-9]', source) is None
    assert re.search(r'(?<![\w&])#[0-9]', source) is None
    assert re.search(r'https?://|www\.', source) is None
    page = MarkdownIt('commonmark').enable('table').render(source)
    assert '<a ' not in page and '<img' not in page
    text = re.sub(r'<[^>]+>', '', page)
    assert '@ops' in text and '#12' in text and 'www.x' in text and 'https://e.vil' in text  # still readable
    assert '\\x1b[2J\\u202eevil\\nx' in text.replace('&lt;', '<').replace('&gt;', '>').replace('&amp;', '&')
