# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Remediate step, firewall strategy: block listening ports with nftables, in a table of our own.

Everything here is pure logic (standard library only); the port_block module runs nft.

The design, one table that nothing else writes to::

    table inet portwarden {
        set tcp_ports    { type inet_service }               # tcp PORT, IPv4 and IPv6
        set tcp_ports_v4 { type inet_service }               # tcp PORT, IPv4 only
        set tcp_ports_v6 { type inet_service }               # tcp PORT, IPv6 only
        set tcp_addr_v4  { type ipv4_addr . inet_service }   # tcp to one IPv4 address and PORT
        set tcp_addr_v6  { type ipv6_addr . inet_service }   # tcp to one IPv6 address and PORT
        (the same five sets for udp)
        chain input {
            type filter hook input priority -10; policy accept;
            tcp dport @tcp_ports drop
            meta nfproto ipv4 tcp dport @tcp_ports_v4 drop
            meta nfproto ipv6 tcp dport @tcp_ports_v6 drop
            ip daddr . tcp dport @tcp_addr_v4 drop
            ip6 daddr . tcp dport @tcp_addr_v6 drop
            (the same five rules for udp)
        }
    }

A block is one set element; the element's comment names the policy rule behind it
(``comment "rule=<id>"``), so the live table says why each port is closed. The rules never
change: adding or lifting a block only adds or removes set elements. The module writes the whole
table in one ``nft -f`` transaction (create it, delete it, create it again with its elements),
which is atomic and loads the same way whether the table exists or not.

A block is a dict ``{protocol: tcp|udp, port: 1-65535, family: ipv4|ipv6|None (both),
address: one destination address or None, rule: rule id or None}``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re

TABLE_FAMILY = 'inet'
TABLE_NAME = 'portwarden'
CHAIN_NAME = 'input'
CHAIN_PRIORITY = -10
TABLE_REF = '%s %s' % (TABLE_FAMILY, TABLE_NAME)

PROTOCOLS = ('tcp', 'udp')
FAMILIES = ('ipv4', 'ipv6')
STATES = ('present', 'absent')
BLOCK_FIELDS = ('protocol', 'port', 'family', 'address', 'rule')

RULE_PREFIX = 'rule='
COMMENT_MAX = 128  # nft refuses longer element comments
RULE_MAX = COMMENT_MAX - len(RULE_PREFIX)
_RULE_ID = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')  # the policy's rule id pattern; safe inside an nft string

_NFPROTO = {'ipv4': 'ipv4', 'ipv6': 'ipv6'}
_L3 = {'ipv4': 'ip', 'ipv6': 'ip6'}
_ADDR_TYPE = {'ipv4': 'ipv4_addr', 'ipv6': 'ipv6_addr'}
_FAMILY_ORDER = {None: 0, 'ipv4': 1, 'ipv6': 2}


class SetSpec(object):
    """One set of the table, and the rule that drops what it holds."""

    __slots__ = ('addressed', 'family', 'name', 'protocol')

    def __init__(self, protocol, family, addressed):
        self.protocol = protocol
        self.family = family
        self.addressed = addressed
        if addressed:
            self.name = '%s_addr_%s' % (protocol, family.replace('ip', ''))
        elif family:
            self.name = '%s_ports_%s' % (protocol, family.replace('ip', ''))
        else:
            self.name = '%s_ports' % protocol

    @property
    def nft_type(self):
        """The set's type as ``nft -j`` reports it: a string, or a list for a concatenation."""
        if self.addressed:
            return [_ADDR_TYPE[self.family], 'inet_service']
        return 'inet_service'

    def type_text(self):
        return ' . '.join(self.nft_type) if self.addressed else self.nft_type

    def rule_text(self):
        if self.addressed:
            return '%s daddr . %s dport @%s drop' % (_L3[self.family], self.protocol, self.name)
        if self.family:
            return 'meta nfproto %s %s dport @%s drop' % (_NFPROTO[self.family], self.protocol, self.name)
        return '%s dport @%s drop' % (self.protocol, self.name)

    def rule_signature(self, fib=None):
        """What a rule of this set looks like once ``parse_rule`` has read it (``fib``: the table's lead match)."""
        return (fib, self.family if (self.family and not self.addressed) else None,
                _L3[self.family] if self.addressed else None,
                self.protocol, self.name, 'drop')


