"""Benchmark the validation of overlays from inventory, in-process, as port_policy_validate runs it once per play.

An inventory of N hosts in groups of 50 (an inventory file, group_vars/ and host_vars/ on disk, read by ansible-core's
own inventory and variable managers): one group in ten has a group overlay, one host in ten its own. The script times,
per host, what any read of a host's variables costs (``hostvars[host]``, the floor), then the validation of every host
(``load_overlays_of``: read, schema, checks), and the compile of each effective policy. Medians of --runs. Not a test:

    .venv-test/bin/python benchmarks/bench_overlays.py [--hosts 10000] [--runs 5]
"""

import argparse
import os
import statistics
import tempfile
import time

import yaml
from collection_path import link_collection

GROUP_OVERLAY = {'rules': [{'id': 'group-exporter', 'match': {'ports': [9100], 'protocols': ['tcp']},
                            'expect': {'processes': ['node_exporter']}}]}


def host_overlay(index, ports):
    return {'rules': [{'id': 'host-%d' % index, 'match': {'ports': [ports[index % len(ports)]], 'protocols': ['tcp']},
                       'expect': {'processes': ['svc-%d' % index], 'bind': 'loopback'}}],
            'waivers': [{'rule': 'default', 'ports': [8080], 'reason': 'migration %d' % index, 'expires': '2027-06-30'}]}


def write_inventory(root, hosts, ports):
    names = ['h%05d' % index for index in range(hosts)]
    groups = {}
    for index, name in enumerate(names):
        groups.setdefault('g%03d' % (index // 50), {})[name] = None
    with open(os.path.join(root, 'inventory.yml'), 'w') as handle:
        yaml.safe_dump({'all': {'vars': {'ansible_connection': 'local'},
                                'children': dict((group, {'hosts': members}) for group, members in groups.items())}},
                       handle)
    os.makedirs(os.path.join(root, 'group_vars'))
    os.makedirs(os.path.join(root, 'host_vars'))
    for number, group in enumerate(sorted(groups)):
        if number % 10 == 0:
            with open(os.path.join(root, 'group_vars', group + '.yml'), 'w') as handle:
                yaml.safe_dump({'port_compliance_policy_overlay_' + group: GROUP_OVERLAY}, handle)
    for index, name in enumerate(names):
        if index % 10 == 3:
            with open(os.path.join(root, 'host_vars', name + '.yml'), 'w') as handle:
                yaml.safe_dump({'port_compliance_policy_overlay': host_overlay(index, ports)}, handle)
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hosts', type=int, default=10000)
    parser.add_argument('--runs', type=int, default=5)
    args = parser.parse_args()
    link_collection()
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager

    from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import compile_policy
    from ansible_collections.portwarden.compliance.plugins.module_utils.policy_overlay import compile_host_policy
    from ansible_collections.portwarden.compliance.plugins.module_utils.policy_ports import named_set
    from ansible_collections.portwarden.compliance.plugins.plugin_utils import policy_load
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.overlay_vars import load_overlays_of
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import load_policy
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_resolve import BASELINE_POLICY

    # Ports IANA assigned for TCP (an overlay may allow those), from the registry data.
    ports = [port for start, end in named_set('iana:assigned', 'tcp').ranges() for port in range(start, end + 1)
             if port >= 1024][:5000]
    root = tempfile.mkdtemp(prefix='pw-bench-overlays-')
    names = write_inventory(root, args.hosts, ports)
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[os.path.join(root, 'inventory.yml')])
    hostvars = HostVars(inventory=inventory, variable_manager=VariableManager(loader=loader, inventory=inventory),
                        loader=loader)
    policy = dict(load_policy(BASELINE_POLICY), default='deny')
    base = compile_policy(policy).digest
    floors, validations, compiles = [], [], []
    with_overlays = 0
    for _run in range(args.runs):
        started = time.perf_counter()
        for name in names:
            hostvars[name]
        floors.append(time.perf_counter() - started)
        found = []
        # A play validates once: what one run memoised (a group's overlay checked once for its hosts) is not given
        # to the next.
        policy_load._OVERLAY_SCHEMA_ERRORS.clear()  # pylint: disable=protected-access
        started = time.perf_counter()
        for name in names:
            overlays, _warnings = load_overlays_of(policy, hostvars, name)
            if overlays:
                found.append(overlays)
        validations.append(time.perf_counter() - started)
        started = time.perf_counter()
        for overlays in found:
            compile_host_policy(policy, overlays, base)
        compiles.append(time.perf_counter() - started)
        with_overlays = len(found)
    per_host = 1000.0 / len(names)
    print('%d hosts, %d with overlays (a group one or their own), %d runs' % (len(names), with_overlays, args.runs))
    print('hostvars[host] alone (the floor):   median %.2f ms/host, %.1f s in all' % (
        statistics.median(floors) * per_host, statistics.median(floors)))
    print('validation (read, schema, checks): median %.2f ms/host, %.1f s in all' % (
        statistics.median(validations) * per_host, statistics.median(validations)))
    print('compile of the effective policies:  median %.2f ms per host with overlays' % (
        statistics.median(compiles) * 1000.0 / max(with_overlays, 1)))


if __name__ == '__main__':
    main()
