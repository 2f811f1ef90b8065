# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Registry generator: IANA's port registry XML in, the compact ``registry_data`` module out.

Pure standard library. ``portwarden registry update --from FILE.xml`` calls ``update_registry``;
the tests call ``parse_registry`` and ``render_module`` to check that the committed data is exactly
what the published XML yields.

Classification, per transport protocol (a record without ``<protocol>`` covers all of them):
a record is *assigned* if it has a non-empty ``<name>`` or its description starts with
"any private"; *reserved* if its description starts with "Reserved"; otherwise *unassigned*
("Unassigned", "De-registered", "Removed", ...). Where records overlap, assigned beats reserved
beats unassigned. A port below 49152 that no record covers is unassigned; 49152-65535 (Dynamic
and/or Private, RFC 6335) belongs to none of the three.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import xml.etree.ElementTree as ET

from ansible_collections.portwarden.compliance.plugins.module_utils.atomic_write import write_atomically

PROTOCOLS = ('tcp', 'udp', 'sctp', 'dccp')
CATEGORIES = ('assigned', 'reserved', 'unassigned')
DYNAMIC_START = 49152  # RFC 6335: 49152-65535 are Dynamic and/or Private, never assigned
MAX_PORT = 65535

_NS = '{http://www.iana.org/assignments}'
_REGISTRY_ID = 'service-names-port-numbers'
_NUMBER = re.compile(r'^([0-9]{1,9})(?:-([0-9]{1,9}))?$')  # bounded: int() of a huge digit string is slow or refused
_DATE = re.compile(r'^[0-9]{4}-[0-9]{2}-[0-9]{2}$')
_WHITESPACE = re.compile(r'\s')

# Levels in a per-port table; a higher level wins where records overlap.
_UNASSIGNED, _RESERVED, _ASSIGNED = 0, 1, 2
_LEVEL_CATEGORY = {_UNASSIGNED: 'unassigned', _RESERVED: 'reserved', _ASSIGNED: 'assigned'}

_LINE_WIDTH = 120  # generated lines stay well inside pep8's 160
_RANGE_BLOCK = 1000  # generated ranges start a new line every 1000 ports
_NAME_BLOCK = 100  # generated names start a new line every 100 ports
_COMMON_NAME_PROTOCOLS = ('tcp', 'udp')


class RegistryError(Exception):
    """Input that is not a usable IANA port registry, or a file that cannot be read or written."""


def _short(text, limit=40):
    return text if len(text) <= limit else text[:limit] + '...'


def _record_label(index, number, protocol, name):
    details = ['number %r' % _short(number)]
    if protocol:
        details.append('protocol %r' % _short(protocol))
    if name:
        details.append('name %r' % _short(name))
    return 'record %d (%s)' % (index, ', '.join(details))


def _parse_number(text, label):
    match = _NUMBER.match(text)
    if not match:
        raise RegistryError('%s: %r is not a port or an inclusive port range A-B' % (label, _short(text)))
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) is not None else start
    if end > MAX_PORT or start > MAX_PORT:
        raise RegistryError('%s: port %d is greater than %d' % (label, max(start, end), MAX_PORT))
    if start > end:
        raise RegistryError('%s: range start %d is greater than its end %d' % (label, start, end))
    return start, end


def _level(name, description):
    lowered = description.lower()
    if name or lowered.startswith('any private'):
        return _ASSIGNED
    if lowered.startswith('reserved'):
        return _RESERVED
    return _UNASSIGNED


def _runs(table, level):
    """Merged inclusive (start, end) ranges of the ports whose entry in ``table`` equals ``level``."""
    runs = []
    marker = bytes([level])
    start = table.find(marker)
    while start != -1:
        end = start
        while end + 1 < len(table) and table[end + 1] == level:
            end += 1
        runs.append((start, end))
        start = table.find(marker, end + 1)
    return tuple(runs)


def _root(xml_bytes):
    try:
        root = ET.fromstring(xml_bytes)
    except ET.ParseError as exc:
        raise RegistryError('not well-formed XML: %s' % exc) from None
    if root.tag != _NS + 'registry':
        raise RegistryError('root element is <%s>, expected <registry xmlns="%s">: not IANA\'s port registry'
                            % (root.tag, _NS.strip('{}')))
    registry_id = root.get('id')
    if registry_id is not None and registry_id != _REGISTRY_ID:
        raise RegistryError('registry id is %r, expected %r: a different IANA registry' % (registry_id, _REGISTRY_ID))
    return root


