"""The version matrix: every ansible-core minor that meta/runtime.yml admits is tested.

The default (tests/requirements.txt, 2.19) runs the full suite. Each other minor, one
tests/requirements-core-2.NN.txt each, runs the unit tests, the fleet smoke with module_defaults
(tests/fleet/test_fleet_smoke.py, test_fleet_module_defaults.py) and ansible-test sanity with empty
ignore files, in its own venv (.venv-core-2.NN, scripts/setup.sh matrix), each a test of its own here.
"""

import os
import re
import subprocess

import pytest
import yaml

from tests.conftest import REPO
from tests.helpers import matrix
from tests.matrix.runner import core_entries, judge

pytestmark = pytest.mark.slow

WAIT = 60 * 60


def _admitted_minors(spec):
    """The ansible-core minors a ``>=2.A.0,<2.B.0`` requires_ansible admits; anything else is refused."""
    found = re.fullmatch(r'>=2\.(\d+)\.0,<2\.(\d+)\.0', spec.replace(' ', ''))
    assert found, 'meta/runtime.yml requires_ansible %r: expected ">=2.A.0,<2.B.0" (no untested version admitted)' % spec
    return ['2.%d' % minor for minor in range(int(found.group(1)), int(found.group(2)))]


def test_every_admitted_version_is_tested():
    with open(os.path.join(REPO, 'meta', 'runtime.yml')) as handle:
        spec = yaml.safe_load(handle)['requires_ansible']
    tested = sorted([matrix.default_core()] + matrix.matrix_cores(), key=lambda minor: int(minor.split('.')[1]))
    assert tested == _admitted_minors(spec)
    for minor in tested:
        ignore = os.path.join(REPO, 'tests', 'sanity', 'ignore-%s.txt' % minor)
        assert os.path.exists(ignore) and os.path.getsize(ignore) == 0, '%s must exist, empty' % ignore


@pytest.mark.parametrize('spec, admitted', [
    ('>=2.17.0,<2.22.0', ['2.17', '2.18', '2.19', '2.20', '2.21']),
    ('>= 2.19.0, < 2.20.0', ['2.19']),
])
def test_admitted_minors(spec, admitted):
    assert _admitted_minors(spec) == admitted


@pytest.mark.parametrize('spec', ['>=2.17.0', '>=2.17,<2.22', '>=2.17.0,<=2.21.5', '2.17.0'])
def test_an_open_or_odd_range_is_refused(spec):
    with pytest.raises(AssertionError, match='requires_ansible'):
        _admitted_minors(spec)


@pytest.mark.parametrize('entry', core_entries())
def test_core_version(matrix_runner, entry):
    """core-2.NN-unit|fleet|sanity: that pytest run, in .venv-core-2.NN, passed and skipped nothing."""
    code, output = matrix_runner.wait(entry, WAIT)
    problem = judge(entry, code, output)
    assert problem is None, problem + '\n' + '\n'.join(output.splitlines()[-80:])


@pytest.mark.parametrize('minor', matrix.matrix_cores())
def test_core_venv_runs_that_version(minor):
    python = os.path.join(matrix.core_venv(minor), 'bin', 'python')
    assert os.path.exists(python), 'no %s: run scripts/setup.sh matrix' % python
    found = subprocess.run([python, '-c', 'from ansible.release import __version__; print(__version__)'],
                           capture_output=True, text=True, check=False)
    assert found.returncode == 0 and found.stdout.startswith(minor + '.'), found.stdout + found.stderr
