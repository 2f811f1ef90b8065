# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Evaluate step: (sockets, coverage, policy, host, groups, today) -> status and findings.

Pure standard library, shared by the audit action, the CLI and the tests. The policy must
have passed validation (policy_check plus the JSON Schema on the controller); compile_policy
still refuses what it cannot compile with PolicyError rather than guessing.

A host is ``drift`` when it has a finding that is not waived, ``unknown`` when the gather
cannot support a verdict (it failed, its coverage is partial, or a rule needs process facts
the gather could not give), and ``compliant`` only when everything was seen and allowed.
"""

from __future__ import annotations

import bisect
import datetime
import fnmatch
import gc
import hashlib
import ipaddress
import json
import operator

from ansible_collections.portwarden.compliance.plugins.module_utils import registry
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_check import format_path, parse_date
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_ports import MAX_PORT, PortSpecError, port_set
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import (
    CONTAINER_KINDS,
    DEFAULT_RULE_ID,
    PROTOCOLS,
    SEVERITIES,
    VIA,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.report_sockets import (
    HOST_WHERE,
    exposure_label,
    namespace_where,
    socket_label,
)

SEVERITY_RANK = dict((name, rank) for rank, name in enumerate(SEVERITIES))
STATUSES = ('compliant', 'drift', 'unknown')
# A finding is drift, waived, unknown (process facts missing) or, after remediation, remediated.
FINDING_STATUSES = ('drift', 'waived', 'unknown', 'remediated')
PROCESS_FIELDS = ('pid', 'name', 'user', 'uid', 'exe', 'unit', 'start_time')  # never the command line: it carries secrets
_FINDING_ORDER = operator.itemgetter('rule', 'protocol', 'port', 'address')  # then gather order: by namespace
_NO_PROCESSES = ()
_CACHE_LIMIT = 1 << 16  # distinct addresses remembered; a hostile gather cannot grow the caches without bound


class PolicyError(ValueError):
    """A policy that cannot be compiled (it should have failed validation first)."""


def policy_digest(policy):
    """sha256 of the policy's canonical JSON: the same policy gives the same digest, file or dict."""
    text = json.dumps(policy, sort_keys=True, separators=(',', ':'), default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def severity_at_least(severity, threshold):
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[threshold]


# ---- host scoping -----------------------------------------------------------------------------

class HostScope(object):
    """Host patterns: shell-style names, ``group:NAME`` for inventory groups, ``!`` to exclude."""

    __slots__ = ('exclude', 'include', 'names')

    def __init__(self, patterns):
        self.include = []
        self.exclude = []
        # Plain host names (no group, no wildcard) are looked up in a set: a rule may list thousands of hosts
        # (portwarden baseline scopes rules to the hosts that have a listener), and each host is judged against each.
        self.names = set()
        for pattern in patterns or ():
            if pattern.startswith('!'):
                self.exclude.append(pattern[1:])
            elif pattern.startswith('group:') or any(char in pattern for char in '*?['):
                self.include.append(pattern)
            else:
                self.names.add(pattern)

    @staticmethod
    def _matches(pattern, host, groups):
        if pattern.startswith('group:'):
            wanted = pattern[len('group:'):]
            return any(fnmatch.fnmatchcase(group, wanted) for group in groups)
        return fnmatch.fnmatchcase(host, pattern)

    def applies(self, host, groups):
        if any(self._matches(pattern, host, groups) for pattern in self.exclude):
            return False
        if not self.include and not self.names:
            return True
        return host in self.names or any(self._matches(pattern, host, groups) for pattern in self.include)


class NamespaceScope(object):
    """Namespace selectors (see policy_schema's ``namespace_patterns``): ``host``, ``other``, ``container`` or a
    runtime (``docker``...), optionally ``:NAME`` matched against the container's name or id; ``!`` excludes.

    A socket without namespace data (gathered with ``namespaces: host``) is in the host's namespace.
    """

    __slots__ = ('_cache', 'exclude', 'include')

    def __init__(self, selectors):
        self.include = []
        self.exclude = []
        self._cache = {}
        for selector in selectors:
            target = self.exclude if selector.startswith('!') else self.include
            kind, _colon, pattern = selector.lstrip('!').partition(':')
            target.append((kind, pattern or None))

    @staticmethod
    def _matches(selector, namespace):
        kind, pattern = selector
        if not isinstance(namespace, dict) or namespace.get('host'):
            return kind == 'host'
        container = namespace.get('container')
        if not isinstance(container, dict) or not container.get('kind'):
            return kind == 'other'
        if kind != 'container' and kind != container['kind']:
            return False
        if pattern is None:
            return True
        names = (container.get('name'), container.get('id'), container.get('pod_uid'))
        return any(isinstance(name, str) and fnmatch.fnmatchcase(name, pattern) for name in names)

    def forget(self):
        """Start a new host: inodes name namespaces only within one host (every host's own is 4026531840)."""
        self._cache.clear()

    def applies(self, namespace):
        # Cached by inode for the host being evaluated (the evaluation calls forget() before each host).
        key = namespace.get('inode') if isinstance(namespace, dict) else None
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = (not any(self._matches(sel, namespace) for sel in self.exclude)
                                        and (not self.include or any(self._matches(sel, namespace) for sel in self.include)))
        return found


def _namespace_scope(selectors):
    return NamespaceScope(selectors) if selectors else None


# ---- socket classification ---------------------------------------------------------------------

_BIND_CACHE = {}


def bind_class(address):
    """``any`` (0.0.0.0, ::), ``loopback`` (127/8, ::1, ::ffff:127.x) or ``specific``."""
    found = _BIND_CACHE.get(address)
    if found is None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            found = 'specific'
        else:
            mapped = getattr(ip, 'ipv4_mapped', None)
            if mapped is not None:
                ip = mapped
            found = 'any' if ip.is_unspecified else 'loopback' if ip.is_loopback else 'specific'
        if len(_BIND_CACHE) >= _CACHE_LIMIT:
            _BIND_CACHE.clear()
        _BIND_CACHE[address] = found
    return found


_MAPPED_CACHE = {}


def _ipv4_mapped(address):
    """Whether an IPv6 address is IPv4-mapped, however it is written (``::ffff:10.0.0.1`` or ``::ffff:a00:1``)."""
    found = _MAPPED_CACHE.get(address)
    if found is None:
        try:
            found = getattr(ipaddress.ip_address(address), 'ipv4_mapped', None) is not None
        except ValueError:
            found = False
        if len(_MAPPED_CACHE) >= _CACHE_LIMIT:
            _MAPPED_CACHE.clear()
        _MAPPED_CACHE[address] = found
    return found


def reachable_families(entry):
    """The address families a socket accepts: a dual-stack ``[::]`` socket also takes IPv4.

    v6only unknown (procfs, psutil) counts as dual-stack: the conservative reading.
    """
    if entry['family'] == 'ipv4':
        return ('ipv4',)
    address = entry['address']
    if _ipv4_mapped(address):
        return ('ipv4',)
    if bind_class(address) == 'any' and entry.get('v6only') is not True:
        return ('ipv4', 'ipv6')
    return ('ipv6',)


# ---- compiled policy ---------------------------------------------------------------------------

def _as_list(value):
    if value is None:
        return None
    return value if isinstance(value, list) else [value]


class Rule(object):
    """One compiled rule: port sets per protocol, optional filters, the expectation."""

    __slots__ = ('bind', 'closed', 'closed_text', 'description', 'families', 'id', 'include_ephemeral', 'namespaces',
                 'owners', 'plain', 'ports', 'published_text', 'remediate', 'scope', 'severity', 'source', 'suffix', 'via',
                 'want_bind')

    def __init__(self, data):
        self.source = data  # as the policy wrote it, for explanations
        self.id = data['id']
        self.description = data.get('description') or ''
        self.severity = data.get('severity', 'medium')
        if self.severity not in SEVERITY_RANK:
            raise PolicyError('rule %s: unknown severity %r' % (self.id, self.severity))
        match = data.get('match') or {}
        protocols = match.get('protocols') or list(PROTOCOLS)
        try:
            self.ports = dict((protocol, port_set(match.get('ports'), protocol)) for protocol in protocols)
        except PortSpecError as exc:
            raise PolicyError('rule %s: %s' % (self.id, exc)) from exc
        self.families = frozenset(match['families']) if match.get('families') else None
        self.bind = frozenset(match['bind']) if match.get('bind') else None
        self.include_ephemeral = bool(match.get('include_ephemeral'))
        self.via = frozenset(match['via']) if match.get('via') and set(match['via']) != set(VIA) else None
        self.scope = HostScope(data.get('hosts'))
        self.namespaces = _namespace_scope(data.get('namespaces'))
        self.remediate = data.get('remediate')  # None: the rule leaves it to the role's default
        expect = data.get('expect')
        self.closed = expect == 'closed'
        expect = {} if self.closed else (expect or {})
        if not self.closed and not isinstance(expect, dict):
            raise PolicyError('rule %s: expect must be "closed" or a mapping' % self.id)
        self.owners = Owners(expect)
        want_bind = _as_list(expect.get('bind'))
        self.want_bind = frozenset(want_bind) if want_bind else None
        # Matched on protocol and port alone (the common case): the per-socket check is one flag.
        self.plain = self.families is None and self.bind is None and self.namespaces is None and self.via is None
        # Message pieces, made once; a finding's message is label + before + who + after.
        self.suffix = '; rule %s%s' % (self.id, self.description and ': %s' % self.description)
        self.closed_text = (' must be closed but is listening (', ')' + self.suffix)
        self.published_text = (' must be closed but is published (', ')' + self.suffix)

    def matches(self, entry):
        """Whether the socket falls under this rule (protocol and ports already checked by the caller)."""
        return self.mismatch(entry) is None

    def mismatch(self, entry):
        """None when the socket falls under this rule (protocol and ports already checked by the caller), else the
        first match key it fails: ``include_ephemeral``, ``families``, ``via``, ``namespaces`` or ``bind``."""
        if entry['ephemeral'] and not self.include_ephemeral:
            return 'include_ephemeral'
        if self.families is not None and not self.families.intersection(reachable_families(entry)):
            return 'families'
        if self.via is not None and entry.get('via', 'listen') not in self.via:
            return 'via'
        if self.namespaces is not None and not self.namespaces.applies(entry.get('namespace')):
            return 'namespaces'
        if self.bind is None or (entry.get('bind') or bind_class(entry['address'])) in self.bind:
            return None
        return 'bind'

    @property
    def needs_processes(self):
        return bool(self.owners)

    def violations(self, entry):
        """Return (problems, unknown): what the socket breaks, and what could not be checked."""
        if self.closed:
            return ['must be closed but is listening'], []
        problems = []
        unknown = []
        if self.want_bind is not None:
            actual = entry.get('bind') or bind_class(entry['address'])
            if actual not in self.want_bind:
                problems.append('is bound to %s addresses; allowed: %s' % (actual, ', '.join(sorted(self.want_bind))))
        if self.owners:
            processes = entry.get('processes') or []
            if not processes:
                unknown.append('no owning process is known, so the allowed %s cannot be checked'
                               % '/'.join(self.owners.keys()))
            else:
                problems.extend('is held by ' + miss for proc in processes for _key, miss in self.owners.misses(proc))
        return problems, unknown


# The owner keys of a rule's expect and of a waiver, and the process fields each one's patterns are matched against.
OWNER_KEYS = ('processes', 'users', 'exe', 'units')
_OWNER_FIELDS = {'processes': ('name', 'exe'), 'users': ('user', 'uid'), 'exe': ('exe',), 'units': ('unit',)}
_OWNER_NOUNS = {'processes': 'name or executable', 'users': 'user', 'exe': 'executable', 'units': 'unit'}


class Owners(object):
    """Who may hold a socket: the shell-style ``processes`` (name or executable path), ``users`` (name or uid),
    ``exe`` (executable path only) and ``units`` patterns of a rule's expect or of a waiver. One implementation
    for both, so that a waiver bound to a process means what a rule about that process means."""

    __slots__ = ('patterns',)

    def __init__(self, data):
        self.patterns = tuple((key, _as_list(data[key])) for key in OWNER_KEYS if data.get(key) is not None)

    def __bool__(self):
        return bool(self.patterns)

    def keys(self):
        return [key for key, _patterns in self.patterns]

    def describe(self):
        return dict((key, list(patterns)) for key, patterns in self.patterns)

    def misses(self, proc):
        """What about one holder these patterns do not allow: ``(key, 'LABEL...; allowed NOUN: PATTERNS')`` pairs."""
        return [(key, _owner_miss(key, patterns, proc)) for key, patterns in self.patterns
                if not _owner_match(key, patterns, proc)]

    def noun(self, key):
        """What of a holder ``key`` reads, in words (processes given only as paths read the executable)."""
        patterns = dict(self.patterns).get(key) or ()
        return 'executable' if key == 'processes' and all('/' in pattern for pattern in patterns) else _OWNER_NOUNS[key]

    def unknown(self, proc):
        """The keys whose every field is unknown for this holder (a gather without root): nothing to match. A unit
        is never unknown: the cgroup is readable by anyone, and no unit means the process is in none."""
        return [key for key, patterns in self.patterns
                if key != 'units' and all(value is None for value in _owner_values(proc, key, patterns))]


def _owner_values(proc, key, patterns=()):
    """The fields of a holder that ``key``'s patterns are matched against (paths only, for processes given as paths)."""
    if key == 'users':
        uid = proc.get('uid')
        return (proc.get('user'), None if uid is None else str(uid))
    if key == 'processes' and patterns and all('/' in pattern for pattern in patterns):
        return (proc.get('exe'),)
    return tuple(proc.get(field) for field in _OWNER_FIELDS[key])


def _owner_match(key, patterns, proc):
    if key != 'processes':
        return _any_match(patterns, _owner_values(proc, key))
    # A process sets its own name (comm: any 15 bytes, a slash too): a pattern with a slash is an executable path,
    # matched against the executable only, so that no name can pass for the path.
    name, exe = proc.get('name'), proc.get('exe')
    return any((exe is not None and fnmatch.fnmatchcase(exe, pattern))
               or ('/' not in pattern and name is not None and fnmatch.fnmatchcase(name, pattern)) for pattern in patterns)


def _owner_miss(key, patterns, proc):
    label = '%s[%s]' % (proc.get('name'), proc.get('pid'))
    allowed = ', '.join(patterns)
    if key == 'processes':
        return '%s; allowed processes: %s' % (label, allowed)
    if key == 'users':
        return '%s as user %s; allowed users: %s' % (label, proc.get('user') or proc.get('uid'), allowed)
    if key == 'exe':
        return '%s with executable %s; allowed executables: %s' % (label, proc.get('exe') or '(unknown)', allowed)
    return '%s in unit %s; allowed units: %s' % (label, proc.get('unit') or '(none)', allowed)


def _any_match(patterns, values):
    return any(value is not None and fnmatch.fnmatchcase(value, pattern) for pattern in patterns for value in values)


# What a waiver (in scope of the host, naming the finding's rule) says about one finding: about another socket
# (protocols, namespaces, ports), expired, bound to processes that do not hold it all, bound to processes the
# gather could not tell, or covering it.
WAIVER_VERDICTS = ('protocols', 'namespaces', 'ports', 'expired', 'not_covered', 'unknown', 'covers')


class Waiver(object):
    __slots__ = ('approved_by', 'expires', 'namespaces', 'owners', 'ports', 'protocols', 'reason', 'rule', 'scope', 'source',
                 'ticket')

    def __init__(self, data):
        self.source = data  # as the policy wrote it, for explanations
        self.rule = data['rule']
        self.scope = HostScope(data.get('hosts'))
        self.namespaces = _namespace_scope(data.get('namespaces'))
        try:
            self.ports = dict((protocol, port_set(data['ports'], protocol)) for protocol in PROTOCOLS) \
                if data.get('ports') is not None else None
        except PortSpecError as exc:
            raise PolicyError('waiver for %s: %s' % (self.rule, exc)) from exc
        self.protocols = frozenset(data['protocols']) if data.get('protocols') else None
        self.owners = Owners(data)
        self.reason = data['reason']
        self.ticket = data.get('ticket')
        self.approved_by = data.get('approved_by')
        self.expires = parse_date(data['expires'])
        if self.expires is None:
            raise PolicyError('waiver for %s: expires %r is not a date' % (self.rule, data['expires']))

    def describe(self):
        described = {'rule': self.rule, 'reason': self.reason, 'ticket': self.ticket, 'approved_by': self.approved_by,
                     'expires': self.expires.isoformat()}
        described.update(self.owners.describe())
        return described

    def judge(self, finding, today):
        """``(verdict, detail)``: one of WAIVER_VERDICTS, and for not_covered and unknown the holders it is about.

        A waiver bound to processes covers a socket only when every process holding it is one it names; a socket
        whose holders are not known (a gather without root), or miss a field the waiver matches, is never waived.
        """
        protocol = finding['protocol']
        if self.protocols is not None and protocol not in self.protocols:
            return 'protocols', None
        if self.namespaces is not None and not self.namespaces.applies(finding['namespace']):
            return 'namespaces', None
        if self.ports is not None:
            # PortSet's lookup, inlined: this runs for every finding of a waived rule.
            ports = self.ports[protocol]
            index = bisect.bisect_right(ports.starts, finding['port']) - 1
            if index < 0 or finding['port'] > ports.ends[index]:
                return 'ports', None
        if self.expires < today:
            return 'expired', None
        if self.owners:
            return self._judge_holders(finding['processes'])
        return 'covers', None

    def _judge_holders(self, processes):
        if not processes:
            return 'unknown', 'no process holding it is known'
        rogues = []
        blind = []
        for proc in processes:
            misses = self.owners.misses(proc)
            if not misses:
                continue
            unknown = self.owners.unknown(proc)
            known = [miss for key, miss in misses if key not in unknown]
            if known:
                rogues.extend(known)
            else:
                blind.append('%s[%s] has no known %s' % (proc.get('name'), proc.get('pid'),
                                                         ' or '.join(self.owners.noun(key) for key in unknown)))
        if rogues:
            return 'not_covered', '; '.join(rogues)
        if blind:
            return 'unknown', '; '.join(blind)
        return 'covers', None


class CompiledPolicy(object):
    """A validated policy, compiled once and evaluated for many hosts."""

    def __init__(self, policy):
        if not isinstance(policy, dict):
            raise PolicyError('a policy is a mapping')
        self.name = policy.get('name', '')
        self.digest = policy_digest(policy)
        # With overlays from inventory (policy_overlay.compile_host_policy): the digest is the effective one,
        # base_digest the policy's own, overlays what applied.
        self.base_digest = self.digest
        self.overlays = []
        self.overlay_warnings = []
        self.default = policy.get('default', 'allow')
        self.default_severity = policy.get('default_severity', 'medium')
        self.warning_days = policy.get('waiver_warning_days', 14)
        self.default_remediate = policy.get('default_remediate')
        self._segments = {}
        try:
            self.rules = [Rule(rule) for rule in policy.get('rules') or []]
            self.waivers = [Waiver(waiver) for waiver in policy.get('waivers') or []]
        except (KeyError, TypeError) as exc:
            raise PolicyError('policy cannot be compiled: %s' % exc) from exc
        # Their verdicts are cached per host: an evaluation of one host at a time per compiled policy.
        self.namespace_scopes = [item.namespaces for item in self.rules + self.waivers if item.namespaces is not None]

    def info(self):
        if not self.overlays:
            return {'name': self.name, 'sha256': self.digest}
        return {'name': self.name, 'sha256': self.digest, 'base_sha256': self.base_digest,
                'overlays': [dict(record) for record in self.overlays]}

    def remediation(self):
        """Rule id -> the rule's ``remediate`` value (None where the rule does not say)."""
        found = dict((rule.id, rule.remediate) for rule in self.rules)
        found[DEFAULT_RULE_ID] = self.default_remediate
        return found

    def candidates(self, rules, protocol):
        """(starts, rules per segment) for one protocol: one bisect finds every rule whose ports hold a port.

        The segments split 0-65535 wherever any of ``rules`` starts or stops covering ports; built
        once per set of rules in scope (hosts share scopes), then cached.
        """
        key = (protocol, tuple(id(rule) for rule in rules))
        found = self._segments.get(key)
        if found is None:
            found = self._segments[key] = _segments([(rule, rule.ports[protocol]) for rule in rules
                                                     if protocol in rule.ports])
        return found


def compile_policy(policy):
    return CompiledPolicy(policy)


def _segments(rule_ports):
    points = {0}
    for _rule, ports in rule_ports:
        for start, end in ports.ranges():
            points.add(start)
            if end < MAX_PORT:
                points.add(end + 1)
    starts = sorted(points)
    members = [[] for _start in starts]
    for rule, ports in rule_ports:
        for start, end in ports.ranges():
            first = bisect.bisect_left(starts, start)
            stop = bisect.bisect_left(starts, end + 1) if end < MAX_PORT else len(starts)
            for index in range(first, stop):
                members[index].append(rule)
    interned = {}
    return starts, [interned.setdefault(tuple(rules), tuple(rules)) for rules in members]


# ---- the gather result's shape ---------------------------------------------------------------------

class _Malformed(Exception):
    """Where a gather result leaves the shape the gather writes, and what was expected there."""

    def __init__(self, path, expected, value=None, got=None):
        super(_Malformed, self).__init__('%s: expected %s, got %s' % (format_path(path), expected,
                                                                      got if got is not None else _brief(value)))


def _brief(value):
    """A short description of a value: never the repr of a large or deeply nested structure."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if -10 ** 18 < value < 10 ** 18 else 'an integer of %d bits' % value.bit_length()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:40]) + '...'
    if isinstance(value, dict):
        return 'a mapping'
    if isinstance(value, list):
        return 'a list'
    return 'a %s' % type(value).__name__


_FAMILY_OF = {}  # address -> 'ipv4', 'ipv6' or '' (not an address)
_ENDPOINTS = set()  # (protocol, family, address) found valid, for the fast check of the next sockets
_SOCKET_PROTOCOLS = frozenset(PROTOCOLS)
_SOCKET_FAMILIES = frozenset(('ipv4', 'ipv6'))
_PROCESS_TEXT = ('name', 'user', 'exe', 'unit')
_NAMESPACE_KEYS = frozenset(('inode', 'host', 'pid', 'container'))
_CONTAINER_KEYS = frozenset(('kind', 'id', 'pod_uid', 'name'))
_CONTAINER_KINDS = frozenset(CONTAINER_KINDS)


def _family_of(address):
    found = _FAMILY_OF.get(address)
    if found is None:
        try:
            found = 'ipv%d' % ipaddress.ip_address(address).version
        except ValueError:
            found = ''
        if len(_FAMILY_OF) >= _CACHE_LIMIT:
            _FAMILY_OF.clear()
        _FAMILY_OF[address] = found
    return found


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0  # bool is an int, and True is no count


def _check_strings(value, path):
    if not isinstance(value, list):
        raise _Malformed(path, 'a list of strings', value)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise _Malformed(path + [index], 'a string', item)


def _check_coverage(coverage):
    complete = coverage.get('complete')
    if not isinstance(complete, bool):  # "false" and 0 are no answer
        raise _Malformed(['coverage', 'complete'], 'true or false', complete, got=None if 'complete' in coverage else 'nothing')
    if 'errors' not in coverage:
        raise _Malformed(['coverage', 'errors'], 'a list of strings', got='nothing')
    errors = coverage['errors']
    _check_strings(errors, ['coverage', 'errors'])
    if complete and errors:
        raise _Malformed(['coverage', 'errors'], 'no errors when coverage.complete is true',
                         got='%d error%s' % (len(errors), '' if len(errors) == 1 else 's'))
    if 'notes' in coverage:
        _check_strings(coverage['notes'], ['coverage', 'notes'])
    if 'namespaces' in coverage and not isinstance(coverage['namespaces'], dict):
        raise _Malformed(['coverage', 'namespaces'], 'a mapping', coverage['namespaces'])
    if 'nat' in coverage and not isinstance(coverage['nat'], dict):
        raise _Malformed(['coverage', 'nat'], 'a mapping', coverage['nat'])


def _check_processes(processes, path):
    if not isinstance(processes, list):
        raise _Malformed(path, 'a list of processes', processes, got=None if processes is not None else 'nothing')
    for index, proc in enumerate(processes):
        if not isinstance(proc, dict):
            raise _Malformed(path + [index], 'a mapping', proc)
        pid = proc.get('pid')
        if not _is_count(pid):
            raise _Malformed(path + [index, 'pid'], 'a process id', pid)
        for field in _PROCESS_TEXT:
            value = proc.get(field)
            if value is not None and not isinstance(value, str):
                raise _Malformed(path + [index, field], 'a string or null', value)
        uid = proc.get('uid')
        if uid is not None and not _is_count(uid):
            raise _Malformed(path + [index, 'uid'], 'a user id or null', uid)
        started = proc.get('start_time')  # clock ticks after boot, as the report schema has it
        if started is not None and not _is_count(started):
            raise _Malformed(path + [index, 'start_time'], 'clock ticks (an integer) or null', started)


def _check_namespace(namespace, path, described):
    if not isinstance(namespace, dict):
        raise _Malformed(path, 'a namespace mapping or null', namespace)
    extra = sorted(str(key) for key in namespace if key not in _NAMESPACE_KEYS)  # only when it has something else
    if extra:
        raise _Malformed(path, 'only the keys %s' % ', '.join(sorted(_NAMESPACE_KEYS)), got='also %s' % ', '.join(extra)[:80])
    if not _is_count(namespace.get('inode')):
        raise _Malformed(path + ['inode'], 'a namespace inode', namespace.get('inode'))
    if not isinstance(namespace.get('host'), bool):
        raise _Malformed(path + ['host'], 'true or false', namespace.get('host'))
    pid = namespace.get('pid')
    if pid is not None and not _is_count(pid):
        raise _Malformed(path + ['pid'], 'a process id or null', pid)
    container = namespace.get('container')
    if container is None:
        _check_same_namespace(namespace, path, described)
        return
    if not isinstance(container, dict):
        raise _Malformed(path + ['container'], 'a container mapping or null', container)
    extra = sorted(str(key) for key in container if key not in _CONTAINER_KEYS)
    if extra:
        raise _Malformed(path + ['container'], 'only the keys %s' % ', '.join(sorted(_CONTAINER_KEYS)),
                         got='also %s' % ', '.join(extra)[:80])
    kind = container.get('kind')
    if not isinstance(kind, str) or kind not in _CONTAINER_KINDS:
        raise _Malformed(path + ['container', 'kind'], 'one of %s' % ', '.join(CONTAINER_KINDS), kind)
    for field in ('id', 'pod_uid', 'name'):
        value = container.get(field)
        if value is not None and not isinstance(value, str):
            raise _Malformed(path + ['container', field], 'a string or null', value)
    _check_same_namespace(namespace, path, described)


def _check_same_namespace(namespace, path, described):
    # The verdicts of namespace selectors are cached per inode: one inode described two ways (the host's
    # namespace once, a container's the next) would be judged by whichever came first.
    first = described.setdefault(namespace['inode'], namespace)
    if first is not namespace and first != namespace:
        raise _Malformed(path, 'the namespace %d as the other sockets there describe it' % namespace['inode'],
                         got='another description')


def _processes_ok(processes):
    """_check_processes' common case in one pass, without a message: whether every process is well formed."""
    if not isinstance(processes, list):
        return False
    for proc in processes:
        if not isinstance(proc, dict):
            return False
        get = proc.get
        pid, uid, started, name, user, exe, unit = (get('pid'), get('uid'), get('start_time'), get('name'), get('user'),
                                                    get('exe'), get('unit'))
        if not (_is_count(pid) and (uid is None or _is_count(uid)) and (started is None or _is_count(started))
                and (name is None or isinstance(name, str)) and (user is None or isinstance(user, str))
                and (exe is None or isinstance(exe, str)) and (unit is None or isinstance(unit, str))):
            return False
    return True


def _namespace_ok(namespace, described):
    """_check_namespace's common case, without a message: whether the namespace is well formed and agrees."""
    if not isinstance(namespace, dict) or not namespace.keys() <= _NAMESPACE_KEYS:
        return False
    get = namespace.get
    inode, host, pid, container = get('inode'), get('host'), get('pid'), get('container')
    if not (_is_count(inode) and isinstance(host, bool) and (pid is None or _is_count(pid))):
        return False
    if container is not None:
        if not isinstance(container, dict) or not container.keys() <= _CONTAINER_KEYS:
            return False
        get = container.get
        kind, cid, pod, name = get('kind'), get('id'), get('pod_uid'), get('name')
        if not (isinstance(kind, str) and kind in _CONTAINER_KINDS and (cid is None or isinstance(cid, str))
                and (pod is None or isinstance(pod, str)) and (name is None or isinstance(name, str))):
            return False
    first = described.setdefault(inode, namespace)
    return first is namespace or first == namespace


def _check_socket(entry, index, checked, seen):
    """One socket, field by field: raise _Malformed where it is wrong; else note what it showed valid."""
    if not isinstance(entry, dict):
        raise _Malformed(['sockets', index], 'a socket mapping', entry)
    protocol = entry.get('protocol')
    if not isinstance(protocol, str) or protocol not in _SOCKET_PROTOCOLS:
        raise _Malformed(['sockets', index, 'protocol'], 'tcp or udp', protocol)
    family = entry.get('family')
    if not isinstance(family, str) or family not in _SOCKET_FAMILIES:
        raise _Malformed(['sockets', index, 'family'], 'ipv4 or ipv6', family)
    address = entry.get('address')
    if not isinstance(address, str) or _family_of(address) != family:
        raise _Malformed(['sockets', index, 'address'], 'an %s address' % family.replace('ipv', 'IPv'), address)
    port = entry.get('port')
    if not (isinstance(port, int) and not isinstance(port, bool)) or not 0 <= port <= MAX_PORT:
        raise _Malformed(['sockets', index, 'port'], 'a port number 0-%d' % MAX_PORT, port)
    if not isinstance(entry.get('ephemeral'), bool):
        raise _Malformed(['sockets', index, 'ephemeral'], 'true or false', entry.get('ephemeral'),
                         got=None if 'ephemeral' in entry else 'nothing')
    v6only = entry.get('v6only', 0)
    if v6only is not None and not isinstance(v6only, bool):
        raise _Malformed(['sockets', index, 'v6only'], 'true, false or null', v6only,
                         got=None if 'v6only' in entry else 'nothing')
    inode = entry.get('inode')  # the verdict does not read it; only the check for repeats does
    if inode is not None and not _is_count(inode):
        raise _Malformed(['sockets', index, 'inode'], 'a socket inode or null', inode)
    listed, placed, described = checked
    processes = entry.get('processes')
    if id(processes) not in listed:
        _check_processes(processes, ['sockets', index, 'processes'])
        listed.add(id(processes))
    namespace = entry.get('namespace')
    if namespace is not None and id(namespace) not in placed:
        _check_namespace(namespace, ['sockets', index, 'namespace'], described)
        placed.add(id(namespace))
    key = (protocol, family, address, port, inode, None if namespace is None else namespace['inode'])
    if key in seen:
        raise _Malformed(['sockets', index], 'each socket once', got='a repeat of an earlier socket')
    seen.add(key)
    if len(_ENDPOINTS) >= _CACHE_LIMIT:
        _ENDPOINTS.clear()
    _ENDPOINTS.add((protocol, family, address))


def _check_gathered(gathered):
    """Raise _Malformed at the first place ``gathered`` leaves the shape gather_listening_sockets writes.

    Strict where the verdict reads (exact types: a bool is no port, "false" is no boolean), tolerant of
    keys it does not read. Process lists and namespaces shared by many sockets are checked once.
    """
    if not isinstance(gathered, dict):
        raise _Malformed([], 'a mapping with sockets and coverage', gathered)
    coverage = gathered['coverage']
    if not isinstance(coverage, dict):
        raise _Malformed(['coverage'], 'a mapping', coverage)
    if 'sockets' not in gathered:
        raise _Malformed(['sockets'], 'a list of sockets', got='nothing')
    sockets = gathered['sockets']
    if not isinstance(sockets, list):
        raise _Malformed(['sockets'], 'a list of sockets', sockets)
    _check_coverage(coverage)
    described = {}  # namespace inode -> its first description: every socket there must agree
    checked = (set(), set(), described)  # ids of the process lists, and of the namespaces, already checked
    listed, placed, _described = checked
    seen = set()
    endpoints = _ENDPOINTS
    for index, entry in enumerate(sockets):
        # The common case in one expression (a few type checks per socket: thousands per host); anything it
        # does not pass, _check_socket looks at field by field, to accept it or to say what is wrong.
        try:
            port = entry['port']
            v6only = entry['v6only']
            inode = entry.get('inode')
            namespace = entry.get('namespace')
            processes = entry['processes']
            # A bool is an int: True and False are the only bools, so "is not" tells them apart quickly.
            if (isinstance(port, int) and port is not True and port is not False and 0 <= port <= MAX_PORT
                    and isinstance(entry['ephemeral'], bool) and (v6only is None or v6only is True or v6only is False)
                    and (entry['protocol'], entry['family'], entry['address']) in endpoints
                    and (inode is None or (isinstance(inode, int) and inode is not True and inode is not False and inode >= 0))
                    # Shared lists and namespaces (in-process) are checked once; copies (from JSON) each time.
                    and (id(processes) in listed or _processes_ok(processes))
                    and (namespace is None or id(namespace) in placed or _namespace_ok(namespace, described))):
                listed.add(id(processes))
                if namespace is not None:
                    placed.add(id(namespace))
                key = (entry['protocol'], entry['family'], entry['address'], port, inode,
                       None if namespace is None else namespace['inode'])
                if key not in seen:
                    seen.add(key)
                    continue
        except (KeyError, TypeError, AttributeError):  # not a mapping, a key missing, a list where a string belongs
            pass
        _check_socket(entry, index, checked, seen)
    # The gather counts what it sent: a list cut short (or padded) on the way no longer matches.
    if 'sockets' in coverage and (not _is_count(coverage['sockets']) or coverage['sockets'] != len(sockets)):
        raise _Malformed(['coverage', 'sockets'], 'the number of sockets, %d' % len(sockets), coverage['sockets'])
    _check_nat(gathered, coverage, described)


_NAT_MODES = ('auto', 'off')
_EXPOSURE_ACTIONS = ('dnat', 'redirect')
_EXPOSURE_HOOKS = frozenset(('prerouting', 'output'))
_OWNER_KINDS = ('namespace', 'local', 'unknown')
_EXPOSURE_TEXT = ('source', 'table', 'chain', 'rule')


def _network_family(address):
    try:
        return 'ipv%d' % ipaddress.ip_network(address, strict=False).version
    except ValueError:
        return ''


def _check_port(value, path, nullable=False):
    if nullable and value is None:
        return
    if not (isinstance(value, int) and not isinstance(value, bool)) or not 0 <= value <= MAX_PORT:
        raise _Malformed(path, 'a port number 0-%d%s' % (MAX_PORT, ' or null' if nullable else ''), value)


def _check_nat(gathered, coverage, described):
    """``exposures`` and ``coverage.nat`` (gathers from before NAT was read have neither: judged as before)."""
    if 'exposures' not in gathered and 'nat' not in coverage:
        return
    nat = coverage.get('nat')
    if not isinstance(nat, dict):
        raise _Malformed(['coverage', 'nat'], 'a mapping (the gather returned exposures)', nat,
                         got=None if 'nat' in coverage else 'nothing')
    if nat.get('mode') not in _NAT_MODES:
        raise _Malformed(['coverage', 'nat', 'mode'], 'auto or off', nat.get('mode'))
    if not isinstance(nat.get('sources'), dict):
        raise _Malformed(['coverage', 'nat', 'sources'], 'a mapping', nat.get('sources'))
    exposures = gathered.get('exposures')
    if not isinstance(exposures, list):
        raise _Malformed(['exposures'], 'a list of exposures', exposures, got=None if 'exposures' in gathered else 'nothing')
    if not _is_count(nat.get('exposures')) or nat['exposures'] != len(exposures):
        raise _Malformed(['coverage', 'nat', 'exposures'], 'the number of exposures, %d' % len(exposures), nat.get('exposures'))
    if nat['mode'] == 'off' and exposures:
        raise _Malformed(['exposures'], 'none when coverage.nat.mode is off', got='%d' % len(exposures))
    listed = set()
    for index, exposure in enumerate(exposures):
        _check_exposure(exposure, ['exposures', index], described, listed)


def _check_exposure(exposure, path, described, listed):
    if not isinstance(exposure, dict):
        raise _Malformed(path, 'an exposure mapping', exposure)
    protocol = exposure.get('protocol')
    if not isinstance(protocol, str) or protocol not in _SOCKET_PROTOCOLS:
        raise _Malformed(path + ['protocol'], 'tcp or udp', protocol)
    family = exposure.get('family')
    if not isinstance(family, str) or family not in _SOCKET_FAMILIES:
        raise _Malformed(path + ['family'], 'ipv4 or ipv6', family)
    address = exposure.get('address')
    if not isinstance(address, str) or _network_family(address) != family:
        raise _Malformed(path + ['address'], 'an %s address or network' % family.replace('ipv', 'IPv'), address)
    _check_port(exposure.get('port'), path + ['port'])
    _check_port(exposure.get('port_end'), path + ['port_end'])
    if exposure['port_end'] < exposure['port']:
        raise _Malformed(path + ['port_end'], 'a port at or above port %d' % exposure['port'], exposure['port_end'])
    if exposure.get('action') not in _EXPOSURE_ACTIONS:
        raise _Malformed(path + ['action'], 'dnat or redirect', exposure.get('action'))
    hooks = exposure.get('hooks')
    if not isinstance(hooks, list) or not hooks or not all(isinstance(hook, str) and hook in _EXPOSURE_HOOKS for hook in hooks):
        raise _Malformed(path + ['hooks'], 'a list of prerouting and output', hooks)
    if exposure.get('interface') is not None and not isinstance(exposure.get('interface'), str):
        raise _Malformed(path + ['interface'], 'a string or null', exposure.get('interface'))
    for field in _EXPOSURE_TEXT:
        if not isinstance(exposure.get(field), str):
            raise _Malformed(path + [field], 'a string', exposure.get(field))
    _check_strings(exposure.get('conditions'), path + ['conditions'])
    target = exposure.get('target')
    if not isinstance(target, dict):
        raise _Malformed(path + ['target'], 'a target mapping', target)
    if target.get('address') is not None and not isinstance(target.get('address'), str):
        raise _Malformed(path + ['target', 'address'], 'an address, "?" or null', target.get('address'))
    _check_port(target.get('port'), path + ['target', 'port'], nullable=True)
    _check_port(target.get('port_end'), path + ['target', 'port_end'], nullable=True)
    owner = exposure.get('owner')
    if not isinstance(owner, dict):
        raise _Malformed(path + ['owner'], 'an owner mapping', owner)
    if owner.get('kind') not in _OWNER_KINDS:
        raise _Malformed(path + ['owner', 'kind'], 'one of %s' % ', '.join(_OWNER_KINDS), owner.get('kind'))
    if owner.get('reason') is not None and not isinstance(owner.get('reason'), str):
        raise _Malformed(path + ['owner', 'reason'], 'a string or null', owner.get('reason'))
    if owner.get('namespace') is not None:
        _check_namespace(owner['namespace'], path + ['owner', 'namespace'], described)
    elif owner['kind'] == 'namespace':
        raise _Malformed(path + ['owner', 'namespace'], 'the namespace of a namespace owner', got='nothing')
    _check_processes(owner.get('processes'), path + ['owner', 'processes'])
    key = (protocol, family, address, exposure['port'], exposure['port_end'], exposure['source'], exposure['table'],
           exposure['chain'], exposure['rule'])
    if key in listed:
        raise _Malformed(path, 'each exposure once', got='a repeat of an earlier exposure')
    listed.add(key)


def gather_problem(gathered):
    """Why ``gathered`` (a dict with ``coverage``) is not a gather result the verdict can trust, or None."""
    try:
        _check_gathered(gathered)
    except _Malformed as exc:
        return str(exc)
    return None


# ---- evaluation --------------------------------------------------------------------------------

class _Findings(object):
    """Builds findings; the gather shares one process list among a process's sockets, so the
    copy and the description of each list are made once per evaluation."""

    DEFAULT_TEXT = (' is listening (', ') and no rule allows it; policy default: deny')

    def __init__(self):
        self.items = []
        self._processes = {}
        self._where = {}  # inode -> where, for this host
        self._names = dict((protocol, registry.service_names(protocol)) for protocol in PROTOCOLS)

    def _describe(self, processes):
        found = self._processes[id(processes)] = (
            [dict((field, proc.get(field)) for field in PROCESS_FIELDS) for proc in processes], _who(processes))
        return found

    def add(self, rule_id, severity, entry, text, status='drift'):
        """``text`` is ``(before, after)``: the message is label + before + who + after; an unknown
        finding has no process to name, so its message is label + before + after."""
        protocol = entry['protocol']
        port = entry['port']
        address = entry['address']
        family = entry['family']
        service = self._names[protocol].get(port)
        processes = entry.get('processes') or _NO_PROCESSES
        described = self._processes.get(id(processes)) or self._describe(processes)
        namespace = entry.get('namespace')
        if namespace is None:
            where = HOST_WHERE
        else:
            where = self._where.get(namespace.get('inode'))
            if where is None:
                where = self._where[namespace.get('inode')] = namespace_where(namespace)
        label = '%s %s:%d%s (%s)' % (protocol, '[%s]' % address if family == 'ipv6' else address, port,
                                     '' if where == HOST_WHERE else ' in ' + where,
                                     'IANA: ' + service if service else 'not an IANA-assigned service')
        before, after = text
        self.items.append({
            'rule': rule_id, 'severity': severity, 'status': status,
            'protocol': protocol, 'family': family, 'address': address, 'port': port,
            'v6only': entry.get('v6only'),  # False on [::]: dual-stack, reachable over IPv4 too; None: not known
            'service': service, 'processes': described[0], 'waived': False, 'waiver': None,
            'where': where, 'namespace': namespace,
            'message': label + before + (after if status == 'unknown' else described[1] + after),
        })

    PUBLISHED_DEFAULT_TEXT = (' is published (', ') and no rule allows it; policy default: deny')

    def add_exposure(self, rule_id, severity, entry, text, status='drift'):
        """A finding about a port a DNAT or REDIRECT publishes (``entry`` from exposure_entry, ``port`` set to the
        first port of the exposure the rule is about); its message says how the port is reached."""
        exposure = entry['exposure']
        protocol = entry['protocol']
        port = entry['port']
        service = self._names[protocol].get(port)
        processes = entry['processes'] or _NO_PROCESSES
        described = self._processes.get(id(processes)) or self._describe(processes)
        owner = exposure['owner']
        label = '%s%s (%s)' % (exposure_label(exposure), '' if exposure['port'] == exposure['port_end'] else ', port %d' % port,
                               'IANA: ' + service if service else 'not an IANA-assigned service')
        before, after = text
        self.items.append({
            'rule': rule_id, 'severity': severity, 'status': status,
            'protocol': protocol, 'family': entry['family'], 'address': entry['address'], 'port': port,
            'v6only': None, 'service': service, 'processes': described[0], 'waived': False, 'waiver': None,
            'where': HOST_WHERE, 'namespace': None, 'via': 'nat', 'port_end': exposure['port_end'],
            'exposure': {
                'action': exposure['action'], 'hooks': list(exposure['hooks']), 'interface': exposure.get('interface'),
                'target': dict(exposure['target']), 'source': exposure['source'], 'table': exposure['table'],
                'chain': exposure['chain'], 'rule': exposure['rule'],
                'owner': {'kind': owner['kind'], 'reason': owner.get('reason'),
                          'where': namespace_where(owner['namespace']) if owner.get('namespace') else None},
            },
            'message': label + before + (after if status == 'unknown' else described[1] + after),
        })


def findings_builder():
    """A new builder of findings, as the evaluation of one host uses (for explanations: the same messages)."""
    return _Findings()


def exposure_entry(exposure):
    """An exposure as the rules read a socket: reached ``via`` nat, on the host, never ephemeral; one reached only
    from the output hook takes only the host's own traffic, so it is bound to loopback as far as rules go."""
    return {'protocol': exposure['protocol'], 'family': exposure['family'], 'address': exposure['address'], 'port': None,
            'v6only': True, 'ephemeral': False, 'processes': exposure['owner']['processes'], 'via': 'nat',
            'bind': 'loopback' if exposure['hooks'] == ['output'] else None, 'exposure': exposure}


def judge_exposure(exposure, tables, deny, builder, default_severity):
    """Findings of one exposure: every rule about a port of its range judges it once, at the first such port;
    under default: deny, a port of the range no rule matches is a default finding. ``tables``: each protocol's
    ``CompiledPolicy.candidates`` of the rules in the host's scope. Also portwarden explain's judgement."""
    entry = exposure_entry(exposure)
    starts, members = tables[exposure['protocol']]
    low, high = exposure['port'], exposure['port_end']
    index = bisect.bisect_right(starts, low) - 1
    matches = {}
    judged = set()
    uncovered = None
    while index < len(starts) and starts[index] <= high:
        port = max(starts[index], low)
        matched = False
        for rule in members[index]:
            found = matches.get(id(rule))
            if found is None:
                found = matches[id(rule)] = rule.matches(entry)
            if not found:
                continue
            matched = True
            if id(rule) in judged:
                continue
            judged.add(id(rule))
            entry['port'] = port
            if rule.closed:
                builder.add_exposure(rule.id, rule.severity, entry, rule.published_text)
                continue
            problems, unknown = rule.violations(entry)
            if problems:
                builder.add_exposure(rule.id, rule.severity, entry, (' %s (' % '; '.join(problems), ')' + rule.suffix))
            elif unknown:
                builder.add_exposure(rule.id, rule.severity, entry, (': ', '; '.join(unknown) + rule.suffix),
                                     status='unknown')
        if deny and not matched and uncovered is None:
            uncovered = port
        index += 1
    if uncovered is not None:
        entry['port'] = uncovered
        builder.add_exposure(DEFAULT_RULE_ID, default_severity, entry, builder.PUBLISHED_DEFAULT_TEXT)


NAT_NOT_READ = ('this gather did not read the NAT (%s), so ports that DNAT or REDIRECT rules publish with no socket on '
                'the host were not judged')


def _who(processes):
    if not processes:
        return 'no known process'
    names = ', '.join('%s[%s]' % (proc.get('name'), proc.get('pid')) for proc in processes[:3])
    if len(processes) > 3:
        names += ' and %d more' % (len(processes) - 3)
    users = sorted(set(str(proc.get('user') or proc.get('uid')) for proc in processes))
    return '%s as %s' % (names, ', '.join(users))


def judge_socket(rule, entry, builder):
    """Add the finding of a rule (not ``closed``) that matched a socket, if it has one: ``(problems, unknown)``."""
    problems, unknown = rule.violations(entry)
    if problems:
        builder.add(rule.id, rule.severity, entry, (' %s (' % '; '.join(problems), ')' + rule.suffix))
    elif unknown:
        builder.add(rule.id, rule.severity, entry, (': ', '; '.join(unknown) + rule.suffix), status='unknown')
    return problems, unknown


# Who answers behind a published port is known from the namespace gather: without it the owner is unknown to root too.
PUBLISHED_OWNER_HINT = 'for a published port, gather with namespaces: all so the process behind it is known'


def apply_waivers(findings, compiled, host, groups, today, warnings, reasons):
    """Judge every finding of one host against the waivers in its scope: waived, or a message saying why not."""
    by_rule = {}
    for waiver in compiled.waivers:
        if waiver.scope.applies(host, groups):
            by_rule.setdefault(waiver.rule, []).append(waiver)
    if not by_rule:
        return
    unchecked = 0
    published = False
    for finding in findings:
        for waiver in by_rule.get(finding['rule'], ()):
            verdict, detail = waiver.judge(finding, today)
            ticket = ' (%s)' % waiver.ticket if waiver.ticket else ''
            # Only "covers" waives: any other verdict, known or not, leaves the finding as it is (fail closed).
            if verdict == 'covers':
                finding['waived'] = True
                finding['waiver'] = waiver.describe()
                finding['status'] = 'waived'
                days = (waiver.expires - today).days
                if days <= compiled.warning_days:
                    warnings.append('waiver%s for %s on %s %s expires %s, in %d day%s' % (
                        ticket, waiver.rule, host, socket_label(finding), waiver.expires.isoformat(), days,
                        '' if days == 1 else 's'))
                break
            if verdict == 'expired':
                finding['waiver_expired'] = waiver.describe()
                finding['message'] += '; waiver%s expired %s' % (ticket, waiver.expires.isoformat())
            elif verdict == 'not_covered':
                finding['message'] += '; waiver%s does not cover %s' % (ticket, detail)
            elif verdict == 'unknown':
                unchecked += 1
                published = published or finding.get('via') == 'nat'
                finding['message'] += '; waiver%s cannot be checked: %s (%s)' % (
                    ticket, detail, PUBLISHED_OWNER_HINT if finding.get('via') == 'nat' else 'run the gather with become')
    if unchecked:
        reasons.append('waivers bound to processes could not be checked on %d finding%s: the gather did not give the '
                       'process facts they name, so those findings are not waived (run with become%s)'
                       % (unchecked, '' if unchecked == 1 else 's', '; ' + PUBLISHED_OWNER_HINT if published else ''))


def evaluate_host(gathered, compiled, host, groups=(), today=None):
    """Evaluate one host's gather result (``sockets`` + ``coverage``) against a compiled policy.

    ``gathered`` None (or without ``coverage``) means the gather failed: the host is unknown.
    Never raises on odd gather data; what it cannot judge makes the host unknown.
    """
    # Thousands of findings are thousands of new dicts and no reference cycles: the cyclic
    # collector would only rescan them (about a sixth of the time at 10,000 sockets).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _evaluate_host(gathered, compiled, host, groups, today)
    finally:
        if collecting:
            gc.enable()


def _evaluate_host(gathered, compiled, host, groups, today):
    today = today or datetime.date.today()
    groups = list(groups or ())
    reasons = []
    warnings = []
    if gathered is None or (isinstance(gathered, dict) and gathered.get('coverage') is None):
        reasons.append('no gather result: the listening sockets of this host were not seen')
        return _result(host, compiled, 'unknown', [], reasons, warnings, None, today)
    problem = gather_problem(gathered)
    if problem is not None:
        # What is not the shape the gather writes cannot support a verdict, not even drift.
        reasons.append('malformed gather result: %s' % problem)
        return _result(host, compiled, 'unknown', [], reasons, warnings, None, today)
    coverage = gathered['coverage']
    if not coverage.get('complete'):
        errors = coverage.get('errors') or ['the gather reported partial coverage']
        reasons.extend('partial gather: %s' % error for error in errors)

    for scope in compiled.namespace_scopes:
        scope.forget()
    rules = [rule for rule in compiled.rules if rule.scope.applies(host, groups)]
    if 'namespaces' not in coverage:
        # Gathered with namespaces: host. A rule only about other namespaces judged nothing: say so.
        blind = [rule.id for rule in rules if rule.namespaces is not None and not rule.namespaces.applies(None)]
        if blind:
            subject = 'rules %s are' % ', '.join(blind) if len(blind) > 1 else 'rule %s is' % blind[0]
            warnings.append('%s only about namespaces other than the host\'s, which this gather did not read '
                            '(namespaces: host; use namespaces: all)' % subject)
    tables = dict((protocol, compiled.candidates(rules, protocol)) for protocol in PROTOCOLS)
    deny = compiled.default == 'deny'
    builder = _Findings()
    add = builder.add
    bisect_right = bisect.bisect_right
    for entry in gathered.get('sockets') or []:
        try:
            starts, members = tables[entry['protocol']]
            candidates = members[bisect_right(starts, entry['port']) - 1]
            if not candidates and not deny:
                continue  # most sockets: no rule is about this port
            matched = False
            for rule in candidates:
                if rule.plain:
                    if entry['ephemeral'] and not rule.include_ephemeral:
                        continue
                elif rule.mismatch(entry) is not None:
                    continue
                matched = True
                if rule.closed:
                    add(rule.id, rule.severity, entry, rule.closed_text)
                    continue
                judge_socket(rule, entry, builder)
            if deny and not matched and not entry['ephemeral']:
                builder.add(DEFAULT_RULE_ID, compiled.default_severity, entry, builder.DEFAULT_TEXT)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            reasons.append('a gathered socket could not be evaluated (%s): %r' % (exc, entry))
    exposures = gathered.get('exposures')
    notes = []
    if exposures is None:
        notes.append(NAT_NOT_READ % 'gathered before NAT was read, or by an older collection')
    elif coverage['nat']['mode'] == 'off':
        notes.append(NAT_NOT_READ % 'nat: off')
    for exposure in exposures or ():
        try:
            judge_exposure(exposure, tables, deny, builder, compiled.default_severity)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            reasons.append('a gathered exposure could not be evaluated (%s): %s' % (exc, _brief(exposure)))
    findings = builder.items
    apply_waivers(findings, compiled, host, groups, today, warnings, reasons)
    unknown = [finding for finding in findings if finding['status'] == 'unknown']
    if unknown:
        reasons.append('some rules need process facts the gather could not give (run with become%s)' % (
            '; ' + PUBLISHED_OWNER_HINT if any(finding.get('via') == 'nat' for finding in unknown) else ''))
    result = _result(host, compiled, None, findings, reasons, warnings, coverage, today)
    result['notes'] = notes
    return result


def _result(host, compiled, status, findings, reasons, warnings, coverage, today):
    result = {
        'host': host,
        'status': status,
        'reasons': reasons,
        'findings': findings,
        'warnings': warnings,
        'notes': [],  # what the verdict did not judge without making it unknown (a gather that did not read the NAT)
        'summary': None,
        'coverage': coverage,
        'policy': compiled.info(),
        'registry': registry.registry_info(),
        'evaluated_on': today.isoformat(),
    }
    summarize_result(result)
    return result


def summarize_result(result):
    """Order a result's findings worst first and count them into its ``summary``; set its ``status``
    from them (drift, else unknown when there are reasons, else compliant) unless it is already unknown
    for want of a gather. Used again after remediation changes finding statuses."""
    # Worst first, then by rule and socket: bucketed by severity and status in one pass, sorted
    # per severity with the key extracted in C, counted from the bucket sizes.
    buckets = dict((severity, ([], [])) for severity in SEVERITIES)
    counts = dict((name, 0) for name in FINDING_STATUSES)
    for finding in result['findings']:
        drift, other = buckets[finding['severity']]
        if finding['status'] == 'drift':
            drift.append(finding)
        else:
            other.append(finding)
            counts[finding['status']] += 1
    by_severity = dict((severity, len(buckets[severity][0])) for severity in SEVERITIES)
    counts['drift'] = sum(by_severity.values())
    findings = []
    for severity in reversed(SEVERITIES):
        drift, other = buckets[severity]
        findings.extend(sorted(drift + other, key=_FINDING_ORDER))
    result['findings'] = findings
    result['summary'] = {'findings': len(findings), 'drift': counts['drift'], 'waived': counts['waived'],
                         'unknown': counts['unknown'], 'remediated': counts['remediated'],
                         'drift_by_severity': by_severity}
    if result['coverage'] is not None or result['status'] != 'unknown':
        if counts['drift']:
            result['status'] = 'drift'
        elif result['reasons']:
            result['status'] = 'unknown'
        else:
            result['status'] = 'compliant'
    return result


def gate(result, fail_on='never', fail_on_unknown=True):
    """Return the reasons a result fails the gate (empty: it passes).

    Unknown is judged on the reasons, not only the status: a host with low drift and a
    partial gather may hide worse drift, so it fails as unknown too.
    """
    failures = []
    if fail_on != 'never':
        worst = [f for f in result['findings'] if f['status'] == 'drift' and severity_at_least(f['severity'], fail_on)]
        if worst:
            failures.append('%d finding%s at or above %s' % (len(worst), '' if len(worst) == 1 else 's', fail_on))
    if fail_on_unknown and result['reasons']:
        failures.append('verdict unknown: %s' % '; '.join(result['reasons']))
    return failures
