# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Gather step, NAT: the host ports that DNAT and REDIRECT rules publish (``exposures``), with honest coverage.

Pure standard library. Docker with ``userland-proxy: false``, netavark and kube-proxy publish ports with
DNAT in the nat prerouting path, with no listening socket on the host: the socket tables alone would call
such a host clean. The parsers here are pure functions over the tools' text (``nft -j list table``/``ruleset``,
``iptables-save -t nat``); ``read_nat`` finds and runs the tools (an environment it controls, a timeout) and
says in the coverage which sources it read and which table it could not.

How it knows which tables exist without the tools: ``/proc/net/ip_tables_names`` (and ``ip6_tables_names``)
list the legacy x_tables of this network namespace, and a netlink dump (NFT_MSG_GETTABLE) lists its
nftables tables. A table that exists and cannot be read makes the coverage partial; no table at all is
complete, with a note saying how that is known.

Reading is conservative: a match that cannot be understood, a RETURN or an ACCEPT before a DNAT never
narrows what the DNAT is taken to publish (the exposure may be reported broader than the kernel applies it,
never smaller). A chain that no nat hook reaches publishes nothing; it is listed in the coverage.
"""

from __future__ import annotations

import functools
import gc
import ipaddress
import json
import operator
import os
import re
import shlex
import socket
import struct
import subprocess
import time

PROTOCOLS = ('tcp', 'udp')
FAMILIES = ('ipv4', 'ipv6')
NAT_MODES = ('auto', 'off')
HOOKS = ('prerouting', 'output')  # where DNAT and REDIRECT apply: traffic arriving, and the host's own
SEARCH_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'
TIMEOUT = 10.0
MAX_RULE_TEXT = 300
MAX_CONDITIONS = 8
FULL_RANGE = ((0, 65535),)
# The tables iptables-nft creates: read through iptables-nft-save when it is installed (nft shows its
# matches and targets only as ``xt`` expressions, without their arguments).
IPTABLES_TABLE_NAMES = frozenset(('filter', 'nat', 'mangle', 'raw', 'security'))
_ANY = {'ipv4': '0.0.0.0', 'ipv6': '::'}
_FAMILY_OF_TABLE = {'ip': ('ipv4',), 'ip6': ('ipv6',), 'inet': FAMILIES}
_NFT_FAMILY = {'ip': 'ipv4', 'ip6': 'ipv6'}


class NatParseError(ValueError):
    """A tool's output that is not what the tool writes."""


# ---- shared: the constraints along a path from a nat hook to a rule -----------------------------------------

def _intersect(first, second):
    """The intersection of two lists of inclusive port ranges (None: every port)."""
    if first is None:
        return second
    if second is None:
        return first
    found = []
    for low, high in first:
        for other_low, other_high in second:
            start, end = max(low, other_low), min(high, other_high)
            if start <= end:
                found.append((start, end))
    return sorted(set(found))


class _Path(object):
    """What a packet must be to reach a rule: protocols, destination ports, address, in-interface, family."""

    __slots__ = ('address', 'conditions', 'families', 'interface', 'ports', 'protocols')

    def __init__(self, families):
        self.protocols = None
        self.ports = None
        self.address = None
        self.interface = None
        self.families = families
        self.conditions = ()

    def narrowed(self, match):
        """This path and a rule's own matches (a _Path of them), or None when no packet passes both."""
        protocols = match.protocols if self.protocols is None else (
            self.protocols if match.protocols is None else self.protocols & match.protocols)
        if protocols is not None and not protocols:
            return None
        ports = _intersect(self.ports, match.ports)
        if ports == []:
            return None
        families = self.families if match.families is None else tuple(f for f in self.families if f in match.families)
        if not families:
            return None
        path = _Path(families)
        path.protocols = protocols
        path.ports = ports
        path.address = match.address or self.address
        path.interface = match.interface or self.interface
        conditions = self.conditions
        if match.conditions:  # thousands of rules along one path: only new conditions cost a copy
            conditions = (conditions + tuple(c for c in match.conditions if c not in conditions))[:MAX_CONDITIONS]
        path.conditions = conditions
        return path

    def admits(self, match):
        """Whether some packet passes both this path and ``match`` (narrowed is not None), without building the path."""
        if self.protocols is not None and match.protocols is not None and not self.protocols & match.protocols:
            return False
        if not self.families if match.families is None else not any(f in match.families for f in self.families):
            return False
        return _intersect(self.ports, match.ports) != []


def _clean(text):
    """A rule's text as it is kept in the result: controls escaped, cut to MAX_RULE_TEXT."""
    if text.isprintable():  # the common case, in one C call
        return text if len(text) <= MAX_RULE_TEXT else text[:MAX_RULE_TEXT] + '...'
    text = ''.join(ch if ch.isprintable() else '\\x%02x' % ord(ch) if ord(ch) < 0x100 else '\\u%04x' % (ord(ch) & 0xffff)
                   for ch in text)
    return text if len(text) <= MAX_RULE_TEXT else text[:MAX_RULE_TEXT] + '...'


@functools.lru_cache(maxsize=4096)
def _address_of(value, family):
    """``(family, address)`` of a destination match: an address for a single host, else the network. Memoised: a
    pure function of its text, and Docker repeats a handful of addresses over thousands of rules."""
    network = ipaddress.ip_network(value, strict=False)
    found = 'ipv%d' % network.version
    if family is not None and found != family:
        raise ValueError('%s is not an %s address' % (value, family))
    if network.prefixlen == network.max_prefixlen:
        return found, str(network.network_address)
    if network.prefixlen == 0:
        return found, None
    return found, str(network)


def _exposures(path, action, target, hook, where):
    """The exposure records a DNAT or REDIRECT reached along ``path`` gives: one per protocol, family and range."""
    source, table, chain, text = where
    found = []
    protocols = sorted(path.protocols) if path.protocols is not None else list(PROTOCOLS)
    for protocol in protocols:
        if protocol not in PROTOCOLS:
            continue
        for family in path.families:
            if target.get('family') not in (None, family):
                continue
            address = path.address
            # path.address comes from _address_of (str of an address or network): a ':' is IPv6, as ipaddress says.
            if address is not None and (':' in address) != (family == 'ipv6'):
                continue
            for low, high in path.ports or FULL_RANGE:
                found.append({
                    'protocol': protocol, 'family': family, 'address': address or _ANY[family],
                    'port': low, 'port_end': high, 'action': action, 'hooks': [hook],
                    'interface': path.interface,
                    'target': {'address': target.get('address'), 'port': target.get('port'),
                               'port_end': target.get('port_end')},
                    'source': source, 'table': table, 'chain': chain, 'rule': text,
                    'conditions': list(path.conditions), 'owner': None,
                })
    return found