SETS = tuple(SetSpec(protocol, family, addressed)
             for protocol in PROTOCOLS
             for family, addressed in ((None, False), ('ipv4', False), ('ipv6', False), ('ipv4', True), ('ipv6', True)))
SETS_BY_NAME = dict((spec.name, spec) for spec in SETS)


def set_for(block):
    """The SetSpec that holds ``block`` (a normalised block)."""
    for spec in SETS:
        if spec.protocol == block['protocol'] and spec.family == block['family'] and spec.addressed == (block['address'] is not None):
            return spec
    raise ValueError('no set holds %r' % (block,))


# ---- blocks: validation, identity, order, labels -------------------------------------------------------

def _port(value, where):
    if isinstance(value, bool):
        raise ValueError('%s: %r is not a port number (1-65535)' % (where, value))
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError('%s: %r is not a port number (1-65535)' % (where, value))
    return value


def _protocol(value, where):
    if not isinstance(value, str) or value.lower() not in PROTOCOLS:
        raise ValueError('%s: %r is not a protocol (one of %s)' % (where, value, ', '.join(PROTOCOLS)))
    return value.lower()


def _address(value, where):
    """(address text, family) for a destination address; (None, family) for a wildcard address."""
    if not isinstance(value, str):
        raise ValueError('%s: %r is not an IP address' % (where, value))
    text = value.strip()
    if text.startswith('[') and text.endswith(']'):
        text = text[1:-1]
    if '%' in text:
        raise ValueError('%s: %r has a scope (%%...); nftables matches addresses without one' % (where, value))
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError('%s: %r is not an IP address (a single address, not a network)' % (where, value)) from None
    family = 'ipv4' if address.version == 4 else 'ipv6'
    if family == 'ipv6' and address.ipv4_mapped is not None:
        raise ValueError('%s: %r is an IPv4-mapped IPv6 address; give the IPv4 address %s instead'
                         % (where, value, address.ipv4_mapped))
    if address.is_unspecified:
        return None, family
    return address.compressed, family


def normalise_block(item, index=0, field='blocks'):
    """A validated copy of one block with every field set; ValueError names ``field[index].key``.

    A wildcard address (V(0.0.0.0), V(::)) means every address of its family: it becomes a
    family-wide block. A string port of digits is accepted (templated values arrive as strings).
    """
    where = '%s[%d]' % (field, index)
    if not isinstance(item, dict):
        raise ValueError('%s: expected a dict with %s, got %r' % (where, ', '.join(BLOCK_FIELDS), item))
    unknown = sorted(str(key) for key in item if key not in BLOCK_FIELDS)
    if unknown:
        raise ValueError('%s: unknown field(s) %s (known: %s)' % (where, ', '.join(unknown), ', '.join(BLOCK_FIELDS)))
    for required in ('protocol', 'port'):
        if item.get(required) is None:
            raise ValueError('%s.%s: required' % (where, required))
    protocol = _protocol(item['protocol'], where + '.protocol')
    port = _port(item['port'], where + '.port')
    family = item.get('family')
    if family is not None and family not in FAMILIES:
        raise ValueError('%s.family: %r is not a family (ipv4, ipv6, or null for both)' % (where, family))
    address = item.get('address')
    if address is not None:
        address, address_family = _address(address, where + '.address')
        if family is not None and family != address_family:
            raise ValueError('%s.address: %r is an %s address but family is %s' % (where, item['address'], address_family, family))
        family = address_family
    rule = item.get('rule')
    if rule is not None:
        if not isinstance(rule, str) or not _RULE_ID.match(rule):
            raise ValueError('%s.rule: %r is not a rule id (letters, digits, ".", "_", "-"; starting with a letter or digit)' % (where, rule))
        if len(rule) > RULE_MAX:
            raise ValueError('%s.rule: %r is longer than %d characters (nft element comments hold %d)' % (where, rule, RULE_MAX, COMMENT_MAX))
    return {'protocol': protocol, 'port': port, 'family': family, 'address': address, 'rule': rule}


def block_key(block):
    """Identity of a (normalised) block: the packets it drops. The rule id is not part of it."""
    return (block['protocol'], block['family'] or '', block['address'] or '', block['port'])


