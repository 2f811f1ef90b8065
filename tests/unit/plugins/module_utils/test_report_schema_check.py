"""The compiled report check (report_schema.report_valid) gives jsonschema's verdict, on valid and mutated reports.

report loading trusts it to say "valid" (jsonschema only words what is invalid), so a report it let through that
jsonschema refuses would be a report the gate and the merge trust unchecked.
"""

import copy
import datetime
import random

import pytest
from jsonschema import Draft202012Validator

from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb
from ansible_collections.portwarden.compliance.plugins.module_utils import report_merge
from ansible_collections.portwarden.compliance.plugins.module_utils.report_schema import (
    REPORT_SCHEMA,
    SchemaNotCompiled,
    compile_check,
    report_valid,
)

POLICY = {'name': 'fleet', 'sha256': 'a' * 64, 'rules': [{'id': 'iana-unassigned-closed', 'severity': 'high'}]}
REGISTRY = {'date': '2026-08-17', 'sha256': 'b' * 64, 'records': 14533}
NOW = datetime.datetime(2026, 11, 26, 12, 0, 0, tzinfo=datetime.timezone.utc)
VALIDATOR = Draft202012Validator(REPORT_SCHEMA)


def finding(port, status='drift', **extra):
    base = {'rule': 'iana-unassigned-closed', 'severity': 'high', 'status': status, 'protocol': 'tcp', 'family': 'ipv4',
            'address': '0.0.0.0', 'port': port, 'v6only': None, 'where': 'docker:web', 'service': None,
            'waived': False, 'waiver': None, 'message': 'm',
            'namespace': {'inode': 4026532000, 'host': False, 'pid': 7,
                          'container': {'kind': 'docker', 'id': 'abc', 'pod_uid': None, 'name': 'web'}},
            'processes': [{'pid': 1, 'name': 'agent', 'user': 'nobody', 'uid': 65534, 'exe': '/opt/agent',
                           'unit': None, 'start_time': 5}],
            'remediation': {'strategy': 'firewall', 'status': 'applied', 'target': 'tcp/856', 'reason': None}}
    base.update(extra)
    return base


def reports():
    audit = {'status': 'drift', 'findings': [finding(856), finding(857, 'waived')], 'reasons': [], 'warnings': ['w'],
             'coverage': {'complete': True, 'errors': []}, 'evaluated_on': '2026-11-26',
             'remediation': {'actions': [{'strategy': 'firewall', 'target': 'tcp/856', 'rules': ['r'],
                                          'outcome': 'applied', 'detail': None}], 'skipped': None, 'verified': True}}
    hosts = [rb.host_entry('web-1', audit), rb.host_entry('db-1', None, 'unreachable: timeout')]
    fleet = rb.build_report(hosts, POLICY, REGISTRY, generated_at=NOW)
    previous = copy.deepcopy(fleet)
    fleet = rb.build_report(copy.deepcopy(hosts), POLICY, REGISTRY, generated_at=NOW, previous=previous)
    fleet['files'] = {'portwarden.prom': {'bytes': 3, 'sha256': 'c' * 64}}
    part = rb.build_report(copy.deepcopy(hosts), POLICY, REGISTRY, generated_at=NOW, run_id=report_merge.make_run_id(7))
    part['scope'] = report_merge.report_scope('part', part['run_id'], ['web-1', 'db-1'], POLICY, REGISTRY,
                                              {'job_id': 7})
    merged = report_merge.merge_parts([{'file': '/p.json', 'report': part}], expected=['web-1', 'db-1', 'x'],
                                      expected_source='hosts', now=NOW)
    return [fleet, part, merged]


VALUES = [None, True, False, 0, 1, -1, 1.0, 1.5, 70000, '', 'x', 'drift', 'a' * 64, [], ['x'], [1], {}, {'x': 1}]


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, path + (index,))


def _mutate(report, rng):
    mutated = copy.deepcopy(report)
    paths = [path for path in _paths(mutated) if path]
    path = rng.choice(paths)
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    roll = rng.random()
    if roll < 0.15 and isinstance(parent, dict):
        del parent[path[-1]]
    elif roll < 0.25 and isinstance(parent, dict):
        parent['unexpected_%d' % rng.randint(0, 3)] = rng.choice(VALUES)
    else:
        parent[path[-1]] = copy.deepcopy(rng.choice(VALUES))
    return mutated


@pytest.mark.parametrize('index', range(3))
def test_valid_reports_are_valid_for_both(index):
    report = reports()[index]
    assert VALIDATOR.is_valid(report)
    assert report_valid(report) is True


def test_the_compiled_check_agrees_with_jsonschema_on_mutated_reports():
    rng = random.Random(11)
    bases = reports()
    disagreements = []
    invalid = 0
    for _case in range(4000):
        mutated = _mutate(rng.choice(bases), rng)
        expected = VALIDATOR.is_valid(mutated)
        invalid += not expected
        if report_valid(mutated) != expected:
            disagreements.append(mutated)
    assert disagreements == []
    assert invalid > 1000  # the mutations do break reports


def test_a_keyword_it_does_not_know_is_not_compiled():
    with pytest.raises(SchemaNotCompiled):
        compile_check({'type': 'object', 'patternProperties': {'^x': {'type': 'string'}}})
