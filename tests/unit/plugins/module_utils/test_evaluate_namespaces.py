"""Table-driven tests: rules and waivers scoped by network namespace, and where findings say they live."""

import datetime

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb
from ansible_collections.portwarden.compliance.plugins.module_utils import report_formats as rf
from ansible_collections.portwarden.compliance.plugins.module_utils.report_sockets import namespace_where, socket_label

TODAY = datetime.date(2027, 1, 20)
HOST_NS = {'inode': 4026531840, 'host': True, 'pid': 1, 'container': None}
WEB = {'inode': 4026532001, 'host': False, 'pid': 2001,
       'container': {'kind': 'docker', 'id': 'ab' * 32, 'pod_uid': None, 'name': 'web'}}
DB = {'inode': 4026532002, 'host': False, 'pid': 2002,
      'container': {'kind': 'podman', 'id': 'cd' * 32, 'pod_uid': None, 'name': None}}
POD = {'inode': 4026532003, 'host': False, 'pid': 2003,
       'container': {'kind': 'kubernetes', 'id': 'ef' * 32, 'pod_uid': '1b2c3d4e', 'name': 'shop/cart-5d9f'}}
NETNS = {'inode': 4026532004, 'host': False, 'pid': 2004, 'container': None}
NAMESPACES = {'none': None, 'host': HOST_NS, 'web': WEB, 'db': DB, 'pod': POD, 'netns': NETNS}


def sock(port, where, protocol='tcp'):
    entry = {'protocol': protocol, 'family': 'ipv4', 'address': '0.0.0.0', 'port': port, 'v6only': None,
             'ephemeral': False, 'inode': port,
             'processes': [{'pid': 100 + port, 'name': 'agent', 'user': 'root', 'uid': 0, 'exe': '/opt/agent',
                            'unit': None}]}
    if NAMESPACES[where] is not None:
        entry['namespace'] = NAMESPACES[where]
    return entry


def evaluate(rules, sockets, waivers=()):
    policy = {'policy_version': 1, 'name': 'ns', 'rules': rules, 'waivers': list(waivers)}
    gathered = {'sockets': sockets, 'coverage': {'complete': True, 'errors': []}}
    return ev.evaluate_host(gathered, ev.compile_policy(policy), 'web-1', [], TODAY)


def closed(selectors=None, rule_id='closed-856'):
    rule = {'id': rule_id, 'match': {'ports': [856]}, 'expect': 'closed', 'severity': 'high'}
    if selectors is not None:
        rule['namespaces'] = selectors
    return rule


EVERY = ['none', 'host', 'web', 'db', 'pod', 'netns']


@pytest.mark.parametrize('selectors, expected', [
    (None, EVERY),                                   # unscoped: drift hides nowhere
    (['host'], ['none', 'host']),                    # a socket gathered without namespaces is the host's
    (['container'], ['web', 'db', 'pod']),
    (['other'], ['netns']),
    (['!host'], ['web', 'db', 'pod', 'netns']),
    (['docker'], ['web']),
    (['container:web'], ['web']),
    (['container:cd*'], ['db']),                    # no name: the id matches
    (['kubernetes:shop/*'], ['pod']),
    (['kubernetes:1b2c*'], ['pod']),                # a pod's uid
    (['podman:web'], []),                           # the runtime must match too
    (['container', '!docker:web'], ['db', 'pod']),
    (['host', 'other'], ['none', 'host', 'netns']),
], ids=['unscoped', 'host', 'container', 'other', 'not-host', 'docker', 'by-name', 'by-id', 'pod-name', 'pod-uid',
        'wrong-runtime', 'exclude', 'two'])
def test_rules_scoped_by_namespace(selectors, expected):
    result = evaluate([closed(selectors)], [sock(856, where) for where in EVERY])
    seen = sorted(finding['namespace']['inode'] if finding['namespace'] else 0 for finding in result['findings'])
    assert seen == sorted(NAMESPACES[where]['inode'] if NAMESPACES[where] else 0 for where in expected)
    assert result['status'] == ('drift' if expected else 'compliant')


def test_findings_say_where_they_live():
    result = evaluate([closed()], [sock(856, where) for where in EVERY])
    by_inode = dict(((f['namespace'] or {}).get('inode'), f) for f in result['findings'])
    assert by_inode[None]['where'] == 'host' and by_inode[HOST_NS['inode']]['where'] == 'host'
    assert by_inode[WEB['inode']]['where'] == 'docker:web'
    assert by_inode[DB['inode']]['where'] == 'podman:' + 'cd' * 6  # no name: the id's first 12 characters
    assert by_inode[POD['inode']]['where'] == 'kubernetes:shop/cart-5d9f'
    assert by_inode[NETNS['inode']]['where'] == 'netns:4026532004'
    assert by_inode[WEB['inode']]['message'].startswith('tcp 0.0.0.0:856 in docker:web (not an IANA-assigned service)')
    # The host's own sockets read exactly as they did before namespaces were gathered.
    assert by_inode[None]['message'].startswith('tcp 0.0.0.0:856 (not an IANA-assigned service) must be closed')
    assert by_inode[HOST_NS['inode']]['message'] == by_inode[None]['message']


def test_waivers_scoped_by_namespace():
    waiver = {'rule': 'closed-856', 'reason': 'vendor agent in the web container', 'expires': '2027-03-01',
              'namespaces': ['docker:web']}
    result = evaluate([closed()], [sock(856, 'host'), sock(856, 'web'), sock(856, 'db')], [waiver])
    statuses = dict((f['where'], f['status']) for f in result['findings'])
    assert statuses == {'host': 'drift', 'docker:web': 'waived', 'podman:' + 'cd' * 6: 'drift'}


