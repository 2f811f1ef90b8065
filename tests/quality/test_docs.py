"""The docs site (scripts/docs.sh): antsibull-docs lints every doc of the collection, the site builds with no warning.

One build of the checkout, and two of a copy with one fault each, to show that either step fails on it.
"""

import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO
from tests.quality.test_sanity import copy_collection

pytestmark = pytest.mark.slow

DOCS_SH = os.path.join('scripts', 'docs.sh')


def docs(root, *args):
    # The copy has no venv of its own: the test's venv (.venv-test) has the docs tools.
    env = dict(os.environ, PORTWARDEN_DOCS_VENV=sys.prefix)
    proc = subprocess.run(['bash', os.path.join(root, DOCS_SH)] + [str(arg) for arg in args], cwd=root, env=env,
                          capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def extra_pages():
    with open(os.path.join(REPO, 'docs', 'docsite', 'extra-docs.yml')) as handle:
        sections = yaml.safe_load(handle)['sections']
    return [page for section in sections for page in section['toctree']]


def test_the_site_builds_with_no_warning(tmp_path):
    site = tmp_path / 'site'
    rc, output = docs(REPO, site)
    assert rc == 0, output[-6000:]
    assert 'build succeeded.' in output, output[-3000:]
    assert 'WARNING' not in output, output[-6000:]
    html = site / 'build' / 'html'
    modules = sorted(name[:-3] for name in os.listdir(os.path.join(REPO, 'plugins', 'modules')) if name.endswith('.py'))
    assert 'listening_sockets_info' in modules
    expected = ['%s_module.html' % name for name in modules] + ['socket_table_filter.html', 'port_compliance_role.html']
    expected += ['docsite/%s.html' % page for page in extra_pages()]
    missing = [page for page in expected if not (html / page).is_file()]
    assert not missing, missing
    index = (html / 'index.html').read_text()
    for page in extra_pages():
        assert 'href="docsite/%s.html"' % page in index, page
    # Ansible's own docs are linked through the offline inventory, not left as plain text.
    module_page = (html / 'port_audit_module.html').read_text()
    assert 'https://docs.ansible.com/projects/ansible/devel/reference_appendices/common_return_values.html' in module_page
    # The role's page comes from meta/argument_specs.yml, every entry point's options included.
    role_page = (html / 'port_compliance_role.html').read_text()
    assert 'port_compliance_merge_parts_dir' in role_page and 'port_compliance_fail_on_unknown' in role_page


def test_the_lint_fails_on_a_reference_to_no_module(tmp_path):
    root = copy_collection(tmp_path)
    module = os.path.join(root, 'plugins', 'modules', 'port_policy_validate.py')
    with open(module) as handle:
        text = handle.read()
    assert 'does so.\n' in text
    with open(module, 'w') as handle:
        handle.write(text.replace('does so.\n', 'does so. See M(portwarden.compliance.port_nothing).\n', 1))
    rc, output = docs(root, '--lint-only')
    assert rc != 0, output[-3000:]
    assert 'port_policy_validate.py' in output and 'there is no module portwarden.compliance.port_nothing' in output, output[-3000:]


def test_the_build_fails_on_a_sphinx_warning(tmp_path):
    root = copy_collection(tmp_path)
    page = os.path.join(root, 'docs', 'docsite', 'rst', 'policy.rst')
    with open(page, 'a') as handle:
        handle.write('\nSee :ref:`ansible_collections.portwarden.compliance.docsite.nothing_here`.\n')
    rc, output = docs(root, tmp_path / 'site')
    assert rc != 0, output[-3000:]
    assert 'policy.rst' in output and "undefined label: 'ansible_collections.portwarden.compliance.docsite.nothing_here'" in output, \
        output[-3000:]
