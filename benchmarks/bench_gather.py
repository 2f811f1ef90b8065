"""Benchmark ``portwarden gather`` against ss, netstat and psutil in a loaded network namespace.

Not a test: run it by hand, as root (see benchmarks/README.md)::

    sudo .venv/bin/python benchmarks/bench_gather.py --scenarios issue
    sudo .venv/bin/python benchmarks/bench_gather.py --listeners 10000 --connections 50000 --runs 7 --profile

For each scenario it builds a fresh network namespace (``pwb-XXXXXXXX``), opens L listening
sockets (held by tests/helpers/listeners.py processes) and C established loopback TCP
connections (held by this script's ``--hold-connections`` helpers, both ends in the same
process, at most ~15,000 fds per process), verifies the counts with ss, then re-executes
itself inside the namespace (``--inner``) so that every timed command is spawned directly
rather than through ``ip netns exec``. The namespace and every process in it are removed on
exit, on an exception and on Ctrl-C / SIGTERM.

Wall time: perf_counter from spawn to reaped exit, stdout read fully through a pipe (ss and
netstat write their output too), median of R runs after one warm-up round; commands run
round-robin so that drift hits all of them alike.

Peak RSS: a child's ``ru_maxrss`` from wait4 includes the RSS of whatever process forked it
(Linux records the pre-exec mm's high-water mark at exec, and vfork/posix_spawn share the
parent's mm), so reaping the child directly from a Python harness reports at least the
harness's RSS. Peak RSS is therefore measured in separate runs under GNU time
(``/usr/bin/time -f %M``), whose small fork floor (~1 MiB) is what a freshly exec'd process
starts from. Without GNU time the direct wait4 value is reported and marked as such.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HELPERS = os.path.join(REPO, 'tests', 'helpers')
CLI_MODULE = 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli'
BACKENDS = ('auto', 'netlink', 'procfs', 'psutil')
ISSUE_SCENARIOS = ((100, 0), (10000, 0), (10000, 50000))
TARGET_SCENARIO = (10000, 50000)
TARGET_AUTO_VS_SS = 0.5
TARGET_AUTO_VS_PSUTIL = 0.25
TARGET_RSS_MIB = 30.0

LISTENER_BASE_PORT = 10000      # listener i binds port LISTENER_BASE_PORT + i
LISTENERS_PER_PROCESS = 2500    # sockets per listeners.py holder
CONNECT_PORT_V4 = 9000          # connection holders' servers: 127.1.0.(k+1):9000 / [::1]:(9100+k)
CONNECT_PORT_V6 = 9100
FD_BUDGET = 15000               # at most this many fds per helper process
CONNECT_BATCH = 1000            # connect this many, then accept them (well under somaxconn 4096)
EPHEMERAL_HIGH = 65000
GNU_TIME = '/usr/bin/time'


# --------------------------------------------------------------------------- helpers in the ns

def raise_nofile():
    """Raise RLIMIT_NOFILE's soft limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def hold_connections(spec):
    """``--hold-connections``: open ``count`` established connections to a private server
    (both ends held here), close the server, report like listeners.py, hold until stdin EOF."""
    raise_nofile()
    address, port, count = spec['address'], spec['port'], spec['count']
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, port))
    server.listen(4096)
    held = []
    remaining = count
    while remaining:
        batch = min(CONNECT_BATCH, remaining)
        for _index in range(batch):
            client = socket.socket(family, socket.SOCK_STREAM)
            client.connect((address, port))
            held.append(client)
        for _index in range(batch):
            held.append(server.accept()[0])
        remaining -= batch
    server.close()  # only the ESTABLISHED pairs stay: no extra listener in the namespace
    signal.signal(signal.SIGTERM, lambda *_args: os._exit(0))
    sys.stdout.write(json.dumps({'pids': [os.getpid()], 'sockets': [], 'connections': count,
                                 'fds': len(held)}) + '\n')
    sys.stdout.flush()
    try:
        sys.stdin.read()
    finally:
        os._exit(0)


# --------------------------------------------------------------------------- inner: timing

def _read_status_kib(pid_or_self, key):
    with open('/proc/%s/status' % pid_or_self) as handle:
        for line in handle:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return None


