# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Report step, output: the fleet report (see report_build) rendered for the tools that read it.

Pure standard library. Each renderer takes the report dict and returns text:

- ``json``: the report itself, as docs/report.schema.json describes it;
- ``junit``: JUnit XML for CI test views, a suite per host and a test case per rule;
- ``markdown``: a CI step summary or pull-request comment;
- ``html``: one self-contained page (inline CSS, no scripts): a fleet heat map and a drill-down per host;
- ``prometheus``: the text exposition format, for node_exporter's textfile collector.

Everything taken from the report (host names, process names, messages) is data, never markup:
each format escapes it its own way, after ``report_sockets.printable`` has written its control and
invisible characters as escapes (``\\x1b``, ``\\u202e``): no report carries a character a terminal, a
browser or a CI view would act on or hide, and each stays valid UTF-8 (and valid XML 1.0).
"""

from __future__ import annotations

import datetime
import gc
import html
import math
import re
import xml.etree.ElementTree as ET
from json.encoder import INFINITY as _INFINITY
from json.encoder import encode_basestring_ascii as _json_string

from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import DEFAULT_RULE_ID, SEVERITIES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_sockets import HOST_WHERE, printable

SEVERITIES_WORST_FIRST = tuple(reversed(SEVERITIES))
_RANK = dict((severity, rank) for rank, severity in enumerate(SEVERITIES))
_WORST_FIRST_RANKED = tuple((_RANK[severity], severity) for severity in SEVERITIES_WORST_FIRST)
MARKDOWN_HOST_ROWS = 50
HTML_FINDINGS_PER_HOST = 200
_DETAIL_CHARS = 160


def _without_gc(render):
    """Run a renderer with the cyclic collector paused: a report is a tree of fresh objects without
    cycles, and for 10,000 hosts the collector would only rescan them (a sixth of the JUnit time)."""
    def wrapper(report, *args, **kwargs):
        collecting = gc.isenabled()
        gc.disable()
        try:
            return render(report, *args, **kwargs)
        finally:
            if collecting:
                gc.enable()
    wrapper.__name__ = render.__name__
    wrapper.__doc__ = render.__doc__
    return wrapper


def _host_counts(entry):
    """``(drift by severity, waived, unknown findings, worst drift rank or -1, remediated)`` of one host entry.

    A remediated finding (remediate mode closed it) is neither drift nor unknown."""
    drift = dict((severity, 0) for severity in SEVERITIES)
    waived = unknown = remediated = 0
    for finding in entry['findings']:
        status = finding['status']
        if status == 'drift':
            drift[finding['severity']] += 1
        elif status == 'waived':
            waived += 1
        elif status == 'remediated':
            remediated += 1
        else:
            unknown += 1
    worst = -1
    for rank, severity in _WORST_FIRST_RANKED:
        if drift[severity]:
            worst = rank
            break
    return drift, waived, unknown, worst, remediated


def _no_verdict(entry):
    # As the gate sees it: a host with reasons (partial gather, missing process facts) is not vouched for.
    return entry['status'] == 'unknown' or bool(entry['reasons'])


def _ranked_hosts(report):
    """``[(entry, counts)]`` worst first: worst drift severity, then no verdict, then drift count, then name."""
    ranked = []
    for entry in report['hosts']:
        counts = _host_counts(entry)
        ranked.append((entry, counts))
    ranked.sort(key=lambda item: (-item[1][3], not _no_verdict(item[0]), -sum(item[1][0].values()), item[0]['host']))
    return ranked


def _epoch(generated_at):
    stamp = datetime.datetime.strptime(generated_at, '%Y-%m-%dT%H:%M:%SZ')
    return int(stamp.replace(tzinfo=datetime.timezone.utc).timestamp())


def _socket_text(finding):
    """A finding's (or a finding key's) socket, with where it lives outside the host's namespace."""
    address = finding.get('address') or ''
    if finding.get('family') == 'ipv6' or ':' in address:
        address = '[%s]' % address
    where = finding.get('where') or HOST_WHERE
    port = finding.get('port')
    if finding.get('via') == 'nat':  # a port a DNAT or REDIRECT publishes: said so, with its range
        end = finding.get('port_end')
        return '%s %s:%s published by NAT' % (finding.get('protocol'), address, port if end in (None, port) else '%s-%s' % (port, end))
    return '%s %s:%s%s' % (finding.get('protocol'), address, port, '' if where == HOST_WHERE else ' in ' + where)


def _process_text(proc):
    text = '%s[%s]' % (proc.get('name'), proc.get('pid'))
    who = proc.get('user') if proc.get('user') is not None else proc.get('uid')
    if who is not None:
        text += ' as %s' % who
    if proc.get('unit'):
        text += ' (%s)' % proc['unit']
    if proc.get('exe'):
        text += ' %s' % proc['exe']
    return text


def _waiver_text(finding):
    waiver = finding.get('waiver')
    if waiver:
        text = 'waived until %s: %s' % (waiver.get('expires'), waiver.get('reason'))
    elif finding.get('waiver_expired'):
        waiver = finding['waiver_expired']
        text = 'waiver expired %s: %s' % (waiver.get('expires'), waiver.get('reason'))
    else:
        return ''
    if waiver.get('ticket'):
        text += ' (%s)' % waiver['ticket']
    if waiver.get('approved_by'):
        text += ', approved by %s' % waiver['approved_by']
    bound = ['%s %s' % (key, ', '.join(str(item) for item in waiver[key])) for key in _WAIVER_OWNER_KEYS
             if isinstance(waiver.get(key), list)]
    if bound:
        text += ', bound to %s' % '; '.join(bound)
    return text


_WAIVER_OWNER_KEYS = ('processes', 'users', 'exe', 'units')  # a process-bound waiver's keys (evaluate_policy.OWNER_KEYS)


def _short(text, limit=_DETAIL_CHARS):
    # printable first: a line feed or a separator in the text is shown as its escape, not dropped.
    text = ' '.join(printable(text).split())
    return text if len(text) <= limit else text[:limit - 1] + '\u2026'


def _verdict(summary):
    """The fleet in a word: drift if any host drifts (certainly not compliant), else unknown if any
    host has no verdict, else compliant."""
    if summary['drift']:
        return 'drift'
    if summary['unknown']:
        return 'unknown'
    return 'compliant'


_VERDICT_WORDS = {'compliant': 'compliant', 'drift': 'not compliant', 'unknown': 'unknown'}


def _headline(summary):
    hosts = summary['hosts']
    plural = '' if hosts == 1 else 's'
    if not summary['drift'] and not summary['unknown']:
        return 'all %d host%s' % (hosts, plural) if hosts else 'no hosts in the report'
    parts = []
    if summary['drift']:
        parts.append('drift on %d' % summary['drift'])
    if summary['unknown']:
        parts.append('no verdict on %d' % summary['unknown'])
    return '%s of %d host%s' % (' and '.join(parts), hosts, plural)


