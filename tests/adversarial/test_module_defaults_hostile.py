"""Attacks through module_defaults for group/portwarden.compliance.portwarden, on one host over real SSH.

- The group says UDP, the task says TCP: the task wins (Ansible's rule), for a host module and an action plugin;
  a group default must never widen or narrow what a task asked for.
- An option no module takes: the task fails naming it, no traceback, nothing gathered or judged.
- Values of the wrong kind (a gate ``everything``, ``protocols: tcp,sctp``): each fails naming the option and
  what it takes.
- A policy that is no policy, set for the group: port_policy_validate fails naming the path inside it.
"""

import json
import os

import pytest

from tests.fleet.harness import Fleet, play_recap, unsupported_reason

pytestmark = [pytest.mark.netns, pytest.mark.slow]

FLEET = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fleet')
PLAYBOOK = os.path.join(FLEET, 'playbooks', 'module_defaults_hostile.yml')
POLICY = os.path.join(FLEET, 'policies', 'smoke.yml')


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    reason = unsupported_reason()
    if reason:
        pytest.skip(reason)
    workdir = str(tmp_path_factory.mktemp('mxh'))
    with Fleet(1, prefix='mxh', workdir=os.path.join(workdir, 'fleet')) as fleet:
        return _run(fleet, workdir)


def _run(fleet, workdir):
    host = fleet.hosts[0]
    fleet.listen(host, {'name': 'mxh-rogue', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856},
                                                         {'protocol': 'udp', 'address': '0.0.0.0', 'port': 857}]})
    out = os.path.join(workdir, 'out')
    os.makedirs(out)
    proc = fleet.playbook(PLAYBOOK, extra_vars={'pwh_policy': POLICY, 'pwh_out': out})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert 'Traceback' not in output
    assert play_recap(output)[host]['failed'] == 0
    with open(os.path.join(out, '%s.json' % host)) as handle:
        return json.load(handle)


def test_the_task_wins_over_the_group(results):
    assert sorted((s['protocol'], s['port']) for s in results['task_wins_gather']['sockets']) == [('tcp', 856)]
    assert sorted((f['protocol'], f['port']) for f in results['task_wins_audit']['findings']) == [('tcp', 856)]


@pytest.mark.parametrize('name', ['unknown_gather', 'unknown_audit'])
def test_an_unknown_option_fails_naming_it(results, name):
    result = results[name]
    assert result['failed'] is True
    assert 'no_such_option' in result['msg'], result['msg']
    assert 'findings' not in result and 'sockets' not in result
    assert 'Traceback' not in json.dumps(result)


def test_a_bad_gate_and_protocol_list_fail_naming_the_option(results):
    gate = results['bad_gate']
    assert gate['failed'] is True and 'findings' not in gate
    assert 'fail_on' in gate['msg'] and 'everything' in gate['msg'], gate['msg']
    audit = results['bad_audit']
    assert audit['failed'] is True and 'findings' not in audit
    assert 'protocols' in audit['msg'] and 'sctp' in audit['msg'], audit['msg']
    gather = results['bad_gather']
    assert gather['failed'] is True and 'sockets' not in gather
    assert 'protocols' in gather['msg'] and 'sctp' in gather['msg'], gather['msg']


def test_a_bad_group_policy_fails_naming_the_path(results):
    result = results['bad_policy']
    assert result['failed'] is True
    assert "rules: expected a list, got 'all of them'" in result['msg'], result['msg']
    assert 'Traceback' not in json.dumps(result)
