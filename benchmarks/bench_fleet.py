"""Benchmark a fleet audit of 20 SSH hosts against community.general's listen_ports_facts.

Target (issue): the fleet audit (gather + evaluate + reports) of 20 SSH hosts takes <= 1.0x the wall
time of community.general.listen_ports_facts alone on the same hosts. Not a test; run by hand, as root:

    python3 benchmarks/bench_fleet.py --setup-only   # .venv-bench from benchmarks/requirements-bench.txt
    python3 benchmarks/bench_fleet.py --ref HEAD --profile 3 --idle-wait 600
    python3 benchmarks/bench_fleet.py [--hosts 20] [--runs 5] [--breakdown] [--quick] [--json PATH]

The hosts are a fleet of network namespaces reached over real SSH (tests/fleet/harness.py, namespace
prefix ``pwb``). Both contenders run with the same ansible-playbook of .venv-bench (ansible-core and the
``ansible`` package, which brings community.general), the same ansible.cfg (pipelining, ControlPersist),
forks and inventory, interleaved (A B A B ...) after one warm-up run each:

- A, ``port_compliance``: a play running the role portwarden.compliance.port_compliance in report mode
  (policy validated once, gather + evaluate on every host, every report format written once to a fresh
  temporary directory, fail_on never). A run counts only when it exits 0 and its JSON report lists
  every host with the expected status.
- B, ``listen_ports_facts``: a play with gather_facts false running community.general.listen_ports_facts
  (command: ss) on every host. A run counts only when it exits 0 and the recap shows every host ok.

The fleet runs a private copy of the collection (the working tree at start, or --ref REF), so edits made
meanwhile cannot change a run. Wall time is time.perf_counter() from the spawn of ansible-playbook to its
reaped exit. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENV = os.path.join(REPO, '.venv-bench')
REQUIREMENTS = os.path.join(HERE, 'requirements-bench.txt')
PREFIX = 'pwb'
AS_OF = '2026-11-26'
TARGET_RATIO = 1.0
# What the collection is made of at run time (as the wheel's only-include in pyproject.toml).
COLLECTION_PARTS = ('plugins', 'roles', 'playbooks', 'meta', 'docs', 'galaxy.yml')
REPORT_FILES = ('portwarden-report.json', 'portwarden-report.junit.xml', 'portwarden-report.md',
                'portwarden-report.html', 'portwarden.prom')

# The bundled baseline (unassigned ports closed) plus an ssh rule: port 22 belongs to sshd.
POLICY = """\
policy_version: 1
name: pwb-fleet
description: Unassigned ports closed; port 22 for sshd only.
default: allow
rules:
  - id: iana-unassigned-closed
    description: Ports IANA has not assigned must stay closed
    match:
      ports: "iana:unassigned"
      protocols: [tcp, udp]
    expect: closed
    severity: high
  - id: ssh-is-sshd
    description: Port 22 belongs to sshd
    match:
      ports: [22]
      protocols: [tcp]
    expect:
      processes: [sshd]
    severity: medium
"""

PLAYBOOK_A = """\
---
- name: Fleet audit with the port_compliance role
  hosts: fleet
  gather_facts: false
  roles:
    - role: portwarden.compliance.port_compliance
"""

PLAYBOOK_B = """\
---
- name: Listening ports with community.general.listen_ports_facts
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Gather the listening ports
      community.general.listen_ports_facts:
        command: ss
"""

# --breakdown: A built up step by step, to attribute its cost. No become: the fleet's ansible_user is
# root, and ansible-core skips become when the become user is the remote user (become_allow_same_user
# false), so the role's become costs nothing here.
PLAYBOOK_GATHER = """\
---
- name: Gather only, with the collection's module (one module round trip per host, like B)
  hosts: fleet
  gather_facts: false
  tasks:
    - name: Gather listening sockets
      portwarden.compliance.listening_sockets_info:
