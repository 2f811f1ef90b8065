# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin port_report: write the fleet report of a play once, on the controller, and gate on it."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.portwarden.compliance.plugins.module_utils import registry
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import SEVERITIES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import (
    build_report,
    gate_report,
    host_entry,
    parse_previous,
    report_stats,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_merge import (
    awx_info,
    in_awx_workflow,
    make_run_id,
    report_scope,
    slice_count,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.report_write import (
    HISTORY_KEEP,
    PartDir,
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
    'scope': {'type': 'str', 'default': 'auto', 'choices': ['auto', 'fleet', 'part']},
}


def scope_kind(asked, hosts, task_vars):
    """``fleet`` or ``part``: with ``auto``, a part when the report's hosts are not every host of the inventory
    (``--limit``, a play over a group), when AWX's vars say the job is one slice of several, or when the job
    runs inside an AWX workflow: a slice of a sliced job template is a workflow node with only the usual meta
    vars and an inventory of its own hosts, so nothing else tells it apart (and a part fails safe)."""
    if asked != 'auto':
        return asked
    inventory = set((task_vars.get('groups') or {}).get('all') or [])
    if slice_count(task_vars) > 1 or not inventory or set(hosts) != inventory or in_awx_workflow(task_vars):
        return 'part'
    return 'fleet'


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
        kind = scope_kind(args['scope'], hosts, task_vars)
        awx = awx_info(task_vars)
        run_id = make_run_id((awx or {}).get('job_id'))
        registry_info = registry.registry_info()
        warnings = []
        written = {'kept': None, 'pruned': []}
        try:
            if kind == 'part':
                # A part: its own new directory, never the fleet report's names, no previous, no history.
                with PartDir(report_dir, run_id) as target:
                    report = build_report([_host_from_result(host, results[host]) for host in hosts], policy_info,
                                          registry_info, tool_version=collection_version(), run_id=run_id)
                    report['scope'] = report_scope(kind, run_id, hosts, policy_info, registry_info, awx)
                    target.write_set(render_set(report, args['formats']))
                    out_dir = target.path
            else:
                json_path = os.path.join(report_dir, FILE_NAMES['json'])
                # One run at a time in a directory, from reading the previous report to the last rename.
                with ReportDir(report_dir) as target:
                    raw, warning = target.read_previous()
                    previous = None
                    if raw is not None:
                        previous, warning = parse_previous(raw, json_path)
                    if warning:
                        warnings.append(warning + ('' if 'findings are not listed' in warning
                                                   else '; new and resolved findings are not listed'))
                    report = build_report([_host_from_result(host, results[host]) for host in hosts], policy_info,
                                          registry_info, previous=previous, tool_version=collection_version(),
                                          run_id=run_id)
                    report['scope'] = report_scope(kind, run_id, hosts, policy_info, registry_info, awx)
                    # Render everything first: a failure here leaves every file of the last run untouched.
                    files = render_set(report, args['formats'])
                    written = target.write_set(files, keep=raw if previous is not None and 'json' in args['formats']
                                               else None, keep_as=(previous or {}).get('generated_at'),
                                               history_keep=args['history_keep'])
                out_dir = report_dir
        except ReportWriteError as exc:
            raise AnsibleActionFail(str(exc)) from None
        if warnings:
            result.setdefault('warnings', []).extend(warnings)
        paths = dict((name, os.path.join(out_dir, FILE_NAMES[name])) for name in args['formats'])

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
            'scope': report['scope'],
            'stats': report_stats(report, code, paths.get('json')),
        })
        where = ', '.join(paths[name] for name in sorted(paths))
        if kind == 'part':
            lines = list(lines)
            lines[0] = 'part %s of %d host%s (portwarden merge makes the fleet report): %s' % (
                run_id, len(hosts), '' if len(hosts) == 1 else 's', lines[0])
        if code:
            result['failed'] = True
            result['msg'] = 'port compliance gate failed: %s. Reports: %s' % ('; '.join(lines[1:]), where)
        else:
            result['msg'] = '%s. Reports: %s' % (lines[0], where)
        return result
