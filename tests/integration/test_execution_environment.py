"""Execution environment: ansible-builder takes the collection's controller-side dependencies from its tarball.

The test builds the collection tarball, writes an EE definition (version 3) that installs it, and runs the
real ``ansible-builder create``: no container engine is needed for that. The build's galaxy and
introspection stages run inside a container, which this machine cannot start, so the test runs them here
as the generated Containerfile writes them: the ``ansible-galaxy collection install`` line in the copied
context, then the context's own copy of introspect.py on what it installed. What introspection keeps is
what the image would get from the collection: jsonschema and the ssh client, never psutil (optional).
"""

import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO
from tests.helpers.version import TARBALL

pytestmark = pytest.mark.slow
TOOLS = os.path.dirname(sys.executable)
# Never pulled: ``create`` only writes the Containerfile that names it.
BASE_IMAGE = 'localhost/portwarden-ee-base:test'


def clean_env(tmp_path):
    env = dict((key, value) for key, value in os.environ.items()
               if not key.startswith('ANSIBLE_') and key not in ('PYTHONPATH', 'VIRTUAL_ENV'))
    env['HOME'] = str(tmp_path / 'home')
    os.makedirs(env['HOME'], exist_ok=True)
    return env


def run(argv, env, cwd=None):
    proc = subprocess.run([str(arg) for arg in argv], env=env, cwd=cwd and str(cwd), capture_output=True, text=True,
                          check=False, timeout=600)
    assert proc.returncode == 0, '%s failed (%d):\n%s\n%s' % (argv, proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def requirement_names(lines):
    """Package names of requirement lines (``jsonschema>=4.18  # from collection x`` -> ``jsonschema``)."""
    names = []
    for line in lines:
        requirement = line.split('#', 1)[0].strip()
        if requirement:
            names.append(re.split(r'[\s<>=!~;\[]', requirement, maxsplit=1)[0].lower())
    return names


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    """The collection tarball, built from this checkout as a release is."""
    out = tmp_path_factory.mktemp('ee-build')
    env = clean_env(out)
    run([os.path.join(TOOLS, 'ansible-galaxy'), 'collection', 'build', REPO, '--output-path', out], env)
    return out / TARBALL, env


def test_the_tarball_carries_the_dependency_files(built):
    import tarfile

    tarball, _env = built
    with tarfile.open(str(tarball)) as archive:
        names = set(archive.getnames())
        meta = yaml.safe_load(archive.extractfile('meta/execution-environment.yml'))
    assert meta['dependencies'] == {'python': 'requirements.txt', 'system': 'bindep.txt'}
    assert {'requirements.txt', 'bindep.txt', 'meta/execution-environment.yml'} <= names


def test_ansible_builder_create_carries_the_collection_dependencies(built, tmp_path):
    tarball, env = built
    ee = tmp_path / 'execution-environment.yml'
    ee.write_text(yaml.safe_dump({
        'version': 3,
        'images': {'base_image': {'name': BASE_IMAGE}},
        'dependencies': {
            'ansible_core': {'package_pip': 'ansible-core==2.19.14'},
            'ansible_runner': {'package_pip': 'ansible-runner==2.4.3'},
            'galaxy': {'collections': [{'name': 'collections/' + TARBALL, 'type': 'file'}]},
        },
        # the tarball goes into the build context, where the galaxy stage (WORKDIR /build) finds it
        'additional_build_files': [{'src': str(tarball), 'dest': 'collections'}],
    }, sort_keys=False))
    context = tmp_path / 'context'
    run([os.path.join(TOOLS, 'ansible-builder'), 'create', '-f', ee, '-c', context, '--output-filename', 'Containerfile', '-v3'], env, cwd=tmp_path)
    containerfile = (context / 'Containerfile').read_text()
    build = context / '_build'
    assert (build / 'collections' / TARBALL).is_file()
    assert 'COPY _build /build' in containerfile and 'WORKDIR /build' in containerfile

    # The galaxy stage, as written: its ansible-galaxy line, run in the context copied to /build.
    collections = tmp_path / 'usr-share-ansible-collections'
    galaxy = [line for line in containerfile.splitlines() if 'ansible-galaxy collection install' in line]
    assert len(galaxy) == 1, containerfile
    argv = shlex.split(galaxy[0][len('RUN '):])
    argv = [arg for arg in argv if not re.match(r'^\w+=', arg) and arg != '$ANSIBLE_GALAXY_CLI_COLLECTION_OPTS']
    assert argv[:3] == ['ansible-galaxy', 'collection', 'install'] and argv[-2] == '--collections-path', argv
    argv = [os.path.join(TOOLS, 'ansible-galaxy')] + argv[1:-1] + [str(collections)]
    run(argv, dict(env, ANSIBLE_GALAXY_DISABLE_GPG_VERIFY='1'), cwd=build)
    installed = collections / 'ansible_collections' / 'portwarden' / 'compliance'
    assert (installed / 'meta' / 'execution-environment.yml').is_file()

    # The builder stage's introspection, as written, with the context's own copy of the script.
    introspect = [line for line in containerfile.splitlines() if '/output/scripts/introspect.py introspect' in line]
    assert len(introspect) == 1, containerfile
    argv = shlex.split(introspect[0][len('RUN '):])
    assert argv[0] == '$PYCMD' and argv[1] == '/output/scripts/introspect.py', argv
    written = tmp_path / 'tmp-src'
    argv = [sys.executable, str(build / 'scripts' / 'introspect.py')] + [
        arg.replace('/tmp/src/', str(written) + '/') for arg in argv[2:]] + [str(collections)]
    proc = run(argv, env, cwd=build)
    pip_lines = (written / 'requirements.txt').read_text().splitlines()
    bindep_lines = (written / 'bindep.txt').read_text().splitlines()
    assert requirement_names(pip_lines) == ['jsonschema'], pip_lines
    assert all(line.endswith('# from collection portwarden.compliance') for line in filter(None, pip_lines)), pip_lines
    assert sorted(line.split('#')[0].strip() for line in filter(None, bindep_lines)) == [
        'openssh-client [platform:dpkg]', 'openssh-clients [platform:rpm]'], bindep_lines
    assert 'psutil' not in proc.stdout.lower()


def test_introspect_names_the_dependencies_and_not_psutil(built, tmp_path):
    """``ansible-builder introspect --sanitize`` on the installed collection, as the docs tell collection
    authors to verify: jsonschema kept, PyYAML read from the collection and left out on purpose (every EE
    base image carries it, ansible-core needs it), the bindep entries, and psutil nowhere as a requirement."""
    tarball, env = built
    collections = tmp_path / 'collections'
    run([os.path.join(TOOLS, 'ansible-galaxy'), 'collection', 'install', tarball, '-p', collections], env)
    proc = run([os.path.join(TOOLS, 'ansible-builder'), 'introspect', '--sanitize', collections, '-v3'], env)
    data = yaml.safe_load(proc.stdout[proc.stdout.index('\n---\n'):])
    assert requirement_names(data['python']) == ['jsonschema'], data
    assert "Excluding requirement 'PyYAML' from 'portwarden.compliance'" in proc.stdout + proc.stderr
    assert sorted(line.split('#')[0].strip() for line in data['system']) == [
        'openssh-client [platform:dpkg]', 'openssh-clients [platform:rpm]'], data
    # psutil is named only in a comment of requirements.txt, which introspection drops
    assert 'psutil' not in proc.stdout.lower()
    with open(os.path.join(REPO, 'requirements.txt')) as handle:
        assert 'psutil' in handle.read()


def test_bindep_resolves_the_dpkg_profile_here(tmp_path):
    """bindep itself (installed with ansible-builder) parses the file, and on this Debian machine the dpkg
    profile's package is a real, installed one: nothing is missing."""
    env = clean_env(tmp_path)
    proc = subprocess.run([os.path.join(TOOLS, 'bindep'), '-b', '-f', os.path.join(REPO, 'bindep.txt')], env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == '', proc.stdout + proc.stderr
    dpkg = subprocess.run(['dpkg-query', '-W', '-f=${Status}', 'openssh-client'], capture_output=True, text=True, check=False)
    assert 'install ok installed' in dpkg.stdout
