"""AWX job slicing, for real: the 12-host SSH fleet audited as 3 ansible-runner jobs into one report_dir.

AWX runs a sliced job template (``job_slice_count: 3``) as a workflow of 3 jobs, each an ``ansible-runner
run`` on its own private data dir whose inventory holds only its slice (tests/fleet/awx_runner.py says
how AWX slices and which extra vars it adds). The three start at the same moment and write into one
report_dir with the role's default scope (``auto``); ``portwarden merge --inventory <the full inventory>``
then makes the fleet report. Its verdicts and findings must equal those of one unsliced job over the same
fleet (everything compared but timestamps, run ids and scope), and ``portwarden gate`` must say the same.

Then the same launch again with one slice SIGKILLed (its ansible-playbook, once the audit task has
started): its hosts are ``unknown`` in the merge and the gate fails, though every host it did see passes.
And one slice killed whole (playbook and workers) at several moments of writing its part: the merge never
takes half a part.
"""

import copy
import json
import os
import signal
import time

import pytest
import yaml

from tests.fleet.awx_runner import RunnerJob, awx_slices, slice_inventory
from tests.helpers.awx import awx_meta_vars
from tests.helpers.report_compare import differences, gate_lines, run_cli

pytestmark = [pytest.mark.netns, pytest.mark.slow]

N_HOSTS = 12
N_SLICES = 3
AS_OF = '2026-12-01'
AUDIT_TASK = 'Audit the listening ports (and remediate in remediate mode)'
PLAYBOOK = """---
# The job template's playbook, as a project would have it.
- name: Audit the fleet's listening ports
  hosts: all
  gather_facts: false
  roles:
    - role: portwarden.compliance.port_compliance
"""
# Keys a merged report may differ in from one controller's report: when, which run, which parts.
RUN_KEYS = ('generated_at', 'run_id', 'scope', 'files', 'previous')
HOST_RUN_KEYS = ('part',)


def _tcp(port, address='0.0.0.0'):
    return {'protocol': 'tcp', 'address': address, 'port': port}


def policy_text(hosts):
    return yaml.safe_dump({
        'policy_version': 1, 'name': 'pws-slices', 'description': 'The baseline, plus 8080 for pws-web only.',
        'default': 'allow', 'waiver_warning_days': 14,
        'rules': [
            {'id': 'iana-unassigned-closed', 'description': 'Ports IANA has not assigned must stay closed',
             'match': {'ports': 'iana:unassigned', 'protocols': ['tcp', 'udp']}, 'expect': 'closed', 'severity': 'high'},
            {'id': 'web-process', 'description': 'Port 8080 belongs to pws-web', 'match': {'ports': [8080], 'protocols': ['tcp']},
             'expect': {'processes': ['pws-web']}, 'severity': 'medium'},
        ],
        'waivers': [
            {'rule': 'iana-unassigned-closed', 'hosts': [hosts[5]], 'ports': [856], 'protocols': ['tcp'],
             'reason': 'Vendor agent', 'ticket': 'PWS-6', 'approved_by': 'secops', 'expires': '2027-06-30'},
            {'rule': 'iana-unassigned-closed', 'hosts': [hosts[7]], 'ports': [856], 'reason': 'Migration window',
             'ticket': 'PWS-8', 'approved_by': 'secops', 'expires': '2025-01-31'},
        ],
    }, sort_keys=False)


def listener_specs(hosts):
    """Listeners in every slice (slice k holds hosts k, k+3, k+6, k+9): drift, allowed, waived, expired."""
    return {
        hosts[0]: {'name': 'pws-rogue856', 'sockets': [_tcp(856)]},  # slice 1: drift (high)
        hosts[9]: {'name': 'pws-loop6', 'sockets': [_tcp(858, '::1')]},  # slice 1: drift on IPv6 loopback
        hosts[1]: {'name': 'pws-web', 'sockets': [_tcp(8080)]},  # slice 2: allowed
        hosts[4]: {'name': 'pws-imposter', 'sockets': [_tcp(8080)]},  # slice 2: the wrong process (medium)
        hosts[7]: {'name': 'pws-expired', 'sockets': [_tcp(856)]},  # slice 2: expired waiver, drift
        hosts[2]: {'name': 'pws-udp857', 'sockets': [{'protocol': 'udp', 'address': '0.0.0.0', 'port': 857}]},  # slice 3
        hosts[5]: {'name': 'pws-waived', 'sockets': [_tcp(856)]},  # slice 3: waived
    }


@pytest.fixture(scope='module')
def fleet(module_fleet_factory, tmp_path_factory):
    fleet = module_fleet_factory(N_HOSTS, prefix='pws')
    for host, spec in listener_specs(fleet.hosts).items():
        fleet.listen(host, spec)
    policy = tmp_path_factory.mktemp('slices-policy') / 'policy.yml'
    policy.write_text(policy_text(fleet.hosts))
    fleet.policy_path = str(policy)
    return fleet


