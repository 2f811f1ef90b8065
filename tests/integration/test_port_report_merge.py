"""The controller side of the merge: port_report_merge and the role's merge entry point, through ansible-playbook.

Real ansible-playbook runs on the controller (no host is contacted: the merge touches none), the summary the
role publishes read from the json callback's custom stats, check mode writing nothing.
"""

import json
import os
import subprocess
import sys

import yaml

from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
from tests.helpers.parts import audit, drift, write_part


def playbook(workdir, tasks, hosts=('web-1', 'web-2', 'db-1'), check=False, extra_vars=None):
    """Run a play on localhost over an inventory of ``hosts``; ``(proc, {'results': [each task's registered result],
    'stats': the custom stats set_stats published})``. The task at index i registers ``r<i>``."""
    workdir = str(workdir)
    saved = os.path.join(workdir, 'results.json')
    if os.path.exists(saved):
        os.unlink(saved)
    tasks = [dict(task, register='r%d' % index) for index, task in enumerate(tasks)]
    tasks.append({'name': 'save', 'ansible.builtin.copy': {
        'content': '{{ [%s] | to_json }}' % ', '.join('r%d | default(None)' % index for index in range(len(tasks))),
        'dest': saved}, 'check_mode': False})
    inventory = {'all': {'hosts': dict((host, {'ansible_connection': 'local'}) for host in hosts)}}
    with open(os.path.join(workdir, 'inventory.yml'), 'w') as handle:
        yaml.safe_dump(inventory, handle)
    with open(os.path.join(workdir, 'play.yml'), 'w') as handle:
        yaml.safe_dump([{'hosts': 'localhost', 'gather_facts': False, 'connection': 'local', 'tasks': tasks}], handle)
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_LOCALHOST_WARNING='0',
               ANSIBLE_SHOW_CUSTOM_STATS='1', ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i',
            os.path.join(workdir, 'inventory.yml'), os.path.join(workdir, 'play.yml')]
    if check:
        argv.append('--check')
    if extra_vars:
        argv += ['-e', json.dumps(extra_vars)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    output = {'results': None, 'stats': None}
    if os.path.exists(saved):
        with open(saved) as handle:
            output['results'] = json.load(handle)
    if 'CUSTOM STATS:' in proc.stdout:
        text = proc.stdout.split('CUSTOM STATS:', 1)[1].split('\n', 1)[1]
        output['stats'] = json.JSONDecoder().raw_decode(text.strip()[len('RUN:'):].strip())[0]
    return proc, output


def task_result(output, index=0):
    assert output['results'] is not None
    return output['results'][index]


def test_the_action_merges_gates_and_writes_nothing_in_check_mode(tmp_path):
    slices = tmp_path / 'slices'
    write_part(slices, {'web-1': audit(), 'web-2': drift()})
    out = tmp_path / 'out'
    task = {'name': 'merge', 'portwarden.compliance.port_report_merge': {
        'parts_dir': str(slices / 'parts'), 'report_dir': str(out), 'hosts': ['web-1', 'web-2', 'db-1'],
        'max_age': '2h'}, 'ignore_errors': True}
    for check in (True, False, True, False):
        _proc, output = playbook(tmp_path, [task], check=check)
        result = task_result(output)
        assert result['gate']['exit_code'] == 2 and result['failed'], result
        assert result['changed'] is False
        assert 'db-1 (no report: no part covers this host)' in result['msg']
        assert result['stats']['unknown'] == 1 and result['stats']['drift'] == 1
        assert result['stats']['worst_severity'] == 'high' and result['stats']['scope'] == 'fleet'
        assert result['check_mode'] is check
        if check:
            assert 'nothing written' in result['msg']
            assert not (out / FILE_NAMES['json']).exists() or result['run_id'] != json.loads(
                (out / FILE_NAMES['json']).read_text())['run_id']
        else:
            assert json.loads((out / FILE_NAMES['json']).read_text())['run_id'] == result['run_id']
    assert len(os.listdir(out / 'history')) == 1  # two real runs: the second kept the first


def test_the_action_refuses_a_bad_part_and_says_which(tmp_path):
    slices = tmp_path / 'slices'
    path = write_part(slices, {'web-1': audit()})
    with open(path, 'rb+') as handle:
        handle.truncate(100)
    _proc, output = playbook(tmp_path, [{'name': 'merge', 'portwarden.compliance.port_report_merge': {
        'parts': [str(slices)], 'report_dir': str(tmp_path / 'out'), 'hosts': ['web-1']}, 'ignore_errors': True}])
    result = task_result(output)
    assert result['failed'] and path in result['msg'] and 'truncated' in result['msg'], result
    assert not (tmp_path / 'out').exists()


def test_the_role_merge_entry_point_publishes_set_stats_even_when_the_gate_fails(tmp_path):
    report_dir = tmp_path / 'reports'
    write_part(report_dir, {'web-1': audit(), 'web-2': audit()})
    include = {'name': 'merge', 'ansible.builtin.include_role': {'name': 'portwarden.compliance.port_compliance',
                                                                 'tasks_from': 'merge'}}
    variables = {'port_compliance_report_dir': str(report_dir), 'port_compliance_merge_max_age': '1h'}
    proc, output = playbook(tmp_path, [include], extra_vars=variables)
    assert output['stats'] is not None, proc.stdout + proc.stderr
    stats = output['stats']['portwarden']
    # The play's inventory (web-1, web-2, db-1) is the expected fleet: db-1 has no part.
    assert stats['unknown'] == 1 and stats['compliant'] == 2 and stats['gate_exit_code'] == 2, stats
    assert stats['report_json_path'] == str(report_dir / FILE_NAMES['json'])
    assert proc.returncode != 0
    proc, output = playbook(tmp_path, [include], hosts=('web-1', 'web-2'), extra_vars=variables)
    assert proc.returncode == 0, proc.stdout
    assert output['stats']['portwarden']['gate_exit_code'] == 0