def _change_totals(report):
    """``(new findings, hosts with new, resolved findings, hosts with resolved, first seen)`` or None."""
    if report.get('previous') is None:
        return None
    new = new_hosts = resolved = resolved_hosts = first_seen = 0
    for entry in report['hosts']:
        changes = entry.get('changes')
        if not changes:
            continue
        if changes['new']:
            new += len(changes['new'])
            new_hosts += 1
        if changes['resolved']:
            resolved += len(changes['resolved'])
            resolved_hosts += 1
        if changes.get('first_seen'):
            first_seen += 1
    return new, new_hosts, resolved, resolved_hosts, first_seen


def _prefix(sha256, length=12):
    return str(sha256)[:length] if sha256 else 'none'


def _remediating(report):
    """Whether the report comes from remediate mode: report mode renders exactly as it always did."""
    summary = report.get('summary') or {}
    if summary.get('remediated_findings') or summary.get('remediation_actions'):
        return True
    return any(entry.get('remediation') is not None for entry in report['hosts'])


def _remediation_target(note):
    """``strategy: target`` of a finding's remediation note (the strategy alone without a target)."""
    if note.get('target'):
        return '%s: %s' % (note.get('strategy'), note['target'])
    return str(note.get('strategy'))


def _remediation_suffix(finding):
    """What remediate mode did about a finding still open (drift, unknown), or ''."""
    note = finding.get('remediation')
    if not note:
        return ''
    return '; remediation %s (%s)%s' % (note.get('status'), _remediation_target(note),
                                        ': %s' % note['reason'] if note.get('reason') else '')


def _remediated_text(finding):
    """``remediated: message (strategy: target)``, the target not repeated when the message already ends with it."""
    note = finding.get('remediation')
    message = str(finding['message'])
    target = ' (%s)' % _remediation_target(note) if note else ''
    return 'remediated: %s%s' % (message, '' if message.endswith(target) else target)


def _rules_text(rules):
    return ', '.join(str(rule) for rule in rules or ()) or '\u2013'


def _action_text(action):
    """One remediation action as a line: outcome, strategy, target, rules and detail."""
    rules = action.get('rules') or []
    return '%s: %s %s (rule%s %s)%s' % (
        action.get('outcome'), action.get('strategy'), action.get('target'), '' if len(rules) == 1 else 's',
        _rules_text(rules), ': %s' % action['detail'] if action.get('detail') else '')


def _outcome_counts(report):
    """``({outcome: actions}, hosts with actions, [(host, why skipped)])`` over the fleet."""
    outcomes = {}
    acting = 0
    skipped = []
    for entry in report['hosts']:
        remediation = entry.get('remediation')
        if not remediation:
            continue
        if remediation.get('actions'):
            acting += 1
            for action in remediation['actions']:
                outcome = str(action.get('outcome'))
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if remediation.get('skipped'):
            skipped.append((entry['host'], remediation['skipped']))
    return outcomes, acting, skipped


# ---------------------------------------------------------------------------------------------- JSON

def _json_float(value):
    if math.isnan(value):
        return 'NaN'
    if value == _INFINITY:
        return 'Infinity'
    if value == -_INFINITY:
        return '-Infinity'
    return float.__repr__(value)


def _json_scalar(value):
    """The JSON text of a scalar as json.dumps writes it, or None for a container."""
    if isinstance(value, str):
        return _json_string(value)
    if value is None:
        return 'null'
    if value is True:
        return 'true'
    if value is False:
        return 'false'
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _json_float(value)
    return None


def _json_key(key):
    if isinstance(key, str):
        return _json_string(key)
    if isinstance(key, (bool, type(None))):
        return _json_scalar(key).join('""')
    if isinstance(key, (int, float)):
        return _json_string(_json_scalar(key))
    raise TypeError('keys must be str, int, float, bool or None, not %s' % key.__class__.__name__)


@_without_gc
def render_json(report):
    """The report as JSON (indent 2, a trailing newline): what docs/report.schema.json describes.

    The text is exactly ``json.dumps(report, indent=2)``; with an indent, Python's json module (before
    3.14) leaves its C encoder for a generator per value, twice as slow as this for 10,000 hosts.
    """
    chunks = []
    append = chunks.append
    string = _json_string

    def emit(value, pad):
        kind = type(value)
        if kind is dict or (kind is not list and isinstance(value, dict)):
            if not value:
                append('{}')
                return
            inner = pad + '  '
            separator = '{' + inner
            for key, item in value.items():
                head = separator + (string(key) if isinstance(key, str) else _json_key(key)) + ': '
                kind = type(item)
                if kind is str:
                    append(head + string(item))
                elif kind is int:
                    append(head + int.__repr__(item))
                elif item is None:
                    append(head + 'null')
                else:
                    text = _json_scalar(item)
                    if text is None:
                        append(head)
                        emit(item, inner)
                    else:
                        append(head + text)
                separator = ',' + inner
            append(pad + '}')
        elif kind is list or kind is tuple or isinstance(value, (list, tuple)):
            if not value:
                append('[]')
                return
            inner = pad + '  '
            separator = '[' + inner
            for item in value:
                text = string(item) if isinstance(item, str) else _json_scalar(item)
                if text is None:
                    append(separator)
                    emit(item, inner)
                else:
                    append(separator + text)
                separator = ',' + inner
            append(pad + ']')
        else:
            text = _json_scalar(value)
            if text is None:
                raise TypeError('Object of type %s is not JSON serializable' % value.__class__.__name__)
            append(text)

    emit(report, '\n')
    append('\n')
    return ''.join(chunks)


# --------------------------------------------------------------------------------------------- JUnit

def _xml(value):
    # XML 1.0 cannot carry most controls at all, not even as character references: a process name may
    # hold them, and printable writes them (and every other control or invisible character) as escapes.
    return printable(value)


def _xml_lines(lines):
    """Lines of a text element, each escaped on its own: a line feed inside one cannot forge another."""
    return '\n'.join(printable(line) for line in lines)


def _rule_ids(report):
    """The policy's rules in policy order, then any other rule a finding names ('default' among them)."""
    ids = [str(rule['id']) for rule in (report.get('policy') or {}).get('rules') or [] if rule.get('id') is not None]
    known = set(ids)
    extra = set()
    for entry in report['hosts']:
        for finding in entry['findings']:
            if finding['rule'] not in known:
                extra.add(finding['rule'])
    return ids + sorted(extra, key=lambda rule: (rule != DEFAULT_RULE_ID, rule))


def _junit_case(suite, host, name):
    case = ET.SubElement(suite, 'testcase', {'classname': host, 'name': name})
    case.tail = '\n    '
    return case