"""

# The role's own files, run without the role: its defaults as play variables and its tasks imported, so
# these plays stay in step with roles/port_compliance by construction ({role} is the snapshot's role directory).
PLAYBOOK_AUDIT = """\
---
- name: Validate once, then gather and evaluate every host as the role does (its first two tasks)
  hosts: fleet
  gather_facts: false
  vars_files:
    - {role}/defaults/main.yml
  tasks:
    - name: Validate the policy once
      portwarden.compliance.port_policy_validate:
        policy: "{{{{ port_compliance_policy }}}}"
      run_once: true
      register: port_compliance_validated_policy

    - name: Audit the listening ports
      portwarden.compliance.port_remediate:
        mode: report
        policy: "{{{{ port_compliance_validated_policy.policy }}}}"
        policy_sha256: "{{{{ port_compliance_validated_policy.info.sha256 }}}}"
        as_of: "{{{{ port_compliance_as_of }}}}"
"""

PLAYBOOK_ROLE_TASKS = """\
---
- name: The role's tasks as a plain play (no role, so no implicit argument-spec check)
  hosts: fleet
  gather_facts: false
  vars_files:
    - {role}/defaults/main.yml
  tasks:
    - name: The role's tasks
      ansible.builtin.import_tasks: {role}/tasks/main.yml
