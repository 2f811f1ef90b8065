"""Benchmark the evaluation core in-process: N sockets against an IANA-based policy.

Target (issue 3): 10,000 sockets against the full IANA policy in <= 20 ms. Not a test; run by hand:

    .venv/bin/python benchmarks/bench_evaluate.py [--sockets 10000] [--runs 21] [--seed 1] [--namespaces 100]

--namespaces N spreads the sockets over the host's namespace and N containers (as a gather with
namespaces: all returns them) and adds rules and a waiver scoped by namespace selectors.

The collection must be importable; like bench_gather.py this script links the checkout under a
temporary ansible_collections/portwarden/compliance itself.
"""

import argparse
import datetime
import random
import statistics
import time

from collection_path import link_collection


def import_core():
    link_collection()
    from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy
    return evaluate_policy


# The IANA baseline plus the rules a real fleet policy carries, so every socket meets several rules.
FULL_POLICY = {
    'policy_version': 1, 'name': 'bench-full-iana', 'default': 'allow',
    'rules': [
        {'id': 'iana-unassigned-closed', 'match': {'ports': 'iana:unassigned', 'protocols': ['tcp', 'udp']},
         'expect': 'closed', 'severity': 'high'},
        {'id': 'iana-reserved-closed', 'match': {'ports': 'iana:reserved'}, 'expect': 'closed', 'severity': 'medium'},
        {'id': 'ssh-only-sshd', 'match': {'ports': [22], 'protocols': ['tcp']}, 'expect': {'processes': ['sshd']}},
        {'id': 'db-loopback', 'match': {'ports': [5432, 3306, 6379, 27017]}, 'expect': {'bind': 'loopback'},
         'severity': 'high', 'hosts': ['group:databases']},
        {'id': 'web-only-nginx', 'match': {'ports': [80, 443], 'protocols': ['tcp']},
         'expect': {'processes': ['nginx'], 'users': ['www-data', 'root']}},
    ],
    'waivers': [{'rule': 'iana-unassigned-closed', 'ports': ['855-859'], 'reason': 'bench', 'expires': '2030-01-01'}],
}


# With --namespaces: rules and a waiver that choose namespaces, so every socket meets a selector.
NAMESPACE_RULES = [
    {'id': 'containers-no-ssh', 'namespaces': ['container', '!kubernetes:kube-system/*'],
     'match': {'ports': [22, 2222]}, 'expect': 'closed', 'severity': 'high'},
    {'id': 'host-db-loopback', 'namespaces': ['host'], 'match': {'ports': 'user'}, 'expect': {'bind': 'loopback'},
     'severity': 'low'},
]
NAMESPACE_WAIVERS = [{'rule': 'iana-unassigned-closed', 'namespaces': ['docker:legacy-*'], 'reason': 'bench',
                      'expires': '2030-01-01'}]
KINDS = ('docker', 'podman', 'containerd', 'kubernetes')


def synthetic_namespaces(count):
    """The host's namespace and ``count`` containers of every kind, some named, some known by id only."""
    found = [{'inode': 4026531840, 'host': True, 'pid': 1, 'container': None}]
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        name = None if index % 3 == 2 else ('kube-system/dns-%d' % index if kind == 'kubernetes' else
                                            'legacy-%d' % index if index % 5 == 0 else 'app-%d' % index)
        found.append({'inode': 4026532000 + index, 'host': False, 'pid': 5000 + index,
                      'container': {'kind': kind, 'id': '%064x' % (index + 1), 'pod_uid': None, 'name': name}})
    return found


def synthetic_sockets(count, rng, namespaces=None):
    processes = [[{'pid': 1000 + i, 'name': 'svc%d' % i, 'user': 'svc', 'uid': 1000 + i, 'exe': '/usr/bin/svc',
                   'unit': 'svc%d.service' % i}] for i in range(50)]
    addresses = [('ipv4', '0.0.0.0'), ('ipv4', '127.0.0.1'), ('ipv4', '10.0.0.7'), ('ipv6', '::'), ('ipv6', '::1')]
    sockets = []
    for _index in range(count):
        family, address = rng.choice(addresses)
        protocol = 'tcp' if rng.random() < 0.8 else 'udp'
        sockets.append({'protocol': protocol, 'family': family, 'address': address, 'port': rng.randrange(1, 65536),
                        'v6only': rng.choice([True, False]) if family == 'ipv6' else None,
                        'ephemeral': protocol == 'udp' and rng.random() < 0.3, 'inode': rng.randrange(1 << 30),
                        'processes': rng.choice(processes)})
        if namespaces:
            sockets[-1]['namespace'] = rng.choice(namespaces)
    return sockets


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--sockets', type=int, default=10000)
    parser.add_argument('--runs', type=int, default=21)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--namespaces', type=int, default=0, metavar='N',
                        help='spread the sockets over the host and N containers, with namespace-scoped rules')
    args = parser.parse_args()
    ev = import_core()
    rng = random.Random(args.seed)
    policy = FULL_POLICY
    namespaces = None
    if args.namespaces:
        policy = dict(FULL_POLICY, rules=FULL_POLICY['rules'] + NAMESPACE_RULES,
                      waivers=FULL_POLICY['waivers'] + NAMESPACE_WAIVERS)
        namespaces = synthetic_namespaces(args.namespaces)
    gathered = {'sockets': synthetic_sockets(args.sockets, rng, namespaces), 'coverage': {'complete': True, 'errors': []}}
    today = datetime.date(2027, 1, 20)

    started = time.perf_counter()
    compiled = ev.compile_policy(policy)
    compile_ms = (time.perf_counter() - started) * 1000
    result = ev.evaluate_host(gathered, compiled, 'db-1', ['databases'], today)  # warm-up (caches, registry names)
    times = []
    for _run in range(args.runs):
        # The previous run's result is freed first: freeing its thousands of findings is no part of this evaluation.
        result = None
        started = time.perf_counter()
        result = ev.evaluate_host(gathered, compiled, 'db-1', ['databases'], today)
        times.append((time.perf_counter() - started) * 1000)
    median = statistics.median(times)
    # The first step of every evaluation: the check that the gather result has the shape the gather writes (a result
    # that does not is unknown, never judged). Timed alone, in the same way.
    checks = []
    for _run in range(args.runs):
        started = time.perf_counter()
        problem = ev.gather_problem(gathered)
        checks.append((time.perf_counter() - started) * 1000)
    assert problem is None, problem
    print('sockets: %d, namespaces: %d, rules: %d, findings: %d (%d drift, %d waived), status %s'
          % (args.sockets, len(namespaces or [None]), len(policy['rules']), result['summary']['findings'], result['summary']['drift'],
             result['summary']['waived'], result['status']))
    print('compile (first, incl. registry sets): %.1f ms' % compile_ms)
    print('evaluate: median %.1f ms, min %.1f ms, max %.1f ms over %d runs' % (median, min(times), max(times), args.runs))
    print('of which the check of the result\'s shape: median %.1f ms, min %.1f ms' % (statistics.median(checks), min(checks)))
    print('target <= 20 ms at 10,000 sockets: %s' % ('PASS' if median <= 20 else 'MISS'))


if __name__ == '__main__':
    main()
