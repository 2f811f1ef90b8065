"""Packaging: `pip install .` and `ansible-galaxy collection build/install` both give a working collection."""

import json
import os
import subprocess
import sys
import tarfile

import pytest

from tests.conftest import REPO
from tests.helpers.version import TARBALL, VERSION

pytestmark = pytest.mark.slow
FQCN = 'portwarden.compliance.listening_sockets_info'


def clean_env(tmp_path, **extra):
    """An environment that cannot see the working tree: no PYTHONPATH, no collections path, a fresh HOME."""
    env = dict((key, value) for key, value in os.environ.items()
               if not key.startswith('ANSIBLE_') and key not in ('PYTHONPATH', 'VIRTUAL_ENV'))
    env['HOME'] = str(tmp_path / 'home')
    env.update(extra)
    os.makedirs(env['HOME'], exist_ok=True)
    return env


def run(argv, env, cwd=None):
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, '%s failed (%d):\n%s\n%s' % (argv, proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def test_pip_install_puts_the_collection_where_ansible_finds_it(tmp_path):
    venv = tmp_path / 'venv'
    env = clean_env(tmp_path)
    run([sys.executable, '-m', 'venv', str(venv)], env)
    bin_dir = venv / 'bin'
    run([str(bin_dir / 'pip'), 'install', '-q', '--disable-pip-version-check', REPO], env)
    purelib = run([str(bin_dir / 'python'), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                  env).stdout.strip()
    installed = os.path.join(purelib, 'ansible_collections', 'portwarden', 'compliance')
    for name in ('galaxy.yml', 'meta/runtime.yml', 'plugins/modules/listening_sockets_info.py',
                 'plugins/module_utils/gather_sockets.py', 'playbooks/gather.yml'):
        assert os.path.isfile(os.path.join(installed, name)), name
    # the Python dependencies came along; psutil only as the extra (the CLI's psutil backend alone needs it)
    run([str(bin_dir / 'python'), '-c', 'import ansible, jsonschema, yaml'], env)
    requires = run([str(bin_dir / 'python'), '-c', 'import importlib.metadata as m; print("\\n".join(m.requires("portwarden-compliance")))'],
                   env).stdout.splitlines()
    assert [line.replace('"', "'") for line in requires if line.startswith('psutil')] == ["psutil>=5.9; extra == 'psutil'"], requires
    # the EE metadata comes along too, where ansible-builder looks for it in an installed collection
    for name in ('meta/execution-environment.yml', 'requirements.txt', 'bindep.txt'):
        assert os.path.isfile(os.path.join(installed, name)), name
    # Ansible finds it on its own: no ANSIBLE_COLLECTIONS_PATH, a fresh HOME
    listed = run([str(bin_dir / 'ansible-galaxy'), 'collection', 'list', 'portwarden.compliance', '--format', 'json'], env)
    versions = [item for paths in json.loads(listed.stdout).values() for item in paths.values()]
    assert versions == [{'version': VERSION}]
    doc = run([str(bin_dir / 'ansible-doc'), '--json', FQCN], env)
    assert 'sockets' in json.loads(doc.stdout)[FQCN]['return']
    adhoc = run([str(bin_dir / 'ansible'), 'localhost', '-m', FQCN, '-e', 'ansible_python_interpreter=%s' % (bin_dir / 'python'),
                 '-o'], env)
    assert '"coverage"' in adhoc.stdout and 'SUCCESS' in adhoc.stdout
    # the console script
    gathered = subprocess.run([str(bin_dir / 'portwarden'), 'gather', '--format', 'json'], env=env,
                              capture_output=True, text=True, check=False)
    assert gathered.returncode in (0, 1), gathered.stderr
    assert 'coverage' in json.loads(gathered.stdout)
    assert run([str(bin_dir / 'portwarden'), '--version'], env).stdout == 'portwarden %s\n' % VERSION  # galaxy.yml in the wheel


def test_galaxy_build_and_install(tmp_path):
    env = clean_env(tmp_path)
    ansible_bin = os.path.dirname(sys.executable)
    run([os.path.join(ansible_bin, 'ansible-galaxy'), 'collection', 'build', REPO, '--output-path', str(tmp_path)], env)
    tarball = tmp_path / TARBALL
    assert tarball.exists()
    with tarfile.open(str(tarball)) as archive:
        names = archive.getnames()
    assert 'MANIFEST.json' in names and 'plugins/modules/listening_sockets_info.py' in names
    development_only = ('.venv', '.venv-test', '.venv-sanity', '.git', 'benchmarks', 'scripts', '.ci')
    leaked = [name for name in names if name.split('/')[0] in development_only]
    assert leaked == []
    collections = tmp_path / 'collections'
    run([os.path.join(ansible_bin, 'ansible-galaxy'), 'collection', 'install', str(tarball), '-p', str(collections)], env)
    env = clean_env(tmp_path, ANSIBLE_COLLECTIONS_PATH=str(collections))
    doc = run([os.path.join(ansible_bin, 'ansible-doc'), '--json', FQCN], env)
    assert json.loads(doc.stdout)[FQCN]['doc']['module'] == 'listening_sockets_info'
    adhoc = run([os.path.join(ansible_bin, 'ansible'), 'localhost', '-m', FQCN, '-a', 'protocols=tcp',
                 '-e', 'ansible_python_interpreter=%s' % sys.executable, '-o'], env)
    assert 'SUCCESS' in adhoc.stdout and '"udp"' not in adhoc.stdout


def test_version_of_an_installed_tarball_comes_from_its_manifest(tmp_path):
    """A tarball has MANIFEST.json and no galaxy.yml: ``portwarden --version`` reads the manifest."""
    env = clean_env(tmp_path)
    ansible_bin = os.path.dirname(sys.executable)
    run([os.path.join(ansible_bin, 'ansible-galaxy'), 'collection', 'build', REPO, '--output-path', str(tmp_path)], env)
    collections = tmp_path / 'collections'
    run([os.path.join(ansible_bin, 'ansible-galaxy'), 'collection', 'install', str(tmp_path / TARBALL),
         '-p', str(collections)], env)
    installed = collections / 'ansible_collections' / 'portwarden' / 'compliance'
    assert (installed / 'MANIFEST.json').is_file() and not (installed / 'galaxy.yml').exists()
    version = run([sys.executable, '-m', 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli', '--version'],
                  clean_env(tmp_path, PYTHONPATH=str(collections)))
    assert version.stdout == 'portwarden %s\n' % VERSION


@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0, reason='needs root (network namespaces)')
def test_the_main_job_shows_what_listens_and_fails_on_drift(tmp_path):
    """``scripts/run.sh`` from a fresh checkout, on a machine where a rogue process holds TCP 856: it prints
    this machine's socket table (naming the process), then the audit, which fails the gate."""
    from tests.helpers.checkout import copy_checkout, user_env
    from tests.helpers.netns import Namespace

    checkout = tmp_path / 'checkout'
    copy_checkout(str(checkout))
    env = user_env(tmp_path / 'home')
    run(['bash', 'scripts/setup.sh', 'run'], env, cwd=str(checkout))  # the namespace has no network for pip
    with Namespace() as namespace:
        rogue = namespace.listen({'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856}], 'name': 'rogue856'})
        job = namespace.run(['bash', 'scripts/run.sh'], cwd=str(checkout), env=env, timeout=600)
    assert job.returncode != 0, job.stdout[-3000:] + job.stderr[-3000:]
    table = job.stdout.split('PROTO  LOCAL ADDRESS', 1)[1]
    assert 'rogue856[%d]' % rogue.pids[0] in table.split('coverage: ')[0]
    assert 'coverage: backend=auto privileged=True complete=True' in table
    assert 'port compliance gate failed' in job.stdout and 'drift at or above high on 1 host' in job.stdout
    assert (checkout / 'port-compliance-reports' / 'portwarden-report.json').is_file()
