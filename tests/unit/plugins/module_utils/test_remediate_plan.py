"""Remediate step: planning from findings, safety rails, and verification after the changes."""

import copy

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils import remediate_plan as rp


def proc(pid=4242, name='rogue', unit=None, start_time=1000, exe='/opt/rogue'):
    return {'pid': pid, 'name': name, 'user': 'root', 'uid': 0, 'exe': exe, 'unit': unit, 'start_time': start_time}


def finding(port=856, protocol='tcp', address='0.0.0.0', family='ipv4', rule='closed', status='drift', processes=None):
    return {'rule': rule, 'severity': 'high', 'status': status, 'protocol': protocol, 'family': family,
            'address': address, 'port': port, 'service': None, 'processes': [proc()] if processes is None else processes,
            'waived': status == 'waived', 'waiver': None, 'message': '%s %s:%d must be closed' % (protocol, address, port)}


def audit(*findings, status='drift', reasons=()):
    result = {'host': 'h1', 'status': status, 'reasons': list(reasons), 'findings': list(findings), 'warnings': [],
              'summary': None, 'coverage': {'complete': not reasons}}
    return ev.summarize_result(result)


@pytest.mark.parametrize('value, fallback, expected', [
    (None, 'none', 'none'), (None, 'kill', 'kill'), (True, 'none', 'firewall'), (False, 'kill', 'none'),
    ('service', 'none', 'service'), ('none', 'firewall', 'none'),
])
def test_strategy_of(value, fallback, expected):
    assert rp.strategy_of(value, fallback) == expected


@pytest.mark.parametrize('address, family, expected', [
    ('0.0.0.0', 'ipv4', {'family': 'ipv4', 'address': None}),
    ('::', 'ipv6', {'family': None, 'address': None}),  # may be dual-stack: both families
    ('127.0.0.1', 'ipv4', {'family': 'ipv4', 'address': '127.0.0.1'}),
    ('::1', 'ipv6', {'family': 'ipv6', 'address': '::1'}),
    ('10.1.2.3', 'ipv4', {'family': 'ipv4', 'address': '10.1.2.3'}),
    ('::ffff:10.1.2.3', 'ipv6', {'family': 'ipv4', 'address': '10.1.2.3'}),
])
def test_block_for_a_socket(address, family, expected):
    block = rp.block_for(finding(address=address, family=family))
    assert {'family': block['family'], 'address': block['address']} == expected
    assert (block['protocol'], block['port'], block['rule']) == ('tcp', 856, 'closed')


@pytest.mark.parametrize('block, address, family, covered', [
    ({'family': None, 'address': None}, '::', 'ipv6', True),
    ({'family': 'ipv4', 'address': None}, '0.0.0.0', 'ipv4', True),
    ({'family': 'ipv4', 'address': None}, '::', 'ipv6', False),  # dual-stack socket, only IPv4 blocked
    ({'family': 'ipv6', 'address': None}, '::1', 'ipv6', True),
    ({'family': 'ipv4', 'address': '127.0.0.1'}, '127.0.0.1', 'ipv4', True),
    ({'family': 'ipv4', 'address': '127.0.0.1'}, '0.0.0.0', 'ipv4', False),  # one address does not close the port
    ({'family': 'ipv4', 'address': '10.0.0.1'}, '127.0.0.1', 'ipv4', False),
])
def test_block_covers(block, address, family, covered):
    block = dict(block, protocol='tcp', port=856, rule='closed')
    assert rp.block_covers(block, finding(address=address, family=family)) is covered
    assert rp.block_covers(dict(block, port=857), finding(address=address, family=family)) is False
    assert rp.block_covers(dict(block, protocol='udp'), finding(address=address, family=family)) is False


def test_nothing_is_planned_unless_a_rule_or_the_default_opts_in():
    result = audit(finding())
    plan = rp.plan_remediation(result, {'closed': None}, 'none')
    assert plan == {'blocks': [], 'published': [], 'services': [], 'processes': [], 'skipped': None, 'namespaces': {}}
    assert 'remediation' not in result['findings'][0]


