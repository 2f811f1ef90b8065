"""Run the gather step as a real process inside a namespace, through the portwarden CLI."""

import json
import sys

CLI_MODULE = 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli'


def gather_in(namespace, backend, python=None, prefix=()):
    """Return (exit code, parsed JSON result) of ``portwarden gather`` run in ``namespace``."""
    argv = list(prefix) + [python or sys.executable, '-m', CLI_MODULE,
                           'gather', '--backend', backend, '--format', 'json']
    proc = namespace.run(argv)
    if proc.returncode not in (0, 1):
        raise AssertionError('gather --backend %s failed (%d): %s' % (backend, proc.returncode, proc.stderr))
    return proc.returncode, json.loads(proc.stdout)


def socket_keys(result, with_v6only=True, with_pids=True):
    """Set of comparable tuples for a gather result's sockets."""
    keys = set()
    for entry in result['sockets']:
        key = (entry['protocol'], entry['family'], entry['address'], entry['port'])
        if with_v6only:
            key += (entry['v6only'],)
        if with_pids:
            key += (tuple(sorted(proc['pid'] for proc in entry['processes'])),)
        keys.add(key)
    return keys


def beside_private_pid_namespace(coverage):
    """The errors of a ``namespaces=all`` gather run in a private PID namespace (as tests run it, to see only the
    namespaces they make) other than the one saying so, which must be there and make the coverage partial."""
    from ansible_collections.portwarden.compliance.plugins.module_utils.gather_sockets import PRIVATE_PID_NAMESPACE_ERROR

    assert PRIVATE_PID_NAMESPACE_ERROR in coverage['errors'], coverage['errors']
    assert coverage['complete'] is False
    return [error for error in coverage['errors'] if error != PRIVATE_PID_NAMESPACE_ERROR]
