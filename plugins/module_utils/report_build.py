# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Report step: the fleet report, built from every host of a run, and the gate on it.

Pure standard library; shared by the report action, the ``portwarden gate`` command and the
tests. Every host of the play appears: a host without an audit result (unreachable, failed,
never reached) is ``unknown`` with the reason, never compliant.
"""

from __future__ import annotations

import datetime
import json
import uuid

from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import (
    PROCESS_FIELDS,
    SEVERITY_RANK,
    STATUSES,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_overlay import effective_digest
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import SEVERITIES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_sockets import HOST_WHERE, printable

REPORT_SCHEMA_VERSION = 2  # 2: findings of ports published by NAT (via, port_end, exposure), host notes
READABLE_SCHEMA_VERSIONS = (1, 2)  # a version 1 report (no NAT) still gates, merges and diffs
FINDING_FIELDS = ('rule', 'severity', 'status', 'protocol', 'family', 'address', 'port', 'v6only', 'where', 'namespace',
                  'service', 'processes', 'waived', 'waiver', 'message')
NAT_FINDING_FIELDS = ('via', 'port_end', 'exposure')  # only on the finding of a port published by NAT
EXPOSURE_FIELDS = ('action', 'hooks', 'interface', 'target', 'source', 'table', 'chain', 'rule', 'owner')
REMEDIATION_FIELDS = ('strategy', 'status', 'target', 'reason')
OVERLAY_RECORD_FIELDS = ('variable', 'sha256', 'rules', 'waivers')
ACTION_FIELDS = ('strategy', 'target', 'rules', 'outcome', 'detail')
EXIT_COMPLIANT = 0
EXIT_DRIFT = 1
EXIT_UNKNOWN = 2
# A report stamped later than this after the gate's clock is forged or from a host whose clock is wrong.
FUTURE_SKEW_SECONDS = 300
GATE_FINDING_LINES = 20


class ReportError(ValueError):
    """A report that cannot be used (missing, truncated, of another schema version)."""


def _clean_finding(finding):
    """Only the documented fields; processes without anything beyond PROCESS_FIELDS (no command lines)."""
    clean = dict((field, finding.get(field)) for field in FINDING_FIELDS)
    clean['where'] = finding.get('where') or HOST_WHERE
    clean['processes'] = [dict((field, proc.get(field)) for field in PROCESS_FIELDS)
                          for proc in finding.get('processes') or []]
    if finding.get('via') == 'nat':
        clean.update((field, finding.get(field)) for field in NAT_FINDING_FIELDS)
        exposure = finding.get('exposure') if isinstance(finding.get('exposure'), dict) else {}
        clean['exposure'] = dict((field, exposure.get(field)) for field in EXPOSURE_FIELDS)
    if finding.get('waiver_expired'):
        clean['waiver_expired'] = finding['waiver_expired']
    if finding.get('remediation'):
        clean['remediation'] = dict((field, finding['remediation'].get(field)) for field in REMEDIATION_FIELDS)
    return clean


def _clean_remediation(remediation):
    """What remediate mode did on a host (None in report mode): every action, for the auditor."""
    if not isinstance(remediation, dict):
        return None
    return {'actions': [dict((field, action.get(field)) for field in ACTION_FIELDS)
                        for action in remediation.get('actions') or []],
            'skipped': remediation.get('skipped'), 'verified': bool(remediation.get('verified'))}


def host_entry(host, audit=None, error=None):
    """One host of the report, from a port_audit result, or unknown with ``error`` when there is none."""
    if not isinstance(audit, dict) or audit.get('status') not in STATUSES:
        reason = error or 'no audit result: the host was not reached or the audit did not run'
        return {'host': host, 'status': 'unknown', 'reasons': [reason], 'errors': [reason], 'findings': [],
                'warnings': [], 'coverage': None, 'evaluated_on': None, 'changes': None, 'remediation': None}
    reasons = list(audit.get('reasons') or [])
    errors = [error] if error else []
    status = audit['status']
    if error and status == 'compliant':
        status = 'unknown'
    entry = {
        'host': host,
        'status': status,
        'reasons': reasons + errors,
        'errors': errors,
        'findings': [_clean_finding(finding) for finding in audit.get('findings') or []],
        'warnings': list(audit.get('warnings') or []),
        'coverage': audit.get('coverage'),
        'evaluated_on': audit.get('evaluated_on'),
        'changes': None,
        'remediation': _clean_remediation(audit.get('remediation')),
    }
    if audit.get('notes'):  # what the verdict did not judge (a gather that did not read the NAT)
        entry['notes'] = list(audit['notes'])
    policy = audit.get('policy')
    if isinstance(policy, dict) and policy.get('overlays'):
        # Overlays from the host's variables: which applied, and the digest of the policy the host was judged under.
        entry['policy'] = {'sha256': policy.get('sha256'), 'base_sha256': policy.get('base_sha256'),
                           'overlays': [dict((key, record.get(key)) for key in OVERLAY_RECORD_FIELDS)
                                        for record in policy['overlays'] if isinstance(record, dict)]}
    return entry


def finding_key(finding):
    """What makes a finding the same finding from one run to the next: the rule, the socket and where it lives
    (a report from before namespaces were gathered has no ``where``: all its findings were the host's). A port
    published by NAT (``via: nat``) is another finding than a socket on the same port: its key ends in ``nat``."""
    key = (finding['rule'], finding['protocol'], finding['address'], finding['port'], finding.get('where') or HOST_WHERE)
    return key + ('nat',) if finding.get('via') == 'nat' else key


def _key_dict(key):
    found = {'rule': key[0], 'protocol': key[1], 'address': key[2], 'port': key[3], 'where': key[4]}
    if len(key) > 5:
        found['via'] = key[5]
    return found


def diff_hosts(previous, current):
    """Set ``changes`` on each current host: drift findings new since ``previous`` and those resolved.

    A host not seen this run has no changes (null): its old drift is not resolved, only unseen.
    A partial gather can show new drift but resolves nothing: what it did not see may still be there.
    """
    before = dict((entry['host'], entry) for entry in (previous or {}).get('hosts') or [])
    for entry in current['hosts']:
        coverage = entry.get('coverage')
        if not isinstance(coverage, dict):
            entry['changes'] = None
            continue
        new_keys = set(finding_key(f) for f in entry['findings'] if f['status'] == 'drift')
        old = before.get(entry['host'])
        old_keys = set(finding_key(f) for f in (old or {}).get('findings') or [] if f.get('status') == 'drift')
        resolved = sorted(old_keys - new_keys) if coverage.get('complete') else []
        entry['changes'] = {'new': [_key_dict(key) for key in sorted(new_keys - old_keys)],
                            'resolved': [_key_dict(key) for key in resolved],
                            'first_seen': old is None}


def summarize(hosts):
    summary = dict((status, 0) for status in STATUSES)
    by_severity = dict((severity, 0) for severity in SEVERITIES)
    waived = unknown_findings = remediated = actions = 0
    for entry in hosts:
        summary[entry['status']] += 1
        actions += len((entry.get('remediation') or {}).get('actions') or ())
        for finding in entry['findings']:
            if finding['status'] == 'drift':
                by_severity[finding['severity']] += 1
            elif finding['status'] == 'waived':
                waived += 1
            elif finding['status'] == 'remediated':
                remediated += 1
            else:
                unknown_findings += 1
    # Hosts whose verdict is incomplete (partial gather) whatever their status: the gate counts them unknown.
    incomplete = sum(1 for entry in hosts if entry['reasons'])
    summary.update({'hosts': len(hosts), 'findings_by_severity': by_severity, 'waived_findings': waived,
                    'unknown_findings': unknown_findings, 'remediated_findings': remediated,
                    'remediation_actions': actions, 'incomplete': incomplete})
    return summary


def build_report(hosts, policy, registry_info, generated_at=None, previous=None, tool_version=None, run_id=None):
    """The fleet report. ``hosts`` are host entries (see host_entry); ``policy`` is
    ``{'name', 'sha256', 'rules': [{'id', 'severity', 'description'}]}``; ``run_id`` names this run (a new
    random one by default), so that each file of a report set can be told to be of it."""
    generated_at = generated_at or datetime.datetime.now(datetime.timezone.utc)
    if generated_at.tzinfo is not None:
        generated_at = generated_at.astimezone(datetime.timezone.utc)
    entries = sorted(hosts, key=lambda entry: entry['host'])
    report = {
        'schema_version': REPORT_SCHEMA_VERSION,
        'run_id': run_id or uuid.uuid4().hex,
        'generated_at': generated_at.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'tool': {'name': 'portwarden.compliance', 'version': tool_version},
        'policy': policy,
        'registry': registry_info,
        'summary': summarize(entries),
        'hosts': entries,
        'previous': None,
    }
    if previous is not None:
        diff_hosts(previous, report)
        report['previous'] = {'generated_at': previous.get('generated_at')}
    return report


def worst_severity(entry):
    ranks = [SEVERITY_RANK[f['severity']] for f in entry['findings'] if f['status'] == 'drift']
    return SEVERITIES[max(ranks)] if ranks else None


def gate_report(report, fail_on='info', allow_unknown=False):
    """Judge a report: ``(exit code, failing hosts, lines)``.

    Exit 0 when no host fails, 1 when a host has drift at or above ``fail_on``, 2 when a host is
    unknown (unless ``allow_unknown``) — unknown outranks drift: the gate cannot vouch for the fleet.
    """
    drifting = []
    unknown = []
    for entry in report['hosts']:
        worst = worst_severity(entry)
        if fail_on != 'never' and worst is not None and SEVERITY_RANK[worst] >= SEVERITY_RANK[fail_on]:
            drifting.append((SEVERITY_RANK[worst], entry['host'], worst))
        # A host whose verdict is incomplete (partial gather) counts as unknown even with drift.
        if not allow_unknown and (entry['status'] == 'unknown' or entry['reasons']):
            unknown.append(entry)
    drifting.sort(key=lambda item: (-item[0], item[1]))
    summary = report['summary']
    lines = ['%d host%s: %d compliant, %d drift, %d unknown; drift findings %s' % (
        summary['hosts'], '' if summary['hosts'] == 1 else 's', summary['compliant'], summary['drift'], summary['unknown'],
        ', '.join('%s %d' % (severity, summary['findings_by_severity'][severity])
                  for severity in reversed(SEVERITIES) if summary['findings_by_severity'][severity]) or 'none')]
    if drifting:
        lines.append('drift at or above %s on %d host%s: %s' % (
            fail_on, len(drifting), '' if len(drifting) == 1 else 's',
            ', '.join('%s (%s)' % (host, worst) for _rank, host, worst in drifting[:10])
            + (' and %d more' % (len(drifting) - 10) if len(drifting) > 10 else '')))
    if drifting:
        lines.append(_drift_text(report, fail_on))
    if unknown:
        lines.append('unknown on %d host%s: %s' % (
            len(unknown), '' if len(unknown) == 1 else 's',
            '; '.join('%s (%s)' % (entry['host'], (entry['reasons'] or ['no verdict'])[0]) for entry in unknown[:10])
            + (' and %d more' % (len(unknown) - 10) if len(unknown) > 10 else '')))
    if unknown:
        code = EXIT_UNKNOWN
    elif drifting:
        code = EXIT_DRIFT
    else:
        code = EXIT_COMPLIANT
    failing = [host for _rank, host, _worst in drifting] + [entry['host'] for entry in unknown]
    # One line each, whatever a host name or reason holds: a line feed or an escape there forges no verdict line.
    return code, failing, [printable(line) for line in lines]


def _drift_text(report, fail_on):
    """What drifted at or above ``fail_on``, worst first: host, protocol address:port, where, rule, severity."""
    items = []
    for entry in report['hosts']:
        for finding in entry['findings']:
            if finding['status'] == 'drift' and SEVERITY_RANK[finding['severity']] >= SEVERITY_RANK[fail_on]:
                where = finding.get('where') or HOST_WHERE
                items.append((-SEVERITY_RANK[finding['severity']], entry['host'], finding['protocol'], finding['port'],
                              '%s: %s %s:%s%s, rule %s (%s)' % (
                                  entry['host'], finding['protocol'], finding['address'], finding['port'],
                                  '' if where == HOST_WHERE else ' in %s' % where, finding['rule'],
                                  finding['severity'])))
    items.sort(key=lambda item: item[:4])
    text = '; '.join(item[-1] for item in items[:GATE_FINDING_LINES])
    if len(items) > GATE_FINDING_LINES:
        text += ' and %d more' % (len(items) - GATE_FINDING_LINES)
    return 'drifted: %s' % text


def parse_generated_at(text):
    """A report's generated_at as portwarden writes it (``2026-11-26T12:00:00Z``), or None."""
    if not isinstance(text, str) or len(text) != 20:
        return None
    try:
        return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def expected_status(entry):
    """The status a host's findings, reasons and coverage support (as evaluate_policy.summarize_result sets it)."""
    if any(finding['status'] == 'drift' for finding in entry['findings']):
        return 'drift'
    if entry['status'] == 'unknown' or entry['reasons'] or entry['errors'] or not isinstance(entry.get('coverage'), dict) \
            or entry['coverage'].get('complete') is not True \
            or any(finding['status'] == 'unknown' for finding in entry['findings']):
        return 'unknown'
    return 'compliant'


def report_contradictions(report, now=None, max_age=None):
    """What a (schema-valid) report says that its own hosts, or the clock, contradict: sentences, empty when none.

    A gate must not trust a summary its hosts do not add up to, a host whose status its findings do not support,
    a host listed twice, a report of no host, one stamped in the future or older than ``max_age`` seconds.
    """
    problems = []
    now = now or datetime.datetime.now(datetime.timezone.utc)
    generated = parse_generated_at(report.get('generated_at'))
    if generated is None:
        problems.append('generated_at %r is not a time portwarden writes (YYYY-MM-DDTHH:MM:SSZ)'
                        % (report.get('generated_at'),))
    else:
        age = (now - generated).total_seconds()
        if age < -FUTURE_SKEW_SECONDS:
            problems.append('generated_at %s is %d s in the future of this clock: a forged report or a wrong clock'
                            % (report['generated_at'], -age))
        elif max_age is not None and age > max_age:
            problems.append('generated_at %s is %d s old, older than --max-age %d s' % (report['generated_at'], age,
                                                                                        max_age))
    hosts = report['hosts']
    if not hosts:
        problems.append('hosts: the report lists no host, so it vouches for none')
    seen = set()
    for index, entry in enumerate(hosts):
        if entry['host'] in seen:
            problems.append('hosts[%d]: host %s is listed twice' % (index, entry['host']))
        seen.add(entry['host'])
        supported = expected_status(entry)
        if entry['status'] != supported:
            drift = sum(1 for finding in entry['findings'] if finding['status'] == 'drift')
            problems.append('hosts[%d]: host %s is %s but its findings, reasons and coverage make it %s (%d drift '
                            'finding%s, %d reason%s, coverage %s)' % (
                                index, entry['host'], entry['status'], supported, drift, '' if drift == 1 else 's',
                                len(entry['reasons']), '' if len(entry['reasons']) == 1 else 's',
                                'complete' if isinstance(entry.get('coverage'), dict)
                                and entry['coverage'].get('complete') is True else 'incomplete or missing'))
    problems.extend(_overlay_contradictions(report))
    summary = report['summary']
    counted = summarize(hosts)
    for key, value in sorted(counted.items()):
        if key in summary and summary[key] != value:
            problems.append('summary.%s says %s but its hosts give %s' % (key, summary[key], value))
    return problems


def _overlay_contradictions(report):
    """A host judged with overlays records the policy's digest and each overlay's: its effective digest must be
    theirs, and the policy must be the report's (one of the policies of a mixed merge)."""
    problems = []
    policies = (report.get('scope') or {}).get('policies') if isinstance(report.get('scope'), dict) else None
    bases = set(item.get('policy_sha256') for item in policies if isinstance(item, dict)) \
        if isinstance(policies, list) else set([(report.get('policy') or {}).get('sha256')])
    for index, entry in enumerate(report['hosts']):
        policy = entry.get('policy')
        if policy is None:
            continue
        overlays = policy.get('overlays') if isinstance(policy, dict) else None
        if not isinstance(overlays, list) or not all(isinstance(record, dict) for record in overlays):
            problems.append('hosts[%d]: host %s: policy.overlays is not a list of overlays' % (index, entry['host']))
            continue
        if policy.get('base_sha256') not in bases:
            problems.append('hosts[%d]: host %s was judged under policy %s, not the report\'s (%s)' % (
                index, entry['host'], policy.get('base_sha256'), ', '.join(sorted(str(base) for base in bases))))
        if not overlays or policy.get('sha256') != effective_digest(policy.get('base_sha256'), overlays):
            problems.append('hosts[%d]: host %s: policy.sha256 %s is not the digest of its policy and the overlays it '
                            'records' % (index, entry['host'], policy.get('sha256')))
    return problems


def parse_previous(raw, path):
    """The previous report for drift over time, or ``(None, why not)``."""
    try:
        previous = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, 'previous report %s is unreadable (%s); new and resolved findings are not listed' % (path, exc)
    if not isinstance(previous, dict) or previous.get('schema_version') not in READABLE_SCHEMA_VERSIONS \
            or isinstance(previous.get('schema_version'), bool):
        return None, 'previous report %s has another schema version; new and resolved findings are not listed' % path
    if not comparable_previous(previous):
        return None, 'previous report %s is not a report portwarden wrote (hosts or findings malformed); new and ' \
                     'resolved findings are not listed' % path
    return previous, None


def comparable_previous(previous):
    """Whether every host and finding of a previous report has what drift over time compares."""
    hosts = previous.get('hosts')
    if not isinstance(hosts, list):
        return False
    for entry in hosts:
        if not isinstance(entry, dict) or not isinstance(entry.get('host'), str) \
                or not isinstance(entry.get('findings') or [], list):
            return False
        for finding in entry.get('findings') or []:
            if not isinstance(finding, dict) or any(not isinstance(finding.get(key), kind) for key, kind in (
                    ('rule', str), ('protocol', str), ('address', str), ('port', int), ('status', str))):
                return False
            if not isinstance(finding.get('where') or '', str):
                return False
    return True


def report_stats(report, code, json_path=None):
    """The small summary a later AWX workflow node gates on (published with set_stats as ``portwarden``)."""
    worst = None
    for entry in report['hosts']:
        severity = worst_severity(entry)
        if severity is not None and (worst is None or SEVERITY_RANK[severity] > SEVERITY_RANK[worst]):
            worst = severity
    scope = report.get('scope') or {}
    summary = report['summary']
    return {'scope': scope.get('kind', 'fleet'), 'run_id': report.get('run_id'), 'hosts': summary['hosts'],
            'compliant': summary['compliant'], 'drift': summary['drift'], 'unknown': summary['unknown'],
            'worst_severity': worst, 'gate_exit_code': code, 'report_json_path': json_path}
