"""Unit tests: the collection's version, as an installed collection (MANIFEST.json) or a checkout or pip
install (galaxy.yml) says it; ``portwarden --version`` prints it."""

import json
import os

import pytest

from ansible_collections.portwarden.compliance.plugins.plugin_utils import cli
from tests.conftest import REPO


def galaxy_version():
    with open(os.path.join(REPO, 'galaxy.yml')) as handle:
        return next(line.split(':', 1)[1].strip() for line in handle if line.startswith('version:'))


def test_version_of_this_checkout_comes_from_galaxy_yml():
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.collection_version import collection_version

    assert collection_version() == galaxy_version()


@pytest.mark.parametrize('files, version', [
    ({'MANIFEST.json': json.dumps({'collection_info': {'version': '1.2.3'}}), 'galaxy.yml': 'version: 9.9.9\n'}, '1.2.3'),
    ({'galaxy.yml': 'namespace: portwarden\nversion: "0.4.0"  # released\n'}, '0.4.0'),
    ({'galaxy.yml': "version: '0.5.0'\n"}, '0.5.0'),
    ({'MANIFEST.json': '{"truncated', 'galaxy.yml': 'version: 0.6.0\n'}, '0.6.0'),  # a broken manifest: galaxy.yml
    ({'MANIFEST.json': '[]'}, None),
    ({'galaxy.yml': 'name: compliance\n'}, None),
    ({}, None),
])
def test_version_of_a_collection_root(tmp_path, files, version):
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.collection_version import collection_version

    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert collection_version(str(tmp_path)) == version


def test_portwarden_version(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(['--version'])
    assert exited.value.code == 0
    assert capsys.readouterr().out == 'portwarden %s\n' % galaxy_version()
