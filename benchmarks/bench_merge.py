"""Benchmark the merge: 100 parts totalling 100,000 synthetic hosts -> one fleet report in every format.

Not a test; run by hand (about 5 minutes on a 2-CPU VM, most of it writing the parts):

    .venv-test/bin/python benchmarks/bench_merge.py [--parts 100] [--hosts 100000] [--runs 3] [--json out.json]

Setup (not timed): writes the parts as port_report writes them with scope part (every format, the JSON's
manifest, under parts/RUN_ID/), 4 drift findings on 1 host in 10, and a hosts file of every host.

Timed, as whole processes, alternately, ``--runs`` times each (wall time from spawn to reaped exit, peak RSS from
GNU time's %M):

- **merge**: ``portwarden merge PARTS_DIR --report-dir OUT --hosts-file HOSTS`` (find, load and check every part
  against its schema and its set, merge, render the five formats, write the set, gate);
- **one process today**: the same 100,000 hosts' audit results built into one fleet report (host_entry,
  build_report), rendered in the five formats and written with ReportDir, as port_report does on one controller.

Target (issue 11): merge <= 1.2x one process, peak RSS <= 1.5 GB. Then the merged HTML is opened in headless
chromium (``--dump-dom``) to check that a browser renders it, with the time it took.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from collection_path import REPO, link_collection

FINDINGS_EVERY = 10
FINDINGS_PER_HOST = 4


def audits(first, count):
    """Synthetic audit results of hosts ``first`` .. ``first + count - 1``: 4 drift findings on 1 host in 10."""
    result = {}
    for index in range(first, first + count):
        findings = []
        if index % FINDINGS_EVERY == 0:
            for offset in range(FINDINGS_PER_HOST):
                port = 856 + offset
                findings.append({
                    'rule': 'iana-unassigned-closed', 'severity': 'high', 'status': 'drift', 'protocol': 'tcp',
                    'family': 'ipv4', 'address': '0.0.0.0', 'port': port, 'service': None, 'waived': False,
                    'waiver': None, 'message': 'tcp 0.0.0.0:%d must be closed but is listening' % port,
                    'processes': [{'pid': 1000 + index, 'name': 'agent', 'user': 'nobody', 'uid': 65534,
                                   'exe': '/opt/agent/bin/agent', 'unit': 'agent.service'}]})
        result['host%06d' % index] = {
            'status': 'drift' if findings else 'compliant', 'findings': findings, 'reasons': [], 'warnings': [],
            'coverage': {'complete': True, 'errors': [], 'backend': 'auto', 'sockets': 12}, 'evaluated_on': '2026-12-01'}
    return result


POLICY = {'name': 'bench', 'sha256': 'a' * 64,
          'rules': [{'id': 'iana-unassigned-closed', 'severity': 'high', 'description': 'closed'}]}


def write_parts(directory, parts, hosts):
    from ansible_collections.portwarden.compliance.plugins.module_utils import registry, report_build, report_merge
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_write import PartDir, render_set

    info = registry.registry_info()
    size = hosts // parts
    for number in range(parts):
        results = audits(number * size, size)
        report = report_build.build_report([report_build.host_entry(host, audit) for host, audit in results.items()],
                                           POLICY, info, run_id=report_merge.make_run_id())
        report['scope'] = report_merge.report_scope('part', report['run_id'], list(results), POLICY, info)
        with PartDir(directory, report['run_id']) as target:
            target.write_set(render_set(report, list(FILE_NAMES)))
    return size * parts


def one_process(out, hosts):
    """Today's one-controller report of ``hosts`` hosts (the --inner-one-process child)."""
    from ansible_collections.portwarden.compliance.plugins.module_utils import registry, report_build
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_write import ReportDir, render_set

    results = audits(0, hosts)
    entries = [report_build.host_entry(host, audit) for host, audit in results.items()]
    with ReportDir(out) as target:
        report = report_build.build_report(entries, POLICY, registry.registry_info())
        target.write_set(render_set(report, list(FILE_NAMES)))


