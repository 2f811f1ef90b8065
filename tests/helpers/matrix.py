"""What the version matrix and the target-Python tests run on, read from the files that install it.

- the default ansible-core: the pin in tests/requirements.txt (the full suite runs on it);
- the matrix: one tests/requirements-core-2.NN.txt per other ansible-core minor (scripts/setup.sh matrix
  makes .venv-core-2.NN of each, on the controller Python its ``# controller-python:`` line names);
- the target Pythons: the ``# target-pythons:`` line of tests/requirements-target.txt
  (scripts/setup.sh matrix makes .venv-target-3.N of each, with pytest for the module_utils unit tests).
"""

import glob
import os
import re
import subprocess

from tests.conftest import REPO

CORE_FILE = re.compile(r'requirements-core-(2\.\d+)\.txt$')


def _minor_key(minor):
    return tuple(int(part) for part in minor.split('.'))


def header_field(path, name):
    """The value of the first ``# NAME: value`` line of ``path``."""
    with open(path) as handle:
        for line in handle:
            if line.startswith('# %s:' % name):
                return line.split(':', 1)[1].strip()
    raise ValueError('%s has no "# %s:" line' % (path, name))


def default_core():
    """The ansible-core minor of the full suite: the pin of tests/requirements.txt."""
    with open(os.path.join(REPO, 'tests', 'requirements.txt')) as handle:
        found = re.search(r'^ansible-core==(\d+\.\d+)\.\d+\s*$', handle.read(), re.M)
    if not found:
        raise ValueError('tests/requirements.txt pins no ansible-core==X.Y.Z')
    return found.group(1)


def matrix_cores():
    """The other ansible-core minors, oldest first: one tests/requirements-core-2.NN.txt each."""
    found = [CORE_FILE.search(path).group(1) for path in glob.glob(os.path.join(REPO, 'tests', 'requirements-core-*.txt'))]
    return sorted(found, key=_minor_key)


def core_venv(minor):
    return os.path.join(REPO, '.venv-core-%s' % minor)


def target_pythons():
    """The target Pythons the module and module_utils are tested under, oldest first."""
    versions = header_field(os.path.join(REPO, 'tests', 'requirements-target.txt'), 'target-pythons').split()
    return sorted(versions, key=_minor_key)


def target_venv(version):
    return os.path.join(REPO, '.venv-target-%s' % version)


def python_version(path):
    """'X.Y' of the interpreter at ``path``, or None when it does not run."""
    try:
        found = subprocess.run([path, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
                               capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    return found.stdout.strip() if found.returncode == 0 else None


def find_python(version):
    """A bare interpreter of Python ``version`` (no venv: what a managed host has), or None.

    Debian's own first, then pyenv's installs, as scripts/setup.sh's find_python (a pyenv shim on PATH
    runs only the version pyenv selected, so PATH is not searched here: the shims would hide nothing new).
    """
    pyenv = os.environ.get('PYENV_ROOT') or os.path.expanduser('~/.pyenv')
    candidates = ['/usr/bin/python%s' % version]
    candidates += sorted(glob.glob(os.path.join(pyenv, 'versions', '%s.*' % version, 'bin', 'python%s' % version)),
                         key=lambda path: [int(part) if part.isdigit() else 0 for part in re.split(r'[./-]', path)],
                         reverse=True)
    for candidate in candidates:
        if os.access(candidate, os.X_OK) and python_version(candidate) == version:
            return candidate
    return None
