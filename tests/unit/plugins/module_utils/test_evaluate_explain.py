"""portwarden explain's core: one socket's verdict in plain words, from the evaluation's own pieces.

Each rule says why it matched or not (host scope, protocol, port, ephemeral, family, via, namespace, bind), what
it found, every waiver naming a finding's rule says why it covers or not, and the decision is the socket's worst
finding. That the decision is the evaluation's for every socket is the property test's (test_policy_properties).
"""

import datetime

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_explain as ex
from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev

TODAY = datetime.date(2027, 1, 20)
SSHD = {'pid': 812, 'name': 'sshd', 'user': 'root', 'uid': 0, 'exe': '/usr/sbin/sshd', 'unit': 'ssh.service'}
ROGUE = {'pid': 666, 'name': 'sshd', 'user': 'root', 'uid': 0, 'exe': '/tmp/sshd', 'unit': None}


def sock(port=22, address='0.0.0.0', protocol='tcp', processes=(SSHD,), ephemeral=False, v6only=None, namespace=None):
    entry = {'protocol': protocol, 'family': 'ipv6' if ':' in address else 'ipv4', 'address': address, 'port': port,
             'v6only': v6only, 'ephemeral': ephemeral, 'inode': port, 'processes': list(processes)}
    if namespace is not None:
        entry['namespace'] = namespace
    return entry


def explain(rules, entry, waivers=(), default='allow', host='web-1', groups=()):
    compiled = ev.compile_policy({'policy_version': 1, 'name': 't', 'default': default, 'rules': list(rules),
                                  'waivers': list(waivers)})
    return ex.explain_socket(entry, compiled, host, groups, TODAY, {'complete': True, 'errors': []})


def why(explanation):
    return [(step['rule'], step['outcome'], step['why']) for step in explanation['rules']]


def test_every_rule_says_why_it_matched_or_not():
    container = {'inode': 4026532000, 'host': False, 'pid': 5,
                 'container': {'kind': 'docker', 'id': 'ab' * 32, 'pod_uid': None, 'name': 'web'}}
    rules = [
        {'id': 'udp-only', 'match': {'protocols': ['udp']}, 'expect': 'closed'},
        {'id': 'other-port', 'match': {'ports': ['855-859', 443]}, 'expect': 'closed'},
        {'id': 'db-hosts', 'hosts': ['db-*', 'group:databases'], 'match': {}, 'expect': 'closed'},
        {'id': 'v6', 'match': {'families': ['ipv6']}, 'expect': 'closed'},
        {'id': 'nat-only', 'match': {'via': ['nat']}, 'expect': 'closed'},
        {'id': 'host-ns', 'namespaces': ['host'], 'match': {}, 'expect': 'closed'},
        {'id': 'loopback', 'match': {'bind': ['loopback']}, 'expect': 'closed'},
        {'id': 'ssh-sshd', 'match': {'ports': [22]}, 'expect': {'processes': ['sshd'], 'exe': ['/usr/sbin/*']}},
        {'id': 'ssh-bind', 'match': {'ports': [22]}, 'expect': {'bind': 'loopback'}, 'severity': 'high'},
    ]
    explanation = explain(rules, sock(namespace=container), groups=['web'])
    assert why(explanation) == [
        ('udp-only', 'not matched', 'it is about udp only, not tcp'),
        ('other-port', 'not matched', 'its tcp ports (443, 855-859) do not include 22'),
        ('db-hosts', 'not matched', 'its hosts (db-*, group:databases) do not take web-1 (groups: web)'),
        ('v6', 'not matched', 'the socket takes ipv4 and the rule is about families ipv6'),
        ('nat-only', 'not matched', 'the socket is reached via listen and the rule is about via nat'),
        ('host-ns', 'not matched', 'the socket is in docker:web and the rule is about namespaces host'),
        ('loopback', 'not matched', 'the socket is bound to any addresses and the rule is about bind loopback'),
        ('ssh-sshd', 'allowed', 'it matches and the socket satisfies its expect (exe: /usr/sbin/*; processes: sshd)'),
        ('ssh-bind', 'drift', 'it matches and the socket is bound to any addresses; allowed: loopback'),
    ]
    assert explanation['decision'] == 'drift' and explanation['decided_by'] == ['ssh-bind']
    assert explanation['socket']['where'] == 'docker:web'
    assert [f['rule'] for f in explanation['findings']] == ['ssh-bind']


