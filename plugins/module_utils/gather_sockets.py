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

``namespaces='all'`` also reads every other network namespace a process is in (containers, pods,
``ip netns``), in a short-lived thread that enters them in turn (gather_namespaces), and tags each
socket with its namespace. Socket inodes are unique across namespaces, so one fd walk still finds
the owners of them all.
"""

from __future__ import annotations

import errno
import os
import socket
import sys

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_nat, gather_netlink, gather_owners, gather_procfs
from ansible_collections.portwarden.compliance.plugins.module_utils.report_sockets import socket_label

BACKENDS = ('auto', 'netlink', 'procfs', 'psutil')
PROTOCOLS = ('tcp', 'udp')
FAMILIES = ('ipv4', 'ipv6')
NAMESPACE_MODES = ('host', 'all')


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


def _read_tables(backend, protocols, coverage, proc_net='/proc/net', ipv6=None):
    """Read the kernel socket tables with netlink or procfs; ``auto`` falls back per table.

    Netlink reads the calling thread's namespace, procfs the one ``proc_net`` shows.
    """
    records = []
    read_any = False
    if ipv6 is None:
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
                    found = gather_procfs.read_listening(family, protocol, proc_net)
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


def walk_errors(processes_seen, processes_denied, privileged):
    """What an fd walk that could not read every process it listed must report (each an error)."""
    if processes_seen == 0:
        return ['no process file descriptors could be read under /proc']
    if processes_denied:
        reason = 'not running as root' if not privileged else 'access denied (hidepid, LSM or missing capabilities)'
        return ['%d processes could not be inspected (%s); their sockets show no processes' % (processes_denied, reason)]
    return []


def hidden_process_gaps(view):
    """Why /proc could not even list every process of the machine (gather_owners.ProcView); [] when it could.

    Processes missing from the listing are never counted by the walk, so they are said here."""
    if view is None:  # no /proc (psutil off Linux): the platform's own process list, nothing known to be hidden
        return []
    gaps = []
    if view.pid_namespace == 'private':
        gaps.append('the gather runs in a private PID namespace, whose /proc lists only the processes in it')
    elif view.pid_namespace != 'host':
        gaps.append('cannot tell which PID namespace /proc lists (/proc/self does not resolve there)')
    if view.hides:
        gaps.append('/proc is mounted with hidepid=%s, which hides the processes of other users from this user'
                    % view.hidepid)
    elif view.hides is None:
        gaps.append('the mount options of /proc cannot be read, so whether hidepid hides processes is unknown')
    if view.covered:
        gaps.append('mounts cover the /proc entries of %d process(es)' % len(set(_covered_pids(view.covered))))
    return gaps


def _covered_pids(points):
    return [int(point.split('/')[2]) for point in points]


def covered_proc_errors(view):
    """The error a mount at or below /proc/PID calls for (the walk reads whatever is mounted there: fds hidden,
    or forged with a name and an executable), naming the mount points; [] when there is none."""
    if view is None or view.covered == []:
        return []
    if view.covered is None:
        return ['the mounts of this mount namespace cannot be read, so whether a mount covers the /proc entry of a '
                'process (hiding or forging its fds, name and executable) is unknown']
    return ['something is mounted over %s: the fds, names and executables read there are not the kernel\'s, so the '
            'owners of sockets may be hidden or forged (pids %s)' % (_named(view.covered), ', '.join(
                str(pid) for pid in sorted(set(_covered_pids(view.covered)))))]


MAX_NAMED_PIDS = 20  # a gap names at most this many refused processes


def refused_gap(refused):
    """The gap of processes whose fd directory lists but whose links the kernel refused (FdWalk.refused); [] when
    none was. Their sockets are unknown: one of theirs would otherwise show no owner, as a kernel socket."""
    if not refused:
        return []
    shown = ', '.join(str(pid) for pid in refused[:MAX_NAMED_PIDS])
    if len(refused) > MAX_NAMED_PIDS:
        shown += ' and %d more' % (len(refused) - MAX_NAMED_PIDS)
    return ['the fd links of %d process(es) could not be read (ptrace access refused: the gather lacks '
            'CAP_SYS_PTRACE or capabilities they hold, or an LSM denies it): pid %s' % (len(refused), shown)]


def owner_search(view, walk_ok, refused=()):
    """``coverage['owner_search']``: whether the owners of sockets were looked for in every process
    (``exhaustive``), what /proc lists and why not (``gaps``). ``walk_ok``: the walk itself reported no error;
    ``refused``: the pids whose fd links could not be read (FdWalk.refused)."""
    gaps = hidden_process_gaps(view) + refused_gap(list(refused))
    search = {'exhaustive': walk_ok and not gaps, 'gaps': gaps, 'pid_namespace': None, 'hidepid': None}
    if view is not None:
        search.update(view.as_dict())
    return search


def unowned_case(unowned, search):
    """Which case the unowned sockets are: ``none``; ``kernel`` (every process was looked in, so they are the
    kernel's, such as nfsd's, or their owners exited meanwhile); ``not_looked_for`` (some processes were not)."""
    if not unowned:
        return 'none'
    return 'kernel' if search['exhaustive'] else 'not_looked_for'


MAX_NAMED_SOCKETS = 20  # an error names at most this many sockets; coverage.unowned_sockets lists them all


def _named(labels):
    shown = ', '.join(labels[:MAX_NAMED_SOCKETS])
    if len(labels) > MAX_NAMED_SOCKETS:
        shown += ' and %d more (coverage.unowned_sockets)' % (len(labels) - MAX_NAMED_SOCKETS)
    return shown


def unowned_findings(unowned, search):
    """``(errors, notes)`` about the sockets with no owning process, given ``owner_search``.

    An unowned socket whose owner could not be looked for in every process is an error naming it: a process
    rule would otherwise pass on a rogue's socket. One looked for everywhere is a kernel socket (a note)."""
    if search['gaps']:
        if unowned:
            return (['%d sockets show no owning process, and not every process could be looked in (%s): %s'
                     % (len(unowned), '; '.join(search['gaps']), _named(unowned))], [])
        return [], ['the processes listed for each socket may miss holders that could not be looked in (%s)'
                    % '; '.join(search['gaps'])]
    if unowned and search['exhaustive']:
        # No process holds a socket passed with SCM_RIGHTS and not yet received, and it still accepts: the kernel
        # cannot tell it from its own, so the note says so (a process rule judges it unknown either way).
        return [], ['%d sockets have no owning process though every process was looked in: kernel sockets, '
                    'sockets only in flight in a unix socket queue (passed, not yet received), '
                    'or owners that exited during the gather: %s' % (len(unowned), _named(unowned))]
    return [], []  # a walk that failed or was denied has said so in its own error


