"""Open real sockets described by a JSON spec, report them, and hold them until told to stop.

Run inside a network namespace (``ip netns exec NS python3 listeners.py SPEC``), SPEC being
a JSON list (inline, or ``@file``) of sockets:

    {"protocol": "tcp"|"udp", "address": "0.0.0.0", "port": 856,
     "v6only": true|false (IPv6 only), "connect": false (UDP: connect to address:port instead of
     binding, i.e. a client that must not count as listening), "reuseport": false}

Top-level options may be given as ``{"sockets": [...], "fork": N, "name": "comm"}``: after opening
the sockets the holder forks N extra processes that share them (a pre-fork server), and sets its
process name (comm) to ``name``.

Prints one JSON line when ready: {"pids": [...], "sockets": [{"port":..., "inode":...}, ...]}.
Exits when stdin reaches end of file or on SIGTERM; children exit with the parent.
"""

import ctypes
import json
import os
import signal
import socket
import sys


def set_comm(name):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)  # PR_SET_NAME


def open_socket(spec):
    address = spec.get('address', '0.0.0.0')
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    kind = socket.SOCK_STREAM if spec.get('protocol', 'tcp') == 'tcp' else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if spec.get('reuseport'):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6 and 'v6only' in spec:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if spec['v6only'] else 0)
    if spec.get('connect'):
        sock.connect((address, spec['port']))
    else:
        sock.bind((address, spec.get('port', 0)))
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
    return sock


def main():
    raw = sys.argv[1]
    if raw.startswith('@'):
        with open(raw[1:]) as handle:
            raw = handle.read()
    spec = json.loads(raw)
    if isinstance(spec, list):
        spec = {'sockets': spec}
    if spec.get('name'):
        set_comm(spec['name'])
    sockets = [open_socket(item) for item in spec['sockets']]
    report = []
    for item, sock in zip(spec['sockets'], sockets):
        report.append({'protocol': item.get('protocol', 'tcp'), 'address': item.get('address', '0.0.0.0'),
                       'port': sock.getsockname()[1], 'inode': os.fstat(sock.fileno()).st_ino,
                       'connect': bool(item.get('connect'))})
    children = []
    for _index in range(int(spec.get('fork', 0))):
        pid = os.fork()
        if pid == 0:
            # Workers die with the holder: PR_SET_PDEATHSIG, then wait forever.
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)
            signal.pause()
            os._exit(0)
        children.append(pid)

    def stop(*_args):
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    sys.stdout.write(json.dumps({'pids': [os.getpid()] + children, 'sockets': report}) + '\n')
    sys.stdout.flush()
    try:
        sys.stdin.read()
    finally:
        stop()


if __name__ == '__main__':
    main()