def test_an_ephemeral_socket_and_the_default():
    explanation = explain([{'id': 'all', 'match': {'protocols': ['udp']}, 'expect': 'closed'}],
                          sock(50000, protocol='udp', ephemeral=True), default='deny')
    assert why(explanation) == [('all', 'not matched', 'the socket is an ephemeral UDP port (most likely a client) and '
                                                       'the rule does not set include_ephemeral')]
    assert explanation['default'] == {'policy': 'deny', 'applies': False,
                                      'why': 'deny, which leaves ephemeral UDP sockets (most likely clients) alone'}
    assert explanation['decision'] == 'allowed' and explanation['decided_by'] == []
    explanation = explain([], sock(8080), default='deny')
    assert explanation['default']['applies'] is True
    assert explanation['decision'] == 'drift' and explanation['decided_by'] == ['default']
    assert explain([], sock(8080))['default']['why'] == 'allow: a socket no rule forbids is allowed'


def test_unknown_when_the_holders_are_not_known():
    explanation = explain([{'id': 'ssh-sshd', 'match': {'ports': [22]}, 'expect': {'processes': ['sshd']}}],
                          sock(processes=()))
    assert why(explanation) == [('ssh-sshd', 'unknown', 'it matches, but no owning process is known, so the allowed '
                                                        'processes cannot be checked')]
    assert explanation['decision'] == 'unknown'
    assert explanation['socket']['processes'] == []


def test_each_waiver_says_why_it_covers_or_not():
    closed = {'id': 'closed', 'match': {'ports': [22]}, 'expect': 'closed'}
    waivers = [
        {'rule': 'other', 'reason': 'r', 'expires': '2027-12-31'},
        {'rule': 'closed', 'hosts': ['legacy-*'], 'reason': 'r', 'ticket': 'T-1', 'expires': '2027-12-31'},
        {'rule': 'closed', 'protocols': ['udp'], 'reason': 'r', 'ticket': 'T-2', 'expires': '2027-12-31'},
        {'rule': 'closed', 'ports': [23, 25], 'reason': 'r', 'ticket': 'T-3', 'expires': '2027-12-31'},
        {'rule': 'closed', 'namespaces': ['container'], 'reason': 'r', 'ticket': 'T-4', 'expires': '2027-12-31'},
        {'rule': 'closed', 'reason': 'r', 'ticket': 'T-5', 'expires': '2027-01-01'},
        {'rule': 'closed', 'exe': ['/usr/sbin/sshd'], 'reason': 'r', 'ticket': 'T-6', 'expires': '2027-12-31'},
        {'rule': 'closed', 'exe': ['/usr/sbin/sshd', '/tmp/*'], 'units': ['*'], 'reason': 'r', 'ticket': 'T-7',
         'expires': '2027-12-31'},
        {'rule': 'closed', 'exe': ['/tmp/*'], 'reason': 'r', 'ticket': 'T-8', 'expires': '2027-12-31'},
        {'rule': 'closed', 'reason': 'r', 'ticket': 'T-9', 'expires': '2027-12-31'},
        {'rule': 'closed', 'reason': 'r', 'ticket': 'T-10', 'expires': '2027-12-31'},
    ]
    waivers[0]['rule'] = 'closed2'
    rules = [closed, dict(closed, id='closed2', match={'ports': [23]})]
    explanation = explain(rules, sock(processes=(SSHD, ROGUE)), waivers)
    (finding,) = explanation['findings']
    assert [(step['ticket'], step['verdict'], step['why']) for step in finding['waivers']] == [
        ('T-1', 'hosts', 'its hosts (legacy-*) do not take web-1 (no groups)'),
        ('T-2', 'protocols', 'it is about udp only'),
        ('T-3', 'ports', 'its tcp ports (23, 25) do not include 22'),
        ('T-4', 'namespaces', 'its namespaces (container) do not take host'),
        ('T-5', 'expired', 'it expired on 2027-01-01'),
        ('T-6', 'not_covered', 'it is bound to exe /usr/sbin/sshd and does not cover sshd[666] with executable /tmp/sshd; '
                               'allowed executables: /usr/sbin/sshd'),
        ('T-7', 'not_covered', 'it is bound to exe /usr/sbin/sshd, /tmp/*; units * and does not cover sshd[666] in unit '
                               '(none); allowed units: *'),
        ('T-8', 'not_covered', 'it is bound to exe /tmp/* and does not cover sshd[812] with executable /usr/sbin/sshd; '
                               'allowed executables: /tmp/*'),
        ('T-9', 'covers', 'it covers the finding until 2027-12-31'),
        ('T-10', 'not checked', 'an earlier waiver covers the finding'),
    ]
    assert finding['status'] == 'waived' and finding['waiver']['ticket'] == 'T-9'
    assert explanation['decision'] == 'waived'
    lines = ex.explain_lines(explanation)
    assert lines[-1] == 'decision: waived (decided by closed)'
    assert '  waiver (T-9): it covers the finding until 2027-12-31' in lines
    bound = explain(rules, sock(), [{'rule': 'closed', 'exe': ['/usr/sbin/*'], 'reason': 'r', 'expires': '2027-12-31'}])
    assert bound['findings'][0]['waivers'][0]['why'] == ('it covers the finding until 2027-12-31, bound to exe /usr/sbin/*, '
                                                         'and every holder matches')
    assert ex.explain_lines(bound)[-2] == '  waiver: ' + bound['findings'][0]['waivers'][0]['why']


