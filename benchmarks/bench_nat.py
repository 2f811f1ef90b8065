"""Benchmark what reading the NAT adds to ``portwarden gather``: a host with 5,000 DNAT rules and 10,000 listeners.

Not a test: run it by hand, as root (see benchmarks/README.md)::

    sudo .venv-test/bin/python benchmarks/bench_nat.py --runs 7

It builds a fresh network namespace (``pwb-nat-XXXXXXXX``), opens the listeners there (tests/helpers/listeners.py,
2,500 per process), writes the DNAT rules as Docker writes them through iptables-nft (one DOCKER chain, one rule per
published port, each to its own container address), then runs ``portwarden gather --format json --compact`` with
``--nat off`` and ``--nat auto`` round-robin (one warm-up round), and reports the median wall time of each and the
added cost. Target: the NAT read adds at most 20% to the gather. The namespace and its processes are removed on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LISTENERS = os.path.join(REPO, 'tests', 'helpers', 'listeners.py')
CLI_MODULE = 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli'
TARGET_ADDED = 0.20
PER_PROCESS = 2500


def rules_text(count, base_port=20000):
    lines = ['*nat', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':DOCKER - [0:0]',
             '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
             '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER', '-A DOCKER -i docker0 -j RETURN']
    lines += ['-A DOCKER ! -i docker0 -p tcp -m tcp --dport %d -j DNAT --to-destination 172.17.%d.%d:80'
              % (base_port + index, index // 250, index % 250 + 2) for index in range(count)]
    return '\n'.join(lines + ['COMMIT']) + '\n'


def collections_path():
    root = tempfile.mkdtemp(prefix='pwb-nat-collections-')
    os.makedirs(os.path.join(root, 'ansible_collections', 'portwarden'))
    os.symlink(REPO, os.path.join(root, 'ansible_collections', 'portwarden', 'compliance'))
    return root


def timed(argv, env):
    """``(wall seconds, CPU seconds, result)``: CPU is user + system of the gather and the tools it waited for
    (wait4), which a loaded machine disturbs less than the wall time."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env)
        out = proc.stdout.read()
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.stdout.close()
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            err.seek(0)
            raise SystemExit('gather failed (%d): %s' % (code, err.read().decode()[-400:]))
    return wall, usage.ru_utime + usage.ru_stime, json.loads(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--rules', type=int, default=5000)
    parser.add_argument('--listeners', type=int, default=10000)
    parser.add_argument('--runs', type=int, default=7)
    parser.add_argument('--python', default=sys.executable)
    parser.add_argument('--json', metavar='PATH', help='also write the figures here')
    args = parser.parse_args()
    name = 'pwb-nat-%s' % uuid.uuid4().hex[:8]
    holders = []
    subprocess.run(['ip', 'netns', 'add', name], check=True)
    try:
        prefix = ['ip', 'netns', 'exec', name]
        subprocess.run(prefix + ['ip', 'link', 'set', 'lo', 'up'], check=True)
        specs = tempfile.mkdtemp(prefix='pwb-nat-specs-')
        for start in range(0, args.listeners, PER_PROCESS):
            spec = os.path.join(specs, '%d.json' % start)
            with open(spec, 'w') as handle:
                json.dump([{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 30000 + index}
                           for index in range(start, min(start + PER_PROCESS, args.listeners))], handle)
            holder = subprocess.Popen(prefix + [sys.executable, LISTENERS, '@' + spec], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
            holder.stdout.readline()
            holders.append(holder)
        subprocess.run(prefix + ['iptables-nft-restore'], input=rules_text(args.rules), text=True, check=True)
        env = dict(os.environ, PYTHONPATH=collections_path(), PYTHONDONTWRITEBYTECODE='1')
        argv = {mode: prefix + [args.python, '-m', CLI_MODULE, 'gather', '--format', 'json', '--compact', '--nat', mode]
                for mode in ('off', 'auto')}
        walls = {'off': [], 'auto': []}
        cpus = {'off': [], 'auto': []}
        for run in range(args.runs + 1):
            for mode in ('off', 'auto'):
                wall, cpu, result = timed(argv[mode], env)
                if run:
                    walls[mode].append(wall)
                    cpus[mode].append(cpu)
                if mode == 'auto':
                    assert len(result['exposures']) == args.rules, len(result['exposures'])
                    assert result['coverage']['complete'], result['coverage']['errors']
                assert len(result['sockets']) == args.listeners, len(result['sockets'])
        off, auto = statistics.median(walls['off']), statistics.median(walls['auto'])
        cpu_off, cpu_auto = statistics.median(cpus['off']), statistics.median(cpus['auto'])
        figures = {'rules': args.rules, 'listeners': args.listeners, 'runs': args.runs, 'off_s': round(off, 4),
                   'auto_s': round(auto, 4), 'added': round(auto / off - 1, 4), 'target_added': TARGET_ADDED,
                   'cpu_off_s': round(cpu_off, 4), 'cpu_auto_s': round(cpu_auto, 4),
                   'cpu_added': round(cpu_auto / cpu_off - 1, 4), 'load_average': os.getloadavg()[0],
                   'off_all_s': [round(w, 4) for w in walls['off']], 'auto_all_s': [round(w, 4) for w in walls['auto']]}
        print('gather --nat off : median %.3f s wall, %.3f s CPU' % (off, cpu_off))
        print('gather --nat auto: median %.3f s wall, %.3f s CPU (%d DNAT rules, %d listeners)'
              % (auto, cpu_auto, args.rules, args.listeners))
        print('added by the NAT read: %+.1f%% wall, %+.1f%% CPU (target <= %d%%): %s; load average %.1f'
              % (100 * (auto / off - 1), 100 * (cpu_auto / cpu_off - 1), 100 * TARGET_ADDED,
                 'met' if auto / off - 1 <= TARGET_ADDED else 'NOT met', os.getloadavg()[0]))
        if args.json:
            with open(args.json, 'w') as handle:
                json.dump(figures, handle, indent=2)
    finally:
        for holder in holders:
            holder.stdin.close()
            holder.wait()
        subprocess.run(['ip', 'netns', 'del', name], check=False)


if __name__ == '__main__':
    main()
