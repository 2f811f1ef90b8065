"""`portwarden merge`: parts (files or directories) into one fleet report in every format, then the gate."""

import copy
import json
import os

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb
from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_write import ReportDir, render_set
from tests.helpers.parts import POLICY, audit, drift, gate_cli, merge_cli, whole_report, write_part

FLEET = {'web-1': audit(), 'web-2': drift(856), 'web-3': audit(), 'db-1': drift(857, 'medium'), 'db-2': audit(),
         'db-3': None}
WEB = dict((host, FLEET[host]) for host in ('web-1', 'web-2', 'web-3'))
DB = dict((host, FLEET[host]) for host in ('db-1', 'db-2', 'db-3'))


def load(path):
    with open(path) as handle:
        return json.load(handle)


def comparable(report):
    report = copy.deepcopy(report)
    for key in ('generated_at', 'run_id', 'scope', 'files', 'previous', 'tool'):
        report.pop(key, None)
    for entry in report['hosts']:
        entry.pop('part', None)
    return report


def write_whole(directory, audits):
    report = whole_report(audits)
    with ReportDir(str(directory)) as target:
        target.write_set(render_set(report, list(FILE_NAMES)))
    return os.path.join(str(directory), FILE_NAMES['json'])


def test_merged_parts_gate_exactly_as_one_report_of_the_same_hosts(tmp_path):
    slices = tmp_path / 'slices'
    write_part(slices, WEB)
    write_part(slices, DB)
    out = tmp_path / 'out'
    proc = merge_cli(slices, '--report-dir', out, '--hosts', ','.join(FLEET))
    whole = write_whole(tmp_path / 'whole', FLEET)
    gated_whole = gate_cli(whole)
    assert proc.returncode == gated_whole.returncode == 2, proc.stdout + proc.stderr
    assert sorted(name for name in os.listdir(out) if not name.startswith('.')) == sorted(FILE_NAMES.values())
    merged_path = out / FILE_NAMES['json']
    merged = load(merged_path)
    assert comparable(merged) == comparable(load(whole))
    assert merged['scope']['kind'] == 'fleet' and len(merged['scope']['parts']) == 2
    gated_merged = gate_cli(merged_path)
    assert gated_merged.returncode == gated_whole.returncode
    # Lines equal but the header's report time.
    assert gated_merged.stdout.splitlines()[1:] == gated_whole.stdout.splitlines()[1:]
    # merge gates like gate: its own lines are the gate's.
    assert gated_merged.stdout.splitlines()[1:] == [line for line in proc.stdout.splitlines() if line.startswith('  ')]


def test_the_report_dir_parts_are_not_read_unless_given(tmp_path):
    out = tmp_path / 'out'
    write_part(out, WEB)
    proc = merge_cli('--report-dir', out, '--hosts', 'web-1')
    assert proc.returncode == 2 and 'no part to merge' in proc.stdout + proc.stderr
    proc = merge_cli('--parts-dir', out / 'parts', '--report-dir', out, '--hosts', ','.join(WEB), '--fail-on', 'never')
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_host_of_the_inventory_no_part_covers_is_unknown(tmp_path):
    inventory = tmp_path / 'hosts.ini'
    inventory.write_text('[web]\nweb-1\nweb-2\nweb-3\n[db]\ndb-[1:3]\n')
    path = write_part(tmp_path / 'slices', WEB)
    out = tmp_path / 'out'
    proc = merge_cli(path, '--report-dir', out, '--inventory', inventory, '--fail-on', 'never')
    assert proc.returncode == 2, proc.stdout
    merged = load(out / FILE_NAMES['json'])
    by_host = dict((entry['host'], entry) for entry in merged['hosts'])
    assert sorted(by_host) == sorted(FLEET)
    assert by_host['db-2']['status'] == 'unknown' and by_host['db-2']['reasons'] == ['no report: no part covers this host']
    assert merged['scope']['expected'] == 'inventory %s' % inventory


