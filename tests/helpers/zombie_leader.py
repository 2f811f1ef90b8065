"""A listener held by a process whose main thread has exited: its leader is a zombie, a worker thread lives on.

``python zombie_leader.py SPEC`` with SPEC a JSON object: ``{"port": 856, "protocol": "tcp", "netns": false,
"name": "sshd"}``. The main thread sets the process name (comm) to ``name``, starts a worker thread and ends
with the raw exit(2) syscall (not exit_group): only that thread ends. The worker (``netns``: after unsharing a
network namespace of its own, loopback up) opens the listener, waits until the leader is a zombie, prints one
JSON line ``{"pid", "tid", "inode", "netns", "start_time"}`` and holds the socket until stdin reaches end of file
(or SIGTERM, whose default action ends the whole thread group).

A zombie leader's ``/proc/PID/fd`` lists nothing and its ``ns/net``, ``exe`` links do not resolve, yet the
process is alive: ``/proc/PID/task/TID`` (and ``/proc/TID``) of the worker show its fd table, its namespace, its
executable. ``ss -p`` shows such a socket without a process.

``python zombie_leader.py gather NAMESPACES REPO SPEC`` starts such a holder, gathers (``namespaces``: host or all)
with the collection under REPO while it holds the socket, and prints ``{"holder": <its line>, "result": ...}``.
For ``all``, run it as root under ``unshare -m -p -f --mount-proc --propagation private`` (as hidden_netns.py), so
the gather sees only this holder's namespaces; /run/netns is emptied in that private mount namespace.
"""

import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
import time

CLONE_NEWNET = 0x40000000
SYS_EXIT = {'x86_64': 60, 'aarch64': 93}
LIBC = ctypes.CDLL(None, use_errno=True)  # CDLL calls release the GIL: the exiting thread does not hold it


def _leader_state(pid):
    with open('/proc/%d/stat' % pid) as handle:
        text = handle.read()
    return text[text.rindex(')') + 2:].split()[0]


def _start_time(pid):
    with open('/proc/%d/stat' % pid) as handle:
        text = handle.read()
    return int(text[text.rindex(')') + 2:].split()[19])


def worker(spec, pid):
    if spec.get('netns'):
        if LIBC.unshare(CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)  # the child inherits this thread's namespace
    kind = socket.SOCK_STREAM if spec.get('protocol', 'tcp') == 'tcp' else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(('0.0.0.0', spec.get('port', 856)))
    if kind == socket.SOCK_STREAM:
        sock.listen(8)
    deadline = time.monotonic() + 10
    while _leader_state(pid) != 'Z':
        if time.monotonic() > deadline:
            os._exit(3)
        time.sleep(0.01)
    ready = {'pid': pid, 'tid': threading.get_native_id(), 'inode': os.fstat(sock.fileno()).st_ino,
             'netns': os.stat('/proc/thread-self/ns/net').st_ino, 'start_time': _start_time(pid)}
    os.write(1, (json.dumps(ready) + '\n').encode())
    while os.read(0, 4096):
        pass
    os._exit(0)


def gather(namespaces, repo, raw):
    if namespaces == 'all':
        subprocess.run(['umount', '-R', '/run/netns'], check=False, capture_output=True)
        subprocess.run(['mount', '-t', 'tmpfs', 'pwt-netns', '/run/netns'], check=True)
    holder = subprocess.Popen([sys.executable, os.path.abspath(__file__), raw], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    line = holder.stdout.readline()
    if not line:
        raise SystemExit('the holder failed (exit %s)' % holder.wait())
    sys.path.insert(0, repo)
    from ansible_collections.portwarden.compliance.plugins.module_utils.gather_sockets import gather_listening_sockets
    try:
        result = gather_listening_sockets(namespaces=namespaces)
    finally:
        holder.stdin.close()
        holder.wait()
    print(json.dumps({'holder': json.loads(line), 'result': result}))


def main():
    if sys.argv[1] == 'gather':
        gather(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    spec = json.loads(sys.argv[1])
    if spec.get('name'):
        LIBC.prctl(15, ctypes.c_char_p(spec['name'].encode()[:15]), 0, 0, 0)  # PR_SET_NAME: the leader's comm
    thread = threading.Thread(target=worker, args=(spec, os.getpid()))
    thread.start()
    time.sleep(0.2)
    LIBC.syscall(SYS_EXIT[os.uname().machine], 0)


if __name__ == '__main__':
    main()
