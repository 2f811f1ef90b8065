# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Report step, at scale: part reports (a run over part of the fleet) and their merge into one fleet report.

Pure standard library; shared by the report action (which writes parts), the merge action, the
``portwarden merge`` command and the tests. The merge fails closed: every expected host appears, a host
no part covers or whose part is stale is ``unknown``, a part that cannot be trusted is refused (or, when
asked, skipped with its hosts ``unknown``), and parts judged under other policies are refused unless asked.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import secrets
import uuid

from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import (
    build_report,
    host_entry,
    parse_generated_at,
    report_contradictions,
)

SCOPE_KINDS = ('fleet', 'part')
# A run id names a directory (parts/<run_id>/): hex, or AWX's job id and a random suffix, nothing else.
RUN_ID = re.compile(r'^(?:[0-9a-f]{32}|awx-[0-9]{1,20}-[0-9a-f]{16})$')
RUN_ID_PATTERN = RUN_ID.pattern
_NEVER = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
NO_REPORT = 'no report: no part covers this host'
# The worse verdict wins a tie between two audits of one host at the same second.
_STATUS_RANK = {'compliant': 0, 'drift': 1, 'unknown': 2}
AWX_KEYS = (('job_id', ('awx_job_id', 'tower_job_id')),
            ('workflow_job_id', ('awx_workflow_job_id', 'tower_workflow_job_id')),
            ('job_template_name', ('awx_job_template_name', 'tower_job_template_name')),
            ('slice_number', ('awx_job_slice_number', 'tower_job_slice_number')),
            ('slice_count', ('awx_job_slice_count', 'tower_job_slice_count')))


class MergeRefused(ValueError):
    """The parts cannot be merged into a verdict; ``problems`` are sentences naming the files."""

    def __init__(self, problems):
        self.problems = list(problems)
        super(MergeRefused, self).__init__('; '.join(self.problems))


def make_run_id(job_id=None):
    """A run id: ``awx-JOB-<16 hex>`` for an AWX job id (the suffix keeps a relaunch or a second AWX apart),
    else 32 random hex digits. A job id that is not a number names nothing."""
    text = str(job_id) if job_id is not None and not isinstance(job_id, bool) else ''
    if re.match(r'^[0-9]{1,20}$', text):
        return 'awx-%s-%s' % (text, secrets.token_hex(8))
    return uuid.uuid4().hex


def awx_info(variables):
    """What AWX (or Automation Controller) says about the job, from its extra vars, or None outside AWX."""
    info = {}
    for key, names in AWX_KEYS:
        for name in names:
            value = variables.get(name)
            if value is not None and value != '':
                info[key] = value if isinstance(value, (int, str)) and not isinstance(value, bool) else str(value)
                break
    return info if 'job_id' in info else None


def slice_count(variables):
    """The number of slices AWX says the job has (1 when it says nothing or nonsense)."""
    for name in ('awx_job_slice_count', 'tower_job_slice_count'):
        try:
            return max(int(variables.get(name) or 1), 1)
        except (TypeError, ValueError):
            continue
    return 1


def in_awx_workflow(variables):
    """Whether AWX runs the job as a node of a workflow (``awx_workflow_job_id`` or ``tower_workflow_job_id``):
    every slice of a sliced job template is one, and AWX gives it no other sign of being a slice."""
    return any(variables.get(name) not in (None, '') for name in ('awx_workflow_job_id', 'tower_workflow_job_id'))


def report_scope(kind, run_id, hosts, policy, registry, awx=None):
    """The ``scope`` a report carries: what it covers, under which policy and registry data."""
    return {'kind': kind, 'run_id': run_id, 'hosts': sorted(hosts), 'policy_sha256': policy.get('sha256'),
            'registry_digest': registry.get('sha256'), 'awx': awx}


def _covered(report):
    """``[(entry, audited_at, source run id)]`` of the hosts a report vouches for.

    A merged report's host keeps the time and run of the part it came from, so that merging it again
    never makes an old audit look fresh; its hosts that no part covered were never audited."""
    generated = report.get('generated_at')
    covered = []
    for entry in report['hosts']:
        if 'part' in entry:
            source = entry['part']
            if not isinstance(source, dict):
                continue
            covered.append((entry, source.get('generated_at'), source.get('run_id')))
        else:
            covered.append((entry, generated, report.get('run_id')))
    return covered