def role_vars(fleet, report_dir, **extra):
    variables = {'port_compliance_policy': fleet.policy_path, 'port_compliance_report_dir': str(report_dir),
                 'port_compliance_as_of': AS_OF}
    variables.update(extra)
    return variables


def slice_jobs(fleet, base, report_dir, workflow_job_id):
    """The N_SLICES jobs of one sliced launch: AWX's slice inventories and meta vars, one report_dir."""
    with open(fleet.inventory) as handle:
        full = yaml.safe_load(handle)
    jobs = []
    for number, hosts in enumerate(awx_slices(fleet.hosts, N_SLICES), 1):
        job_id = workflow_job_id + number
        extravars = dict(role_vars(fleet, report_dir), **awx_meta_vars(job_id, workflow_job_id=workflow_job_id))
        jobs.append(RunnerJob(fleet, base / ('slice%d' % number), PLAYBOOK, slice_inventory(fleet.inventory, hosts),
                              extravars, ident='job-%d' % job_id))
        jobs[-1].hosts = hosts
    assert full['all']['children']['fleet']['hosts'].keys() == set(fleet.hosts)
    return jobs


def load(path):
    with open(path) as handle:
        return json.load(handle)


def verdicts(report):
    """The report with what may differ between one run and a merge of parts taken out."""
    report = copy.deepcopy(report)
    for key in RUN_KEYS:
        report.pop(key, None)
    for host in report['hosts']:
        for key in HOST_RUN_KEYS:
            host.pop(key, None)
        # how many processes the machine had at that moment (the fleet shares one PID space): noise
        (host.get('coverage') or {}).pop('processes_scanned', None)
    report['hosts'].sort(key=lambda entry: entry['host'])
    return report


@pytest.fixture(scope='module')
def unsliced(fleet, tmp_path_factory):
    """One AWX job (no slicing) over the whole fleet: the reference fleet report."""
    base = tmp_path_factory.mktemp('unsliced')
    report_dir = base / 'reports'
    with open(fleet.inventory) as handle:
        inventory = yaml.safe_load(handle)
    job = RunnerJob(fleet, base / 'job', PLAYBOOK, inventory, dict(role_vars(fleet, report_dir), **awx_meta_vars(500)),
                    ident='job-500').start()
    job.wait()
    assert job.result()[1] in ('0', '2'), job.output[-6000:]
    report = load(report_dir / 'portwarden-report.json')
    assert sorted(entry['host'] for entry in report['hosts']) == fleet.hosts
    return report_dir, report


def test_sliced_job_merges_to_the_unsliced_verdict(fleet, unsliced, tmp_path):
    reference_dir, reference = unsliced
    statuses = dict((entry['host'], entry['status']) for entry in reference['hosts'])
    # not trivially empty: drift, compliant and a waiver in the reference
    assert sorted(set(statuses.values())) == ['compliant', 'drift'], statuses
    assert [statuses[host] for host in fleet.hosts[:3]] == ['drift', 'compliant', 'drift']

    shared = tmp_path / 'reports'
    jobs = slice_jobs(fleet, tmp_path, shared, workflow_job_id=600)
    for job in jobs:  # started at the same moment
        job.start()
    for job in jobs:
        job.wait()
        assert job.result()[1] in ('0', '2'), job.output[-6000:]
    # no slice wrote a fleet report: each is a part, and none took another as "previous"
    assert not (shared / 'portwarden-report.json').exists(), os.listdir(str(shared))
    parts = sorted(os.listdir(str(shared / 'parts')))
    assert len(parts) == N_SLICES, parts
    covered = sorted(host for part in parts for host in load(shared / 'parts' / part / 'portwarden-report.json')['scope']['hosts'])
    assert covered == fleet.hosts

    merged_dir = tmp_path / 'merged'
    merged = run_cli('merge', shared, '--inventory', fleet.inventory, '--report-dir', merged_dir)
    reference_gate = run_cli('gate', reference_dir / 'portwarden-report.json')
    assert merged.returncode == reference_gate.returncode == 1, merged.stdout + merged.stderr
    report = load(merged_dir / 'portwarden-report.json')
    assert report['scope']['kind'] == 'fleet'
    assert sorted(part['run_id'] for part in report['scope']['parts']) == sorted(
        load(shared / 'parts' / part / 'portwarden-report.json')['run_id'] for part in parts)
    assert differences(verdicts(report), verdicts(reference)) == []
    merged_gate = run_cli('gate', merged_dir / 'portwarden-report.json')
    assert gate_lines(merged_gate) == gate_lines(reference_gate)
    # every host says which slice's part judged it
    run_ids = dict((host, load(shared / 'parts' / part / 'portwarden-report.json')['run_id'])
                   for part in parts for host in load(shared / 'parts' / part / 'portwarden-report.json')['scope']['hosts'])
    assert dict((entry['host'], entry['part']['run_id']) for entry in report['hosts']) == run_ids


