"""ansible-test sanity, run the way Ansible's own CI runs it on a collection, with empty ignore files."""

import glob
import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO

# The version matrix (tests/matrix) runs this test under each other ansible-core with that version's venv.
SANITY_VENV = os.environ.get('PORTWARDEN_SANITY_VENV') or os.path.join(REPO, '.venv-sanity')
GET_PIP_STAND_IN = os.path.join(REPO, 'scripts', 'ansible-test-get-pip.py')

pytestmark = pytest.mark.slow


def tracked_files():
    listed = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=REPO,
                            capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split('\0') if name and os.path.exists(os.path.join(REPO, name))]


def copy_collection(destination):
    """Copy the working tree's files (not ignored ones) to DEST/ansible_collections/portwarden/compliance."""
    root = os.path.join(str(destination), 'ansible_collections', 'portwarden', 'compliance')
    for name in tracked_files():
        target = os.path.join(root, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(REPO, name), target, follow_symlinks=False)
    return root


def ensure_pip_bootstrap(ansible_test_python):
    """ansible-test downloads a pip bootstrap script from a host only the internet reaches; it reads a
    saved copy first. Save the offline stand-in there, never over a real one."""
    source = subprocess.run([ansible_test_python, '-c', 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))'],
                            capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(source, '_internal', 'python_requirements.py')) as handle:
        version = re.search(r"pip='([0-9.]+)'", handle.read()).group(1)
    cached = os.path.expanduser('~/.ansible/test/cache/get_pip_%s.py' % version.replace('.', '_'))
    if not os.path.exists(cached):
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        shutil.copy(GET_PIP_STAND_IN, cached)


def test_ignore_files_are_empty():
    ignores = glob.glob(os.path.join(REPO, 'tests', 'sanity', 'ignore-*.txt'))
    assert ignores, 'tests/sanity/ignore-*.txt must exist (empty)'
    for path in ignores:
        assert os.path.getsize(path) == 0, '%s is not empty' % path


def test_ansible_test_sanity(tmp_path):
    python = os.path.join(SANITY_VENV, 'bin', 'python')
    if not os.path.exists(python):
        pytest.fail('no %s: run scripts/setup.sh test first' % SANITY_VENV)
    ensure_pip_bootstrap(python)
    root = copy_collection(tmp_path)
    version = subprocess.run([python, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
                             capture_output=True, text=True, check=True).stdout.strip()
    env = dict(os.environ, PATH=os.path.join(SANITY_VENV, 'bin') + os.pathsep + os.environ['PATH'])
    env.pop('PYTHONPATH', None)
    env.pop('ANSIBLE_COLLECTIONS_PATH', None)
    proc = subprocess.run([os.path.join(SANITY_VENV, 'bin', 'ansible-test'), 'sanity', '--local', '--requirements',
                           '--python', version, '--color', 'no'],
                          cwd=root, env=env, capture_output=True, text=True, check=False)
    report = [line for line in (proc.stdout + proc.stderr).splitlines()
              if line.startswith(('ERROR', 'FATAL', 'Running sanity'))]
    assert proc.returncode == 0, '\n'.join(report[-80:])
    assert sum(line.startswith('Running sanity') for line in report) >= 20
