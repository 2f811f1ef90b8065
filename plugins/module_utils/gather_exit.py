# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How the gather module hands its result to Ansible: ``exit_json`` without the no_log copy when there is nothing to
scrub.

``AnsibleModule.exit_json`` passes every result through ``remove_values(result, module.no_log_values)``, which builds
a copy of every dict, list and string of it to take the module's no_log values out. A gather of a host with 10,000
listeners and 5,000 published ports is about 150,000 values: the copy takes 0.75 s, twice the gather itself, and
changes nothing when the module has no no_log value (listening_sockets_info has no no_log option). exit_gathered then
lets ``exit_json`` pass the result on as it is; everything else ``exit_json`` does (invocation, warnings,
deprecations, the encoder, the exit) is unchanged. With any no_log value, or an ansible-core whose exit no longer
calls ``remove_values`` by that name, it is ``exit_json`` as it always was.
"""

from __future__ import annotations

from ansible.module_utils import basic


def _kept(remove_values):
    def kept(value, no_log_strings):
        if no_log_strings:  # not expected (exit_gathered checked), but then the scrub is never skipped
            return remove_values(value, no_log_strings)
        return value
    return kept


def exit_gathered(module, result):
    """``module.exit_json(changed=False, **result)``; without the no_log copy when the module has no no_log value."""
    remove_values = getattr(basic, 'remove_values', None)
    if module.no_log_values or not callable(remove_values):
        return module.exit_json(changed=False, **result)
    basic.remove_values = _kept(remove_values)
    try:
        return module.exit_json(changed=False, **result)
    finally:  # exit_json raises SystemExit: the module's own remove_values is back before the interpreter ends
        basic.remove_values = remove_values