def finish_coverage(coverage, view, walk_ok, refused=()):
    """Add ``owner_search`` and ``unowned_case`` to a gather's coverage, the errors and notes they call for,
    and decide ``complete``: true exactly when no error was recorded."""
    search = owner_search(view, walk_ok, refused)
    errors, notes = unowned_findings(coverage['unowned_sockets'], search)
    coverage['errors'].extend(covered_proc_errors(view))
    coverage['errors'].extend(errors)
    coverage['notes'].extend(notes)
    coverage['owner_search'] = search
    coverage['unowned_case'] = unowned_case(coverage['unowned_sockets'], search)
    coverage['complete'] = not coverage['errors']
    return coverage


def _owners_from_fd_walk(records, coverage, privileged, collect=False, refused=None):
    """``(owners, walk_ok, foreign, leaders)``: the fd walk's owners by inode, whether it read every process it
    listed, (``collect``) the other sockets and nsfs handles it met (gather_owners.FdWalk.foreign), and the
    process of each thread walked for its zombie leader (FdWalk.leaders). The pids whose fd links were refused
    (FdWalk.refused) are appended to the list ``refused``."""
    try:
        walk = gather_owners.walk_fds((record[5] for record in records), collect=collect)
    except OSError as exc:
        coverage['errors'].append('cannot walk /proc for socket owners: %s' % exc)
        return {}, False, {}, {}
    if refused is not None:
        refused.extend(walk.refused)
    coverage['processes_scanned'] = walk.processes_seen
    coverage['processes_unreadable'] = walk.processes_denied
    errors = walk_errors(walk.processes_seen, walk.processes_denied, privileged)
    coverage['errors'].extend(errors)
    return walk.owners, not errors, walk.foreign, walk.leaders


