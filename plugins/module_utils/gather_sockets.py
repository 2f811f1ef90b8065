# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Gather step: every listening socket of this host with its owning processes, and the coverage.

Pure standard library (psutil only for the ``psutil`` backend, imported when
used). Shared by the ``listening_sockets_info`` module, the CLI and the tests.

Fail closed: a table that could not be read is an error in ``coverage`` and makes
it incomplete; when nothing could be read at all, GatherError is raised, so a
failed gather never reads as a quiet host.
"""

from __future__ import annotations

import os
import socket
import sys

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_netlink, gather_owners, gather_procfs
from ansible_collections.portwarden.compliance.plugins.module_utils.report_sockets import socket_label

BACKENDS = ('auto', 'netlink', 'procfs', 'psutil')
PROTOCOLS = ('tcp', 'udp')
FAMILIES = ('ipv4', 'ipv6')


class GatherError(Exception):
    """Nothing trustworthy could be gathered."""


class PsutilMissing(GatherError):
    """The psutil backend was needed but psutil is not installed."""


def read_port_range(text):
    """Parse ip_local_port_range text (``32768\\t60999``) into ``(low, high)``."""
    low, high = (int(value) for value in text.split())
    return low, high


def read_port_list(text):
    """Parse ip_local_reserved_ports text (``8080,9000-9010``) into a set of ports."""
    ports = set()
    for item in text.strip().split(','):
        if not item.strip():
            continue
        low, _sep, high = item.strip().partition('-')
        ports.update(range(int(low), int(high or low) + 1))
    return ports


def ephemeral_ports(proc_sys='/proc/sys/net/ipv4'):
    """Return ``(low, high, reserved)`` of this namespace's ephemeral port range, or None."""
    try:
        with open(proc_sys + '/ip_local_port_range') as handle:
            low, high = read_port_range(handle.read())
    except (OSError, ValueError):
        return None
    try:
        with open(proc_sys + '/ip_local_reserved_ports') as handle:
            reserved = read_port_list(handle.read())
    except (OSError, ValueError):
        reserved = set()
    return low, high, reserved


def is_ephemeral(protocol, port, port_range):
    """A bound UDP port inside the ephemeral range is most likely a client's, not a service."""
    if protocol != 'udp' or port_range is None:
        return False
    low, high, reserved = port_range
    return low <= port <= high and port not in reserved


def _ipv6_available(proc_net='/proc/net'):
    return os.path.exists(proc_net + '/tcp6') or os.path.exists(proc_net + '/udp6')


def _tables(protocols, ipv6):
    families = FAMILIES if ipv6 else ('ipv4',)
    return [(protocol, family) for protocol in protocols for family in families]


def _read_tables(backend, protocols, coverage):
    """Read the kernel socket tables with netlink or procfs; ``auto`` falls back per table."""
    records = []
    read_any = False
    ipv6 = _ipv6_available()
    if not ipv6:
        coverage['notes'].append('IPv6 is not enabled on this host; only IPv4 tables exist')
    for protocol, family in _tables(protocols, ipv6):
        table = '%s/%s' % (protocol, family)
        order = ('netlink', 'procfs') if backend == 'auto' else (backend,)
        for source in order:
            try:
                if source == 'netlink':
                    found = gather_netlink.dump_listening(family, protocol)
                else:
                    found = gather_procfs.read_listening(family, protocol)
            except (gather_netlink.NetlinkError, gather_procfs.ProcfsError) as exc:
                if source == order[-1]:
                    coverage['errors'].append('%s: %s backend: %s' % (table, source, exc))
                else:
                    coverage['notes'].append('%s: %s backend failed (%s); fell back' % (table, source, exc))
                continue
            coverage['sources'][table] = source
            records.extend(found)
            read_any = True
            break
    if not read_any:
        raise GatherError('no socket table could be read: %s' % '; '.join(coverage['errors']))
    return records


def _owners_from_fd_walk(records, coverage):
    try:
        walk = gather_owners.walk_fds(record[5] for record in records)
    except OSError as exc:
        coverage['errors'].append('cannot walk /proc for socket owners: %s' % exc)
        return {}
    coverage['processes_scanned'] = walk.processes_seen
    coverage['processes_unreadable'] = walk.processes_denied
    if walk.processes_seen == 0:
        coverage['errors'].append('no process file descriptors could be read under /proc')
    elif walk.processes_denied:
        reason = 'not running as root' if os.geteuid() != 0 else 'access denied (hidepid, LSM or missing capabilities)'
        coverage['errors'].append('%d processes could not be inspected (%s); their sockets show no processes'
                                  % (walk.processes_denied, reason))
    return walk.owners