def part_problems(report, now=None):
    """What makes a (schema-valid) part or fleet report unusable for a merge: sentences, empty when none."""
    problems = list(report_contradictions(report, now=now))
    scope = report.get('scope')
    entries = set(entry['host'] for entry in report['hosts'])
    if isinstance(scope, dict):
        claimed = scope.get('hosts')
        if not isinstance(claimed, list) or set(claimed) != entries or len(claimed) != len(set(claimed)):
            claimed = claimed if isinstance(claimed, list) else []
            problems.append('scope.hosts disagrees with its host entries (in scope only: %s; in entries only: %s)' % (
                ', '.join(sorted(set(claimed) - entries)) or 'none', ', '.join(sorted(entries - set(claimed))) or 'none'))
        for key, where in (('policy_sha256', 'policy'), ('registry_digest', 'registry')):
            if scope.get(key) != (report.get(where) or {}).get('sha256'):
                problems.append('scope.%s %s is not the %s sha256 of the report (%s)'
                                % (key, scope.get(key), where, (report.get(where) or {}).get('sha256')))
        if scope.get('run_id') != report.get('run_id'):
            problems.append('scope.run_id %s is not the report\'s run_id %s' % (scope.get('run_id'), report.get('run_id')))
    for entry in report['hosts']:
        source = entry.get('part')
        if isinstance(source, dict):
            audited = parse_generated_at(source.get('generated_at'))
            generated = parse_generated_at(report.get('generated_at'))
            if audited is None or (generated is not None and audited > generated):
                problems.append('host %s: part.generated_at %r is not a time before the report\'s'
                                % (entry['host'], source.get('generated_at')))
    return problems


def _policy_key(report):
    return ((report.get('policy') or {}).get('sha256'), (report.get('registry') or {}).get('sha256'))


def _unknown(host, reason, source=None):
    entry = host_entry(host, None, reason)
    entry['part'] = source
    return entry


def _mixed_policy(groups):
    """The report's policy when parts were judged under several: named as such, a digest of them all."""
    digests = sorted('%s/%s' % key for key in groups)
    rules = {}
    for key in sorted(groups):
        for rule in groups[key]['policy'].get('rules') or []:
            rules.setdefault(rule.get('id'), rule)
    return {'name': 'mixed: %s' % ', '.join(sorted(set(str(group['policy'].get('name')) for group in groups.values()))),
            'sha256': hashlib.sha256('\n'.join(digests).encode('utf-8')).hexdigest(),
            'rules': [rules[key] for key in sorted(rules, key=str)]}


