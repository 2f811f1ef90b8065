# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: socket_table
short_description: Render a listening_sockets_info result as text lines
version_added: 0.1.0
author: portwarden contributors (@portwarden)
description:
  - Turns the result of M(portwarden.compliance.listening_sockets_info) into aligned text lines, one per
    socket, followed by the gather coverage, so a person can read it in a debug message.
  - Text from the host (process, user, unit and container names, coverage errors) is shown with its control and
    invisible characters (escape sequences, line feeds, bidi overrides, zero-width characters, bytes that are not
    UTF-8) written as escapes such as C(\x1b), so a process cannot drive the terminal or forge a line.
options:
  _input:
    description: A registered M(portwarden.compliance.listening_sockets_info) result (with C(sockets) and C(coverage)).
    type: dict
    required: true
'''

EXAMPLES = r'''
- name: Show the listening sockets of each host
  ansible.builtin.debug:
    msg: "{{ gathered | portwarden.compliance.socket_table }}"
'''

RETURN = r'''
_value:
  description: The table as a list of lines; the coverage and any errors come last.
  type: list
  elements: str
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.portwarden.compliance.plugins.module_utils.report_sockets import render_socket_table


def socket_table(result):
    if not isinstance(result, dict) or 'sockets' not in result:
        raise AnsibleFilterError('socket_table expects a listening_sockets_info result with "sockets" and "coverage"')
    return render_socket_table(result)


class FilterModule(object):
    def filters(self):
        return {'socket_table': socket_table}
