"""The gather module hands its result to Ansible without ansible-core's no_log copy (gather_exit.exit_gathered): the
module's output is, byte for byte, what ``exit_json`` writes, on a real gather with sockets, odd process names and
published ports, in a real network namespace."""

import json
import sys

import pytest

from tests.helpers import nat
from tests.helpers.netns import Namespace, have_netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]

# The module itself, run as Ansible runs it (an args file). The gather is made once (the count of processes scanned
# moves between two gathers on a busy machine) and each run exits with it: ``exit_json`` swaps exit_gathered for the
# plain exit.
RUN_MODULE = '''
import json, sys
from ansible_collections.portwarden.compliance.plugins.modules import listening_sockets_info as module
gathered, how = sys.argv.pop(3), sys.argv.pop(2)
with open(gathered) as handle:
    result = json.load(handle)
module.gather_listening_sockets = lambda **kwargs: result
if how == 'exit_json':
    module.exit_gathered = lambda ansible_module, result: ansible_module.exit_json(changed=False, **result)
module.main()
'''
GATHER = '''
import json, sys
from ansible_collections.portwarden.compliance.plugins.module_utils.gather_sockets import gather_listening_sockets
args = json.loads(sys.argv[1])
with open(sys.argv[2], 'w') as handle:
    json.dump(gather_listening_sockets(protocols=args.get('protocols', ['tcp', 'udp']), nat=args['nat']), handle)
'''


def _run(host, args_file, how, gathered):
    proc = host.run([sys.executable, '-c', RUN_MODULE, args_file, how, gathered])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize('args', [{'nat': 'auto'}, {'nat': 'off', 'protocols': ['tcp']}])
def test_the_module_writes_what_exit_json_writes(tmp_path, args):
    args_file = tmp_path / 'args.json'
    args_file.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    with Namespace() as host:
        # Names and paths exit_json's copy would walk: quotes, a backslash, non-ASCII, a control character.
        host.listen({'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856},
                                 {'protocol': 'udp', 'address': '::', 'port': 857, 'v6only': False},
                                 {'protocol': 'tcp', 'address': '127.0.0.1', 'port': 8080}],
                     'name': 'w\u00e9b"\\\x01x', 'fork': 2})
        nat.apply(host, nat.docker_rules(858, '172.17.0.2:80'))
        gathered = str(tmp_path / 'gathered.json')
        made = host.run([sys.executable, '-c', GATHER, json.dumps(args), gathered])
        assert made.returncode == 0, made.stderr
        fast = _run(host, str(args_file), 'exit_gathered', gathered)
        plain = _run(host, str(args_file), 'exit_json', gathered)
    assert fast == plain
    result = json.loads(fast)
    assert result['changed'] is False
    assert {entry['port'] for entry in result['sockets']} >= ({856, 8080} if args['nat'] == 'off' else {856, 857, 8080})
    names = {proc['name'] for entry in result['sockets'] if entry['port'] == 856 for proc in entry['processes']}
    assert names == {'w\u00e9b"\\\x01x'}, names
    assert [item['port'] for item in result['exposures']] == ([858] if args['nat'] == 'auto' else [])
