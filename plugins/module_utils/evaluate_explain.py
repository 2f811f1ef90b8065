# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Evaluate step, explained: why one socket of one host got its verdict, in plain words.

Pure standard library, shared by ``portwarden explain`` and the tests. It walks the compiled policy with the
evaluation's own pieces (host scope, port sets, ``Rule.mismatch``, ``Rule.violations``, the findings builder,
``Waiver.judge`` and the waiver pass itself), so the explanation is what the evaluation did, not a second
reading of the policy: the property test in tests/unit holds its decision equal to evaluate_host's for every
socket of generated gathers.
"""

from __future__ import annotations

import datetime

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import DEFAULT_RULE_ID, PROTOCOLS
from ansible_collections.portwarden.compliance.plugins.module_utils.report_sockets import (
    HOST_WHERE,
    exposure_label,
    namespace_where,
    socket_label,
)

# The decision about one socket, worst first: a drift finding, else an unknown one, else a waived one, else allowed.
DECISIONS = ('drift', 'unknown', 'waived', 'allowed')


def socket_decision(findings):
    """The decision its findings make about one socket (no finding: allowed)."""
    statuses = set(finding['status'] for finding in findings)
    for decision in DECISIONS[:3]:
        if decision in statuses:
            return decision
    return 'allowed'


def select_sockets(gathered, protocol=None, port=None, address=None):
    """The gathered sockets a question is about: every one when nothing is asked."""
    return [entry for entry in gathered.get('sockets') or []
            if (protocol is None or entry['protocol'] == protocol) and (port is None or entry['port'] == port)
            and (address is None or entry['address'] == address)]


def select_exposures(gathered, protocol=None, port=None, address=None):
    """The gathered exposures (ports published by NAT) a question is about: a port asked is one of the range."""
    return [exposure for exposure in gathered.get('exposures') or []
            if (protocol is None or exposure['protocol'] == protocol)
            and (port is None or exposure['port'] <= port <= exposure['port_end'])
            and (address is None or exposure['address'] == address)]


def _patterns(values):
    return ', '.join(values) if isinstance(values, list) else str(values)


def _groups_text(groups):
    return 'groups: %s' % ', '.join(groups) if groups else 'no groups'


def _mismatch_text(rule, key, entry):
    match = rule.source.get('match') or {}
    if key == 'include_ephemeral':
        return 'the socket is an ephemeral UDP port (most likely a client) and the rule does not set include_ephemeral'
    if key == 'families':
        return 'the socket takes %s and the rule is about families %s' % (
            ' and '.join(ev.reachable_families(entry)), _patterns(match.get('families')))
    if key == 'via':
        return 'the socket is reached via %s and the rule is about via %s' % (
            entry.get('via', 'listen'), _patterns(match.get('via')))
    if key == 'namespaces':
        return 'the socket is in %s and the rule is about namespaces %s' % (
            namespace_where(entry.get('namespace')), _patterns(rule.source.get('namespaces')))
    return 'the socket is bound to %s addresses and the rule is about bind %s' % (
        entry.get('bind') or ev.bind_class(entry['address']), _patterns(match.get('bind')))


def _rule_step(rule, entry, host, groups, builder):
    """One rule, as the evaluation meets it: ``(step, matched)``; a finding it gives is added to ``builder``."""
    step = {'rule': rule.id, 'severity': rule.severity, 'description': rule.description, 'matched': False,
            'outcome': 'not matched', 'why': None}
    protocol, port = entry['protocol'], entry['port']
    if not rule.scope.applies(host, groups):
        step['why'] = 'its hosts (%s) do not take %s (%s)' % (_patterns(rule.source.get('hosts')), host, _groups_text(groups))
        return step, False
    if protocol not in rule.ports:
        step['why'] = 'it is about %s only, not %s' % (', '.join(sorted(rule.ports)), protocol)
        return step, False
    if port not in rule.ports[protocol]:
        step['why'] = 'its %s ports (%s) do not include %d' % (protocol, rule.ports[protocol].describe(), port)
        return step, False
    key = rule.mismatch(entry)
    if key is not None:
        step['why'] = _mismatch_text(rule, key, entry)
        return step, False
    step['matched'] = True
    if rule.closed:
        builder.add(rule.id, rule.severity, entry, rule.closed_text)
        step.update(outcome='drift', why='it matches and expects the port closed')
        return step, True
    problems, unknown = ev.judge_socket(rule, entry, builder)
    if problems:
        step.update(outcome='drift', why='it matches and the socket %s' % '; '.join(problems))
    elif unknown:
        step.update(outcome='unknown', why='it matches, but %s' % '; '.join(unknown))
    else:
        step.update(outcome='allowed', why='it matches and the socket satisfies its expect (%s)' % _expect_text(rule))
    return step, True


def _expect_text(rule):
    expect = rule.source.get('expect') or {}
    if not expect:
        return 'no conditions'
    return '; '.join('%s: %s' % (key, _patterns(value)) for key, value in sorted(expect.items()))


def _waiver_steps(finding, waivers, host, groups, today):
    """Every waiver naming the finding's rule, in policy order, and what it says about the finding."""
    steps = []
    covered = False
    for waiver in waivers:
        if waiver.rule != finding['rule']:
            continue
        step = {'ticket': waiver.ticket, 'reason': waiver.reason, 'expires': waiver.expires.isoformat(), 'verdict': None,
                'why': None}
        source = waiver.source
        if not waiver.scope.applies(host, groups):
            step.update(verdict='hosts', why='its hosts (%s) do not take %s (%s)' % (
                _patterns(source.get('hosts')), host, _groups_text(groups)))
        elif covered:
            step.update(verdict='not checked', why='an earlier waiver covers the finding')
        else:
            verdict, detail = waiver.judge(finding, today)
            step['verdict'] = verdict
            step['why'] = _waiver_text(verdict, detail, finding, source, waiver)
            covered = verdict == 'covers'
        steps.append(step)
    return steps