def _junit_child(case, tag, attrib, text=None):
    # Indented by hand as it is built: ElementTree.indent walks the whole tree again (and needs 3.9).
    if case.text is None:
        case.text = '\n      '
    else:
        case[-1].tail = '\n      '
    child = ET.SubElement(case, tag, attrib)
    child.text = text
    child.tail = '\n    '
    return child


# The test case bucket of a finding's status: drift fails, unknown errors, waived and remediated pass.
_JUNIT_BUCKETS = {'drift': 0, 'unknown': 1, 'waived': 2, 'remediated': 3}


def _junit_failure_message(drift):
    severities = sorted(set(f['severity'] for f in drift), key=_RANK.get, reverse=True)
    sockets = '; '.join(_socket_text(f) for f in drift[:5]) + (' ...' if len(drift) > 5 else '')
    return '%d drift finding%s (%s): %s' % (
        len(drift), '' if len(drift) == 1 else 's', ', '.join(severities), _short(sockets, 200))


def _junit_remediation_lines(remediation):
    actions = remediation.get('actions') or []
    lines = []
    if actions:
        lines.append('remediation: %d action%s, %s' % (len(actions), '' if len(actions) == 1 else 's',
                                                       'verified by a gather after the changes' if remediation.get('verified')
                                                       else 'not verified'))
        lines.extend(_action_text(action) for action in actions)
    if remediation.get('skipped'):
        lines.append('remediation skipped: %s' % remediation['skipped'])
    return lines


@_without_gc
def render_junit(report):
    """JUnit XML: a ``testsuite`` per host, a ``testcase`` per rule.

    A rule with drift findings on the host fails (``type="drift"``), one with findings the gather
    could not judge errors (``type="unknown"``); waived and remediated findings pass and are listed in
    ``system-out``. A host without a full verdict (unknown, or drift seen by a partial gather) gets a
    ``verdict`` test case that errors with the reasons; on an unknown host without findings the rule
    test cases are skipped, since nothing was seen to vouch for. In remediate mode, what a finding's
    remediation came to follows its line, and the host suite's own ``system-out`` lists the actions.
    """
    rules = [(rule, _xml(rule)) for rule in _rule_ids(report)]
    generated_at = _xml(report['generated_at'])
    root = ET.Element('testsuites', {'name': 'portwarden.compliance'})
    root.text = '\n  '
    totals = dict.fromkeys(('tests', 'failures', 'errors', 'skipped'), 0)
    suite = None
    for entry in report['hosts']:
        host = _xml(entry['host'])
        by_rule = {}
        for finding in entry['findings']:
            by_rule.setdefault(finding['rule'], ([], [], [], []))[_JUNIT_BUCKETS.get(finding['status'], 2)].append(finding)
        skip = entry['status'] == 'unknown' and not entry['findings']
        suite = ET.SubElement(root, 'testsuite', {'name': host, 'hostname': host, 'timestamp': generated_at})
        suite.text = '\n    '
        suite.tail = '\n  '
        tests = len(rules)
        failures = errors = skipped = 0
        for rule, name in rules:
            case = _junit_case(suite, host, name)
            found = by_rule.get(rule)
            if found is None:
                if skip:
                    _junit_child(case, 'skipped', {'message': 'no verdict for this host'})
                    skipped += 1
                continue
            drift, unknown, waived, remediated = found
            if drift:
                _junit_child(case, 'failure', {'type': 'drift', 'message': _xml(_junit_failure_message(drift))},
                             _xml_lines('[%s] %s%s' % (f['severity'], f['message'], _remediation_suffix(f)) for f in drift))
                failures += 1
            elif unknown:
                _junit_child(case, 'error', {'type': 'unknown', 'message': '%d finding%s could not be judged' % (
                    len(unknown), '' if len(unknown) == 1 else 's')},
                    _xml_lines(f['message'] + _remediation_suffix(f) for f in unknown))
                errors += 1
            if waived or remediated:
                _junit_child(case, 'system-out', {}, _xml_lines(
                    ['waived: %s (%s)' % (f['message'], _waiver_text(f)) for f in waived]
                    + [_remediated_text(f) for f in remediated]))
        if _no_verdict(entry):
            reasons = entry['reasons'] or ['no verdict']
            _junit_child(_junit_case(suite, host, 'verdict'), 'error',
                         {'type': 'unknown', 'message': _xml(_short(reasons[0], 300))}, _xml_lines(reasons))
            tests += 1
            errors += 1
        remediation = entry.get('remediation')
        if remediation and (remediation.get('actions') or remediation.get('skipped')):
            out = ET.SubElement(suite, 'system-out')
            out.text = _xml_lines(_junit_remediation_lines(remediation))
            out.tail = '\n    '
        if len(suite):
            suite[-1].tail = '\n  '
        else:
            suite.text = None
        for key, value in (('tests', tests), ('failures', failures), ('errors', errors), ('skipped', skipped)):
            suite.set(key, str(value))
            totals[key] += value
    if suite is not None:
        suite.tail = '\n'
    else:
        root.text = None
    for key, value in totals.items():
        root.set(key, str(value))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding='unicode') + '\n'


# ------------------------------------------------------------------------------------------ Markdown

_MARKDOWN_ESCAPES = str.maketrans({
    '\\': '\\\\', '|': '\\|', '*': '\\*', '_': '\\_', '`': '\\`', '[': '\\[', ']': '\\]', '~': '\\~',
    '<': '&lt;', '>': '&gt;', '&': '&amp;', '\n': ' ', '\r': ' ', '\t': ' ',
})


# What GitHub turns into a notification or a link in a comment's text: @mentions (and e-mail
# addresses), issue references (#123, GH-123) and bare URLs (scheme://, www., mailto:, xmpp:). An empty
# HTML comment after the trigger splits the text GitHub scans, and renders as nothing: the reader still
# sees "@ops", "#123" and the URL, as plain text.
_GITHUB_TRIGGERS = re.compile(r'(@(?=[A-Za-z0-9])|#(?=[0-9])|\bGH-(?=[0-9]))|(?<=[A-Za-z0-9+.-])(?=://)|\bwww(?=\.)'
                              r'|\b(?:mailto|xmpp)(?=:)', re.IGNORECASE)
_NOTHING = '<!-- -->'


def _neutralise(match):
    return (match.group(1) or match.group(0)) + _NOTHING


def markdown_escape(value):
    """Data as literal text in a Markdown table cell or a pull-request comment: no markup, links, HTML,
    cell breaks, control or invisible characters (``printable``), mentions, issue references or bare URLs."""
    text = printable(value).translate(_MARKDOWN_ESCAPES)
    return _GITHUB_TRIGGERS.sub(_neutralise, text)


def _md_row(cells):
    return '| ' + ' | '.join(cells) + ' |'


