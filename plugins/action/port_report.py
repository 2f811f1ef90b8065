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
from ansible_collections.portwarden.compliance.plugins.module_utils.atomic_write import write_atomically
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import SEVERITIES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import (
    REPORT_SCHEMA_VERSION,
    build_report,
    gate_report,
    host_entry,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES, RENDERERS
from ansible_collections.portwarden.compliance.plugins.plugin_utils.collection_version import collection_version

ARGUMENT_SPEC = {
    'report_dir': {'type': 'path', 'required': True},
    'formats': {'type': 'list', 'elements': 'str', 'default': list(FILE_NAMES), 'choices': list(FILE_NAMES)},
    'results_var': {'type': 'str', 'default': 'port_compliance_audit'},
    'hosts': {'type': 'list', 'elements': 'str'},
    'policy_info': {'type': 'dict'},
    'fail_on': {'type': 'str', 'default': 'never', 'choices': ['never'] + list(SEVERITIES)},
    'fail_on_unknown': {'type': 'bool', 'default': True},
}
HISTORY_DIR = 'history'


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


def _read_previous(path):
    """The previous report for drift over time, or ``(None, why not)``."""
    try:
        with open(path) as handle:
            previous = json.load(handle)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, 'previous report %s is unreadable (%s); new and resolved findings are not listed' % (path, exc)
    if not isinstance(previous, dict) or previous.get('schema_version') != REPORT_SCHEMA_VERSION:
        return None, 'previous report %s has another schema version; new and resolved findings are not listed' % path
    return previous, None


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
        report_dir = os.path.abspath(args['report_dir'])
        json_path = os.path.join(report_dir, FILE_NAMES['json'])
        previous, warning = _read_previous(json_path)
        report = build_report([_host_from_result(host, results[host]) for host in hosts], policy_info,
                              registry.registry_info(), previous=previous, tool_version=collection_version())
        if warning:
            result.setdefault('warnings', []).append(warning)

        # Render everything first: a failure here leaves every file of the last run untouched.
        rendered = dict((name, RENDERERS[name](report)) for name in args['formats'])
        paths = {}
        try:
            os.makedirs(report_dir, exist_ok=True)
            if previous is not None and 'json' in rendered:
                history = os.path.join(report_dir, HISTORY_DIR)
                os.makedirs(history, exist_ok=True)
                stamp = (previous.get('generated_at') or 'unknown').replace(':', '').replace('-', '')
                kept = os.path.join(history, 'portwarden-report-%s.json' % stamp)
                serial = 1
                while os.path.exists(kept):  # two runs within one second keep both
                    serial += 1
                    kept = os.path.join(history, 'portwarden-report-%s-%d.json' % (stamp, serial))
                os.replace(json_path, kept)
            for name, text in rendered.items():
                paths[name] = os.path.join(report_dir, FILE_NAMES[name])
                write_atomically(paths[name], text)
        except OSError as exc:
            raise AnsibleActionFail('cannot write the fleet report in %s: %s' % (report_dir, exc)) from None

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
        })
        where = ', '.join(paths[name] for name in sorted(paths))
        if code:
            result['failed'] = True
            result['msg'] = 'port compliance gate failed: %s. Reports: %s' % ('; '.join(lines[1:]), where)
        else:
            result['msg'] = '%s. Reports: %s' % (lines[0], where)
        return result
