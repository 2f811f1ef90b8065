"""A stand-in ``systemctl`` for tests on machines without systemd as PID 1 (a fixture, not a systemd).

The test writes a wrapper named ``systemctl`` into a directory it puts first on PATH::

    #!/bin/sh
    exec /path/to/python /path/to/fake_systemctl.py "$@"

Environment:

- ``PWTEST_SYSTEMCTL_STATE``: JSON file with the units this "systemd" knows:
  ``{"units": {"NAME.service": {"active": true, "enabled": true, "masked": false}}}``.
  Read-only commands never write it.
- ``PWTEST_SYSTEMCTL_LOG``: every invocation is appended to it as one JSON line ``{"argv": [...]}``
  (the arguments after ``systemctl``), before it is answered.
- ``PWTEST_SYSTEMCTL_CGROUP_ROOT`` (optional): the cgroup hierarchy ``stop`` looks in; by default
  /sys/fs/cgroup/unified, /sys/fs/cgroup and /sys/fs/cgroup/systemd.

Commands, answered the way systemd 252 answers what ``ansible.builtin.systemd_service`` asks:

- ``show UNIT``: key=value lines (Id, Names, LoadState, ActiveState, SubState, UnitFileState, ...);
  an unknown unit is ``LoadState=not-found``, a masked one ``LoadState=masked``.
- ``is-active UNIT``: ``active`` (rc 0) or ``inactive`` (rc 3).
- ``is-enabled UNIT``: ``enabled`` (rc 0), ``disabled`` or ``masked`` (rc 1); unknown: rc 1, message on stderr.
- ``list-unit-files [PATTERN...]``: the table of matching units; rc 1 when none matches.
- ``stop UNIT``: marks it inactive and, like systemd, really ends the processes of its cgroup
  (``<cgroup root>/<unit>/cgroup.procs`` or ``<cgroup root>/system.slice/<unit>/cgroup.procs``):
  SIGTERM, then SIGKILL after 5 s. Unknown unit: rc 5. Under ``ip netns exec`` (the test fleet's
  hosts) /sys is remounted for the namespace and /sys/fs/cgroup is empty: there the members come
  from the kernel's other view of the same thing, the cgroup line of every /proc/PID/cgroup.
- ``disable UNIT``, ``mask UNIT``: update the state.
- ``daemon-reload``: nothing to do.

Options (``-l``, ``--no-block``, ...) are accepted and ignored. Anything else exits 1 with a message.
"""

import fnmatch
import json
import os
import signal
import sys
import time

CGROUP_ROOTS = ('/sys/fs/cgroup/unified', '/sys/fs/cgroup', '/sys/fs/cgroup/systemd')
STOP_TIMEOUT = 5.0


def _log(argv):
    path = os.environ.get('PWTEST_SYSTEMCTL_LOG')
    if not path:
        return
    with open(path, 'a') as handle:
        handle.write(json.dumps({'argv': argv}) + '\n')


def _state_path():
    path = os.environ.get('PWTEST_SYSTEMCTL_STATE')
    if not path:
        sys.stderr.write('fake systemctl: PWTEST_SYSTEMCTL_STATE is not set\n')
        sys.exit(1)
    return path


def load_state():
    try:
        with open(_state_path()) as handle:
            state = json.load(handle)
    except FileNotFoundError:
        state = {}
    state.setdefault('units', {})
    return state


def save_state(state):
    path = _state_path()
    temporary = '%s.%d.tmp' % (path, os.getpid())
    with open(temporary, 'w') as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
    os.replace(temporary, path)


def _unit_file_state(unit):
    if unit.get('masked'):
        return 'masked'
    return 'enabled' if unit.get('enabled') else 'disabled'


def show(name, unit):
    if unit is None:
        lines = ['Id=%s' % name, 'Names=%s' % name, 'LoadState=not-found', 'ActiveState=inactive',
                 'SubState=dead', 'UnitFileState=', 'MainPID=0',
                 'LoadError=org.freedesktop.systemd1.NoSuchUnit "Unit %s not found."' % name]
    else:
        active = bool(unit.get('active'))
        pids = unit_pids(name) if active else []
        lines = ['Id=%s' % name, 'Names=%s' % name, 'Description=%s (fake systemctl)' % name,
                 'LoadState=%s' % ('masked' if unit.get('masked') else 'loaded'),
                 'ActiveState=%s' % ('active' if active else 'inactive'),
                 'SubState=%s' % ('running' if active else 'dead'),
                 'UnitFileState=%s' % _unit_file_state(unit),
                 'UnitFilePreset=disabled',
                 'MainPID=%d' % (pids[0] if pids else 0),
                 'ControlGroup=%s' % ('/' + name if active else ''),
                 'FragmentPath=%s' % ('/dev/null' if unit.get('masked') else '/etc/systemd/system/' + name)]
    print('\n'.join(lines))
    return 0


