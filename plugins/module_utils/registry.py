# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""IANA's port registry as the project sees it: assigned, reserved and unassigned port ranges and
service names per transport protocol, from the generated ``registry_data`` module.

Pure standard library. Ports 49152-65535 (Dynamic and/or Private, RFC 6335) are in none of the three
categories; ``DYNAMIC_RANGE`` names them. Regenerate the data with
``portwarden registry update --from service-names-port-numbers.xml``.
"""

from __future__ import annotations

import bisect

from ansible_collections.portwarden.compliance.plugins.module_utils import registry_data as _data

PROTOCOLS = ('tcp', 'udp', 'sctp', 'dccp')
CATEGORIES = ('assigned', 'reserved', 'unassigned')
DYNAMIC_RANGE = (49152, 65535)

REGISTRY_DATE = _data.REGISTRY_DATE
REGISTRY_SHA256 = _data.REGISTRY_SHA256
REGISTRY_RECORDS = _data.REGISTRY_RECORDS

_NAME_SOURCES = {
    'tcp': (_data.NAMES_TCP_UDP, _data.NAMES_TCP),
    'udp': (_data.NAMES_TCP_UDP, _data.NAMES_UDP),
    'sctp': (_data.NAMES_SCTP,),
    'dccp': (_data.NAMES_DCCP,),
}
_names = {}  # protocol -> {port: name}, built on first use
_ranges = {}  # (category, protocol) -> ((start, end), ...), parsed on first use
_starts = {}  # (category, protocol) -> range starts, for bisect


def _check_protocol(protocol):
    if protocol not in PROTOCOLS:
        raise ValueError('unknown protocol %r: expected one of %s' % (protocol, ', '.join(PROTOCOLS)))


def iana_ranges(category, protocol):
    """Sorted, merged, inclusive ``(start, end)`` ranges of ``category`` ports for ``protocol``."""
    if category not in CATEGORIES:
        raise ValueError('unknown category %r: expected one of %s' % (category, ', '.join(CATEGORIES)))
    _check_protocol(protocol)
    key = (category, protocol)
    found = _ranges.get(key)
    if found is None:
        found = []
        for item in _data.RANGES[protocol][category].split():
            start, _dash, end = item.partition('-')
            found.append((int(start), int(end or start)))
        found = _ranges[key] = tuple(found)
    return found


def port_category(protocol, port):
    """``'assigned'``, ``'reserved'``, ``'unassigned'`` or ``'dynamic'`` (49152-65535) for one port."""
    _check_protocol(protocol)
    if not 0 <= port <= DYNAMIC_RANGE[1]:
        raise ValueError('port %r is not in 0-65535' % (port,))
    if port >= DYNAMIC_RANGE[0]:
        return 'dynamic'
    for category in CATEGORIES:
        ranges = iana_ranges(category, protocol)
        key = (category, protocol)
        starts = _starts.get(key)
        if starts is None:
            starts = _starts[key] = [pair[0] for pair in ranges]
        index = bisect.bisect_right(starts, port) - 1
        if index >= 0 and port <= ranges[index][1]:
            return category
    raise AssertionError('registry data does not cover %s port %d' % (protocol, port))  # the tests rule this out


def service_names(protocol):
    """The registry's ``{port: service name}`` for ``protocol`` (first name wins). Do not modify it."""
    names = _names.get(protocol)
    if names is None:
        _check_protocol(protocol)
        names = {}
        for source in _NAME_SOURCES[protocol]:
            fields = source.split()
            names.update(zip(map(int, fields[0::2]), fields[1::2]))
        _names[protocol] = names
    return names


def service_name(protocol, port):
    """The registry's (first) service name for ``port`` over ``protocol``, or None."""
    return service_names(protocol).get(port)


def registry_info():
    """Which registry the data comes from: ``{'date', 'sha256', 'records'}``."""
    return {'date': REGISTRY_DATE, 'sha256': REGISTRY_SHA256, 'records': REGISTRY_RECORDS}
