"""Unit tests: the text table of a gather result."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.portwarden.compliance.plugins.module_utils import report_sockets as report


@pytest.mark.parametrize('entry, label', [
    ({'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': 856}, 'tcp 0.0.0.0:856'),
    ({'protocol': 'udp', 'family': 'ipv6', 'address': '::1', 'port': 859}, 'udp [::1]:859'),
])
def test_socket_label(entry, label):
    assert report.socket_label(entry) == label


RESULT = {
    'sockets': [
        {'protocol': 'tcp', 'family': 'ipv6', 'address': '::', 'port': 858, 'v6only': False, 'ephemeral': False,
         'processes': [{'pid': 10, 'name': 'web', 'user': 'www-data', 'uid': 33, 'unit': 'web.service'},
                       {'pid': 11, 'name': 'web', 'user': 'www-data', 'uid': 33, 'unit': 'web.service'}]},
        {'protocol': 'udp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': 859, 'v6only': None, 'ephemeral': False,
         'processes': []},
    ],
    'coverage': {'backend': 'auto', 'privileged': False, 'complete': False, 'sockets': 2,
                 'unowned_sockets': ['udp 0.0.0.0:859'], 'errors': ['3 processes could not be inspected'],
                 'notes': ['not running as root']},
}


def test_table_rows_columns_and_coverage():
    lines = report.render_socket_table(RESULT)
    assert lines[0].split() == ['PROTO', 'LOCAL', 'ADDRESS', 'V6ONLY', 'EPHEMERAL', 'USER', 'UNIT', 'PROCESSES']
    assert lines[1].split() == ['tcp', '[::]:858', 'no', 'no', 'www-data', 'web.service', 'web[10],web[11]']
    assert lines[2].split() == ['udp', '0.0.0.0:859', '-', 'no', '-', '-', '-']
    # columns line up: every row starts its second column at the same offset
    assert lines[1].index('[::]') == lines[2].index('0.0.0.0') == lines[0].index('LOCAL')
    assert 'complete=False' in lines[4] and 'unowned=1' in lines[4]
    assert lines[5:] == ['error: 3 processes could not be inspected', 'note: not running as root']


def test_empty_result_still_shows_coverage():
    lines = report.render_socket_table({'sockets': [], 'coverage': {'complete': True, 'sockets': 0}})
    assert len(lines) == 3
    assert 'complete=True' in lines[2]


def test_table_has_a_where_column_only_with_namespaces():
    web = {'inode': 4026532001, 'host': False, 'pid': 20,
           'container': {'kind': 'docker', 'id': 'ab' * 32, 'pod_uid': None, 'name': 'web'}}
    own = {'inode': 4026531840, 'host': True, 'pid': 1, 'container': None}
    result = {'sockets': [dict(RESULT['sockets'][0], namespace=own), dict(RESULT['sockets'][1], namespace=web)],
              'coverage': RESULT['coverage']}
    lines = report.render_socket_table(result)
    assert lines[0].split()[:4] == ['PROTO', 'LOCAL', 'ADDRESS', 'WHERE']
    assert lines[1].split()[:3] == ['tcp', '[::]:858', 'host']
    assert lines[2].split()[:3] == ['udp', '0.0.0.0:859', 'docker:web']
    assert 'WHERE' not in report.render_socket_table(RESULT)[0]


def test_socket_label_names_the_namespace_outside_the_host():
    entry = {'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': 856,
             'namespace': {'inode': 4026532009, 'host': False, 'pid': 9, 'container': None}}
    assert report.socket_label(entry) == 'tcp 0.0.0.0:856 in netns:4026532009'
    assert report.socket_label(dict(entry, namespace=dict(entry['namespace'], host=True))) == 'tcp 0.0.0.0:856'


# ------------------------------------------------------------------------------ printable: host text

HOSTILE_CATEGORIES = ('Cc', 'Cf', 'Cs', 'Zl', 'Zp')


@pytest.mark.parametrize('value, shown', [
    ('sshd', 'sshd'),
    ('nginx: worker ü', 'nginx: worker ü'),  # printable Unicode stays as it is
    ('/usr/bin/back\\slash', '/usr/bin/back\\slash'),  # a backslash too: escaping twice changes nothing
    ('\x1b[2J', '\\x1b[2J'),
    ('\x1b]8;;http://x\x07link\x1b]8;;\x07', '\\x1b]8;;http://x\\x07link\\x1b]8;;\\x07'),
    ('a\nb\rc\td', 'a\\nb\\rc\\td'),
    ('\x00\x7f\x85\x9b', '\\x00\\x7f\\x85\\x9b'),  # NUL, DEL, NEL and the one-byte CSI
    ('exe\u202etxt.\u2066', 'exe\\u202etxt.\\u2066'),  # bidi overrides and isolates
    ('zero\u200bwidth\u200d\ufeff\u2060', 'zero\\u200bwidth\\u200d\\ufeff\\u2060'),
    ('line\u2028para\u2029', 'line\\u2028para\\u2029'),
    ('tag\U000e0041', 'tag\\U000e0041'),  # a tag character outside the BMP
    ('/opt/\udcff\udc80', '/opt/\\xff\\x80'),  # bytes a path held that are not UTF-8 (surrogateescape)
    ('\ud800', '\\ud800'),
    (42, '42'),
    (None, 'None'),
])
def test_printable(value, shown):
    assert report.printable(value) == shown


def test_printable_keeps_newlines_when_asked():
    assert report.printable('one\ntwo\x1b', newlines=True) == 'one\ntwo\\x1b'


@pytest.mark.parametrize('newlines', [False, True])
def test_printable_of_ascii_takes_the_fast_check_and_escapes_exactly_what_the_class_does(newlines):
    pattern = report._UNPRINTABLE_BUT_NEWLINE if newlines else report._UNPRINTABLE
    for code in range(128):
        text = 'a%sb\n' % chr(code)
        assert report.printable(text, newlines=newlines) == pattern.sub(report._escape, text), code


def test_printable_covers_every_control_and_format_character_of_this_python():
    import sys
    import unicodedata

    missed = [hex(code) for code in range(sys.maxunicode + 1)
              if unicodedata.category(chr(code)) in HOSTILE_CATEGORIES and report.printable(chr(code)) == chr(code)]
    assert missed == []


@given(st.text(alphabet=st.characters(codec=None), max_size=40))
def test_printable_leaves_no_hostile_character_and_is_idempotent(text):
    import unicodedata

    shown = report.printable(text)
    assert [char for char in shown if unicodedata.category(char) in HOSTILE_CATEGORIES] == []
    assert report.printable(shown) == shown
    shown.encode('utf-8')  # whatever a path held, the text can be written


def test_table_escapes_every_text_from_the_host():
    hostile = {'inode': 4026532001, 'host': False, 'pid': 20,
               'container': {'kind': 'docker', 'id': 'ab' * 32, 'pod_uid': None, 'name': 'web\x1b[8m'}}
    result = {
        'sockets': [dict(RESULT['sockets'][0], namespace=hostile,
                         processes=[{'pid': 10, 'name': 'a\nb\u202e', 'user': 'us\x1ber', 'uid': 33, 'unit': 'u\x07.service'}])],
        'coverage': dict(RESULT['coverage'], errors=['/proc/9/fd/\x1b[2J: gone'], notes=['note\r\x1b[A']),
    }
    lines = report.render_socket_table(result)
    assert len(lines) == 6
    assert lines[1].split() == ['tcp', '[::]:858', 'docker:web\\x1b[8m', 'no', 'no', 'us\\x1ber', 'u\\x07.service',
                                'a\\nb\\u202e[10]']
    assert lines[4:] == ['error: /proc/9/fd/\\x1b[2J: gone', 'note: note\\r\\x1b[A']
