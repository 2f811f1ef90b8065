"""Real network namespaces for tests: create one, open listeners in it, run commands in it."""

import json
import os
import subprocess
import sys
import uuid

HELPERS = os.path.dirname(os.path.abspath(__file__))
LISTENERS = os.path.join(HELPERS, 'listeners.py')


def have_netns():
    return os.geteuid() == 0 and subprocess.run(['ip', 'netns', 'list'], capture_output=True).returncode == 0


def kill_namespace(name):
    """Kill every process in the namespace (TERM, then KILL), then delete it. Safe if absent."""
    pids = subprocess.run(['ip', 'netns', 'pids', name], capture_output=True, text=True).stdout.split()
    for sig in ('TERM', 'KILL'):
        for pid in pids:
            subprocess.run(['kill', '-' + sig, pid], capture_output=True)
    subprocess.run(['ip', 'netns', 'del', name], capture_output=True)


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
        return subprocess.run(self.command(argv), **kwargs)

    def listen(self, spec):
        """Open the sockets of ``spec`` (see listeners.py) in this namespace and hold them."""
        proc = subprocess.Popen(self.command([sys.executable, LISTENERS, json.dumps(spec)]),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        if not line:
            proc.wait()
            raise RuntimeError('listeners.py failed for %r (exit %s)' % (spec, proc.returncode))
        holder = Listeners(proc, json.loads(line))
        self.holders.append(holder)
        return holder
