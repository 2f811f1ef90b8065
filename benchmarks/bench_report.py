"""Benchmark report aggregation: 10,000 synthetic hosts -> the fleet report in every format.

Target (issue 4): report aggregation for 10,000 hosts <= 2 s. Not a test; run by hand:

    .venv/bin/python benchmarks/bench_report.py [--hosts 10000] [--runs 5]

Times build_report (every host, drift against a previous report) and each renderer, in-process.
"""

import argparse
import datetime
import random
import statistics
import time

from collection_path import link_collection


def import_core():
    link_collection()
    from ansible_collections.portwarden.compliance.plugins.module_utils import report_build, report_formats
    return report_build, report_formats


def synthetic_audits(count, rng):
    """A fleet: mostly compliant hosts, some drift (1-5 findings), a few unreachable."""
    audits = {}
    for index in range(count):
        host = 'host%05d' % index
        roll = rng.random()
        if roll < 0.02:
            audits[host] = None  # unreachable: unknown with a reason
            continue
        findings = []
        if roll < 0.30:
            for _finding in range(rng.randint(1, 5)):
                port = rng.choice([855, 856, 857, 858, 859, 8568, 3], )
                findings.append({
                    'rule': 'iana-unassigned-closed', 'severity': rng.choice(['high', 'medium', 'critical']),
                    'status': 'drift' if rng.random() < 0.9 else 'waived', 'protocol': 'tcp', 'family': 'ipv4',
                    'address': '0.0.0.0', 'port': port, 'service': None, 'waived': False, 'waiver': None,
                    'message': 'tcp 0.0.0.0:%d must be closed but is listening' % port,
                    'processes': [{'pid': 1000 + index, 'name': 'agent', 'user': 'nobody', 'uid': 65534,
                                   'exe': '/opt/agent/bin/agent', 'unit': 'agent.service'}]})
        audits[host] = {'status': 'drift' if any(f['status'] == 'drift' for f in findings) else 'compliant',
                        'findings': findings, 'reasons': [], 'warnings': [],
                        'coverage': {'complete': True, 'errors': [], 'backend': 'auto', 'sockets': 12},
                        'evaluated_on': '2026-11-26'}
    return audits


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=10000)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--seed', type=int, default=1)
    args = parser.parse_args()
    rb, rf = import_core()
    rng = random.Random(args.seed)
    policy = {'name': 'bench', 'sha256': 'a' * 64,
              'rules': [{'id': 'iana-unassigned-closed', 'severity': 'high', 'description': 'closed'}]}
    registry = {'date': '2026-08-17', 'sha256': 'b' * 64, 'records': 14533}
    audits = synthetic_audits(args.hosts, rng)
    previous = rb.build_report([rb.host_entry(host, audit, None if audit else 'unreachable: timeout')
                                for host, audit in synthetic_audits(args.hosts, random.Random(args.seed + 1)).items()],
                               policy, registry)
    timings = dict((name, []) for name in ['build'] + list(rf.RENDERERS) + ['total'])
    for _run in range(args.runs):
        started = time.perf_counter()
        hosts = [rb.host_entry(host, audit, None if audit else 'unreachable: timeout') for host, audit in audits.items()]
        report = rb.build_report(hosts, policy, registry, generated_at=datetime.datetime.now(datetime.timezone.utc),
                                 previous=previous)
        timings['build'].append(time.perf_counter() - started)
        for name, render in rf.RENDERERS.items():
            begun = time.perf_counter()
            render(report)
            timings[name].append(time.perf_counter() - begun)
        timings['total'].append(time.perf_counter() - started)
    print('%d hosts (%d drift, %d unknown), median of %d runs:' % (
        args.hosts, report['summary']['drift'], report['summary']['unknown'], args.runs))
    for name, values in timings.items():
        print('  %-10s %7.1f ms' % (name, statistics.median(values) * 1000))
    total = statistics.median(timings['total'])
    print('target <= 2 s at 10,000 hosts: %s (%.2f s)' % ('PASS' if total <= 2 else 'MISS', total))


if __name__ == '__main__':
    main()