def _date(root):
    updated = root.find(_NS + 'updated')
    if updated is None or not (updated.text or '').strip():
        raise RegistryError('no <updated> date in the registry')
    text = updated.text.strip()
    try:
        if not _DATE.match(text):
            raise ValueError(text)
        datetime.date(int(text[:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        raise RegistryError('<updated> is %r, expected a date YYYY-MM-DD' % text) from None
    return text


def parse_registry(xml_bytes):
    """Parse IANA's registry XML (bytes) into the data ``render_module`` writes out.

    Returns ``{'date', 'sha256', 'records', 'ranges', 'names'}``: ``ranges[protocol][category]`` is a
    tuple of sorted, merged, inclusive ``(start, end)`` tuples for each category; ``names[protocol]``
    maps a port to the first service name the registry gives it. Raises ``RegistryError``.
    """
    xml_bytes = bytes(xml_bytes)
    root = _root(xml_bytes)
    date = _date(root)

    # One byte per port below DYNAMIC_START and protocol; records are applied lowest level first so
    # that a later, higher level overwrites: assigned > reserved > unassigned.
    spans = {_RESERVED: [], _ASSIGNED: []}  # unassigned is what the table starts as
    names = {protocol: {} for protocol in PROTOCOLS}
    records = 0
    for index, record in enumerate(root.iter(_NS + 'record'), 1):
        records += 1
        number = (record.findtext(_NS + 'number') or '').strip()
        if not number:
            continue  # a service name without a port
        name = (record.findtext(_NS + 'name') or '').strip()
        protocol = (record.findtext(_NS + 'protocol') or '').strip().lower()
        description = (record.findtext(_NS + 'description') or '').strip()
        label = _record_label(index, number, protocol, name)
        start, end = _parse_number(number, label)
        if name and _WHITESPACE.search(name):
            raise RegistryError('%s: service name contains whitespace' % label)
        if protocol:
            if protocol not in PROTOCOLS:
                continue  # a transport this project does not check
            protocols = (protocol,)
        else:
            protocols = PROTOCOLS
        level = _level(name, description)
        if level in spans:
            spans[level].append((protocols, start, end))
        if name:
            for proto in protocols:
                port_names = names[proto]
                for port in range(start, end + 1):
                    port_names.setdefault(port, name)
    if not records:
        raise RegistryError('the registry has no <record> elements')

    tables = {protocol: bytearray(DYNAMIC_START) for protocol in PROTOCOLS}  # zero: unassigned
    for level in (_RESERVED, _ASSIGNED):
        fill = bytes([level])
        for protocols, start, end in spans[level]:
            last = min(end, DYNAMIC_START - 1)  # the dynamic range is in no category
            for protocol in protocols:
                tables[protocol][start:last + 1] = fill * max(0, last - start + 1)
    ranges = {}
    for protocol in PROTOCOLS:
        table = bytes(tables[protocol])
        ranges[protocol] = {category: _runs(table, level) for level, category in _LEVEL_CATEGORY.items()}
    return {
        'date': date,
        'sha256': hashlib.sha256(xml_bytes).hexdigest(),
        'records': records,
        'ranges': ranges,
        'names': names,
    }


def _wrapped(items, indent, width=_LINE_WIDTH):
    """Lines of ``(block, text)`` items, packed to ``width``; each block starts a new line, so that a
    registry change rewraps only the lines of its own block, and a regenerated file diffs locally."""
    lines = []
    line = []
    size = len(indent)
    current = None
    for block, text in items:
        if line and (block != current or size + 1 + len(text) > width):
            lines.append(indent + ' '.join(line))
            line, size = [], len(indent)
        current = block
        size += len(text) + (1 if line else 0)
        line.append(text)
    if line:
        lines.append(indent + ' '.join(line))
    return lines


def _string_lines(entries, indent):
    """``(block, text)`` items as adjacent string literals: one str constant, split on load. A string
    compiles in a fraction of the time of as many tuple literals (Ansible's collection loader compiles
    this module from source in every ansible-playbook run)."""
    # every literal but the last ends in the space that separates it from the next one
    lines = _wrapped(entries, '', _LINE_WIDTH - len(indent) - 3)
    return [indent + repr(line + ' ' if number < len(lines) else line) for number, line in enumerate(lines, 1)]


def _ranges_lines(ranges, indent):
    """``start-end start-end port ...`` (a one-port range as the port)."""
    return _string_lines([(start // _RANGE_BLOCK, '%d' % start if start == end else '%d-%d' % (start, end))
                          for start, end in ranges], indent)


def _names_lines(port_names, indent):
    """``port name port name ...``."""
    return _string_lines([(port // _NAME_BLOCK, '%d %s' % (port, port_names[port])) for port in sorted(port_names)], indent)


def _split_names(names):
    """Names the same for tcp and udp once, then what is left for each protocol."""
    tcp, udp = names['tcp'], names['udp']
    common = {port: name for port, name in tcp.items() if udp.get(port) == name}
    rest = {}
    for protocol in PROTOCOLS:
        own = names[protocol]
        if protocol in _COMMON_NAME_PROTOCOLS:
            own = {port: name for port, name in own.items() if port not in common}
        rest[protocol] = own
    return common, rest


def _names_assignment(variable, port_names):
    if not port_names:
        return ['%s = \'\'' % variable]
    return ['%s = (' % variable] + _names_lines(port_names, ' ' * 4) + [')']


def render_module(data):
    """The text of ``registry_data.py`` for parsed registry data; the same data gives the same text."""
    out = [
        '# -*- coding: utf-8 -*-',
        '# Copyright (c) portwarden contributors',
        '# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)',
        '# SPDX-License-Identifier: GPL-3.0-or-later',
        '#',
        '# GENERATED by `portwarden registry update --from FILE.xml` from IANA\'s Service Name and Transport',
        '# Protocol Port Number Registry (service-names-port-numbers.xml). DO NOT EDIT: regenerate instead.',
        '# Registry updated %s, %d records, source sha256 %s.' % (data['date'], data['records'], data['sha256']),
        '',
        '"""IANA port registry data, generated: read it through ``registry`` (iana_ranges, service_name)."""',
        '',
        'from __future__ import annotations',
        '',
        'REGISTRY_DATE = %r' % data['date'],
        'REGISTRY_SHA256 = %r' % data['sha256'],
        'REGISTRY_RECORDS = %d' % data['records'],
        '',
        '# RANGES[protocol][category]: sorted, merged, inclusive port ranges below 49152, as "start-end" (or "port")',
        '# items separated by spaces; registry.iana_ranges() gives them as (start, end) tuples.',
        'RANGES = {',
    ]
    for protocol in PROTOCOLS:
        out.append('    %r: {' % protocol)
        for category in CATEGORIES:
            ranges = data['ranges'][protocol][category]
            if ranges:
                out.append('        %r: (' % category)
                out.extend(_ranges_lines(ranges, ' ' * 12))
                out.append('        ),')
            else:
                out.append('        %r: \'\',' % category)
        out.append('    },')
    out.append('}')
    common, rest = _split_names(data['names'])
    out.append('')
    out.append('# Service names as "port name port name ...", in port order; a port has the first name the registry gives it.')
    out.append('# NAMES_TCP_UDP: ports whose name is the same for tcp and udp; NAMES_<PROTOCOL>: the rest of each protocol.')
    out.extend(_names_assignment('NAMES_TCP_UDP', common))
    for protocol in PROTOCOLS:
        out.extend(_names_assignment('NAMES_%s' % protocol.upper(), rest[protocol]))
    return '\n'.join(out) + '\n'


def update_registry(xml_path, output_path, check=False):
    """Regenerate ``output_path`` from the registry XML at ``xml_path``; return ``(changed, data)``.

    ``changed`` says whether the file's text differs (or would differ, with ``check``) from the new
    text. Without ``check`` a changed file is replaced atomically. Raises ``RegistryError``.
    """
    try:
        with open(xml_path, 'rb') as stream:
            xml_bytes = stream.read()
    except OSError as exc:
        raise RegistryError('cannot read %s: %s' % (xml_path, exc.strerror or exc)) from None
    try:
        data = parse_registry(xml_bytes)
    except RegistryError as exc:
        raise RegistryError('%s: %s' % (xml_path, exc)) from None
    text = render_module(data)
    try:
        with open(output_path, 'rb') as stream:
            changed = stream.read() != text.encode('utf-8')
    except FileNotFoundError:
        changed = True
    except OSError as exc:
        raise RegistryError('cannot read %s: %s' % (output_path, exc.strerror or exc)) from None
    if changed and not check:
        try:
            write_atomically(output_path, text)
        except OSError as exc:
            raise RegistryError('cannot write %s: %s' % (output_path, exc.strerror or exc)) from None
    return changed, data
