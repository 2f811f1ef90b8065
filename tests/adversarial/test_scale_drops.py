"""Attacks on the ansible-pull self-audit drops (playbooks/self_audit.yml, playbooks/collect_drops.yml).

- A drop directory others can write (mode 0777), or that another user owns: the self-audit refuses it,
  names it and writes nothing; a sticky one of ours (a shared mount done right) takes the part.
- A self-audit that does not say which host it is (``-i localhost,`` alone): refused, nothing written.
- A host that claims to be another: host02 (root on itself) runs the self-audit under host01's name, so
  its drop calls host01 compliant, newer than host01's own drift. Dropped into one shared directory, the
  merge takes the newer audit, and the report names the part (its run id, and in scope.parts its file)
  that host01's verdict came from and every part that covered it. Collected with collect_drops.yml (each host's drop fetched over SSH),
  the forged part is refused because it reports another host: host01 stays drift from its own part,
  host02 has no part of its own and is unknown, the gate fails.
- A drop whose run id is a path (``../../escape``): collect refuses it, and writes nothing outside its
  directory.
Every self-audit is a real ansible-playbook run (connection local) inside a real network namespace.
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.fleet.harness import Fleet, unsupported_reason
from tests.helpers.netns import Namespace

pytestmark = [pytest.mark.netns, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason='needs root (network namespaces, chown)')]

TOOLS = os.path.dirname(sys.executable)
CLI = [sys.executable, '-m', 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli']
NOBODY = 65534


def self_audit_argv(name, drop, extra=()):
    argv = [os.path.join(TOOLS, 'ansible-playbook'), '-i', 'localhost,', 'portwarden.compliance.self_audit',
            '-e', 'portwarden_drop_dir=%s' % drop, '-e', 'port_compliance_fail_on=never']
    if name is not None:
        argv += ['-e', 'portwarden_self_audit_host=%s' % name]
    return argv + list(extra)


def parts_in(drop):
    return sorted(glob.glob(os.path.join(str(drop), 'parts', '*', 'portwarden-report.json')))


def load(path):
    with open(str(path)) as handle:
        return json.load(handle)


@pytest.fixture
def namespace():
    with Namespace() as ns:
        yield ns


@pytest.mark.parametrize('case', ['world-writable', 'group-writable', 'owned-by-nobody'])
def test_a_drop_directory_others_control_is_refused(namespace, tmp_path, case):
    drop = tmp_path / 'drop'
    drop.mkdir()
    os.chmod(str(drop), {'world-writable': 0o777, 'group-writable': 0o775, 'owned-by-nobody': 0o755}[case])
    if case == 'owned-by-nobody':
        os.chown(str(drop), NOBODY, NOBODY)
    proc = namespace.run(self_audit_argv('pwd-web01', drop), timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert str(drop) in output
    assert ('writable by other users' if case != 'owned-by-nobody' else 'is owned by uid %d' % NOBODY) in output, output[-3000:]
    assert 'Traceback' not in output
    assert os.listdir(str(drop)) == []  # no part, no parts/ directory, nothing half-written


def test_a_sticky_drop_directory_of_ours_takes_the_part(namespace, tmp_path):
    """A shared drop done right: sticky (others add names, never replace ours) and owned by the writer."""
    drop = tmp_path / 'drop'
    drop.mkdir()
    os.chmod(str(drop), 0o1777)
    proc = namespace.run(self_audit_argv('pwd-web01', drop), timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    [part] = parts_in(drop)
    report = load(part)
    assert report['scope']['kind'] == 'part' and report['scope']['hosts'] == ['pwd-web01']
    assert [entry['host'] for entry in report['hosts']] == ['pwd-web01']


def test_a_self_audit_without_a_name_is_refused(namespace, tmp_path):
    drop = tmp_path / 'drop'
    proc = namespace.run(self_audit_argv(None, drop), timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and 'portwarden_self_audit_host=NAME' in output, output[-3000:]
    assert "would report 'localhost'" in output
    assert not drop.exists()  # refused before anything was audited or written


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    reason = unsupported_reason()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp('drops-fleet')
    with Fleet(3, prefix='pwd', workdir=str(base / 'fleet')) as fleet:
        fleet.drops = base / 'drops'
        for host in fleet.hosts:
            fleet.set_hostvars(host, {'portwarden_drop_dir': str(fleet.drops / host)})
        fleet.listen(fleet.hosts[0], {'name': 'pwd-rogue856', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856}]})
        yield fleet


def drop_as(fleet, host, name):
    """``host`` runs the self-audit in its own namespace, into its own drop directory, as ``name``."""
    proc = fleet.run(host, self_audit_argv(name, fleet.drops / host), env=fleet.env, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def collect(fleet, collect_dir):
    return fleet.playbook(os.path.join(REPO, 'playbooks', 'collect_drops.yml'),
                          extra_vars={'portwarden_collect_dir': str(collect_dir)})


def merge(fleet, source, out):
    proc = subprocess.run(CLI + ['merge', str(source), '--inventory', fleet.inventory, '--report-dir', str(out),
                                 '--max-age', '1h'], capture_output=True, text=True, check=False, timeout=300)
    assert 'Traceback' not in proc.stderr, proc.stderr
    return proc, load(out / 'portwarden-report.json')


def test_a_host_that_claims_to_be_another(fleet, tmp_path):
    web01, web02, web03 = fleet.hosts
    drop_as(fleet, web01, web01)  # honest: drift on 856
    drop_as(fleet, web03, web03)  # honest: compliant
    drop_as(fleet, web02, web01)  # forged: host02's empty namespace, reported as host01, newer
    forged = parts_in(fleet.drops / web02)[0]
    assert load(forged)['hosts'][0]['status'] == 'compliant'

    # One shared drop directory: the newer audit wins, and the report says whose part it was.
    shared = tmp_path / 'shared'
    os.makedirs(str(shared / 'parts'), mode=0o755)
    for path in parts_in(fleet.drops / web01) + parts_in(fleet.drops / web02) + parts_in(fleet.drops / web03):
        shutil.copytree(os.path.dirname(path), str(shared / 'parts' / os.path.basename(os.path.dirname(path))))
    proc, report = merge(fleet, shared, tmp_path / 'merged-shared')
    by_host = dict((entry['host'], entry) for entry in report['hosts'])
    forged_run = load(forged)['run_id']
    own_run = load(parts_in(fleet.drops / web01)[0])['run_id']
    assert by_host[web01]['part']['run_id'] == forged_run
    files = dict((part['run_id'], part['file']) for part in report['scope']['parts'])
    assert files[forged_run].endswith(os.path.join(forged_run, 'portwarden-report.json'))
    assert sorted(by_host[web01]['part']['covered_by']) == sorted([forged_run, own_run])
    assert by_host[web02]['status'] == 'unknown' and proc.returncode == 2  # the impersonator has no part of its own

    # Collected over SSH, each host's drop may vouch for that host alone.
    collect_dir = tmp_path / 'collected'
    collected = collect(fleet, collect_dir)
    output = collected.stdout + collected.stderr
    assert collected.returncode != 0, output[-4000:]
    assert 'refused the part fetched from %s' % web02 in output and 'it reports %s' % web01 in output, output[-4000:]
    assert sorted(load(path)['scope']['hosts'][0] for path in parts_in(collect_dir)) == [web01, web03]
    proc, report = merge(fleet, collect_dir, tmp_path / 'merged-collected')
    by_host = dict((entry['host'], entry) for entry in report['hosts'])
    assert (by_host[web01]['status'], by_host[web01]['part']['run_id']) == ('drift', own_run)
    assert by_host[web02]['status'] == 'unknown' and any('no report' in reason for reason in by_host[web02]['reasons'])
    assert by_host[web03]['status'] == 'compliant'
    assert proc.returncode == 2


def test_a_drop_whose_run_id_is_a_path(fleet, tmp_path):
    web03 = fleet.hosts[2]
    drop_as(fleet, web03, web03)
    newest = parts_in(fleet.drops / web03)[-1]
    report = load(newest)
    report['run_id'] = '../../escape'
    planted = fleet.drops / web03 / 'parts' / 'planted'
    planted.mkdir(mode=0o755)
    (planted / 'portwarden-report.json').write_text(json.dumps(report))
    collect_dir = tmp_path / 'collect' / 'here'
    collected = collect(fleet, collect_dir)
    output = collected.stdout + collected.stderr
    assert 'refused the part fetched from %s' % web03 in output and 'under run id ../../escape' in output, output[-4000:]
    assert not (tmp_path / 'escape').exists() and not (tmp_path / 'collect' / 'escape').exists()
    assert all(os.path.basename(os.path.dirname(path)) != 'escape' for path in parts_in(collect_dir))