def _psutil_records(protocols, coverage):
    """psutil backend: (records, owners). psutil cannot tell sockets apart by inode, so
    sockets with the same protocol, address and port (SO_REUSEPORT groups) merge into one."""
    try:
        import psutil
    except ImportError as exc:
        raise PsutilMissing('the psutil backend needs the psutil Python library on the managed host') from exc
    grouped = {}
    try:
        connections = psutil.net_connections(kind='inet')
    except psutil.AccessDenied as exc:
        raise GatherError('psutil could not list sockets (access denied: %s); run with become' % exc) from exc
    except Exception as exc:  # psutil raises platform-specific errors
        raise GatherError('psutil could not list sockets: %s' % exc) from exc
    for conn in connections:
        if conn.type == socket.SOCK_STREAM:
            protocol = 'tcp'
            if conn.status != psutil.CONN_LISTEN:
                continue
        elif conn.type == socket.SOCK_DGRAM:
            protocol = 'udp'
            if conn.raddr:
                continue
        else:
            continue
        if protocol not in protocols or not conn.laddr:
            continue
        family = 'ipv6' if conn.family == socket.AF_INET6 else 'ipv4'
        key = (protocol, family, conn.laddr.ip, conn.laddr.port)
        pids = grouped.setdefault(key, [])
        if conn.pid is not None and conn.pid not in pids:
            pids.append(conn.pid)
    if sys.platform.startswith('linux'):
        coverage['sources'] = dict(('%s/%s' % table, 'psutil') for table in _tables(protocols, _ipv6_available()))
    else:
        coverage['sources'] = dict((protocol, 'psutil') for protocol in protocols)
    if not coverage['privileged']:
        # psutil lists other users' sockets without their pid: the owners are unknown, not absent.
        coverage['errors'].append('not running as root: psutil cannot name the processes of other users; '
                                  'their sockets show no processes')
    records = []
    owners = {}
    for index, (key, pids) in enumerate(sorted(grouped.items())):
        records.append(key + (None, -1 - index))  # synthetic negative keys: psutil gives no inode
        owners[-1 - index] = sorted(pids)
    return records, owners


def _describe_with_psutil(pid):
    import psutil
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            uid = proc.uids().effective if hasattr(proc, 'uids') else None
            try:
                exe = proc.exe() or None
            except (psutil.AccessDenied, psutil.ZombieProcess):
                exe = None
            return {'pid': pid, 'name': proc.name(), 'user': proc.username(), 'uid': uid, 'exe': exe, 'unit': None,
                    'start_time': None}
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def gather_listening_sockets(backend='auto', protocols=PROTOCOLS):
    """Gather the listening sockets of this host's (current network namespace's) kernel.

    Returns ``{'sockets': [...], 'coverage': {...}}``. Raises GatherError when
    nothing could be read and PsutilMissing when psutil was needed but absent.
    """
    if backend not in BACKENDS:
        raise GatherError('unknown backend %r; expected one of %s' % (backend, ', '.join(BACKENDS)))
    protocols = tuple(p for p in PROTOCOLS if p in protocols)
    if not protocols:
        raise GatherError('no protocol to gather; expected some of %s' % ', '.join(PROTOCOLS))
    linux = sys.platform.startswith('linux')
    if backend == 'auto' and not linux:
        backend = 'psutil'
    if backend in ('netlink', 'procfs') and not linux:
        raise GatherError('the %s backend works only on Linux; use backend=psutil or auto' % backend)
    privileged = os.geteuid() == 0 if hasattr(os, 'geteuid') else False
    coverage = {
        'backend': backend, 'sources': {}, 'privileged': privileged, 'complete': True,
        'sockets': 0, 'unowned_sockets': [], 'processes_scanned': 0, 'processes_unreadable': 0,
        'ephemeral_port_range': None, 'errors': [], 'notes': [],
    }
    if backend == 'psutil':
        records, owners = _psutil_records(protocols, coverage)
    else:
        records = _read_tables(backend, protocols, coverage)
        owners = _owners_from_fd_walk(records, coverage)
    if not privileged:
        coverage['notes'].append('not running as root: processes of other users are not shown; use become: true')

    port_range = ephemeral_ports() if linux else None
    if port_range is not None:
        coverage['ephemeral_port_range'] = [port_range[0], port_range[1]]
    describer = gather_owners.ProcessDescriber()
    describe = describer.describe if linux else _describe_with_psutil
    by_owners = {}  # one process list per set of owners: pre-fork servers hold thousands of sockets
    sockets = []
    records.sort(key=_record_sort_key)
    for protocol, family, address, port, v6only, inode in records:
        pids = tuple(owners.get(inode, ()))
        processes = by_owners.get(pids)
        if processes is None:
            processes = by_owners[pids] = [info for info in map(describe, pids) if info is not None]
        entry = {
            'protocol': protocol, 'family': family, 'address': address, 'port': port,
            'v6only': v6only if family == 'ipv6' else None,
            'ephemeral': is_ephemeral(protocol, port, port_range),
            'inode': inode if inode >= 0 else None,
            'processes': processes,
        }
        if not processes:
            coverage['unowned_sockets'].append(socket_label(entry))
        sockets.append(entry)
    coverage['unowned_sockets'].sort()
    coverage['sockets'] = len(sockets)
    coverage['complete'] = not coverage['errors']
    return {'sockets': sockets, 'coverage': coverage}


def _record_sort_key(record):
    protocol, family, address, port, _v6only, inode = record
    return (protocol, port, family, address, inode)
