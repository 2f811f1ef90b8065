"""Fleet test of parts and their merge: two --limit runs of the role started together into one report_dir,
merged against the inventory, equal to one run over the whole fleet.

Real ansible-playbook over real SSH into network namespaces (tests/fleet/harness.py); run with
PORTWARDEN_FLEET_TAG set (the hosts' names follow the fleet's prefix).
"""

import copy
import glob
import json
import os
import subprocess
import sys
import threading

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import report_contradictions
from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK = os.path.join(HERE, 'playbooks', 'role_audit.yml')
CLI = [sys.executable, '-m', 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli']
AS_OF = '2026-12-01'
# Coverage fields that count what else ran on the machine at that moment (the PID space is shared).
COVERAGE_KEPT = ('complete', 'errors', 'backend', 'sources', 'sockets', 'unowned_sockets')


def _tcp(address, port):
    return {'protocol': 'tcp', 'address': address, 'port': port}


def comparable(report):
    """Everything but timestamps, run ids, scope and what merely counts the machine's other processes."""
    report = copy.deepcopy(report)
    for key in ('generated_at', 'run_id', 'scope', 'files', 'previous', 'tool'):
        report.pop(key, None)
    for entry in report['hosts']:
        entry.pop('part', None)
        if isinstance(entry.get('coverage'), dict):
            entry['coverage'] = dict((key, entry['coverage'].get(key)) for key in COVERAGE_KEPT)
    return report


def load(path):
    with open(path) as handle:
        return json.load(handle)


@pytest.fixture(scope='module')
def site(module_fleet_factory):
    fleet = module_fleet_factory(6, prefix='pwq')
    hosts = fleet.hosts
    holders = [
        fleet.listen(hosts[0], {'name': 'pwq-h1-agent', 'sockets': [_tcp('0.0.0.0', 856)]}),  # drift, high
        fleet.listen(hosts[3], {'name': 'pwq-h4-udp', 'sockets': [{'protocol': 'udp', 'address': '0.0.0.0',
                                                                   'port': 857}]}),  # drift, high
        fleet.listen(hosts[4], {'name': 'pwq-h5-rogue', 'sockets': [_tcp('0.0.0.0', 8080)]}),  # drift, medium
    ]
    yield fleet
    for holder in holders:
        holder.stop()


STATS_ENV = {'ANSIBLE_SHOW_CUSTOM_STATS': '1'}


def custom_stats(output):
    """The ``portwarden`` summary the role published with set_stats, from ansible-playbook's recap."""
    assert 'CUSTOM STATS:' in output, output[-3000:]
    text = output.split('CUSTOM STATS:', 1)[1].split('\n', 1)[1].strip()
    return json.JSONDecoder().raw_decode(text[len('RUN:'):].strip())[0]['portwarden']


def role_vars(report_dir, **extra):
    variables = {'port_compliance_report_dir': str(report_dir), 'port_compliance_as_of': AS_OF,
                 'port_compliance_policy': '../policies/role.yml', 'port_compliance_fail_on': 'never',
                 'port_compliance_fail_on_unknown': False}
    variables.update(extra)
    return variables


def test_two_limited_runs_together_merge_to_the_full_run(site, tmp_path):
    hosts = site.hosts
    shared = tmp_path / 'shared'
    halves = [hosts[:3], hosts[3:]]
    outcomes = [None, None]
    barrier = threading.Barrier(2)

    def run(index):
        barrier.wait()
        outcomes[index] = site.playbook(PLAYBOOK, extra_vars=role_vars(shared), limit=halves[index], timeout=600,
                                        env=STATS_ENV)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for proc in outcomes:
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    # Two parts, no fleet report: neither run took the other's for the fleet or for its previous.
    assert not (shared / FILE_NAMES['json']).exists()
    parts = sorted(glob.glob(str(shared / 'parts' / '*' / FILE_NAMES['json'])))
    assert len(parts) == 2
    covered = sorted(tuple(load(path)['scope']['hosts']) for path in parts)
    assert covered == sorted(tuple(sorted(half)) for half in halves)
    for path in parts:
        assert load(path)['previous'] is None
    # Each slice published its part's summary for the next workflow node.
    for proc in outcomes:
        stats = custom_stats(proc.stdout)
        assert stats['scope'] == 'part' and stats['hosts'] == 3 and stats['report_json_path'] in parts

    full_dir = tmp_path / 'full'
    full = site.playbook(PLAYBOOK, extra_vars=role_vars(full_dir), timeout=600, env=STATS_ENV)
    assert full.returncode == 0, full.stdout[-4000:]
    whole = load(full_dir / FILE_NAMES['json'])
    stats = custom_stats(full.stdout)
    assert (stats['scope'], stats['hosts'], stats['drift'], stats['compliant'], stats['unknown']) == ('fleet', 6, 3, 3, 0)
    assert stats['worst_severity'] == 'high' and stats['gate_exit_code'] == 0  # fail_on never: the gate passes
    assert stats['report_json_path'] == str(full_dir / FILE_NAMES['json']) and stats['run_id'] == whole['run_id']
    assert whole['scope']['kind'] == 'fleet'

    out = tmp_path / 'merged'
    merged_proc = subprocess.run(CLI + ['merge', str(shared), '--report-dir', str(out), '--inventory', site.inventory,
                                        '--max-age', '1h'], capture_output=True, text=True, check=False)
    assert 'Traceback' not in merged_proc.stderr
    merged = load(out / FILE_NAMES['json'])
    assert report_contradictions(merged) == []
    assert comparable(merged) == comparable(whole)
    assert [entry['status'] for entry in merged['hosts']] == ['drift', 'compliant', 'compliant', 'drift', 'drift',
                                                              'compliant']
    # The gate on the merged report is the gate on the full run's report: same exit code, same lines.
    gates = [subprocess.run(CLI + ['gate', str(path)], capture_output=True, text=True, check=False)
             for path in (out / FILE_NAMES['json'], full_dir / FILE_NAMES['json'])]
    assert gates[0].returncode == gates[1].returncode == merged_proc.returncode == 1
    assert gates[0].stdout.splitlines()[1:] == gates[1].stdout.splitlines()[1:]


def test_a_host_left_out_of_every_part_fails_the_merged_gate(site, tmp_path):
    hosts = site.hosts
    shared = tmp_path / 'shared'
    proc = site.playbook(PLAYBOOK, extra_vars=role_vars(shared), limit=hosts[1:3], timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
    out = tmp_path / 'merged'
    merged = subprocess.run(CLI + ['merge', '--parts-dir', str(shared / 'parts'), '--report-dir', str(out),
                                   '--inventory', site.inventory], capture_output=True, text=True, check=False)
    assert merged.returncode == 2, merged.stdout
    by_host = dict((entry['host'], entry) for entry in load(out / FILE_NAMES['json'])['hosts'])
    assert sorted(by_host) == sorted(hosts)
    for host in hosts[:1] + hosts[3:]:
        assert by_host[host]['status'] == 'unknown'
        assert by_host[host]['reasons'] == ['no report: no part covers this host']
