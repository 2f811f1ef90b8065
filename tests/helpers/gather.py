"""Run the gather step as a real process inside a namespace, through the portwarden CLI."""

import json
import os
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


def refused_here():
    """The pids whose fd directory root may list but whose fd links it may not read on this machine (a sandbox's
    init holding a capability the tests lack, say), [] when not root: a root gather here must name them as a gap of
    its owner search, and an unowned socket is then an error, not a kernel socket."""
    if os.geteuid() != 0:
        return []
    refused = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            fds = os.listdir('/proc/%s/fd' % name)
        except OSError:
            continue
        for fd in fds:
            try:
                os.readlink('/proc/%s/fd/%s' % (name, fd))
            except PermissionError:
                refused.append(int(name))
            except OSError:
                continue
            break
    return sorted(refused)


def refused_gaps(refused):
    """The owner-search gap a gather must give for the ``refused`` pids (refused_here), [] for none."""
    if not refused:
        return []
    return ['the fd links of %d process(es) could not be read (ptrace access refused: the gather lacks '
            'CAP_SYS_PTRACE or capabilities they hold, or an LSM denies it): pid %s'
            % (len(refused), ', '.join(str(pid) for pid in refused))]
