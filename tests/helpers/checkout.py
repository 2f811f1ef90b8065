"""A copy of this checkout as a new user has it: what git tracks and new files it does not ignore."""

import os
import shutil
import subprocess

from tests.conftest import REPO


def copy_checkout(target):
    """Copy the work tree's files (tracked, and untracked but not ignored) to ``target``; not the shared venv links."""
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=REPO,
                            capture_output=True, check=True).stdout
    for name in filter(None, listed.decode('utf-8', 'surrogateescape').split('\0')):
        source = os.path.join(REPO, name)
        if not os.path.lexists(source) or name.startswith('.venv'):  # deleted in the work tree; the shared venv links
            continue
        os.makedirs(os.path.dirname(os.path.join(target, name)), exist_ok=True)
        shutil.copy2(source, os.path.join(target, name), follow_symlinks=False)


def user_env(home):
    """The environment of a person at a shell in the checkout: no test-run collection path, a fresh HOME."""
    env = dict((key, value) for key, value in os.environ.items()
               if not key.startswith(('ANSIBLE_', 'PYTEST_')) and key not in ('PYTHONPATH', 'VIRTUAL_ENV'))
    env['HOME'] = str(home)
    os.makedirs(env['HOME'], exist_ok=True)
    return env