def test_the_lines_in_full():
    explanation = explain([{'id': 'ssh-sshd', 'match': {'ports': [22]}, 'expect': {'processes': ['sshd']}}],
                          sock(processes=(ROGUE,)))
    assert ex.explain_lines(explanation) == [
        'tcp 0.0.0.0:22 on web-1 (no groups), policy t, evaluated on 2027-01-20',
        '  held by: sshd[666] (user root, exe /tmp/sshd, unit none)',
        'rules, in policy order:',
        '  rule ssh-sshd: allowed: it matches and the socket satisfies its expect (processes: sshd)',
        'default: allow: a socket no rule forbids is allowed',
        'decision: allowed (allowed by ssh-sshd)',
    ]
    empty = explain([], sock(processes=()))
    assert ex.explain_lines(empty)[1:4] == ['  held by: no known process', 'rules, in policy order:',
                                            '  (the policy has no rules)']
    assert ex.explain_lines(empty)[-1] == 'decision: allowed (no rule forbids it)'


@pytest.mark.parametrize('findings, decision', [
    ([], 'allowed'),
    ([{'status': 'waived'}], 'waived'),
    ([{'status': 'waived'}, {'status': 'unknown'}], 'unknown'),
    ([{'status': 'unknown'}, {'status': 'drift'}, {'status': 'waived'}], 'drift'),
])
def test_the_decision_is_the_worst_finding(findings, decision):
    assert ex.socket_decision(findings) == decision


def test_select_sockets():
    gathered = {'sockets': [sock(22), sock(22, protocol='udp'), sock(22, address='::'), sock(80)]}
    assert len(ex.select_sockets(gathered)) == 4
    assert len(ex.select_sockets(gathered, port=22)) == 3
    assert len(ex.select_sockets(gathered, 'udp', 22)) == 1
    assert ex.select_sockets(gathered, port=22, address='::') == [gathered['sockets'][2]]


def test_mismatch_names_the_key_that_failed():
    def rule(**match):
        return ev.Rule({'id': 'r', 'match': match, 'expect': 'closed'})
    assert rule().mismatch(sock()) is None
    assert rule(bind=['loopback']).mismatch(sock()) == 'bind'
    assert rule(families=['ipv6']).mismatch(sock()) == 'families'
    assert rule(via=['nat']).mismatch(sock()) == 'via'
    assert rule().mismatch(sock(protocol='udp', ephemeral=True)) == 'include_ephemeral'
    assert ev.Rule({'id': 'r', 'namespaces': ['container'], 'match': {}, 'expect': 'closed'}).mismatch(sock()) == 'namespaces'