def merge_parts(parts, expected=None, expected_source=None, now=None, max_age=None, allow_mixed=False, skipped=(),
                previous=None, tool_version=None, run_id=None):
    """One fleet report from ``parts`` (``[{'file', 'report'}]``, each already checked with part_problems).

    ``expected``: the hosts of the fleet (None: the union of the parts', with a warning). ``skipped``: bad parts
    the caller chose to skip, ``[{'file', 'reason', 'hosts' or None}]``: their hosts are unknown. Raises
    MergeRefused when there is nothing to merge, parts disagree on policy (unless ``allow_mixed``), two parts
    claim one run id, or a skipped part's hosts cannot be told without an expected set.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if not parts and not skipped:
        raise MergeRefused(['no part to merge: give part files or directories (OUT/parts is not read unless given)'])
    if not parts:
        # Only bad parts (a run killed while writing its part, say): no policy to judge any host under.
        raise MergeRefused(['no part could be read, so no host can be judged: %s' % '; '.join(
            '%s: %s' % (item['file'], item['reason']) for item in skipped)])
    problems = []
    by_run = {}
    for item in parts:
        rid = item['report'].get('run_id')
        if rid in by_run:
            problems.append('run_id %s is in both %s and %s: a run id names one run; one of them is a copy or forged'
                            % (rid, by_run[rid]['file'], item['file']))
        else:
            by_run[rid] = item
    groups = {}
    for item in parts:
        key = _policy_key(item['report'])
        group = groups.setdefault(key, {'policy': item['report']['policy'], 'registry': item['report']['registry'],
                                        'files': [], 'hosts': set()})
        group['files'].append(item['file'])
    if len(groups) > 1 and not allow_mixed:
        problems.append('parts were judged under different policies or registry data: %s; merge parts of one policy, '
                        'or pass --allow-mixed-policies to list each policy in the report' % '; '.join(
                            'policy %s, registry %s: %s' % (key[0], key[1], ', '.join(groups[key]['files']))
                            for key in sorted(groups)))
    unreadable = [item for item in skipped if item.get('hosts') is None]
    if unreadable and expected is None:
        problems.append('cannot tell which hosts %s covered (%s); give the expected hosts (--inventory, --hosts or '
                        '--hosts-file) so that they are unknown, never missing'
                        % (', '.join(item['file'] for item in unreadable), '; '.join(item['reason'] for item in unreadable)))
    if problems:
        raise MergeRefused(problems)

    warnings = []
    candidates = {}
    part_list = []
    stamps = {}  # most hosts of a part share its time: parse each text once
    for item in parts:
        report = item['report']
        audited_hosts = []
        for entry, audited_at, source_run in _covered(report):
            stamp = stamps.get(audited_at)
            if stamp is None:
                stamp = stamps[audited_at] = parse_generated_at(audited_at) or _NEVER
            candidates.setdefault(entry['host'], []).append((stamp, entry, item, source_run, audited_at))
            audited_hosts.append(entry['host'])
        part_list.append({'run_id': report.get('run_id'), 'file': item['file'], 'generated_at': report['generated_at'],
                          'kind': (report.get('scope') or {}).get('kind', 'fleet'), 'hosts': sorted(audited_hosts)})

    hosts = {}
    for host, found in candidates.items():
        found.sort(key=lambda cand: (cand[0], _STATUS_RANK[cand[1]['status']] + (1 if cand[1]['reasons'] else 0),
                                     str(cand[3])), reverse=True)
        stamp, entry, item, source_run, audited_at = found[0]
        source = {'run_id': source_run, 'generated_at': audited_at,
                  'covered_by': sorted(set(str(cand[3]) for cand in found))}
        if stamp is _NEVER:
            hosts[host] = _unknown(host, 'part %s gives no audit time for this host' % source_run, source)
            continue
        if max_age is not None and (now - stamp).total_seconds() > max_age:
            hosts[host] = _unknown(host, 'stale: part %s from %s is older than %d s' % (source_run, audited_at, max_age),
                                   source)
            continue
        merged = dict(entry)
        merged['part'] = source
        merged['changes'] = None
        hosts[host] = merged
        groups[_policy_key(item['report'])]['hosts'].add(host)

    bad = set()
    for item in skipped:
        reason = 'bad part %s skipped: %s' % (item['file'], item['reason'])
        for host in item.get('hosts') or []:
            current = hosts.get(host)
            if host in bad:
                current['reasons'].append(reason)
                current['errors'].append(reason)
                continue
            # A host a bad part claims is unknown even if a good part covers it: the bad one may be newer.
            for group in groups.values():
                group['hosts'].discard(host)
            hosts[host] = _unknown(host, reason, current.get('part') if current else None)
            bad.add(host)

    if expected is None:
        warnings.append('the expected hosts were not given (--inventory, --hosts or --hosts-file): the report covers '
                        'the %d hosts the parts name, and a host no part names is missing, not unknown' % len(hosts))
    else:
        expected = sorted(set(expected))
        why_missing = NO_REPORT
        if unreadable:
            why_missing += ' (a part skipped as bad may have: %s)' % '; '.join(
                '%s: %s' % (item['file'], item['reason']) for item in unreadable)
        for host in expected:
            if host not in hosts:
                hosts[host] = _unknown(host, why_missing)
        # The fleet is the expected set: a host only parts name (decommissioned, another fleet's) is left out, said.
        extra = sorted(set(hosts) - set(expected))
        for host in extra:
            del hosts[host]
            for group in groups.values():
                group['hosts'].discard(host)
        if extra:
            warnings.append('%d host%s in the parts but not among the expected hosts, left out of the report: %s' % (
                len(extra), '' if len(extra) == 1 else 's', ', '.join(extra[:20]) + (' ...' if len(extra) > 20 else '')))

    if len(groups) == 1:
        only = next(iter(groups.values()))
        policy, registry = only['policy'], only['registry']
    else:
        policy = _mixed_policy(groups)
        newest = max(parts, key=lambda item: item['report']['generated_at'])
        registry = newest['report']['registry']
    report = build_report(list(hosts.values()), policy, registry, generated_at=now, previous=previous,
                          tool_version=tool_version, run_id=run_id)
    scope = report_scope('fleet', report['run_id'], list(hosts), policy, registry)
    scope.update({'parts': part_list, 'expected': expected_source if expected is not None else None,
                  'skipped': [{'file': item['file'], 'reason': item['reason'], 'hosts': item.get('hosts')}
                              for item in skipped],
                  'warnings': warnings})
    if len(groups) > 1:
        scope['policies'] = [{'name': groups[key]['policy'].get('name'), 'policy_sha256': key[0],
                              'registry_digest': key[1], 'files': groups[key]['files'],
                              'hosts': sorted(groups[key]['hosts'])} for key in sorted(groups)]
    report['scope'] = scope
    return report