def _walk(chains, bases, families, where_of):
    """Follow every path from the nat base chains; ``chains`` maps a name to ``[(match, verdict, text)]``, where
    verdict is ``('jump', [names])``, ``('dnat', target)``, ``('redirect', target)`` or None. Returns
    ``(exposures, reached)``: each rule's exposures once (its hooks merged), and the chains reached."""
    found = {}
    order = []
    reached = set()
    for hook, base in bases:
        seen = set()
        stack = [(base, _Path(families))]
        while stack:
            name, path = stack.pop()
            if name in seen or name not in chains:  # a jump loop (the kernel refuses one) is followed once
                continue
            seen.add(name)
            reached.add(name)
            later = []
            protocols, ports, conditions = path.protocols, path.ports, path.conditions
            for index, (match, verdict, text) in enumerate(chains[name]):
                if match.__class__ is _Published:
                    # Thousands of Docker's lines: path.admits, path.narrowed and _exposures in one step (one protocol,
                    # one port, no family, no condition: at most one record per family; the unit tests hold it to them).
                    port = match.port
                    if protocols is not None and match.protocol not in protocols:
                        continue  # narrowed is None
                    if ports is not None:
                        for low, high in ports:
                            if low <= port <= high:
                                break
                        else:
                            continue  # narrowed is None
                    key = (name, index)
                    records = found.get(key)
                    if records is not None:  # reached from another hook too (Docker: PREROUTING and OUTPUT)
                        for item in records:
                            if hook not in item['hooks']:
                                item['hooks'].append(hook)
                        continue
                    records = found[key] = []
                    order.append(key)
                    target = verdict[1]
                    address = match.address or path.address
                    for family in path.families:
                        if target['family'] not in (None, family) or (
                                address is not None and (':' in address) != (family == 'ipv6')):
                            continue
                        source, table, chain, rule = where_of(name, text)
                        records.append({
                            'protocol': match.protocol, 'family': family, 'address': address or _ANY[family],
                            'port': port, 'port_end': port, 'action': 'dnat', 'hooks': [hook],
                            'interface': match.interface or path.interface,
                            'target': {'address': target['address'], 'port': target['port'],
                                       'port_end': target['port_end']},
                            'source': source, 'table': table, 'chain': chain, 'rule': rule,
                            'conditions': list(conditions), 'owner': None,
                        })
                    continue
                if verdict is None:
                    continue
                kind, value = verdict
                key = (name, index)
                if kind != 'jump' and key in found:  # reached from another hook too (Docker: PREROUTING and OUTPUT)
                    if path.admits(match):
                        for item in found[key]:
                            if hook not in item['hooks']:
                                item['hooks'].append(hook)
                    continue
                narrowed = path.narrowed(match)
                if narrowed is None:
                    continue
                if kind == 'jump':
                    later.extend((target, narrowed) for target in value)
                    continue
                found[key] = _exposures(narrowed, kind, value, hook, where_of(name, text))
                order.append(key)
            stack.extend(reversed(later))
    return [item for key in order for item in found[key]], reached


def _unreachable(chains, reached, label):
    """The chains no nat hook reaches that hold a DNAT or REDIRECT: they publish nothing until a jump is added."""
    return ['%s chain %s' % (label, name) for name in sorted(chains) if name not in reached
            and any(verdict is not None and verdict[0] != 'jump' for _match, verdict, _text in chains[name])]


# ---- iptables-save -t nat ---------------------------------------------------------------------------------

class _Match(object):
    __slots__ = ('address', 'conditions', 'families', 'interface', 'ports', 'protocols')

    def __init__(self):
        self.protocols = None
        self.ports = None
        self.address = None
        self.interface = None
        self.families = None
        self.conditions = []


class _Published(_Match):
    """The match of a Docker-style publishing line (_ipt_publish): one protocol, one port, an address and an
    in-interface or not, no family and no condition; _walk reads its DNAT in one step. ``protocol`` and ``port``:
    the one protocol and port, as _walk reads them."""
    __slots__ = ('port', 'protocol')
    # _Match's other fields, derived when read (only the unit tests and a general reader do): four fewer per line.
    protocols = property(lambda self: _ONE_PROTOCOL[self.protocol])
    ports = property(lambda self: [(self.port, self.port)])
    families = property(lambda self: None)
    conditions = property(lambda self: [])

    def __init__(self, protocol, port, address, interface):  # pylint: disable=super-init-not-called
        self.protocol = protocol
        self.port = port
        self.address = address
        self.interface = interface


def _port_range(text, separator=':'):
    low, _sep, high = text.partition(separator)
    low, high = int(low), int(high or low)
    if not 0 <= low <= high <= 65535:
        raise ValueError('port range %s' % text)
    return low, high


def _ipt_target(text, family):
    """``--to-destination`` of DNAT: ``ADDR[-ADDR][:PORT[-PORT]]``, ``[ADDR]:PORT`` for IPv6."""
    if family == 'ipv6' and text.startswith('['):
        address, _sep, rest = text[1:].partition(']')
        ports = rest[1:] if rest.startswith(':') else ''
    elif family == 'ipv6' and text.count(':') > 1:
        address, ports = text, ''
    else:
        address, _sep, ports = text.partition(':')
    first = address.split('-')[0]
    if first:
        try:
            socket.inet_pton(socket.AF_INET6 if family == 'ipv6' else socket.AF_INET, first)  # C: ipaddress is 10x slower
        except OSError:
            raise ValueError('--to-destination %s is not ADDRESS[-ADDRESS][:PORT[-PORT]]' % text) from None
    target = {'address': first or None, 'family': family}
    if '-' in address:
        target['address_end'] = address.split('-', 1)[1]
    if ports:
        target['port'], target['port_end'] = _port_range(ports, '-')
    else:
        target['port'] = target['port_end'] = None
    return target


_IPT_TERMINAL = frozenset(('ACCEPT', 'RETURN', 'DROP', 'MASQUERADE', 'SNAT', 'MARK', 'LOG', 'CONNMARK', 'TRACE', 'CT'))


_IPT_OPTIONS = {
    '-p': 'protocol', '--protocol': 'protocol',
    '--dport': 'ports', '--destination-port': 'ports', '--dports': 'ports', '--destination-ports': 'ports',
    '-d': 'address', '--destination': 'address', '-i': 'interface', '--in-interface': 'interface',
    '-j': 'target', '--jump': 'target', '-g': 'target', '--goto': 'target',
    '--to-destination': 'dnat', '--to-ports': 'redirect', '--dst-type': 'dst-type',
    '-m': None, '--match': None, '--comment': None,
}


