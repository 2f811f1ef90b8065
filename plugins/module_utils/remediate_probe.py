# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Remediate step, verification: try a port of a host from outside it, as a peer would.

Pure standard library. The remediation action runs it on the controller, before and after a prerouting block
(remediate_plan.judge_probe decides what the two answers mean). A probe says what it saw and nothing more:

- ``open``: a TCP connection was accepted, or a UDP datagram was answered (something answers behind the port,
  locally or through DNAT);
- ``refused``: a TCP reset or an ICMP port unreachable came back (nothing listens, or a reject rule);
- ``blocked``: no answer within the timeout (a drop, or a path that loses the packet; for UDP also a service that
  does not answer this datagram);
- ``error: ...``: anything else the kernel said (no route, host unreachable), which proves nothing either way.

A silent UDP port alone proves nothing; what does is the packet count of the block's drop on the host, read
before and after the probe (remediate_plan.judge_probe).
"""

from __future__ import annotations

import ipaddress
import socket
import threading

OPEN = 'open'
REFUSED = 'refused'
BLOCKED = 'blocked'


def _probe(kind, exchange, address, port, timeout):
    """What ``exchange(sock, (address, port))`` on a new socket of ``kind`` saw: ``open`` when it returns, ``blocked``
    on the timeout, ``refused`` on a refusal (a TCP reset, an ICMP port unreachable), else ``error: ...``."""
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.settimeout(timeout)
    try:
        exchange(sock, (address, port))
        return OPEN
    except socket.timeout:
        return BLOCKED
    except ConnectionRefusedError:
        return REFUSED
    except OSError as exc:
        return 'error: %s' % (exc.strerror or exc)
    finally:
        sock.close()


def _datagram(sock, target):
    sock.connect(target)  # a connected socket is told of the ICMP error the datagram draws
    sock.send(PROBE_DATAGRAM)
    sock.recv(1)


def probe_tcp(address, port, timeout=2.0):
    """What a TCP connect from here to ``address``:``port`` saw: ``open``, ``refused``, ``blocked`` or ``error: ...``."""
    return _probe(socket.SOCK_STREAM, socket.socket.connect, address, port, timeout)


def probe_udp(address, port, timeout=2.0):
    """What a UDP datagram from here to ``address``:``port`` saw: ``open`` (an answer), ``refused`` (ICMP port
    unreachable), ``blocked`` (silence within the timeout) or ``error: ...``."""
    return _probe(socket.SOCK_DGRAM, _datagram, address, port, timeout)


PROBE_DATAGRAM = b'portwarden probe\n'
PROBES = {'tcp': probe_tcp, 'udp': probe_udp}


def probe_many(targets, timeout=2.0):
    """The probe of every ``(protocol, address, port)`` of ``targets`` at once (a silent port costs the timeout once,
    not once per port): the answers in the order of ``targets``."""
    answers = [None] * len(targets)

    def run(index, protocol, address, port):
        answers[index] = PROBES[protocol](address, port, timeout)

    threads = [threading.Thread(target=run, args=(index,) + tuple(target)) for index, target in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def probe_addresses(values, fallback_host=None):
    """``(addresses by family, why)``: the addresses to probe a host at, from ``values`` (IP addresses), else from
    ``fallback_host`` (the connection's address: an IP address, or a name resolved here). ``why`` says what is
    missing when a family has no address; a name that does not resolve gives none, never a guess."""
    found = {}
    problems = []

    def add(address, given):
        # A loopback address is the controller itself, never the host seen from outside.
        if address.is_loopback or (address.version == 6 and address.ipv4_mapped is not None and address.ipv4_mapped.is_loopback):
            problems.append('%s is a loopback address: a probe there reaches the controller, not the host' % given)
        else:
            found.setdefault('ipv4' if address.version == 4 else 'ipv6', address.compressed)

    for value in values or []:
        try:
            add(ipaddress.ip_address(str(value).strip().strip('[]')), repr(value))
        except ValueError:
            problems.append('%r is not an IP address' % (value,))
    if values:
        return found, '; '.join(problems) or None
    if not fallback_host:
        return found, 'no probe address is known for this host (set probe_addresses)'
    try:
        add(ipaddress.ip_address(str(fallback_host).strip('[]')), repr(fallback_host))
        return found, '; '.join(problems) or None
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(str(fallback_host), None, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return found, 'the host address %r does not resolve here (%s); set probe_addresses' % (fallback_host, exc)
    for info in infos:
        add(ipaddress.ip_address(info[4][0].split('%', 1)[0]), '%r (%s)' % (fallback_host, info[4][0]))
    return found, '; '.join(problems) or None


def probe_target(block, addresses, why):
    """``(address, why)``: where to probe a prerouting block from outside: its own address when the NAT rule matches one,
    else the host's address of its family; (None, why) when there is none."""
    if block.get('address'):
        return block['address'], None
    family = block.get('family') or 'ipv4'
    if family in addresses:
        return addresses[family], None
    return None, why or 'no %s probe address is known for this host (set probe_addresses)' % family
