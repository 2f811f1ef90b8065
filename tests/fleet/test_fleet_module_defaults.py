"""module_defaults for group/portwarden.compliance.portwarden reach every module and action of the collection.

meta/runtime.yml's action_groups puts every module of the collection in the group ``portwarden``. One host
over real SSH (a rogue on TCP 856 and UDP 857, both IANA-unassigned); playbooks/module_defaults.yml runs
each module first without module defaults, then with an option set only for the group, and the test
checks that the option changed the result: of the modules that run on the host (listening_sockets_info,
port_block, port_kill) and of the action plugins, which read their arguments from ``self._task.args``,
where ansible-core has already merged the defaults (port_audit, port_remediate, port_policy_validate,
port_report, port_report_merge). The matrix runs it under every ansible-core it tests.
"""

import json
import os

import pytest
import yaml

from tests.conftest import REPO
from tests.fleet.harness import play_recap

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(HERE, 'playbooks', 'module_defaults.yml')
POLICY = os.path.join(HERE, 'policies', 'smoke.yml')


def _core_minor():
    """2.19 -> 219: each ansible-core of the matrix runs this at the same time as the others, on its own host."""
    from ansible.release import __version__
    return ''.join(__version__.split('.')[:2])


def _start_time(pid):
    with open('/proc/%d/stat' % pid) as handle:
        return int(handle.read().rsplit(')', 1)[1].split()[19])


@pytest.fixture(scope='module')
def results(module_fleet_factory, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp('pwd'))
    fleet = module_fleet_factory(1, prefix='mxd' + _core_minor(), workdir=workdir)
    host = fleet.hosts[0]
    rogue = fleet.listen(host, {'name': 'pwd-rogue', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856},
                                                                 {'protocol': 'udp', 'address': '0.0.0.0', 'port': 857}]})
    pid = rogue.pids[0]
    out = os.path.join(workdir, 'out')
    os.makedirs(out)
    proc = fleet.playbook(PLAYBOOK, extra_vars={
        'pwd_policy': POLICY, 'pwd_out': out, 'pwd_rogue_pid': pid, 'pwd_rogue_start': _start_time(pid),
        'pwd_rogue_exe': os.path.realpath('/proc/%d/exe' % pid)})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert play_recap(output)[host]['failed'] == 0
    with open(os.path.join(out, '%s.json' % host)) as handle:
        found = json.load(handle)
    found['out'] = out
    found['rogue'] = rogue
    return found


def _ports(sockets):
    return sorted((entry['protocol'], entry['port']) for entry in sockets)


def test_every_module_is_in_the_group():
    with open(os.path.join(REPO, 'meta', 'runtime.yml')) as handle:
        group = yaml.safe_load(handle)['action_groups']['portwarden']
    modules = sorted(name[:-3] for name in os.listdir(os.path.join(REPO, 'plugins', 'modules')) if name.endswith('.py'))
    assert sorted(group) == modules


def test_protocols_reach_the_gather_the_audit_and_remediate(results):
    assert _ports(results['plain_gather']['sockets']) == [('tcp', 856), ('udp', 857)]
    assert _ports(results['udp_gather']['sockets']) == [('udp', 857)]
    assert _ports(results['plain_audit']['findings']) == [('tcp', 856), ('udp', 857)]
    assert _ports(results['udp_audit']['findings']) == [('udp', 857)]
    assert _ports(results['plain_remediate']['findings']) == [('tcp', 856), ('udp', 857)]
    assert _ports(results['udp_remediate']['findings']) == [('udp', 857)]


def test_the_policy_reaches_validate_and_audit(results):
    assert results['group_validate']['info']['name'] == 'fleet-smoke'
    assert results['group_audit']['policy']['name'] == 'fleet-smoke'
    assert _ports(results['group_audit']['findings']) == [('tcp', 856), ('udp', 857)]


def test_protected_ports_reach_block_and_remediate(results):
    plain, protected = results['plain_block'], results['protected_block']
    assert plain['changed'] is True and not plain.get('protected')
    assert protected['changed'] is False
    assert [(entry['protocol'], entry['port']) for entry in protected['protected']] == [('tcp', 856)]
    statuses = dict(((f['protocol'], f['port']), f['remediation']['status']) for f in results['protected_remediate']['findings'])
    assert statuses == {('tcp', 856): 'protected', ('udp', 857): 'planned'}
    plain_statuses = dict(((f['protocol'], f['port']), f['remediation']['status']) for f in results['plain_remediate']['findings'])
    assert plain_statuses == {('tcp', 856): 'planned', ('udp', 857): 'planned'}


def test_protected_names_reach_kill(results):
    assert [entry['outcome'] for entry in results['plain_kill']['processes']] == ['would_terminate']
    assert [entry['outcome'] for entry in results['protected_kill']['processes']] == ['protected']
    assert results['rogue'].proc.poll() is None


def test_the_gate_and_formats_reach_audit_report_and_merge(results):
    assert results['plain_audit']['gate']['fail_on'] == 'never' and not results['plain_audit'].get('failed')
    assert results['gate_audit']['gate']['fail_on'] == 'high' and results['gate_audit']['failed'] is True
    plain = results['plain_report']
    assert plain['gate']['fail_on'] == 'never' and plain.get('failed') is not True, plain['msg']
    assert sorted(plain['paths']) == ['html', 'json', 'junit', 'markdown', 'prometheus']
    for name in ('group_report', 'group_merge'):
        result = results[name]
        assert result['failed'] is True and result['gate']['fail_on'] == 'high', (name, result['msg'])
        assert 'gate failed' in result['msg'], (name, result['msg'])
        assert sorted(result['paths']) == ['json'], name
    assert sorted(os.listdir(os.path.join(results['out'], 'group'))) == ['portwarden-report.json']
    assert sorted(os.listdir(os.path.join(results['out'], 'merged'))) == ['portwarden-report.json']