def _ipt_rule(tokens, family):
    """One ``-A`` line's tokens (without ``-A CHAIN``): ``(match, verdict)``."""
    match = _Match()
    verdict = None
    target_name = None
    negate = False
    index = 0
    count = len(tokens)
    options = _IPT_OPTIONS
    while index < count:
        token = tokens[index]
        index += 1
        if token == '!':
            negate = True
            continue
        value = tokens[index] if index < count else None
        takes = value is not None and value != '!' and value[:1] != '-'
        if takes and token[:1] == '-':
            index += 1
        kind = options.get(token, 'other') if takes else 'other'
        if kind is None:
            pass
        elif negate and kind in ('protocol', 'ports', 'address'):
            match.conditions.append('! %s %s' % (token, value))  # a negation never narrows what is published
        elif kind == 'protocol':
            if value in PROTOCOLS:
                match.protocols = frozenset((value,))
            elif value not in ('all', '0'):
                match.protocols = frozenset()  # sctp, icmp...: no tcp or udp port is published
        elif kind == 'ports':
            if value.isdigit() and int(value) <= 65535:  # one port: the common case
                match.ports = [(int(value), int(value))]
            else:
                match.ports = sorted(set(_port_range(item) for item in value.split(',')))
        elif kind == 'address':
            _family, match.address = _address_of(value, family)
        elif kind == 'interface':
            match.interface = ('!' if negate else '') + value
        elif kind == 'target':
            target_name = value
        elif kind == 'dnat':
            verdict = ('dnat', _ipt_target(value, family))
        elif kind == 'redirect':
            low, high = _port_range(value, '-')
            verdict = ('redirect', {'address': None, 'port': low, 'port_end': high, 'family': family})
        elif kind == 'dst-type':
            match.conditions.append('%sdst-type %s' % ('! ' if negate else '', value))
        elif token[:1] == '-' and not token.startswith('--to'):
            match.conditions.append(('! ' if negate else '') + token + (' ' + value if takes else ''))
        negate = False
    if target_name == 'DNAT':
        if verdict is None or verdict[0] != 'dnat':
            raise ValueError('DNAT without --to-destination')
        return match, verdict
    if target_name == 'REDIRECT':
        return match, verdict or ('redirect', {'address': None, 'port': None, 'port_end': None, 'family': family})
    if target_name == 'NETMAP':  # maps the destination network: every port of it, to an address not read here
        return match, ('dnat', {'address': '?', 'port': None, 'port_end': None, 'family': family})
    if target_name is None or target_name in _IPT_TERMINAL:
        return match, None
    return match, ('jump', [target_name])


# The line Docker (and docker-proxy-less publishing) writes for each published port, read in one compiled match; any
# other line, or one that differs in a space or a quote, takes _ipt_rule. Both give the same (match, verdict): the
# unit tests hold them to it. Values never start with '-' or '!' and hold no quote or backslash (shlex's cases).
_VALUE = r'[^\s"\'\\!-][^\s"\'\\]*'
_IPT_PUBLISH = re.compile(r'-A (%s)(?: -d (%s))?(?: (! )?-i (%s))? -p (tcp|udp) -m (?:tcp|udp) --dport ([0-9]{1,5}) '
                          r'-j DNAT --to-destination ([0-9.]+):([0-9]{1,5})' % ((_VALUE,) * 3), re.ASCII)
_ONE_PROTOCOL = {'tcp': frozenset(('tcp',)), 'udp': frozenset(('udp',))}


def _ipt_publish(line, family):
    """``(chain, match, verdict)`` of a Docker-style publishing line, or None for _ipt_rule to read."""
    if family != 'ipv4':
        return None
    found = _IPT_PUBLISH.fullmatch(line)
    if found is None:
        return None
    chain, address, negate, interface, protocol, port, target, target_port = found.groups()
    port, target_port = int(port), int(target_port)
    if port > 65535 or target_port > 65535:
        return None  # _ipt_rule reads it, or names the line
    try:
        socket.inet_pton(socket.AF_INET, target)
    except OSError:
        return None
    if address is not None:
        address = _address_of(address, family)[1]
    if interface is not None and negate:
        interface = '!' + interface
    return chain, _Published(protocol, port, address, interface), \
        ('dnat', {'address': target, 'family': family, 'port': target_port, 'port_end': target_port})


def parse_iptables_save(text, family, source):
    """Exposures of the ``*nat`` table in ``iptables-save`` output, and the unreachable chains with a DNAT.

    Returns ``(exposures, unreachable, found)``; ``found`` tells whether the output had a nat table at all.
    Raises NatParseError naming the line it could not read."""
    chains = {}
    in_nat = False
    found = False
    publish = _ipt_publish
    fast = family == 'ipv4'  # _ipt_publish takes no other
    for number, raw in enumerate(text.splitlines(), 1):
        if in_nat and fast and raw[:3] == '-A ':  # the fast path first: a line it takes has no space to strip
            try:
                published = publish(raw, family)
            except ValueError as exc:
                raise NatParseError('line %d: %s: %s' % (number, exc, _clean(raw[:80]))) from exc
            if published is not None:
                name, match, verdict = published
                rules = chains.get(name)
                if rules is None:
                    rules = chains[name] = []
                rules.append((match, verdict, raw if len(raw) <= MAX_RULE_TEXT and raw.isprintable() else _clean(raw)))
                continue
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        if line.startswith('*'):
            in_nat = line == '*nat'
            found = found or in_nat
            continue
        if not in_nat:
            continue
        if line == 'COMMIT':
            in_nat = False
            continue
        try:
            if line.startswith(':'):
                chains.setdefault(line[1:].split()[0], [])
                continue
            published = publish(line, family) if line.startswith('-A ') and line != raw else None
            if published is not None:
                name, match, verdict = published
            else:
                # shlex is slow (a 5,000-rule table: 1 s); iptables-save quotes only where a value needs it.
                tokens = shlex.split(line) if '"' in line or "'" in line or '\\' in line else line.split()
                if len(tokens) < 2 or tokens[0] not in ('-A', '--append'):
                    raise ValueError('expected -A CHAIN or :CHAIN')
                name = tokens[1]
                match, verdict = _ipt_rule(tokens[2:], family)
        except ValueError as exc:
            raise NatParseError('line %d: %s: %s' % (number, exc, _clean(line[:80]))) from exc
        chains.setdefault(name, []).append((match, verdict, _clean(line)))
    table = '%s nat' % ('ip' if family == 'ipv4' else 'ip6')
    exposures, reached = _walk(chains, [('prerouting', 'PREROUTING'), ('output', 'OUTPUT')], (family,),
                               lambda chain, rule: (source, table, chain, rule))
    return exposures, _unreachable(chains, reached, '%s %s' % (source, table)), found


# ---- nft -j list ruleset ----------------------------------------------------------------------------------

def _nft_values(right, sets):
    """A match's right side as a list of values (ints, strings, ``('range', a, b)``, ``('prefix', net)``)."""
    if isinstance(right, (int, str)) and not isinstance(right, bool):
        if isinstance(right, str) and right.startswith('@'):
            if right[1:] not in sets:
                raise ValueError('set %s is not in the ruleset' % right)
            return _nft_values({'set': sets[right[1:]]}, {})
        return [right]
    if isinstance(right, dict):
        if 'range' in right and isinstance(right['range'], list) and len(right['range']) == 2:
            return [('range',) + tuple(right['range'])]
        if 'prefix' in right and isinstance(right['prefix'], dict):
            return [('prefix', '%s/%s' % (right['prefix'].get('addr'), right['prefix'].get('len')))]
        if 'set' in right:
            values = []
            for item in right['set'] if isinstance(right['set'], list) else [right['set']]:
                values.extend(_nft_values(item.get('elem', {}).get('val') if isinstance(item, dict) and 'elem' in item
                                          else item, sets))
            return values
    raise ValueError('cannot read %s' % json.dumps(right)[:80])