def spawn_timed(argv, env):
    """Run argv once; return (wall seconds, exit code, stdout bytes, stderr text, wait4 maxrss KiB)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env)
        out = proc.stdout.read()  # read fully: the child's output is part of its cost
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.stdout.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return wall, proc.returncode, out, err.read().decode('utf-8', 'replace'), usage.ru_maxrss


def spawn_rss(argv, env, time_path):
    """Peak RSS (KiB) of argv measured by GNU time (see the module docstring)."""
    with tempfile.NamedTemporaryFile('r') as report:
        proc = subprocess.run([time_path, '-f', '%M', '-o', report.name] + argv, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        text = report.read().strip().splitlines()
    if proc.returncode not in (0, 1) or not text:
        return None
    return int(text[-1])


def gnu_time_works(path):
    if not os.access(path, os.X_OK):
        return False
    with tempfile.NamedTemporaryFile('r') as report:
        try:
            proc = subprocess.run([path, '-f', '%M', '-o', report.name, 'true'], capture_output=True, check=False)
        except OSError:
            return False
        return proc.returncode == 0 and report.read().strip().isdigit()


def count_output(name, out):
    """Socket count of one command's output (None when the command prints nothing useful)."""
    if name.startswith('portwarden'):
        try:
            result = json.loads(out)
        except ValueError:
            return None
        return {'sockets': len(result['sockets']), 'complete': result['coverage']['complete'],
                'unowned': len(result['coverage']['unowned_sockets']),
                'processes_scanned': result['coverage']['processes_scanned']}
    if name.startswith('ss') or name.startswith('netstat'):
        lines = out.decode('utf-8', 'replace').splitlines()
        return {'sockets': sum(1 for line in lines if line.split()[:1] and line.split()[0] in
                               ('tcp', 'tcp6', 'udp', 'udp6'))}
    return None


def inner_main(config_path):
    """``--inner``: runs inside the namespace; times the commands and writes the results JSON."""
    with open(config_path) as handle:
        cfg = json.load(handle)
    env = cfg['env']
    commands = cfg['commands']
    rss_method = 'gnu-time' if gnu_time_works(cfg['time_path']) else 'wait4'
    floor = _read_status_kib('self', 'VmHWM')
    samples = dict((c['name'], []) for c in commands)
    wait4_rss = dict((c['name'], []) for c in commands)
    rss = dict((c['name'], []) for c in commands)
    codes = dict((c['name'], set()) for c in commands)
    checks = {}
    errors = {}
    total_rounds = cfg['warmup'] + cfg['runs']
    for round_index in range(total_rounds):
        warm = round_index < cfg['warmup']
        sys.stderr.write('    %s round %d/%d\n' % ('warm-up' if warm else 'timed', round_index + 1, total_rounds))
        sys.stderr.flush()
        for command in commands:
            wall, code, out, err, maxrss = spawn_timed(command['argv'], env)
            codes[command['name']].add(code)
            if err.strip() and command['name'] not in errors:
                errors[command['name']] = err.strip()[-2000:]
            if round_index == 0:
                checks[command['name']] = dict(count_output(command['name'], out) or {},
                                               exit=code, stdout_bytes=len(out))
            if not warm:
                samples[command['name']].append(wall)
                wait4_rss[command['name']].append(maxrss)
    for rss_round in range(cfg['rss_runs']):
        sys.stderr.write('    rss round %d/%d (%s)\n' % (rss_round + 1, cfg['rss_runs'], rss_method))
        sys.stderr.flush()
        for command in commands:
            if rss_method == 'gnu-time':
                value = spawn_rss(command['argv'], env, cfg['time_path'])
            else:
                value = spawn_timed(command['argv'], env)[4]
            if value is not None:
                rss[command['name']].append(value)
    results = {'rss_method': rss_method, 'harness_vmhwm_kib': floor, 'commands': []}
    for command in commands:
        name = command['name']
        results['commands'].append({
            'name': name, 'argv': command['argv'], 'wall_s': samples[name], 'exit_codes': sorted(codes[name]),
            'rss_kib': rss[name], 'wait4_maxrss_kib': wait4_rss[name], 'check': checks.get(name),
            'stderr': errors.get(name)})
    if cfg.get('profile'):
        results['profile'] = inner_profile(cfg, env)
    with open(cfg['result_path'], 'w') as handle:
        json.dump(results, handle)
    return 0


# --------------------------------------------------------------------------- inner: profiling

