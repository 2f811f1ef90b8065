"""A gather as root without CAP_SYS_PTRACE in its effective set, beside a listener of a process with all of root's
capabilities; prints {"holder": PID, "inode": INODE, "result": <gather result>}.

``python ptrace_refused.py REPO [BACKEND]`` (as root, in a network namespace of its own: ``ip netns exec``). Root lists the
holder's /proc/PID/fd (the directory is root's), but reading its links needs ptrace access, which the kernel refuses
a caller whose capabilities are not a superset of the target's and who lacks CAP_SYS_PTRACE (docker's default set,
say). The holder is forked before the capability is dropped, so it keeps it.
"""

import ctypes
import json
import os
import socket
import sys

CAP_SYS_PTRACE = 19
LIBC = ctypes.CDLL(None, use_errno=True)


class _Header(ctypes.Structure):
    _fields_ = [('version', ctypes.c_uint32), ('pid', ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [('effective', ctypes.c_uint32), ('permitted', ctypes.c_uint32), ('inheritable', ctypes.c_uint32)]


def drop_effective(cap):
    header = _Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_Data * 2)()
    if LIBC.capget(ctypes.byref(header), data) != 0 or not data[0].effective & (1 << cap):
        raise SystemExit('capget failed, or the capability is not held')
    data[0].effective &= ~(1 << cap)
    if LIBC.capset(ctypes.byref(header), data) != 0:
        raise SystemExit('capset failed: %s' % os.strerror(ctypes.get_errno()))


def main():
    sys.path.insert(0, sys.argv[1])
    listener = socket.socket()
    listener.bind(('127.0.0.1', 856))
    listener.listen(8)
    inode = os.fstat(listener.fileno()).st_ino
    stop_r, stop_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(stop_w)
        os.read(stop_r, 1)  # holds the listener until the gather is done
        os._exit(0)
    os.close(stop_r)
    listener.close()  # only the holder has it now
    drop_effective(CAP_SYS_PTRACE)
    from ansible_collections.portwarden.compliance.plugins.module_utils.gather_sockets import gather_listening_sockets
    try:
        result = gather_listening_sockets(protocols=['tcp'], backend=sys.argv[2] if len(sys.argv) > 2 else 'auto')
    finally:
        os.close(stop_w)
        os.waitpid(pid, 0)
    print(json.dumps({'holder': pid, 'inode': inode, 'result': result}))


if __name__ == '__main__':
    main()
