"""Parse `ss -H -ltnupe` output into the gather step's terms (the reference the backends are checked against)."""

import re

_PIDS = re.compile(r'pid=(\d+)')
_INODE = re.compile(r'\bino:(\d+)')
_V6ONLY = re.compile(r'\bv6only:([01])')


def parse_local(text):
    """``0.0.0.0:856`` / ``[::1]:857`` / ``*:858`` -> (family, address, port)."""
    host, _sep, port = text.rpartition(':')
    host = host.split('%', 1)[0]  # drop a bound interface suffix
    if host == '*':  # ss shows a dual-stack [::] socket as *
        return 'ipv6', '::', int(port)
    if host.startswith('['):
        return 'ipv6', host[1:-1].split('%', 1)[0], int(port)
    return 'ipv4', host, int(port)


def parse_ss(output):
    """Return a list of dicts: protocol, family, address, port, inode, v6only, pids (sorted tuple)."""
    entries = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        family, address, port = parse_local(fields[4])
        inode = _INODE.search(line)
        v6only = _V6ONLY.search(line)
        entries.append({
            'protocol': fields[0], 'family': family, 'address': address, 'port': port,
            'inode': int(inode.group(1)) if inode else None,
            'v6only': (v6only.group(1) == '1') if v6only and family == 'ipv6' else None,
            'pids': tuple(sorted(set(int(pid) for pid in _PIDS.findall(line)))),
        })
    return entries