def _nft_ports(values):
    ports = []
    for value in values:
        if isinstance(value, tuple) and value[0] == 'range':
            low, high = int(value[1]), int(value[2])
        else:
            low = high = int(value)
        if not 0 <= low <= high <= 65535:
            raise ValueError('port %s' % (value,))
        ports.append((low, high))
    return sorted(set(ports))


def _nft_match(expr, match, sets):
    """Narrow ``match`` by one nft ``match`` expression; what it cannot read is kept as a condition."""
    op = expr.get('op', '==')
    left = expr.get('left')
    right = expr.get('right')
    text = _nft_text(left, op, right)
    if not isinstance(left, dict):
        match.conditions.append(text)
        return
    payload = left.get('payload') if isinstance(left.get('payload'), dict) else None
    meta = left.get('meta') if isinstance(left.get('meta'), dict) else None
    try:
        if payload is not None and payload.get('field') == 'dport' and payload.get('protocol') in PROTOCOLS and op == '!=':
            # ``tcp dport != 22`` still matches tcp only (nft adds the l4proto dependency); every other port stays in.
            match.protocols = frozenset((payload['protocol'],)) if match.protocols is None else \
                match.protocols & {payload['protocol']}
            match.conditions.append(text)
            return
        if op in ('==', 'in') and payload is not None and payload.get('field') == 'dport':
            protocol = payload.get('protocol')
            if protocol in PROTOCOLS:
                match.protocols = frozenset((protocol,)) if match.protocols is None else match.protocols & {protocol}
            elif protocol != 'th':
                match.protocols = frozenset()
            match.ports = _intersect(match.ports, _nft_ports(_nft_values(right, sets)))
            return
        if op in ('==', 'in') and meta is not None and meta.get('key') == 'l4proto':
            values = set(str(value) for value in _nft_values(right, sets))
            values = set({'6': 'tcp', '17': 'udp'}.get(value, value) for value in values)
            match.protocols = frozenset(values) if match.protocols is None else match.protocols & values
            return
        if op in ('==', 'in') and meta is not None and meta.get('key') == 'nfproto':
            match.families = tuple(family for family in FAMILIES
                                   if {'ipv4': 'ipv4', 'ipv6': 'ipv6'}[family] in _nft_values(right, sets))
            return
        if payload is not None and payload.get('field') == 'daddr' and payload.get('protocol') in ('ip', 'ip6'):
            family = _NFT_FAMILY[payload['protocol']]
            match.families = (family,)
            values = _nft_values(right, sets)
            if op in ('==', 'in') and len(values) == 1:
                value = values[0][1] if isinstance(values[0], tuple) and values[0][0] == 'prefix' else values[0]
                if isinstance(value, str):
                    _family, match.address = _address_of(value, family)
                    return
            match.conditions.append(text)
            return
        if payload is not None and payload.get('protocol') in ('ip', 'ip6'):
            match.families = (_NFT_FAMILY[payload['protocol']],)
        if meta is not None and meta.get('key') in ('iifname', 'iif') and isinstance(right, str):
            match.interface = ('!' if op == '!=' else '') + right
            return
    except (ValueError, TypeError, KeyError) as exc:
        match.conditions.append('%s (not read: %s)' % (text, exc))
        return
    match.conditions.append(text)


def _nft_text(left, op, right):
    def show(value):
        if isinstance(value, dict) and len(value) == 1:
            key, inner = next(iter(value.items()))
            if key == 'payload' and isinstance(inner, dict):
                return '%s %s' % (inner.get('protocol'), inner.get('field'))
            if key in ('meta', 'ct') and isinstance(inner, dict):
                return '%s %s' % (key, inner.get('key'))
            if key == 'fib' and isinstance(inner, dict):
                return 'fib %s %s' % (' . '.join(str(flag) for flag in inner.get('flags') or []), inner.get('result'))
        return json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return _clean('%s %s %s' % (show(left), op, show(right)))[:120]


def _nft_target(statement, family):
    """A ``dnat``/``redirect`` statement's target; a map or an expression is an unknown address or port."""
    target = {'address': None, 'port': None, 'port_end': None, 'family': _NFT_FAMILY.get(statement.get('family'), family)}
    address = statement.get('addr')
    if isinstance(address, str):
        ipaddress.ip_address(address)
        target['family'] = 'ipv%d' % ipaddress.ip_address(address).version
        target['address'] = address
    elif isinstance(address, dict) and isinstance(address.get('range'), list):
        target['address'] = str(address['range'][0])
    elif address is not None:
        target['address'] = '?'
    port = statement.get('port')
    if isinstance(port, int) and not isinstance(port, bool):
        target['port'] = target['port_end'] = port
    elif isinstance(port, dict) and isinstance(port.get('range'), list) and len(port['range']) == 2:
        target['port'], target['port_end'] = int(port['range'][0]), int(port['range'][1])
    elif port is not None:
        target['port'] = None
    return target


def _nft_rule(exprs, family, sets, compat):
    """One nft rule's expressions: ``(match, verdict)``. A DNAT written by iptables-nft (an ``xt`` target)
    has no target to read: it goes to ``compat``."""
    match = _Match()
    verdict = None
    for expr in exprs if isinstance(exprs, list) else []:
        if not isinstance(expr, dict) or len(expr) != 1:
            continue
        kind, body = next(iter(expr.items()))
        if kind == 'match' and isinstance(body, dict):
            _nft_match(body, match, sets)
        elif kind in ('jump', 'goto') and isinstance(body, dict) and isinstance(body.get('target'), str):
            verdict = ('jump', [body['target']])
        elif kind == 'dnat' and isinstance(body, dict):
            verdict = ('dnat', _nft_target(body, family))
        elif kind == 'redirect':
            target = _nft_target(body if isinstance(body, dict) else {}, family)
            target['address'] = None
            verdict = ('redirect', target)
        elif kind == 'xt' and isinstance(body, dict):
            if body.get('type') == 'target' and body.get('name') in ('DNAT', 'REDIRECT', 'NETMAP'):
                compat.append(body.get('name'))
                verdict = ('dnat', {'address': '?', 'port': None, 'port_end': None, 'family': None})
            elif body.get('type') == 'match':
                match.conditions.append('xt match %s' % _clean(str(body.get('name')))[:40])
        elif kind == 'vmap' and isinstance(body, dict):
            # A verdict map (kube-proxy's nftables mode): every chain it can jump to is reached, by any key.
            data = body.get('data')
            if isinstance(data, str) and data.startswith('@'):
                data = sets.get(data[1:], [])
            targets = sorted(set(_verdict_targets(data)))
            match.conditions.append('vmap %s' % _nft_text(body.get('key'), 'in', 'map')[:60])
            verdict = ('jump', targets)
    return match, verdict


def _verdict_targets(value, depth=0):
    """Every ``jump``/``goto`` target inside a map's elements."""
    if depth > 8:
        return []
    if isinstance(value, dict):
        for kind in ('jump', 'goto'):
            if isinstance(value.get(kind), dict) and isinstance(value[kind].get('target'), str):
                return [value[kind]['target']]
        return [target for inner in value.values() for target in _verdict_targets(inner, depth + 1)]
    if isinstance(value, list):
        return [target for inner in value for target in _verdict_targets(inner, depth + 1)]
    return []


