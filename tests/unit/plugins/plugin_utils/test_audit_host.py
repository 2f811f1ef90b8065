"""Unit tests: what the audit actions build once in ansible-playbook's main process, for every forked worker."""

import subprocess
import sys

# A fresh interpreter: nothing else in it has built the caches yet.
CHECK = '''
import _strptime
from ansible_collections.portwarden.compliance.plugins.module_utils import policy_ports, registry
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import PROTOCOLS
assert not registry._names and not policy_ports._NAMED_CACHE

import ansible_collections.portwarden.compliance.plugins.action.{action}  # what the strategy does before forking

assert set(PROTOCOLS) <= set(registry._names), registry._names.keys()
assert set((name, protocol) for name in policy_ports.IANA_SETS for protocol in PROTOCOLS) <= set(policy_ports._NAMED_CACHE)
assert '%Y-%m-%d' in _strptime._regex_cache
'''


def test_importing_an_audit_action_builds_the_shared_caches():
    for action in ('port_remediate', 'port_audit'):
        proc = subprocess.run([sys.executable, '-c', CHECK.format(action=action)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
