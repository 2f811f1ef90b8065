"""Attacks on `portwarden merge`: parts that lie, are broken, planted, from the future, or merged twice at once.

Each must end as exit 2 naming the file and what is wrong, or (with --skip-bad) as its hosts unknown with
the reason: never a pass, never silence, never a traceback, never a half-written report.
"""

import json
import os
import threading

from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
from tests.helpers.parts import audit, build_part, drift, gate_cli, merge_cli, write_part

HOSTS = 'web-1,web-2,db-1'


def load(path):
    with open(path) as handle:
        return json.load(handle)


def rewrite(path, change):
    report = load(path)
    change(report)
    with open(path, 'w') as handle:
        json.dump(report, handle)


def fleet_parts(directory):
    return (write_part(directory, {'web-1': audit(), 'web-2': audit()}),
            write_part(directory, {'db-1': audit()}))


def hosts_of(out):
    return dict((entry['host'], entry) for entry in load(os.path.join(str(out), FILE_NAMES['json']))['hosts'])


def refused_then_skipped(tmp_path, slices, bad_path, what, unknown_hosts, skipped_code=2):
    """Refused naming ``bad_path`` and ``what``; with --skip-bad, ``unknown_hosts`` unknown naming it."""
    out = tmp_path / ('out%d' % len(list(tmp_path.glob('out*'))))
    slices = slices if isinstance(slices, list) else [slices]
    proc = merge_cli(*slices, '--report-dir', out, '--hosts', HOSTS)
    assert proc.returncode == 2, proc.stdout
    assert str(bad_path) in proc.stdout and what in proc.stdout, proc.stdout
    assert not (out / FILE_NAMES['json']).exists()  # refused: nothing written
    proc = merge_cli(*slices, '--report-dir', out, '--hosts', HOSTS, '--skip-bad')
    assert proc.returncode == skipped_code, proc.stdout
    assert 'skipped bad part %s' % bad_path in proc.stderr  # never silence
    by_host = hosts_of(out)
    for host in unknown_hosts:
        assert by_host[host]['status'] == 'unknown'
        assert any(str(bad_path) in reason for reason in by_host[host]['reasons']), by_host[host]
    return by_host