def _refused_fd_links(coverage):
    """gather_owners.fd_links_refused, or [] with an error when /proc cannot even be listed."""
    try:
        return gather_owners.fd_links_refused()
    except OSError as exc:
        coverage['errors'].append('cannot check /proc for processes whose fd links psutil may not read: %s' % exc)
        return []


SOCKET_NAMESPACE_BUDGET = 20000  # sockets asked their namespace (~9 us each); past it, said in the coverage


def unlisted_namespace_candidates(foreign, scanned):
    """From the fd walk's other sockets and nsfs handles: ``(handles, sockets)``, where ``handles`` maps each
    network namespace inode not in ``scanned`` that an fd is open on to ``[(pid, fd)]``, and ``sockets`` lists
    ``(link, pid, fd)`` of one holder of each other socket, whose namespace only the kernel can tell."""
    handles = {}
    sockets = []
    for link, holders in foreign.items():
        if link.startswith('net:['):
            inode = int(link[5:-1])
            if inode not in scanned:
                handles.setdefault(inode, []).extend(holders)
        else:
            sockets.append((link, holders[0][0], holders[0][1]))
    sockets.sort()
    return handles, sockets


def _socket_namespaces(sockets, scanned, coverage):
    """``{inode: fd}``: an fd open on each network namespace not in ``scanned`` that one of ``sockets``
    belongs to (SIOCGSKNS). The caller closes the fds. What could not be asked is an error."""
    from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces

    found = {}
    if len(sockets) > SOCKET_NAMESPACE_BUDGET:
        coverage['errors'].append('namespaces=all: %d sockets held by processes were not asked which network namespace '
                                  'they belong to (more than %d); a namespace that only such a socket keeps alive, with no '
                                  'process, mount or fd in it, is missed' % (len(sockets), SOCKET_NAMESPACE_BUDGET))
        return found
    asker = gather_namespaces.SocketNamespaces()
    failed = []
    try:
        for link, pid, fd in sockets:
            try:
                ns_fd = asker.namespace(pid, fd)
            except OSError as exc:
                if exc.errno not in (errno.ESRCH, errno.EBADF, errno.ENOENT):  # gone: nothing left to hold it
                    failed.append('%s (pid %d): %s' % (link, pid, exc.strerror or exc))
                continue
            inode = os.fstat(ns_fd).st_ino
            if inode in scanned or inode in found:
                os.close(ns_fd)
            else:
                found[inode] = ns_fd
    finally:
        asker.close()
    if failed:
        coverage['errors'].append('namespaces=all: %d sockets could not be asked which network namespace they belong to, '
                                  'so a namespace only they keep alive may be missed: %s' % (len(failed), _named(failed)))
    return found


def _scan_unlisted_namespaces(backend, protocols, foreign, scans, coverage, leaders=None):
    """namespaces=all, after the fd walk: read the namespaces no process is in that an fd keeps (an nsfs handle,
    or a socket in it); return their scans and the owners of their sockets (from the walk's other sockets;
    ``leaders`` maps a thread walked for its zombie leader to its process)."""
    from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces

    scanned = set(entry['inode'] for entry, _range, _found in scans) | set(
        item['inode'] for key in ('unreadable', 'vanished') for item in coverage['namespaces'][key])
    handles, sockets = unlisted_namespace_candidates(foreign, scanned)
    held = _socket_namespaces(sockets, scanned, coverage)
    # Through this process's own fd first where a socket gave one: another process's nsfs fd may be closed before
    # the visit (another gather's, for a moment), while a socket still keeps the namespace.
    visits = []
    for inode in sorted(set(handles) | set(held)):
        own = ['/proc/self/fd/%d' % held[inode]] if inode in held else []
        visits.append((inode, [], own + ['/proc/%d/fd/%d' % holder for holder in handles.get(inode, ())]))
    extra = []
    try:
        ipv6 = _ipv6_available()
        for visit in gather_namespaces.visit_namespaces(visits, lambda: _read_namespace(backend, protocols, ipv6)):
            scan = account_visit(visit, coverage, lambda inode, pid: _namespace_entry(inode, False, pid, None))
            if scan is not None:
                extra.append(scan)
    finally:
        for fd in held.values():
            os.close(fd)
    owners = {}
    for _entry, _range, found in extra:
        for record in found:
            holders = foreign.get('socket:[%d]' % record[5], ())
            if holders:
                owners[record[5]] = sorted(set((leaders or {}).get(pid, pid) for pid, _fd in holders))
    return extra, owners


