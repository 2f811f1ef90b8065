"""Real network namespaces for tests: create one, open listeners in it, run commands in it."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

HELPERS = os.path.dirname(os.path.abspath(__file__))
LISTENERS = os.path.join(HELPERS, 'listeners.py')


def have_netns():
    if os.geteuid() != 0:
        return False
    return subprocess.run(['ip', 'netns', 'list'], capture_output=True, check=False).returncode == 0


def writable_cgroup2_root():
    """The cgroup v2 hierarchy (hybrid hosts mount it at /sys/fs/cgroup/unified) if it is writable, else None."""
    for root in ('/sys/fs/cgroup/unified', '/sys/fs/cgroup'):
        if os.path.exists(os.path.join(root, 'cgroup.controllers')) and os.access(root, os.W_OK):
            return root
    return None


def namespace_pids(name):
    """Pids of the processes in namespace ``name`` (none when it does not exist)."""
    listed = subprocess.run(['ip', 'netns', 'pids', name], capture_output=True, text=True, check=False)
    return [int(pid) for pid in listed.stdout.split()] if listed.returncode == 0 else []


def _wait_gone(name, pids, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = set(namespace_pids(name)) & set(pids)
        if not alive:
            return
        time.sleep(0.05)


def kill_namespace(name):
    """Kill every process in namespace ``name`` (TERM, then KILL), then delete it; None or a problem.

    It waits for the processes to go and lists them again, so an sshd that forked a session child
    while being killed cannot keep the namespace alive after its delete. Safe when it does not exist.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGKILL):
        pids = namespace_pids(name)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        _wait_gone(name, pids, 2.0)
    left = namespace_pids(name)
    subprocess.run(['ip', 'netns', 'del', name], capture_output=True, check=False)
    if left:
        return 'namespace %s deleted with processes still in it: %s' % (name, left)
    return None


class Listeners(object):
    """A running listeners.py process; ``pids`` and ``sockets`` come from its ready line."""

    def __init__(self, proc, report):
        self.proc = proc
        self.pids = report['pids']
        self.sockets = report['sockets']

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Namespace(object):
    """A fresh network namespace with loopback up; ``with Namespace() as ns: ...``."""

    def __init__(self, name=None):
        self.name = name or 'pwt-%s' % uuid.uuid4().hex[:8]
        self.holders = []

    def __enter__(self):
        kill_namespace(self.name)
        subprocess.run(['ip', 'netns', 'add', self.name], check=True)
        self.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
        return self

    def __exit__(self, *exc):
        for holder in self.holders:
            holder.stop()
        kill_namespace(self.name)

    def command(self, argv):
        return ['ip', 'netns', 'exec', self.name] + list(argv)

    def run(self, argv, **kwargs):
        kwargs.setdefault('capture_output', True)
        kwargs.setdefault('text', True)
        return subprocess.run(self.command(argv), check=kwargs.pop('check', False), **kwargs)

    def listen(self, spec, python=None):
        """Open the sockets of ``spec`` (see listeners.py) in this namespace and hold them; ``python`` runs the holder
        from another interpreter binary (a copy elsewhere: the same process with another executable path)."""
        proc = subprocess.Popen(self.command([python or sys.executable, LISTENERS, json.dumps(spec)]),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        if not line:
            proc.wait()
            raise RuntimeError('listeners.py failed for %r (exit %s)' % (spec, proc.returncode))
        holder = Listeners(proc, json.loads(line))
        self.holders.append(holder)
        return holder
