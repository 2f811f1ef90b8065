"""The port_compliance role's documentation agrees with the role: argument specs, defaults, tasks, README."""

import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

ROLE = os.path.join(REPO, 'roles', 'port_compliance')
SCRIPT = os.path.join(REPO, 'scripts', 'role_readme.py')


def _yaml(*parts):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


ENTRY_POINTS = _yaml('meta', 'argument_specs.yml')['argument_specs']
SPECS = ENTRY_POINTS['main']['options']
# Every entry point's variables (an entry point repeats those it shares with main, with the same default).
ALL_SPECS = dict((name, option) for spec in ENTRY_POINTS.values() for name, option in spec['options'].items())
DEFAULTS = _yaml('defaults', 'main.yml')
TASKS = _yaml('tasks', 'main.yml')


def _flat(tasks):
    """Every task, those inside blocks (block, rescue, always) too."""
    for task in tasks:
        yield task
        for key in ('block', 'rescue', 'always'):
            yield from _flat(task.get(key) or [])


def _readme_script(*args):
    return subprocess.run([sys.executable, SCRIPT] + list(args), cwd=REPO, capture_output=True, text=True, check=False)


def test_readme_is_generated_from_the_argument_specs():
    proc = _readme_script('--check')
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_check_catches_a_stale_readme(tmp_path):
    roles = tmp_path / 'roles'
    shutil.copytree(ROLE, str(roles / 'port_compliance'))
    specs = roles / 'port_compliance' / 'meta' / 'argument_specs.yml'
    specs.write_text(specs.read_text().replace('default: high', 'default: critical'))
    proc = _readme_script('--check', '--roles', str(roles))
    assert proc.returncode == 1
    assert 'out of step' in proc.stderr and '+| `port_compliance_fail_on` | str | `critical` |' in proc.stderr
    proc = _readme_script('--roles', str(roles))
    assert proc.returncode == 0, proc.stderr
    assert _readme_script('--check', '--roles', str(roles)).returncode == 0


def test_readme_documents_every_variable():
    with open(os.path.join(ROLE, 'README.md')) as handle:
        readme = handle.read()
    for name, option in SPECS.items():
        assert re.search(r'^\| `%s` \| ' % name, readme, re.M), name
        for choice in option.get('choices') or []:
            assert '`%s`' % choice in readme, (name, choice)


def test_defaults_and_argument_specs_name_the_same_variables():
    assert set(DEFAULTS) == set(ALL_SPECS), 'only in defaults: %s; only in argument_specs: %s' % (
        sorted(set(DEFAULTS) - set(ALL_SPECS)), sorted(set(ALL_SPECS) - set(DEFAULTS)))


@pytest.mark.parametrize('entry_point', sorted(ENTRY_POINTS))
def test_an_entry_point_documents_a_shared_variable_with_the_same_default(entry_point):
    for name, option in ENTRY_POINTS[entry_point]['options'].items():
        assert DEFAULTS[name] == option.get('default'), (entry_point, name)
        if name in SPECS:
            assert (option['type'], option.get('choices')) == (SPECS[name]['type'], SPECS[name].get('choices')), name


def test_the_merge_entry_point_uses_only_its_documented_or_registered_variables():
    tasks = _yaml('tasks', 'merge.yml')
    registered = set(task['register'] for task in _flat(tasks) if 'register' in task)
    used = set(re.findall(r'\bport_compliance_\w+', yaml.safe_dump(tasks)))
    options = set(ENTRY_POINTS['merge']['options'])
    assert used - options - registered == set()
    assert options - used == set()


@pytest.mark.parametrize('name', sorted(SPECS))
def test_each_variable_is_documented_in_full(name):
    option = SPECS[name]
    assert name.startswith('port_compliance_'), name
    assert option.get('type'), name
    assert option.get('description'), name
    # The documented default is the real one; a variable with none documented defaults to null.
    assert DEFAULTS[name] == option.get('default'), name
    if option.get('choices'):
        values = DEFAULTS[name] if option['type'] == 'list' else [DEFAULTS[name]]
        assert set(values) <= set(option['choices']), name


def test_tasks_use_only_documented_or_registered_variables():
    registered = set(task['register'] for task in _flat(TASKS) if 'register' in task)
    text = yaml.safe_dump(TASKS)
    used = set(re.findall(r'\bport_compliance_\w+', text))
    assert used - set(SPECS) - registered == set()
    # Every documented variable is used.
    assert set(SPECS) - used == set()
    assert used & (set(ALL_SPECS) - set(SPECS)) == set()  # and none of another entry point's only