def psutil_listening_key(conn, protocols, listen_status):
    """``(protocol, family, address, port)`` of a psutil connection that is a listening socket of ``protocols``
    (TCP in ``listen_status``, psutil.CONN_LISTEN; UDP bound and not connected); None for any other."""
    if conn.type == socket.SOCK_STREAM:
        protocol = 'tcp'
        listening = conn.status == listen_status
    elif conn.type == socket.SOCK_DGRAM:
        protocol = 'udp'
        listening = not conn.raddr
    else:
        return None
    if not listening or protocol not in protocols or not conn.laddr:
        return None
    return (protocol, 'ipv6' if conn.family == socket.AF_INET6 else 'ipv4', conn.laddr.ip, conn.laddr.port)


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
        key = psutil_listening_key(conn, protocols, psutil.CONN_LISTEN)
        if key is not None:
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


def _read_namespace(backend, protocols, ipv6):
    """Run in a thread inside another namespace: its records, what the read met, its ephemeral port range."""
    from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces

    local = {'sources': {}, 'errors': [], 'notes': []}
    try:
        records = _read_tables(backend, protocols, local, proc_net=gather_namespaces.thread_self() + '/net', ipv6=ipv6)
    except GatherError as exc:
        raise gather_namespaces.NamespaceUnreadable(str(exc)) from exc
    return records, local, ephemeral_ports()  # /proc/sys/net shows the calling thread's namespace


def _read_namespace_through_pid(inode, pid, protocols, ipv6, refused):
    """procfs without entering: /proc/PID/net shows the namespace of PID, as long as PID stays in it."""
    from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces

    local = {'sources': {}, 'errors': [], 'notes': []}
    try:
        records = _read_tables('procfs', protocols, local, proc_net='/proc/%d/net' % pid, ipv6=ipv6)
        still = gather_namespaces.pid_namespace(pid) == inode
    except (GatherError, OSError, ValueError) as exc:
        raise gather_namespaces.NamespaceUnreadable('%s; /proc/%d/net: %s' % (refused, pid, exc)) from exc
    if not still:
        raise gather_namespaces.NamespaceUnreadable('%s; pid %d left the namespace while /proc/%d/net was read'
                                                    % (refused, pid, pid))
    local['notes'].append('%s; read /proc/%d/net instead, so its ephemeral port range is unknown' % (refused, pid))
    return records, local, None


def _namespace_entry(inode, host, pid, names):
    from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces

    container = gather_namespaces.describe_container(pid, names) if pid is not None and names is not None else None
    return {'inode': inode, 'host': host, 'pid': pid, 'container': container}


def _scanned(entry, records, sources, port_range):
    return dict(entry, sockets=len(records), sources=sources,
                ephemeral_port_range=[port_range[0], port_range[1]] if port_range else None)


