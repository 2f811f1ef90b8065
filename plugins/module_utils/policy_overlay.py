# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Evaluate step: overlays from inventory, merged into one host's policy.

A host's variables ``port_compliance_policy_overlay`` and ``port_compliance_policy_overlay_<suffix>`` each hold
an overlay: ``rules`` and ``waivers`` added to the policy for that host alone. The merge is simple on purpose:

- Ansible picks each variable's value by its own precedence (host over group, extra vars over all, no deep
  merge); a variable set to null or to an empty mapping adds nothing (a host can switch off a group's).
- Overlays apply in sorted variable name order, after the policy: rules are appended to its rules, waivers to
  its waivers. Nothing else of the policy changes (``default``, severities, settings).
- Rule ids stay unique across the policy and every overlay of the host: an overlay adds rules, it never
  redefines one.
- The policy's ``overlays`` settings say what overlays may add (``allow``) and whether they may allow or waive
  a port the bundled baseline keeps closed (``may_weaken_baseline``, false by default).

Pure standard library: the checks here (beyond the JSON Schema, which the controller runs with jsonschema)
give ``(variable, path parts, message)`` problems and never raise.
"""

from __future__ import annotations

import copy
import datetime
import re

from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import (
    HostScope,
    compile_policy,
    policy_digest,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_check import path_sort_key, semantic_problems
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_ports import (
    ALL_PORTS,
    PortSpecError,
    named_set,
    port_set,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import (
    DEFAULT_RULE_ID,
    OVERLAY_PARTS,
    PROTOCOLS,
)

OVERLAY_VARIABLE = 'port_compliance_policy_overlay'
_OVERLAY_NAME = re.compile(r'port_compliance_policy_overlay(_[A-Za-z0-9_]+)?')
# The bundled baseline (docs/policies/baseline.yml) closes these ports for these protocols; a test keeps them equal.
BASELINE_PORTS = 'iana:unassigned'
BASELINE_PROTOCOLS = PROTOCOLS
# An overlay is a few rules and waivers; the limit bounds what one host's variables can make every check cost.
MAX_OVERLAY_VALUES = 20000
# As for a policy (policy_load.MAX_NUMBER): beyond this a number is no port or count, and Python cannot even print
# one of more than 4300 digits (a template such as "{{ 10 ** 5000 }}" makes one).
MAX_NUMBER = 2 ** 63


class OverlayError(ValueError):
    """An overlay value that is not plain data (``path``: where inside it)."""

    def __init__(self, path, message):
        super(OverlayError, self).__init__(message)
        self.path = path


def overlay_variables(names):
    """The overlay variables among ``names``, in the order they apply (sorted)."""
    return sorted(name for name in names if isinstance(name, str) and _OVERLAY_NAME.fullmatch(name))


def plain_data(value, path=()):
    """``value`` as plain JSON-like data: Ansible's tagged strings, dicts and lists made plain, a YAML date
    (``expires: 2027-01-31`` unquoted) made ``'2027-01-31'``. Raises OverlayError for anything else or for more
    than MAX_OVERLAY_VALUES values."""
    count = [0]

    def walk(item, where, depth):
        count[0] += 1
        if count[0] > MAX_OVERLAY_VALUES:
            raise OverlayError(list(path), 'the overlay has more than %d values; an overlay is expected to be a '
                                           'few rules and waivers' % MAX_OVERLAY_VALUES)
        if depth > 32:
            raise OverlayError(where, 'nested too deeply; an overlay is a few levels deep')
        if item is None or isinstance(item, bool):
            return item
        if isinstance(item, (int, float)):
            if not -MAX_NUMBER <= item <= MAX_NUMBER:
                raise OverlayError(where, 'number too large; expected at most %d' % MAX_NUMBER)
            return int(item) if isinstance(item, int) else float(item)
        if isinstance(item, str):
            return str(item)
        if isinstance(item, datetime.datetime):
            return item.isoformat()  # not a date: the schema says so
        if isinstance(item, datetime.date):
            return item.isoformat()
        if isinstance(item, dict):
            found = {}
            for key, child in item.items():
                if not isinstance(key, str):
                    raise OverlayError(where, 'key %r is not text; expected a mapping with text keys' % (key,))
                found[str(key)] = walk(child, where + [str(key)], depth + 1)
            return found
        if isinstance(item, (list, tuple)):
            return [walk(child, where + [index], depth + 1) for index, child in enumerate(item)]
        raise OverlayError(where, 'a %s value is not plain data; expected a mapping, list, text, number or boolean'
                           % type(item).__name__)

    return walk(value, list(path), 0)


def collect_overlays(variables):
    """``[(variable, overlay)]`` of the overlay variables in ``variables`` (a mapping of a host's variables),
    made plain data, in the order they apply; null and empty mappings add nothing and are left out.

    Raises OverlayError (its path starts with the variable) for a value that is not plain data."""
    found = []
    for name in overlay_variables(variables):
        value = plain_data(variables[name], [name])
        if value is None or value == {}:
            continue
        found.append((name, value))
    return found


def overlay_settings(policy):
    """``(allow, may_weaken_baseline)`` of a policy: what its overlays may add, and whether they may weaken
    the baseline."""
    settings = policy.get('overlays') if isinstance(policy, dict) else None
    settings = settings if isinstance(settings, dict) else {}
    allow = settings.get('allow', list(OVERLAY_PARTS))
    return (tuple(part for part in OVERLAY_PARTS if isinstance(allow, list) and part in allow),
            settings.get('may_weaken_baseline') is True)


def _protocols(value):
    if isinstance(value, list) and value and all(item in PROTOCOLS for item in value):
        return [item for item in PROTOCOLS if item in value]
    return list(PROTOCOLS)


def _ports(spec, protocol):
    try:
        return port_set(spec, protocol)
    except (PortSpecError, TypeError, ValueError):
        return None  # the schema or the semantic check says what is wrong with it


def _baseline(protocol):
    return named_set(BASELINE_PORTS, protocol)  # built once per protocol, shared


def _weakened(ports_by_protocol):
    """``'TCP 855-859, ...; UDP ...'`` for the baseline ports among ``{protocol: PortSet}``, or '' when none."""
    parts = []
    for protocol in PROTOCOLS:
        ports = ports_by_protocol.get(protocol)
        if ports is None:
            continue
        hit = ports.intersection(_baseline(protocol))
        if len(hit):
            parts.append('%s %s' % (protocol.upper(), hit.describe(limit=4)))
    return '; '.join(parts)


_WEAKEN_HINT = ('ports IANA has not assigned, which the bundled baseline keeps closed; the policy does not let overlays '
                'weaken it (overlays.may_weaken_baseline: false)')


def _rule_weakens(rule):
    """The baseline ports a rule other than ``expect: closed`` allows, as text ('' when none)."""
    if not isinstance(rule, dict) or rule.get('expect') == 'closed':
        return ''
    match = rule.get('match') if isinstance(rule.get('match'), dict) else {}
    ports = {}
    for protocol in _protocols(match.get('protocols')):
        found = _ports(match.get('ports'), protocol)
        if found is None:
            return ''
        ports[protocol] = found
    return _weakened(ports)


def _waiver_weakens(waiver, main_rules):
    """The baseline ports a waiver could waive findings on, within the rule it names, as text ('' when none).

    ``main_rules`` maps the policy's rule ids to their rules; a waiver of a rule an overlay added weakens nothing
    the policy had, and is not asked about."""
    if not isinstance(waiver, dict):
        return ''
    name = waiver.get('rule')
    if name == DEFAULT_RULE_ID:
        rule_protocols, rule_spec = list(PROTOCOLS), None
    elif name in main_rules:
        rule = main_rules[name]
        match = rule.get('match') if isinstance(rule.get('match'), dict) else {}
        rule_protocols, rule_spec = _protocols(match.get('protocols')), match.get('ports')
    else:
        return ''
    protocols = [protocol for protocol in _protocols(waiver.get('protocols')) if protocol in rule_protocols]
    ports = {}
    for protocol in protocols:
        covered = _ports(rule_spec, protocol)
        waived = _ports(waiver.get('ports'), protocol) if waiver.get('ports') is not None else ALL_PORTS
        if covered is None or waived is None:
            return ''
        ports[protocol] = covered.intersection(waived)
    return _weakened(ports)


def _scope_applies(patterns, host, groups):
    if not isinstance(patterns, list) or not all(isinstance(item, str) for item in patterns):
        return True
    return HostScope(patterns).applies(host, groups)


def overlay_problems(policy, overlays, host=None, groups=()):
    """Check one host's overlays against the policy: ``(problems, warnings)``.

    ``overlays`` is ``[(variable, overlay)]`` as collect_overlays gives it. ``problems`` are ``(variable, path
    parts, message)``, sorted; ``warnings`` are sentences (an overlay rule or waiver whose ``hosts`` leave out
    the very host whose variables carry it applies nowhere). The overlays' shape must be checked by the schema
    too: this never raises on a wrong type, it skips what it cannot read.
    """
    problems = []
    warnings = []
    policy = policy if isinstance(policy, dict) else {}
    allow, may_weaken = overlay_settings(policy)
    main_rules = dict((rule['id'], rule) for rule in policy.get('rules') or []
                      if isinstance(rule, dict) and isinstance(rule.get('id'), str))
    owners = {}  # overlay rule id -> (variable, index) of its first definition
    for variable, overlay in overlays:
        rules = overlay.get('rules') if isinstance(overlay, dict) else None
        for index, rule in enumerate(rules if isinstance(rules, list) else ()):
            if isinstance(rule, dict) and isinstance(rule.get('id'), str):
                owners.setdefault(rule['id'], (variable, index))
    added = set(owners)
    for variable, overlay in overlays:
        if not isinstance(overlay, dict):
            continue  # the schema says it is no mapping
        if not allow:
            problems.append(([variable], 'the policy %s accepts no overlays (overlays.allow: []); remove the '
                                         'variable or allow overlays in the policy' % policy.get('name')))
            continue
        for part in OVERLAY_PARTS:
            if overlay.get(part) and part not in allow:
                problems.append(([variable, part], 'the policy %s does not let overlays add %s (overlays.allow: %s)'
                                 % (policy.get('name'), part, ', '.join(allow))))
        rules = overlay.get('rules') if isinstance(overlay.get('rules'), list) else []
        waivers = overlay.get('waivers') if isinstance(overlay.get('waivers'), list) else []
        # Ids, ports, dates, patterns as for a policy; its waivers may name the policy's rules and every overlay's.
        for path, message in semantic_problems({'rules': rules, 'waivers': waivers},
                                               other_rules=set(main_rules) | added):
            problems.append(([variable] + list(path), message))
        for index, rule in enumerate(rules):
            if not isinstance(rule, dict):
                continue
            rule_id = rule.get('id')
            if isinstance(rule_id, str) and rule_id in main_rules:
                problems.append(([variable, 'rules', index, 'id'],
                                 '%r is a rule of the policy %s; an overlay adds rules and never redefines one '
                                 '(choose another id)' % (rule_id, policy.get('name'))))
            elif isinstance(rule_id, str) and owners.get(rule_id, (variable, index)) != (variable, index) \
                    and owners[rule_id][0] != variable:
                problems.append(([variable, 'rules', index, 'id'],
                                 '%r is also a rule of %s (rules[%d]); rule ids are unique across the policy and '
                                 'every overlay of a host' % (rule_id, owners[rule_id][0], owners[rule_id][1])))
            if not may_weaken:
                weakened = _rule_weakens(rule)
                if weakened:
                    where = [variable, 'rules', index, 'match'] + (['ports'] if isinstance(rule.get('match'), dict)
                                                                   and 'ports' in rule['match'] else [])
                    problems.append((where, 'allows %s: %s' % (weakened, _WEAKEN_HINT)))
            if host is not None and not _scope_applies(rule.get('hosts'), host, groups):
                warnings.append('%s.rules[%d] (%s): its hosts leave out %s, and an overlay applies only to the host '
                                'whose variables carry it, so this rule applies nowhere'
                                % (variable, index, rule_id, host))
        for index, waiver in enumerate(waivers):
            if not isinstance(waiver, dict):
                continue
            if not may_weaken and waiver.get('rule') not in added:
                weakened = _waiver_weakens(waiver, main_rules)
                if weakened:
                    message = 'would waive findings of %s on %s: %s' % (waiver.get('rule'), weakened, _WEAKEN_HINT)
                    problems.append(([variable, 'waivers', index], message))
            if host is not None and not _scope_applies(waiver.get('hosts'), host, groups):
                warnings.append('%s.waivers[%d] (for %s): its hosts leave out %s, and an overlay applies only to the '
                                'host whose variables carry it, so this waiver applies nowhere'
                                % (variable, index, waiver.get('rule'), host))
    problems = sorted(set((variable[0], tuple(variable[1:]), message) for variable, message in problems),
                      key=lambda item: (item[0], path_sort_key(item[1]), item[2]))
    return [(name, list(path), message) for name, path, message in problems], warnings


def merge_overlays(policy, overlays):
    """The host's effective policy: a copy of ``policy`` with every overlay's rules and waivers appended, in
    order. The overlays must have passed overlay_problems and the schema."""
    merged = copy.deepcopy(policy)
    for _variable, overlay in overlays:
        if overlay.get('rules'):
            merged['rules'] = list(merged.get('rules') or []) + copy.deepcopy(overlay['rules'])
        if overlay.get('waivers'):
            merged['waivers'] = list(merged.get('waivers') or []) + copy.deepcopy(overlay['waivers'])
    return merged


def data_digest(value):
    """sha256 of canonical JSON, as policy_digest encodes a policy."""
    return policy_digest(value)


def overlay_records(overlays):
    """What the report says of each overlay applied to a host: the variable, its digest, what it added."""
    return [{'variable': variable, 'sha256': data_digest(overlay),
             'rules': [rule.get('id') for rule in overlay.get('rules') or [] if isinstance(rule, dict)],
             'waivers': len(overlay.get('waivers') or [])} for variable, overlay in overlays]


def effective_digest(base_sha256, records):
    """The digest of a host's effective policy: the policy's own when no overlay applied, else a digest of the
    policy's and each overlay's (variable and digest, in order). A report can recompute it from what it records."""
    if not records:
        return base_sha256
    return data_digest({'policy': base_sha256,
                        'overlays': [[record.get('variable'), record.get('sha256')] for record in records]})


def compile_host_policy(policy, overlays, base_sha256=None, warnings=()):
    """The compiled policy one host is judged under: ``policy`` with its ``overlays`` merged (validated first), its
    digest the effective one and its ``overlays`` the records of what applied. ``base_sha256``: the policy's
    digest when the caller has it; ``warnings``: overlay_problems' warnings, for the host's result."""
    records = overlay_records(overlays)
    compiled = compile_policy(merge_overlays(policy, overlays) if overlays else policy)
    compiled.base_digest = base_sha256 or policy_digest(policy)
    compiled.overlays = records
    compiled.digest = effective_digest(compiled.base_digest, records)
    compiled.overlay_warnings = list(warnings)
    return compiled
