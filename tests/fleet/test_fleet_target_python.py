"""The modules and module_utils on every target Python, over real SSH, ansible_python_interpreter pinned.

One host per target Python of tests/requirements-target.txt, each a bare interpreter as a managed host has it
(Debian's own where Debian has that version, else the machine's pyenv install; no venv, no psutil). Each
host holds a rogue on TCP 856 and UDP 857; playbooks/target_python.yml gathers, audits, remediates in
check mode, and runs port_block and port_kill in check mode. The unit tests of the module_utils run under
the same Pythons in tests/matrix/test_target_python.py.
"""

import json
import os

import pytest

from tests.fleet.harness import play_recap
from tests.helpers import matrix

pytestmark = [pytest.mark.netns, pytest.mark.slow]

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(HERE, 'playbooks', 'target_python.yml')
POLICY = os.path.join(HERE, 'policies', 'smoke.yml')
VERSIONS = matrix.target_pythons()


@pytest.fixture(scope='module')
def site(module_fleet_factory, tmp_path_factory):
    interpreters = dict((version, matrix.find_python(version)) for version in VERSIONS)
    missing = sorted(version for version, path in interpreters.items() if path is None)
    assert not missing, 'no interpreter for target Python %s (Debian python3.N or pyenv)' % ', '.join(missing)
    workdir = str(tmp_path_factory.mktemp('pwt'))
    prefix = 'mxpy%s' % os.environ.get('PORTWARDEN_FLEET_TAG', '')
    hosts = ['%s-host%02d' % (prefix, index) for index in range(1, len(VERSIONS) + 1)]
    hostvars = dict((host, {'ansible_python_interpreter': interpreters[version]}) for host, version in zip(hosts, VERSIONS))
    fleet = module_fleet_factory(len(VERSIONS), prefix='mxpy', workdir=workdir, hostvars=hostvars)
    rogues = dict((host, fleet.listen(host, {'name': 'pwt-rogue', 'sockets': [
        {'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856}, {'protocol': 'udp', 'address': '0.0.0.0', 'port': 857}]}))
        for host in fleet.hosts)
    out = os.path.join(workdir, 'out')
    os.makedirs(out)
    proc = fleet.playbook(PLAYBOOK, extra_vars={'pwt_policy': POLICY, 'pwt_out': out})
    output = proc.stdout + proc.stderr
    results = {}
    for host, version in zip(fleet.hosts, VERSIONS):
        path = os.path.join(out, '%s.json' % host)
        if os.path.exists(path):
            with open(path) as handle:
                results[version] = json.load(handle)
    return {'proc': proc, 'output': output, 'results': results, 'rogues': rogues, 'hosts': dict(zip(VERSIONS, fleet.hosts)),
            'interpreters': interpreters}


@pytest.mark.parametrize('version', VERSIONS)
def test_the_modules_run_on(site, version):
    host = site['hosts'][version]
    recap = play_recap(site['output']).get(host)
    assert recap and recap['failed'] == 0 and recap['unreachable'] == 0, site['output'][-6000:]
    found = site['results'][version]
    python = found['python']
    assert '%d.%d' % (python['version']['major'], python['version']['minor']) == version
    assert python['executable'] == site['interpreters'][version]
    gather = found['gather']
    assert sorted((s['protocol'], s['port']) for s in gather['sockets']) == [('tcp', 856), ('udp', 857)]
    assert gather['coverage']['complete'] is True
    assert found['audit']['status'] == 'drift'
    assert sorted((f['protocol'], f['port']) for f in found['audit']['findings']) == [('tcp', 856), ('udp', 857)]
    assert sorted((f['port'], f['remediation']['status']) for f in found['remediate']['findings']) == [
        (856, 'planned'), (857, 'planned')]
    assert found['block']['changed'] is True
    assert [(b['protocol'], b['port']) for b in found['block']['blocks']] == [('tcp', 856)]
    assert [p['outcome'] for p in found['kill']['processes']] == ['would_terminate']
    assert site['rogues'][host].proc.poll() is None
