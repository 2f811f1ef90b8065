"""Benchmark what reading the NAT adds to ``portwarden gather``: a host with 5,000 DNAT rules and 10,000 listeners.

Not a test: run it by hand, as root (see benchmarks/README.md)::

    sudo .venv-test/bin/python benchmarks/bench_nat.py --runs 7

It builds a fresh network namespace (``pwb-nat-XXXXXXXX``), opens the listeners there (tests/helpers/listeners.py,
2,500 per process), writes the DNAT rules as Docker writes them through iptables-nft (one DOCKER chain, one rule per
published port, each to its own container address), then runs ``portwarden gather --format json --compact`` with
``--nat off`` and ``--nat auto``, and the module listening_sockets_info as Ansible runs it on a host (an args file,
its JSON on stdout) with ``nat: off`` and ``nat: auto``, round-robin (one warm-up round), and reports the median wall
time of each and the added cost. Target: the NAT read adds at most 20% to the gather. It also prints the floor of
any gather that reads this NAT and writes what it found: iptables-nft-save's own run and the JSON of the exposures,
with no parsing at all. The namespace and its processes are removed on exit.
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
GATHER_MODULE = 'ansible_collections.portwarden.compliance.plugins.modules.listening_sockets_info'
TARGET_ADDED = 0.20
PER_PROCESS = 2500


def rules_text(count, base_port=20000):
    lines = ['*nat', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':DOCKER - [0:0]',
             '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
             '-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER', '-A DOCKER -i docker0 -j RETURN']
    lines += ['-A DOCKER ! -i docker0 -p tcp -m tcp --dport %d -j DNAT --to-destination 172.17.%d.%d:80'
              % (base_port + index, index // 250, index % 250 + 2) for index in range(count)]
    return '\n'.join(lines + ['COMMIT']) + '\n'


def filter_text(count):
    """Docker's filter table for ``count`` published ports (one ACCEPT per container port), as a real Docker host has
    next to its nat table: nftables lists it, so a gather that needs nft reads it too."""
    lines = ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]', ':DOCKER - [0:0]',
             ':DOCKER-ISOLATION-STAGE-1 - [0:0]', ':DOCKER-ISOLATION-STAGE-2 - [0:0]', ':DOCKER-USER - [0:0]',
             '-A FORWARD -j DOCKER-USER', '-A FORWARD -j DOCKER-ISOLATION-STAGE-1',
             '-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT', '-A FORWARD -o docker0 -j DOCKER',
             '-A FORWARD -i docker0 ! -o docker0 -j ACCEPT', '-A FORWARD -i docker0 -o docker0 -j ACCEPT']
    lines += ['-A DOCKER -d 172.17.%d.%d/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT'
              % (index // 250, index % 250 + 2) for index in range(count)]
    lines += ['-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2',
              '-A DOCKER-ISOLATION-STAGE-1 -j RETURN', '-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP',
              '-A DOCKER-ISOLATION-STAGE-2 -j RETURN', '-A DOCKER-USER -j RETURN']
    return '\n'.join(lines + ['COMMIT']) + '\n'


def collections_path(repo=REPO):
    root = tempfile.mkdtemp(prefix='pwb-nat-collections-')
    os.makedirs(os.path.join(root, 'ansible_collections', 'portwarden'))
    os.symlink(repo, os.path.join(root, 'ansible_collections', 'portwarden', 'compliance'))
    return root


def module_return(value):
    """What AnsibleModule.exit_json does to the gather's result after the module: its module encoder (the gather's
    exit skips remove_values when the module has no no_log value, as listening_sockets_info has none)."""
    from ansible.module_utils.common import json as module_json
    encoder = module_json.get_module_encoder('legacy', module_json.Direction.MODULE_TO_CONTROLLER)
    return json.dumps({'exposures': value}, cls=encoder)


def timed(argv, env, parse=True):
    """``(wall seconds, CPU seconds, result)``: CPU is user + system of the gather and the tools it waited for
    (wait4), which a loaded machine disturbs less than the wall time. ``parse=False``: the output's size, not JSON."""
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
            raise SystemExit('%s failed (%d): %s' % (argv[4], code, err.read().decode()[-400:]))
    return wall, usage.ru_utime + usage.ru_stime, json.loads(out) if parse else len(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--rules', type=int, default=5000)
    parser.add_argument('--listeners', type=int, default=10000)
    parser.add_argument('--filter-rules', type=int, default=0,
                        help="also Docker's filter table with this many published ports (a real Docker host has both)")
    parser.add_argument('--runs', type=int, default=7)
    parser.add_argument('--python', default=sys.executable)
    parser.add_argument('--repo', default=REPO, help='the checkout whose gather is timed (default: this one)')
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
        if args.filter_rules:
            subprocess.run(prefix + ['iptables-nft-restore', '--noflush'], input=filter_text(args.filter_rules), text=True,
                           check=True)
        env = dict(os.environ, PYTHONPATH=collections_path(os.path.abspath(args.repo)), PYTHONDONTWRITEBYTECODE='1')
        argv = {mode: prefix + [args.python, '-m', CLI_MODULE, 'gather', '--format', 'json', '--compact', '--nat', mode]
                for mode in ('off', 'auto')}
        # The module as Ansible runs it on the host (its arguments in a file, its JSON on stdout), less the connection.
        for mode in ('off', 'auto'):
            module_args = os.path.join(specs, 'module-%s.json' % mode)
            with open(module_args, 'w') as handle:
                json.dump({'ANSIBLE_MODULE_ARGS': {'nat': mode}}, handle)
            argv['module-' + mode] = prefix + [args.python, '-m', GATHER_MODULE, module_args]
        # The alternative: what a script gets from the two tools (ss, and nft's JSON, whose iptables-nft DNATs show no
        # target), each a whole process with its output read, in the same rounds.
        argv['ss'] = prefix + ['ss', '-H', '-ltnup']
        argv['nft'] = prefix + ['nft', '-j', 'list', 'ruleset']
        # The floor of any NAT read by this tool: its own run (less the cost of entering the namespace, `true`).
        argv['tool'] = prefix + ['iptables-nft-save', '-t', 'nat']
        argv['enter'] = prefix + ['true']
        gathers = ('off', 'auto', 'module-off', 'module-auto')
        tools = ('ss', 'nft', 'tool', 'enter')
        modes = gathers + tools
        walls = dict((mode, []) for mode in modes)
        cpus = dict((mode, []) for mode in modes)
        load_start = os.getloadavg()[0]
        sources = None
        for run in range(args.runs + 1):
            for mode in modes:
                wall, cpu, result = timed(argv[mode], env, parse=mode in gathers)
                if run:
                    walls[mode].append(wall)
                    cpus[mode].append(cpu)
                if mode in tools:
                    assert result > 0 or mode == 'enter', mode
                    continue
                if mode.endswith('auto'):
                    assert len(result['exposures']) == args.rules, len(result['exposures'])
                    assert result['coverage']['complete'], result['coverage']['errors']
                    sources = sorted(result['coverage']['nat']['sources'])
                    exposures = result['exposures']
                assert len(result['sockets']) == args.listeners, len(result['sockets'])
        median = dict((mode, statistics.median(walls[mode])) for mode in modes)
        # The other part of the floor: writing the exposures' JSON, as portwarden gather writes it (in this process).
        encodes = []
        for _run in range(args.runs):
            start = time.perf_counter()
            json.dumps(exposures, separators=(',', ':'), check_circular=False)
            encodes.append(time.perf_counter() - start)
        encode = statistics.median(encodes)
        # The module's floor: ansible-core writes a module's result with its module encoder, whatever the module does
        # first. The same for the exposures alone.
        module_encodes = []
        for _run in range(args.runs):
            start = time.perf_counter()
            module_return(exposures)
            module_encodes.append(time.perf_counter() - start)
        module_encode = statistics.median(module_encodes)
        # The tool runs while the sockets are gathered (another process, on another core when there is one): in wall
        # time only the JSON is sure to add; in CPU time the tool's run adds too.
        tool_cpu = max(statistics.median(cpus['tool']) - statistics.median(cpus['enter']), 0.0)
        floor_cpu = tool_cpu + encode
        off, auto = median['off'], median['auto']
        alternative = median['ss'] + median['nft']
        cpu_off, cpu_auto = statistics.median(cpus['off']), statistics.median(cpus['auto'])
        figures = {'rules': args.rules, 'filter_rules': args.filter_rules, 'listeners': args.listeners, 'runs': args.runs,
                   'sources': sources, 'load_average_start': load_start, 'ss_s': round(median['ss'], 4),
                   'nft_s': round(median['nft'], 4), 'alternative_s': round(alternative, 4),
                   'auto_vs_alternative': round(auto / alternative, 4), 'off_s': round(off, 4),
                   'auto_s': round(auto, 4), 'added': round(auto / off - 1, 4), 'target_added': TARGET_ADDED,
                   'cpu_off_s': round(cpu_off, 4), 'cpu_auto_s': round(cpu_auto, 4),
                   'cpu_added': round(cpu_auto / cpu_off - 1, 4), 'load_average': os.getloadavg()[0],
                   'tool_s': round(median['tool'] - median['enter'], 4), 'tool_cpu_s': round(tool_cpu, 4),
                   'encode_exposures_s': round(encode, 4), 'floor_wall_added': round(encode / median['off'], 4),
                   'floor_cpu_added': round(floor_cpu / statistics.median(cpus['off']), 4),
                   'off_all_s': [round(w, 4) for w in walls['off']], 'auto_all_s': [round(w, 4) for w in walls['auto']]}
        module_off, module_auto = median['module-off'], median['module-auto']
        cpu_module_off, cpu_module_auto = statistics.median(cpus['module-off']), statistics.median(cpus['module-auto'])
        figures.update({'module_off_s': round(module_off, 4), 'module_auto_s': round(module_auto, 4),
                        'module_added': round(module_auto / module_off - 1, 4),
                        'cpu_module_off_s': round(cpu_module_off, 4), 'cpu_module_auto_s': round(cpu_module_auto, 4),
                        'cpu_module_added': round(cpu_module_auto / cpu_module_off - 1, 4),
                        'module_return_exposures_s': round(module_encode, 4),
                        'module_floor_added': round(module_encode / cpu_module_off, 4)})
        print('load average %.1f at the start' % load_start)
        print('gather --nat off : median %.3f s wall, %.3f s CPU' % (off, cpu_off))
        print('gather --nat auto: median %.3f s wall, %.3f s CPU (%d DNAT rules, %d filter rules, %d listeners; read: %s)'
              % (auto, cpu_auto, args.rules, args.filter_rules, args.listeners, ', '.join(sources)))
        print('alternative, ss -H -ltnup %.3f s + nft -j list ruleset %.3f s = %.3f s: gather --nat auto is %.2fx of it, '
              '--nat off %.2fx' % (median['ss'], median['nft'], alternative, auto / alternative, off / alternative))
        print('added by the NAT read: %+.1f%% wall, %+.1f%% CPU (target <= %d%%): %s; load average %.1f'
              % (100 * (auto / off - 1), 100 * (cpu_auto / cpu_off - 1), 100 * TARGET_ADDED,
                 'met' if auto / off - 1 <= TARGET_ADDED else 'NOT met', os.getloadavg()[0]))
        print('floor, before any parsing: the exposures\' JSON %.3f s (%+.1f%% wall); with iptables-nft-save -t nat\'s '
              'run (%.3f s wall, %.3f s CPU, beside the socket gather) %+.1f%% CPU' % (
                  encode, 100 * encode / off, median['tool'] - median['enter'], tool_cpu, 100 * floor_cpu / cpu_off))
        print('the module (listening_sockets_info, as Ansible runs it on the host): nat off %.3f s wall, %.3f s CPU; '
              'nat auto %.3f s wall, %.3f s CPU; added %+.1f%% wall, %+.1f%% CPU'
              % (module_off, cpu_module_off, module_auto, cpu_module_auto, 100 * (module_auto / module_off - 1),
                 100 * (cpu_module_auto / cpu_module_off - 1)))
        print('module floor, before any parsing: ansible-core\'s module encoder writing the '
              'exposures %.3f s, %+.1f%% of the module\'s CPU with nat off' % (module_encode, 100 * module_encode / cpu_module_off))
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
