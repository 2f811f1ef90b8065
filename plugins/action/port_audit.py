# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin port_audit: gather on the host (one module round trip), evaluate on the controller."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import gate
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import SEVERITIES
from ansible_collections.portwarden.compliance.plugins.plugin_utils.audit_host import (
    AUDIT_ARGUMENT_SPEC,
    audit_host,
    prepare_audit,
)

ARGUMENT_SPEC = dict(AUDIT_ARGUMENT_SPEC, **{
    'fail_on': {'type': 'str', 'default': 'never', 'choices': ['never'] + list(SEVERITIES)},
    'fail_on_unknown': {'type': 'bool'},
})


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)

        # The policy is validated before the host is touched: a bad policy changes and reads nothing.
        compiled, today = prepare_audit(self, args, task_vars)
        audit, _gathered = audit_host(self, task_vars, args, compiled, today)
        host = audit['host']

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
