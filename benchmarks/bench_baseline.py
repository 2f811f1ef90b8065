"""Benchmark ``portwarden baseline`` from a 10,000-host fleet report audited under the survey policy.

Not a test; run by hand (about a minute on a 2-CPU VM):

    .venv-test/bin/python benchmarks/bench_baseline.py [--hosts 10000] [--runs 5] [--json out.json]

Setup (not timed): a synthetic fleet of ``--hosts`` hosts in 20 inventory groups of equal size, each host's
listeners evaluated under the survey policy (evaluate_host), built into one fleet report (host_entry, build_report)
as port_report writes it, and a YAML inventory of the groups. Every host runs sshd on 22 and an exporter on 9100;
the groups come in 5 kinds (web: nginx on 80 and 443; db: postgres on loopback 5432; cache: redis on loopback
6379 and 6390; queue: rabbitmq on 5672; search: java on 9200 and 9300), each kind a parent group of 4; one host
in 100 has an odd agent on a port of its own (7000-7026, all assigned); one host in 1,000 has a partial gather (skipped,
unknown) and 1 host in 500 a listener on 856 (to confirm).

Timed, as whole processes, ``--runs`` times each (wall time from spawn to reaped exit; CPU time and peak RSS from
wait4):
``portwarden baseline REPORT -i INVENTORY -o POLICY --force`` (read and check the report against its schema, read
the inventory with ansible-core, group, render, parse the text back, validate it and re-evaluate every host
against it), and the same without ``-i`` (scoped to host names). Reported: median, min and max wall, peak RSS and
the number of rules produced.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from collection_path import link_collection

GROUP_SERVICES = [
    ('web', 'nginx', [(80, '0.0.0.0'), (443, '0.0.0.0')]),
    ('db', 'postgres', [(5432, '127.0.0.1')]),
    ('cache', 'redis-server', [(6379, '127.0.0.1'), (6390, '127.0.0.1')]),
    ('queue', 'beam.smp', [(5672, '0.0.0.0')]),
    ('search', 'java', [(9200, '0.0.0.0'), (9300, '0.0.0.0')]),
]
GROUPS = 20


def _socket(port, address, name, pid, unit=None):
    return {'protocol': 'tcp', 'family': 'ipv6' if ':' in address else 'ipv4', 'address': address, 'port': port,
            'v6only': False if ':' in address else None, 'ephemeral': False, 'inode': pid * 10 + port % 10,
            'processes': [{'pid': pid, 'name': name, 'user': 'root', 'uid': 0, 'exe': '/usr/sbin/%s' % name,
                           'unit': unit}]}


def fleet_gather(index, group):
    kind, name, ports = GROUP_SERVICES[group % len(GROUP_SERVICES)]
    sockets = [_socket(22, '0.0.0.0', 'sshd', 100, 'ssh.service'), _socket(22, '::', 'sshd', 100, 'ssh.service'),
               _socket(9100, '0.0.0.0', 'node_exporter', 200, 'node-exporter.service')]
    sockets.extend(_socket(port, address, name, 300 + group, '%s.service' % kind) for port, address in ports)
    if index % 100 == 7:
        sockets.append(_socket(7000 + (index // 100) % 27, '0.0.0.0', 'agent', 400))
    if index % 500 == 3:
        sockets.append(_socket(856, '0.0.0.0', 'vendor-agent', 500))
    complete = index % 1000 != 5
    return {'sockets': sockets, 'coverage': {'complete': complete, 'errors': [] if complete else ['not root'],
                                             'sockets': len(sockets)}}


def setup(directory, hosts):
    from ansible_collections.portwarden.compliance.plugins.module_utils import policy_baseline, registry
    from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import compile_policy, evaluate_host
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import build_report, host_entry

    compiled = compile_policy(policy_baseline.SURVEY_POLICY)
    entries = []
    groups = {}
    per_group = max(1, hosts // GROUPS)
    for index in range(hosts):
        host = 'host%05d' % index
        group = min(index // per_group, GROUPS - 1)
        kind = GROUP_SERVICES[group % len(GROUP_SERVICES)][0]
        groups.setdefault('%s%02d' % (kind, group), []).append(host)
        entries.append(host_entry(host, evaluate_host(fleet_gather(index, group), compiled, host)))
    info = dict(compiled.info(), rules=[{'id': rule.id, 'severity': rule.severity, 'description': rule.description}
                                        for rule in compiled.rules])
    report = build_report(entries, info, registry.registry_info())
    report_path = os.path.join(directory, 'portwarden-report.json')
    with open(report_path, 'w') as handle:
        json.dump(report, handle)
    # A parent group per kind (web: web00, web05, ...), as inventories group like hosts: the kind's service rule is
    # scoped to it; the per-group ones hold the hosts.
    parents = {}
    for name in sorted(groups):
        parents.setdefault(name.rstrip('0123456789'), {})[name] = {'hosts': dict((host, None) for host in groups[name])}
    inventory = {'all': {'children': dict((kind, {'children': children}) for kind, children in sorted(parents.items()))}}
    inventory_path = os.path.join(directory, 'inventory.json')  # JSON is YAML: ansible-core's yaml plugin reads it
    with open(inventory_path, 'w') as handle:
        json.dump(inventory, handle)
    return report_path, inventory_path, os.path.getsize(report_path)


def run_once(argv, env):
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - started
    stderr = proc.stderr.read().decode('utf-8', 'replace')
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit('%s failed (%d): %s' % (' '.join(argv), code, stderr))
    return elapsed, usage.ru_maxrss / 1024.0, stderr, usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=10000)
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--json', metavar='PATH', help='also write the figures here')
    args = parser.parse_args()
    root = link_collection('pw-bench-baseline-')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get('PYTHONPATH')])),
               PYTHONPYCACHEPREFIX=tempfile.mkdtemp(prefix='pw-bench-pycache-'))
    directory = tempfile.mkdtemp(prefix='pw-bench-baseline-')
    began = time.monotonic()
    report_path, inventory_path, size = setup(directory, args.hosts)
    print('setup: %d hosts, report %.1f MB, %.1f s' % (args.hosts, size / 1e6, time.monotonic() - began))
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import load_policy

    cli = [sys.executable, '-m', 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli', 'baseline']
    figures = {'hosts': args.hosts, 'report_bytes': size, 'load_average': os.getloadavg()[0], 'cases': {}}
    for case, extra in (('with inventory', ['-i', inventory_path]), ('host names only', [])):
        output = os.path.join(directory, 'policy-%s.yml' % case.replace(' ', '-'))
        walls, peaks, cpus = [], [], []
        stderr = ''
        for _run in range(args.runs):
            wall, peak, stderr, cpu = run_once(cli + [report_path, '-o', output, '--force'] + extra, env)
            walls.append(wall)
            peaks.append(peak)
            cpus.append(cpu)
        policy = load_policy(output)
        rules = len(policy['rules'])
        scoped = sum(1 for rule in policy['rules'] if any(item.startswith('group:') for item in rule.get('hosts', [])))
        figures['cases'][case] = {'median_s': statistics.median(walls), 'min_s': min(walls), 'max_s': max(walls),
                                  'median_cpu_s': statistics.median(cpus),
                                  'peak_rss_mib': max(peaks), 'rules': rules, 'group_scoped_rules': scoped,
                                  'policy_bytes': os.path.getsize(output), 'summary': stderr.splitlines()[-1:]}
        print('%-16s median %.2f s wall (min %.2f, max %.2f), %.2f s CPU, peak RSS %.0f MiB, %d rules (%d scoped to a '
              'group), policy %.1f kB' % (case, statistics.median(walls), min(walls), max(walls), statistics.median(cpus),
                                          max(peaks), rules, scoped, os.path.getsize(output) / 1e3))
        print('  ' + '\n  '.join(line for line in stderr.splitlines() if 'rules (' in line))
    print('load average %.2f' % os.getloadavg()[0])
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(figures, handle, indent=2)


if __name__ == '__main__':
    main()
