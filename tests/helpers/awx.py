"""AWX's meta vars for a job, as AWX adds them to its extra vars (both prefixes; see tests/fleet/awx_runner.py).

Pure, so the unit tests use it too (the mutation run stages no tests/fleet)."""

PREFIXES = ('awx', 'tower')


def awx_meta_vars(job_id, template='portwarden audit', workflow_job_id=None, inventory='fleet'):
    """The meta vars AWX adds to a job's extra vars (both prefixes)."""
    values = {'job_id': job_id, 'job_launch_type': 'workflow' if workflow_job_id else 'manual',
              'job_template_id': 42, 'job_template_name': template, 'inventory_id': 7, 'inventory_name': inventory,
              'execution_node': 'awx-task-1', 'project_revision': '0' * 40}
    if workflow_job_id:
        values.update({'workflow_job_id': workflow_job_id, 'workflow_job_name': template,
                       'workflow_job_launch_type': 'manual'})
    return dict(('%s_%s' % (prefix, key), value) for prefix in PREFIXES for key, value in values.items())
