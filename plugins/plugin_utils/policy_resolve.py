# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Evaluate step, controller side: where a task's ``policy`` argument points."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail, AnsibleError

# The bundled baseline: ports IANA has not assigned stay closed.
BASELINE_POLICY = os.path.normpath(os.path.join(os.path.dirname(__file__), '..', '..', 'docs', 'policies',
                                                'baseline.yml'))


def resolve_policy(action, policy):
    """Return ``(policy mapping or file path, source name shown in errors)`` for an action's argument.

    None is the bundled baseline; a relative path is looked up like other task files (next to the
    playbook, in its files/ directory, in the role).
    """
    if policy is None:
        return BASELINE_POLICY, 'bundled baseline policy'
    if isinstance(policy, dict):
        return policy, 'policy (inline)'
    if not isinstance(policy, str) or not policy:
        raise AnsibleActionFail('policy must be a path to a policy file or a mapping, got %r' % (policy,))
    try:
        path = action._find_needle('files', policy)  # pylint: disable=protected-access
    except AnsibleError:
        raise AnsibleActionFail('policy file %s not found next to the playbook, in its files/ directory or in the role'
                                % policy) from None
    return path, policy