def _md_detail(entry):
    for finding in entry['findings']:
        if finding['status'] == 'drift':
            # Ports published by NAT have no socket to find on the host: a row that shows another finding counts them.
            published = sum(1 for other in entry['findings']
                            if other is not finding and other['status'] == 'drift' and other.get('via') == 'nat')
            return ('(and %d drift published by NAT) ' % published if published else '') + finding['message']
    if entry['reasons']:
        return entry['reasons'][0]
    for finding in entry['findings']:
        if finding['status'] == 'unknown':
            return finding['message']
    return ''


def _md_remediation(report, max_rows):
    """The "Remediation" section: totals, every action (host, strategy, target, rules, outcome), skipped hosts."""
    outcomes, acting, skipped = _outcome_counts(report)
    actions = [(entry['host'], action) for entry in report['hosts']
               for action in (entry.get('remediation') or {}).get('actions') or ()]
    remediated = report['summary'].get('remediated_findings') or 0
    lines = ['### Remediation', '']
    if actions:
        lines.append('**%d action%s** on %d host%s (%s) \u00b7 %d finding%s remediated' % (
            len(actions), '' if len(actions) == 1 else 's', acting, '' if acting == 1 else 's',
            markdown_escape(', '.join('%s %d' % (outcome, outcomes[outcome]) for outcome in sorted(outcomes))),
            remediated, '' if remediated == 1 else 's'))
        lines.append('')
        lines.append(_md_row(['Host', 'Strategy', 'Target', 'Rules', 'Outcome', 'Detail']))
        lines.append(_md_row([':---'] * 6))
        for host, action in actions[:max_rows]:
            lines.append(_md_row([markdown_escape(host), markdown_escape(action.get('strategy')),
                                  markdown_escape(_short(action.get('target') or '\u2013')), markdown_escape(_short(_rules_text(action.get('rules')))),
                                  markdown_escape(action.get('outcome')), markdown_escape(_short(action.get('detail') or '\u2013'))]))
        if len(actions) > max_rows:
            lines.append('')
            lines.append('\u2026 and %d more action%s: see the HTML or JSON report.' % (
                len(actions) - max_rows, '' if len(actions) - max_rows == 1 else 's'))
    else:
        lines.append('No remediation action on any host \u00b7 %d finding%s remediated.' % (
            remediated, '' if remediated == 1 else 's'))
    lines.append('')
    if skipped:
        lines.append('Nothing done on %d host%s:' % (len(skipped), '' if len(skipped) == 1 else 's'))
        lines.append('')
        lines.append(_md_row(['Host', 'Why remediation was skipped']))
        lines.append(_md_row([':---', ':---']))
        lines.extend(_md_row([markdown_escape(host), markdown_escape(_short(reason))]) for host, reason in skipped[:max_rows])
        if len(skipped) > max_rows:
            lines.append('')
            lines.append('\u2026 and %d more host%s skipped: see the HTML or JSON report.' % (
                len(skipped) - max_rows, '' if len(skipped) - max_rows == 1 else 's'))
        lines.append('')
    return lines


MARKDOWN_OVERLAY_HOSTS = 10


def _overlaid_hosts(report):
    """``[(host, [variable, ...])]`` of the hosts judged with overlays from their inventory variables."""
    found = []
    for entry in report['hosts']:
        policy = entry.get('policy')
        overlays = policy.get('overlays') if isinstance(policy, dict) else None
        if overlays:
            found.append((entry['host'], [str(item.get('variable')) for item in overlays if isinstance(item, dict)]))
    return found


@_without_gc
def render_markdown(report, max_rows=MARKDOWN_HOST_ROWS):
    """A CI step summary / pull-request comment: verdict, totals, the worst hosts, what changed."""
    summary = report['summary']
    policy = report.get('policy') or {}
    registry = report.get('registry') or {}
    verdict = _verdict(summary)
    mark = {'compliant': '\u2705', 'drift': '\u274c', 'unknown': '\u26a0\ufe0f'}[verdict]
    lines = ['## %s Port compliance: %s (%s)' % (mark, _VERDICT_WORDS[verdict], _headline(summary)), '']
    lines.append('Policy **%s** (sha256 %s) \u00b7 IANA registry %s \u00b7 generated %s' % (
        markdown_escape(policy.get('name') or 'unnamed'), markdown_escape(_prefix(policy.get('sha256'))),
        markdown_escape(registry.get('date') or 'unknown'), markdown_escape(report['generated_at'])))
    overlaid = _overlaid_hosts(report)
    if overlaid:
        shown = ', '.join('%s (%s)' % (markdown_escape(host), markdown_escape(', '.join(variables)))
                          for host, variables in overlaid[:MARKDOWN_OVERLAY_HOSTS])
        more = len(overlaid) - MARKDOWN_OVERLAY_HOSTS
        lines.append('')
        lines.append('Judged with overlays from inventory variables on %d host%s: %s%s; each host\'s effective policy '
                     'sha256 is in the JSON report.' % (len(overlaid), '' if len(overlaid) == 1 else 's', shown,
                                                        ' and %d more' % more if more > 0 else ''))
    lines.append('')
    lines.append(_md_row(['Hosts', 'Compliant', 'Drift', 'Unknown']))
    lines.append(_md_row(['---:'] * 4))
    lines.append(_md_row([str(summary[key]) for key in ('hosts', 'compliant', 'drift', 'unknown')]))
    lines.append('')
    by_severity = summary['findings_by_severity']
    remediated = summary.get('remediated_findings') or 0
    lines.append(_md_row(['Drift findings'] + [s.capitalize() for s in SEVERITIES_WORST_FIRST] + ['Waived', 'Unjudged']
                         + (['Remediated'] if remediated else [])))
    lines.append(_md_row([':---'] + ['---:'] * (len(SEVERITIES) + 2 + bool(remediated))))
    lines.append(_md_row(['%d' % sum(by_severity.values())] + [str(by_severity[s]) for s in SEVERITIES_WORST_FIRST]
                         + [str(summary.get('waived_findings', 0)), str(summary.get('unknown_findings', 0))]
                         + ([str(remediated)] if remediated else [])))
    lines.append('')

    totals = _change_totals(report)
    if totals is not None:
        new, new_hosts, resolved, resolved_hosts, first_seen = totals
        lines.append('Since the previous report (%s): **%d new** drift finding%s on %d host%s, **%d resolved** on %d host%s'
                     % (markdown_escape((report['previous'] or {}).get('generated_at') or 'unknown time'),
                        new, '' if new == 1 else 's', new_hosts, '' if new_hosts == 1 else 's',
                        resolved, resolved_hosts, '' if resolved_hosts == 1 else 's')
                     + (', %d host%s seen for the first time.' % (first_seen, '' if first_seen == 1 else 's')
                        if first_seen else '.'))
        lines.append('')

    attention = [(entry, counts) for entry, counts in _ranked_hosts(report)
                 if entry['status'] != 'compliant' or entry['reasons']]
    if attention:
        lines.append('### Hosts with drift or no verdict (worst first)')
        lines.append('')
        header = ['Host', 'Status', 'Worst'] + [s.capitalize() for s in SEVERITIES_WORST_FIRST] + ['Waived']
        if totals is not None:
            header += ['New', 'Resolved']
        header.append('Detail')
        lines.append(_md_row(header))
        lines.append(_md_row([':---', ':---', ':---'] + ['---:'] * (len(header) - 4) + [':---']))
        for entry, (drift, waived, _unknown, worst, _remediated) in attention[:max_rows]:
            status = entry['status'] if not (entry['reasons'] and entry['status'] != 'unknown') else \
                '%s, no full verdict' % entry['status']
            row = [markdown_escape(entry['host']), markdown_escape(status), SEVERITIES[worst] if worst >= 0 else '\u2013']
            row += [str(drift[s]) if drift[s] else '\u00b7' for s in SEVERITIES_WORST_FIRST]
            row.append(str(waived) if waived else '\u00b7')
            if totals is not None:
                changes = entry.get('changes') or {'new': [], 'resolved': []}
                row += [str(len(changes['new'])), str(len(changes['resolved']))]
            row.append(markdown_escape(_short(_md_detail(entry))))
            lines.append(_md_row(row))
        if len(attention) > max_rows:
            lines.append('')
            lines.append('\u2026 and %d more host%s with drift or no verdict: see the HTML or JSON report.' % (
                len(attention) - max_rows, '' if len(attention) - max_rows == 1 else 's'))
        lines.append('')
    if _remediating(report):
        lines.extend(_md_remediation(report, max_rows))
    tool = report.get('tool') or {}
    lines.append('<sub>%s %s \u00b7 report schema v%s</sub>' % (
        markdown_escape(tool.get('name') or 'portwarden.compliance'), markdown_escape(tool.get('version') or ''),
        markdown_escape(report.get('schema_version'))))
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------------------------- HTML