def _waiver_text(verdict, detail, finding, source, waiver):
    if verdict == 'protocols':
        return 'it is about %s only' % _patterns(source.get('protocols'))
    if verdict == 'namespaces':
        return 'its namespaces (%s) do not take %s' % (_patterns(source.get('namespaces')), finding['where'])
    if verdict == 'ports':
        return 'its %s ports (%s) do not include %d' % (finding['protocol'], waiver.ports[finding['protocol']].describe(),
                                                        finding['port'])
    if verdict == 'expired':
        return 'it expired on %s' % waiver.expires.isoformat()
    if verdict == 'not_covered':
        return 'it is bound to %s and does not cover %s' % (_owners_text(waiver), detail)
    if verdict == 'unknown':
        return 'it is bound to %s and cannot be checked: %s' % (_owners_text(waiver), detail)
    bound = ', bound to %s, and every holder matches' % _owners_text(waiver) if waiver.owners else ''
    return 'it covers the finding until %s%s' % (waiver.expires.isoformat(), bound)


def _owners_text(waiver):
    return '; '.join('%s %s' % (key, _patterns(value)) for key, value in sorted(waiver.owners.describe().items()))


def explain_socket(entry, compiled, host, groups=(), today=None, coverage=None):
    """Explain the verdict on one gathered socket (an entry of a well-formed gather result, see gather_problem).

    Returns a mapping: the socket, the rules in policy order (``matched``, ``outcome``, ``why``), the default, the
    findings as the evaluation writes them with the waivers checked for each, the ``decision`` (one of DECISIONS)
    and ``decided_by`` (the rules whose findings make it), and ``host_notes`` (what makes the host unknown).
    """
    today = today or datetime.date.today()
    groups = list(groups or ())
    for scope in compiled.namespace_scopes:
        scope.forget()
    builder = ev.findings_builder()
    rules = []
    matched = False
    for rule in compiled.rules:
        step, hit = _rule_step(rule, entry, host, groups, builder)
        rules.append(step)
        matched = matched or hit
    default = {'policy': compiled.default, 'applies': False}
    if compiled.default != 'deny':
        default['why'] = 'allow: a socket no rule forbids is allowed'
    elif matched:
        default['why'] = 'deny, which does not apply: a rule matched the socket'
    elif entry['ephemeral']:
        default['why'] = 'deny, which leaves ephemeral UDP sockets (most likely clients) alone'
    else:
        default.update(applies=True, why='deny: no rule matched the socket, so it is drift')
        builder.add(DEFAULT_RULE_ID, compiled.default_severity, entry, builder.DEFAULT_TEXT)
    explanation = _decided(builder.items, rules, compiled, host, groups, today, coverage)
    explanation.update({
        'socket': {'label': socket_label(entry), 'protocol': entry['protocol'], 'family': entry['family'],
                   'address': entry['address'], 'port': entry['port'], 'v6only': entry.get('v6only'),
                   'ephemeral': entry['ephemeral'], 'where': namespace_where(entry.get('namespace')) or HOST_WHERE,
                   'processes': [dict((field, proc.get(field)) for field in ev.PROCESS_FIELDS)
                                 for proc in entry.get('processes') or []]},
        'rules': rules, 'default': default})
    return explanation