"""


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---- the benchmark environment ------------------------------------------------------------------

def venv_python():
    return os.path.join(VENV, 'bin', 'python')


def setup_venv():
    """Create .venv-bench (gitignored: .venv-*/) with ansible-core and the ansible package."""
    if not os.path.exists(venv_python()):
        log('[bench] creating %s' % VENV)
        subprocess.run([sys.executable, '-m', 'venv', VENV], check=True)
    log('[bench] pip install -r %s into %s' % (os.path.relpath(REQUIREMENTS, REPO), os.path.relpath(VENV, REPO)))
    subprocess.run([venv_python(), '-m', 'pip', 'install', '-q', '--disable-pip-version-check', '-r', REQUIREMENTS],
                   check=True)


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def versions():
    """ansible-core, ansible and community.general versions of the running (bench) interpreter."""
    from importlib import metadata

    from ansible_collections.community import general
    with open(os.path.join(next(iter(general.__path__)), 'MANIFEST.json')) as handle:
        general_version = json.load(handle)['collection_info']['version']
    return {'ansible-core': metadata.version('ansible-core'), 'ansible': metadata.version('ansible'),
            'community.general': general_version, 'python': sys.version.split()[0]}


def git(*args):
    return subprocess.run(['git', '-C', REPO] + list(args), capture_output=True, text=True, check=True).stdout.strip()


def snapshot_collection(ref=None):
    """A private copy of the collection, importable as portwarden.compliance: (collections root, description).

    A copy, not a link to the checkout, so that files edited while the benchmark runs cannot change (or
    break) it half-way. ``ref`` None copies the working tree as it is now; a git ref exports that commit
    (git archive, read-only for the checkout)."""
    root = tempfile.mkdtemp(prefix='pwb-collections-')
    target = os.path.join(root, 'ansible_collections', 'portwarden', 'compliance')
    os.makedirs(target)
    if ref is None:
        for part in COLLECTION_PARTS:
            source = os.path.join(REPO, part)
            if os.path.isdir(source):
                shutil.copytree(source, os.path.join(target, part), ignore=shutil.ignore_patterns('__pycache__'))
            elif os.path.exists(source):
                shutil.copy2(source, target)
        dirty = git('status', '--porcelain', '--', *COLLECTION_PARTS)
        description = 'working tree at %s%s' % (git('rev-parse', '--short', 'HEAD'),
                                                ' + %d uncommitted paths' % len(dirty.splitlines()) if dirty else '')
    else:
        commit = git('rev-parse', '--verify', ref + '^{commit}')
        archive = subprocess.run(['git', '-C', REPO, 'archive', '--format=tar', commit, '--'] +
                                 [part for part in COLLECTION_PARTS if git('ls-tree', '--name-only', commit, part)],
                                 capture_output=True, check=True).stdout
        subprocess.run(['tar', '-x', '-C', target], input=archive, check=True)
        description = 'commit %s (%s)' % (commit[:12], ref)
    return root, description


# ---- the fleet ----------------------------------------------------------------------------------

def _tcp(port, address='0.0.0.0'):
    return {'protocol': 'tcp', 'address': address, 'port': port}


def host_specs(hosts):
    """Listeners of every host and the status the audit must give it.

    Every host: TCP 22 held by a process named sshd (allowed) and TCP 8080 on ::1 (no rule);
    every third host also TCP 856, every fourth UDP 857 (unassigned: high drift)."""
    specs = {}
    for index, host in enumerate(hosts, start=1):
        holders = [{'name': 'sshd', 'sockets': [_tcp(22)]}, {'name': 'pwb-web', 'sockets': [_tcp(8080, '::1')]}]
        drift = False
        if index % 3 == 0:
            holders.append({'name': 'pwb-agent', 'sockets': [_tcp(856)]})
            drift = True
        if index % 4 == 0:
            holders.append({'name': 'pwb-udp', 'sockets': [{'protocol': 'udp', 'address': '0.0.0.0', 'port': 857}]})
            drift = True
        specs[host] = (holders, 'drift' if drift else 'compliant')
    return specs


def write(path, text):
    with open(path, 'w') as handle:
        handle.write(text)
    return path


# ---- the contenders -----------------------------------------------------------------------------

class Contender:
    def __init__(self, name, label, playbook, extra_vars=None, check=None, report_dir=False):
        self.name = name
        self.label = label
        self.playbook = playbook
        self.extra_vars = extra_vars or {}
        self.check = check
        self.report_dir = report_dir  # a fresh report directory per run, as extra var port_compliance_report_dir
        self.times = []

    def run(self, fleet, env=None, args=()):
        """One run: (seconds, proc). Raises RuntimeError when the run is not a complete, successful one."""
        extra_vars = dict(self.extra_vars)
        report_dir = None
        if self.report_dir:
            report_dir = tempfile.mkdtemp(prefix='reports-', dir=fleet.workdir)
            extra_vars['port_compliance_report_dir'] = report_dir
        started = time.perf_counter()
        proc = fleet.playbook(self.playbook, extra_vars=extra_vars, env=env, args=args, timeout=900)
        elapsed = time.perf_counter() - started
        try:
            if self.check:
                self.check(fleet, proc, report_dir)
        finally:
            if report_dir:
                shutil.rmtree(report_dir, ignore_errors=True)
        return elapsed, proc


def _fail(proc, why):
    raise RuntimeError('%s (exit %d)\n--- stdout (tail)\n%s\n--- stderr (tail)\n%s' % (
        why, proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:]))


def recap(proc):
    """{host: {'ok': n, 'changed': n, 'unreachable': n, 'failed': n, ...}} from the PLAY RECAP."""
    counts = {}
    for match in re.finditer(r'^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$', proc.stdout, re.M):
        counts[match.group(1)] = {key: int(value) for key, value in re.findall(r'(\w+)=(\d+)', match.group(2))}
    return counts


def check_recap(fleet, proc, tasks):
    if proc.returncode != 0:
        _fail(proc, 'ansible-playbook failed')
    counts = recap(proc)
    for host in fleet.hosts:
        got = counts.get(host)
        if not got or got['failed'] or got['unreachable'] or got['ok'] < tasks:
            _fail(proc, '%s: recap %r, expected ok=%d and no failure' % (host, got, tasks))


def make_check_audit(expected):
    def check(fleet, proc, report_dir):
        check_recap(fleet, proc, 1)
        path = os.path.join(report_dir, 'portwarden-report.json')
        if not os.path.exists(path):
            _fail(proc, 'no JSON report at %s' % path)
        with open(path) as handle:
            report = json.load(handle)
        missing = [name for name in REPORT_FILES if not os.path.exists(os.path.join(report_dir, name))]
        statuses = {entry['host']: entry['status'] for entry in report['hosts']}
        if missing or report['summary']['hosts'] != len(fleet.hosts) or statuses != expected:
            _fail(proc, 'incomplete report: missing %s, summary %r, statuses %r' % (missing, report['summary'], statuses))
    return check


def make_check_listen(specs):
    def check(fleet, proc, _report_dir):
        check_recap(fleet, proc, 1)
        if '-v' not in proc.args:
            return
        # Verbose (warm-up) run: every host's facts list exactly its listeners.
        for host, (holders, _status) in specs.items():
            match = re.search(r'^ok: \[%s\] => (\{.*\})$' % re.escape(host), proc.stdout, re.M)
            if not match:
                _fail(proc, 'no result line for %s' % host)
            facts = json.loads(match.group(1))['ansible_facts']
            seen = sorted([('tcp', item['port']) for item in facts['tcp_listen']] +
                          [('udp', item['port']) for item in facts['udp_listen']])
            wanted = sorted((sock['protocol'], sock['port']) for holder in holders for sock in holder['sockets'])
            if seen != wanted:
                _fail(proc, '%s: listen_ports_facts saw %r, expected %r' % (host, seen, wanted))
    return check


def make_check_ok(tasks):
    def check(fleet, proc, _report_dir):
        check_recap(fleet, proc, tasks)
    return check


# ---- measuring ----------------------------------------------------------------------------------

def cpu_busy(interval=1.0):
    """The fraction of CPU time the whole machine spent busy over ``interval`` seconds (/proc/stat)."""
    def sample():
        with open('/proc/stat') as handle:
            values = [int(value) for value in handle.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total
    idle_before, total_before = sample()
    time.sleep(interval)
    idle_after, total_after = sample()
    return 1.0 - (idle_after - idle_before) / max(1, total_after - total_before)


def wait_idle(max_wait, threshold):
    """Between rounds nothing of ours runs: wait (at most ``max_wait`` s) until the machine is idle. The last busy fraction."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy > threshold and time.monotonic() < deadline:
        busy = cpu_busy()
    return busy