@pytest.mark.parametrize('strategies, default, kind', [
    ({'closed': 'firewall'}, 'none', 'blocks'),
    ({'closed': True}, 'none', 'blocks'),
    ({'closed': None}, 'firewall', 'blocks'),
    ({'closed': 'kill'}, 'firewall', 'processes'),
    ({'closed': None}, 'kill', 'processes'),
])
def test_strategy_per_rule_with_role_default(strategies, default, kind):
    plan = rp.plan_remediation(audit(finding()), strategies, default)
    assert [key for key in ('blocks', 'services', 'processes') if plan[key]] == [kind]


def test_service_strategy_names_the_unit_and_refuses_sockets_outside_a_service():
    served = finding(processes=[proc(unit='rogue.service'), proc(pid=4243, unit='rogue.service')])
    loose = finding(port=857, processes=[proc(pid=5000, unit='session-3.scope')])
    result = audit(served, loose)
    plan = rp.plan_remediation(result, {'closed': 'service'})
    assert plan['services'] == [{'unit': 'rogue.service', 'rules': ['closed']}]
    notes = dict((f['port'], f['remediation']) for f in result['findings'])
    assert notes[856]['status'] == rp.PLANNED and notes[856]['target'] == 'rogue.service'
    assert notes[857]['status'] == rp.UNAVAILABLE and 'session-3.scope' in notes[857]['reason']


def test_kill_strategy_carries_the_identity_and_needs_it():
    result = audit(finding(), finding(port=857, processes=[proc(pid=77, start_time=None)]),
                   finding(port=858, processes=[]))
    plan = rp.plan_remediation(result, {}, 'kill')
    assert plan['processes'] == [{'pid': 4242, 'start_time': 1000, 'exe': '/opt/rogue', 'name': 'rogue', 'rule': 'closed'}]
    notes = dict((f['port'], f['remediation']) for f in result['findings'])
    assert notes[857]['status'] == rp.UNAVAILABLE and 'start time' in notes[857]['reason']
    assert notes[858]['status'] == rp.UNAVAILABLE and 'no owning process' in notes[858]['reason']


@pytest.mark.parametrize('status, reasons', [('unknown', ['gather failed: boom']), ('drift', ['partial gather: x'])])
def test_no_remediation_on_a_host_whose_verdict_is_unknown_or_partial(status, reasons):
    result = audit(finding(), status=status, reasons=reasons)
    plan = rp.plan_remediation(result, {}, 'firewall')
    assert plan['blocks'] == [] and plan['skipped'].startswith('no remediation on a host whose verdict is unknown')
    assert reasons[0] in plan['skipped']


def test_the_connection_port_and_its_listeners_are_protected():
    gathered = {'sockets': [{'protocol': 'tcp', 'port': 2222, 'processes': [proc(pid=300, name='sshd')]},
                            {'protocol': 'tcp', 'port': 2222, 'processes': [proc(pid=301, name='dropbear')]}]}
    protection = rp.Protection.for_host(gathered, [2222], ['sshd'])
    ssh_port = finding(port=2222, processes=[proc(pid=301, name='dropbear')])
    same_daemon = finding(port=856, processes=[proc(pid=301, name='dropbear')])  # also listens on the SSH port
    other = finding(port=857)
    result = audit(ssh_port, same_daemon, other)
    plan = rp.plan_remediation(copy.deepcopy(result), {}, 'firewall', protection)
    assert [block['port'] for block in plan['blocks']] == [856, 857]  # a block on 856 leaves the SSH port alone
    plan = rp.plan_remediation(result, {}, 'kill', protection)
    notes = dict((f['port'], f['remediation']) for f in result['findings'])
    assert notes[2222]['status'] == rp.PROTECTED and 'live Ansible connection' in notes[2222]['reason']
    assert notes[856]['status'] == rp.PROTECTED and 'dropbear[301]' in notes[856]['reason']
    assert [target['pid'] for target in plan['processes']] == [4242]