def test_a_slice_killed_mid_audit_leaves_its_hosts_unknown(fleet, unsliced, tmp_path):
    shared = tmp_path / 'reports'
    jobs = slice_jobs(fleet, tmp_path, shared, workflow_job_id=700)
    for job in jobs:
        job.start()
    victim = jobs[1]
    victim.wait_for_task(AUDIT_TASK)
    main, _every = victim.playbook_pids()
    assert main is not None, 'no ansible-playbook of %s found' % victim.dir
    os.kill(main, 9)
    for job in jobs:
        job.wait()
        if job is victim:  # killed by a signal: no return code; AWX marks the job failed
            assert job.result() == ('failed', 'None'), job.output[-4000:]
        else:
            assert job.result()[1] in ('0', '2'), job.output[-6000:]
    # no worker of the killed playbook lives on to write a part later
    assert victim.playbook_pids()[1] == []
    parts = sorted(os.listdir(str(shared / 'parts')))
    assert len(parts) == N_SLICES - 1, parts

    merged_dir = tmp_path / 'merged'
    # fail_on never: only the unknown hosts can fail this gate
    merged = run_cli('merge', shared, '--inventory', fleet.inventory, '--report-dir', merged_dir, '--fail-on', 'never')
    assert merged.returncode == 2, merged.stdout + merged.stderr
    report = load(merged_dir / 'portwarden-report.json')
    by_host = dict((entry['host'], entry) for entry in report['hosts'])
    assert sorted(by_host) == fleet.hosts
    assert sorted(host for host, entry in by_host.items() if entry['status'] == 'unknown') == sorted(victim.hosts)
    for host in victim.hosts:
        assert by_host[host]['part'] is None and any('no report' in reason for reason in by_host[host]['reasons'])
    # the hosts the other slices saw are judged as in the unsliced run
    _reference_dir, reference = unsliced
    seen = dict((entry['host'], entry) for entry in verdicts(reference)['hosts'] if entry['host'] not in victim.hosts)
    assert dict((host, entry) for host, entry in ((entry['host'], entry) for entry in verdicts(report)['hosts'])
                if host not in victim.hosts) == seen
    gate = run_cli('gate', merged_dir / 'portwarden-report.json', '--fail-on', 'never')
    assert gate.returncode == 2 and 'unknown' in gate.stdout, gate.stdout


REPORT_TASK = 'Write the fleet report and gate on it'
KILL_DELAYS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.15, 0.3)


def test_a_slice_killed_while_writing_its_part(fleet, unsliced, tmp_path):
    """One slice's ansible-playbook and its workers SIGKILLed (a container or OOM kill) at several moments
    after the report step starts: each time its report_dir holds no part, a part directory the merge calls
    unfinished, or a whole part; the merge never takes half a part, and the slice's hosts are either
    judged exactly as in the unsliced run or not at all (the merge refuses, exit 2, naming the unfinished part)."""
    _reference_dir, reference = unsliced
    expected = dict((entry['host'], entry) for entry in verdicts(reference)['hosts'])
    seen = set()
    for index, delay in enumerate(KILL_DELAYS):
        base = tmp_path / ('kill%d' % index)
        shared = base / 'reports'
        job = slice_jobs(fleet, base, shared, workflow_job_id=800 + 10 * index)[2]
        job.start()
        job.wait_for_task(REPORT_TASK)
        time.sleep(delay)
        _main, pids = job.playbook_pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # ended meanwhile
                pass
        job.wait()
        merged_dir = base / 'merged'
        proc = run_cli('merge', shared, '--hosts', ','.join(job.hosts), '--report-dir', merged_dir, '--fail-on', 'never',
                       '--skip-bad')
        written = sorted(os.listdir(str(shared / 'parts'))) if (shared / 'parts').is_dir() else []
        if not (merged_dir / 'portwarden-report.json').exists():
            # nothing readable: the merge refuses, naming what it found, and writes no report
            assert proc.returncode == 2 and 'portwarden merge: ' in proc.stderr + proc.stdout, proc.stdout + proc.stderr
            assert 'internal error' not in proc.stderr + proc.stdout, proc.stderr
            if written:
                seen.add('unfinished part')
                assert 'has not finished, or was killed' in proc.stderr + proc.stdout, proc.stderr
            else:
                seen.add('no part')
            continue
        report = load(merged_dir / 'portwarden-report.json')
        by_host = dict((entry['host'], entry) for entry in verdicts(report)['hosts'])
        assert sorted(by_host) == sorted(job.hosts)
        seen.add('whole part')  # the verdicts of the unsliced run, nothing in between
        assert differences(by_host, dict((host, expected[host]) for host in job.hosts)) == []
    print('outcomes of the kills: %s' % ', '.join(sorted(seen)))
    assert seen, 'no kill happened'
