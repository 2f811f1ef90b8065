"""Attack: two remediations at once on one host (two plays, a cron'd ansible-pull and an operator's run).

port_block reads the table, computes the new one and writes it whole: two runs that both read before either
writes each write their own table, and the first one's block is silently lost (while its run reported it applied).
The window is made wide and certain with a real nft behind a wrapper that waits 1 s before applying a script
(``nft -f``); two real port_block runs start together in one network namespace. Both blocks must be in the table.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers.netns import Namespace, have_netns
from tests.helpers.nft import uncounted

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not have_netns(), reason='needs root and ip netns'),
    pytest.mark.skipif(shutil.which('nft') is None, reason='needs nft (nftables)'),
]
MODULE = 'ansible_collections.portwarden.compliance.plugins.modules.port_block'


def slow_nft(directory):
    real = shutil.which('nft')
    path = os.path.join(str(directory), 'nft')
    with open(path, 'w') as handle:
        handle.write('#!/bin/sh\n[ "$1" = "-f" ] && sleep 1\nexec %s "$@"\n' % real)
    os.chmod(path, 0o755)
    return str(directory)


def start(ns, args, bin_dir):
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get('PATH', ''))
    env.pop('SSH_CONNECTION', None)
    proc = subprocess.Popen(ns.command([sys.executable, '-m', MODULE]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    proc.stdin.write(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    proc.stdin.close()
    return proc


def finish(proc):
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert 'Traceback' not in out + err, out + err
    return json.loads(out)


def test_two_port_blocks_at_once_keep_both_blocks(tmp_path):
    bin_dir = slow_nft(tmp_path)
    with Namespace() as ns:
        first = start(ns, {'blocks': [{'protocol': 'tcp', 'port': 856, 'rule': 'first'}]}, bin_dir)
        second = start(ns, {'blocks': [{'protocol': 'tcp', 'port': 857, 'rule': 'second'}]}, bin_dir)
        results = [finish(first), finish(second)]
        for result in results:
            assert not result.get('failed'), result
        table = uncounted(ns.run(['nft', 'list', 'table', 'inet', 'portwarden']).stdout)
        assert '856 comment "rule=first"' in table and '857 comment "rule=second"' in table, table
        assert [block['port'] for block in results[1]['blocks']] == [856, 857] or \
            [block['port'] for block in results[0]['blocks']] == [856, 857]
