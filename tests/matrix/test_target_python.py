"""Target Pythons: the module_utils that run on managed hosts, under every target Python.

- the unit tests of the host's module_utils (runner.target_unit_tests) in .venv-target-3.N, each a
  matrix entry of its own (the modules themselves run over SSH in tests/fleet/test_fleet_target_python.py);
- ``ansible-test sanity --test compile`` of every tested ansible-core, with the target interpreters on PATH.
  ansible-test skips a Python it cannot find with a warning and still passes, so the test reads which
  versions it compiled for: each target Python that version of ansible-test supports, and nothing of ours skipped.
"""

import os
import re
import subprocess

import pytest

from tests.helpers import matrix
from tests.matrix.runner import judge, target_entries
from tests.quality.test_sanity import copy_collection

pytestmark = pytest.mark.slow

WAIT = 60 * 60
RAN = re.compile(r'^Running sanity test "compile" on Python (\d+\.\d+)$', re.M)
SKIPPED = re.compile(r'^WARNING: Skipping sanity test "compile" on Python (\d+\.\d+) because it could not be found\.$', re.M)


def compile_problem(output, ours):
    """Why an ``ansible-test sanity --test compile`` output does not cover the target Pythons ``ours``, or None.

    What this ansible-test supports beyond them (3.7 for 2.17, 3.14 for 2.20 and later) is skipped, as
    no such interpreter is here; the docs do not claim those."""
    ran, skipped = set(RAN.findall(output)), set(SKIPPED.findall(output))
    if not ran:
        return 'compile ran on no Python'
    if skipped & set(ours):
        return 'ansible-test could not find target Python %s' % ', '.join(sorted(skipped & set(ours)))
    if ran - set(ours):
        return 'compile ran on Python %s, which is not a target' % ', '.join(sorted(ran - set(ours)))
    return None


def run_compile(ansible_test, collection, interpreters):
    venv_bin = os.path.dirname(ansible_test)
    env = dict(os.environ, PATH=os.pathsep.join([interpreters, venv_bin, '/usr/bin', '/bin']))
    env.pop('PYTHONPATH', None)
    env.pop('ANSIBLE_COLLECTIONS_PATH', None)
    proc = subprocess.run([ansible_test, 'sanity', '--local', '--test', 'compile', '--color', 'no'], cwd=collection, env=env,
                          capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize('entry', target_entries())
def test_host_module_utils_unit_tests(matrix_runner, entry):
    code, output = matrix_runner.wait(entry, WAIT)
    problem = judge(entry, code, output, least=100)
    assert problem is None, problem + '\n' + '\n'.join(output.splitlines()[-80:])


@pytest.mark.parametrize('version', matrix.target_pythons())
def test_target_venv_runs_that_python(version):
    python = os.path.join(matrix.target_venv(version), 'bin', 'python')
    assert os.path.exists(python), 'no %s: run scripts/setup.sh matrix' % python
    assert matrix.python_version(python) == version


@pytest.fixture(scope='module')
def collection(tmp_path_factory):
    return copy_collection(tmp_path_factory.mktemp('compile'))


@pytest.fixture(scope='module')
def interpreters(tmp_path_factory):
    """A directory of python3.N links to every target interpreter, for ansible-test to find on PATH."""
    directory = str(tmp_path_factory.mktemp('pythons'))
    for version in matrix.target_pythons():
        path = matrix.find_python(version)
        assert path, 'no interpreter for target Python %s' % version
        os.symlink(path, os.path.join(directory, 'python%s' % version))
    return directory


@pytest.mark.parametrize('minor', [matrix.default_core()] + matrix.matrix_cores())
def test_compile_on_every_target_python(collection, interpreters, minor):
    venv = os.path.join(matrix.REPO, '.venv-sanity') if minor == matrix.default_core() else matrix.core_venv(minor)
    ansible_test = os.path.join(venv, 'bin', 'ansible-test')
    assert os.path.exists(ansible_test), 'no %s: run scripts/setup.sh test' % ansible_test
    code, output = run_compile(ansible_test, collection, interpreters)
    assert code == 0, output[-6000:]
    problem = compile_problem(output, matrix.target_pythons())
    assert problem is None, '%s: %s\n%s' % (minor, problem, output[-3000:])