@pytest.mark.parametrize('process, protected', [
    (proc(pid=1, name='init'), True),
    (proc(pid=200, name='sshd', exe='/usr/sbin/sshd'), True),
    (proc(pid=200, name='sshd', exe='/usr/sbin/sshd (deleted)'), True),  # replaced by an upgrade, still the daemon
    (proc(pid=200, name='sshd', exe=None), True),  # the executable cannot be read: taken at its name
    (proc(pid=200, name='sshd'), False),  # /opt/rogue: the name alone protects nothing
    (proc(pid=200, name='sshd', exe='/tmp/usr/sbin/sshd'), False),
    (proc(pid=200, name='sshd', exe='/usr/sbin/../../tmp/sshd'), False),
    (proc(pid=200, name='x', exe='/opt/rogue', unit='systemd-resolved.service'), True),  # a system unit is evidence
    (proc(pid=200, name='x', exe='/opt/rogue', unit='/pwtest.slice/systemd-resolved.service'), False),
    (proc(pid=201, name='systemd-resolve', exe='/usr/lib/systemd/systemd-resolved'), True),
    (proc(pid=202, name='short', exe='/usr/bin/containerd-shim-runc-v2'), True),  # matched on the executable's name
    (proc(pid=203, name='rogue'), False),
])
def test_protected_processes(process, protected):
    protection = rp.Protection(names=['sshd', 'systemd-*', 'containerd-shim*'])
    assert (protection.process_reason(process) is not None) is protected


def test_waived_and_unknown_findings_are_never_remediated():
    result = audit(finding(status='waived'), finding(port=857, status='unknown'))
    plan = rp.plan_remediation(result, {}, 'firewall')
    assert plan['blocks'] == [] and all('remediation' not in f for f in result['findings'])


def test_one_block_per_socket_even_with_several_rules():
    result = audit(finding(rule='a'), finding(rule='b'), finding(protocol='udp', rule='a'))
    plan = rp.plan_remediation(result, {}, 'firewall')
    assert [(b['protocol'], b['port'], b['rule']) for b in plan['blocks']] == [('tcp', 856, 'a'), ('udp', 856, 'a')]


def _planned(strategy='firewall', *findings):
    result = audit(*(findings or (finding(),)))
    rp.plan_remediation(result, {}, strategy)
    return result


def test_verify_firewall_block_live_marks_remediated_and_the_host_compliant():
    before = _planned()
    rp.apply_outcomes(before, {'blocks': {('host', 'tcp', 856, 'ipv4', ''): (rp.APPLIED, 'added')}, 'services': {}, 'processes': {}})
    after = audit(finding())  # the listener still listens: the firewall closed it
    live = [{'protocol': 'tcp', 'port': 856, 'family': 'ipv4', 'address': None, 'rule': 'closed'}]
    final = rp.verify_remediation(before, after, live, actions=['a'])
    [closed] = final['findings']
    assert closed['status'] == 'remediated' and closed['remediation']['status'] == rp.VERIFIED
    assert final['status'] == 'compliant'
    assert final['summary']['remediated'] == 1 and final['summary']['drift'] == 0
    assert final['remediation'] == {'actions': ['a'], 'skipped': None, 'verified': True}


def test_verify_without_the_block_live_stays_drift_not_verified():
    before = _planned()
    rp.apply_outcomes(before, {'blocks': {('host', 'tcp', 856, 'ipv4', ''): (rp.APPLIED, 'added')}, 'services': {}, 'processes': {}})
    final = rp.verify_remediation(before, audit(finding()), [], actions=[])
    assert final['status'] == 'drift'
    assert final['findings'][0]['remediation']['status'] == rp.NOT_VERIFIED


