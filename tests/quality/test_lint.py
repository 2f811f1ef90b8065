"""Linters the project holds itself to: ansible-lint (production profile), ruff, the changelog fragments."""

import os
import subprocess
import sys

import yaml

from tests.conftest import REPO

BIN = os.path.dirname(sys.executable)


def run(argv):
    # ANSIBLE_COLLECTIONS_PATH (tests/conftest.py) points at this working tree, so a copy of the
    # collection installed elsewhere (pip install . into a venv) can never shadow it.
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ['PATH'])
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)


def test_ansible_lint_production_profile():
    proc = run([os.path.join(BIN, 'ansible-lint'), '--profile', 'production', '--nocolor'])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr


def test_ruff():
    proc = run([os.path.join(BIN, 'ruff'), 'check', '--no-cache', '.'])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_changelog_fragments():
    proc = run([os.path.join(BIN, 'antsibull-changelog'), 'lint'])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fragments = [name for name in os.listdir(os.path.join(REPO, 'changelogs', 'fragments')) if name.endswith('.yml')]
    # A release (scripts/release.sh) moves the fragments into changelogs/changelog.yaml.
    with open(os.path.join(REPO, 'changelogs', 'changelog.yaml')) as handle:
        released = bool((yaml.safe_load(handle) or {}).get('releases'))
    assert fragments or released, 'every user-facing change needs a changelog fragment'


def _argparse_scripts():
    found = []
    for folder in ('scripts', 'benchmarks'):
        for name in sorted(os.listdir(os.path.join(REPO, folder))):
            path = os.path.join(REPO, folder, name)
            if name.endswith('.py'):
                with open(path, encoding='utf-8') as handle:
                    if 'argparse' in handle.read():
                        found.append(os.path.join(folder, name))
    return found


def test_every_script_and_benchmark_prints_its_help():
    """``--help`` is the first thing run of a script: it must print, not fail (argparse formats each help text with
    %, so a lone '%' in one is a traceback)."""
    scripts = _argparse_scripts()
    assert 'scripts/mutation.py' in scripts and 'benchmarks/bench_nat.py' in scripts
    for script in scripts:
        proc = run([sys.executable, script, '--help'])
        assert proc.returncode == 0 and proc.stdout.startswith('usage: '), (script, proc.stdout + proc.stderr)
        assert 'Traceback' not in proc.stderr, (script, proc.stderr)