def test_a_rule_scoped_to_containers_leaves_the_host_to_others():
    rules = [closed(['host'], 'host-closed'),
             {'id': 'containers-loopback', 'namespaces': ['container'], 'match': {'ports': [856]},
              'expect': {'bind': 'loopback'}, 'severity': 'low'}]
    result = evaluate(rules, [sock(856, 'host'), sock(856, 'web')])
    assert sorted((f['rule'], f['where'], f['severity']) for f in result['findings']) == [
        ('containers-loopback', 'docker:web', 'low'), ('host-closed', 'host', 'high')]


def test_namespace_where_and_labels():
    assert namespace_where(None) == 'host'
    assert namespace_where({'inode': 5, 'host': False, 'container': {'kind': 'kubernetes', 'id': None,
                                                                     'pod_uid': 'u-1', 'name': None}}) == 'kubernetes:pod-u-1'
    entry = sock(856, 'web')
    assert socket_label(entry) == 'tcp 0.0.0.0:856 in docker:web'
    assert socket_label(entry, with_namespace=False) == 'tcp 0.0.0.0:856'


def _report(findings, previous=None):
    audit = {'status': 'drift', 'findings': findings, 'reasons': [], 'warnings': [],
             'coverage': {'complete': True, 'errors': []}, 'evaluated_on': '2027-01-20'}
    return rb.build_report([rb.host_entry('web-1', audit)], {'name': 'ns', 'sha256': 'a' * 64},
                           {'date': '2026-08-17', 'sha256': 'b' * 64},
                           generated_at=datetime.datetime(2027, 1, 20, tzinfo=datetime.timezone.utc), previous=previous)


def test_the_same_port_in_two_namespaces_is_two_findings_over_time():
    first = _report(evaluate([closed()], [sock(856, 'host')])['findings'])
    second = _report(evaluate([closed()], [sock(856, 'host'), sock(856, 'web')])['findings'], previous=first)
    changes = second['hosts'][0]['changes']
    assert changes['new'] == [{'rule': 'closed-856', 'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856,
                               'where': 'docker:web'}]
    assert changes['resolved'] == []
    # A report written before findings had ``where``: its findings were the host's, not new now.
    for entry in first['hosts']:
        for finding in entry['findings']:
            del finding['where'], finding['namespace']
    third = _report(evaluate([closed()], [sock(856, 'host')])['findings'], previous=first)
    assert third['hosts'][0]['changes']['new'] == [] and third['hosts'][0]['changes']['resolved'] == []


def test_reports_show_where():
    report = _report(evaluate([closed()], [sock(856, 'host'), sock(856, 'web')])['findings'])
    entry = report['hosts'][0]
    assert [f['where'] for f in entry['findings']] == ['host', 'docker:web']
    assert entry['findings'][1]['namespace']['container']['name'] == 'web'
    prometheus = rf.render_prometheus(report)
    assert 'portwarden_host_namespace_findings{host="web-1",where="docker:web"} 1' in prometheus
    html_text = rf.render_html(report)
    assert 'tcp 0.0.0.0:856 in docker:web' in html_text
    assert 'in docker:web' in rf.render_junit(report)
    host_only = _report(evaluate([closed()], [sock(856, 'host')])['findings'])
    assert 'portwarden_host_namespace_findings' not in rf.render_prometheus(host_only)


def test_one_compiled_policy_judges_namespaces_of_many_hosts_apart():
    """Namespace inodes repeat from host to host: what a selector decided for one host's namespace must not
    be reused for another host's namespace that has the same inode but is another container."""
    policy = {'policy_version': 1, 'name': 'ns', 'rules': [closed(['docker:web'])]}
    compiled = ev.compile_policy(policy)
    twin = dict(DB, inode=WEB['inode'])  # host b: same inode as web on host a, but a podman container
    judged = {}
    for host, namespace in (('a', WEB), ('b', twin), ('c', dict(NETNS, inode=WEB['inode']))):
        entry = dict(sock(856, 'none'), namespace=namespace)
        result = ev.evaluate_host({'sockets': [entry], 'coverage': {'complete': True, 'errors': []}}, compiled, host, [], TODAY)
        judged[host] = result['status']
    assert judged == {'a': 'drift', 'b': 'compliant', 'c': 'compliant'}


def test_a_host_only_gather_warns_about_rules_it_cannot_judge():
    rules = [closed(['container'], 'containers-closed'), closed(['!host'], 'elsewhere-closed'), closed(['host', 'docker'])]
    host_only = ev.evaluate_host({'sockets': [sock(856, 'none')], 'coverage': {'complete': True, 'errors': []}},
                                 ev.compile_policy({'policy_version': 1, 'name': 'ns', 'rules': rules}), 'web-1', [], TODAY)
    assert host_only['warnings'] == [
        "rules containers-closed, elsewhere-closed are only about namespaces other than the host's, which this gather "
        "did not read (namespaces: host; use namespaces: all)"]
    one = ev.evaluate_host({'sockets': [sock(856, 'none')], 'coverage': {'complete': True, 'errors': []}},
                           ev.compile_policy({'policy_version': 1, 'name': 'ns', 'rules': rules[:1]}), 'web-1', [], TODAY)
    assert one['warnings'] == ["rule containers-closed is only about namespaces other than the host's, which this gather "
                               "did not read (namespaces: host; use namespaces: all)"]
    everywhere = evaluate(rules, [sock(856, 'host')])
    everywhere_coverage = {'complete': True, 'errors': [], 'namespaces': {'mode': 'all'}}
    result = ev.evaluate_host({'sockets': [sock(856, 'host')], 'coverage': everywhere_coverage},
                              ev.compile_policy({'policy_version': 1, 'name': 'ns', 'rules': rules}), 'web-1', [], TODAY)
    assert result['warnings'] == [] and everywhere['status'] == 'drift'