def test_verify_a_killed_process_lists_the_closed_finding():
    before = _planned('kill')
    rp.apply_outcomes(before, {'blocks': {}, 'services': {}, 'processes': {4242: (rp.APPLIED, 'ended by SIGTERM')}})
    final = rp.verify_remediation(before, audit(status='compliant'), [], actions=[])
    [closed] = final['findings']
    assert closed['status'] == 'remediated' and 'no longer listens' in closed['message']
    assert final['status'] == 'compliant' and final['summary']['remediated'] == 1


def test_a_protected_or_failed_outcome_keeps_the_drift():
    before = _planned('kill', finding(), finding(port=857, processes=[proc(pid=99)]))
    rp.apply_outcomes(before, {'blocks': {}, 'services': {}, 'processes': {
        4242: (rp.PROTECTED, 'runs this Ansible connection'), 99: (rp.FAILED, 'mismatch')}})
    final = rp.verify_remediation(before, audit(finding(), finding(port=857, processes=[proc(pid=99)])), [], actions=[])
    assert final['status'] == 'drift'
    assert sorted(f['remediation']['status'] for f in final['findings']) == [rp.FAILED, rp.PROTECTED]


def test_a_host_reporting_nothing_for_a_change_is_failed_not_applied():
    before = _planned()
    rp.apply_outcomes(before, {'blocks': {}, 'services': {}, 'processes': {}})
    assert before['findings'][0]['remediation']['status'] == rp.FAILED


WEB_NS = {'inode': 4026532001, 'host': False, 'pid': 2001,
          'container': {'kind': 'docker', 'id': 'ab' * 32, 'pod_uid': None, 'name': 'web'}}


def _in_web(item):
    return dict(item, where='docker:web', namespace=WEB_NS)


def test_a_container_finding_is_blocked_in_the_container_namespace():
    result = audit(finding(), _in_web(finding()))
    plan = rp.plan_remediation(result, {}, 'firewall')
    assert [(b['where'], b['protocol'], b['port']) for b in plan['blocks']] == [
        ('docker:web', 'tcp', 856), ('host', 'tcp', 856)]
    assert plan['namespaces'] == {'docker:web': {'inode': 4026532001, 'pid': 2001}}
    targets = sorted(f['remediation']['target'] for f in result['findings'])
    assert targets == ['tcp 0.0.0.0 port 856', 'tcp 0.0.0.0 port 856 in docker:web']
    assert rp.module_block(plan['blocks'][0]) == {'protocol': 'tcp', 'port': 856, 'family': 'ipv4', 'rule': 'closed'}
    assert rp.module_block(dict(plan['blocks'][0], family=None)) == {'protocol': 'tcp', 'port': 856, 'rule': 'closed'}


def test_a_container_finding_without_its_namespace_is_not_blocked_on_the_host():
    item = dict(finding(), where='docker:web', namespace=None)
    result = audit(item)
    plan = rp.plan_remediation(result, {}, 'firewall')
    assert plan['blocks'] == [] and result['findings'][0]['remediation']['status'] == rp.UNAVAILABLE


def test_a_block_covers_only_its_own_namespace():
    host_block = {'protocol': 'tcp', 'port': 856, 'family': 'ipv4', 'address': None, 'rule': 'closed', 'where': 'host'}
    web_block = dict(host_block, where='docker:web')
    assert rp.block_covers(host_block, finding()) and not rp.block_covers(host_block, _in_web(finding()))
    assert rp.block_covers(web_block, _in_web(finding())) and not rp.block_covers(web_block, finding())


def test_verify_tells_the_same_socket_in_two_namespaces_apart():
    before = audit(finding(), _in_web(finding()))
    rp.plan_remediation(before, {}, 'firewall')
    rp.apply_outcomes(before, {'blocks': {('docker:web', 'tcp', 856, 'ipv4', ''): (rp.APPLIED, 'added'),
                                          ('host', 'tcp', 856, 'ipv4', ''): (rp.FAILED, 'nft failed')},
                               'services': {}, 'processes': {}})
    live = [{'protocol': 'tcp', 'port': 856, 'family': 'ipv4', 'address': None, 'rule': 'closed', 'where': 'docker:web'}]
    final = rp.verify_remediation(before, audit(finding(), _in_web(finding())), live, actions=[])
    statuses = sorted((f.get('where', 'host'), f['status'], f['remediation']['status']) for f in final['findings'])
    assert statuses == [('docker:web', 'remediated', rp.VERIFIED), ('host', 'drift', rp.FAILED)]
    assert final['status'] == 'drift'


