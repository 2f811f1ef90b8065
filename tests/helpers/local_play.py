"""Run one task of the collection with ``ansible-playbook -c local`` inside a network namespace.

The way ansible-pull runs it: no SSH, no connection port. The playbook is written per call (the task's
arguments as YAML), the task's registered result is written as JSON to a file and returned. The
namespace isolates the network (sockets, the nftables ruleset); the filesystem and PIDs are shared.

    result = local_task(ns, tmp_path, 'portwarden.compliance.port_remediate', {'policy': ...})
"""

import json
import os
import subprocess
import sys

import yaml

BIN = os.path.dirname(sys.executable)


def stand_in_systemctl(directory, units):
    """A directory holding a ``systemctl`` that runs tests/helpers/fake_systemctl.py, and its state and log
    paths; ``units`` maps unit names to ``{'active', 'enabled', 'masked'}``. Returns (bin dir, env)."""
    from tests.helpers import fake_systemctl

    bin_dir = os.path.join(str(directory), 'bin')
    os.makedirs(bin_dir, exist_ok=True)
    wrapper = os.path.join(bin_dir, 'systemctl')
    with open(wrapper, 'w') as handle:
        handle.write('#!/bin/sh\nexec %s %s "$@"\n' % (sys.executable, fake_systemctl.__file__))
    os.chmod(wrapper, 0o755)
    state = os.path.join(str(directory), 'systemd.state.json')
    with open(state, 'w') as handle:
        json.dump({'units': units}, handle)
    env = {'PATH': bin_dir + os.pathsep + os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin'),
           'PWTEST_SYSTEMCTL_STATE': state, 'PWTEST_SYSTEMCTL_LOG': os.path.join(str(directory), 'systemctl.log')}
    return bin_dir, env


def systemctl_calls(env):
    """Every argv the stand-in systemctl of ``env`` was called with, in order."""
    path = env['PWTEST_SYSTEMCTL_LOG']
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line)['argv'] for line in handle if line.strip()]


def local_task(namespace, workdir, module, args, check=False, diff=True, environment=None, timeout=300):
    """Run ``module`` with ``args`` on localhost over the local connection inside ``namespace``
    (a tests.helpers.netns.Namespace). Returns ``(registered result, ansible-playbook output)``."""
    workdir = str(workdir)
    out = os.path.join(workdir, 'result.json')
    if os.path.exists(out):
        os.remove(out)
    task = {'name': 'the task under test', module: args, 'register': 'pw_result', 'ignore_errors': True}
    if environment:
        task['environment'] = environment
    play = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': [
        task,
        {'name': 'keep the result', 'ansible.builtin.copy': {'content': '{{ pw_result | to_json }}', 'dest': out},
         'check_mode': False, 'diff': False},
    ]}]
    playbook = os.path.join(workdir, 'play.yml')
    with open(playbook, 'w') as handle:
        yaml.safe_dump(play, handle, sort_keys=False)
    env = dict(os.environ)
    for key in list(env):
        if key.startswith('ANSIBLE_') and key not in ('ANSIBLE_COLLECTIONS_PATH', 'ANSIBLE_COLLECTIONS_PATHS'):
            del env[key]
    env.update({'ANSIBLE_HOME': os.path.join(workdir, 'ansible-home'), 'ANSIBLE_NOCOLOR': '1',
                'ANSIBLE_LOCAL_TEMP': os.path.join(workdir, 'tmp'), 'ANSIBLE_REMOTE_TEMP': os.path.join(workdir, 'tmp')})
    argv = [os.path.join(BIN, 'ansible-playbook'), '-c', 'local', '-i', 'localhost,',
            '-e', 'ansible_python_interpreter=%s' % sys.executable, playbook]
    if check:
        argv.append('--check')
    if diff:
        argv.append('--diff')
    proc = subprocess.run(namespace.command(argv), capture_output=True, text=True, env=env, cwd=workdir,
                          timeout=timeout, check=False)
    output = proc.stdout + proc.stderr
    assert os.path.exists(out), output[-6000:]
    with open(out) as handle:
        return json.load(handle), output
