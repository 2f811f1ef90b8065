"""Join stdin/stdout to a TCP connection: an ssh ProxyCommand that reaches a real sshd daemon
listening inside a test host's network namespace (``ip netns exec HOST python3 tcp_pipe.py 127.0.0.1 2222``),
so that the sshd sees a TCP connection and sets SSH_CONNECTION like on a real host."""

import os
import socket
import sys
import threading


def main():
    sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))

    def upstream():
        while True:
            data = os.read(0, 65536)
            if not data:
                sock.shutdown(socket.SHUT_WR)
                return
            sock.sendall(data)

    threading.Thread(target=upstream, daemon=True).start()
    while True:
        data = sock.recv(65536)
        if not data:
            return
        os.write(1, data)


if __name__ == '__main__':
    main()
