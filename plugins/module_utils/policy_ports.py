# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Evaluate step: port sets as sorted, merged ranges, looked up with bisect.

A policy names ports as single numbers (22, "5432"), inclusive ranges ("855-859") or named
sets: ``iana:unassigned``, ``iana:reserved``, ``iana:assigned`` (from IANA's registry, per
protocol), ``system`` (0-1023), ``user`` (1024-49151) and ``dynamic`` (49152-65535).
"""

from __future__ import annotations

import bisect
import re

from ansible_collections.portwarden.compliance.plugins.module_utils import registry

MAX_PORT = 65535
FIXED_SETS = {
    'system': ((0, 1023),),
    'user': ((1024, 49151),),
    'dynamic': ((49152, MAX_PORT),),
}
IANA_SETS = {'iana:unassigned': 'unassigned', 'iana:reserved': 'reserved', 'iana:assigned': 'assigned'}
NAMED_SETS = tuple(sorted(FIXED_SETS)) + tuple(sorted(IANA_SETS))
_RANGE = re.compile(r'^\s*(\d+)\s*-\s*(\d+)\s*$')
_SINGLE = re.compile(r'^\s*(\d+)\s*$')


class PortSpecError(ValueError):
    """A port item that is neither a port, a range nor a known set name."""


class PortSet(object):
    """An immutable set of ports kept as sorted, non-overlapping inclusive ranges."""

    __slots__ = ('ends', 'starts')

    def __init__(self, ranges=()):
        merged = []
        for start, end in sorted(ranges):
            if merged and start <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        # Tuples: a set is shared (named_set's, and port_set's of one named set), so nothing may change it.
        self.starts = tuple(start for start, _end in merged)
        self.ends = tuple(end for _start, end in merged)

    def __contains__(self, port):
        index = bisect.bisect_right(self.starts, port) - 1
        return index >= 0 and port <= self.ends[index]

    def __eq__(self, other):
        return isinstance(other, PortSet) and self.starts == other.starts and self.ends == other.ends

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((self.starts, self.ends))

    def __len__(self):
        return sum(end - start + 1 for start, end in zip(self.starts, self.ends))

    def __repr__(self):
        return 'PortSet(%s)' % self.describe()

    def ranges(self):
        return list(zip(self.starts, self.ends))

    def union(self, other):
        return PortSet(self.ranges() + other.ranges())

    def intersection(self, other):
        """The ports in both sets. Each range of the set with fewer ranges is looked up in the other by bisection:
        a rule's few ports against the baseline's thousands of ranges costs a few lookups, not a walk of them all."""
        small, large = (self, other) if len(self.starts) <= len(other.starts) else (other, self)
        starts, ends = large.starts, large.ends
        found = []
        for low, high in zip(small.starts, small.ends):
            index = bisect.bisect_left(ends, low)  # the first range of ``large`` that ends at or after low
            while index < len(starts) and starts[index] <= high:
                found.append((max(low, starts[index]), min(high, ends[index])))
                index += 1
        return PortSet(found)

    def describe(self, limit=6):
        """``22, 855-859, ...``: short enough for a message."""
        parts = ['%d' % start if start == end else '%d-%d' % (start, end) for start, end in self.ranges()[:limit]]
        if len(self.starts) > limit:
            parts.append('...')
        return ', '.join(parts)


ALL_PORTS = PortSet([(0, MAX_PORT)])


def parse_port_item(item):
    """Return ``(start, end)`` for a port or range item, or the set name for a named set.

    Raises PortSpecError with a message saying what was expected.
    """
    if isinstance(item, bool):
        raise PortSpecError('%r is not a port' % (item,))
    if isinstance(item, float) and item.is_integer():
        item = int(item)  # JSON Schema's integer type admits 22.0
    if isinstance(item, int):
        if 0 <= item <= MAX_PORT:
            return item, item
        raise PortSpecError('port %d is outside 0-%d' % (item, MAX_PORT))
    if not isinstance(item, str):
        raise PortSpecError('%r is not a port, a range "A-B" or a set name' % (item,))
    if item in FIXED_SETS or item in IANA_SETS:
        return item
    match = _SINGLE.match(item) or _RANGE.match(item)
    if not match:
        raise PortSpecError('%r is not a port, a range "A-B" or one of %s' % (item, ', '.join(NAMED_SETS)))
    start = int(match.group(1))
    end = int(match.group(2)) if match.lastindex == 2 else start
    if start > MAX_PORT or end > MAX_PORT:
        raise PortSpecError('%r is outside 0-%d' % (item, MAX_PORT))
    if start > end:
        raise PortSpecError('range %r starts after it ends' % (item,))
    return start, end


_NAMED_CACHE = {}


def named_set(name, protocol):
    """The PortSet of a named set for a protocol (IANA sets differ per protocol)."""
    key = (name, protocol if name in IANA_SETS else None)
    found = _NAMED_CACHE.get(key)
    if found is None:
        if name in FIXED_SETS:
            found = PortSet(FIXED_SETS[name])
        else:
            found = PortSet(registry.iana_ranges(IANA_SETS[name], protocol))
        _NAMED_CACHE[key] = found
    return found


def port_set(spec, protocol):
    """Compile a ``ports`` value (one item or a list of items) into a PortSet for ``protocol``.

    ``None`` means every port. Raises PortSpecError on a bad item.
    """
    if spec is None:
        return ALL_PORTS
    items = spec if isinstance(spec, list) else [spec]
    if len(items) == 1:  # ``ports: iana:unassigned``: the named set itself, not a copy of its thousands of ranges
        parsed = parse_port_item(items[0])
        return PortSet([parsed]) if isinstance(parsed, tuple) else named_set(parsed, protocol)
    ranges = []
    for item in items:
        parsed = parse_port_item(item)
        if isinstance(parsed, tuple):
            ranges.append(parsed)
        else:
            ranges.extend(named_set(parsed, protocol).ranges())
    return PortSet(ranges)