_CSS = """
:root{--ink:#1f2933;--muted:#616e7c;--line:#d9e2ec;--bg:#f5f7fa;--card:#fff;
--ok:#2f855a;--ok-bg:#e3f9e5;--drift:#c53030;--drift-bg:#ffe3e3;--unk:#975a16;--unk-bg:#fff3c4}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--ink);background:var(--bg)}
header{background:#102a43;color:#f0f4f8;padding:20px 32px}
header h1{margin:0 0 6px;font-size:22px;font-weight:600}
header h1 .verdict{font-size:12px;vertical-align:middle;margin-left:12px;padding:3px 10px;border-radius:12px;text-transform:uppercase;letter-spacing:.05em}
header .headline{margin:0;font-size:15px;color:#d9e2ec}
header dl{display:flex;flex-wrap:wrap;gap:4px 28px;margin:8px 0 0;font-size:13px}
header dt{color:#9fb3c8;display:inline}
header dd{display:inline;margin:0 0 0 6px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
main{padding:20px 32px 40px;max-width:1600px}
h2{font-size:17px;margin:28px 0 10px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 18px;min-width:120px}
.card .n{font-size:26px;font-weight:650}
.card .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card.ok .n{color:var(--ok)}.card.drift .n{color:var(--drift)}.card.unknown .n{color:var(--unk)}
.sev{display:inline-block;min-width:64px;text-align:center;border-radius:4px;padding:1px 8px;font-size:12px;font-weight:600}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600}
.badge.compliant,.verdict.compliant{background:var(--ok-bg);color:var(--ok)}
.badge.drift,.verdict.drift{background:var(--drift-bg);color:var(--drift)}
.badge.unknown,.verdict.unknown{background:var(--unk-bg);color:var(--unk);border:1px dashed var(--unk)}
.badge.waived{background:#e0e8f9;color:#35469c}
table{border-collapse:collapse;background:var(--card)}
th,td{border:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f4f8;font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:#334e68}
table.heat td.c{text-align:center;min-width:72px;font-variant-numeric:tabular-nums}
table.heat td.h{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
table.heat td.h a{color:inherit}
table.heat tr.unknown td{background-image:repeating-linear-gradient(135deg,#fff8db 0 6px,#fff 6px 12px)}
table.heat tr.unknown td.h::before{content:"? ";color:var(--unk);font-weight:700}
td.z{color:#bcccdc}
.critical.l1{background:#f8c4c4}.critical.l2{background:#e66a6a;color:#fff}.critical.l3{background:#a61b1b;color:#fff}
.high.l1{background:#fcd9bd}.high.l2{background:#f0975a}.high.l3{background:#c0531b;color:#fff}
.medium.l1{background:#ffeeb3}.medium.l2{background:#f7c948}.medium.l3{background:#cb8a04;color:#fff}
.low.l1{background:#e6f6d5}.low.l2{background:#a3d977}.low.l3{background:#5a9b2e;color:#fff}
.info.l1{background:#dceefb}.info.l2{background:#8fc3ef}.info.l3{background:#2f7fc1;color:#fff}
.sev.critical{background:#a61b1b;color:#fff}.sev.high{background:#c0531b;color:#fff}
.sev.medium{background:#f7c948;color:#513c06}.sev.low{background:#a3d977;color:#243e12}.sev.info{background:#8fc3ef;color:#0b3a60}
.legend{color:var(--muted);font-size:12px;margin:6px 0 10px}
.legend span{display:inline-block;width:18px;height:12px;vertical-align:middle;border:1px solid var(--line);margin:0 2px}
details.host{background:var(--card);border:1px solid var(--line);border-radius:6px;margin:8px 0}
details.host>summary{cursor:pointer;padding:8px 12px;font-weight:600}
details.host>summary .h{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;margin-right:8px}
details.host>summary .meta{font-weight:400;color:var(--muted);margin-left:8px}
details.host[open]>summary{border-bottom:1px solid var(--line)}
details.host .body{padding:8px 12px 12px}
details.host table{width:100%;font-size:13px}
td.sock,td.procs{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
td.sock{white-space:nowrap}
td.msg{max-width:520px;word-break:break-word}
ul.reasons{margin:4px 0 8px;padding-left:20px}
ul.reasons li{color:var(--unk)}ul.warnings li{color:var(--muted)}
details.clean{margin-top:10px}
details.clean ul{columns:5 220px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.muted{color:var(--muted)}
footer{color:var(--muted);font-size:12px;padding:0 32px 24px}
"""