# Runs the CLI's work step by step in a fresh interpreter, with perf_counter marks and the
# process's own VmRSS/VmHWM after each step (VmHWM of the current mm is not polluted by the
# parent's RSS, unlike ru_maxrss). argv: spawn timestamp (CLOCK_MONOTONIC, shared by all
# processes), backend. Writes the gather JSON to stdout like the CLI, and a PROBE line to stderr.
PROBE_SRC = r'''
import time
_t_main = time.perf_counter()
import sys

def _mem():
    rss = hwm = 0
    with open('/proc/self/status') as handle:
        for line in handle:
            if line.startswith('VmRSS:'):
                rss = int(line.split()[1])
            elif line.startswith('VmHWM:'):
                hwm = int(line.split()[1])
    return rss, hwm

phases = [['interpreter start (spawn -> first statement, incl. site)', (_t_main - float(sys.argv[1])) * 1000.0]
          + list(_mem())]

def mark(name, start):
    now = time.perf_counter()
    phases.append([name, (now - start) * 1000.0] + list(_mem()))
    return time.perf_counter()

t = time.perf_counter()
import json, argparse
t = mark('import json + argparse (stdlib)', t)
from ansible_collections.portwarden.compliance.plugins.module_utils import gather_netlink, gather_procfs, gather_owners
t = mark('import gather_netlink/procfs/owners', t)
from ansible_collections.portwarden.compliance.plugins.module_utils import gather_sockets
t = mark('import gather_sockets', t)
from ansible_collections.portwarden.compliance.plugins.plugin_utils import cli
t = mark('import cli', t)
args = cli.build_parser().parse_args(['gather', '--backend', sys.argv[2], '--format', 'json', '--compact'])
t = mark('build parser + parse args', t)

acc = {}
calls = {}
def wrap(owner, name, key):
    original = getattr(owner, name)
    def wrapper(*a, **k):
        start = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            acc[key] = acc.get(key, 0.0) + time.perf_counter() - start
            calls[key] = calls.get(key, 0) + 1
    setattr(owner, name, wrapper)

wrap(gather_netlink, 'dump_listening', 'netlink dump (recv + decode)')
wrap(gather_netlink, 'decode_messages', 'netlink decode only')
wrap(gather_procfs, 'read_listening', 'procfs read + parse')
wrap(gather_owners, 'walk_fds', 'fd walk (/proc/*/fd readlink)')
wrap(gather_owners.ProcessDescriber, 'describe', 'describe processes (incl. cache hits)')
wrap(gather_sockets, 'ephemeral_ports', 'ephemeral port range')
wrap(gather_sockets, '_psutil_records', 'psutil net_connections + grouping')

start = time.perf_counter()
result = gather_sockets.gather_listening_sockets(backend=args.backend, protocols=('tcp', 'udp'))
gather_ms = (time.perf_counter() - start) * 1000.0
t = mark('gather_listening_sockets (total)', start)
text = json.dumps(result, indent=None, sort_keys=True) + '\n'
t = mark('json.dumps', t)
sys.stdout.write(text)
sys.stdout.flush()
t = mark('write stdout', t)
sub = dict((key, value * 1000.0) for key, value in acc.items())
sys.stderr.write('\nPROBE ' + json.dumps({
    'phases': phases, 'gather_sub_ms': sub, 'calls': calls, 'gather_ms': gather_ms,
    'sockets': len(result['sockets']), 'json_bytes': len(text),
    'processes_scanned': result['coverage']['processes_scanned'],
    'described_pids': len(set(p['pid'] for s in result['sockets'] for p in s['processes'])),
    't_end': time.perf_counter()}) + '\n')
'''


def fd_census():
    """How many processes and fds the fd walk has to look at (not timed)."""
    processes = fds = 0
    for name in os.listdir('/proc'):
        if name.isdigit():
            try:
                fds += len(os.listdir('/proc/%s/fd' % name))
                processes += 1
            except OSError:
                pass
    return processes, fds


def micro_fd_walk():
    """Time ways of mapping socket fds to inodes over this host's /proc (for the suggestions)."""
    pids = [name for name in os.listdir('/proc') if name.isdigit()]
    out = {}

    def timed(label, func):
        best = None
        for _attempt in range(3):
            start = time.perf_counter()
            count = func()
            elapsed = time.perf_counter() - start
            best = elapsed if best is None or elapsed < best else best
        out[label] = {'ms': best * 1000.0, 'items': count}

    def listdir_only():
        count = 0
        for pid in pids:
            try:
                count += len(os.listdir('/proc/%s/fd' % pid))
            except OSError:
                pass
        return count

    def per_fd(op, as_bytes=False):
        def run():
            count = 0
            proc_fd = os.open('/proc', os.O_RDONLY | os.O_DIRECTORY)
            try:
                for pid in pids:
                    try:
                        fd_dir = os.open(pid + '/fd', os.O_RDONLY | os.O_DIRECTORY, dir_fd=proc_fd)
                    except OSError:
                        continue
                    try:
                        names = os.listdir(fd_dir)
                        for fd in names:
                            try:
                                op(os.fsencode(fd) if as_bytes else fd, fd_dir)
                            except OSError:
                                pass
                            count += 1
                    finally:
                        os.close(fd_dir)
            finally:
                os.close(proc_fd)
            return count
        return run

    timed('listdir /proc/PID/fd only', listdir_only)
    timed('listdir + readlink(str) per fd', per_fd(lambda fd, d: os.readlink(fd, dir_fd=d)))
    timed('listdir + stat(follow) per fd -> st_ino', per_fd(lambda fd, d: os.stat(fd, dir_fd=d).st_ino))
    timed('listdir + lstat per fd', per_fd(lambda fd, d: os.stat(fd, dir_fd=d, follow_symlinks=False)))
    return out


