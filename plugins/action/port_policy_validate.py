# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin port_policy_validate: load and validate a policy, and every host's overlays, on the controller,
touching no host."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import PolicyError, compile_policy
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_overlay import compile_host_policy
from ansible_collections.portwarden.compliance.plugins.plugin_utils.overlay_vars import (
    load_overlays_of,
    stray_overlay_problems,
)
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import PolicyInvalid, load_policy
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_resolve import resolve_policy

ARGUMENT_SPEC = {'policy': {'type': 'raw'}, 'hosts': {'type': 'list', 'elements': 'str'}}


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
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
        overlays, warnings = self._validate_overlays(loaded, compiled, args['hosts'], task_vars)
        result.update({
            'changed': False,
            'policy': loaded,
            'source': source,
            'info': dict(compiled.info(), rules=[{'id': rule.id, 'severity': rule.severity,
                                                  'description': rule.description} for rule in compiled.rules]),
            'overlays': overlays,
            'msg': 'policy %s is valid (%d rules, %d waivers)%s' % (
                compiled.name, len(compiled.rules), len(compiled.waivers),
                ', with overlays for %d host%s' % (len(overlays), '' if len(overlays) == 1 else 's') if overlays else ''),
        })
        if warnings:
            result['warnings'] = warnings
        return result

    def _validate_overlays(self, loaded, compiled, hosts, task_vars):
        """Every host's overlays, before any host is contacted: ``({host: {sha256, overlays}}, warnings)``;
        fails with every error of every host."""
        if hosts is None:
            hosts = task_vars.get('ansible_play_hosts_all') or []
        hostvars = task_vars.get('hostvars') or {}
        errors = stray_overlay_problems(task_vars, task_vars.get('inventory_hostname'))
        warnings = []
        found = {}
        for host in sorted(set(hosts)):
            if host not in hostvars:
                continue
            try:
                overlays, host_warnings = load_overlays_of(loaded, hostvars, host)
                if overlays:
                    effective = compile_host_policy(loaded, overlays, compiled.digest)
            except PolicyInvalid as exc:
                errors.extend(exc.errors)
                continue
            except PolicyError as exc:
                errors.append('host %s: overlays cannot be compiled: %s' % (host, exc))
                continue
            warnings.extend(host_warnings)
            if overlays:
                found[host] = {'sha256': effective.digest, 'overlays': effective.overlays}
        if errors:
            raise AnsibleActionFail('invalid policy overlays:\n%s' % '\n'.join(errors), result={'errors': errors})
        return found, warnings