def summary(times):
    return {'median': statistics.median(times), 'min': min(times), 'max': max(times), 'runs': list(times)}


def measure(fleet, contenders, runs, warmup, idle_wait=0.0, idle_threshold=0.15):
    """Warm-up run(s) of each, then ``runs`` interleaved rounds A B A B ...; times in the contenders.

    With ``idle_wait``, each round starts only once the machine is idle (other work on it shows as
    busy CPU between our rounds), or after ``idle_wait`` seconds. Returns the busy fraction seen before each round."""
    for round_index in range(warmup):
        for contender in contenders:
            elapsed, _proc = contender.run(fleet, args=('-v',))  # verbose: the checks read the results
            log('[bench] warm-up %d %-22s %6.2f s' % (round_index + 1, contender.name, elapsed))
    busy_before = []
    for round_index in range(runs):
        busy = wait_idle(idle_wait, idle_threshold) if idle_wait else cpu_busy()
        busy_before.append(busy)
        log('[bench] round %d: machine %.0f%% busy before it' % (round_index + 1, busy * 100))
        for contender in contenders:
            elapsed, _proc = contender.run(fleet)
            contender.times.append(elapsed)
            log('[bench] run %d/%d %-22s %6.2f s' % (round_index + 1, runs, contender.name, elapsed))
    return busy_before


def profile(fleet, contender):
    """One run with ansible.posix.profile_tasks: [(task, seconds)] as the callback sums them up."""
    env = {'ANSIBLE_CALLBACKS_ENABLED': 'ansible.posix.profile_tasks', 'PROFILE_TASKS_TASK_OUTPUT_LIMIT': 'all',
           'PROFILE_TASKS_SORT_ORDER': 'none'}
    elapsed, proc = contender.run(fleet, env=env)
    tail = proc.stdout[proc.stdout.rfind('PLAY RECAP'):]
    tasks = [(name.strip(), float(seconds))
             for name, seconds in re.findall(r'^(.+?) -{2,} (\d+\.\d+)s$', tail, re.M)]
    return elapsed, tasks


def profile_report(contenders, fleet, runs):
    """``runs`` interleaved profile_tasks runs of each contender; prints and returns the medians per task."""
    samples = {contender.name: {'wall': [], 'tasks': {}} for contender in contenders}
    for _run in range(runs):
        for contender in contenders:
            elapsed, tasks = profile(fleet, contender)
            samples[contender.name]['wall'].append(elapsed)
            for name, seconds in tasks:
                samples[contender.name]['tasks'].setdefault(name, []).append(seconds)
    for contender in contenders:
        sample = samples[contender.name]
        wall = statistics.median(sample['wall'])
        print()
        print('profile_tasks, %s: median of %d runs (%.2f s wall; a task lasts from its start to the start of the next)' % (
            contender.name, runs, wall))
        in_tasks = 0.0
        for name, values in sample['tasks'].items():
            in_tasks += statistics.median(values)
            print('  %6.2f s  %s' % (statistics.median(values), name))
        print('  %6.2f s  outside any task (interpreter start-up, imports, playbook and inventory parsing, exit)' % (wall - in_tasks))
    return samples