def inner_profile(cfg, env):
    """Phase breakdown (median of N probe runs), cProfile top functions, -X importtime, fd census."""
    python = cfg['python']
    profile = {'runs': cfg['profile_runs'], 'backends': {}}
    processes, fds = fd_census()
    profile['fd_census'] = {'processes': processes, 'fds': fds}
    for backend in cfg['profile_backends']:
        sys.stderr.write('    profiling backend %s\n' % backend)
        sys.stderr.flush()
        probes = []
        for _run in range(cfg['profile_runs'] + 1):
            start = time.perf_counter()
            wall, code, _out, err, _maxrss = spawn_timed([python, '-c', PROBE_SRC, repr(start), backend], env)
            end = start + wall
            line = [item for item in err.splitlines() if item.startswith('PROBE ')]
            if not line:
                raise RuntimeError('probe failed (exit %s): %s' % (code, err[-2000:]))
            probe = json.loads(line[-1][len('PROBE '):])
            probe['wall_ms'] = wall * 1000.0
            probe['shutdown_ms'] = (end - probe['t_end']) * 1000.0
            probes.append(probe)
        probes = probes[1:]  # first one is a warm-up
        phase_names = [phase[0] for phase in probes[0]['phases']]
        phases = []
        for index, name in enumerate(phase_names):
            phases.append({'phase': name,
                           'ms': statistics.median(p['phases'][index][1] for p in probes),
                           'vmrss_kib': statistics.median(p['phases'][index][2] for p in probes),
                           'vmhwm_kib': max(p['phases'][index][3] for p in probes)})
        phases.append({'phase': 'interpreter shutdown + exit + reap', 'ms': statistics.median(p['shutdown_ms'] for p in probes),
                       'vmrss_kib': None, 'vmhwm_kib': None})
        sub_keys = sorted(set(key for p in probes for key in p['gather_sub_ms']))
        sub = dict((key, statistics.median(p['gather_sub_ms'].get(key, 0.0) for p in probes)) for key in sub_keys)
        profile['backends'][backend] = {
            'phases': phases, 'gather_sub_ms': sub, 'calls': probes[-1]['calls'],
            'gather_ms': statistics.median(p['gather_ms'] for p in probes),
            'wall_ms': statistics.median(p['wall_ms'] for p in probes),
            'sockets': probes[-1]['sockets'], 'json_bytes': probes[-1]['json_bytes'],
            'processes_scanned': probes[-1]['processes_scanned'], 'described_pids': probes[-1]['described_pids'],
        }
    # cProfile of the real CLI (auto), top functions by own time.
    with tempfile.TemporaryDirectory() as scratch:
        stats_path = os.path.join(scratch, 'cli.prof')
        spawn_timed([python, '-m', 'cProfile', '-o', stats_path, '-m', CLI_MODULE, 'gather', '--backend', 'auto',
                     '--format', 'json', '--compact'], env)
        import io
        import pstats
        buffer = io.StringIO()
        stats = pstats.Stats(stats_path, stream=buffer)
        stats.sort_stats('tottime').print_stats(18)
        profile['cprofile_tottime'] = buffer.getvalue()
        # -X importtime: cumulative import cost of the CLI's module tree.
        _w, _c, _o, err, _m = spawn_timed([python, '-X', 'importtime', '-c', 'import %s' % CLI_MODULE], env)
        imports = []
        for line in err.splitlines():
            if line.startswith('import time:') and '|' in line and 'self [us]' not in line:
                parts = [part.strip() for part in line[len('import time:'):].split('|')]
                imports.append((int(parts[1]), int(parts[0]), parts[2]))
        imports.sort(reverse=True)
        profile['importtime_top'] = [{'module': name, 'cumulative_us': cum, 'self_us': own} for cum, own, name in imports[:15]]
    baseline = []
    for _run in range(cfg['profile_runs'] + 1):
        baseline.append(spawn_timed([python, '-c', 'pass'], env)[0])
    profile['python_c_pass_ms'] = statistics.median(baseline[1:]) * 1000.0
    baseline = []
    for _run in range(cfg['profile_runs'] + 1):
        baseline.append(spawn_timed([python, '-S', '-c', 'pass'], env)[0])
    profile['python_S_c_pass_ms'] = statistics.median(baseline[1:]) * 1000.0
    profile['micro_fd_walk'] = micro_fd_walk()
    return profile


# --------------------------------------------------------------------------- outer

def listener_specs(count):
    """Mostly TCP, some UDP, IPv4 and IPv6; every listener on its own port."""
    specs = []
    for index in range(count):
        port = LISTENER_BASE_PORT + index
        kind = index % 20
        if kind < 8:
            spec = {'protocol': 'tcp', 'address': '0.0.0.0'}
        elif kind < 12:
            spec = {'protocol': 'tcp', 'address': '127.0.0.1'}
        elif kind < 15:
            spec = {'protocol': 'tcp', 'address': '::', 'v6only': True}
        elif kind < 16:
            spec = {'protocol': 'tcp', 'address': '::', 'v6only': False}
        elif kind < 17:
            spec = {'protocol': 'tcp', 'address': '::1'}
        elif kind < 19:
            spec = {'protocol': 'udp', 'address': '0.0.0.0'}
        else:
            spec = {'protocol': 'udp', 'address': '::', 'v6only': True}
        spec['port'] = port
        specs.append(spec)
    return specs