def parse_nft_ruleset(text, skip=()):
    """Exposures in ``nft -j list ruleset`` output. ``skip``: ``(family, table)`` pairs read by another tool.

    Returns ``(exposures, unreachable, tables, compat)``: ``tables`` every table named ``family name``, and
    ``compat`` the tables holding a DNAT only iptables-nft can read. Raises NatParseError."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise NatParseError('not JSON: %s' % exc) from exc
    items = data.get('nftables') if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise NatParseError('expected {"nftables": [...]}')
    tables = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or len(item) != 1:
            raise NatParseError('nftables[%d]: expected one object' % index)
        kind, body = next(iter(item.items()))
        if kind == 'metainfo':
            continue
        if not isinstance(body, dict) or not isinstance(body.get('family'), str):
            raise NatParseError('nftables[%d].%s: expected an object with a family' % (index, kind))
        name = body.get('table') if kind != 'table' else body.get('name')
        if not isinstance(name, str):
            raise NatParseError('nftables[%d].%s: expected a table name' % (index, kind))
        table = tables.setdefault((body['family'], name), {'bases': [], 'chains': {}, 'rules': [], 'sets': {}})
        if kind == 'chain':
            if not isinstance(body.get('name'), str):
                raise NatParseError('nftables[%d].chain: expected a name' % index)
            table['chains'].setdefault(body['name'], [])
            if body.get('type') == 'nat' and body.get('hook') in HOOKS:
                table['bases'].append((body['hook'], body['name']))
        elif kind in ('set', 'map'):
            table['sets'][body.get('name')] = body.get('elem') or []
        elif kind == 'rule':
            if not isinstance(body.get('chain'), str) or not isinstance(body.get('expr'), list):
                raise NatParseError('nftables[%d].rule: expected a chain and an expr list' % index)
            table['rules'].append(body)
    exposures = []
    unreachable = []
    compat_tables = []
    for (family, name), table in sorted(tables.items()):
        if (family, name) in skip or family not in _FAMILY_OF_TABLE:
            continue
        chains = table['chains']
        compat = []
        for rule in table['rules']:
            match, verdict = _nft_rule(rule['expr'], _NFT_FAMILY.get(family), table['sets'], compat)
            chains.setdefault(rule['chain'], []).append((match, verdict, _nft_rule_text(rule)))
        if compat:
            compat_tables.append('%s %s' % (family, name))
        label = '%s %s' % (family, name)
        found, reached = _walk(chains, table['bases'], _FAMILY_OF_TABLE[family],
                               lambda chain, rule, label=label: ('nft', label, chain, rule))
        exposures.extend(found)
        unreachable.extend(_unreachable(chains, reached, 'nft ' + label))
    return exposures, unreachable, ['%s %s' % key for key in sorted(tables)], compat_tables


def _nft_rule_text(rule):
    parts = []
    for expr in rule.get('expr') or []:
        if isinstance(expr, dict) and len(expr) == 1:
            kind, body = next(iter(expr.items()))
            if kind == 'counter':
                continue
            if kind == 'match' and isinstance(body, dict):
                parts.append(_nft_text(body.get('left'), body.get('op', '=='), body.get('right')))
            elif kind in ('dnat', 'redirect', 'jump', 'goto', 'xt') and isinstance(body, dict):
                parts.append('%s %s' % (kind, ' '.join('%s' % (v,) for k, v in sorted(body.items()) if k != 'family')))
            else:
                parts.append(kind)
    return _clean(' '.join(parts))


# ---- which tables exist ---------------------------------------------------------------------------------

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETTABLE = 1
NFT_MSG_NEWTABLE = 0
NFTA_TABLE_NAME = 1
_NLMSGHDR = struct.Struct('=IHHII')
_NFGENMSG = struct.Struct('=BBH')
_ATTR = struct.Struct('=HH')
_NFT_FAMILY_NAMES = {1: 'inet', 2: 'ip', 3: 'arp', 5: 'netdev', 7: 'bridge', 10: 'ip6'}


def decode_tables(data, tables):
    """Decode one buffer of an NFT_MSG_GETTABLE dump into ``tables`` (``family name`` strings); True when done."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, msg_type, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            raise OSError('malformed netlink message')
        if msg_type == 3:  # NLMSG_DONE
            return True
        if msg_type == 2:  # NLMSG_ERROR
            code = -struct.unpack_from('=i', data, offset + _NLMSGHDR.size)[0]
            if code:
                raise OSError(code, os.strerror(code))
        elif msg_type == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE:
            family = _NFGENMSG.unpack_from(data, offset + _NLMSGHDR.size)[0]
            attr = offset + _NLMSGHDR.size + _NFGENMSG.size
            while attr + _ATTR.size <= offset + length:
                attr_len, attr_type = _ATTR.unpack_from(data, attr)
                if attr_len < _ATTR.size:
                    break
                if attr_type & 0x7fff == NFTA_TABLE_NAME:
                    name = data[attr + _ATTR.size:attr + attr_len].split(b'\0')[0].decode('utf-8', 'replace')
                    tables.append('%s %s' % (_NFT_FAMILY_NAMES.get(family, str(family)), name))
                attr += (attr_len + 3) & ~3
        offset += (length + 3) & ~3
    return False


