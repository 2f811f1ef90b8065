# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Evaluate step, controller side: a host's overlay variables, read where the validation and the audit both read them.

Overlays come from what ``hostvars`` holds for a host: the inventory (inventory file, host_vars, group_vars), facts
(set_fact) and extra vars, each variable by Ansible's precedence. Play, role, block and task variables are not
there (Ansible leaves them out of hostvars), so an overlay set as one is refused rather than read by one step and
not the other.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleError

from ansible_collections.portwarden.compliance.plugins.module_utils.policy_overlay import (
    OVERLAY_VARIABLE,
    overlay_variables,
)
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import PolicyInvalid, load_host_overlays


def _one_line(text):
    return ' '.join(str(text).split())


def _variable_of(line):
    """The variable an error line ``host H: VARIABLE.PATH: ...`` is about."""
    return re.split(r'[.\[:]', line.split(': ', 1)[-1], maxsplit=1)[0]


def read_overlay_variables(variables, host):
    """``({variable: templated value}, error lines)`` of a host's overlay variables (``variables``: its hostvars
    entry): a variable whose template fails (undefined, a filter error) is an error line naming it."""
    found = {}
    errors = []
    for name in overlay_variables(variables):
        try:
            found[name] = variables[name]
        except AnsibleError as exc:
            errors.append('host %s: %s: the variable cannot be read: %s' % (host, name, _one_line(exc)))
    return found, errors


def load_overlays_of(policy, hostvars, host):
    """A host's validated overlays (``[(variable, overlay)]``) and warnings, read from its hostvars.

    PolicyInvalid has every error of the host, by variable: a variable whose template fails (undefined, a filter
    error) is named, and the others are still checked."""
    variables = hostvars[host]  # each lookup is a variable pass over the host: once
    found, errors = read_overlay_variables(variables, host)
    overlays, warnings = [], []
    try:
        overlays, warnings = load_host_overlays(policy, found, host, variables.get('group_names') or [])
    except PolicyInvalid as exc:
        errors.extend(exc.errors)
    if errors:
        raise PolicyInvalid(sorted(errors, key=_variable_of))  # stable: each variable's lines keep their path order
    # A near miss (port_compliance_policy_overlays, ..._overlay-web) is no overlay: say so rather than ignore it.
    near = sorted(name for name in variables if isinstance(name, str) and name.startswith(OVERLAY_VARIABLE)
                  and name not in found)
    warnings = list(warnings) + ['host %s: %s: not an overlay variable (%s or %s_SUFFIX, the suffix letters, digits '
                                 'and _), so it is ignored' % (host, name, OVERLAY_VARIABLE, OVERLAY_VARIABLE)
                                 for name in near]
    return overlays, warnings


def stray_overlay_problems(task_vars, host):
    """Error lines for overlay variables a task sees that are not in the host's hostvars: set as play, role, block
    or task variables, which overlays are not read from."""
    hostvars = task_vars.get('hostvars') or {}
    known = set(overlay_variables(hostvars[host])) if host in hostvars else set()
    return ['host %s: %s: set as a play, role, block or task variable, which overlays are not read from; set it in '
            'the inventory (host_vars, group_vars), with set_fact or as an extra var' % (host, name)
            for name in overlay_variables(task_vars) if name not in known]
