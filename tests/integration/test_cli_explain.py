"""``portwarden explain`` as a person runs it, on a real gather: a subprocess, its output and exit codes.

A real ``portwarden gather --format json`` in a fresh network namespace (TCP 856 and 22 held by a process named
``pwx-agent``) is explained under a policy, as text and JSON; every way it cannot answer is one line and exit 2.
(The saved-report form runs on a real fleet report in tests/fleet/test_fleet_waivers.py.)
"""

import json
import subprocess
import sys

import pytest

from tests.helpers.gather import CLI_MODULE, gather_in
from tests.helpers.netns import Namespace, have_netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]

POLICY = '''\
policy_version: 1
name: pwx
default: deny
rules:
  - id: iana-unassigned-closed
    match: {ports: "iana:unassigned"}
    expect: closed
    severity: high
  - id: ssh-sshd
    match: {ports: [22], protocols: [tcp]}
    expect: {processes: [sshd]}
waivers:
  - rule: iana-unassigned-closed
    ports: [856]
    processes: [pwx-agent]
    reason: vendor agent
    ticket: PWX-1
    expires: "2099-12-31"
'''


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
    directory = tmp_path_factory.mktemp('pwx')
    with Namespace() as namespace:
        namespace.listen({'name': 'pwx-agent', 'sockets': [
            {'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856}, {'protocol': 'tcp', 'address': '127.0.0.1', 'port': 22}]})
        code, gathered = gather_in(namespace, 'auto')
    assert code == 0
    (directory / 'pwx-host.json').write_text(json.dumps(gathered))
    (directory / 'policy.yml').write_text(POLICY)
    return directory


def explain(*args):
    proc = subprocess.run([sys.executable, '-m', CLI_MODULE, 'explain'] + [str(arg) for arg in args], capture_output=True,
                          text=True, check=False, timeout=120)
    assert 'Traceback' not in proc.stderr, proc.stderr
    return proc


def test_every_socket_of_a_gather_is_explained(saved):
    proc = explain('--policy', saved / 'policy.yml', saved / 'pwx-host.json')
    assert proc.returncode == 0, proc.stderr
    blocks = proc.stdout.split('\n\n')
    assert len(blocks) == 2
    first = dict((block.splitlines()[0].split(' on ')[0], block.splitlines()) for block in blocks)
    ssh = first['tcp 127.0.0.1:22']
    assert ssh[0] == 'tcp 127.0.0.1:22 on pwx-host (no groups), policy pwx, evaluated on %s' % ssh[0].rsplit(' ', 1)[1]
    assert '  rule ssh-sshd: drift: it matches and the socket is held by pwx-agent[' in '\n'.join(ssh)
    assert ssh[-1] == 'decision: drift (decided by ssh-sshd)'
    agent = first['tcp 0.0.0.0:856']
    assert '  waiver (PWX-1): it covers the finding until 2099-12-31, bound to processes pwx-agent, and every holder ' \
           'matches' in agent
    assert agent[-1] == 'decision: waived (decided by iana-unassigned-closed)'


def test_json_and_a_chosen_socket(saved):
    proc = explain('--policy', saved / 'policy.yml', '--port', 22, '--protocol', 'tcp', '--address', '127.0.0.1',
                   '--host', 'web-1', '--group', 'web', '--format', 'json', saved / 'pwx-host.json')
    assert proc.returncode == 0, proc.stderr
    (explanation,) = json.loads(proc.stdout)['explanations']
    assert (explanation['host'], explanation['groups'], explanation['decision']) == ('web-1', ['web'], 'drift')
    assert [step['rule'] for step in explanation['rules'] if step['matched']] == ['ssh-sshd']
    assert explanation['default'] == {'policy': 'deny', 'applies': False,
                                      'why': 'deny, which does not apply: a rule matched the socket'}


def test_what_it_cannot_answer_is_one_line(saved, tmp_path):
    gather = saved / 'pwx-host.json'
    broken = json.loads(gather.read_text())
    broken['sockets'][0]['port'] = 'x'
    (tmp_path / 'broken.json').write_text(json.dumps(broken))
    (tmp_path / 'half.json').write_text(gather.read_text()[:40])
    (tmp_path / 'bad.yml').write_text(POLICY.replace('severity: high', 'severity: hihg'))
    cases = [
        (('--policy', saved / 'policy.yml', '--port', 23, gather),
         'pwx-host.json: no tcp or udp socket or published port on port 23 in this gather (2 sockets, 0 published)'),
        (('--policy', saved / 'policy.yml', tmp_path / 'broken.json'),
         "broken.json: not a gather result portwarden can judge: sockets[0].port: expected a port number 0-65535, got 'x'"),
        (('--policy', saved / 'policy.yml', tmp_path / 'half.json'),
         'half.json: (top level): expected a gather result as JSON, got text that is not'),
        (('--policy', tmp_path / 'bad.yml', gather), "bad.yml: rules[0].severity: 'hihg' is not one of"),
        (('--policy', tmp_path / 'missing.yml', gather), 'missing.yml'),
        (('--host', 'h', '--port', 856, gather), 'a gather result, not a saved report: explain it with --policy POLICY'),
        (('--host', 'h', '--port', 856, tmp_path / 'missing.json'), 'missing.json: cannot read the report'),
        (('--port', 856, saved / 'policy.yml'), 'a saved report is explained for one host and port'),
        (('--policy', saved / 'policy.yml', '--host', 'h', gather, gather), '--host names the host of one gather'),
    ]
    for args, said in cases:
        proc = explain(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stdout == '', args
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith('portwarden explain: '), proc.stderr
        assert said in proc.stderr, (said, proc.stderr)
    proc = explain('--policy', saved / 'policy.yml', '--port', 70000, gather)
    assert proc.returncode == 2 and '70000 is not a port number (0-65535)' in proc.stderr


def test_a_port_published_by_dnat_is_explained(tmp_path):
    """A real Docker-shaped DNAT of host port 856 (iptables-nft, userland-proxy off: no socket on the host), gathered
    in its namespace and explained under the policy: the rules, the rule that publishes it, the decision."""
    from tests.helpers import nat

    with Namespace() as namespace:
        nat.apply(namespace, nat.docker_rules(856, '172.17.0.2:80'))
        code, gathered = nat.gather(namespace)
    assert [(e['port'], e['chain']) for e in gathered['exposures']] == [(856, 'DOCKER')], gathered['exposures']
    (tmp_path / 'docker-1.json').write_text(json.dumps(gathered))
    (tmp_path / 'policy.yml').write_text(POLICY)
    proc = explain('--policy', tmp_path / 'policy.yml', '--port', 856, tmp_path / 'docker-1.json')
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith('tcp 0.0.0.0:856 published by DNAT to 172.17.0.2:80 (owner unknown) on docker-1'), lines
    assert lines[1] == ('  published by iptables-nft ip nat chain DOCKER (prerouting, output): -A DOCKER ! -i docker0 '
                        '-p tcp -m tcp --dport 856 -j DNAT --to-destination 172.17.0.2:80')
    assert lines[2].startswith('  answered by: owner unknown; 172.17.0.2 is not an address'), lines[2]
    assert '  rule iana-unassigned-closed: drift: it matches and expects the port closed' in lines
    assert '  rule ssh-sshd: not matched: its tcp ports (22) do not include 856' in lines
    # The waiver is bound to pwx-agent; nothing known holds the published port, so it cannot waive it.
    assert any(line.startswith('  waiver (PWX-1): it is bound to processes pwx-agent and cannot be checked')
               for line in lines), lines
    assert 'decision: drift (decided by iana-unassigned-closed)' in lines
    assert lines[-1].startswith('host verdict also: waivers bound to processes could not be checked on 1 finding')
    proc = explain('--policy', tmp_path / 'policy.yml', '--format', 'json', tmp_path / 'docker-1.json')
    [explanation] = json.loads(proc.stdout)['explanations']
    assert explanation['socket']['via'] == 'nat' and explanation['published']['source'] == 'iptables-nft'
    assert explanation['decision'] == 'drift' and code == 0