def _decided(findings, rules, compiled, host, groups, today, coverage):
    """The part of an explanation after the rules: each finding with the waivers checked for it (then the waiver pass
    itself), the decision, the rules that made it, and what makes the host unknown."""
    waiver_steps = [_waiver_steps(finding, compiled.waivers, host, groups, today) for finding in findings]
    reasons = []
    ev.apply_waivers(findings, compiled, host, groups, today, [], reasons)
    explained = [{'rule': finding['rule'], 'severity': finding['severity'], 'status': finding['status'],
                  'message': finding['message'], 'waiver': finding['waiver'], 'waivers': steps}
                 for finding, steps in zip(findings, waiver_steps)]
    decision = socket_decision(findings)
    decided_by = sorted(set(finding['rule'] for finding in findings if finding['status'] == decision))
    if decision == 'allowed':
        decided_by = [step['rule'] for step in rules if step['outcome'] == 'allowed']
    host_notes = list(reasons)
    if coverage is not None and not coverage.get('complete'):
        host_notes.extend('partial gather: %s' % error for error in coverage.get('errors') or
                          ['the gather reported partial coverage'])
    return {'host': host, 'groups': groups, 'evaluated_on': today.isoformat(), 'policy': compiled.info(),
            'findings': explained, 'decision': decision, 'decided_by': decided_by, 'host_notes': host_notes}


def _first_port(ports, low, high):
    """The first port of ``low``-``high`` that ``ports`` holds, or None."""
    for start, end in ports.ranges():
        if start <= high and end >= low:
            return max(start, low)
    return None


def _ports_text(low, high):
    return '%d' % low if low == high else '%d-%d' % (low, high)


def _exposure_rule_step(rule, entry, low, high, host, groups, found):
    """One rule, as the evaluation of a published port (range ``low``-``high``) meets it; ``found``: the findings
    the evaluation (evaluate_policy.judge_exposure) gave per rule."""
    step = {'rule': rule.id, 'severity': rule.severity, 'description': rule.description, 'matched': False,
            'outcome': 'not matched', 'why': None}
    protocol = entry['protocol']
    if not rule.scope.applies(host, groups):
        step['why'] = 'its hosts (%s) do not take %s (%s)' % (_patterns(rule.source.get('hosts')), host, _groups_text(groups))
        return step
    if protocol not in rule.ports:
        step['why'] = 'it is about %s only, not %s' % (', '.join(sorted(rule.ports)), protocol)
        return step
    port = _first_port(rule.ports[protocol], low, high)
    if port is None:
        step['why'] = 'its %s ports (%s) do not include %s' % (protocol, rule.ports[protocol].describe(),
                                                               _ports_text(low, high))
        return step
    key = rule.mismatch(entry)
    if key is not None:
        step['why'] = _mismatch_text(rule, key, entry).replace('the socket', 'the published port', 1)
        return step
    step['matched'] = True
    at = '' if low == high else ' at port %d' % port
    findings = found.get(rule.id) or []
    if rule.closed:
        step.update(outcome='drift', why='it matches%s and expects the port closed' % at)
    elif findings:
        step.update(outcome=findings[0]['status'], why='it matches%s and %s: see its finding' % (
            at, 'the published port does not meet its expect' if findings[0]['status'] == 'drift'
            else 'what its expect needs is not known'))
    else:
        step.update(outcome='allowed', why='it matches%s and the published port satisfies its expect (%s)' % (
            at, _expect_text(rule)))
    return step