def list_nft_tables():
    """The nftables tables of this network namespace (``family name``), from the kernel. Raises OSError."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
    try:
        sock.settimeout(TIMEOUT)
        body = _NFGENMSG.pack(0, 0, 0)
        sock.sendall(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE,
                                    0x1 | 0x300, 1, 0) + body)
        tables = []
        while not decode_tables(sock.recv(65536), tables):
            pass
        return sorted(tables)
    finally:
        sock.close()


def legacy_tables(family, proc_net='/proc/net'):
    """The legacy x_tables of this namespace for one family (``/proc/net/ip_tables_names``); None when the file does
    not exist (x_tables not loaded: no legacy table). Raises OSError when it exists and cannot be read (0440 root)."""
    name = 'ip_tables_names' if family == 'ipv4' else 'ip6_tables_names'
    try:
        with open(os.path.join(proc_net, name)) as handle:
            return set(handle.read().split())
    except FileNotFoundError:
        return None


# ---- running the tools ------------------------------------------------------------------------------------

def find_tool(name, search_path=SEARCH_PATH):
    for directory in search_path.split(':'):
        path = os.path.join(directory, name)
        if directory and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


class ToolFailed(Exception):
    """A NAT tool that ran and gave no usable answer."""


class ToolTimedOut(ToolFailed):
    """A NAT tool killed at its deadline."""


def start_tool(path, args, search_path=SEARCH_PATH):
    """Start one tool with an empty environment (PATH ``search_path``, LC_ALL=C) in a process group of its own."""
    # Not AnsibleModule.run_command (ansible-test 2.21 asks for it in module_utils): this core also runs in the CLI,
    # without a module, and the tool needs a process group of its own that a deadline can kill whole.
    try:
        proc = subprocess.Popen([path] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,  # pylint: disable=ansible-bad-function
                                stderr=subprocess.PIPE, env={'PATH': search_path, 'LC_ALL': 'C'}, close_fds=True,
                                start_new_session=True)
    except OSError as exc:
        raise ToolFailed('cannot run %s: %s' % (path, exc)) from exc
    _widen_pipe(proc.stdout)
    return proc


F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ (Linux 2.6.35; the fcntl module names it from Python 3.10)
PIPE_SIZE = 1 << 20  # /proc/sys/fs/pipe-max-size's default: iptables-save of ~8,000 Docker rules


def _widen_pipe(stream):
    """Let a tool started early write its whole output while the caller gathers the sockets: a pipe holds 64 KiB, and a
    tool that fills it waits, unseen, until finish_tool reads (5,000 rules: 450 KiB, the tool's last 10 ms done late).
    Best effort: another system, or a lower pipe-max-size, keeps the pipe as it is."""
    try:
        import fcntl  # pylint: disable=import-outside-toplevel  # POSIX only; the module also imports elsewhere
        fcntl.fcntl(stream.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, OSError, ValueError):
        pass


def _kill(proc):
    try:
        os.killpg(proc.pid, 9)  # the tool and anything it started
    except OSError:
        proc.kill()


def finish_tool(proc, path, args, timeout, deadline=None):
    """The stdout of a started tool that exits 0 by ``deadline`` (monotonic; default: ``timeout`` seconds from now);
    else ToolFailed, the tool and its process group killed."""
    deadline = time.monotonic() + timeout if deadline is None else deadline
    try:
        out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 0.01))
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.communicate()
        raise ToolTimedOut('%s %s did not finish within %g s' % (path, ' '.join(args), timeout)) from None
    if proc.returncode != 0:
        raise ToolFailed('%s %s exited %d: %s' % (path, ' '.join(args), proc.returncode,
                                                  _clean(err.decode('utf-8', 'replace').strip()[:200])))
    return out.decode('utf-8', 'replace')


def run_tool(path, args, search_path=SEARCH_PATH, timeout=TIMEOUT):
    """Run one tool (see start_tool) with a timeout; its stdout."""
    return finish_tool(start_tool(path, args, search_path), path, args, timeout)


class NatRead(object):
    """A read of this network namespace's NAT, started early: the tools it will need run while the caller gathers
    the sockets (on a host with thousands of rules they take as long as the socket gather), and ``finish`` collects
    them. ``nft_tables``: the kernel's table list, given by a caller that has it (tests); else asked over netlink."""

    def __init__(self, search_path=SEARCH_PATH, timeout=TIMEOUT, proc_net='/proc/net', nft_tables=None):
        self.search_path = search_path
        self.timeout = timeout
        self.proc_net = proc_net
        self.errors = []
        self.notes = []
        self.jobs = {}
        if nft_tables is None:
            try:
                nft_tables = list_nft_tables()
            except OSError as exc:
                nft_tables = None
                self.errors.append('nat: cannot list the nftables tables of this host (netlink: %s)%s'
                                   % (exc.strerror or exc, '; not running as root' if os.geteuid() != 0 else ''))
        self.nft_tables = nft_tables
        self.legacy = {}
        for family in FAMILIES:
            try:
                self.legacy[family] = legacy_tables(family, proc_net)
            except OSError as exc:
                self.legacy[family] = None
                self.errors.append('nat: cannot read %s/%s (%s), so whether a legacy %s nat table exists is unknown'
                                   % (proc_net, 'ip_tables_names' if family == 'ipv4' else 'ip6_tables_names',
                                      exc.strerror or exc, 'iptables' if family == 'ipv4' else 'ip6tables'))
        for tool, args in self._planned():
            path = find_tool(tool.split(' ')[0], search_path)
            if path is not None:
                try:
                    self.jobs[tool] = (path, start_tool(path, args, search_path), time.monotonic() + timeout)
                except ToolFailed as exc:
                    self.jobs[tool] = (path, exc, None)

    def _planned(self):
        """The tools the kernel's tables call for (nft also when a table iptables-nft does not own is listed)."""
        tables = self.nft_tables
        for family, tool in (('ipv4', 'iptables-legacy-save'), ('ipv6', 'ip6tables-legacy-save')):
            if 'nat' in (self.legacy.get(family) or ()):
                yield tool, ['-t', 'nat']
        for tool, table in (('iptables-nft-save', 'ip nat'), ('ip6tables-nft-save', 'ip6 nat')):
            if tables is None or table in tables:
                yield tool, ['-t', 'nat']
        read_by_iptables = [table for tool, table in (('iptables-nft-save', 'ip nat'), ('ip6tables-nft-save', 'ip6 nat'))
                            if find_tool(tool, self.search_path)]
        for args in _nft_reads(tables, read_by_iptables):
            yield _nft_job(args), args

    def output(self, tool, path, args):
        """A tool's stdout: the one started early, or run now. Raises ToolFailed."""
        job = self.jobs.pop(tool if tool != 'nft' else _nft_job(args), None)
        if job is None:
            return run_tool(path, args, self.search_path, self.timeout)
        path, proc, deadline = job
        if isinstance(proc, ToolFailed):
            raise proc
        return finish_tool(proc, path, args, self.timeout, deadline)

    def _read_nft(self, nft, reads, skip):
        """``[(args, parse_nft_ruleset's answer)]`` of the nft reads; each failure is an error. A read of one table that
        nft refuses or answers with what is not its JSON (a name its parser takes for a keyword) is made again as the
        whole ruleset; a timeout is not retried."""
        answers = []
        for args in reads:
            try:
                answers.append((args, parse_nft_ruleset(self.output('nft', nft, args), skip)))
            except (ToolFailed, NatParseError) as exc:
                if args == RULESET or isinstance(exc, ToolTimedOut):
                    self.errors.append('nat: nft %s: %s' % (' '.join(args), exc))
                    return []
                return self._read_nft(nft, [RULESET], skip)
        return answers

    def abort(self):
        for _path, proc, _deadline in self.jobs.values():
            if not isinstance(proc, ToolFailed) and proc.poll() is None:
                _kill(proc)
                proc.communicate()
        self.jobs.clear()

    def __del__(self):  # a gather that failed before finish(): no tool outlives it
        try:
            self.abort()
        except Exception:  # pylint: disable=broad-except  # interpreter shutdown: nothing left to clean
            pass

    def finish(self):
        """``(exposures, summary, errors, notes)``; ``summary`` becomes ``coverage['nat']``: ``sources`` (each source
        read), ``tables`` (the nftables tables the kernel lists), ``unreachable`` (chains with a DNAT no hook reaches)."""
        try:
            return self._finish()
        finally:
            self.abort()

    def _finish(self):
        search_path, nft_tables, errors, notes = self.search_path, self.nft_tables, self.errors, self.notes
        exposures = []
        unreachable = []
        sources = {}
        summary = {'mode': 'auto', 'sources': sources, 'tables': list(nft_tables or []), 'unreachable': unreachable,
                   'exposures': 0}
        skip = set()
        # Legacy x_tables: read only a nat table the kernel lists (iptables-legacy-save would create one).
        for family, tool in (('ipv4', 'iptables-legacy-save'), ('ipv6', 'ip6tables-legacy-save')):
            if 'nat' in (self.legacy.get(family) or ()):
                _read_iptables(self, tool, family, 'iptables-legacy', exposures, unreachable, sources)
        # iptables-nft: its nat tables, read through iptables-nft-save (nft shows them without their targets).
        for family, tool, table in (('ipv4', 'iptables-nft-save', 'ip nat'), ('ipv6', 'ip6tables-nft-save', 'ip6 nat')):
            if nft_tables is not None and table not in nft_tables:
                continue
            if find_tool(tool, search_path) is None and nft_tables is not None:
                continue  # nft reads it below, or says what it could not
            if _read_iptables(self, tool, family, 'iptables-nft', exposures, unreachable, sources):
                skip.add(tuple(table.split()))
        if nft_tables is None or nft_tables:
            nft = find_tool('nft', search_path)
            left = [name for name in nft_tables or [] if tuple(name.split()) not in skip]
            if nft is None:
                # iptables-nft's other tables (filter, mangle, raw, security) hold no nat chain; any other table may.
                named = [name for name in left if not (name.split()[1] in IPTABLES_TABLE_NAMES - {'nat'}
                                                       and name.split()[0] in ('ip', 'ip6')
                                                       and find_tool('iptables-nft-save', search_path))]
                if named:
                    errors.append('nat: nftables tables %s exist but nft is not installed (searched %s), so their NAT '
                                  'rules cannot be read' % (', '.join(named), search_path))
                elif nft_tables is None:
                    errors.append('nat: nft is not installed (searched %s) and the nftables tables cannot be listed'
                                  % search_path)
            elif left or nft_tables is None:
                read = 0
                answers = self._read_nft(nft, _nft_reads(nft_tables, skip=[' '.join(pair) for pair in skip]), skip)
                for args, (found, lost, listed, compat) in answers:
                    command = 'nft %s' % ' '.join(args)
                    # The kernel's list is the check: a table nft left out (too old for it, or lying) is not a quiet one.
                    missing = sorted(set(left if args == RULESET else [' '.join(args[3:])]) - set(listed))
                    if missing:
                        errors.append('nat: nftables tables %s are listed by the kernel but not in its output (%s), so '
                                      'their NAT rules were not read' % (', '.join(missing), command))
                    exposures.extend(found)
                    unreachable.extend(lost)
                    read += 1
                    for table in compat:
                        errors.append('nat: nftables table %s holds DNAT rules written by iptables-nft, whose targets nft '
                                      'cannot show, and iptables-nft-save could not read them' % table)
                if read:
                    sources['nft'] = 'read'
                passed = [name for name in left if name.partition(' ')[0] in _NO_NAT_FAMILIES]
                if passed and not answers:
                    notes.append('nat: nftables tables %s are of families without ip NAT (%s), so nft did not list them'
                                 % (', '.join(passed), ', '.join(_NO_NAT_FAMILIES)))
        if not sources and not errors:
            notes.append('nat: no NAT table exists on this host: /proc/net/ip_tables_names and ip6_tables_names list no '
                         'legacy nat table%s' % (' and the kernel lists no nftables table (netlink)' if not nft_tables
                                                 else ' and only nftables tables iptables-nft read'))
        if unreachable:
            notes.append('nat: %d chains hold DNAT or REDIRECT rules that no nat hook reaches, so they publish nothing: %s'
                         % (len(unreachable), ', '.join(unreachable[:10])))
        summary['exposures'] = len(exposures)
        return exposures, summary, errors, notes


MAX_NFT_TABLE_READS = 6
RULESET = ['-j', 'list', 'ruleset']
# nft joins its arguments into one command line and parses it: only a plain identifier is passed as a table name.
_NFT_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_.-]{0,62}', re.ASCII)
_NO_NAT_FAMILIES = ('arp', 'bridge', 'netdev')  # no ip NAT there (parse_nft_ruleset passes them by)