def _scan_namespaces(backend, protocols, host_records, coverage, privileged, view=None):
    """namespaces=all: ``[(namespace entry, port range, records)]`` of every namespace read, the gather's own
    first (its port range left None: the caller fills in the host's). Fills ``coverage['namespaces']``.

    A namespace that could not be entered or read is an error (the coverage is partial); one whose every
    process exited before it could be entered has vanished, with every socket in it: a note, not an error.
    """
    # Imported here: namespaces=host (the default) never needs it, and its gather starts as quickly as before.
    from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces

    summary = {'mode': 'all', 'scanned': [], 'unreadable': [], 'vanished': []}
    coverage['namespaces'] = summary
    names = gather_namespaces.ContainerNames()
    own = gather_namespaces.own_namespace()
    discovery = None
    if not privileged:
        coverage['errors'].append('namespaces=all: not running as root, so only the network namespace the gather runs in '
                                  'was read; other namespaces can be neither listed nor entered (use become: true)')
    else:
        try:
            discovery = gather_namespaces.discover_namespaces()
        except OSError as exc:
            coverage['errors'].append('namespaces=all: cannot list the network namespaces of the processes under /proc: %s; '
                                      'only the network namespace the gather runs in was read' % exc)
    pids = (discovery.namespaces.get(own) if discovery else None) or [os.getpid()]
    host = _namespace_entry(own, True, pids[0], names)
    scans = [(host, None, host_records)]
    summary['scanned'].append(_scanned(host, host_records, dict(coverage['sources']), None))
    if discovery is None:
        return scans
    if discovery.processes_denied:
        coverage['errors'].append('namespaces=all: the network namespace of %d processes could not be read; '
                                  'a namespace only they are in is missing' % discovery.processes_denied)
    if view is not None and view.pid_namespace != 'host':
        # A note, not an error: run in a container, "all" is every namespace that container can see (its sockets'
        # owners are still checked: an unowned socket there is an error, see unowned_findings).
        coverage['notes'].append('namespaces=all: the gather runs in a private PID namespace (or cannot tell which one '
                                 '/proc lists), so only the network namespaces its processes are in, mount or keep open '
                                 'were read; those of processes outside it are not seen')
    mounted, unreadable = gather_namespaces.mounted_namespaces(discovery)
    if unreadable:
        coverage['errors'].append('namespaces=all: the mounts of %d mount namespaces could not be read; a network '
                                  'namespace only mounted there (ip netns, a bind mount) may be missed' % unreadable)
    ipv6 = _ipv6_available()
    others = [(inode, discovery.namespaces.get(inode, []), mounted.get(inode, []))
              for inode in sorted(set(discovery.namespaces) | set(mounted)) if inode != own]
    fallback = None
    if backend != 'netlink':
        def fallback(inode, pid, refused):
            return _read_namespace_through_pid(inode, pid, protocols, ipv6, refused)
    for visit in gather_namespaces.visit_namespaces(others, lambda: _read_namespace(backend, protocols, ipv6), fallback):
        scan = account_visit(visit, coverage, lambda inode, pid: _namespace_entry(inode, False, pid, names))
        if scan is not None:
            scans.append(scan)
    return scans


def account_visit(visit, coverage, entry_for):
    """Record one namespace visit (gather_namespaces.Visit) in ``coverage``; return its scan or None.

    Vanished (every process exited: nothing can listen there) is a note; unreadable is an error, and so is
    every error met while reading it. ``entry_for(inode, pid)`` builds the namespace entry of a scan."""
    from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces

    summary = coverage['namespaces']
    if isinstance(visit.error, gather_namespaces.NamespaceGone):
        summary['vanished'].append({'inode': visit.inode, 'pid': visit.pid})
        coverage['notes'].append('network namespace %d (pid %s) vanished during the scan: every process in it exited, '
                                 'so nothing listens there any more' % (visit.inode, visit.pid))
        return None
    if visit.error is not None:
        summary['unreadable'].append({'inode': visit.inode, 'pid': visit.pid, 'reason': str(visit.error)})
        coverage['errors'].append('network namespace %d (pid %s) could not be read: %s' % (visit.inode, visit.pid, visit.error))
        return None
    records, local, port_range = visit.result
    coverage['errors'].extend('network namespace %d: %s' % (visit.inode, error) for error in local['errors'])
    coverage['notes'].extend('network namespace %d: %s' % (visit.inode, note) for note in local['notes'])
    entry = entry_for(visit.inode, visit.pid)
    summary['scanned'].append(_scanned(entry, records, local['sources'], port_range))
    return entry, port_range, records


