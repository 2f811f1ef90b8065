"""A rogue service for remediation tests: TCP PORT accepts, UDP PORT echoes, under process name NAME.

``python3 echo_server.py NAME TCP_PORT UDP_PORT`` prints ``ready`` once both are bound.
"""

import ctypes
import socket
import sys
import threading


def main():
    name, tcp_port, udp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)  # PR_SET_NAME
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(('0.0.0.0', tcp_port))
    tcp.listen(16)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(('0.0.0.0', udp_port))

    def echo():
        while True:
            data, peer = udp.recvfrom(512)
            udp.sendto(data, peer)

    threading.Thread(target=echo, daemon=True).start()
    print('ready', flush=True)
    while True:
        conn, _peer = tcp.accept()
        conn.close()


if __name__ == '__main__':
    main()
