# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin port_audit: gather on the host (one module round trip), evaluate on the controller."""

from __future__ import annotations

import datetime

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import (
    PolicyError,
    compile_policy,
    evaluate_host,
    gate,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_check import parse_date
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import SEVERITIES
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import PolicyInvalid, load_policy
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_resolve import resolve_policy

GATHER_MODULE = 'portwarden.compliance.listening_sockets_info'

ARGUMENT_SPEC = {
    'policy': {'type': 'raw'},
    'backend': {'type': 'str', 'default': 'auto', 'choices': ['auto', 'netlink', 'procfs', 'psutil']},
    'protocols': {'type': 'list', 'elements': 'str', 'default': ['tcp', 'udp'], 'choices': ['tcp', 'udp']},
    'fail_on': {'type': 'str', 'default': 'never', 'choices': ['never'] + list(SEVERITIES)},
    'fail_on_unknown': {'type': 'bool'},
    'as_of': {'type': 'str'},
    'groups': {'type': 'list', 'elements': 'str'},
}


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)

        today = datetime.date.today()
        if args['as_of']:
            today = parse_date(args['as_of'])
            if today is None:
                raise AnsibleActionFail('as_of: %r is not a date; expected YYYY-MM-DD' % args['as_of'])

        # The policy is validated before the host is touched: a bad policy changes and reads nothing.
        policy, source = resolve_policy(self, args['policy'])
        try:
            compiled = compile_policy(load_policy(policy, source))
        except PolicyInvalid as exc:
            raise AnsibleActionFail('invalid policy:\n%s' % '\n'.join(exc.errors), result={'errors': exc.errors}) from None
        except PolicyError as exc:
            raise AnsibleActionFail('invalid policy: %s: %s' % (source, exc)) from None

        gathered = self._execute_module(module_name=GATHER_MODULE,
                                        module_args={'backend': args['backend'], 'protocols': args['protocols']},
                                        task_vars=task_vars)
        host = task_vars.get('inventory_hostname', self._play_context.remote_addr)
        groups = args['groups'] if args['groups'] is not None else task_vars.get('group_names', [])
        if gathered.get('failed'):
            audit = evaluate_host(None, compiled, host, groups, today)
            audit['reasons'] = ['gather failed: %s' % gathered.get('msg', 'no message')]
        else:
            audit = evaluate_host(gathered, compiled, host, groups, today)

        fail_on_unknown = args['fail_on_unknown']
        if fail_on_unknown is None:  # gating on drift gates on unknown too, unless told otherwise
            fail_on_unknown = args['fail_on'] != 'never'
        failures = gate(audit, args['fail_on'], fail_on_unknown)

        result.update(audit)
        result['changed'] = False
        result['gate'] = {'fail_on': args['fail_on'], 'fail_on_unknown': fail_on_unknown, 'failures': failures}
        if failures:
            result['failed'] = True
            result['msg'] = '%s is %s: %s' % (host, audit['status'], '; '.join(failures))
        else:
            result['msg'] = '%s is %s (%d drift, %d waived, %d unknown findings)' % (
                host, audit['status'], audit['summary']['drift'], audit['summary']['waived'], audit['summary']['unknown'])
        return result