# Only on a page of remediate mode: a report-mode page stays byte for byte what it was.
_REMEDIATION_CSS = """.badge.remediated,.badge.r-ok{background:#d3f4f1;color:#14665f}.card.remediated .n{color:#14665f}
.badge.r-plan{background:#e0e8f9;color:#35469c}.badge.r-held{background:var(--unk-bg);color:var(--unk)}
.badge.r-bad{background:var(--drift-bg);color:var(--drift)}
details.host .body table+strong{display:block;margin-top:10px}td.rem{max-width:360px;word-break:break-word}
td.target{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
"""

# Badge colour of a finding's remediation status and of an action's outcome (anything else: held).
_REMEDIATION_BADGES = {
    'verified': 'r-ok', 'applied': 'r-ok', 'planned': 'r-plan', 'protected': 'r-held', 'unavailable': 'r-held',
    'failed': 'r-bad', 'not_verified': 'r-bad',
    'unchanged': 'r-ok', 'terminated': 'r-ok', 'killed': 'r-ok', 'gone': 'r-ok', 'would_apply': 'r-plan',
    'would_terminate': 'r-plan', 'mismatch': 'r-held', 'survived': 'r-bad',
}


def _e(value):
    """Data as HTML text or an attribute value (quotes escaped), its control and invisible characters as escapes."""
    return html.escape(printable(value), quote=True)


class _Escaped(dict):
    """html.escape of the values that repeat (rules, severities, services): each escaped once per page."""

    def __missing__(self, value):
        text = self[value] = _e(value)
        return text


def _level(count):
    if count <= 0:
        return 0
    if count == 1:
        return 1
    return 2 if count <= 4 else 3


def _html_badge(value, escaped):
    text = escaped[str(value)]
    return '<span class="badge %s">%s</span>' % (_REMEDIATION_BADGES.get(value, 'r-held'), text)


def _html_remediation_note(note, escaped):
    """A finding's remediation cell: the status badge, strategy and target, the reason."""
    if not note:
        return ''
    return '%s %s%s' % (_html_badge(note.get('status'), escaped), _e(_remediation_target(note)),
                        '<br><span class="muted">%s</span>' % _e(note['reason']) if note.get('reason') else '')


def _html_remediation(remediation, limit, escaped):
    """A host's remediation: why it was skipped, the actions (strategy, target, rules, outcome, detail), verified or not."""
    actions = remediation.get('actions') or []
    out = ['<strong>Remediation</strong>']
    if remediation.get('skipped'):
        out.append('<p class="muted">Skipped: %s</p>' % _e(remediation['skipped']))
    if actions:
        out.append('<table class="actions"><thead><tr><th>Strategy</th><th>Target</th><th>Rules</th><th>Outcome</th>'
                   '<th>Detail</th></tr></thead><tbody>')
        for action in actions[:limit]:
            out.append('<tr><td>%s</td><td class="target">%s</td><td>%s</td><td>%s</td><td class="rem">%s</td></tr>' % (
                escaped[str(action.get('strategy'))], _e(action.get('target') or '\u2013'), _e(_rules_text(action.get('rules'))),
                _html_badge(action.get('outcome'), escaped), _e(action.get('detail') or '')))
        out.append('</tbody></table>')
        if len(actions) > limit:
            out.append('<p class="muted">\u2026 and %d more actions: see the JSON report.</p>' % (len(actions) - limit))
        verified = 'Verified' if remediation.get('verified') else 'Not verified'
        out.append('<p class="muted">%s by a gather after the changes.</p>' % verified)
    elif not remediation.get('skipped'):
        out.append('<p class="muted">No action was needed.</p>')
    return ''.join(out)


def _html_findings(entry, limit, escaped):
    # The Remediation column only on a host where remediate mode has something to say about a finding.
    noted = any(finding.get('remediation') for finding in entry['findings'])
    rows = ['<table><thead><tr><th>Rule</th><th>Severity</th><th>Status</th><th>Socket</th><th>Service</th>'
            '<th>Processes</th><th>Message</th><th>Waiver</th>%s</tr></thead><tbody>' % (
                '<th>Remediation</th>' if noted else '')]
    escape = _e
    for finding in entry['findings'][:limit]:
        severity = escaped[str(finding['severity'])]
        status = escaped[str(finding['status'])]
        processes = finding.get('processes')
        rows.append(
            '<tr><td>%s</td><td><span class="sev %s">%s</span></td><td><span class="badge %s">%s</span></td>'
            '<td class="sock">%s</td><td>%s</td><td class="procs">%s</td><td class="msg">%s</td><td>%s</td>%s</tr>' % (
                escaped[str(finding['rule'])], severity, severity, status, status,
                escape(_socket_text(finding)), escaped[str(finding.get('service') or '\u2013')],
                '<br>'.join([escape(_process_text(proc)) for proc in processes])
                if processes else '<span class="muted">none known</span>',
                escape(str(finding.get('message') or '')),
                escape(_waiver_text(finding)) if finding.get('waiver') or finding.get('waiver_expired') else '',
                '<td class="rem">%s</td>' % _html_remediation_note(finding.get('remediation'), escaped) if noted else ''))
    rows.append('</tbody></table>')
    if len(entry['findings']) > limit:
        rows.append('<p class="muted">\u2026 and %d more findings: see the JSON report.</p>'
                    % (len(entry['findings']) - limit))
    return ''.join(rows)


def _worth_a_drill_down(entry):
    remediation = entry.get('remediation')
    return entry['status'] != 'compliant' or bool(entry['findings'] or entry['reasons'] or entry['warnings']) or bool(
        remediation and (remediation.get('actions') or remediation.get('skipped')))


def _html_list(items, css):
    return '<ul class="%s">%s</ul>' % (css, ''.join('<li>%s</li>' % _e(item) for item in items))


