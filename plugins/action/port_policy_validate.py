# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin port_policy_validate: load and validate a policy on the controller, touching no host."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import PolicyError, compile_policy
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import PolicyInvalid, load_policy
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_resolve import resolve_policy

ARGUMENT_SPEC = {'policy': {'type': 'raw'}}


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        policy, source = resolve_policy(self, args['policy'])
        try:
            loaded = load_policy(policy, source)
            compiled = compile_policy(loaded)
        except PolicyInvalid as exc:
            raise AnsibleActionFail('invalid policy:\n%s' % '\n'.join(exc.errors), result={'errors': exc.errors}) from None
        except PolicyError as exc:
            raise AnsibleActionFail('invalid policy: %s: %s' % (source, exc)) from None
        result.update({
            'changed': False,
            'policy': loaded,
            'source': source,
            'info': dict(compiled.info(), rules=[{'id': rule.id, 'severity': rule.severity,
                                                  'description': rule.description} for rule in compiled.rules]),
            'msg': 'policy %s is valid (%d rules, %d waivers)' % (
                compiled.name, len(compiled.rules), len(compiled.waivers)),
        })
        return result
