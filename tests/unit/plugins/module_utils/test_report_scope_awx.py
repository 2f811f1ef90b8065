"""Scope auto under AWX: a slice of a sliced job template carries only AWX's usual meta vars (a workflow
job id among them) and an inventory of its own hosts; it must still write a part."""

import pytest

from ansible_collections.portwarden.compliance.plugins.action.port_report import scope_kind
from ansible_collections.portwarden.compliance.plugins.module_utils.report_merge import in_awx_workflow
from tests.helpers.awx import awx_meta_vars

SLICE_HOSTS = ['web01', 'web04']


@pytest.mark.parametrize('variables, kind', [
    (awx_meta_vars(601, workflow_job_id=600), 'part'),  # a slice: what AWX passes, nothing more
    (dict((key, value) for key, value in awx_meta_vars(601, workflow_job_id=600).items() if key.startswith('tower_')), 'part'),
    (awx_meta_vars(500), 'fleet'),  # a plain job over the whole inventory
    ({}, 'fleet'),
    ({'awx_workflow_job_id': ''}, 'fleet'),
])
def test_auto_scope_of_an_awx_slice(variables, kind):
    task_vars = dict(variables, groups={'all': list(SLICE_HOSTS)})
    assert scope_kind('auto', SLICE_HOSTS, task_vars) == kind
    assert in_awx_workflow(task_vars) is (kind == 'part')
    assert scope_kind('fleet', SLICE_HOSTS, task_vars) == 'fleet'  # asked for explicitly, kept