def connection_specs(count, per_holder):
    specs = []
    index = 0
    while count > 0:
        batch = min(per_holder, count)
        if index % 4 == 3:
            spec = {'address': '::1', 'port': CONNECT_PORT_V6 + index, 'count': batch}
        else:
            spec = {'address': '127.1.%d.%d' % (index // 250, index % 250 + 1), 'port': CONNECT_PORT_V4,
                    'count': batch}
        specs.append(spec)
        count -= batch
        index += 1
    return specs


def start_holder(ns, argv):
    """Start a holder in the namespace; its ready line is read by wait_holder (so holders start in parallel)."""
    return subprocess.Popen(ns.command(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def wait_holder(ns, proc, what, netns):
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError('%s failed (exit %s)' % (what, proc.returncode))
    holder = netns.Listeners(proc, json.loads(line))
    ns.holders.append(holder)
    return holder


def build_sockets(ns, netns, listeners, connections, per_holder, scratch):
    started = time.perf_counter()
    pending = []
    specs = listener_specs(listeners)
    for chunk_start in range(0, len(specs), LISTENERS_PER_PROCESS):
        path = os.path.join(scratch, 'listeners-%s-%d.json' % (ns.name, chunk_start))
        with open(path, 'w') as handle:
            json.dump(specs[chunk_start:chunk_start + LISTENERS_PER_PROCESS], handle)
        argv = [sys.executable, netns.LISTENERS, '@' + path]
        pending.append((start_holder(ns, argv), 'listeners.py %s' % path))
    for spec in connection_specs(connections, per_holder):
        argv = [sys.executable, os.path.abspath(__file__), '--hold-connections', json.dumps(spec)]
        pending.append((start_holder(ns, argv), 'connection holder %r' % spec))
    for proc, what in pending:
        wait_holder(ns, proc, what, netns)
    return time.perf_counter() - started, len(pending)


def count_lines(ns, argv):
    proc = ns.run(argv)
    if proc.returncode != 0:
        raise RuntimeError('%s failed: %s' % (' '.join(argv), proc.stderr.strip()))
    return sum(1 for line in proc.stdout.splitlines() if line.strip())


def make_commands(python, netstat):
    commands = []
    for backend in BACKENDS:
        commands.append({'name': 'portwarden gather --backend %s' % backend,
                         'argv': [python, '-m', CLI_MODULE, 'gather', '--backend', backend, '--format', 'json',
                                  '--compact']})
    commands.append({'name': 'ss -H -ltnup', 'argv': [shutil.which('ss') or 'ss', '-H', '-ltnup']})
    commands.append({'name': 'psutil.net_connections("inet") script',
                     'argv': [python, '-c', 'import psutil; psutil.net_connections("inet")']})
    if netstat:
        commands.append({'name': 'netstat -ltnup', 'argv': [netstat, '-ltnup']})
    return commands


def run_scenario(args, netns, listeners, connections, scratch, env):
    name = 'pwb-%s' % uuid.uuid4().hex[:8]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    budget = FD_BUDGET if hard == resource.RLIM_INFINITY else min(FD_BUDGET, hard - 64)
    per_holder = max(1, min(args.connections_per_holder, budget // 2))
    low = LISTENER_BASE_PORT + listeners
    low = ((low + 999) // 1000) * 1000
    if connections and EPHEMERAL_HIGH - low < 2 * per_holder:
        raise SystemExit('too many listeners (%d): the ephemeral range above them would be too small' % listeners)
    scenario = {'listeners': listeners, 'connections': connections, 'namespace': name}
    print('\n## Scenario: %d listeners, %d established connections (namespace %s)\n'
          % (listeners, connections, name), flush=True)
    with netns.Namespace(name) as ns:
        ns.run(['sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=%d %d' % (low, EPHEMERAL_HIGH)], check=True)
        build_s, helpers = build_sockets(ns, netns, listeners, connections, per_holder, scratch)
        established = count_lines(ns, ['ss', '-Htn', 'state', 'established'])
        listening = count_lines(ns, ['ss', '-Hltun'])
        scenario.update({'build_s': build_s, 'helper_processes': helpers, 'connections_per_helper': per_holder,
                         'ss_established_sockets': established, 'ss_listening_sockets': listening,
                         'ephemeral_port_range': [low, EPHEMERAL_HIGH]})
        scenario['loadavg_before'] = os.getloadavg()
        print('load average before timing: %.2f %.2f %.2f (other work on the host skews timings)'
              % scenario['loadavg_before'])
        print('built in %.1f s with %d helper processes (<= %d connections = %d fds per connection helper); '
              'ephemeral range %d-%d' % (build_s, helpers, per_holder, 2 * per_holder, low, EPHEMERAL_HIGH))
        print('verify: ss -Hltun: %d listening sockets (expected %d) %s; ss -Htn state established: %d sockets '
              '(expected 2 x %d = %d) %s' % (listening, listeners, 'OK' if listening == listeners else 'MISMATCH',
                                             established, connections, 2 * connections,
                                             'OK' if established == 2 * connections else 'MISMATCH'), flush=True)
        if args.exec_command:
            # Manual profiling: run a shell command in the loaded namespace instead of the timings.
            env_exec = dict(env, PWB_NAMESPACE=name, PWB_PYTHON=args.python, PWB_REPO=REPO)
            proc = subprocess.run(ns.command(['sh', '-c', args.exec_command]), env=env_exec, check=False)
            scenario['exec_exit'] = proc.returncode
            return scenario
        config = {
            'env': env, 'commands': make_commands(args.python, shutil.which('netstat')), 'runs': args.runs,
            'warmup': 1, 'rss_runs': args.rss_runs, 'time_path': GNU_TIME, 'python': args.python,
            'profile': args.profile, 'profile_runs': args.profile_runs, 'profile_backends': args.profile_backends,
            'result_path': os.path.join(scratch, 'result-%s.json' % name),
        }
        config_path = os.path.join(scratch, 'config-%s.json' % name)
        with open(config_path, 'w') as handle:
            json.dump(config, handle)
        started = time.perf_counter()
        inner = subprocess.run(ns.command([sys.executable, os.path.abspath(__file__), '--inner', config_path]), check=False)
        if inner.returncode != 0:
            raise RuntimeError('inner benchmark failed (exit %d)' % inner.returncode)
        with open(config['result_path']) as handle:
            scenario.update(json.load(handle))
        scenario['measure_s'] = time.perf_counter() - started
    return scenario


# --------------------------------------------------------------------------- reporting

def summarise(scenario):
    by_name = {}
    for command in scenario['commands']:
        walls = command['wall_s']
        command['median_ms'] = statistics.median(walls) * 1000.0 if walls else None
        command['min_ms'] = min(walls) * 1000.0 if walls else None
        command['max_ms'] = max(walls) * 1000.0 if walls else None
        command['peak_rss_kib'] = max(command['rss_kib']) if command['rss_kib'] else None
        by_name[command['name']] = command
    ss = by_name.get('ss -H -ltnup', {}).get('median_ms')
    ps = by_name.get('portwarden gather --backend psutil', {}).get('median_ms')
    for command in scenario['commands']:
        command['ratio_vs_ss'] = command['median_ms'] / ss if ss else None
        command['ratio_vs_psutil_backend'] = command['median_ms'] / ps if ps else None
    return by_name


def fmt(value, pattern='%.1f'):
    return '-' if value is None else pattern % value


def print_scenario(scenario):
    by_name = summarise(scenario)
    rss_note = ('GNU time %M, max of runs' if scenario['rss_method'] == 'gnu-time'
                else 'wait4 ru_maxrss (includes the harness floor of %d KiB!)' % scenario['harness_vmhwm_kib'])
    print('\n%d listeners, %d established connections; wall time over %d runs after 1 warm-up; '
          'peak RSS: %s\n' % (scenario['listeners'], scenario['connections'],
                              len(scenario['commands'][0]['wall_s']), rss_note))
    print('| command | median wall ms | min | max | ratio vs ss | ratio vs psutil backend | peak RSS MB |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for command in scenario['commands']:
        print('| `%s` | %s | %s | %s | %s | %s | %s |' % (
            command['name'], fmt(command['median_ms']), fmt(command['min_ms']), fmt(command['max_ms']),
            fmt(command['ratio_vs_ss'], '%.2fx'), fmt(command['ratio_vs_psutil_backend'], '%.2fx'),
            fmt(command['peak_rss_kib'] / 1024.0 if command['peak_rss_kib'] else None)))
    print('\n(peak RSS MB = MiB, KiB / 1024)')
    # Correctness: auto's socket count equals ss's listener count.
    auto = by_name['portwarden gather --backend auto']['check'] or {}
    ss = by_name['ss -H -ltnup']['check'] or {}
    ok = auto.get('sockets') is not None and auto.get('sockets') == ss.get('sockets')
    scenario['correct'] = ok
    print('\ncorrectness: auto reports %s sockets (complete=%s, unowned=%s), ss -H -ltnup lists %s -> %s'
          % (auto.get('sockets'), auto.get('complete'), auto.get('unowned'), ss.get('sockets'),
             'OK' if ok else 'MISMATCH'))
    others = ['%s=%s' % (name.split()[-1] if name.startswith('portwarden') else name.split()[0],
                         (command['check'] or {}).get('sockets'))
              for name, command in by_name.items() if (command['check'] or {}).get('sockets') is not None]
    print('counts: ' + ', '.join(others))
    bad = ['%s exit %s' % (c['name'], c['exit_codes']) for c in scenario['commands'] if c['exit_codes'] != [0]]
    if bad:
        print('non-zero exits: ' + '; '.join(bad))
    for command in scenario['commands']:
        if command.get('stderr'):
            print('stderr of %s: %s' % (command['name'], command['stderr'].splitlines()[-1]))
    print_targets(scenario, by_name)
    if scenario.get('profile'):
        print_profile(scenario['profile'])


def print_targets(scenario, by_name):
    auto = by_name['portwarden gather --backend auto']
    official = (scenario['listeners'], scenario['connections']) == TARGET_SCENARIO
    label = 'targets' if official else 'targets (defined for 10000 listeners + 50000 connections; informational here)'
    rows = [
        ('auto <= %.2fx ss -H -ltnup' % TARGET_AUTO_VS_SS, auto['ratio_vs_ss'], TARGET_AUTO_VS_SS, '%.3fx'),
        ('auto <= %.2fx psutil backend' % TARGET_AUTO_VS_PSUTIL, auto['ratio_vs_psutil_backend'],
         TARGET_AUTO_VS_PSUTIL, '%.3fx'),
        ('auto peak RSS <= %.0f MB' % TARGET_RSS_MIB,
         auto['peak_rss_kib'] / 1024.0 if auto['peak_rss_kib'] else None, TARGET_RSS_MIB, '%.1f MB'),
    ]
    if scenario['rss_method'] != 'gnu-time':
        rows[-1] = (rows[-1][0] + ' (wait4 value, inflated by the harness)',) + rows[-1][1:]
    scenario['targets'] = []
    print('\n%s:' % label)
    for text, value, limit, pattern in rows:
        verdict = 'n/a' if value is None else ('PASS' if value <= limit else 'MISS')
        scenario['targets'].append({'target': text, 'value': value, 'limit': limit, 'verdict': verdict,
                                    'official': official})
        print('- %s: %s -> %s' % (text, fmt(value, pattern), verdict))


def print_profile(profile):
    census = profile['fd_census']
    print('\n### Profile (median of %d probe runs)\n' % profile['runs'])
    print('fd census: %d processes, %d fds in /proc/*/fd; `python -c pass` %.1f ms, `python -S -c pass` %.1f ms'
          % (census['processes'], census['fds'], profile['python_c_pass_ms'], profile['python_S_c_pass_ms']))
    for backend, data in profile['backends'].items():
        print('\nbackend %s: wall %.1f ms, %d sockets, %d JSON bytes, %d processes scanned, %d pids described\n'
              % (backend, data['wall_ms'], data['sockets'], data['json_bytes'], data['processes_scanned'],
                 data['described_pids']))
        print('| phase | ms | VmRSS after MiB | VmHWM after MiB |')
        print('|---|---:|---:|---:|')
        for phase in data['phases']:
            rss = fmt(phase['vmrss_kib'] / 1024.0 if phase['vmrss_kib'] else None)
            hwm = fmt(phase['vmhwm_kib'] / 1024.0 if phase['vmhwm_kib'] else None)
            print('| %s | %.1f | %s | %s |' % (phase['phase'], phase['ms'], rss, hwm))
        print('\ninside gather_listening_sockets (%.1f ms):\n' % data['gather_ms'])
        print('| part | ms | calls |')
        print('|---|---:|---:|')
        accounted = 0.0
        for key, value in sorted(data['gather_sub_ms'].items(), key=lambda item: -item[1]):
            print('| %s | %.1f | %s |' % (key, value, data['calls'].get(key, '-')))
            if key != 'netlink decode only':
                accounted += value
        print('| rest (records -> entries, labels, sort, coverage) | %.1f | |' % (data['gather_ms'] - accounted))
    print('\nmicro: ways to walk /proc/*/fd on this host (best of 3)\n')
    print('| method | ms | fds |')
    print('|---|---:|---:|')
    for label, data in profile['micro_fd_walk'].items():
        print('| %s | %.1f | %d |' % (label, data['ms'], data['items']))
    print('\nimports (-X importtime, top cumulative):\n')
    for item in profile['importtime_top']:
        cumulative_ms, self_ms = item['cumulative_us'] / 1000.0, item['self_us'] / 1000.0
        print('    %8.1f ms cumulative  %7.1f ms self  %s' % (cumulative_ms, self_ms, item['module']))
    print('\ncProfile of `gather --backend auto` (sorted by tottime; cProfile inflates call-heavy code):\n')
    for line in profile['cprofile_tottime'].splitlines():
        print('    ' + line)


# --------------------------------------------------------------------------- main

def default_python():
    venv = os.path.join(REPO, '.venv', 'bin', 'python')
    return venv if os.access(venv, os.X_OK) else sys.executable


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--listeners', type=int, default=10000, help='listening sockets (default 10000)')
    parser.add_argument('--connections', type=int, default=50000,
                        help='established TCP connections, two sockets each (default 50000)')
    parser.add_argument('--runs', type=int, default=7, help='timed runs per command after 1 warm-up (default 7)')
    parser.add_argument('--rss-runs', type=int, default=3, help='extra runs per command for peak RSS (default 3)')
    parser.add_argument('--scenarios', choices=('issue',),
                        help='preset: issue = (100, 0), (10000, 0), (10000, 50000); overrides --listeners/--connections')
    parser.add_argument('--json', metavar='PATH', help='also write all results as JSON to PATH')
    parser.add_argument('--python', default=default_python(),
                        help='interpreter for the CLI and the psutil script (needs psutil; default: the repo .venv)')
    parser.add_argument('--connections-per-holder', type=int, default=7000,
                        help='connections per helper process (2 fds each; capped to stay under %d fds)' % FD_BUDGET)
    parser.add_argument('--profile', action='store_true',
                        help='also break down where the CLI spends time and memory (per scenario)')
    parser.add_argument('--profile-runs', type=int, default=5)
    parser.add_argument('--profile-backends', nargs='+', default=['auto'], choices=BACKENDS)
    parser.add_argument('--exec', dest='exec_command', metavar='SHELL_COMMAND',
                        help='instead of timing, run SHELL_COMMAND (sh -c) inside each loaded namespace, with '
                             'PYTHONPATH set for the collection and $PWB_PYTHON naming the interpreter; for '
                             'profiling by hand')
    parser.add_argument('--inner', metavar='CONFIG', help=argparse.SUPPRESS)
    parser.add_argument('--hold-connections', metavar='SPEC', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _terminate(signum, _frame):
    raise KeyboardInterrupt('signal %d' % signum)


def main(argv=None):
    args = parse_args(argv)
    if args.hold_connections:
        return hold_connections(json.loads(args.hold_connections))
    if args.inner:
        signal.signal(signal.SIGTERM, _terminate)
        try:
            return inner_main(args.inner)
        except KeyboardInterrupt:
            return 130

    sys.dont_write_bytecode = True  # importing tests/helpers must not leave __pycache__ in the checkout
    sys.path.insert(0, HELPERS)
    import netns  # tests/helpers/netns.py: Namespace, Listeners, kill_namespace, LISTENERS

    if os.geteuid() != 0 or not netns.have_netns():
        sys.stderr.write('bench_gather.py must run as root with `ip netns` available\n')
        return 2
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    nofile = raise_nofile()  # inherited by the listeners.py holders
    scenarios = list(ISSUE_SCENARIOS) if args.scenarios == 'issue' else [(args.listeners, args.connections)]

    scratch = tempfile.mkdtemp(prefix='pwb-')
    link = os.path.join(scratch, 'collections', 'ansible_collections', 'portwarden', 'compliance')
    os.makedirs(os.path.dirname(link))
    os.symlink(REPO, link)
    env = dict(os.environ)
    env['PYTHONPATH'] = os.path.join(scratch, 'collections')
    env['PYTHONPYCACHEPREFIX'] = os.path.join(scratch, 'pycache')  # bytecode cached, but not in the checkout
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    env.pop('PYTHONPROFILEIMPORTTIME', None)

    print('# portwarden gather benchmark\n')
    print('host: %s, kernel %s, %d CPUs; python for the CLI: %s (%s); RLIMIT_NOFILE %d'
          % (socket.gethostname(), os.uname().release, os.cpu_count(), args.python,
             subprocess.run([args.python, '-c', 'import sys; print(sys.version.split()[0])'],
                            capture_output=True, text=True, check=False).stdout.strip(), nofile))
    print('stdout of every timed command is read fully through a pipe; collection importable via %s' % link)
    results = []
    try:
        for listeners, connections in scenarios:
            scenario = run_scenario(args, netns, listeners, connections, scratch, env)
            if args.exec_command:
                print('--exec command exited %s' % scenario['exec_exit'])
                continue
            print_scenario(scenario)
            results.append(scenario)
    except KeyboardInterrupt:
        sys.stderr.write('\ninterrupted; namespaces torn down\n')
        return 130
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    targets = [t for s in results for t in s.get('targets', []) if t['official']]
    if targets:
        print('\n# Targets at 10000 listeners + 50000 connections\n')
        for target in targets:
            print('- %s: %s' % (target['target'], target['verdict']))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'argv': sys.argv, 'python': args.python, 'kernel': os.uname().release,
                       'cpus': os.cpu_count(), 'scenarios': results}, handle, indent=2, sort_keys=True)
        print('\nresults written to %s' % args.json)
    if args.exec_command:
        return 0
    return 0 if all(s.get('correct') for s in results) else 1


if __name__ == '__main__':
    sys.exit(main())