def timed(argv, env):
    """``(wall seconds, peak RSS MiB, returncode)`` of one whole process, under GNU time."""
    with tempfile.NamedTemporaryFile('r', suffix='.time') as out:
        started = time.perf_counter()
        proc = subprocess.run(['/usr/bin/time', '-f', '%M', '-o', out.name] + argv, env=env, capture_output=True,
                              text=True, check=False)
        wall = time.perf_counter() - started
        rss_kib = int(out.read().strip().splitlines()[-1])
    return wall, rss_kib / 1024.0, proc


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--parts', type=int, default=100)
    parser.add_argument('--hosts', type=int, default=100000)
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--json', metavar='PATH')
    parser.add_argument('--keep', action='store_true', help='keep the working directory')
    parser.add_argument('--inner-one-process', nargs=2, metavar=('OUT', 'HOSTS'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = link_collection()
    if args.inner_one_process:
        one_process(args.inner_one_process[0], int(args.inner_one_process[1]))
        return 0
    work = tempfile.mkdtemp(prefix='pw-bench-merge-')
    env = dict(os.environ, PYTHONPATH=root, PYTHONDONTWRITEBYTECODE='1')
    try:
        started = time.perf_counter()
        parts_dir = os.path.join(work, 'slices')
        total = write_parts(parts_dir, args.parts, args.hosts)
        hosts_file = os.path.join(work, 'hosts.txt')
        with open(hosts_file, 'w') as handle:
            handle.write(''.join('host%06d\n' % index for index in range(total)))
        size = sum(os.path.getsize(os.path.join(dirpath, name)) for dirpath, _dirs, names in os.walk(parts_dir)
                   for name in names)
        print('setup: %d parts, %d hosts, %.0f MB on disk, in %.1f s'
              % (args.parts, total, size / 1e6, time.perf_counter() - started))
        merge_argv = [sys.executable, '-m', 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli', 'merge',
                      parts_dir, '--hosts-file', hosts_file, '--fail-on', 'never']
        one_argv = [sys.executable, os.path.abspath(__file__), '--inner-one-process']
        samples = {'merge': [], 'one process': []}
        for run in range(args.runs):
            for name in ('merge', 'one process'):
                out = os.path.join(work, 'out-%s-%d' % (name.replace(' ', '-'), run))
                argv = merge_argv + ['--report-dir', out] if name == 'merge' else one_argv + [out, str(total)]
                wall, rss, proc = timed(argv, env)
                if proc.returncode != 0:
                    print(proc.stdout[-2000:], proc.stderr[-2000:])
                    raise SystemExit('%s failed with exit %d' % (name, proc.returncode))
                samples[name].append({'wall_s': wall, 'peak_rss_mib': rss})
                print('  run %d %-12s %7.2f s  %7.0f MiB' % (run + 1, name, wall, rss))
        merged = os.path.join(work, 'out-merge-0', 'portwarden-report.json')
        with open(merged) as handle:
            report = json.load(handle)
        assert report['summary']['hosts'] == total, report['summary']
        assert report['summary']['drift'] == total // FINDINGS_EVERY
        sizes = dict((name, os.path.getsize(os.path.join(work, 'out-merge-0', name)))
                     for name in sorted(os.listdir(os.path.join(work, 'out-merge-0'))) if not name.startswith('.'))
        median = dict((name, statistics.median(item['wall_s'] for item in values)) for name, values in samples.items())
        peak = max(item['peak_rss_mib'] for item in samples['merge'])
        ratio = median['merge'] / median['one process']
        print('median of %d runs: merge %.2f s, one process %.2f s: %.2fx (target <= 1.2x: %s); merge peak RSS %.0f MiB '
              '(target <= 1.5 GB: %s)' % (args.runs, median['merge'], median['one process'], ratio,
                                          'PASS' if ratio <= 1.2 else 'MISS', peak, 'PASS' if peak * 1048576 <= 1.5e9
                                          else 'MISS'))
        print('merged files: %s' % ', '.join('%s %.1f MB' % (name, size / 1e6) for name, size in sizes.items()))
        browser = shutil.which('chromium') or shutil.which('chromium-browser')
        html = {}
        if browser:
            started = time.perf_counter()
            proc = subprocess.run([browser, '--headless', '--no-sandbox', '--disable-gpu', '--dump-dom',
                                   'file://' + os.path.join(work, 'out-merge-0', 'portwarden-report.html')],
                                  capture_output=True, text=True, timeout=600, check=False)
            html = {'exit': proc.returncode, 'seconds': time.perf_counter() - started, 'dom_bytes': len(proc.stdout)}
            print('chromium --headless --dump-dom of the merged HTML: exit %d in %.1f s, DOM %.1f MB' % (
                html['exit'], html['seconds'], html['dom_bytes'] / 1e6))
        if args.json:
            with open(args.json, 'w') as handle:
                json.dump({'parts': args.parts, 'hosts': total, 'samples': samples, 'median': median, 'ratio': ratio,
                           'peak_rss_mib': peak, 'sizes': sizes, 'html': html, 'load': os.getloadavg()}, handle, indent=2)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print('kept', work)
    return 0


if __name__ == '__main__':
    assert os.path.isdir(os.path.join(REPO, 'plugins'))
    sys.exit(main())
