"""A real filesystem of a given size (or read-only) in a private mount namespace, seen from the test through
``/proc/PID/root``: the mount never appears in the test machine's own mount table and vanishes with its holder.

    with private_tmpfs(512) as fs:
        fs.path          # where the tmpfs is, as this process reaches it (/proc/PID/root/...)
        fs.wrap          # ['nsenter', '-t', PID, '-m']: run a command inside the namespace
        fs.fill(leave)   # fill it until only ``leave`` bytes are free
        fs.remount('ro')
"""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid


def unsupported_reason():
    if os.geteuid() != 0:
        return 'needs root (a mount namespace and a tmpfs)'
    for tool in ('unshare', 'nsenter', 'mount'):
        if shutil.which(tool) is None:
            return 'needs %s' % tool
    return None


class PrivateFs:
    def __init__(self, pid, inside):
        self.pid = pid
        self.inside = inside
        self.path = '/proc/%d/root%s' % (pid, inside)
        self.wrap = ['nsenter', '-t', str(pid), '-m']

    def run(self, *argv):
        return subprocess.run(self.wrap + list(argv), capture_output=True, text=True, check=True)

    def remount(self, options):
        self.run('mount', '-o', 'remount,%s' % options, self.inside)

    def free(self):
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def fill(self, leave=0):
        """Write a filler file until at most ``leave`` bytes (rounded to pages) are free."""
        filler = os.path.join(self.path, '.filler-%s' % uuid.uuid4().hex)
        with open(filler, 'wb') as handle:
            while self.free() > leave:
                chunk = min(self.free() - leave, 1 << 20)
                try:
                    handle.write(b'\0' * max(chunk, 1))
                    handle.flush()
                except OSError:
                    break
        return filler


@contextlib.contextmanager
def private_tmpfs(size_kib, mode='0755'):
    """A tmpfs of ``size_kib`` KiB mounted in a new, private mount namespace held by a sleeping process."""
    inside = tempfile.mkdtemp(prefix='pw-tmpfs-%s-' % uuid.uuid4().hex[:8])
    script = 'mount -t tmpfs -o size=%dk,mode=%s pwtest "$1" && echo ready && exec sleep 3600' % (size_kib, mode)
    holder = subprocess.Popen(['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', inside],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = holder.stdout.readline()
        if line.strip() != 'ready':
            raise RuntimeError('cannot mount a private tmpfs: %s' % holder.stderr.read())
        yield PrivateFs(holder.pid, inside)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
        holder.stderr.close()
        os.rmdir(inside)
