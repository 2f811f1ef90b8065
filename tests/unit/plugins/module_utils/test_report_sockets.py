"""Unit tests: the text table of a gather result."""

import pytest

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
