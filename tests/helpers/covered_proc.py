"""A careless mount over a process's /proc entry, then the gather; prints the JSON result.

Run as root under ``unshare -m --propagation private`` in a fresh network namespace (see
tests/adversarial/test_gather_round2_covered_proc.py): the mounts end with the private mount namespace.
``python covered_proc.py HOW REPO``:

- ``hide``: an empty directory bind-mounted over /proc/PID of the holder of TCP 856, whose fds the walk then
  cannot list (it took the process for one that had exited);
- ``fake-owner``: the holder hidden so, and a directory made to look like an ``sshd`` bind-mounted over the
  /proc entry of a bystander (a ``sleep``): ``fd/3`` a symlink reading ``socket:[INODE]`` of 856, ``comm``
  ``sshd``, ``exe`` a symlink to /usr/sbin/sshd, ``stat`` and ``status`` copied from the bystander.

Prints one JSON object: {"holder": PID, "bystander": PID, "inode": INODE, "result": <gather result>}.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HELPERS = os.path.dirname(os.path.abspath(__file__))


def cover(pid, directory):
    subprocess.run(['mount', '--bind', directory, '/proc/%d' % pid], check=True)


def main():
    how, repo = sys.argv[1], sys.argv[2]
    spec = json.dumps([{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856}])
    holder = subprocess.Popen([sys.executable, os.path.join(HELPERS, 'listeners.py'), spec],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = json.loads(holder.stdout.readline())
    bystander = subprocess.Popen(['sleep', '300'])
    work = tempfile.mkdtemp(prefix='pwt-covered-')
    try:
        inode = ready['sockets'][0]['inode']
        os.makedirs(os.path.join(work, 'hidden', 'fd'))
        cover(holder.pid, os.path.join(work, 'hidden'))
        if how == 'fake-owner':
            fake = os.path.join(work, 'fake')
            os.makedirs(os.path.join(fake, 'fd'))
            for name in ('stat', 'status', 'cgroup'):
                with open('/proc/%d/%s' % (bystander.pid, name)) as source, open(os.path.join(fake, name), 'w') as copy:
                    copy.write(source.read())
            with open(os.path.join(fake, 'comm'), 'w') as handle:
                handle.write('sshd\n')
            os.symlink('socket:[%d]' % inode, os.path.join(fake, 'fd', '3'))
            os.symlink('/usr/sbin/sshd', os.path.join(fake, 'exe'))
            cover(bystander.pid, fake)
        sys.path.insert(0, repo)
        from ansible_collections.portwarden.compliance.plugins.module_utils.gather_sockets import gather_listening_sockets
        result = gather_listening_sockets()
    finally:
        for pid in (holder.pid, bystander.pid):
            subprocess.run(['umount', '/proc/%d' % pid], check=False, capture_output=True)
        holder.stdin.close()
        holder.wait()
        bystander.kill()
        bystander.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({'holder': holder.pid, 'bystander': bystander.pid, 'inode': inode, 'result': result}))


if __name__ == '__main__':
    main()