def test_truncated_part(tmp_path):
    slices = tmp_path / 'slices'
    _web, db = fleet_parts(slices)
    with open(db, 'rb+') as handle:
        handle.truncate(os.path.getsize(db) // 2)
    by_host = refused_then_skipped(tmp_path, slices, db, 'truncated', ['db-1'])
    assert by_host['web-1']['status'] == 'compliant'
    assert by_host['db-1']['reasons'][0].startswith('no report: no part covers this host (a part skipped as bad')


def test_foreign_and_other_version_parts(tmp_path):
    slices = tmp_path / 'slices'
    fleet_parts(slices)
    foreign = slices / 'inventory.json'
    foreign.write_text(json.dumps({'all': {'hosts': ['db-1']}}))
    # Its hosts cannot be read and every expected host is covered: skipped, said, and the fleet passes.
    refused_then_skipped(tmp_path, slices, foreign, 'schema version', [], skipped_code=0)
    foreign.unlink()
    future = slices / 'v2.json'
    report = build_part({'db-1': audit()})
    report['schema_version'] = 2
    future.write_text(json.dumps(report))
    refused_then_skipped(tmp_path, slices, future, 'schema version 2', ['db-1'])


def test_part_whose_hosts_list_disagrees_with_its_entries(tmp_path):
    slices = tmp_path / 'slices'
    _web, db = fleet_parts(slices)
    rewrite(db, lambda report: report['scope']['hosts'].append('web-2'))
    refused_then_skipped(tmp_path, slices, db, 'scope.hosts disagrees', ['db-1', 'web-2'])


def test_part_from_the_future_claiming_a_host(tmp_path):
    """A forged newer generated_at would win every host it names: beyond a small clock skew it is refused."""
    slices = tmp_path / 'slices'
    web, _db = fleet_parts(slices)
    forged = slices / 'forged.json'
    forged.write_text(json.dumps(build_part({'web-1': drift()}, minutes_ago=-60 * 24 * 365)))
    by_host = refused_then_skipped(tmp_path, slices, forged, 'in the future', ['web-1'])
    assert by_host['web-2']['status'] == 'compliant'
    # A future audit that claims a host passes never clears it either.
    forged.write_text(json.dumps(build_part({'web-2': audit()}, minutes_ago=-60 * 24)))
    rewrite(web, lambda report: None)
    by_host = refused_then_skipped(tmp_path, slices, forged, 'in the future', ['web-2'])


def test_duplicate_run_ids(tmp_path):
    slices = tmp_path / 'slices'
    web, db = fleet_parts(slices)
    run_id = load(web)['run_id']
    copy = slices / 'copy.json'
    report = build_part({'db-1': drift()}, run_id=run_id)
    copy.write_text(json.dumps(report))
    proc = merge_cli(slices, '--report-dir', tmp_path / 'out', '--hosts', HOSTS)
    assert proc.returncode == 2 and 'run_id %s is in both' % run_id in proc.stdout
    # The same part given twice (a file and its directory) is one part, not a conflict.
    copy.unlink()
    proc = merge_cli(slices, web, '--report-dir', tmp_path / 'out', '--hosts', HOSTS)
    assert proc.returncode == 0, proc.stdout
    assert db


def test_symlinked_parts_and_part_directories_are_not_followed(tmp_path):
    elsewhere = tmp_path / 'elsewhere'
    planted = write_part(elsewhere, {'db-1': audit()})
    slices = tmp_path / 'slices'
    write_part(slices, {'web-1': audit(), 'web-2': audit()})
    os.symlink(os.path.dirname(planted), str(slices / 'parts' / 'planted'))
    proc = merge_cli(slices, '--report-dir', tmp_path / 'out', '--hosts', HOSTS)
    assert proc.returncode == 2
    assert 'symbolic link' in proc.stdout and str(slices / 'parts' / 'planted') in proc.stdout
    # parts/ itself a link
    other = tmp_path / 'other'
    other.mkdir()
    os.symlink(str(elsewhere / 'parts'), str(other / 'parts'))
    proc = merge_cli(other, '--report-dir', tmp_path / 'out2', '--hosts', 'db-1')
    assert proc.returncode == 2 and 'symbolic link' in proc.stdout, proc.stdout


def test_a_part_that_is_a_fifo_does_not_block(tmp_path):
    slices = tmp_path / 'slices'
    fleet_parts(slices)
    fifo = slices / 'evil.json'
    os.mkfifo(str(fifo))
    proc = merge_cli(slices, '--report-dir', tmp_path / 'out', '--hosts', HOSTS, timeout=60)
    assert proc.returncode == 2 and str(fifo) in proc.stdout and 'not a regular file' in proc.stdout


def test_a_huge_part_is_refused_unread(tmp_path):
    slices = tmp_path / 'slices'
    fleet_parts(slices)
    huge = slices / 'huge.json'
    with open(str(huge), 'wb') as handle:
        handle.truncate((1 << 30) + 1)  # sparse: nothing is written, nothing must be read
    proc = merge_cli(slices, '--report-dir', tmp_path / 'out', '--hosts', HOSTS, timeout=60)
    assert proc.returncode == 2 and str(huge) in proc.stdout and 'larger than' in proc.stdout


def test_a_compliant_host_with_drift_findings_is_a_contradiction(tmp_path):
    slices = tmp_path / 'slices'
    _web, db = fleet_parts(slices)
    lying = build_part({'db-1': drift()})
    lying['hosts'][0]['status'] = 'compliant'
    lying['summary']['compliant'], lying['summary']['drift'] = 1, 0
    path = write_part(tmp_path / 'liar', {}, report=lying)
    os.unlink(db)
    by_host = refused_then_skipped(tmp_path, [slices, path], path, 'compliant but', ['db-1'])
    assert by_host['web-1']['status'] == 'compliant'


def test_a_tampered_set_is_refused(tmp_path):
    slices = tmp_path / 'slices'
    _web, db = fleet_parts(slices)
    html = os.path.join(os.path.dirname(db), FILE_NAMES['html'])
    with open(html, 'a') as handle:
        handle.write('<!-- edited -->')
    refused_then_skipped(tmp_path, slices, os.path.dirname(db), 'sha256', ['db-1'])


def test_a_part_directory_without_its_json_is_a_run_that_did_not_finish(tmp_path):
    slices = tmp_path / 'slices'
    _web, db = fleet_parts(slices)
    os.unlink(db)
    refused_then_skipped(tmp_path, slices, os.path.dirname(db), 'no portwarden-report.json', [])


def test_two_merges_at_once_into_one_out(tmp_path):
    slices = tmp_path / 'slices'
    fleet_parts(slices)
    out = tmp_path / 'out'
    outcomes = [None, None]
    barrier = threading.Barrier(2)

    def run(index):
        barrier.wait()
        outcomes[index] = merge_cli(slices, '--report-dir', out, '--hosts', HOSTS)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [proc.returncode for proc in outcomes] == [0, 0], [proc.stdout + proc.stderr for proc in outcomes]
    assert gate_cli(out / FILE_NAMES['json']).returncode == 0  # one whole set, not a mix of both
    assert len(os.listdir(out / 'history')) == 1  # the second kept the first
    assert load(out / FILE_NAMES['json'])['previous'] is not None


def test_a_fleet_report_merged_with_newer_parts(tmp_path):
    """The old fleet report covers everyone; a newer part wins its hosts, the others keep their old audits."""
    slices = tmp_path / 'slices'
    write_part(slices, {'web-1': audit(), 'web-2': audit(), 'db-1': audit()}, minutes_ago=60)
    first = tmp_path / 'first'
    assert merge_cli(slices, '--report-dir', first, '--hosts', HOSTS).returncode == 0
    newer = write_part(tmp_path / 'newer', {'web-2': drift()}, minutes_ago=1)
    out = tmp_path / 'out'
    proc = merge_cli(first / FILE_NAMES['json'], newer, '--report-dir', out, '--hosts', HOSTS, '--max-age', '2h')
    assert proc.returncode == 1, proc.stdout
    by_host = hosts_of(out)
    assert by_host['web-2']['status'] == 'drift' and by_host['web-1']['status'] == 'compliant'
    # ... but the old fleet report's audits are still an hour old: they are not made fresh by the first merge.
    proc = merge_cli(first / FILE_NAMES['json'], newer, '--report-dir', tmp_path / 'out2', '--hosts', HOSTS,
                     '--max-age', '30m')
    assert proc.returncode == 2 and 'web-1 (stale: part' in proc.stdout