def explain_exposure(exposure, compiled, host, groups=(), today=None, coverage=None):
    """Explain the verdict on one port (or range) a DNAT or REDIRECT publishes (an entry of a well-formed gather's
    ``exposures``): the same mapping as explain_socket, its ``socket`` being the published port and ``published``
    the rule that publishes it. The findings are those evaluate_policy.judge_exposure gives, as the evaluation."""
    today = today or datetime.date.today()
    groups = list(groups or ())
    in_scope = [rule for rule in compiled.rules if rule.scope.applies(host, groups)]
    tables = dict((protocol, compiled.candidates(in_scope, protocol)) for protocol in PROTOCOLS)
    builder = ev.findings_builder()
    ev.judge_exposure(exposure, tables, compiled.default == 'deny', builder, compiled.default_severity)
    findings = builder.items
    found = {}
    for finding in findings:
        found.setdefault(finding['rule'], []).append(finding)
    entry = ev.exposure_entry(exposure)
    low, high = exposure['port'], exposure['port_end']
    rules = [_exposure_rule_step(rule, entry, low, high, host, groups, found) for rule in compiled.rules]
    default = {'policy': compiled.default, 'applies': False}
    defaulted = found.get(DEFAULT_RULE_ID)
    if compiled.default != 'deny':
        default['why'] = 'allow: a port no rule forbids is allowed'
    elif defaulted:
        default.update(applies=True, why='deny: no rule matched %s, so it is drift' % (
            'the published port' if low == high else 'port %d of the published range' % defaulted[0]['port']))
    else:
        default['why'] = 'deny, which does not apply: a rule matched %s' % (
            'the published port' if low == high else 'every port of the published range')
    explanation = _decided(findings, rules, compiled, host, groups, today, coverage)
    owner = exposure['owner']
    explanation.update({
        'socket': {'label': exposure_label(exposure), 'protocol': exposure['protocol'], 'family': exposure['family'],
                   'address': exposure['address'], 'port': low, 'port_end': high, 'via': 'nat', 'where': HOST_WHERE,
                   'processes': [dict((field, proc.get(field)) for field in ev.PROCESS_FIELDS)
                                 for proc in owner.get('processes') or []]},
        'published': {'action': exposure['action'], 'hooks': list(exposure['hooks']), 'source': exposure['source'],
                      'table': exposure['table'], 'chain': exposure['chain'], 'rule': exposure['rule'],
                      'owner': owner['kind'], 'owner_reason': owner.get('reason')},
        'rules': rules, 'default': default})
    return explanation


def explain_lines(explanation):
    """The explanation in plain words, one line each (host text still to be shown through ``printable``)."""
    socket = explanation['socket']
    holders = ', '.join('%s[%s] (user %s, exe %s, unit %s)' % (
        proc['name'], proc['pid'], proc['user'] or proc['uid'], proc['exe'] or 'unknown', proc['unit'] or 'none')
        for proc in socket['processes']) or 'no known process'
    title = '%s on %s (%s), policy %s, evaluated on %s' % (
        socket['label'], explanation['host'], _groups_text(explanation['groups']), explanation['policy']['name'],
        explanation['evaluated_on'])
    published = explanation.get('published')
    if published is None:
        lines = [title, '  held by: %s' % holders]
    else:
        lines = [title, '  published by %s %s chain %s (%s): %s' % (
            published['source'], published['table'], published['chain'], ', '.join(published['hooks']), published['rule']),
            '  answered by: %s%s' % (holders if socket['processes'] else 'owner %s' % published['owner'],
                                     '; %s' % published['owner_reason'] if published['owner_reason'] else '')]
    lines.append('rules, in policy order:')
    for step in explanation['rules']:
        lines.append('  rule %s: %s: %s' % (step['rule'], step['outcome'], step['why']))
    if not explanation['rules']:
        lines.append('  (the policy has no rules)')
    lines.append('default: %s' % explanation['default']['why'])
    for finding in explanation['findings']:
        lines.append('finding of %s (%s): %s' % (finding['rule'], finding['severity'], finding['status']))
        lines.append('  %s' % finding['message'])
        for step in finding['waivers']:
            lines.append('  waiver%s: %s' % (' (%s)' % step['ticket'] if step['ticket'] else '', step['why']))
        if not finding['waivers']:
            lines.append('  no waiver names rule %s' % finding['rule'])
    decided = ', '.join(explanation['decided_by'])
    if explanation['decision'] == 'allowed':
        why = 'allowed by %s' % decided if decided else 'no rule forbids it'
        lines.append('decision: allowed (%s)' % why)
    else:
        lines.append('decision: %s (decided by %s)' % (explanation['decision'], decided))
    lines.extend('host verdict also: %s' % note for note in explanation['host_notes'])
    return lines
