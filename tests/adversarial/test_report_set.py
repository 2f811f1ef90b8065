"""Attacks on the report set: a full disk, a crash between replaces, two runs at once into one directory.

The set (JSON, JUnit, Markdown, HTML, Prometheus) must always be one run's: after a failed write the previous
run's set is whole and untouched and the task fails saying so; a reader can tell a mixed set from a whole one.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
from tests.helpers import mounts
from tests.helpers.report_run import audit_result, drift_finding, run_port_report

pytestmark = pytest.mark.skipif(mounts.unsupported_reason() is not None, reason=str(mounts.unsupported_reason()))

GATE = [sys.executable, '-m', 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli', 'gate']
REPORT_NAMES = sorted(FILE_NAMES.values())


def calm_fleet(prefix='calm'):
    return dict(('%s-%03d' % (prefix, i), audit_result()) for i in range(60))


def drifting_fleet(prefix='host'):
    return dict(('%s-%03d' % (prefix, i), audit_result('drift', [drift_finding(856 + j) for j in range(3)]))
                for i in range(60))


def snapshot(directory):
    return dict((name, open(os.path.join(directory, name), 'rb').read()) for name in REPORT_NAMES)


def visible(directory):
    return sorted(os.listdir(directory))


def gate(path, *args):
    proc = subprocess.run(GATE + [str(path)] + list(args), capture_output=True, text=True, check=False)
    assert 'Traceback' not in proc.stderr + proc.stdout
    return proc


def test_full_disk_leaves_the_previous_set_whole(tmp_path):
    first = tmp_path / 'first'
    proc, result = run_port_report(first, calm_fleet(), tmp_path)
    assert result and not result.get('failed'), proc.stdout
    old = snapshot(first)
    # Sizes of the second run's files decide where the disk may run out: sweep through all of them.
    sizing = tmp_path / 'sizing'
    run_port_report(sizing, drifting_fleet(), tmp_path)
    total = sum(os.path.getsize(sizing / name) for name in REPORT_NAMES)
    outcomes = {'failed': 0, 'written': 0}
    with mounts.private_tmpfs(1024) as fs:
        reports = os.path.join(fs.path, 'reports')
        # Room for every new file, the previous report's copy in history/ and a page each: enough to succeed.
        for leave in range(0, 2 * total + 128 * 1024, (2 * total + 128 * 1024) // 8):
            shutil.rmtree(reports, ignore_errors=True)
            os.mkdir(reports)
            for name, data in old.items():
                with open(os.path.join(reports, name), 'wb') as handle:
                    handle.write(data)
            filler = fs.fill(leave)
            proc, result = run_port_report(reports, drifting_fleet(), tmp_path)
            os.unlink(filler)
            assert result is not None, proc.stdout + proc.stderr
            if result.get('failed'):
                outcomes['failed'] += 1
                changed = sorted(name for name, data in snapshot(reports).items() if data != old[name])
                assert changed == [], 'leave=%d: a failed run replaced %s of the previous set' % (leave, changed)
                assert visible(reports) == REPORT_NAMES, 'leave=%d: %s' % (leave, visible(reports))
                assert 'No space left on device' in result['msg'] and reports in result['msg'], result['msg']
                assert 'previous report set is unchanged' in result['msg'], result['msg']
            else:
                outcomes['written'] += 1
                for name, data in snapshot(reports).items():
                    assert b'host-000' in data and b'calm-000' not in data, (leave, name)
    assert outcomes['failed'] and outcomes['written'], outcomes  # the sweep saw both a full and a roomy disk


def test_a_mixed_set_is_told_from_a_whole_one(tmp_path):
    """A crash between two replaces leaves some files of the new run beside the old JSON: the gate refuses it."""
    old_dir, new_dir = tmp_path / 'old', tmp_path / 'new'
    run_port_report(old_dir, calm_fleet(), tmp_path)
    run_port_report(new_dir, drifting_fleet(), tmp_path)
    assert gate(old_dir / FILE_NAMES['json']).returncode == 0
    shutil.copy(new_dir / FILE_NAMES['html'], old_dir / FILE_NAMES['html'])
    proc = gate(old_dir / FILE_NAMES['json'])
    assert proc.returncode == 2, proc.stdout
    assert FILE_NAMES['html'] in proc.stdout and 'not of this run' in proc.stdout, proc.stdout


def _start_run(reports, workdir, prefix, slow=False):
    """port_report in the background; ``slow``: every rename it makes waits a second (strace), as on a slow disk."""
    os.makedirs(workdir, exist_ok=True)
    code = ('import sys, json; sys.path[:0] = [%r]; import tests.conftest; '
            'from tests.helpers.report_run import run_port_report; '
            'from tests.adversarial.test_report_set import drifting_fleet; '
            'proc, result = run_port_report(%r, drifting_fleet(%r), %r); print(json.dumps(result))'
            % (os.getcwd(), str(reports), prefix, str(workdir)))
    slow_down = ['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=rename,renameat,renameat2',
                 '-e', 'inject=rename,renameat,renameat2:delay_enter=1s'] if slow else []
    return subprocess.Popen(slow_down + [sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.skipif(shutil.which('strace') is None, reason='needs strace (to slow one run down)')
def test_two_runs_at_once_never_mix(tmp_path):
    """A slow run and a fast one started while the slow one writes: the set left is one run's, whole."""
    reports = tmp_path / 'reports'
    run_port_report(reports, calm_fleet(), tmp_path)
    before = dict((name, os.stat(reports / name).st_mtime_ns) for name in os.listdir(reports))
    slow = _start_run(reports, tmp_path / 'slow', 'slow', slow=True)
    deadline = time.monotonic() + 120
    while dict((name, os.stat(reports / name).st_mtime_ns) for name in os.listdir(reports)) == before:
        assert slow.poll() is None and time.monotonic() < deadline, 'the slow run never wrote'
        time.sleep(0.02)
    fast = _start_run(reports, tmp_path / 'fast', 'fast')
    results = []
    for run in (slow, fast):
        out, _err = run.communicate(timeout=300)
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert all(result and not result.get('failed') for result in results), [r and r.get('msg') for r in results]
    files = snapshot(reports)
    owners = dict((name, [who for who in ('slow', 'fast') if ('%s-000' % who).encode() in data])
                  for name, data in files.items())
    assert len(set(map(tuple, owners.values()))) == 1 and len(owners[FILE_NAMES['json']]) == 1, owners
    assert gate(reports / FILE_NAMES['json'], '--fail-on', 'never').returncode == 0
    kept = sorted(os.listdir(reports / 'history'))
    assert len(kept) == 2, kept  # the calm run and the run that was replaced, each kept once


