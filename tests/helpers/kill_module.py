"""Run the real port_kill module as Ansible would (a process given its arguments file), without a controller."""

import json
import subprocess
import sys

MODULE = 'ansible_collections.portwarden.compliance.plugins.modules.port_kill'


def run_kill(tmp_path, processes, check_mode=False, timeout=3):
    """The module's result for ``processes``; a traceback anywhere fails the test."""
    path = tmp_path / 'args.json'
    path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': {'processes': processes, 'timeout': timeout,
                                                        '_ansible_check_mode': check_mode, '_ansible_diff': True}}))
    proc = subprocess.run([sys.executable, '-m', MODULE, str(path)], capture_output=True, text=True, check=False, timeout=60)
    assert 'Traceback' not in proc.stderr + proc.stdout, proc.stderr + proc.stdout
    return json.loads(proc.stdout)