def test_every_problem_of_a_socket_is_in_its_finding():
    rule = {'id': 'ssh', 'match': {'ports': [22]}, 'expect': {'exe': ['/usr/sbin/sshd'], 'bind': 'loopback'}}
    (finding,) = explain([rule], sock(processes=(SSHD, ROGUE)))['findings']
    assert finding['message'] == (
        'tcp 0.0.0.0:22 (IANA: ssh) is bound to any addresses; allowed: loopback; is held by sshd[666] with executable '
        '/tmp/sshd; allowed executables: /usr/sbin/sshd (sshd[812], sshd[666] as root); rule ssh')


# ---- published ports (NAT exposures) ----------------------------------------------------------------------

WEB = {'inode': 4026532001, 'host': False, 'pid': 2001,
       'container': {'kind': 'docker', 'id': 'ab' * 32, 'pod_uid': None, 'name': 'web'}}
NGINX = {'pid': 2001, 'name': 'nginx', 'user': 'root', 'uid': 0, 'exe': '/usr/sbin/nginx', 'unit': None}


def published(port=856, port_end=None, hooks=('prerouting', 'output'), processes=(NGINX,)):
    return {'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': port,
            'port_end': port if port_end is None else port_end, 'action': 'dnat', 'hooks': list(hooks),
            'interface': '!docker0', 'target': {'address': '172.17.0.2', 'port': 80, 'port_end': 80},
            'source': 'iptables-nft', 'table': 'ip nat', 'chain': 'DOCKER',
            'rule': '-A DOCKER ! -i docker0 -p tcp -m tcp --dport %d -j DNAT --to-destination 172.17.0.2:80' % port,
            'conditions': ['dst-type LOCAL'],
            'owner': {'kind': 'namespace' if processes else 'unknown', 'namespace': WEB if processes else None,
                      'processes': list(processes), 'reason': None if processes else 'no network namespace holds it'}}


def explain_published(rules, exposure, waivers=(), default='allow', host='docker-1', groups=()):
    compiled = ev.compile_policy({'policy_version': 1, 'name': 't', 'default': default, 'rules': list(rules),
                                  'waivers': list(waivers)})
    return ex.explain_exposure(exposure, compiled, host, groups, TODAY, {'complete': True, 'errors': []})


UNASSIGNED = {'id': 'iana-unassigned-closed', 'match': {'ports': ['iana:unassigned']}, 'expect': 'closed',
              'severity': 'high'}


def test_a_published_856_is_explained_rule_by_rule():
    rules = [
        {'id': 'listen-only', 'match': {'via': ['listen']}, 'expect': 'closed'},
        {'id': 'web', 'match': {'ports': [80, 443]}, 'expect': 'closed'},
        {'id': 'udp', 'match': {'protocols': ['udp']}, 'expect': 'closed'},
        UNASSIGNED,
    ]
    explanation = explain_published(rules, published())
    assert why(explanation) == [
        ('listen-only', 'not matched', 'the published port is reached via nat and the rule is about via listen'),
        ('web', 'not matched', 'its tcp ports (80, 443) do not include 856'),
        ('udp', 'not matched', 'it is about udp only, not tcp'),
        ('iana-unassigned-closed', 'drift', 'it matches and expects the port closed'),
    ]
    assert explanation['decision'] == 'drift' and explanation['decided_by'] == ['iana-unassigned-closed']
    assert explanation['socket']['label'] == 'tcp 0.0.0.0:856 published by DNAT to docker:web 172.17.0.2:80'
    assert explanation['published']['chain'] == 'DOCKER' and explanation['published']['owner'] == 'namespace'
    lines = ex.explain_lines(explanation)
    assert lines[1] == ('  published by iptables-nft ip nat chain DOCKER (prerouting, output): -A DOCKER ! -i docker0 '
                        '-p tcp -m tcp --dport 856 -j DNAT --to-destination 172.17.0.2:80')
    assert lines[2].startswith('  answered by: nginx[2001] (user root, exe /usr/sbin/nginx')
    assert lines[-1] == 'decision: drift (decided by iana-unassigned-closed)'