def gather_listening_sockets(backend='auto', protocols=PROTOCOLS, namespaces='host', nat='auto'):
    """Gather the listening sockets of this host's (current network namespace's) kernel.

    With ``namespaces='all'`` (Linux), those of every network namespace a process is in, each socket
    tagged with its ``namespace`` and the namespaces listed in ``coverage['namespaces']``; ``host``
    there is the namespace the gather runs in. With ``'host'`` (the default) nothing of that appears.
    ``nat='auto'`` (Linux) also reads the NAT rules into ``exposures`` and ``coverage['nat']`` (gather_nat).

    Returns ``{'sockets': [...], 'coverage': {...}}``. Raises GatherError when
    nothing could be read and PsutilMissing when psutil was needed but absent.
    """
    if backend not in BACKENDS:
        raise GatherError('unknown backend %r; expected one of %s' % (backend, ', '.join(BACKENDS)))
    if namespaces not in NAMESPACE_MODES:
        raise GatherError('unknown namespaces %r; expected one of %s' % (namespaces, ', '.join(NAMESPACE_MODES)))
    if nat not in gather_nat.NAT_MODES:
        raise GatherError('unknown nat %r; expected one of %s' % (nat, ', '.join(gather_nat.NAT_MODES)))
    protocols = tuple(p for p in PROTOCOLS if p in protocols)
    if not protocols:
        raise GatherError('no protocol to gather; expected some of %s' % ', '.join(PROTOCOLS))
    linux = sys.platform.startswith('linux')
    if backend == 'auto' and not linux:
        backend = 'psutil'
    if backend in ('netlink', 'procfs') and not linux:
        raise GatherError('the %s backend works only on Linux; use backend=psutil or auto' % backend)
    if namespaces == 'all' and backend == 'psutil':
        raise GatherError('namespaces=all reads network namespaces, which only the netlink and procfs backends can enter '
                          '(Linux); psutil sees only its own')
    privileged = os.geteuid() == 0 if hasattr(os, 'geteuid') else False
    coverage = {
        'backend': backend, 'sources': {}, 'privileged': privileged, 'complete': True,
        'sockets': 0, 'unowned_sockets': [], 'processes_scanned': 0, 'processes_unreadable': 0,
        'ephemeral_port_range': None, 'errors': [], 'notes': [],
    }
    nat_read = gather_nat.start_read(nat if linux else 'off')  # its tools run while the sockets are read
    scans = None
    view = gather_owners.read_proc_view() if linux else None
    refused = []
    if backend == 'psutil':
        records, owners = _psutil_records(protocols, coverage)
        walk_ok = privileged
        if linux and privileged:  # psutil skips, unsaid, the processes whose fd links it may not read
            refused = _refused_fd_links(coverage)
    else:
        records = _read_tables(backend, protocols, coverage)
        if namespaces == 'all':
            scans = _scan_namespaces(backend, protocols, records, coverage, privileged, view)
            records = [record for _entry, _range, found in scans for record in found]
        owners, walk_ok, foreign, leaders = _owners_from_fd_walk(records, coverage, privileged,
                                                                 collect=scans is not None and privileged,
                                                                 refused=refused)
        if scans is not None and privileged:
            extra, extra_owners = _scan_unlisted_namespaces(backend, protocols, foreign, scans, coverage, leaders)
            scans.extend(extra)
            owners.update(extra_owners)
            records.extend(record for _entry, _range, found in extra for record in found)
    if not privileged:
        coverage['notes'].append('not running as root: processes of other users are not shown; use become: true')

    port_range = ephemeral_ports() if linux else None
    if port_range is not None:
        coverage['ephemeral_port_range'] = [port_range[0], port_range[1]]
    describer = gather_owners.ProcessDescriber()
    describe = describer.describe if linux else _describe_with_psutil
    by_owners = {}  # one process list per set of owners: pre-fork servers hold thousands of sockets
    sockets = []
    if scans is None:
        records.sort(key=_record_sort_key)
        placed = ((record, None, port_range) for record in records)
    else:
        coverage['namespaces']['scanned'][0]['ephemeral_port_range'] = coverage['ephemeral_port_range']
        placed = [(record, entry, port_range if entry['host'] else ns_range)
                  for entry, ns_range, found in scans for record in found]
        placed.sort(key=lambda item: _record_sort_key(item[0]) + (item[1]['inode'],))
    for (protocol, family, address, port, v6only, inode), namespace, socket_range in placed:
        pids = tuple(owners.get(inode, ()))
        processes = by_owners.get(pids)
        if processes is None:
            processes = by_owners[pids] = [info for info in map(describe, pids) if info is not None]
        entry = {
            'protocol': protocol, 'family': family, 'address': address, 'port': port,
            'v6only': v6only if family == 'ipv6' else None,
            'ephemeral': is_ephemeral(protocol, port, socket_range),
            'inode': inode if inode >= 0 else None,
            'processes': processes,
        }
        if namespace is not None:
            entry['namespace'] = namespace
        if not processes:
            coverage['unowned_sockets'].append(socket_label(entry))  # 'in docker:web' outside the host's namespace
        sockets.append(entry)
    coverage['unowned_sockets'].sort()
    coverage['sockets'] = len(sockets)
    finish_coverage(coverage, view, walk_ok, refused)
    return gather_nat.add_exposures({'sockets': sockets, 'coverage': coverage}, nat_read)


def _record_sort_key(record):
    protocol, family, address, port, _v6only, inode = record
    return (protocol, port, family, address, inode)