def table(contenders, base):
    lines = ['| contender | runs | median s | min s | max s | ratio to %s (median) |' % base.name,
             '|---|---:|---:|---:|---:|---:|']
    for contender in contenders:
        stats = summary(contender.times)
        lines.append('| %s | %d | %.2f | %.2f | %.2f | %.2fx |' % (
            contender.label, len(contender.times), stats['median'], stats['min'], stats['max'],
            stats['median'] / statistics.median(base.times)))
    return '\n'.join(lines)


# ---- main ---------------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--hosts', type=int, default=20)
    parser.add_argument('--runs', type=int, default=5, help='measured runs of each contender (default 5)')
    parser.add_argument('--warmup', type=int, default=1, help='warm-up runs of each contender (default 1)')
    parser.add_argument('--forks', type=int, default=10)
    parser.add_argument('--host-python', default='/usr/bin/python3',
                        help='ansible_python_interpreter of the hosts (default: the Debian python3)')
    parser.add_argument('--quick', action='store_true', help='5 hosts, 2 runs: a smoke test of the benchmark itself')
    parser.add_argument('--profile', type=int, nargs='?', const=3, default=0, metavar='RUNS',
                        help='after the timed runs, RUNS (default 3) interleaved runs of A and B with ansible.posix.profile_tasks; '
                             'the median of each task')
    parser.add_argument('--breakdown', action='store_true',
                        help="also time A's parts: the gather module alone, validate once + the role's audit task, the role's tasks as a plain play")
    parser.add_argument('--idle-wait', type=float, default=0.0, metavar='SECONDS',
                        help='before each round, wait up to this long for the machine to be idle (other jobs on a shared host)')
    parser.add_argument('--idle-threshold', type=float, default=0.15, metavar='FRACTION',
                        help='idle means at most this fraction of CPU busy over one second (default 0.15)')
    parser.add_argument('--ref', help='benchmark the collection as of this git ref (default: a copy of the working tree)')
    parser.add_argument('--json', metavar='PATH', help='write every sample and the verdict as JSON')
    parser.add_argument('--setup', action='store_true', help='create/update .venv-bench, then run')
    parser.add_argument('--setup-only', action='store_true', help='create/update .venv-bench and stop')
    args = parser.parse_args(argv)
    if args.quick:
        args.hosts, args.runs = 5, 2
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if not in_venv():
        if args.setup or args.setup_only or not os.path.exists(venv_python()):
            setup_venv()
        if args.setup_only:
            return 0
        # Re-run under .venv-bench: the harness runs the ansible-playbook next to sys.executable.
        argv = [arg for arg in argv if arg != '--setup']
        os.execv(venv_python(), [venv_python(), os.path.abspath(__file__)] + argv)
    sys.path.insert(0, REPO)
    from tests.fleet.harness import Fleet, unsupported_reason

    reason = unsupported_reason()
    if reason:
        log('[bench] cannot run: %s' % reason)
        return 2
    collections, source = snapshot_collection(args.ref)
    workdir = tempfile.mkdtemp(prefix='pwb-bench-')
    fleet = Fleet(args.hosts, prefix=PREFIX, workdir=workdir, forks=args.forks, python=args.host_python)
    try:
        os.environ['ANSIBLE_COLLECTIONS_PATH'] = collections  # the harness keeps this one ANSIBLE_* variable
        info = versions()
        info['portwarden.compliance'] = source
        results = {'date': datetime.date.today().isoformat(), 'hosts': args.hosts, 'forks': args.forks,
                   'runs': args.runs, 'warmup': args.warmup, 'versions': info, 'nproc': os.cpu_count()}
        started = time.monotonic()
        fleet.open()
        # Bytecode of the controller-side plugins is cached as Python normally does (outside the checkout),
        # for both contenders alike: PYTHONDONTWRITEBYTECODE in the caller's environment would make every
        # run recompile the collection's action plugins and module_utils.
        fleet.env.pop('PYTHONDONTWRITEBYTECODE', None)
        fleet.env['PYTHONPYCACHEPREFIX'] = os.path.join(workdir, 'pycache')
        specs = host_specs(fleet.hosts)
        for host, (holders, _status) in specs.items():
            for holder in holders:
                fleet.listen(host, holder)
        log('[bench] %d hosts up with listeners in %.2f s (%s)' % (
            len(fleet.hosts), time.monotonic() - started, ', '.join('%s %s' % item for item in info.items())))
        policy = write(fleet.path('policy.yml'), POLICY)
        role_vars = {'port_compliance_policy': policy, 'port_compliance_as_of': AS_OF,
                     'port_compliance_fail_on': 'never', 'port_compliance_fail_on_unknown': False}
        expected = {host: status for host, (_holders, status) in specs.items()}
        contender_a = Contender('port_compliance', 'A: role port_compliance (gather + evaluate + 5 reports)',
                                write(fleet.path('audit.yml'), PLAYBOOK_A), role_vars,
                                make_check_audit(expected), report_dir=True)
        contender_b = Contender('listen_ports_facts', 'B: community.general.listen_ports_facts (ss)',
                                write(fleet.path('listen.yml'), PLAYBOOK_B), {}, make_check_listen(specs))
        contenders = [contender_a, contender_b]
        if args.breakdown:
            role = os.path.join(collections, 'ansible_collections', 'portwarden', 'compliance', 'roles', 'port_compliance')
            contenders += [
                Contender('role_tasks', "the role's tasks as a plain play (no implicit argument-spec check)",
                          write(fleet.path('role-tasks.yml'), PLAYBOOK_ROLE_TASKS.format(role=role)), role_vars,
                          make_check_audit(expected), report_dir=True),
                Contender('audit_only', "validate once + the role's audit task (gather + evaluate)",
                          write(fleet.path('audit-only.yml'), PLAYBOOK_AUDIT.format(role=role)), role_vars, make_check_ok(1)),
                Contender('gather_only', 'listening_sockets_info alone (gather)', write(fleet.path('gather.yml'), PLAYBOOK_GATHER),
                          {}, make_check_ok(1)),
            ]
        results['loadavg_before'] = os.getloadavg()
        log('[bench] load average before timing: %.2f %.2f %.2f' % results['loadavg_before'])
        results['busy_before_rounds'] = measure(fleet, contenders, args.runs, args.warmup, args.idle_wait, args.idle_threshold)
        results['loadavg_after'] = os.getloadavg()
        ratio = statistics.median(contender_a.times) / statistics.median(contender_b.times)
        verdict = 'PASS' if ratio <= TARGET_RATIO else 'MISS'
        print()
        print('%d hosts, forks %d, %d measured runs each (after %d warm-up), interleaved; ansible-core %s, '
              'ansible %s (community.general %s); %d CPUs, load %.2f before / %.2f after; %s' % (
                  args.hosts, args.forks, args.runs, args.warmup, info['ansible-core'], info['ansible'],
                  info['community.general'], os.cpu_count(), results['loadavg_before'][0], results['loadavg_after'][0],
                  results['date']))
        print('portwarden.compliance: %s; hosts run %s' % (source, args.host_python))
        print()
        print(table(contenders, contender_b))
        print()
        paired = [a / b for a, b in zip(contender_a.times, contender_b.times)]
        print('A/B per round: %s (machine busy before each round: %s)' % (
            ', '.join('%.2f' % value for value in paired), ', '.join('%.0f%%' % (busy * 100) for busy in results['busy_before_rounds'])))
        print('target A/B <= %.1fx: %s (%.2fx = %.2f s / %.2f s)' % (
            TARGET_RATIO, verdict, ratio, statistics.median(contender_a.times), statistics.median(contender_b.times)))
        results.update({'contenders': {c.name: dict(summary(c.times), label=c.label) for c in contenders},
                        'ratio': ratio, 'paired_ratios': paired, 'target': TARGET_RATIO, 'verdict': verdict})
        if args.profile:
            results['profile'] = profile_report([contender_a, contender_b], fleet, args.profile)
        if args.json:
            with open(args.json, 'w') as handle:
                json.dump(results, handle, indent=2)
        return 0
    finally:
        problems = fleet.close()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(collections, ignore_errors=True)
        if problems:
            log('[bench] fleet teardown: %s' % '; '.join(problems))


if __name__ == '__main__':
    sys.exit(main())