def _nft_reads(tables, skip=()):
    """The nft commands that read the tables another tool does not: one table each (iptables-nft's nat tables, the
    bulk of a Docker host's ruleset, are not listed again), or the whole ruleset when the kernel's list is unknown, too
    long to start a process per table, or names a table that is not a plain identifier."""
    if tables is None:
        return [RULESET]
    reads = []
    for name in tables:
        family, _sep, table = name.partition(' ')
        if name in skip or family in _NO_NAT_FAMILIES:
            continue
        if family not in _FAMILY_OF_TABLE or not _NFT_NAME.fullmatch(table):
            return [RULESET]
        reads.append(['-j', 'list', 'table', family, table])
    return reads if len(reads) <= MAX_NFT_TABLE_READS else [RULESET]


def _nft_job(args):
    return 'nft ' + ' '.join(args[2:])


def read_nat(search_path=SEARCH_PATH, timeout=TIMEOUT, proc_net='/proc/net', nft_tables=None):
    """Read this network namespace's NAT now: ``(exposures, summary, errors, notes)`` (see NatRead.finish)."""
    return NatRead(search_path, timeout, proc_net, nft_tables).finish()


def _read_iptables(reader, tool, family, source, exposures, unreachable, sources):
    """Read one nat table with an iptables-save; True when it was read (nft then leaves that table to it)."""
    errors = reader.errors
    path = find_tool(tool, reader.search_path)
    label = '%s/%s' % (source, family)
    if path is None:
        errors.append('nat: the %s nat table exists but %s is not installed (searched %s)'
                      % (label, tool, reader.search_path))
        return False
    try:
        text = reader.output(tool, path, ['-t', 'nat'])
        found, lost, present = parse_iptables_save(text, family, source)
    except (ToolFailed, NatParseError) as exc:
        errors.append('nat: %s -t nat: %s' % (tool, exc))
        return False
    if not present:
        if source == 'iptables-nft' and 'incompatible' in text:
            # Rules nft wrote into iptables-nft's table: iptables-nft-save refuses the table (exit 0), nft reads it.
            reader.notes.append('nat: %s calls the %s nat table incompatible (rules written by nft); nft reads it instead'
                                % (tool, 'ip' if family == 'ipv4' else 'ip6'))
            return False
        errors.append('nat: %s -t nat printed no nat table though the kernel lists one: %s'
                      % (tool, _clean(text.strip()[:120]) or 'nothing'))
        return False
    exposures.extend(found)
    unreachable.extend(lost)
    sources[label] = 'read'
    return True


# ---- who answers behind a published port ------------------------------------------------------------------