USER_SSH = '/user.slice/user-1000.slice/user@1000.service/app.slice/ssh.service'


@pytest.mark.parametrize('unit, slices, words', [
    (USER_SSH, None, 'user manager user@1000.service'),
    (USER_SSH, ['system.slice', 'user.slice'], 'user manager user@1000.service'),
    ('/system.slice/docker-%s.scope/system.slice/ssh.service' % ('a' * 64), None, 'inside docker-'),
    ('/lxc.payload.c1/system.slice/ssh.service', None, 'not a systemd unit of this host'),
    ('/pwtest.slice/ssh.service', None, 'pwtest.slice, not in system.slice'),
    ('/ssh.service', None, 'the root slice, not in system.slice'),
])
def test_the_service_strategy_refuses_a_unit_that_is_not_a_system_service(unit, slices, words):
    result = audit(finding(processes=[proc(unit=unit)]))
    plan = rp.plan_remediation(result, {'closed': 'service'}, service_slices=slices)
    assert plan['services'] == []
    note = result['findings'][0]['remediation']
    assert note['status'] == rp.PROTECTED and words in note['reason'], note
    assert 'the service strategy stops only' in note['reason']


def test_a_service_in_an_explicitly_allowed_slice_is_planned_by_its_name():
    result = audit(finding(processes=[proc(unit='/pwtest.slice/sub.slice/rogue.service')]))
    plan = rp.plan_remediation(result, {'closed': 'service'}, service_slices=['system.slice', 'pwtest.slice'])
    assert plan['services'] == [{'unit': 'rogue.service', 'rules': ['closed']}]
    assert result['findings'][0]['remediation']['target'] == 'rogue.service'


def test_the_service_strategy_never_stops_the_unit_a_protected_process_runs_in():
    sshd = proc(pid=300, name='sshd', exe='/usr/sbin/sshd', unit='ssh.service')
    rogue = proc(pid=301, name='rogue', unit='ssh.service')  # root put a rogue in ssh.service's cgroup
    gathered = {'sockets': [{'protocol': 'tcp', 'port': 22, 'processes': [sshd]},
                            {'protocol': 'tcp', 'port': 856, 'processes': [rogue]}]}
    protection = rp.Protection.for_host(gathered, [], ['sshd'])
    result = audit(finding(port=856, processes=[rogue]))
    plan = rp.plan_remediation(result, {'closed': 'service'}, protection=protection)
    assert plan['services'] == []
    note = result['findings'][0]['remediation']
    assert note['status'] == rp.PROTECTED and 'unit ssh.service is never stopped' in note['reason'] and 'sshd[300]' in note['reason']


def test_a_connection_without_a_port_protects_every_port_a_protected_process_listens_on():
    sshd = proc(pid=300, name='sshd', exe='/usr/sbin/sshd')
    rogue_sshd = proc(pid=302, name='sshd', exe='/tmp/x')  # a name proves nothing
    gathered = {'sockets': [{'protocol': 'tcp', 'port': 2222, 'processes': [sshd]},
                            {'protocol': 'tcp', 'port': 857, 'processes': [rogue_sshd]}]}
    protection = rp.Protection.for_host(gathered, [], ['sshd'], portless_connection='local')
    result = audit(finding(port=2222, processes=[sshd]), finding(port=857, processes=[rogue_sshd]))
    plan = rp.plan_remediation(result, {'closed': 'firewall'}, protection=protection)
    assert [block['port'] for block in plan['blocks']] == [857]
    note = dict((f['port'], f['remediation']) for f in result['findings'])[2222]
    assert note['status'] == rp.PROTECTED and 'the local connection has no port of its own' in note['reason'], note
