"""Attacks on gather_exit.exit_gathered, which lets exit_json skip ansible-core's no_log copy: a no_log value must
still be scrubbed from everything a module returns, and ansible-core's own remove_values must be back after the exit.

Each case runs a real AnsibleModule in its own interpreter from an args file, as Ansible runs a module."""

import json
import subprocess
import sys

SECRET = 'hunter2-s3cr3t'

MODULE = '''
import sys
from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.portwarden.compliance.plugins.module_utils.gather_exit import exit_gathered
before = basic.remove_values
module = AnsibleModule(argument_spec={'token': {'type': 'str', 'no_log': True}, 'label': {'type': 'str'}})
token = module.params['token'] or 'none'
try:
    exit_gathered(module, {'sockets': [{'port': 856, 'processes': [{'name': 'svc-' + token, 'exe': '/opt/' + token}]}],
                           'note': token, 'coverage': {'errors': ['bad %s' % token], 'complete': True}})
except SystemExit as exc:
    sys.stderr.write('exit=%s restored=%s\\n' % (exc.code, basic.remove_values is before))
'''


def _run(tmp_path, args):
    args_file = tmp_path / 'args.json'
    args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    proc = subprocess.run([sys.executable, '-c', MODULE, str(args_file)], capture_output=True, text=True, check=False)
    return proc, json.loads(proc.stdout)


def test_a_no_log_value_is_still_scrubbed_from_every_part_of_the_result(tmp_path):
    proc, result = _run(tmp_path, {'token': SECRET, 'label': 'x'})
    assert 'exit=0 restored=True' in proc.stderr, proc.stderr
    assert SECRET not in proc.stdout  # not in the sockets, the note, the errors or the invocation
    assert result['note'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'  # the whole value: named, not starred
    assert result['sockets'][0]['processes'][0]['name'] == 'svc-********'
    assert result['coverage'] == {'errors': ['bad ********'], 'complete': True}  # the bool kept as it was
    # ansible-core 2.21 returns no invocation; where there is one, the token is hidden in it too.
    assert result.get('invocation', {}).get('module_args', {}).get('token') in (None, 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER')


def test_without_a_no_log_value_the_result_is_returned_whole_and_remove_values_is_restored(tmp_path):
    proc, result = _run(tmp_path, {'label': 'x'})
    assert 'exit=0 restored=True' in proc.stderr, proc.stderr
    assert result['note'] == 'none' and result['sockets'][0]['processes'][0] == {'name': 'svc-none', 'exe': '/opt/none'}
    assert result['coverage'] == {'errors': ['bad none'], 'complete': True} and result['changed'] is False