def read_local_addresses(proc_net):
    """The addresses of one network namespace (``/proc/PID/net``): fib_trie's LOCAL entries and if_inet6."""
    found = set()
    try:
        with open(os.path.join(proc_net, 'fib_trie')) as handle:
            last = None
            for line in handle:
                text = line.strip()
                if text.startswith('|-- '):
                    last = text[4:]
                elif text.startswith('/32 host LOCAL') and last:
                    found.add(last)
    except OSError:
        pass
    try:
        with open(os.path.join(proc_net, 'if_inet6')) as handle:
            for line in handle:
                fields = line.split()
                if fields and len(fields[0]) == 32:
                    found.add(str(ipaddress.IPv6Address(int(fields[0], 16))))
    except (OSError, ValueError):
        pass
    return found


_NAMESPACE_KEYS = ('inode', 'host', 'pid', 'container')


class OwnerFinder(object):
    """Tells the owner of each exposure's target from the gather's sockets: the container's namespace (the
    namespace whose addresses hold the target, gathered with namespaces=all), a local listener, or unknown."""

    def __init__(self, sockets, namespaces, proc='/proc'):
        self.proc = proc
        self.sockets = sockets
        self._by_port = None  # built at the first target that needs it: most DNATs go to other namespaces
        self.host_addresses = read_local_addresses(os.path.join(proc, 'self', 'net'))
        self.namespaces = [item for item in (namespaces or {}).get('scanned') or [] if not item.get('host')]
        self.mode = (namespaces or {}).get('mode', 'host')
        self._addresses = {}

    def _namespace_addresses(self, item):
        found = self._addresses.get(item['inode'])
        if found is None:
            found = set()
            pid = item.get('pid')
            # The pid must still be in the namespace: a recycled pid's addresses are another namespace's.
            if pid is not None and _namespace_inode(os.path.join(self.proc, str(pid))) == item['inode']:
                found = read_local_addresses(os.path.join(self.proc, str(pid), 'net'))
                if _namespace_inode(os.path.join(self.proc, str(pid))) != item['inode']:
                    found = set()  # it left while its addresses were read
            self._addresses[item['inode']] = found
        return found

    @property
    def by_port(self):
        if self._by_port is None:
            self._by_port = {}
            for entry in self.sockets:
                namespace = entry.get('namespace')
                inode = None if not namespace or namespace.get('host') else namespace.get('inode')
                self._by_port.setdefault((inode, entry['protocol'], entry['port']), []).append(entry)
        return self._by_port

    def _listeners(self, inode, protocol, port, address):
        wanted = (address, '0.0.0.0', '::') if address else ('0.0.0.0', '::', '127.0.0.1', '::1')
        return [entry for entry in self.by_port.get((inode, protocol, port), ()) if entry['address'] in wanted
                or address is None]

    def owner(self, exposure):
        target = exposure['target']
        address = target['address']
        port = target['port']
        if port is None and exposure['port'] == exposure['port_end']:
            port = exposure['port']  # a DNAT to an address alone keeps the port
        if address == '?':
            return _owner('unknown', None, [], 'the target is not one address (a map, a range or NETMAP)')
        if port is None or target.get('port_end') not in (None, port):
            return _owner('unknown', None, [], 'the target is a port range, so no one listener answers it')
        local = address is None or address in self.host_addresses or _is_loopback(address)
        if local:
            found = self._listeners(None, exposure['protocol'], port, address)
            if found:
                return _owner('local', None, _processes(found), None)
            label = '%s:%s' % (address or 'this host', port)
            return _owner('unknown', None, [], 'nothing listens on %s %s in the host\'s namespace' % (exposure['protocol'], label))
        for item in self.namespaces:
            if address in self._namespace_addresses(item):
                namespace = dict((key, item.get(key)) for key in _NAMESPACE_KEYS)
                found = self._listeners(item['inode'], exposure['protocol'], port, address)
                if found:
                    return _owner('namespace', found[0].get('namespace') or namespace, _processes(found), None)
                return _owner('unknown', namespace, [], 'network namespace %s holds %s but nothing listens on %s %d there'
                              % (item['inode'], address, exposure['protocol'], port))
        # Thousands of DNATs to containers' addresses end here: _owner's dict, built in place.
        if self.mode != 'all':
            return {'kind': 'unknown', 'namespace': None, 'processes': [], 'reason': _NOT_HERE % address}
        return {'kind': 'unknown', 'namespace': None, 'processes': [], 'reason': _NOWHERE % address}


_NOT_HERE = '%s is not an address of this host\'s namespace; gather with namespaces: all to find the namespace behind it'
_NOWHERE = 'no network namespace of this host holds %s (a stale rule, or a target on another machine)'


def _namespace_inode(proc_pid):
    try:
        return os.stat(os.path.join(proc_pid, 'ns', 'net')).st_ino
    except OSError:
        return None


def _is_loopback(address):
    if address.startswith('127.') or address == '::1':  # the common answers without ipaddress (thousands of rules)
        return True
    if ':' not in address or not address.startswith('::ffff:'):
        return False
    return address[7:].startswith('127.')


def _processes(sockets):
    found = []
    seen = set()
    for entry in sockets:
        for proc in entry.get('processes') or ():
            if proc.get('pid') not in seen:
                seen.add(proc.get('pid'))
                found.append(proc)
    return found


def _owner(kind, namespace, processes, reason):
    return {'kind': kind, 'namespace': namespace, 'processes': processes, 'reason': reason}


_EXPOSURE_ORDER = operator.itemgetter('protocol', 'port', 'family', 'address', 'source', 'table', 'chain', 'rule')


def start_read(nat='auto'):
    """A NatRead started now (its tools run while the sockets are gathered), or None with ``nat='off'``."""
    return NatRead() if nat != 'off' else None


def add_exposures(result, started=None):
    """Add ``exposures`` and ``coverage['nat']`` to a gather result (gather_listening_sockets' last step), from a
    read ``started`` by start_read (None: not read, nat: off); an unreadable NAT table is an error in the
    coverage, which is then partial."""
    coverage = result['coverage']
    if started is None:
        result['exposures'] = []
        coverage['nat'] = {'mode': 'off', 'sources': {}, 'tables': [], 'unreachable': [], 'exposures': 0}
        coverage['notes'].append('nat: not read (nat: off, or not Linux): ports published by DNAT or REDIRECT are not seen')
        return result
    # Thousands of exposures are thousands of new containers, none of them in a cycle: each collection they would set
    # off scans the gather's whole heap (every socket) again; the collector resumes after them.
    collecting = gc.isenabled()
    gc.disable()
    try:
        exposures, summary, errors, notes = started.finish()
        finder = OwnerFinder(result['sockets'], coverage.get('namespaces'))
        for exposure in exposures:
            exposure['owner'] = finder.owner(exposure)
        exposures.sort(key=_EXPOSURE_ORDER)
    finally:
        if collecting:
            gc.enable()
    result['exposures'] = exposures
    coverage['nat'] = summary
    coverage['errors'].extend(errors)
    coverage['notes'].extend(notes)
    if (coverage.get('namespaces') or {}).get('mode') == 'all':
        coverage['notes'].append('nat: the NAT of the namespace the gather runs in was read, not that of the other '
                                 'namespaces (their DNAT rules publish ports on their own addresses only)')
    coverage['complete'] = coverage['complete'] and not errors
    return result
