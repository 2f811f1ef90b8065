# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin port_report_merge: merge part reports into one fleet report on the controller, and gate on it."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import SEVERITIES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_write import HISTORY_KEEP
from ansible_collections.portwarden.compliance.plugins.plugin_utils.collection_version import collection_version
from ansible_collections.portwarden.compliance.plugins.plugin_utils.merge_run import MergeError, run_merge
from ansible_collections.portwarden.compliance.plugins.plugin_utils.report_load import parse_age

ARGUMENT_SPEC = {
    'parts': {'type': 'list', 'elements': 'path', 'default': []},
    'parts_dir': {'type': 'path'},
    'report_dir': {'type': 'path', 'required': True},
    'inventory': {'type': 'list', 'elements': 'str'},
    'hosts': {'type': 'list', 'elements': 'str'},
    'hosts_file': {'type': 'path'},
    'max_age': {'type': 'str'},
    'skip_bad': {'type': 'bool', 'default': False},
    'allow_mixed_policies': {'type': 'bool', 'default': False},
    'formats': {'type': 'list', 'elements': 'str', 'default': list(FILE_NAMES), 'choices': list(FILE_NAMES)},
    'history_keep': {'type': 'int', 'default': HISTORY_KEEP},
    'fail_on': {'type': 'str', 'default': 'high', 'choices': ['never'] + list(SEVERITIES)},
    'allow_unknown': {'type': 'bool', 'default': False},
}
_EXCLUSIVE = ('inventory', 'hosts', 'hosts_file')


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        given = [name for name in _EXCLUSIVE if args[name] not in (None, [])]
        if len(given) > 1:
            raise AnsibleActionFail('port_report_merge: give the expected hosts one way, not %s' % ' and '.join(given))
        if args['history_keep'] < 0:
            raise AnsibleActionFail('port_report_merge: history_keep must be 0 or more, not %d' % args['history_keep'])
        if args['hosts'] is not None and not [host for host in args['hosts'] if host.strip()]:
            raise AnsibleActionFail('port_report_merge: hosts names no host')
        try:
            max_age = parse_age(args['max_age']) if args['max_age'] not in (None, '') else None
        except ValueError as exc:
            raise AnsibleActionFail('port_report_merge: max_age %s' % exc) from None
        try:
            outcome = run_merge(paths=args['parts'], parts_dir=args['parts_dir'], report_dir=args['report_dir'],
                                inventory=args['inventory'] or None, hosts=args['hosts'], hosts_file=args['hosts_file'],
                                max_age=max_age, skip_bad=args['skip_bad'], allow_mixed=args['allow_mixed_policies'],
                                formats=args['formats'], history_keep=args['history_keep'], fail_on=args['fail_on'],
                                allow_unknown=args['allow_unknown'], check_mode=bool(self._task.check_mode),
                                tool_version=collection_version())
        except MergeError as exc:
            raise AnsibleActionFail('port_report_merge: no fleet report was written: %s' % '; '.join(exc.problems),
                                    result={'problems': exc.problems}) from None
        report = outcome['report']
        if outcome['warnings']:
            result.setdefault('warnings', []).extend(outcome['warnings'])
        result.update({
            'changed': False,
            'check_mode': bool(self._task.check_mode),
            'summary': report['summary'],
            'paths': outcome['paths'],
            'gate': {'fail_on': args['fail_on'], 'allow_unknown': args['allow_unknown'], 'exit_code': outcome['code'],
                     'failing_hosts': outcome['failing'], 'lines': outcome['lines']},
            'generated_at': report['generated_at'],
            'run_id': report['run_id'],
            'history': {'kept': outcome['history']['kept'], 'pruned': outcome['history']['pruned']},
            'scope': report['scope'],
            'skipped': outcome['skipped'],
            'stats': outcome['stats'],
        })
        lines = outcome['lines']
        where = ', '.join(outcome['paths'][name] for name in sorted(outcome['paths']))
        written = 'would write (check mode, nothing written)' if self._task.check_mode else 'Reports'
        if outcome['code']:
            result['failed'] = True
            result['msg'] = 'port compliance gate failed on the merged fleet report: %s. %s: %s' % (
                '; '.join(lines[1:]), written, where)
        else:
            result['msg'] = 'merged %d parts: %s. %s: %s' % (len(report['scope']['parts']), lines[0], written, where)
        return result