def _sort_key(block):
    address = ipaddress.ip_address(block['address']) if block['address'] else None
    return (block['protocol'], block['port'], _FAMILY_ORDER[block['family']],
            address.version if address else 0, int(address) if address else 0)


def sort_blocks(blocks):
    return sorted(blocks, key=_sort_key)


def normalise_blocks(items, field='blocks'):
    """Validated, de-duplicated, sorted blocks. The same block twice with two different rule ids is an error."""
    if items is None:
        return []
    if not isinstance(items, (list, tuple)):
        raise ValueError('%s: expected a list of blocks, got %r' % (field, items))
    seen = {}
    for index, item in enumerate(items):
        block = normalise_block(item, index, field)
        key = block_key(block)
        if key in seen:
            first_index, first = seen[key]
            if first['rule'] is None:
                seen[key] = (first_index, dict(first, rule=block['rule']))
            elif block['rule'] is not None and block['rule'] != first['rule']:
                raise ValueError('%s[%d]: %s is already listed at %s[%d] with another rule (%s, not %s)'
                                 % (field, index, block_label(block), field, first_index, first['rule'], block['rule']))
            continue
        seen[key] = (index, block)
    return sort_blocks(block for _index, block in seen.values())


def block_label(block):
    """``tcp 856``, ``udp 857 (ipv4)``, ``tcp [::1]:858``, ``tcp 127.0.0.1:858``."""
    if block['address']:
        host = '[%s]' % block['address'] if block['family'] == 'ipv6' else block['address']
        return '%s %s:%d' % (block['protocol'], host, block['port'])
    if block['family']:
        return '%s %d (%s)' % (block['protocol'], block['port'], block['family'])
    return '%s %d' % (block['protocol'], block['port'])


def public_block(block):
    """A block as returned to the user (a plain dict, every field)."""
    return dict((name, block[name]) for name in BLOCK_FIELDS)


# ---- protection ------------------------------------------------------------------------------------------

def normalise_protected_ports(items, field='protected_ports'):
    """Validated ``[{protocol, port}]``, as a sorted list of (protocol, port) tuples."""
    if items is None:
        return []
    if not isinstance(items, (list, tuple)):
        raise ValueError('%s: expected a list of {protocol, port}, got %r' % (field, items))
    result = set()
    for index, item in enumerate(items):
        where = '%s[%d]' % (field, index)
        if not isinstance(item, dict):
            raise ValueError('%s: expected a dict with protocol and port, got %r' % (where, item))
        unknown = sorted(str(key) for key in item if key not in ('protocol', 'port'))
        if unknown:
            raise ValueError('%s: unknown field(s) %s (known: protocol, port)' % (where, ', '.join(unknown)))
        for required in ('protocol', 'port'):
            if item.get(required) is None:
                raise ValueError('%s.%s: required' % (where, required))
        result.add((_protocol(item['protocol'], where + '.protocol'), _port(item['port'], where + '.port')))
    return sorted(result)


def parse_ssh_connection(value):
    """The server port of an ``SSH_CONNECTION`` value (``client_ip client_port server_ip server_port``), or None.

    Anything that is not four fields with two IP addresses and two ports (for example
    ``UNKNOWN 65535 UNKNOWN 65535``, which sshd sets for a connection it cannot describe) gives None.
    """
    if not isinstance(value, str):
        return None
    fields = value.split()
    if len(fields) != 4:
        return None
    for address in (fields[0], fields[2]):
        try:
            ipaddress.ip_address(address.split('%', 1)[0])
        except ValueError:
            return None
    ports = []
    for port in (fields[1], fields[3]):
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            return None
        ports.append(int(port))
    return ports[1]


