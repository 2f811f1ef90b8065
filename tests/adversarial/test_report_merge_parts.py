"""Attack: slices of one job (each a run over its part of the inventory) write into one report_dir at once.

Today each run writes the fleet report's fixed names: the last to finish looks like the whole fleet and
passes while another slice drifted. A run that covers only part of the inventory must write a part that
knows it is one, under parts/<run_id>/, never touching the fleet report nor reading a sibling as previous.
"""

import json
import os
import subprocess
import sys
import threading

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_merge import RUN_ID, make_run_id
from ansible_collections.portwarden.compliance.plugins.module_utils.report_write import PartDir, ReportWriteError
from tests.helpers.report_run import audit_result, drift_finding, run_port_report

GATE = [sys.executable, '-m', 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli', 'gate']


def fleet():
    audits = dict(('calm-%02d' % i, audit_result()) for i in range(6))
    audits.update(('drift-%02d' % i, audit_result('drift', [drift_finding(856)])) for i in range(6))
    return audits


def run_together(report_dir, tmp_path, slices, **options):
    """Start one port_report run per slice at the same moment; every host of the fleet is in each inventory."""
    audits = fleet()
    outcomes = [None] * len(slices)
    barrier = threading.Barrier(len(slices))

    def run(index):
        workdir = tmp_path / ('slice%d' % index)
        workdir.mkdir()
        barrier.wait()
        outcomes[index] = run_port_report(report_dir, audits, workdir, hosts=slices[index], **options)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(slices))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_slices_started_together_write_parts_and_no_fleet_report(tmp_path):
    report_dir = tmp_path / 'reports'
    calm = ['calm-%02d' % i for i in range(6)]
    drifting = ['drift-%02d' % i for i in range(6)]
    outcomes = run_together(report_dir, tmp_path, [calm, drifting, calm[:3] + drifting[:3]])
    for proc, result in outcomes:
        assert result is not None, proc.stdout + proc.stderr
        assert result['scope']['kind'] == 'part', result
    # No run wrote the fleet report: a gate on it cannot pass on a slice.
    assert not (report_dir / 'portwarden-report.json').exists()
    run_ids = sorted(result['run_id'] for _proc, result in outcomes)
    assert len(set(run_ids)) == 3
    assert sorted(os.listdir(report_dir / 'parts')) == run_ids
    for (_proc, result), hosts in zip(outcomes, [calm, drifting, calm[:3] + drifting[:3]]):
        path = report_dir / 'parts' / result['run_id'] / 'portwarden-report.json'
        with open(path) as handle:
            written = json.load(handle)
        assert written['scope']['kind'] == 'part' and written['scope']['hosts'] == sorted(hosts)
        assert sorted(entry['host'] for entry in written['hosts']) == sorted(hosts)
        assert written['previous'] is None  # never a sibling as previous
        assert result['paths']['json'] == str(path)
        assert sorted(os.listdir(path.parent)) == sorted(FILE_NAMES.values())
        gated = subprocess.run(GATE + [str(path)], capture_output=True, text=True, check=False)
        assert gated.returncode == (0 if hosts == calm else 1), gated.stdout


def test_a_run_over_every_host_still_writes_the_fleet_report(tmp_path):
    report_dir = tmp_path / 'reports'
    proc, result = run_port_report(report_dir, fleet(), tmp_path)
    assert result is not None, proc.stdout + proc.stderr
    assert result['scope']['kind'] == 'fleet'
    assert (report_dir / 'portwarden-report.json').exists() and not (report_dir / 'parts').exists()


def test_a_part_never_overwrites_another_part(tmp_path):
    report_dir = tmp_path / 'reports'
    proc, first = run_port_report(report_dir, fleet(), tmp_path, hosts=['calm-00'])
    assert first is not None and not first.get('failed'), proc.stdout
    # A second run that claims the same run id (a forged or replayed AWX job id) cannot replace it.
    planted = report_dir / 'parts' / first['run_id'] / 'portwarden-report.json'
    before = planted.read_bytes()
    with pytest.raises(ReportWriteError) as refused, PartDir(str(report_dir), first['run_id']):
        pass
    assert 'already exists' in str(refused.value)
    assert planted.read_bytes() == before


def test_scope_fleet_forced_over_a_subset_and_scope_part_forced_over_everything(tmp_path):
    proc, result = run_port_report(tmp_path / 'a', fleet(), tmp_path, hosts=['calm-00'], scope='fleet')
    assert result is not None and result['scope']['kind'] == 'fleet', proc.stdout
    proc, result = run_port_report(tmp_path / 'b', fleet(), tmp_path, scope='part')
    assert result is not None and result['scope']['kind'] == 'part', proc.stdout
    assert not (tmp_path / 'b' / 'portwarden-report.json').exists()


def test_a_planted_parts_link_or_a_parts_dir_others_may_write_is_refused(tmp_path):
    """Another user who can plant REPORT_DIR/parts as a link, or write into it, could redirect or replace parts."""
    report_dir = tmp_path / 'reports'
    report_dir.mkdir()
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    os.symlink(str(elsewhere), str(report_dir / 'parts'))
    with pytest.raises(ReportWriteError) as refused, PartDir(str(report_dir), 'a' * 32):
        pass
    assert 'symbolic link' in str(refused.value) and os.listdir(str(elsewhere)) == []
    os.unlink(str(report_dir / 'parts'))
    (report_dir / 'parts').mkdir()
    os.chmod(str(report_dir / 'parts'), 0o777)
    with pytest.raises(ReportWriteError) as refused, PartDir(str(report_dir), 'b' * 32):
        pass
    assert 'writable by other users' in str(refused.value)
    # And through the action: the task fails saying so, and writes nothing anywhere.
    proc, result = run_port_report(report_dir, fleet(), tmp_path, hosts=['calm-00'])
    assert result['failed'] and 'writable by other users' in result['msg'], proc.stdout
    assert os.listdir(str(report_dir / 'parts')) == []


def test_a_run_id_from_a_hostile_awx_job_id_names_no_other_path(tmp_path):
    report_dir = tmp_path / 'reports'
    proc, result = run_port_report(report_dir, fleet(), tmp_path, hosts=['calm-00'])
    assert result is not None, proc.stdout
    for hostile in ('../../etc', '12/../../x', '1' * 30):
        run_id = make_run_id(hostile)
        assert RUN_ID.match(run_id) and '/' not in run_id and not run_id.startswith('awx-')
    with pytest.raises(ReportWriteError), PartDir(str(report_dir), '../escape'):
        pass
    assert not (tmp_path / 'escape').exists()