def test_hosts_file_and_the_union_warning(tmp_path):
    path = write_part(tmp_path / 'slices', {'web-1': audit()})
    hosts_file = tmp_path / 'hosts.txt'
    hosts_file.write_text('# the fleet\nweb-1\n\nweb-9\n')
    proc = merge_cli(path, '--report-dir', tmp_path / 'a', '--hosts-file', hosts_file)
    assert proc.returncode == 2 and 'web-9' in proc.stdout
    proc = merge_cli(path, '--report-dir', tmp_path / 'b')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'expected hosts were not given' in proc.stderr


def test_a_stale_part_makes_its_hosts_unknown(tmp_path):
    slices = tmp_path / 'slices'
    write_part(slices, {'web-1': audit()}, minutes_ago=180)
    write_part(slices, {'web-2': audit()}, minutes_ago=1)
    out = tmp_path / 'out'
    proc = merge_cli(slices, '--report-dir', out, '--max-age', '2h')
    assert proc.returncode == 2
    assert 'web-1 (stale: part ' in proc.stdout and 'is older than 7200 s' in proc.stdout


def test_mixed_policies_are_refused_unless_allowed(tmp_path):
    slices = tmp_path / 'slices'
    first = write_part(slices, {'web-1': audit()})
    other = dict(POLICY, name='other', sha256='c' * 64)
    second = write_part(slices, {'web-2': audit()}, policy=other)
    out = tmp_path / 'out'
    proc = merge_cli(slices, '--report-dir', out)
    assert proc.returncode == 2
    assert first in proc.stdout and second in proc.stdout and 'c' * 64 in proc.stdout
    assert not out.exists() or not (out / FILE_NAMES['json']).exists()
    proc = merge_cli(slices, '--report-dir', out, '--allow-mixed-policies')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(load(out / FILE_NAMES['json'])['scope']['policies']) == 2


def test_a_second_merge_diffs_against_the_first_and_keeps_it_in_history(tmp_path):
    slices = tmp_path / 'slices'
    write_part(slices, {'web-1': audit()})
    out = tmp_path / 'out'
    assert merge_cli(slices, '--report-dir', out).returncode == 0
    first = load(out / FILE_NAMES['json'])
    write_part(slices, {'web-1': drift(856)})  # a newer audit of web-1
    proc = merge_cli(slices, '--report-dir', out, '--history-keep', '5')
    assert proc.returncode == 1, proc.stdout
    second = load(out / FILE_NAMES['json'])
    assert second['previous'] == {'generated_at': first['generated_at']}
    assert second['hosts'][0]['changes']['new'][0]['port'] == 856
    assert len(os.listdir(out / 'history')) == 1


def test_formats_and_fail_on(tmp_path):
    path = write_part(tmp_path / 'slices', {'web-1': drift(856, 'medium')})
    out = tmp_path / 'out'
    proc = merge_cli(path, '--report-dir', out, '--formats', 'json,prometheus')
    assert proc.returncode == 0, proc.stdout  # medium is below the default high
    assert sorted(os.listdir(out)) == sorted([FILE_NAMES['json'], FILE_NAMES['prometheus']])
    assert merge_cli(path, '--report-dir', out, '--fail-on', 'medium').returncode == 1
    assert merge_cli(path, '--report-dir', out, '--formats', 'json,pdf').returncode == 2


@pytest.mark.parametrize('args', [['--max-age', 'soon'], ['--history-keep', '-1'], ['--hosts', ''],
                                  ['--hosts', 'a', '--hosts-file', '/dev/null']])
def test_bad_options_are_a_sentence(tmp_path, args):
    path = write_part(tmp_path / 'slices', {'web-1': audit()})
    proc = merge_cli(path, '--report-dir', tmp_path / 'out', *args)
    assert proc.returncode == 2 and proc.stderr.strip(), proc.stdout
    assert "invalid choice: 'merge'" not in proc.stderr and 'portwarden merge' in proc.stderr


def test_merged_report_validates_and_gate_sees_no_contradiction(tmp_path):
    slices = tmp_path / 'slices'
    write_part(slices, WEB)
    write_part(slices, DB)
    out = tmp_path / 'out'
    merge_cli(slices, '--report-dir', out)
    merged = load(out / FILE_NAMES['json'])
    assert rb.report_contradictions(merged) == []
    gated = gate_cli(out / FILE_NAMES['json'])
    assert 'contradicts' not in gated.stdout and gated.returncode == 2