@_without_gc
def render_html(report, findings_per_host=HTML_FINDINGS_PER_HOST):
    """One self-contained page: header, totals, a heat map (hosts x severities, worst first) and a
    drill-down per host with findings, reasons or warnings. Hosts compliant without any finding are
    listed by name only, collapsed, so that the page stays usable for a fleet of ten thousand."""
    summary = report['summary']
    policy = report.get('policy') or {}
    registry = report.get('registry') or {}
    tool = report.get('tool') or {}
    verdict = _verdict(summary)
    totals = _change_totals(report)
    remediating = _remediating(report)
    escaped = _Escaped()
    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
           '<meta name="viewport" content="width=device-width, initial-scale=1">'
           '<title>portwarden fleet report \u2013 %s</title><style>%s</style></head><body>'
           % (_e(_headline(summary)), _CSS + _REMEDIATION_CSS if remediating else _CSS)]
    out.append('<header><h1>Port compliance fleet report<span class="verdict %s">%s</span></h1>'
               '<p class="headline">%s</p><dl>' % (_e(verdict), _e(_VERDICT_WORDS[verdict]), _e(_headline(summary))))
    meta = [('Policy', '%s' % (policy.get('name') or 'unnamed')),
            ('Policy sha256', _prefix(policy.get('sha256'), 16)),
            ('IANA registry', '%s (%s records)' % (registry.get('date') or 'unknown', registry.get('records', '?'))),
            ('Generated', report['generated_at'])]
    if report.get('previous') is not None:
        meta.append(('Previous report', (report['previous'] or {}).get('generated_at') or 'unknown'))
    for label, value in meta:
        title = policy.get('sha256') if label == 'Policy sha256' else value
        out.append('<div><dt>%s</dt><dd title="%s">%s</dd></div>' % (_e(label), _e(title or ''), _e(value)))
    out.append('</dl></header><main>')

    cards = [('Hosts', summary['hosts'], ''), ('Compliant', summary['compliant'], 'ok'),
             ('Drift', summary['drift'], 'drift'), ('Unknown', summary['unknown'], 'unknown')]
    by_severity = summary['findings_by_severity']
    out.append('<section class="cards">')
    for label, value, css in cards:
        out.append('<div class="card %s"><div class="n">%s</div><div class="l">%s</div></div>' % (css, _e(value), label))
    out.append('<div class="card"><div class="l">Drift findings by severity</div><div style="margin-top:6px">%s</div>'
               '<div class="l" style="margin-top:6px">Waived %s \u00b7 unjudged %s</div></div>' % (
                   ' '.join('<span class="sev %s">%s %s</span>' % (s, s, _e(by_severity[s])) for s in SEVERITIES_WORST_FIRST),
                   _e(summary.get('waived_findings', 0)), _e(summary.get('unknown_findings', 0))))
    if totals is not None:
        new, new_hosts, resolved, resolved_hosts, first_seen = totals
        out.append('<div class="card"><div class="l">Since the previous report</div><div class="n" style="font-size:18px">'
                   '+%s new \u00b7 %s resolved</div><div class="l">new on %s host%s \u00b7 resolved on %s \u00b7 %s first seen'
                   '</div></div>' % (_e(new), _e(resolved), _e(new_hosts), '' if new_hosts == 1 else 's',
                                     _e(resolved_hosts), _e(first_seen)))
    if remediating:
        outcomes, acting, skipped = _outcome_counts(report)
        out.append('<div class="card remediated"><div class="n">%s</div><div class="l">Remediated findings</div>'
                   '<div class="l" style="margin-top:6px">%s action%s on %s host%s%s%s</div></div>' % (
                       _e(summary.get('remediated_findings', 0)), _e(sum(outcomes.values())),
                       '' if sum(outcomes.values()) == 1 else 's', _e(acting), '' if acting == 1 else 's',
                       ''.join(' \u00b7 %s %s' % (_e(outcome), _e(outcomes[outcome])) for outcome in sorted(outcomes)),
                       ' \u00b7 skipped on %d host%s' % (len(skipped), '' if len(skipped) == 1 else 's') if skipped else ''))
    out.append('</section>')

    ranked = _ranked_hosts(report)
    shown = [item for item in ranked if _worth_a_drill_down(item[0])]
    clean = [item[0]['host'] for item in ranked if not _worth_a_drill_down(item[0])]
    out.append('<h2>Fleet heat map</h2><p class="legend">Drift findings per host and severity, worst host first; '
               'darker is more (<span class="high l1"></span>1 <span class="high l2"></span>2\u20134 '
               '<span class="high l3"></span>5+). Hatched rows marked ? have no full verdict. %s</p>' % (
                   '%d compliant host%s without findings %s listed by name below the table.' % (
                       len(clean), '' if len(clean) == 1 else 's', 'is' if len(clean) == 1 else 'are') if clean else ''))
    head = ''.join('<th>%s</th>' % s.capitalize() for s in SEVERITIES_WORST_FIRST)
    extra_head = '<th>New</th><th>Resolved</th>' if totals is not None else ''
    out.append('<table class="heat"><thead><tr><th>Host</th><th>Status</th>%s<th>Waived</th><th>Unjudged</th>%s%s</tr>'
               '</thead><tbody>' % (head, '<th>Remediated</th>' if remediating else '', extra_head))
    for index, (entry, (drift, waived, unknown, _worst, remediated)) in enumerate(shown):
        status = entry['status']
        row_class = 'unknown' if _no_verdict(entry) else status
        cells = []
        for severity in SEVERITIES_WORST_FIRST:
            count = drift[severity]
            cells.append('<td class="c %s l%d">%d</td>' % (severity, _level(count), count) if count
                         else '<td class="c z">0</td>')
        changes = ''
        if totals is not None:
            entry_changes = entry.get('changes') or {'new': [], 'resolved': []}
            changes = '<td class="c">%d</td><td class="c">%d</td>' % (len(entry_changes['new']),
                                                                      len(entry_changes['resolved']))
        if remediating:
            changes = '<td class="c%s">%d</td>%s' % ('' if remediated else ' z', remediated, changes)
        out.append('<tr class="%s"><td class="h"><a href="#host-%d">%s</a></td><td><span class="badge %s">%s</span></td>'
                   '%s<td class="c%s">%d</td><td class="c%s">%d</td>%s</tr>' % (
                       _e(row_class), index, _e(entry['host']), _e(status), _e(status), ''.join(cells),
                       '' if waived else ' z', waived, '' if unknown else ' z', unknown, changes))
    out.append('</tbody></table>')
    if clean:
        out.append('<details class="clean"><summary>%d compliant host%s without findings</summary><ul>%s</ul></details>' % (
            len(clean), '' if len(clean) == 1 else 's', ''.join('<li>%s</li>' % _e(host) for host in clean)))

    if shown:
        out.append('<h2>Hosts</h2>')
    for index, (entry, (drift, waived, unknown, _worst, remediated)) in enumerate(shown):
        counts = ', '.join('%d %s' % (drift[s], s) for s in SEVERITIES_WORST_FIRST if drift[s])
        partial = bool(entry['reasons']) and entry['status'] != 'unknown'
        remediation = entry.get('remediation')
        meta_text = '; '.join(filter(None, [counts and 'drift: ' + counts, waived and '%d waived' % waived,
                                            unknown and '%d unjudged' % unknown, remediated and '%d remediated' % remediated,
                                            partial and 'no full verdict',
                                            bool(remediation and remediation.get('skipped')) and 'remediation skipped']))
        out.append('<details class="host" id="host-%d"%s><summary><span class="h">%s</span><span class="badge %s">%s</span>'
                   '<span class="meta">%s</span></summary><div class="body">' % (
                       index, ' open' if index == 0 else '', _e(entry['host']), _e(entry['status']), _e(entry['status']),
                       _e(meta_text)))
        if entry['reasons']:
            out.append('<strong>Why there is no full verdict</strong>')
            out.append(_html_list(entry['reasons'], 'reasons'))
        if entry['warnings']:
            out.append('<strong>Warnings</strong>')
            out.append(_html_list(entry['warnings'], 'warnings'))
        changes = entry.get('changes')
        if changes and (changes['new'] or changes['resolved']):
            for label, keys in (('New since the previous report', changes['new']),
                                ('Resolved since the previous report', changes['resolved'])):
                if keys:
                    out.append('<p class="muted">%s: %s%s</p>' % (label, _e(', '.join(
                        '%s %s' % (key['rule'], _socket_text(key)) for key in keys[:20])),
                        ' and %d more' % (len(keys) - 20) if len(keys) > 20 else ''))
        if entry['findings']:
            out.append(_html_findings(entry, findings_per_host, escaped))
        if remediation:
            out.append(_html_remediation(remediation, findings_per_host, escaped))
        overlays = (entry.get('policy') or {}).get('overlays') if isinstance(entry.get('policy'), dict) else None
        if overlays:
            out.append('<p class="muted">Judged with overlays from its variables: %s; effective policy sha256 %s.</p>' % (
                _e(', '.join('%s (sha256 %s)' % (item.get('variable'), _prefix(str(item.get('sha256')))) for item in overlays
                             if isinstance(item, dict))), _e(_prefix(str(entry['policy'].get('sha256'))))))
        out.append('<p class="muted">Evaluated on %s.</p></div></details>' % _e(entry.get('evaluated_on') or 'never'))
    out.append('</main><footer>%s %s \u00b7 report schema v%s \u00b7 policy sha256 %s \u00b7 registry sha256 %s</footer>'
               '</body></html>\n' % (
                   _e(tool.get('name') or 'portwarden.compliance'), _e(tool.get('version') or ''),
                   _e(report.get('schema_version')), _e(policy.get('sha256') or 'none'), _e(registry.get('sha256') or 'none')))
    return ''.join(out)


