# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Evaluate step, controller side: ``portwarden baseline`` reads its inputs and the inventory, builds, checks and
writes the policy (the decisions are policy_baseline's).

A FILE is a gather result, whose host is its file name without ``.json`` (``web-1.json``: the gather playbook
saves each host's so), or a fleet report audited under the survey policy; a directory gives its ``*.json``.
Nothing found inside a directory is followed if it is a link. Every problem is one line naming the file, the path
inside it and what was expected.
"""

from __future__ import annotations

import json
import os
import stat

from ansible_collections.portwarden.compliance.plugins.module_utils import policy_baseline
from ansible_collections.portwarden.compliance.plugins.module_utils.atomic_write import write_atomically
from ansible_collections.portwarden.compliance.plugins.plugin_utils import inventory_read
from ansible_collections.portwarden.compliance.plugins.plugin_utils.report_load import MAX_REPORT_BYTES, read_regular

SURVEY_POLICY_PATH = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', '..', 'docs', 'policies',
                                                   'survey.yml'))


class BaselineError(Exception):
    """No policy can be made; ``problems`` says why, one line each."""

    def __init__(self, problems):
        self.problems = list(problems)
        super(BaselineError, self).__init__('; '.join(self.problems))


def _no_constants(name):
    raise ValueError('%s is not JSON' % name)


def input_files(paths):
    """The files to read: each FILE, and each directory's ``*.json`` (sorted; links inside it refused)."""
    found = []
    problems = []
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if not name.endswith('.json') or name.startswith('.'):
                    continue
                inner = os.path.join(path, name)
                info = os.lstat(inner)
                if stat.S_ISLNK(info.st_mode):
                    problems.append('%s: a symbolic link; it was not followed (another user may have planted it)' % inner)
                elif stat.S_ISREG(info.st_mode):
                    found.append((inner, True))
            continue
        found.append((path, False))
    return found, problems


def read_input(path, nofollow=False):
    """One input file -> HostInputs; BaselineError names the file and what is wrong."""
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import ReportError
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import refuse_duplicate_keys
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.report_load import load_report

    try:
        raw = read_regular(path, limit=MAX_REPORT_BYTES, nofollow=nofollow)
    except (OSError, ValueError) as exc:
        raise BaselineError(['%s: cannot read it: %s' % (path, getattr(exc, 'strerror', None) or exc)]) from None
    report = None
    if b'"schema_version"' in raw and b'"hosts"' in raw:
        # A report, most likely: load_report parses and checks it (a report is large: parsed once). If it is not one
        # (a gather with a process named "schema_version"), it is parsed below and judged by what it is.
        try:
            report = load_report(path, nofollow=nofollow)
        except ReportError:
            report = None
    if report is not None:
        try:
            return policy_baseline.hosts_from_report(report, path, survey_path=SURVEY_POLICY_PATH)
        except policy_baseline.BaselineInputError as exc:
            raise BaselineError([str(exc)]) from None
    try:
        data = json.loads(raw.decode('utf-8'), parse_constant=_no_constants, object_pairs_hook=refuse_duplicate_keys)
    except UnicodeDecodeError as exc:
        raise BaselineError(['%s: (top level): not UTF-8 (byte %d); expected a gather result or a portwarden report '
                             'in JSON' % (path, exc.start)]) from None
    except RecursionError:
        raise BaselineError(['%s: (top level): JSON nested too deeply to be a gather result or a report' % path]) \
            from None
    except ValueError as exc:
        raise BaselineError(['%s: (top level): not valid JSON (%s); expected a gather result (portwarden gather '
                             '--format json) or a portwarden report' % (path, exc)]) from None
    try:
        if isinstance(data, dict) and 'schema_version' in data and 'hosts' in data:
            try:
                report = load_report(path, nofollow=nofollow)
            except ReportError as exc:
                raise BaselineError([str(exc)]) from None
            return policy_baseline.hosts_from_report(report, path, survey_path=SURVEY_POLICY_PATH)
        host = os.path.basename(path)
        if host.endswith('.json'):
            host = host[:-len('.json')]
        return [policy_baseline.host_from_gather(data, host, path)]
    except policy_baseline.BaselineInputError as exc:
        raise BaselineError([str(exc)]) from None


def read_inventory(sources):
    """(every host, group -> its hosts, host -> its groups as group_names has them) from ansible-core's inventory."""
    try:
        return inventory_read.read_inventory(sources)
    except inventory_read.InventoryError as exc:
        raise BaselineError([str(exc)]) from None


def run_baseline(paths, options, inventory=None, output=None, force=False):
    """Read, build, check and write (``output``) or return the policy text.

    Returns ``{'text', 'policy', 'proposals', 'hosts', 'skipped', 'warnings', 'written'}``; BaselineError when no
    policy can be made (bad input, a host in two inputs, no host left, ``output`` exists without ``force``).
    """
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import (
        PolicyInvalid,
        parse_policy_text,
        validate_policy,
    )

    if output and not force and os.path.lexists(output):
        raise BaselineError(['%s exists; give --force to replace it' % output])
    files, problems = input_files(paths)
    read = []
    for path, nofollow in files:
        try:
            read.extend(read_input(path, nofollow=nofollow))
        except BaselineError as exc:
            problems.extend(exc.problems)
    first = {}
    for item in read:
        if item.host in first:
            problems.append('%s: host %s is also in %s; give each host once (which one is today\'s fleet?)'
                            % (item.source, item.host, first[item.host].source))
        else:
            first[item.host] = item
    if problems:
        raise BaselineError(problems)
    warnings = []
    groups, groups_of = {}, {}
    if inventory:
        fleet, groups, groups_of = read_inventory(inventory)
        known = set(fleet)
        for item in read:
            if item.skipped is None and item.host not in known:
                item.skipped = 'not a host of the inventory %s' % ', '.join(inventory)
        missing = sorted(known - set(first))
        if missing:
            warnings.append('%d inventory host%s had no input, so what listens there is not allowed: %s'
                            % (len(missing), '' if len(missing) == 1 else 's',
                               ', '.join(missing[:10]) + (' and %d more' % (len(missing) - 10) if len(missing) > 10
                                                          else '')))
    else:
        fleet = [item.host for item in read]  # skipped hosts too: a rule for "every host" must not cover them unseen
    skipped = [item for item in read if item.skipped is not None]
    used = [item for item in read if item.skipped is None]
    if not used:
        raise BaselineError(['no host to make a policy from: %s' % ('; '.join(
            '%s (%s): %s' % (item.host, item.source, item.skipped) for item in skipped[:5]) or 'no input')])
    policy, proposals = policy_baseline.build_baseline(used, options, groups=groups, fleet=fleet)
    summary = summary_lines(policy, proposals, used, skipped, len(files))
    text = policy_baseline.render_baseline(policy, proposals, summary_lines=summary)
    # The text is what is written: it must parse back to this very policy, pass lint and judge its hosts compliant.
    try:
        parsed = parse_policy_text(text, 'the generated policy')
    except PolicyInvalid as exc:
        raise BaselineError(['internal error: the generated policy does not parse: %s' % exc]) from None
    errors = validate_policy(parsed, 'the generated policy')
    if errors or parsed != policy:
        raise BaselineError(['internal error: the generated policy is not valid: %s'
                             % ('; '.join(errors[:5]) or 'it parses to another policy')])
    mismatches = policy_baseline.verify_baseline(policy, used, groups_of, options.today)
    if mismatches:
        raise BaselineError(['internal error: the generated policy does not pass its own hosts: %s'
                             % '; '.join(mismatches[:5])])
    written = None
    if output:
        write_atomically(output, text, replace=force)
        written = output
    return {'text': text, 'policy': policy, 'proposals': proposals, 'hosts': used, 'skipped': skipped,
            'warnings': warnings, 'written': written, 'summary': summary}


def summary_lines(policy, proposals, used, skipped, files):
    lines = ['%d rule%s (the IANA rule and %d allow rule%s) for %d host%s from %d file%s; %d host%s skipped' % (
        len(policy['rules']), '' if len(policy['rules']) == 1 else 's', len(policy['rules']) - 1,
        '' if len(policy['rules']) == 2 else 's', len(used), '' if len(used) == 1 else 's', files,
        '' if files == 1 else 's', len(skipped), '' if len(skipped) == 1 else 's')]
    for proposal in proposals:
        rule = next(item for item in policy['rules'] if item['id'] == proposal['rule_id'])
        lines.append('NOT ALLOWED, TO CONFIRM: %s %s on an IANA-unassigned port, on %s (rule %s; waiver proposal '
                     'commented out at the end)' % (rule['match']['protocols'][0], rule['match']['ports'][0],
                                                    ', '.join(proposal['hosts'][:5]) + (
                                                        ' and %d more' % (len(proposal['hosts']) - 5)
                                                        if len(proposal['hosts']) > 5 else ''), rule['id']))
    return lines
