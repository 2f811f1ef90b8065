# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Evaluate step: the policy checks a JSON Schema cannot express.

Duplicate rule ids, waivers naming unknown rules, port ranges that start after they end,
dates that do not exist. Each problem is ``(path, message)``, the path a list such as
``['rules', 2, 'match', 'ports', 1]`` (format_path shows it as ``rules[2].match.ports[1]``). Defensive on purpose: it runs beside schema validation on any
input and never raises.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.portwarden.compliance.plugins.module_utils.policy_ports import PortSpecError, parse_port_item
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import (
    CONTAINER_KINDS,
    DEFAULT_RULE_ID,
    NAMESPACE_SELECTOR_PATTERN,
)

# The schema's id pattern, matched whole: Python's "$" also matches before a final newline.
_ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]*')
_ID_HINT = 'an id of letters, digits, ".", "_" and "-", starting with a letter or digit'
_NAMESPACE_SELECTOR = re.compile(NAMESPACE_SELECTOR_PATTERN)
NAMESPACE_HINT = ('a namespace selector: "host", "other", "container[:NAME]" or "RUNTIME[:NAME]" with RUNTIME one of '
                  '"%s" (NAME a shell-style pattern), "!" before any to exclude' % '", "'.join(CONTAINER_KINDS))


def format_path(parts):
    """``['rules', 2, 'severity']`` -> ``rules[2].severity``; the empty path is ``(top level)``."""
    text = ''
    for part in parts:
        if isinstance(part, int):
            text += '[%d]' % part
        else:
            text += ('.' if text else '') + str(part)
    return text or '(top level)'


def path_sort_key(parts):
    """Sort paths the way a reader expects: rules[2] before rules[10]."""
    return tuple((0, part, '') if isinstance(part, int) else (1, 0, str(part)) for part in parts)


def parse_date(value):
    """A ``YYYY-MM-DD`` string as a date, or None when it is not a real date."""
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return datetime.datetime.strptime(value, '%Y-%m-%d').date()
    except ValueError:
        return None


def _check_ports(value, path, problems):
    items = value if isinstance(value, list) else [value]
    for index, item in enumerate(items):
        item_path = path + [index] if isinstance(value, list) else path
        if isinstance(item, (int, str)) and not isinstance(item, bool):
            try:
                parse_port_item(item)
            except PortSpecError as exc:
                problems.append((item_path, str(exc)))


def _check_hosts(value, path, problems):
    if not isinstance(value, list):
        return
    for index, pattern in enumerate(value):
        if isinstance(pattern, str) and pattern.lstrip('!') in ('', 'group:'):
            problems.append((path + [index], '%r names no host or group' % pattern))


def _check_namespaces(value, path, problems):
    if not isinstance(value, list):
        return
    for index, selector in enumerate(value):
        if isinstance(selector, str) and not _NAMESPACE_SELECTOR.fullmatch(selector):
            problems.append((path + [index], '%r is not %s' % (selector, NAMESPACE_HINT)))


def semantic_problems(policy, other_rules=()):
    """Return the list of ``(path parts, message)`` problems beyond the schema, sorted by path.

    ``other_rules``: ids of rules defined elsewhere that waivers may name too (an overlay's waivers may
    name the policy's rules and other overlays' of the host)."""
    problems = []
    if not isinstance(policy, dict):
        return problems
    rules = policy.get('rules')
    rule_ids = {}
    if isinstance(rules, list):
        for index, rule in enumerate(rules):
            if not isinstance(rule, dict):
                continue
            rule_id = rule.get('id')
            if isinstance(rule_id, str):
                if not _ID.fullmatch(rule_id):
                    problems.append((['rules', index, 'id'], '%r is not %s' % (rule_id, _ID_HINT)))
                elif rule_id == DEFAULT_RULE_ID:
                    problems.append((['rules', index, 'id'],
                                     "'%s' is reserved for the findings of default: deny" % DEFAULT_RULE_ID))
                elif rule_id in rule_ids:
                    problems.append((['rules', index, 'id'], 'duplicate rule id %r (first at rules[%d])'
                                     % (rule_id, rule_ids[rule_id])))
                else:
                    rule_ids[rule_id] = index
            match = rule.get('match')
            if isinstance(match, dict) and 'ports' in match:
                _check_ports(match['ports'], ['rules', index, 'match', 'ports'], problems)
            _check_hosts(rule.get('hosts'), ['rules', index, 'hosts'], problems)
            _check_namespaces(rule.get('namespaces'), ['rules', index, 'namespaces'], problems)
    waivers = policy.get('waivers')
    if isinstance(waivers, list):
        known = sorted(set(rule_ids).union(other_rules)) + [DEFAULT_RULE_ID]
        for index, waiver in enumerate(waivers):
            if not isinstance(waiver, dict):
                continue
            rule_id = waiver.get('rule')
            if isinstance(rule_id, str) and not _ID.fullmatch(rule_id):
                problems.append((['waivers', index, 'rule'], '%r is not %s' % (rule_id, _ID_HINT)))
            elif isinstance(rule_id, str) and rule_id not in rule_ids and rule_id not in other_rules \
                    and rule_id != DEFAULT_RULE_ID:
                problems.append((['waivers', index, 'rule'], '%r names no rule; expected one of %s'
                                 % (rule_id, ', '.join(known))))
            expires = waiver.get('expires')
            if isinstance(expires, str) and parse_date(expires) is None:
                problems.append((['waivers', index, 'expires'],
                                 '%r is not a date; expected YYYY-MM-DD' % expires))
            if 'ports' in waiver:
                _check_ports(waiver['ports'], ['waivers', index, 'ports'], problems)
            _check_hosts(waiver.get('hosts'), ['waivers', index, 'hosts'], problems)
            _check_namespaces(waiver.get('namespaces'), ['waivers', index, 'namespaces'], problems)
    return sorted(problems, key=lambda problem: (path_sort_key(problem[0]), problem[1]))
