"""Attack: a careless release. Someone runs the main job and the tests in a checkout, then
``ansible-galaxy collection build`` there: the tarball must not carry this host's audit reports (its
listening ports, process names, history), test caches or anything else the work generated.

A copy of the checkout (what git tracks, and new files it does not ignore) runs the real main job twice
(``scripts/run.sh``: its venv, the reports and their history), the real pytest (caches, Hypothesis'
database, bytecode) and ruff; the outputs of tools not installed here (mutmut, coverage, a wheel
build, ansible-test) are laid where those tools write them. Then the real build, and its listing.
"""

import os
import subprocess
import sys
import tarfile

import pytest

from tests.helpers.checkout import copy_checkout, user_env
from tests.helpers.version import TARBALL

pytestmark = pytest.mark.slow

# What a collection tarball holds: the collection, its docs and tests, and the two files galaxy writes.
SHIPPED = {'MANIFEST.json', 'FILES.json', 'README.md', 'CHANGELOG.rst', 'COPYING', 'LICENSES', 'changelogs', 'docs', 'meta', 'playbooks',
           'plugins', 'roles', 'tests', 'pyproject.toml', 'requirements.txt', 'bindep.txt'}
# Where tools not installed here write (relative to the checkout): laid by hand, one file each.
OTHER_TOOLS = ('mutants/plugins/module_utils/report_sockets.py', '.mutmut-cache', '.coverage', '.coverage.host.1234',
               'htmlcov/index.html', 'coverage.xml', '.mypy_cache/3.11/cache.db', 'dist/portwarden_compliance-0.1.0.whl',
               'build/lib/x.py', 'tests/output/junit/python.xml', '.ansible/collections/x', '.tox/py/x', '.nox/x',
               'portwarden_compliance.egg-info/PKG-INFO', 'ansible.log', 'plugins/module_utils/report_sockets.py.orig',
               'playbooks/audit.yml.swp', 'portwarden-compliance-0.0.9.tar.gz', '.idea/workspace.xml', '.vscode/settings.json',
               'tests/.hypothesis/examples/x')


def run(argv, cwd, env, ok=(0,)):
    proc = subprocess.run(argv, cwd=str(cwd), env=env, capture_output=True, text=True, check=False, timeout=900)
    assert proc.returncode in ok, '%s failed (%d):\n%s\n%s' % (argv, proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def test_a_build_after_the_main_job_and_the_tests_ships_only_the_collection(tmp_path):
    checkout = tmp_path / 'checkout'
    copy_checkout(str(checkout))
    env = user_env(tmp_path / 'home')
    # The main job, twice: the second run keeps the first report in history/.
    run(['bash', 'scripts/run.sh'], checkout, env, ok=(0, 1, 2))
    run(['bash', 'scripts/run.sh'], checkout, env, ok=(0, 1, 2))
    reports = checkout / 'port-compliance-reports'
    assert (reports / 'portwarden-report.json').is_file() and os.listdir(str(reports / 'history'))
    tools = os.path.dirname(sys.executable)
    run([sys.executable, '-m', 'pytest', '-q', 'tests/unit/plugins/module_utils/test_report_sockets.py'],
        checkout, env)
    run([os.path.join(tools, 'ruff'), 'check', 'plugins'], checkout, env)
    assert (checkout / '.pytest_cache').is_dir() and (checkout / '.hypothesis').is_dir() and (checkout / '.ruff_cache').is_dir()
    for name in OTHER_TOOLS:
        path = checkout / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('generated\n')

    run([os.path.join(tools, 'ansible-galaxy'), 'collection', 'build', str(checkout), '--output-path', str(tmp_path)],
        tmp_path, env)
    with tarfile.open(str(tmp_path / TARBALL)) as archive:
        names = archive.getnames()
    assert 'plugins/module_utils/report_sockets.py' in names and 'roles/port_compliance/tasks/main.yml' in names
    leaked = sorted(set(name.split('/')[0] for name in names) - SHIPPED)
    assert leaked == [], ' '.join(leaked)
    generated = [name for name in names
                 if set(name.split('/')) & {'__pycache__', '.hypothesis', '.pytest_cache', 'output'}
                 or name.endswith(('.pyc', '.orig', '.swp', '.log', '.tar.gz'))]
    assert generated == [], ' '.join(generated)