def test_a_published_range_names_the_port_each_rule_and_the_default_meet():
    rules = [{'id': 'nodeports-low', 'match': {'ports': ['30000-30999'], 'via': ['nat']}, 'expect': {}},
             {'id': 'web', 'match': {'ports': [30500]}, 'expect': {'processes': ['nginx']}}]
    explanation = explain_published(rules, published(30000, 32767, processes=()), default='deny')
    assert why(explanation) == [
        ('nodeports-low', 'allowed', 'it matches at port 30000 and the published port satisfies its expect (no '
                                     'conditions)'),
        ('web', 'unknown', 'it matches at port 30500 and what its expect needs is not known: see its finding'),
    ]
    assert explanation['default'] == {'policy': 'deny', 'applies': True,
                                      'why': 'deny: no rule matched port 31000 of the published range, so it is drift'}
    assert explanation['decision'] == 'drift' and explanation['decided_by'] == ['default']
    assert explanation['socket']['port'] == 30000 and explanation['socket']['port_end'] == 32767
    assert ex.explain_lines(explanation)[2] == '  answered by: owner unknown; no network namespace holds it'


def test_a_process_bound_waiver_on_a_published_port():
    waiver = {'rule': 'iana-unassigned-closed', 'ports': [856], 'processes': ['nginx'], 'reason': 'vendor',
              'ticket': 'V-1', 'expires': '2099-12-31'}
    explanation = explain_published([UNASSIGNED], published(), waivers=[waiver])
    assert explanation['decision'] == 'waived'
    [finding] = explanation['findings']
    assert [step['verdict'] for step in finding['waivers']] == ['covers']
    explanation = explain_published([UNASSIGNED], published(processes=()), waivers=[waiver])
    assert explanation['decision'] != 'waived'
    assert [step['verdict'] for step in explanation['findings'][0]['waivers']] == ['unknown']


@pytest.mark.parametrize('exposure', [published(), published(856, 860), published(30000, 32767, processes=()),
                                      published(22, hooks=('output',)), published(8080)])
@pytest.mark.parametrize('default', ['allow', 'deny'])
def test_explained_findings_are_the_evaluations(exposure, default):
    rules = [UNASSIGNED, {'id': 'ssh', 'match': {'ports': [22], 'bind': ['loopback']}, 'expect': {'processes': ['sshd']}},
             {'id': 'high', 'match': {'ports': ['30000-31000']}, 'expect': {'processes': ['kube-proxy']}},
             {'id': 'alt-http', 'match': {'ports': [8080], 'via': ['nat']}, 'expect': {}}]
    policy = {'policy_version': 1, 'name': 't', 'default': default, 'rules': rules, 'waivers': []}
    compiled = ev.compile_policy(policy)
    gathered = {'sockets': [], 'exposures': [exposure],
                'coverage': {'complete': True, 'errors': [], 'notes': [],
                             'nat': {'mode': 'auto', 'sources': {'iptables-nft/ipv4': 'read'}, 'tables': ['ip nat'],
                                     'unreachable': [], 'exposures': 1}}}
    result = ev.evaluate_host(gathered, compiled, 'docker-1', [], TODAY)
    explanation = ex.explain_exposure(exposure, compiled, 'docker-1', [], TODAY, gathered['coverage'])
    assert sorted((f['rule'], f['status'], f['message']) for f in explanation['findings']) == \
        sorted((f['rule'], f['status'], f['message']) for f in result['findings'])
    assert explanation['decision'] == ex.socket_decision(result['findings'])
    matched = set(step['rule'] for step in explanation['rules'] if step['matched'])
    assert set(f['rule'] for f in explanation['findings']) - {'default'} <= matched


def test_select_exposures():
    gathered = {'exposures': [published(856), published(30000, 32767)]}
    assert [e['port'] for e in ex.select_exposures(gathered, port=31000)] == [30000]
    assert [e['port'] for e in ex.select_exposures(gathered, 'udp')] == []
    assert len(ex.select_exposures(gathered)) == 2 and ex.select_exposures({'sockets': []}) == []
