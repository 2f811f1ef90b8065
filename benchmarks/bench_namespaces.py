"""Benchmark ``namespaces='all'``: what each extra network namespace costs the gather.

Not a test: run it by hand, as root (see benchmarks/README.md)::

    sudo .venv-test/bin/python benchmarks/bench_namespaces.py [--counts 1 10 100] [--listeners 10] [--runs 15]

Target (issue): under 2 ms per extra namespace beyond the fd walk.

Set-up: a fresh network namespace ``pwb-ns-XXXXXXXX`` (the gather's "host"), and inside it a fresh PID
namespace with its own /proc (``unshare --pid --fork --mount-proc``), where this script re-executes
itself (``--inner``) as PID 1. Only the benchmark's processes are then visible, so namespaces=all finds
exactly the namespaces made here, whatever else runs on the machine. The inner process holds L
listeners in the host namespace, and forks one child per extra namespace that unshares a new network
namespace and opens L listeners there (70% TCP, IPv4 and IPv6, 30% UDP). Counts are cumulative: the
namespaces for 1 are kept for 10, and so on. Every child dies with PID 1 (PR_SET_PDEATHSIG and the end
of the PID namespace); the host namespace is deleted on exit, on an exception and on Ctrl-C.

Measured, for each count N, in round-robin, median of R runs after one warm-up round:
- in-process: ``gather_listening_sockets(namespaces='host')`` and ``namespaces='all'`` (perf_counter);
- whole process: ``portwarden gather --format json --compact`` with ``--namespaces host`` and ``all``
  (spawn to reaped exit, stdout read fully), unless ``--no-cli``.
Both modes walk the same processes' fds once, so ``all - host`` is the cost of the namespaces beyond
the fd walk (discovery, entering, dumping, describing the extra owners, building the entries), and
``(all - host) / N`` the cost per extra namespace. Steps of namespaces=all are timed apart too
(discovery of every namespace; entering and dumping one).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLI_MODULE = 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli'
TARGET_MS_PER_NAMESPACE = 2.0
CLONE_NEWNET = 0x40000000
PRIVATE_PID_NAMESPACE = 'namespaces=all: the gather runs in a private PID namespace'
PR_SET_PDEATHSIG = 1


# --------------------------------------------------------------------------- inside the PID namespace

def listener_specs(count):
    """``count`` listeners: 70% TCP (IPv4 wildcard, IPv6 V6ONLY wildcard), 30% UDP; ports from 10000."""
    specs = []
    for index in range(count):
        protocol = 'udp' if index % 10 >= 7 else 'tcp'
        address = '::' if index % 2 else '0.0.0.0'
        specs.append((protocol, address, 10000 + index))
    return specs


def open_listeners(count):
    held = []
    for protocol, address, port in listener_specs(count):
        family = socket.AF_INET6 if ':' in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM if protocol == 'tcp' else socket.SOCK_DGRAM)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        if protocol == 'tcp':
            sock.listen(16)
        held.append(sock)
    return held


def spawn_namespace(libc, listeners):
    """Fork a child that enters a new network namespace, opens ``listeners`` sockets and waits to die."""
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the parent's code
        try:
            for name in os.listdir('/proc/self/fd'):  # not the parent's sockets: each child holds its own only
                if int(name) > 2 and int(name) != ready_write:
                    try:
                        os.close(int(name))
                    except OSError:
                        pass
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if libc.unshare(CLONE_NEWNET) != 0:
                os._exit(3)
            held = open_listeners(listeners)
            os.write(ready_write, b'1')
            while held:
                signal.pause()
        finally:
            os._exit(1)
    os.close(ready_write)
    ready = os.read(ready_read, 1)
    os.close(ready_read)
    if ready != b'1':
        raise RuntimeError('a namespace child failed (pid %d)' % pid)
    return pid


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def spawn_timed(argv, env):
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    out = proc.stdout.read()
    proc.stdout.close()
    code = proc.wait()
    return time.perf_counter() - start, code, out


def summary(samples):
    return {'median_ms': statistics.median(samples) * 1000, 'min_ms': min(samples) * 1000, 'max_ms': max(samples) * 1000,
            'samples_ms': [sample * 1000 for sample in samples]}


def check_result(result, expected_namespaces, expected_sockets, mode):
    coverage = result['coverage']
    # It runs in a private PID namespace (to see only the namespaces it makes), which namespaces=all says is partial.
    errors = [error for error in coverage['errors'] if not error.startswith(PRIVATE_PID_NAMESPACE)]
    if errors or (mode != 'all' and not coverage['complete']) or coverage['sockets'] != expected_sockets:
        raise RuntimeError('%s gather: complete=%s sockets=%d (expected %d): %s'
                           % (mode, coverage['complete'], coverage['sockets'], expected_sockets, coverage['errors']))
    if mode == 'all' and len(coverage['namespaces']['scanned']) != expected_namespaces:
        raise RuntimeError('all gather scanned %d namespaces, expected %d' % (len(coverage['namespaces']['scanned']),
                                                                              expected_namespaces))


def inner(config):
    sys.path.insert(0, config['collections'])
    from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces, gather_netlink
    from ansible_collections.portwarden.compliance.plugins.module_utils.gather_sockets import gather_listening_sockets

    if os.getpid() != 1:
        raise RuntimeError('--inner must run as PID 1 of its own PID namespace')
    libc = ctypes.CDLL(None, use_errno=True)
    listeners = config['listeners']
    runs = config['runs']
    env = dict(os.environ, PYTHONPATH=config['collections'], PYTHONDONTWRITEBYTECODE='1')
    cli = [sys.executable, '-m', CLI_MODULE, 'gather', '--format', 'json', '--compact', '--namespaces']
    held = open_listeners(listeners)  # the host namespace's own listeners
    children = []
    results = []
    for count in config['counts']:
        while len(children) < count:
            children.append(spawn_namespace(libc, listeners))
        expected_all = (count + 1) * listeners
        for mode, expected in (('host', listeners), ('all', expected_all)):
            check_result(gather_listening_sockets(namespaces=mode), count + 1, expected, mode)
        samples = {'host': [], 'all': [], 'cli host': [], 'cli all': [], 'discovery': [], 'one namespace': []}
        some_child = children[-1]
        for round_index in range(runs + 1):
            taken = {}
            taken['host'], _result = timed(gather_listening_sockets, namespaces='host')
            taken['all'], _result = timed(gather_listening_sockets, namespaces='all')
            taken['discovery'], _found = timed(gather_namespaces.discover_namespaces)
            inode = gather_namespaces.pid_namespace(some_child)

            def one_namespace(inode=inode, pid=some_child):
                fd, _pid = gather_namespaces.open_namespace(inode, [pid])
                try:
                    return gather_namespaces.run_in_namespace(
                        fd, inode, lambda: [gather_netlink.dump_listening(family, protocol)
                                            for protocol in ('tcp', 'udp') for family in ('ipv4', 'ipv6')])
                finally:
                    os.close(fd)

            taken['one namespace'], _dumps = timed(one_namespace)
            if config['cli']:
                for mode in ('host', 'all'):
                    wall, code, out = spawn_timed(cli + [mode], env)
                    if code != 0:
                        raise RuntimeError('portwarden gather --namespaces %s exited %d' % (mode, code))
                    if round_index == 0:
                        check_result(json.loads(out), count + 1, expected_all if mode == 'all' else listeners, mode)
                    taken['cli ' + mode] = wall
            if round_index == 0:
                continue  # warm-up
            for key, value in taken.items():
                samples[key].append(value)
        entry = {'namespaces': count, 'listeners_per_namespace': listeners, 'sockets_all': expected_all,
                 'processes': count + 1, 'timings': {key: summary(value) for key, value in samples.items() if value}}
        for prefix, key in (('', ''), ('cli ', 'cli_')):
            if samples[prefix + 'all']:
                extra = entry['timings'][prefix + 'all']['median_ms'] - entry['timings'][prefix + 'host']['median_ms']
                entry[key + 'extra_ms'] = extra
                entry[key + 'per_namespace_ms'] = extra / count
                # From the fastest runs: less disturbed by whatever else the machine is doing.
                entry[key + 'per_namespace_min_ms'] = (entry['timings'][prefix + 'all']['min_ms']
                                                       - entry['timings'][prefix + 'host']['min_ms']) / count
        results.append(entry)
        sys.stderr.write('%d extra namespaces: in-process all-host %.2f ms (%.3f ms each)\n'
                         % (count, entry['extra_ms'], entry['per_namespace_ms']))
    del held
    return results


# --------------------------------------------------------------------------- outside: set-up and report

def link_collections(scratch):
    root = os.path.join(scratch, 'collections')
    link = os.path.join(root, 'ansible_collections', 'portwarden', 'compliance')
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.islink(link):
        os.symlink(REPO, link)
    return root


def run_outer(args):
    sys.path.insert(0, os.path.join(REPO, 'tests', 'helpers'))
    import netns  # tests/helpers/netns.py: kill_namespace

    if os.geteuid() != 0 or not netns.have_netns():
        sys.stderr.write('bench_namespaces.py must run as root with `ip netns` available\n')
        return 2
    scratch = '/tmp/pwb-ns-%s' % uuid.uuid4().hex[:8]
    name = os.path.basename(scratch)
    os.makedirs(scratch)
    config = {'collections': link_collections(scratch), 'counts': sorted(set(args.counts)), 'listeners': args.listeners,
              'runs': args.runs, 'cli': not args.no_cli, 'output': os.path.join(scratch, 'results.json')}
    config_path = os.path.join(scratch, 'config.json')
    with open(config_path, 'w') as handle:
        json.dump(config, handle)
    previous = signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))
    try:
        subprocess.run(['ip', 'netns', 'add', name], check=True)
        subprocess.run(['ip', 'netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up'], check=True)
        load = os.getloadavg()
        inner_run = subprocess.run(['ip', 'netns', 'exec', name, 'unshare', '--pid', '--fork', '--mount-proc', '--kill-child',
                                    sys.executable, os.path.abspath(__file__), '--inner', config_path], check=False)
        if inner_run.returncode != 0:
            sys.stderr.write('the inner benchmark failed (exit %d)\n' % inner_run.returncode)
            return 1
        with open(config['output']) as handle:
            results = json.load(handle)
    finally:
        netns.kill_namespace(name)
        signal.signal(signal.SIGTERM, previous)
        subprocess.run(['rm', '-rf', scratch], check=False)
    report(results, args, load)
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'date': datetime.date.today().isoformat(), 'load': load, 'config': config, 'results': results},
                      handle, indent=2)
    return 0


def _cell(timing, digits=2):
    return '%.*f (%.*f)' % (digits, timing['median_ms'], digits, timing['min_ms'])


def report(results, args, load):
    print('# namespaces=all: cost per extra network namespace (%d listeners each)\n' % args.listeners)
    print('%s, Python %s, %d CPUs, load %.2f %.2f %.2f; median of %d runs after one warm-up round; milliseconds.\n'
          % (datetime.date.today().isoformat(), sys.version.split()[0], os.cpu_count() or 0, load[0], load[1], load[2], args.runs))
    print('In-process (`gather_listening_sockets`); median (min):\n')
    print('| extra namespaces | sockets (all) | host | all | all - host | per extra namespace | discovery | enter + dump one |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|')
    for entry in results:
        timings = entry['timings']
        print('| %d | %d | %s | %s | %.2f | **%.3f** (%.3f) | %s | %s |' % (
            entry['namespaces'], entry['sockets_all'], _cell(timings['host']), _cell(timings['all']),
            entry['extra_ms'], entry['per_namespace_ms'], entry['per_namespace_min_ms'], _cell(timings['discovery'], 3),
            _cell(timings['one namespace'], 3)))
    if 'cli_extra_ms' in results[0]:
        print('\nWhole process (`portwarden gather --format json --compact --namespaces host|all`); median (min):\n')
        print('| extra namespaces | host | all | all - host | per extra namespace |')
        print('|---:|---:|---:|---:|---:|')
        for entry in results:
            timings = entry['timings']
            print('| %d | %s | %s | %.1f | %.3f (%.3f) |' % (
                entry['namespaces'], _cell(timings['cli host'], 1), _cell(timings['cli all'], 1), entry['cli_extra_ms'],
                entry['cli_per_namespace_ms'], entry['cli_per_namespace_min_ms']))
    if len(results) > 1:
        first, last = results[0], results[-1]
        slope = (last['extra_ms'] - first['extra_ms']) / (last['namespaces'] - first['namespaces'])
        print('\nGrowth (in-process): %.3f ms per namespace between %d and %d extra namespaces (marginal cost).'
              % (slope, first['namespaces'], last['namespaces']))
    print('\nTarget: < %.1f ms per extra namespace beyond the fd walk (in-process all - host, each count):' % TARGET_MS_PER_NAMESPACE)
    for entry in results:
        verdict = 'PASS' if entry['per_namespace_ms'] < TARGET_MS_PER_NAMESPACE else 'MISS'
        print('- %d extra namespaces: %.3f ms per namespace: %s' % (entry['namespaces'], entry['per_namespace_ms'], verdict))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--counts', type=int, nargs='+', default=[1, 10, 100], help='extra namespaces (default: 1 10 100)')
    parser.add_argument('--listeners', type=int, default=10, help='listeners per namespace (default: 10)')
    parser.add_argument('--runs', type=int, default=15, help='timed runs per measurement (default: 15)')
    parser.add_argument('--no-cli', action='store_true', help='skip the whole-process CLI timings')
    parser.add_argument('--json', metavar='PATH', help='also write every sample as JSON')
    parser.add_argument('--inner', metavar='CONFIG', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.inner:
        with open(args.inner) as handle:
            config = json.load(handle)
        results = inner(config)
        with open(config['output'], 'w') as handle:
            json.dump(results, handle)
        return 0
    return run_outer(args)


if __name__ == '__main__':
    sys.exit(main())