_WRITE_DRIFT = '''
import sys
sys.path[:0] = [{repo!r}]
import tests.conftest
from ansible_collections.portwarden.compliance.plugins.module_utils import registry
from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import build_report, host_entry
from ansible_collections.portwarden.compliance.plugins.module_utils.report_write import ReportDir, render_set
from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
from tests.adversarial.test_report_set import drifting_fleet
from tests.helpers.report_run import POLICY_INFO
with ReportDir(sys.argv[1]) as target:
    raw, _warning = target.read_previous()
    report = build_report([host_entry(h, a) for h, a in drifting_fleet().items()], POLICY_INFO,
                          registry.registry_info())
    target.write_set(render_set(report, list(FILE_NAMES)), keep=raw, keep_as='2026-01-01T00:00:00Z')
'''


@pytest.mark.skipif(shutil.which('strace') is None, reason='needs strace (to kill the writer at a rename)')
def test_a_crash_between_renames_never_passes_for_a_whole_set(tmp_path):
    """The writer killed (SIGKILL, by strace at the Nth rename) at every point of its commit: what is left is the
    old set, the new set, or a set the gate refuses as mixed; never a mixed set that passes."""
    base = tmp_path / 'base'
    run_port_report(base, calm_fleet(), tmp_path)
    script = tmp_path / 'write_drift.py'
    script.write_text(_WRITE_DRIFT.format(repo=os.getcwd()))
    seen = set()
    for when in range(1, 8):
        trial = tmp_path / ('trial%d' % when)
        shutil.copytree(base, trial)
        proc = subprocess.run(['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=rename,renameat,renameat2',
                               '-e', 'inject=rename,renameat,renameat2:signal=KILL:when=%d' % when,
                               sys.executable, str(script), str(trial)], capture_output=True, text=True, check=False)
        assert proc.returncode in (0, -9, 137), proc.stderr
        files = snapshot(trial)
        new = [name for name, data in files.items() if b'host-000' in data]
        verdict = gate(trial / FILE_NAMES['json'], '--fail-on', 'high')
        if not new:
            seen.add('old')
            assert verdict.returncode == 0, verdict.stdout
        elif len(new) == len(files):
            seen.add('new')
            assert verdict.returncode == 1, verdict.stdout
        else:
            seen.add('mixed')
            assert verdict.returncode == 2 and 'not of this run' in verdict.stdout, (when, new, verdict.stdout)
        if when in (1, 4):  # the next run removes what the killed one left, and writes a whole set
            _proc, result = run_port_report(trial, calm_fleet('next'), tmp_path)
            assert not result['failed'], result['msg']
            assert [name for name in os.listdir(trial) if name.endswith('.tmp')] == []
            assert [name for name in os.listdir(trial / 'history') if name.endswith('.tmp')] == []
            assert gate(trial / FILE_NAMES['json']).returncode == 0
    assert seen == {'old', 'new', 'mixed'}, seen


def test_a_read_only_report_dir_fails_saying_so_and_keeps_the_set(tmp_path):
    with mounts.private_tmpfs(1024) as fs:
        reports = os.path.join(fs.path, 'reports')
        proc, result = run_port_report(reports, calm_fleet(), tmp_path)
        assert not result['failed'], result['msg']
        old = snapshot(reports)
        fs.remount('ro')
        proc, result = run_port_report(reports, drifting_fleet(), tmp_path)
        assert result['failed'] and reports in result['msg'] and 'Read-only file system' in result['msg'], \
            result['msg'] + proc.stdout
        assert 'Traceback' not in proc.stdout + proc.stderr
        assert snapshot(reports) == old
