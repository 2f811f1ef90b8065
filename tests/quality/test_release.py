"""The version is read from one place (galaxy.yml), the changelog is generated, and scripts/release.sh prepares a release."""

import os
import re
import shutil
import subprocess
import sys

import pytest
import tomllib
import yaml

from ansible_collections.portwarden.compliance.plugins.plugin_utils.collection_version import collection_version
from tests.conftest import REPO
from tests.helpers.version import VERSION, galaxy_version
from tests.quality.test_sanity import copy_collection

CHANGELOG = os.path.join(os.path.dirname(sys.executable), 'antsibull-changelog')
SEMVER = re.compile(r'^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$')


def semver(text):
    match = SEMVER.match(text)
    assert match, '%r is not a version MAJOR.MINOR.PATCH' % text
    return tuple(int(part) for part in match.groups())


def releases(root=REPO):
    with open(os.path.join(root, 'changelogs', 'changelog.yaml')) as handle:
        return (yaml.safe_load(handle) or {}).get('releases') or {}


def test_galaxy_yml_holds_the_version_and_every_other_place_reads_it():
    semver(VERSION)
    with open(os.path.join(REPO, 'galaxy.yml')) as handle:
        assert sum(line.startswith('version:') for line in handle) == 1
    # the wheel: pyproject.toml has no version of its own; hatch reads galaxy.yml's with this pattern
    with open(os.path.join(REPO, 'pyproject.toml'), 'rb') as handle:
        pyproject = tomllib.load(handle)
    assert 'version' not in pyproject['project'] and 'version' in pyproject['project']['dynamic']
    hatch = pyproject['tool']['hatch']['version']
    assert hatch['path'] == 'galaxy.yml'
    with open(os.path.join(REPO, hatch['path'])) as handle:
        assert re.search(hatch['pattern'], handle.read()).group('version') == VERSION
    # `portwarden --version` and each report's tool version (a built tarball's MANIFEST.json: tests/integration/test_packaging.py)
    assert collection_version() == VERSION


def test_no_release_in_the_changelog_is_newer_than_galaxy_yml():
    released = sorted(semver(str(version)) for version in releases())
    assert released, 'changelogs/changelog.yaml has no release (scripts/release.sh VERSION)'
    assert released[-1] <= semver(VERSION), 'changelog.yaml releases %s, galaxy.yml says %s' % (released[-1], VERSION)


def test_changelog_rst_is_what_antsibull_changelog_generates(tmp_path):
    for name in ('galaxy.yml', 'CHANGELOG.rst'):
        shutil.copy(os.path.join(REPO, name), str(tmp_path / name))
    shutil.copytree(os.path.join(REPO, 'changelogs'), str(tmp_path / 'changelogs'))
    lint = subprocess.run([CHANGELOG, 'lint-changelog-yaml', 'changelogs/changelog.yaml'], cwd=str(tmp_path),
                          capture_output=True, text=True, check=False)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr
    generated = subprocess.run([CHANGELOG, 'generate'], cwd=str(tmp_path), capture_output=True, text=True, check=False)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    with open(os.path.join(REPO, 'CHANGELOG.rst')) as handle:
        committed = handle.read()
    assert (tmp_path / 'CHANGELOG.rst').read_text() == committed, 'CHANGELOG.rst is stale: run antsibull-changelog generate'
    newest = max(releases(), key=lambda version: semver(str(version)))
    assert 'v%s\n' % newest in (tmp_path / 'CHANGELOG.rst').read_text()


def release(root, version):
    env = dict(os.environ, PORTWARDEN_RELEASE_VENV=sys.prefix)
    return subprocess.run(['bash', os.path.join(root, 'scripts', 'release.sh'), version], cwd=root, env=env,
                          capture_output=True, text=True, check=False)


def fragment(root, name, text):
    with open(os.path.join(root, 'changelogs', 'fragments', name), 'w') as handle:
        handle.write('---\nminor_changes:\n  - %s\n' % text)


@pytest.mark.slow
def test_release_script_releases_then_adds_later_fragments_to_the_release(tmp_path):
    root = copy_collection(tmp_path)
    major, minor = semver(VERSION)[:2]
    version = '%d.%d.0' % (major, minor + 1)
    fragment(root, 'release-test-one.yml', 'port_audit - a change made for this test.')
    proc = release(root, version)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert galaxy_version(root) == version and collection_version(root) == version
    assert not os.path.exists(os.path.join(root, 'changelogs', 'fragments', 'release-test-one.yml'))
    with open(os.path.join(root, 'CHANGELOG.rst')) as handle:
        text = handle.read()
    assert 'v%s\n' % version in text and 'port_audit - a change made for this test.' in text
    # a branch merged after the release was prepared: the same command adds its fragment to the release
    fragment(root, 'release-test-two.yml', 'port_report - a change merged later.')
    proc = release(root, version)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(releases(root)) == sorted(list(releases()) + [version])
    with open(os.path.join(root, 'CHANGELOG.rst')) as handle:
        text = handle.read()
    assert 'port_audit - a change made for this test.' in text and 'port_report - a change merged later.' in text


@pytest.mark.parametrize('version', ['', '0.2', 'v0.2.0', '0.2.0-rc1', '01.2.0', '0.2.0; rm -rf /'])
def test_release_script_refuses_what_is_no_version_and_changes_nothing(tmp_path, version):
    root = str(tmp_path)
    os.mkdir(os.path.join(root, 'scripts'))
    for name in ('galaxy.yml', os.path.join('scripts', 'release.sh')):
        shutil.copy(os.path.join(REPO, name), os.path.join(root, name))
    proc = release(root, version)
    assert proc.returncode == 2 and 'a semantic version' in proc.stderr, proc.stdout + proc.stderr
    assert galaxy_version(root) == VERSION
