"""A listener in a network namespace no process is in, then ``namespaces=all`` gathered; prints the JSON result.

Run as root under ``unshare -m -p -f --mount-proc --propagation private`` (see tests/adversarial/
test_gather_namespaces_unentered.py): the private mount namespace gets its own empty /run/netns and the
private PID namespace lists only this script's processes, so the gather sees nothing of the machine's
other namespaces. ``python hidden_netns.py HOW`` where HOW says what keeps the namespace alive once the
holder has moved back to its own namespace (setns), besides the listening socket the holder keeps:

- ``run-netns``: a bind mount at /run/netns/NAME (what ``ip netns add`` makes);
- ``bind-elsewhere``: a bind mount of the nsfs inode on a file outside /run/netns;
- ``fd``: an fd of the holder open on the namespace (an nsfs handle), no mount;
- ``socket``: nothing but the socket.

Prints one JSON object: {"netns": INODE, "holder": PID, "result": <gather result>}.
"""

import ctypes
import json
import os
import socket
import subprocess
import sys

CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)


def _check(value):
    if value != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def hold(how, ready_w, stop_r):
    own = os.open('/proc/self/ns/net', os.O_RDONLY)
    _check(LIBC.unshare(CLONE_NEWNET))
    inode = os.stat('/proc/thread-self/ns/net').st_ino
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(('0.0.0.0', 856))
    listener.listen(8)
    handle = None
    if how == 'run-netns':
        target = '/run/netns/pwt-hidden'
    elif how == 'bind-elsewhere':
        os.makedirs('/var/tmp/pwt-hidden-mnt', exist_ok=True)
        subprocess.run(['mount', '-t', 'tmpfs', 'pwt', '/var/tmp/pwt-hidden-mnt'], check=True)
        target = '/var/tmp/pwt-hidden-mnt/netns'
    else:
        target = None
    if target is not None:
        open(target, 'w').close()
        subprocess.run(['mount', '--bind', '/proc/%d/ns/net' % os.getpid(), target], check=True)
    if how == 'fd':
        handle = os.open('/proc/self/ns/net', os.O_RDONLY)  # held open: it keeps the namespace
    _check(LIBC.setns(own, CLONE_NEWNET))
    os.close(own)
    os.write(ready_w, json.dumps({'netns': inode, 'holder': os.getpid()}).encode() + b'\n')
    os.read(stop_r, 1)
    listener.close()
    if handle is not None:
        os.close(handle)
    os._exit(0)


def main():
    how = sys.argv[1]
    repo = sys.argv[2]
    # None of the machine's ip netns mounts: unmounted here (this mount namespace is private), not covered,
    # since a covered nsfs mount is a namespace known to exist that cannot be opened.
    subprocess.run(['umount', '-R', '/run/netns'], check=False)
    subprocess.run(['mount', '-t', 'tmpfs', 'pwt-netns', '/run/netns'], check=True)
    ready_r, ready_w = os.pipe()
    stop_r, stop_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            hold(how, ready_w, stop_r)
        finally:
            os._exit(1)
    os.close(ready_w)
    line = os.fdopen(ready_r).readline()
    if not line:
        raise SystemExit('the holder failed')
    held = json.loads(line)
    sys.path.insert(0, repo)
    from ansible_collections.portwarden.compliance.plugins.module_utils.gather_sockets import gather_listening_sockets
    try:
        result = gather_listening_sockets(namespaces='all')
    finally:
        os.write(stop_w, b'x')
        os.waitpid(pid, 0)
    print(json.dumps(dict(held, result=result)))


if __name__ == '__main__':
    main()
