# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin port_report: write the fleet report of a play once, on the controller, and gate on it."""

from __future__ import annotations

import json
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.portwarden.compliance.plugins.module_utils import registry
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import SEVERITIES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import (
    READABLE_SCHEMA_VERSIONS,
    build_report,
    gate_report,
    host_entry,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_write import (
    HISTORY_KEEP,
    ReportDir,
    ReportWriteError,
    render_set,
)
from ansible_collections.portwarden.compliance.plugins.plugin_utils.collection_version import collection_version

ARGUMENT_SPEC = {
    'report_dir': {'type': 'path', 'required': True},
    'formats': {'type': 'list', 'elements': 'str', 'default': list(FILE_NAMES), 'choices': list(FILE_NAMES)},
    'results_var': {'type': 'str', 'default': 'port_compliance_audit'},
    'hosts': {'type': 'list', 'elements': 'str'},
    'policy_info': {'type': 'dict'},
    'fail_on': {'type': 'str', 'default': 'never', 'choices': ['never'] + list(SEVERITIES)},
    'fail_on_unknown': {'type': 'bool', 'default': True},
    'history_keep': {'type': 'int', 'default': HISTORY_KEEP},
}


def _host_from_result(host, result):
    if not isinstance(result, dict):
        return host_entry(host, None, 'not audited: the host failed or left the play before the audit')
    if result.get('unreachable'):
        return host_entry(host, None, 'unreachable: %s' % (result.get('msg') or 'no message'))
    if result.get('skipped'):
        return host_entry(host, None, 'the audit was skipped on this host')
    if result.get('failed') and result.get('status') is None:
        return host_entry(host, None, 'audit failed: %s' % (result.get('msg') or 'no message'))
    return host_entry(host, result)


def _parse_previous(raw, path):
    """The previous report for drift over time, or ``(None, why not)``."""
    try:
        previous = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return None, 'previous report %s is unreadable (%s); new and resolved findings are not listed' % (path, exc)
    if not isinstance(previous, dict) or previous.get('schema_version') not in READABLE_SCHEMA_VERSIONS \
            or isinstance(previous.get('schema_version'), bool):
        return None, 'previous report %s has another schema version; new and resolved findings are not listed' % path
    if not _comparable(previous):
        return None, 'previous report %s is not a report portwarden wrote (hosts or findings malformed); new and ' \
                     'resolved findings are not listed' % path
    return previous, None


def _comparable(previous):
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


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        hostvars = task_vars.get('hostvars', {})
        hosts = args['hosts'] if args['hosts'] is not None else list(task_vars.get('ansible_play_hosts_all') or [])
        results = dict((host, hostvars[host].get(args['results_var']) if host in hostvars else None) for host in hosts)

        # With serial, hosts of later batches have no result yet: report once, after the last batch.
        batch = task_vars.get('ansible_play_batch') or []
        last = max([hosts.index(host) for host in batch if host in hosts] or [len(hosts) - 1])
        pending = [host for host in hosts[last + 1:] if results[host] is None]
        if pending:
            result.update(changed=False, skipped=True, pending=pending,
                          msg='fleet report deferred: %d hosts are still to be audited in later batches' % len(pending))
            return result

        policy_info = args['policy_info'] or next(
            (dict(r['policy']) for r in results.values() if isinstance(r, dict) and isinstance(r.get('policy'), dict)),
            None)
        if policy_info is None:
            raise AnsibleActionFail('port_report: no host has an audit result to name the policy; pass policy_info '
                                    '(the info returned by port_policy_validate)')
        if args['history_keep'] < 0:
            raise AnsibleActionFail('port_report: history_keep must be 0 or more, not %d' % args['history_keep'])
        report_dir = os.path.abspath(args['report_dir'])
        json_path = os.path.join(report_dir, FILE_NAMES['json'])
        warnings = []
        try:
            # One run at a time in a directory, from reading the previous report to the last rename.
            with ReportDir(report_dir) as target:
                raw, warning = target.read_previous()
                previous = None
                if raw is not None:
                    previous, warning = _parse_previous(raw, json_path)
                if warning:
                    warnings.append(warning + ('' if 'findings are not listed' in warning
                                               else '; new and resolved findings are not listed'))
                report = build_report([_host_from_result(host, results[host]) for host in hosts], policy_info,
                                      registry.registry_info(), previous=previous, tool_version=collection_version())
                # Render everything first: a failure here leaves every file of the last run untouched.
                files = render_set(report, args['formats'])
                written = target.write_set(files, keep=raw if previous is not None and 'json' in args['formats'] else None,
                                           keep_as=(previous or {}).get('generated_at'),
                                           history_keep=args['history_keep'])
        except ReportWriteError as exc:
            raise AnsibleActionFail(str(exc)) from None
        if warnings:
            result.setdefault('warnings', []).extend(warnings)
        paths = dict((name, os.path.join(report_dir, FILE_NAMES[name])) for name in args['formats'])

        fail_on = args['fail_on']
        code, failing, lines = gate_report(report, fail_on if fail_on != 'never' else 'never',
                                           allow_unknown=not args['fail_on_unknown'])
        result.update({
            'changed': False,
            'summary': report['summary'],
            'paths': paths,
            'gate': {'fail_on': fail_on, 'fail_on_unknown': args['fail_on_unknown'], 'exit_code': code,
                     'failing_hosts': failing, 'lines': lines},
            'generated_at': report['generated_at'],
            'run_id': report['run_id'],
            'history': {'kept': written['kept'], 'pruned': written['pruned']},
        })
        where = ', '.join(paths[name] for name in sorted(paths))
        if code:
            result['failed'] = True
            result['msg'] = 'port compliance gate failed: %s. Reports: %s' % ('; '.join(lines[1:]), where)
        else:
            result['msg'] = '%s. Reports: %s' % (lines[0], where)
        return result
