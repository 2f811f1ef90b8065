"""The collection's version, from its one source, galaxy.yml, for the tests that build, install or name it."""

import os

import yaml

from tests.conftest import REPO


def galaxy_version(root=REPO):
    with open(os.path.join(root, 'galaxy.yml')) as handle:
        return str(yaml.safe_load(handle)['version'])


VERSION = galaxy_version()
TARBALL = 'portwarden-compliance-%s.tar.gz' % VERSION