# ---------------------------------------------------------------------------------------- Prometheus

_LABEL_ESCAPES = str.maketrans({'\\': '\\\\', '"': '\\"', '\n': '\\n'})

_METRICS = (
    ('portwarden_host_compliant', 'Whether the host was compliant at the last audit (1) or not: drift or no verdict (0).'),
    ('portwarden_host_status', 'The host\'s status at the last audit, one-hot: compliant, drift or unknown.'),
    ('portwarden_host_findings', 'Drift findings (not waived) on the host at the last audit, by severity.'),
    ('portwarden_host_waived_findings', 'Findings covered by a valid waiver on the host at the last audit.'),
    ('portwarden_host_remediated_findings', 'Findings remediate mode closed on the host at the last audit (remediate mode only).'),
    ('portwarden_host_remediation_actions', 'Remediation actions on the host at the last audit, by outcome (remediate mode only).'),
    ('portwarden_host_namespace_findings', 'Drift findings (not waived) outside the host\'s own network namespace at the '
                                           'last audit, by namespace (where: KIND:NAME of a container, netns:INODE).'),
    ('portwarden_last_audit_timestamp_seconds', 'When the fleet report holding the host\'s last audit was generated.'),
    ('portwarden_fleet_hosts', 'Hosts in the fleet report, by status.'),
)


def _label(value):
    # The exposition format escapes backslash, double quote and line feed; any other control character
    # would reach a dashboard or an alert as it is, so printable writes it (and a line feed) as an escape.
    return printable(value).translate(_LABEL_ESCAPES)


@_without_gc
def render_prometheus(report):
    """The text exposition format (version 0.0.4) for node_exporter's textfile collector."""
    help_text = dict(_METRICS)
    epoch = _epoch(report['generated_at'])
    families = dict((name, []) for name, _help in _METRICS)
    compliant, status_rows, findings, waived_rows, remediated_rows, action_rows, namespace_rows, stamps = (
        families[name] for name, _help in _METRICS[:8])
    statuses = ('compliant', 'drift', 'unknown')
    # Report mode (no remediation anywhere) writes exactly the families it always wrote.
    remediating = _remediating(report)
    if not remediating:
        del families['portwarden_host_remediated_findings'], families['portwarden_host_remediation_actions']
    for entry in report['hosts']:
        host = _label(entry['host'])
        status = entry['status']
        drift, waived, _unknown, _worst, remediated = _host_counts(entry)
        compliant.append('portwarden_host_compliant{host="%s"} %d' % (host, status == 'compliant'))
        for name in statuses:
            status_rows.append('portwarden_host_status{host="%s",status="%s"} %d' % (host, name, status == name))
        for severity in SEVERITIES:
            findings.append('portwarden_host_findings{host="%s",severity="%s"} %d' % (host, severity, drift[severity]))
        waived_rows.append('portwarden_host_waived_findings{host="%s"} %d' % (host, waived))
        if remediating:
            remediated_rows.append('portwarden_host_remediated_findings{host="%s"} %d' % (host, remediated))
            by_outcome = {}
            for action in (entry.get('remediation') or {}).get('actions') or ():
                outcome = str(action.get('outcome'))
                by_outcome[outcome] = by_outcome.get(outcome, 0) + 1
            for outcome in sorted(by_outcome):
                action_rows.append('portwarden_host_remediation_actions{host="%s",outcome="%s"} %d' % (
                    host, _label(outcome), by_outcome[outcome]))
        by_where = {}
        for finding in entry['findings']:
            where = finding.get('where') or HOST_WHERE
            if where != HOST_WHERE and finding['status'] == 'drift':
                by_where[where] = by_where.get(where, 0) + 1
        for where in sorted(by_where):
            namespace_rows.append('portwarden_host_namespace_findings{host="%s",where="%s"} %d' % (host, _label(where), by_where[where]))
        stamps.append('portwarden_last_audit_timestamp_seconds{host="%s"} %d' % (host, epoch))
    summary = report['summary']
    for name in statuses:
        families['portwarden_fleet_hosts'].append('portwarden_fleet_hosts{status="%s"} %d' % (name, summary[name]))
    if not namespace_rows:
        del families['portwarden_host_namespace_findings']  # host-only audits write exactly what they always wrote
    lines = []
    for name, rows in families.items():
        lines.append('# HELP %s %s' % (name, help_text[name]))
        lines.append('# TYPE %s gauge' % name)
        lines.extend(rows)
    return '\n'.join(lines) + '\n'


RENDERERS = {
    'json': render_json,
    'junit': render_junit,
    'markdown': render_markdown,
    'html': render_html,
    'prometheus': render_prometheus,
}

FILE_NAMES = {
    'json': 'portwarden-report.json',
    'junit': 'portwarden-report.junit.xml',
    'markdown': 'portwarden-report.md',
    'html': 'portwarden-report.html',
    'prometheus': 'portwarden.prom',
}
