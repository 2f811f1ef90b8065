# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Evaluate step, before the first audit: a ``default: deny`` policy from what a known-good fleet runs now.

Pure standard library, shared by ``portwarden baseline`` and the tests. The inputs are gather results
(``portwarden gather --format json``, a ``listening_sockets_info`` result) and fleet reports audited under
the bundled survey policy (``docs/policies/survey.yml``: ``default: deny`` and nothing allowed, so every
listener is a finding). From them:

- ``host_from_gather`` and ``hosts_from_report`` read one host's listeners (or why the host is skipped: a
  partial or failed gather, an unknown verdict; a policy from a host not seen whole would be a lie);
- ``build_baseline`` groups them into allow rules: one per (protocol, port or range, bind class, process/unit,
  namespace) shared by a set of hosts, scoped to an inventory group when exactly its hosts have it, to host
  names otherwise, and to no host when every host has it; the bundled IANA rule is kept first;
- ``render_baseline`` writes the policy as YAML (deterministic order: a stable diff), with a commented waiver
  proposal for each listener on a port IANA has not assigned: such a listener is never allowed silently;
- ``verify_baseline`` re-evaluates each host's listeners against the policy (evaluate_policy.evaluate_host).

Every text from a host becomes an exact pattern (``*``, ``?`` and ``[`` escaped), never a wildcard.
"""

from __future__ import annotations

import datetime
import os

from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import (
    bind_class,
    compile_policy,
    evaluate_host,
    gather_problem,
    policy_digest,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_ports import port_set
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import BIND_CLASSES, DEFAULT_RULE_ID
from ansible_collections.portwarden.compliance.plugins.module_utils.report_sockets import printable

IANA_RULE = {
    'id': 'iana-unassigned-closed',
    'description': 'Ports IANA has not assigned must stay closed',
    'match': {'ports': 'iana:unassigned', 'protocols': ['tcp', 'udp']},
    'expect': 'closed',
    'severity': 'high',
}
# The policy a fleet is audited under to survey it: every non-ephemeral listener is a finding of the report
# (``default`` or the IANA rule), so the report says what listens. docs/policies/survey.yml is this mapping.
SURVEY_POLICY = {
    'policy_version': 1,
    'name': 'portwarden-survey',
    'description': 'Every listener is a finding: a fleet report under this policy is input for portwarden baseline.',
    'default': 'deny',
    'default_severity': 'info',
    'rules': [IANA_RULE],
}
SURVEY_DIGEST = policy_digest(SURVEY_POLICY)
EPHEMERAL_MODES = ('skip', 'include')
WAIVER_DAYS = 30  # the proposed waivers' expiry: soon, so that a proposal accepted unread does not last
_SOURCES_SHOWN = 3


class BaselineInputError(ValueError):
    """An input that is neither a gather result nor a usable report: names the file, the path and what was expected."""


def _brief(value):
    if isinstance(value, dict):
        return 'a mapping with keys %s' % ', '.join(sorted(str(key) for key in value)[:6]) if value else 'an empty mapping'
    if isinstance(value, list):
        return 'a list'
    if isinstance(value, str):
        return repr(value[:40])
    return repr(value) if isinstance(value, (bool, int, float)) or value is None else 'a %s' % type(value).__name__


def glob_exact(text):
    """A shell-style pattern that matches exactly ``text``: a process called ``*`` allows no other."""
    return ''.join('[%s]' % char if char in '*?[' else char for char in text)


def host_name_problem(host):
    """Why ``host`` cannot be named in a rule's ``hosts`` exactly (None when it can)."""
    if not isinstance(host, str) or not host.strip():
        return 'an empty host name'
    if host.startswith('!') or host.startswith('group:'):
        return 'a host name starting with "!" or "group:" would be read as an exclusion or a group'
    if any(char in host for char in '\n\r'):
        return 'a host name with a line break'
    return None


class Listener(object):
    """One listening socket or published port of one host, as the baseline groups it."""

    __slots__ = ('bind', 'ephemeral', 'namespace', 'port', 'port_end', 'processes', 'protocol', 'units', 'via')

    def __init__(self, protocol, port, port_end, bind, via, namespace, processes, units, ephemeral):
        self.protocol = protocol
        self.port = port
        self.port_end = port_end
        self.bind = bind
        self.via = via
        self.namespace = namespace  # a namespace selector, or None for the host's own
        self.processes = processes  # frozenset of exact process patterns, or None (no owner known)
        self.units = units  # frozenset of exact unit patterns, or None (a holder without a unit)
        self.ephemeral = ephemeral


class HostInput(object):
    """One host read from one input: its listeners, or why it is skipped."""

    __slots__ = ('gathered', 'host', 'listeners', 'skipped', 'source')

    def __init__(self, host, source, listeners=(), skipped=None, gathered=None):
        self.host = host
        self.source = source
        self.listeners = list(listeners)
        self.skipped = skipped
        self.gathered = gathered  # what verify_baseline evaluates


def _holders(processes):
    """(process patterns, unit patterns) of a socket's holders; None where one holder leaves it unknown."""
    if not processes:
        return None, None
    names = set()
    units = set()
    for proc in processes:
        name = proc.get('name') or proc.get('exe')
        names.add(glob_exact(name) if name else None)
        unit = proc.get('unit')
        units.add(glob_exact(unit) if unit else None)
    return (None if None in names else frozenset(names)), (None if None in units else frozenset(units))


def namespace_selector(namespace):
    """The selector that names exactly this namespace's kind and container (``docker:web``); None for the host's."""
    if not isinstance(namespace, dict) or namespace.get('host'):
        return None
    container = namespace.get('container')
    if not isinstance(container, dict) or not container.get('kind'):
        return 'other'
    name = container.get('name') or container.get('id') or container.get('pod_uid')
    if not name:
        return container['kind']
    # A line feed cannot stand in a selector (the schema's pattern): "?" takes its place, one character.
    return '%s:%s' % (container['kind'], glob_exact(name).replace('\n', '?').replace('\r', '?'))


def _socket_listener(entry):
    processes, units = _holders(entry.get('processes'))
    return Listener(entry['protocol'], entry['port'], entry['port'], bind_class(entry['address']), 'listen',
                    namespace_selector(entry.get('namespace')), processes, units, bool(entry.get('ephemeral')))


def _exposure_listener(exposure):
    bind = 'loopback' if exposure.get('hooks') == ['output'] else bind_class(exposure['address'])
    # Who answers a published port may be unknown or in another namespace: no process constraint.
    return Listener(exposure['protocol'], exposure['port'], exposure['port_end'], bind, 'nat', None, None, None, False)


def host_from_gather(gathered, host, source):
    """A gather result (``portwarden gather --format json`` or a ``listening_sockets_info`` result) -> HostInput.

    A failed or partial gather gives a skipped host; anything not shaped like a gather raises BaselineInputError.
    """
    if not isinstance(gathered, dict):
        raise BaselineInputError('%s: (top level): expected a gather result (a mapping with sockets and coverage) or a '
                                 'portwarden report, got %s' % (source, _brief(gathered)))
    problem = host_name_problem(host)
    if problem:
        return HostInput(host, source, skipped='%s; name the file after the inventory host' % problem)
    if gathered.get('failed') and gathered.get('coverage') is None:
        return HostInput(host, source, skipped='the gather failed: %s' % str(gathered.get('msg') or 'no message')[:200])
    if 'coverage' not in gathered:
        raise BaselineInputError('%s: coverage: expected a gather result (a mapping with sockets and coverage) or a '
                                 'portwarden report (schema_version, hosts), got %s' % (source, _brief(gathered)))
    problem = gather_problem(gathered)
    if problem is not None:
        raise BaselineInputError('%s: %s' % (source, problem))
    coverage = gathered['coverage']
    if not coverage['complete']:
        return HostInput(host, source, skipped='partial gather (%s): a policy from a host not seen whole would be a lie'
                         % '; '.join(coverage['errors'] or ['coverage incomplete'])[:300])
    listeners = [_socket_listener(entry) for entry in gathered['sockets']]
    listeners.extend(_exposure_listener(exposure) for exposure in gathered.get('exposures') or ())
    return HostInput(host, source, listeners, gathered=gathered)


def _finding_socket(finding):
    processes = [dict((key, proc.get(key)) for key in ('pid', 'name', 'user', 'uid', 'exe', 'unit', 'start_time'))
                 for proc in finding.get('processes') or []]
    for proc in processes:
        if proc['pid'] is None:
            proc['pid'] = 0
    return {'protocol': finding['protocol'], 'family': finding.get('family') or ('ipv6' if ':' in finding['address']
                                                                                 else 'ipv4'),
            'address': finding['address'], 'port': finding['port'], 'v6only': finding.get('v6only'), 'ephemeral': False,
            'inode': None, 'processes': processes, 'namespace': finding.get('namespace')}


def hosts_from_report(report, source, survey_path='docs/policies/survey.yml'):
    """A fleet report (already checked against the report schema) audited under SURVEY_POLICY -> HostInputs.

    A report under another policy lists only that policy's findings, not every listener: BaselineInputError.
    A host whose verdict is unknown or incomplete is skipped.
    """
    digest = (report.get('policy') or {}).get('sha256')
    if digest != SURVEY_DIGEST:
        raise BaselineInputError(
            '%s: policy.sha256: expected the survey policy (%s, sha256 %s), got policy %r (sha256 %s): a report lists only '
            'what its policy flags, so only a report audited under the survey policy lists every listener; audit with '
            '-e port_compliance_policy=%s, or give gather results'
            % (source, SURVEY_POLICY['name'], SURVEY_DIGEST[:12], (report.get('policy') or {}).get('name'),
               str(digest)[:12], survey_path))
    found = []
    for index, entry in enumerate(report['hosts']):
        host = entry['host']
        problem = host_name_problem(host)
        if problem:
            found.append(HostInput(host, source, skipped=problem))
            continue
        if entry['status'] == 'unknown' or entry['reasons']:
            found.append(HostInput(host, source, skipped='verdict %s (%s): a policy from a host not seen whole would be a '
                                   'lie' % (entry['status'], '; '.join(entry['reasons'] or ['no verdict'])[:300])))
            continue
        listeners = []
        sockets = []
        seen = set()
        for number, finding in enumerate(entry['findings']):
            if finding['rule'] not in (DEFAULT_RULE_ID, IANA_RULE['id']):
                raise BaselineInputError('%s: hosts[%d].findings[%d].rule: expected %s or %s (the survey policy\'s), '
                                         'got %r' % (source, index, number, DEFAULT_RULE_ID, IANA_RULE['id'],
                                                     finding['rule']))
            if finding.get('via') == 'nat':
                exposure = finding.get('exposure') or {}
                listeners.append(_exposure_listener({'protocol': finding['protocol'], 'address': finding['address'],
                                                     'port': finding['port'], 'hooks': exposure.get('hooks'),
                                                     'port_end': finding.get('port_end') or finding['port']}))
                continue
            socket = _finding_socket(finding)
            key = (socket['protocol'], socket['family'], socket['address'], socket['port'],
                   (socket['namespace'] or {}).get('inode'))
            if key not in seen:
                seen.add(key)
                sockets.append(socket)
            listeners.append(_socket_listener(socket))
        gathered = {'sockets': sockets, 'coverage': {'complete': True, 'errors': [], 'sockets': len(sockets)}}
        found.append(HostInput(host, source, listeners, gathered=gathered))
    return found


def _unassigned(protocol):
    return port_set('iana:unassigned', protocol)


def _ranges(ports):
    """Sorted ports -> [(start, end)] of adjacent runs."""
    ranges = []
    for port in ports:
        if ranges and port == ranges[-1][1] + 1:
            ranges[-1][1] = port
        else:
            ranges.append([port, port])
    return [tuple(item) for item in ranges]


class Options(object):
    """How strict the generated rules are."""

    __slots__ = ('bind', 'ephemeral', 'name', 'processes', 'today')

    def __init__(self, processes=True, bind=True, ephemeral='skip', name='baseline', today=None):
        if ephemeral not in EPHEMERAL_MODES:
            raise ValueError('ephemeral is one of %s' % ', '.join(EPHEMERAL_MODES))
        self.processes = processes
        self.bind = bind
        self.ephemeral = ephemeral
        self.name = name
        self.today = today or datetime.date.today()


def build_baseline(hosts, options=None, groups=None, fleet=None):
    """The baseline policy of ``hosts`` (HostInputs, none skipped and each host once).

    ``groups`` maps an inventory group to its hosts (its descendants' too); ``fleet`` is every host the policy is
    for (the inventory's, else the hosts read). Returns ``(policy, proposals)``: the policy mapping, and the
    waiver proposals for listeners on ports IANA has not assigned (each with the rule it would waive).
    """
    options = options or Options()
    hosts = sorted(hosts, key=lambda item: item.host)
    fleet = frozenset(fleet if fleet is not None else (item.host for item in hosts))
    use_namespaces = any(item.gathered is not None and 'namespaces' in (item.gathered.get('coverage') or {})
                         for item in hosts)
    # (key, port) -> {constraint: hosts}; a key is what a rule matches on, the constraint what it expects.
    per_host = {}
    for item in hosts:
        mine = {}
        for listener in item.listeners:
            if listener.ephemeral and options.ephemeral == 'skip':
                continue
            namespace = listener.namespace if listener.namespace is not None else ('host' if use_namespaces else None)
            key = (listener.protocol, listener.via, listener.bind if options.bind else None, namespace,
                   listener.ephemeral)
            for port in range(listener.port, listener.port_end + 1):
                processes, units = (listener.processes, listener.units) if options.processes else (None, None)
                # Two sockets of one host on one key and port (10.0.0.1:80 and 10.0.0.2:80): one rule allows both,
                # or each rule would judge the other's socket; an owner unknown on either drops the constraint.
                if (key, port) in mine:
                    had_processes, had_units = mine[(key, port)]
                    processes = None if had_processes is None or processes is None else had_processes | processes
                    units = None if had_units is None or units is None else had_units | units
                mine[(key, port)] = (processes, units)
        for key_port, constraint in mine.items():
            per_host.setdefault(key_port, {}).setdefault(constraint, set()).add(item.host)
    sources_of = dict((item.host, item.source) for item in hosts)
    # (key, constraint, hosts) -> ports: adjacent ports with the same hosts and holders make one range.
    grouped = {}
    unassigned = {}
    for (key, port), constraints in per_host.items():
        protocol = key[0]
        if protocol not in unassigned:
            unassigned[protocol] = _unassigned(protocol)
        flagged = port in unassigned[protocol] and not key[4]  # the IANA rule ignores ephemeral sockets
        for constraint, owners in constraints.items():
            grouped.setdefault((key, constraint, frozenset(owners), flagged), []).append(port)
    group_of = {}
    groups_of_host = {}
    for name in sorted(groups or {}, reverse=True):  # the first name in order wins when two groups are the same hosts
        members = frozenset(groups[name])
        if members and name not in ('all', 'ungrouped'):
            group_of[members] = name
    for members, name in group_of.items():
        for host in members:
            groups_of_host.setdefault(host, []).append((name, members))
    scopes = _Scopes(fleet, group_of, groups_of_host)
    drafts = []
    for (key, constraint, owners, flagged), ports in grouped.items():
        for start, end in _ranges(sorted(ports)):
            drafts.append(_draft(key, constraint, owners, flagged, start, end, scopes, sources_of, options))
    drafts.sort(key=lambda draft: draft['order'])
    rules = [dict(IANA_RULE)]
    proposals = []
    used = set([IANA_RULE['id']])
    for draft in drafts:
        rule = draft['rule']
        base = rule['id']
        number = 1
        while rule['id'] in used:
            number += 1
            rule['id'] = '%s-%d' % (base, number)
        used.add(rule['id'])
        rules.append(rule)
        if draft['flagged']:
            proposals.append(_proposal(rule, draft, options))
    policy = {
        'policy_version': 1,
        'name': options.name,
        'description': 'Generated by portwarden baseline on %s from %d host%s: what listened then is allowed, '
                       'nothing else.' % (options.today.isoformat(), len(hosts), '' if len(hosts) == 1 else 's'),
        'default': 'deny',
        'default_severity': 'medium',
        'rules': rules,
    }
    return policy, proposals


class _Scopes(object):
    """The shortest ``hosts`` that names exactly a set of hosts: none for every host, an inventory group, every host or
    a group but a few (at most a tenth: those skipped, or without the listener), or the host names."""

    MAX_EXCEPTIONS = 0.1

    def __init__(self, fleet, group_of, groups_of_host):
        self.fleet = fleet
        self.group_of = group_of
        self.groups_of_host = groups_of_host
        self._cache = {}

    def __call__(self, owners):
        found = self._cache.get(owners)
        if found is None:
            found = self._cache[owners] = self._scope(owners)
        return found

    def _scope(self, owners):
        count = len(owners)
        if owners == self.fleet:
            return None, 'every host (%d)' % count
        group = self.group_of.get(owners)
        if group is not None:
            return ['group:%s' % group], 'group %s (%d host%s)' % (group, count, '' if count == 1 else 's')
        best = ([glob_exact(host) for host in sorted(owners)], '%d host%s' % (count, '' if count == 1 else 's'))
        some = next(iter(owners))
        for name, members in sorted(self.groups_of_host.get(some, ())):
            others = members - owners
            if len(others) + 1 < len(best[0]) and len(others) <= len(members) * self.MAX_EXCEPTIONS and owners <= members:
                best = (['group:%s' % name] + ['!%s' % glob_exact(host) for host in sorted(others)],
                        'group %s but %d of its %d hosts (%d host%s)' % (name, len(others), len(members), count,
                                                                         '' if count == 1 else 's'))
        others = self.fleet - owners
        if len(others) < len(best[0]) and len(others) <= len(self.fleet) * self.MAX_EXCEPTIONS and owners <= self.fleet:
            best = (['!%s' % glob_exact(host) for host in sorted(others)],
                    'every host but %d of %d (%d host%s)' % (len(others), len(self.fleet), count, '' if count == 1 else 's'))
        return best


def _draft(key, constraint, owners, flagged, start, end, scopes, sources_of, options):
    protocol, via, bind, namespace, ephemeral = key
    processes, units = constraint
    hosts, where = scopes(owners)
    ports_text = '%d' % start if start == end else '%d-%d' % (start, end)
    rule_id = '%s-%s-%s' % ('confirm' if flagged else 'allow', protocol, ports_text)
    if bind is not None:
        rule_id += '-' + bind
    if via == 'nat':
        rule_id += '-nat'
    match = {'ports': [start if start == end else ports_text], 'protocols': [protocol]}
    if bind is not None:
        match['bind'] = [bind]
    if via == 'nat':
        match['via'] = ['nat']
    if ephemeral:
        match['include_ephemeral'] = True
    expect = {'bind': [bind] if bind is not None else list(BIND_CLASSES)}
    if processes is not None:
        expect['processes'] = sorted(processes)
    if units is not None:
        expect['units'] = sorted(units)
    sources = sorted(set(sources_of[host] for host in owners))
    shown = ', '.join(os.path.basename(source) for source in sources[:_SOURCES_SHOWN])
    if len(sources) > _SOURCES_SHOWN:
        shown += ' and %d more' % (len(sources) - _SOURCES_SHOWN)
    description = '%sbaseline of %s: %s %s %s on %s; from %d file%s (%s)' % (
        'TO CONFIRM (IANA has not assigned this port; the IANA rule still flags it until a waiver is accepted): '
        if flagged else '', options.today.isoformat(), protocol, ports_text,
        'published by NAT' if via == 'nat' else 'listening', where, len(sources), '' if len(sources) == 1 else 's', shown)
    rule = {'id': rule_id, 'description': description, 'match': match, 'expect': expect, 'severity': 'medium'}
    if hosts is not None:
        rule['hosts'] = hosts
    if namespace is not None:
        rule['namespaces'] = [namespace]
    order = (protocol, start, end, via, bind or '', namespace or '', hosts is not None, tuple(hosts or ()),
             tuple(sorted(processes or ())), tuple(sorted(units or ())), ephemeral)
    return {'rule': rule, 'order': order, 'flagged': flagged, 'hosts': hosts, 'owners': owners}


def _proposal(rule, draft, options):
    waiver = {'rule': IANA_RULE['id']}
    # Named hosts even when every host has it: a waiver covers what was seen, not hosts still to come.
    if draft['hosts'] is not None:
        waiver['hosts'] = list(draft['hosts'])
    else:
        waiver['hosts'] = [glob_exact(host) for host in sorted(draft['owners'])]
    if 'namespaces' in rule:
        waiver['namespaces'] = list(rule['namespaces'])
    waiver['ports'] = list(rule['match']['ports'])
    waiver['protocols'] = list(rule['match']['protocols'])
    waiver['reason'] = 'TO CONFIRM: found listening by portwarden baseline (rule %s); say why it may' % rule['id']
    waiver['expires'] = (options.today + datetime.timedelta(days=WAIVER_DAYS)).isoformat()
    return {'rule_id': rule['id'], 'waiver': waiver, 'hosts': sorted(draft['owners'])}


# ---- YAML text -----------------------------------------------------------------------------------

def yaml_string(text):
    """A double-quoted YAML scalar of ASCII only: every other character escaped, so nothing in it can end a line,
    a comment or the scalar, whatever a host or a file name holds."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append('\\' + char)
        elif 0x20 <= code < 0x7f:
            out.append(char)
        elif code <= 0xff:
            out.append('\\x%02x' % code)
        elif code <= 0xffff:
            out.append('\\u%04x' % code)
        else:
            out.append('\\U%08x' % code)
    out.append('"')
    return ''.join(out)


def _scalar(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, int):
        return '%d' % value
    return yaml_string(value)


def _flow_list(values):
    return '[%s]' % ', '.join(_scalar(value) for value in values)


_RULE_KEYS = ('id', 'description', 'match', 'expect', 'severity', 'hosts', 'namespaces')
_MATCH_KEYS = ('ports', 'protocols', 'bind', 'via', 'include_ephemeral')
_EXPECT_KEYS = ('bind', 'processes', 'units')
_WAIVER_KEYS = ('rule', 'hosts', 'namespaces', 'ports', 'protocols', 'reason', 'expires')


def _mapping_lines(mapping, keys, indent):
    lines = []
    for key in keys:
        if key not in mapping:
            continue
        value = mapping[key]
        if isinstance(value, dict):
            lines.append('%s%s:' % (indent, key))
            lines.extend(_mapping_lines(value, [name for name in (_MATCH_KEYS if key == 'match' else _EXPECT_KEYS)
                                                if name in value], indent + '  '))
        elif isinstance(value, list):
            lines.append('%s%s: %s' % (indent, key, _flow_list(value)))
        else:
            lines.append('%s%s: %s' % (indent, key, _scalar(value)))
    return lines


def render_baseline(policy, proposals, summary_lines=()):
    """The policy as YAML text, rules in order, then the waiver proposals commented out."""
    lines = ['---', '# Generated by portwarden baseline. Review it before it gates anything: default: deny makes every',
             '# listener that no rule below allows drift. Check it with: portwarden lint FILE']
    lines.extend('# %s' % printable(line) for line in summary_lines)
    for key in ('policy_version', 'name', 'description', 'default', 'default_severity'):
        lines.append('%s: %s' % (key, _scalar(policy[key])))
    lines.append('rules:')
    for rule in policy['rules']:
        if rule['id'] == IANA_RULE['id']:
            lines.append('  # The bundled baseline, kept: ports IANA has not assigned stay closed.')
        rule_lines = _mapping_lines(rule, _RULE_KEYS, '    ')
        if rule['expect'] == 'closed':
            rule_lines = [line if not line.lstrip().startswith('expect:') else '    expect: closed' for line in rule_lines]
        rule_lines[0] = '  - ' + rule_lines[0].lstrip()
        lines.extend(rule_lines)
    if proposals:
        lines.append('')
        lines.append('# TO CONFIRM: %d listener rule%s on ports IANA has not assigned. The IANA rule above keeps them drift:'
                     % (len(proposals), '' if len(proposals) == 1 else 's'))
        lines.append('# nothing on such a port is allowed silently. To accept one, uncomment "waivers:" and its entry,')
        lines.append('# and give the real reason, a ticket and an expiry date.')
        lines.append('#waivers:')
        for proposal in proposals:
            waiver_lines = _mapping_lines(proposal['waiver'], _WAIVER_KEYS, '    ')
            waiver_lines[0] = '  - ' + waiver_lines[0].lstrip()
            lines.extend('#' + line for line in waiver_lines)
    return '\n'.join(lines) + '\n'


# The only findings a baseline leaves on the hosts it was made from: the IANA rule's, on the listeners to confirm.
_EXPECTED_FINDINGS = frozenset([IANA_RULE['id']])


def verify_baseline(policy, hosts, groups_of=None, today=None):
    """Re-evaluate every host's listeners against the policy; the problems (empty: each host is compliant but for
    the listeners on ports IANA has not assigned, which stay drift until a waiver is accepted)."""
    compiled = compile_policy(policy)
    allowed = _EXPECTED_FINDINGS
    problems = []
    for item in hosts:
        if item.gathered is None:
            continue
        result = evaluate_host(item.gathered, compiled, item.host, (groups_of or {}).get(item.host, ()), today)
        wrong = [finding for finding in result['findings'] if finding['rule'] not in allowed]
        if wrong or result['reasons']:
            said = [finding['message'] for finding in wrong[:3]] + result['reasons'][:3]
            problems.append('%s: %s' % (item.host, '; '.join(said)))
    return problems
