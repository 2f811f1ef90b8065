"""Try a service from inside a network namespace: prints ``open``, ``blocked`` (no answer) or ``refused``.

``python3 probe.py tcp|udp PORT [ADDRESS]``
"""

import socket
import sys


def main():
    kind, port = sys.argv[1], int(sys.argv[2])
    address = sys.argv[3] if len(sys.argv) > 3 else '127.0.0.1'
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM if kind == 'tcp' else socket.SOCK_DGRAM)
    sock.settimeout(1.0)
    try:
        if kind == 'tcp':
            sock.connect((address, port))
        else:
            sock.sendto(b'ping', (address, port))
            sock.recvfrom(512)
        print('open')
    except socket.timeout:
        print('blocked')
    except ConnectionRefusedError:
        print('refused')


if __name__ == '__main__':
    main()
