"""Attacks on the version matrix's verdicts: a matrix entry or a compile run must not pass by looking like it did.

- An entry whose tests all skip (a venv where the fleet cannot run) exits 0: it must fail its matrix test.
- A test may print a line that looks like pytest's summary; only the real last line counts.
- An entry cut off (killed at its time limit, its summary missing) fails, whatever it printed before.
- A real pytest run in a matrix venv that skips, and one that collects nothing, both fail.
- A missing venv fails the entry with the set-up command, never passes it.
- ``ansible-test sanity --test compile`` passes when a target interpreter is missing (it only warns):
  the check of its output must catch a target Python left off PATH (a real run of ansible-test).
"""

import os
import subprocess

import pytest

from tests.conftest import REPO
from tests.helpers import matrix
from tests.matrix.runner import Runner, judge, pytest_counts
from tests.matrix.test_target_python import compile_problem, run_compile
from tests.quality.test_sanity import copy_collection


@pytest.mark.parametrize('code, output, problem', [
    (0, '....\n4 passed in 2.00s\n', None),
    (0, 'sss\n3 skipped in 0.50s\n', 'entry: 3 skipped'),
    (0, '..s\n2 passed, 1 skipped in 0.50s\n', 'entry: 2 passed, 1 skipped'),
    (0, '\nno tests ran in 0.01s\n', 'entry: exit 0 but no pytest summary'),
    (0, '', 'entry: exit 0 but no pytest summary'),
    (0, 'printed by a test: 999 passed in 1.00s\n.F\n1 failed, 1 passed in 2.00s\n', 'entry: 1 failed, 1 passed'),
    (0, '4 passed in 2.00s\nmatrix: entry killed after 2700 s\n', 'entry: exit 0 but no pytest summary'),
    (1, '4 passed in 2.00s\n', 'entry: exit 1 ({\'passed\': 4})'),
    (0, '.E\n1 passed, 1 error in 2.00s\n', 'entry: 1 errors, 1 passed'),
    (0, '============ 7 passed, 1 xpassed in 3.10s (0:00:03) ============\n', 'entry: 7 passed, 1 xpassed'),
])
def test_judge(code, output, problem):
    assert judge('entry', code, output) == problem


def test_too_few_tests_do_not_count():
    assert judge('entry', 0, '.\n1 passed in 0.10s\n', least=100) == 'entry: 1 passed'


def _inner_pytest(tmp_path, body):
    folder = tmp_path / 'inner'
    folder.mkdir()
    (folder / 'test_inner.py').write_text(body)
    python = os.path.join(matrix.core_venv(matrix.matrix_cores()[0]), 'bin', 'python')
    assert os.path.exists(python), 'no %s: run scripts/setup.sh matrix' % python
    proc = subprocess.run([python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', str(folder)], cwd=str(tmp_path),
                          capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_a_real_run_that_skips_everything_fails(tmp_path):
    code, output = _inner_pytest(tmp_path, 'import pytest\n\n\ndef test_fleet():\n    pytest.skip("not root")\n')
    assert code == 0 and pytest_counts(output) == {'skipped': 1}
    assert judge('core-x-fleet', code, output) == 'core-x-fleet: 1 skipped'


def test_a_real_run_that_collects_nothing_fails(tmp_path):
    code, output = _inner_pytest(tmp_path, '# no tests\n')
    assert code == 5
    assert judge('core-x-unit', code, output).startswith('core-x-unit: exit 5')


def test_a_missing_venv_fails_the_entry(tmp_path):
    runner = Runner(str(tmp_path), ['core-2.99-unit'])
    runner.start_workers(1)
    code, output = runner.wait('core-2.99-unit', 60)
    assert code == 98 and 'scripts/setup.sh matrix' in output
    assert judge('core-2.99-unit', code, output) is not None


def test_an_entry_not_asked_for_is_refused(tmp_path):
    with pytest.raises(KeyError):
        Runner(str(tmp_path), ['core-2.99-unit']).wait('core-2.98-unit', 1)


@pytest.mark.slow
def test_a_target_python_left_off_path_is_caught(tmp_path):
    """ansible-test passes without 3.9 (a warning only); the check names it."""
    interpreters = tmp_path / 'pythons'
    interpreters.mkdir()
    targets = matrix.target_pythons()
    for version in targets:
        if version != '3.9':
            os.symlink(matrix.find_python(version), str(interpreters / ('python%s' % version)))
    collection = copy_collection(tmp_path / 'collection')
    ansible_test = os.path.join(REPO, '.venv-sanity', 'bin', 'ansible-test')
    code, output = run_compile(ansible_test, collection, str(interpreters))
    assert code == 0, output[-3000:]  # what ansible-test itself does
    assert 'Skipping sanity test "compile" on Python 3.9 because it could not be found.' in output
    assert compile_problem(output, targets) == 'ansible-test could not find target Python 3.9'


def test_compile_on_no_python_or_on_a_stranger_is_caught():
    assert compile_problem('nothing ran\n', ['3.8']) == 'compile ran on no Python'
    output = 'Running sanity test "compile" on Python 3.8\nRunning sanity test "compile" on Python 3.7\n'
    assert compile_problem(output, ['3.8']) == 'compile ran on Python 3.7, which is not a target'