def _cgroup_dirs(name):
    roots = [os.environ['PWTEST_SYSTEMCTL_CGROUP_ROOT']] if os.environ.get('PWTEST_SYSTEMCTL_CGROUP_ROOT') else CGROUP_ROOTS
    for root in roots:
        for relative in (name, os.path.join('system.slice', name)):
            path = os.path.join(root, relative)
            if os.path.isfile(os.path.join(path, 'cgroup.procs')):
                yield path


def _proc_cgroup_members(name):
    """Pids whose /proc/PID/cgroup puts them in a cgroup named ``name`` (v2 line, else v1 name=systemd)."""
    pids = set()
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/cgroup' % entry) as handle:
                text = handle.read()
        except OSError:  # exited meanwhile
            continue
        paths = {}
        for line in text.splitlines():
            parts = line.split(':', 2)
            if len(parts) == 3:
                paths[(parts[0], parts[1])] = parts[2]
        path = paths.get(('0', '')) or ''
        if not path.strip('/'):
            path = next((value for (_hierarchy, controllers), value in paths.items() if controllers == 'name=systemd'), '')
        if path.rstrip('/').rsplit('/', 1)[-1] == name:
            pids.add(int(entry))
    return pids


def unit_pids(name):
    """The pids in the unit's cgroup, without zombies."""
    pids = set()
    dirs = list(_cgroup_dirs(name))
    for path in dirs:
        with open(os.path.join(path, 'cgroup.procs')) as handle:
            pids.update(int(line) for line in handle if line.strip())
    if not dirs:  # the cgroup hierarchy is not mounted here (ip netns exec remounts /sys)
        pids = _proc_cgroup_members(name)
    return sorted(pid for pid in pids if _alive(pid))


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rindex(')') + 2:].split()[0] not in ('Z', 'X')


def _signal(pids, signum):
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


def end_processes(name):
    """SIGTERM to every process of the unit, SIGKILL to what is left after STOP_TIMEOUT (systemd's KillMode=control-group)."""
    pids = unit_pids(name)
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        pids = [pid for pid in pids if _alive(pid)]
        if not pids:
            return
        time.sleep(0.05)
    _signal(pids, signal.SIGKILL)


def main(argv):
    _log(argv)
    words = [word for word in argv if not word.startswith('-')]
    if not words:
        sys.stderr.write('fake systemctl: no command given (argv %r)\n' % (argv,))
        return 1
    command, names = words[0], words[1:]
    if command == 'daemon-reload':
        return 0
    state = load_state()
    units = state['units']
    if command == 'list-unit-files':
        patterns = names or ['*']
        found = sorted(name for name in units if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns))
        if not found:
            print('0 unit files listed.')
            return 1
        width = max(9, *(len(name) for name in found))
        print('%s STATE    VENDOR PRESET' % 'UNIT FILE'.ljust(width))
        for name in found:
            print('%s %s disabled' % (name.ljust(width), _unit_file_state(units[name]).ljust(8)))
        print('\n%d unit files listed.' % len(found))
        return 0
    if command not in ('show', 'is-active', 'is-enabled', 'stop', 'disable', 'mask'):
        sys.stderr.write('fake systemctl: unknown command %r (argv %r)\n' % (command, argv))
        return 1
    if len(names) != 1:
        sys.stderr.write('fake systemctl: %s takes exactly one unit here (argv %r)\n' % (command, argv))
        return 1
    name = names[0]
    unit = units.get(name)
    if command == 'show':
        return show(name, unit)
    if command == 'is-active':
        active = bool(unit and unit.get('active'))
        print('active' if active else 'inactive')
        return 0 if active else 3
    if command == 'is-enabled':
        if unit is None:
            sys.stderr.write('Failed to get unit file state for %s: No such file or directory\n' % name)
            return 1
        answer = _unit_file_state(unit)
        print(answer)
        return 0 if answer == 'enabled' else 1
    if unit is None:
        sys.stderr.write('Failed to %s %s: Unit %s not loaded.\n' % (command, name, name))
        return 5
    if command == 'stop':
        unit['active'] = False
        save_state(state)
        end_processes(name)
    elif command == 'disable':
        if unit.get('enabled'):
            sys.stderr.write('Removed "/etc/systemd/system/multi-user.target.wants/%s".\n' % name)
        unit['enabled'] = False
        save_state(state)
    else:  # mask
        unit['masked'] = True
        save_state(state)
        sys.stderr.write('Created symlink /etc/systemd/system/%s \u2192 /dev/null.\n' % name)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
