"""Attack: a gather that fails for a reason only its stderr tells (a broken interpreter on the host).

Ansible keeps what the module printed in ``module_stderr``, ``module_stdout`` and ``rc``; its ``msg`` then
only says the result could not be read ("Module result deserialization failed"). The audit's reason must
carry the cause, or the operator of an unknown host has nothing to go on. Real ``ansible`` runs against
localhost, with an interpreter that is a script failing the way a damaged Python does.
"""

import json
import os
import subprocess
import sys

ANSIBLE = os.path.join(os.path.dirname(sys.executable), 'ansible')
POLICY = {'policy_version': 1, 'name': 'baseline', 'rules': [
    {'id': 'iana-unassigned-closed', 'match': {'ports': 'iana:unassigned'}, 'expect': 'closed', 'severity': 'high'}]}
BROKEN = 'python3: error while loading shared libraries: libpython3.11.so.1.0: cannot open shared object file'


def audit(tmp_path, interpreter, **args):
    tree = tmp_path / 'tree'
    proc = subprocess.run(
        [ANSIBLE, 'localhost', '-i', 'localhost,', '-c', 'local', '-m', 'portwarden.compliance.port_audit',
         '-a', json.dumps(dict({'policy': POLICY}, **args)), '-e', 'ansible_python_interpreter=%s' % interpreter,
         '-t', str(tree)],
        capture_output=True, text=True, timeout=120, check=False, env=dict(os.environ, ANSIBLE_NOCOLOR='1'))
    assert (tree / 'localhost').exists(), proc.stdout + proc.stderr
    return json.loads((tree / 'localhost').read_text()), proc


def broken_interpreter(tmp_path, stderr, code=127, stdout=''):
    script = tmp_path / 'python3'
    script.write_text('#!/bin/sh\nprintf "%%s" %s\nprintf "%%s\\n" %s >&2\nexit %d\n'
                      % (json.dumps(stdout), json.dumps(stderr), code))
    script.chmod(0o755)
    return str(script)


def test_a_failed_gather_keeps_the_modules_stderr(tmp_path):
    result, _proc = audit(tmp_path, broken_interpreter(tmp_path, BROKEN))
    assert result['status'] == 'unknown' and result['findings'] == []
    [reason] = result['reasons']
    assert reason.startswith('gather failed: '), reason
    assert 'libpython3.11.so.1.0: cannot open shared object file' in reason, reason
    assert 'rc 127' in reason, reason


def test_a_failed_gather_keeps_stdout_when_stderr_is_empty(tmp_path):
    """A wrapper that prints its complaint on stdout (and no JSON): that is the cause."""
    result, _proc = audit(tmp_path, broken_interpreter(tmp_path, '', code=1, stdout='sandbox: python is not allowed here'))
    [reason] = result['reasons']
    assert 'sandbox: python is not allowed here' in reason and 'rc 1' in reason, reason


def test_a_failed_gather_with_a_huge_stderr_is_one_short_line(tmp_path):
    """Thousands of lines of stderr (a traceback loop) give one line of bounded length, ending with the last."""
    noise = '\n'.join('noise line %d' % index for index in range(5000)) + '\nthe last word'
    result, proc = audit(tmp_path, broken_interpreter(tmp_path, noise, code=3), fail_on='high')
    assert proc.returncode != 0  # gating: unknown fails closed
    [reason] = result['reasons']
    assert '\n' not in reason and len(reason) < 1200, len(reason)
    assert reason.startswith('gather failed: ') and reason.endswith('the last word)'), reason[-200:]
    assert result['gate']['failures']


def test_a_missing_interpreter_names_it(tmp_path):
    result, _proc = audit(tmp_path, str(tmp_path / 'no' / 'python3'))
    [reason] = result['reasons']
    assert "The module interpreter '%s' was not found" % (tmp_path / 'no' / 'python3') in reason, reason


# A gather module that returns what a hostile or broken host could: a result of the wrong shape.
FAKE_GATHER = '''#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(backend=dict(type='str'), protocols=dict(type='list', elements='str'),
                                              namespaces=dict(type='str'), nat=dict(type='str')), supports_check_mode=True)
    module.exit_json(changed=False, sockets='tcp 0.0.0.0:856', coverage={'complete': True, 'errors': [], 'sockets': 1})


if __name__ == '__main__':
    main()
'''


def collection_with_fake_gather(tmp_path):
    """A copy of this collection whose gather module returns a malformed result: ANSIBLE_COLLECTIONS_PATH points at it."""
    from tests.conftest import REPO

    root = tmp_path / 'collections'
    copy = root / 'ansible_collections' / 'portwarden' / 'compliance'
    copy.mkdir(parents=True)
    for name in ('meta', 'galaxy.yml', 'docs'):
        (copy / name).symlink_to(os.path.join(REPO, name))
    plugins = copy / 'plugins'
    plugins.mkdir()
    for name in os.listdir(os.path.join(REPO, 'plugins')):
        if name != 'modules':
            (plugins / name).symlink_to(os.path.join(REPO, 'plugins', name))
    (plugins / 'modules').mkdir()
    for name in os.listdir(os.path.join(REPO, 'plugins', 'modules')):
        if name.endswith('.py') and name != 'listening_sockets_info.py':
            (plugins / 'modules' / name).symlink_to(os.path.join(REPO, 'plugins', 'modules', name))
    (plugins / 'modules' / 'listening_sockets_info.py').write_text(FAKE_GATHER)
    return str(root)


def test_remediate_mode_on_a_malformed_gather_result_is_unknown_not_a_traceback(tmp_path):
    """port_remediate hands the gather result to the remediation planner: a malformed one must not reach it."""
    tree = tmp_path / 'tree'
    proc = subprocess.run(
        [ANSIBLE, 'localhost', '-i', 'localhost,', '-c', 'local', '--check', '-m', 'portwarden.compliance.port_remediate',
         '-a', json.dumps({'policy': POLICY, 'mode': 'remediate'}), '-e', 'ansible_python_interpreter=%s' % sys.executable,
         '-t', str(tree)],
        capture_output=True, text=True, timeout=120, check=False,
        env=dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_COLLECTIONS_PATH=collection_with_fake_gather(tmp_path)))
    result = json.loads((tree / 'localhost').read_text())
    assert 'exception' not in result and 'Traceback' not in proc.stdout + proc.stderr, result.get('msg')
    assert result['status'] == 'unknown', result.get('msg')
    assert result['reasons'] == ["malformed gather result: sockets: expected a list of sockets, got 'tcp 0.0.0.0:856'"]
    assert result['remediation']['actions'] == []