def _environ_value(path, name):
    """The value of variable ``name`` in a /proc/PID/environ file, or None."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except OSError:
        return None
    prefix = name.encode() + b'='
    for entry in data.split(b'\0'):
        if entry.startswith(prefix):
            return entry[len(prefix):].decode('utf-8', 'replace')
    return None


def _parent_pid(proc_root, pid):
    try:
        with open(os.path.join(proc_root, str(pid), 'stat'), 'rb') as handle:
            stat = handle.read().decode('utf-8', 'replace')
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces or parentheses
    fields = stat[stat.rfind(')') + 2:].split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def find_ssh_connection(environ, proc_root='/proc', pid=None, max_depth=32):
    """(server port, where it was found) of the SSH connection this process runs under, or (None, None).

    First ``environ['SSH_CONNECTION']``. When it is not set there (``sudo`` resets the environment,
    so a module run with become does not inherit it), the environments of the ancestor processes
    (``/proc/PID/environ``, readable by root) are searched, nearest first: the login shell under
    sshd carries it. A value that does not parse stops the search (the connection cannot be described).
    """
    if 'SSH_CONNECTION' in environ:
        port = parse_ssh_connection(environ['SSH_CONNECTION'])
        return (port, 'SSH_CONNECTION') if port else (None, None)
    pid = os.getpid() if pid is None else pid
    seen = set()
    for _depth in range(max_depth):
        pid = _parent_pid(proc_root, pid)
        if not pid or pid in seen or pid <= 1:
            return None, None
        seen.add(pid)
        value = _environ_value(os.path.join(proc_root, str(pid), 'environ'), 'SSH_CONNECTION')
        if value is not None:
            port = parse_ssh_connection(value)
            return (port, 'SSH_CONNECTION of process %d' % pid) if port else (None, None)
    return None, None


def filter_protected(blocks, protected_ports=(), ssh_port=None, ssh_source='SSH_CONNECTION'):
    """Split ``blocks`` into (allowed, refused); a refused block carries a ``reason``.

    Protection is by protocol and port, whatever the block's family or address: a block on the port
    that carries the live SSH connection, or on a port of ``protected_ports`` ((protocol, port) tuples),
    is refused.
    """
    protected = set(protected_ports)
    allowed, refused = [], []
    for block in blocks:
        reason = None
        if ssh_port and block['protocol'] == 'tcp' and block['port'] == ssh_port:
            reason = 'tcp port %d carries the live SSH connection (%s); blocking it would cut the connection' % (ssh_port, ssh_source)
        elif (block['protocol'], block['port']) in protected:
            reason = '%s port %d is in protected_ports' % (block['protocol'], block['port'])
        if reason:
            refused.append(dict(public_block(block), reason=reason))
        else:
            allowed.append(block)
    return allowed, refused


# ---- plan -----------------------------------------------------------------------------------------------

def compute_plan(current, desired, state='present', exclusive=False):
    """What to change: a dict with ``added``, ``removed`` and ``final`` (sorted block lists) and ``lift_all``.

    - present: every desired block ends up in the table; one that is there under another rule id is
      replaced (removed and added, so the comment is updated). A desired block without a rule id keeps
      the id of the block already there. With ``exclusive``, blocks not desired are removed.
    - absent: desired blocks are removed (matched by key, whatever their rule id). With no desired
      blocks at all, everything is removed and ``lift_all`` is true: the table itself goes.
    """
    if state not in STATES:
        raise ValueError('state: %r is not one of %s' % (state, ', '.join(STATES)))
    current_by_key = dict((block_key(block), block) for block in current)
    desired_by_key = dict((block_key(block), block) for block in desired)
    added, removed = [], []
    final = dict(current_by_key)
    lift_all = state == 'absent' and not desired
    if state == 'present':
        for key, block in desired_by_key.items():
            there = current_by_key.get(key)
            if there is None:
                added.append(block)
                final[key] = block
            elif block['rule'] is not None and block['rule'] != there['rule']:
                removed.append(there)
                added.append(block)
                final[key] = block
        if exclusive:
            for key, block in current_by_key.items():
                if key not in desired_by_key:
                    removed.append(block)
                    del final[key]
    elif lift_all:
        removed = list(current)
        final = {}
    else:
        for key in desired_by_key:
            if key in current_by_key:
                removed.append(current_by_key[key])
                del final[key]
    return {'added': sort_blocks(added), 'removed': sort_blocks(removed), 'final': sort_blocks(final.values()), 'lift_all': lift_all}


# ---- nft text --------------------------------------------------------------------------------------------

def element_text(block):
    value = '%s . %d' % (block['address'], block['port']) if block['address'] else '%d' % block['port']
    if block['rule']:
        value += ' comment "%s%s"' % (RULE_PREFIX, block['rule'])
    return value


def render_nft_table(blocks, table_ref, chain, hook, priority, rule_lead=''):
    """A portwarden table with ``blocks`` as nft text, in a fixed order, one element per line (``nft -f`` loads it):
    the sets, and one base chain on ``hook`` at ``priority`` whose rules (each after ``rule_lead``) drop their
    members. Shared by the input table here and the prerouting one (remediate_prerouting)."""
    by_set = {}
    for block in sort_blocks(blocks):
        by_set.setdefault(set_for(block).name, []).append(block)
    lines = ['table %s {' % table_ref]
    for spec in SETS:
        lines.append('\tset %s {' % spec.name)
        lines.append('\t\ttype %s' % spec.type_text())
        lines.append('\t\tcounter')  # a packet counter per element: what drops a probe is counted (remediation's proof)
        members = by_set.get(spec.name)
        if members:
            lines.append('\t\telements = {')
            lines.extend('\t\t\t%s,' % element_text(block) for block in members)
            lines.append('\t\t}')
        lines.append('\t}')
        lines.append('')
    lines.append('\tchain %s {' % chain)
    lines.append('\t\ttype filter hook %s priority %d; policy accept;' % (hook, priority))
    lines.extend('\t\t%s%s' % (rule_lead, spec.rule_text()) for spec in SETS)
    lines.append('\t}')
    lines.append('}')
    return '\n'.join(lines) + '\n'


class TableSpec(object):
    """One portwarden table: its name, its one base chain (hook, priority) and what leads each drop rule."""

    def __init__(self, name, chain, hook, priority, lead='', fib=None):
        self.family = TABLE_FAMILY
        self.name = name
        self.ref = '%s %s' % (TABLE_FAMILY, name)
        self.chain = chain
        self.hook = hook
        self.priority = priority
        self.lead = lead  # nft text before each rule's match
        self.fib = fib    # the same lead as parse_rule reads it back
        # Declaring the table before deleting it makes the delete succeed whether or not it exists (nft 1.0.6
        # has no "destroy"); both, and the new table, are one transaction: there is no moment without it.
        self.reset = 'table %s\ndelete table %s\n' % (self.ref, self.ref)

    def render(self, blocks):
        return render_nft_table(blocks, self.ref, self.chain, self.hook, self.priority, self.lead)

    def script(self, blocks):
        """The ``nft -f`` text that replaces the table with one holding exactly ``blocks``."""
        return self.reset + self.render(blocks)


INPUT = TableSpec(TABLE_NAME, CHAIN_NAME, 'input', CHAIN_PRIORITY)


def render_table(blocks):
    """The input table with ``blocks`` as nft text (render_nft_table)."""
    return INPUT.render(blocks)


RESET = INPUT.reset


def nft_script(blocks):
    """The ``nft -f`` script that replaces the table with one holding exactly ``blocks``, atomically."""
    return INPUT.script(blocks)


def lift_script():
    """The ``nft -f`` script that removes the table (and so every block), whether or not it exists."""
    return RESET


def persist_text(blocks, published=None, published_spec=None):
    """Content of the file the system's nftables service includes: loading it (again) restores the table (and the
    prerouting table of published ports, ``published`` blocks in ``published_spec``, when there is one). A table that
    is None is only deleted, so the file holds exactly the tables that exist."""
    text = ('# Managed by portwarden.compliance.port_block: ports closed by policy. Do not edit; changes are overwritten.\n'
            '# Loaded by the nftables service through: include "<this file>" in /etc/nftables.conf.\n'
            + (nft_script(blocks) if blocks is not None else RESET))
    if published_spec is not None:
        text += published_spec.script(published) if published is not None else published_spec.reset
    return text


# ---- reading nft -j output -------------------------------------------------------------------------------

def _objects(text):
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError('nft printed something that is not JSON: %s' % exc) from None
    if not isinstance(data, dict) or not isinstance(data.get('nftables'), list):
        raise ValueError('nft JSON output has no "nftables" list')
    return [item for item in data['nftables'] if isinstance(item, dict)]


def table_exists(tables_json, spec=INPUT):
    """Whether ``nft -j list tables`` output lists our table (``spec``'s)."""
    for item in _objects(tables_json):
        table = item.get('table')
        if isinstance(table, dict) and table.get('family') == spec.family and table.get('name') == spec.name:
            return True
    return False


def _port_value(value):
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _element_block(spec, raw):
    """The block of one set element as ``nft -j`` prints it, or None when it is not one we can read."""
    comment = None
    if isinstance(raw, dict) and 'elem' in raw:
        wrapper = raw['elem']
        if not isinstance(wrapper, dict):
            return None
        comment = wrapper.get('comment')
        raw = wrapper.get('val')
    rule = None
    if isinstance(comment, str) and comment.startswith(RULE_PREFIX):
        rule = comment[len(RULE_PREFIX):] or None
    if spec.addressed:
        if not isinstance(raw, dict) or not isinstance(raw.get('concat'), list) or len(raw['concat']) != 2:
            return None
        address, port = raw['concat']
        port = _port_value(port)
        if not isinstance(address, str) or port is None:
            return None
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return None
        address = parsed.compressed
    else:
        address, port = None, _port_value(raw)
        if port is None:
            return None
    return {'protocol': spec.protocol, 'port': port, 'family': spec.family, 'address': address, 'rule': rule}


def parse_rule(expressions):
    """(fib lead, nfproto, l3 protocol, l4 protocol, set name, verdict) of a rule's JSON ``expr``, or None when it is
    not one of the shapes the design uses. The fib lead is ``daddr type local`` for ``fib daddr type local``."""
    fib = nfproto = l3proto = l4proto = set_name = verdict = None
    if not isinstance(expressions, list):
        return None
    for expr in expressions:
        if not isinstance(expr, dict) or len(expr) != 1:
            return None
        if 'drop' in expr or 'accept' in expr:
            verdict = 'drop' if 'drop' in expr else 'accept'
            continue
        match = expr.get('match')
        if not isinstance(match, dict) or match.get('op') not in ('==', 'in'):
            return None
        left, right = match.get('left'), match.get('right')
        if isinstance(left, dict) and isinstance(left.get('fib'), dict) and isinstance(right, str):
            flags = left['fib'].get('flags')
            flags = [flags] if isinstance(flags, str) else flags
            if not isinstance(flags, list) or not all(isinstance(flag, str) for flag in flags):
                return None
            fib = '%s %s %s' % (' . '.join(flags), left['fib'].get('result'), right)
        elif isinstance(left, dict) and isinstance(left.get('meta'), dict) and left['meta'].get('key') == 'nfproto':
            nfproto = right
        elif isinstance(left, dict) and isinstance(left.get('payload'), dict) and isinstance(right, str) and right.startswith('@'):
            if left['payload'].get('field') != 'dport':
                return None
            l4proto, set_name = left['payload'].get('protocol'), right[1:]
        elif isinstance(left, dict) and isinstance(left.get('concat'), list) and len(left['concat']) == 2 \
                and isinstance(right, str) and right.startswith('@'):
            first, second = (part.get('payload') if isinstance(part, dict) else None for part in left['concat'])
            if not isinstance(first, dict) or not isinstance(second, dict) or first.get('field') != 'daddr' or second.get('field') != 'dport':
                return None
            l3proto, l4proto, set_name = first.get('protocol'), second.get('protocol'), right[1:]
        else:
            return None
    return (fib, nfproto, l3proto, l4proto, set_name, verdict)


def parse_table(table_json, spec=INPUT):
    """Read ``nft -j list table inet portwarden`` (or ``spec``'s table): (blocks, problems).

    ``blocks`` are the blocks of the design's sets (sorted; ``rule`` from each element's
    ``rule=`` comment, None without one). ``problems`` lists how the table differs from the design
    (a missing or retyped set, a foreign set, chain or rule, an element that cannot be read); a table
    with problems is rebuilt by the module.
    """
    problems = []
    blocks = []
    sets_seen = set()
    chains = []
    signatures = []
    for item in _objects(table_json):
        if 'set' in item or 'map' in item:
            kind = 'set' if 'set' in item else 'map'
            entry = item[kind]
            if not isinstance(entry, dict) or entry.get('table') != spec.name or entry.get('family') != spec.family:
                continue
            name = entry.get('name')
            set_spec = SETS_BY_NAME.get(name)
            if kind == 'map' or set_spec is None:
                problems.append('%s %s is not part of the design' % (kind, name))
                continue
            sets_seen.add(name)
            if entry.get('type') != set_spec.nft_type:
                problems.append('set %s has type %r, not %r' % (name, entry.get('type'), set_spec.nft_type))
                continue
            if not _counts(entry):
                problems.append('set %s has no packet counter per element' % name)
            for raw in entry.get('elem') or []:
                block = _element_block(set_spec, raw)
                if block is None:
                    problems.append('set %s holds an element that is not a block: %s' % (name, json.dumps(raw, sort_keys=True)))
                else:
                    blocks.append(block)
        elif 'chain' in item:
            entry = item['chain']
            if isinstance(entry, dict) and entry.get('table') == spec.name and entry.get('family') == spec.family:
                chains.append(entry)
        elif 'rule' in item:
            entry = item['rule']
            if isinstance(entry, dict) and entry.get('table') == spec.name and entry.get('family') == spec.family:
                if entry.get('chain') != spec.chain:
                    problems.append('rule in chain %s is not part of the design' % entry.get('chain'))
                    continue
                signature = parse_rule(entry.get('expr'))
                signatures.append(signature)
                if signature is None:
                    problems.append('rule (handle %s) in chain %s is not part of the design' % (entry.get('handle'), spec.chain))
    for spec_set in SETS:
        if spec_set.name not in sets_seen:
            problems.append('set %s is missing' % spec_set.name)
    wanted_chain = {'type': 'filter', 'hook': spec.hook, 'prio': spec.priority, 'policy': 'accept'}
    for chain in chains:
        if chain.get('name') != spec.chain:
            problems.append('chain %s is not part of the design' % chain.get('name'))
            continue
        found = dict((key, chain.get(key)) for key in wanted_chain)
        if found != wanted_chain:
            problems.append('chain %s is %s, not %s' % (spec.chain, _describe_chain(found), _describe_chain(wanted_chain)))
    if spec.chain not in [chain.get('name') for chain in chains]:
        problems.append('chain %s is missing' % spec.chain)
    else:
        expected = sorted(_comparable(spec_set.rule_signature(spec.fib)) for spec_set in SETS)
        readable = sorted(_comparable(signature) for signature in signatures if signature is not None)
        if readable != expected and len(readable) == len(signatures):
            problems.append('chain %s does not hold the rules of the design' % spec.chain)
    # one element in two sets of the same key would be two blocks with one key: keep the first
    unique = {}
    for block in blocks:
        unique.setdefault(block_key(block), block)
    return sort_blocks(unique.values()), problems


def _counts(entry):
    """Whether a set as ``nft -j`` prints it declares a counter per element (``stmt: [{"counter": null}]``)."""
    statements = entry.get('stmt')
    return isinstance(statements, list) and any(isinstance(item, dict) and 'counter' in item for item in statements)


def parse_counters(table_json, spec=INPUT):
    """``{block_key: packets}`` of the elements of ``spec``'s table in ``nft -j list table`` output: how many packets
    each block's drop has counted. A block whose element has no readable counter is not in it."""
    counters = {}
    for item in _objects(table_json):
        entry = item.get('set')
        if not isinstance(entry, dict) or entry.get('table') != spec.name or entry.get('family') != spec.family:
            continue
        set_spec = SETS_BY_NAME.get(entry.get('name'))
        if set_spec is None or entry.get('type') != set_spec.nft_type:
            continue
        for raw in entry.get('elem') or []:
            block = _element_block(set_spec, raw)
            wrapper = raw.get('elem') if isinstance(raw, dict) else None
            counter = wrapper.get('counter') if isinstance(wrapper, dict) else None
            packets = counter.get('packets') if isinstance(counter, dict) else None
            if block is not None and isinstance(packets, int) and not isinstance(packets, bool) and packets >= 0:
                counters.setdefault(block_key(block), packets)
    return counters


def _comparable(signature):
    return tuple('' if value is None else str(value) for value in signature)


def _describe_chain(props):
    return 'type %s hook %s priority %s policy %s' % (props['type'], props['hook'], props['prio'], props['policy'])


def describe_table(exists, blocks, problems=(), spec=INPUT):
    """Text of the table for a diff: '' when it does not exist, else its rendering (problems as comments)."""
    if not exists:
        return ''
    text = spec.render(blocks)
    if problems:
        text = ''.join('# differs from the design: %s\n' % problem for problem in problems) + text
    return text
