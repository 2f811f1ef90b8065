#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: port_kill
short_description: End the gathered processes that hold drifting ports, never a recycled pid
version_added: 0.1.0
description:
  - The V(kill) remediation strategy of the R(port_compliance role,ansible_collections.portwarden.compliance.port_compliance_role).
    Sends SIGTERM to each listed process, then SIGKILL after O(timeout) seconds.
  - Each process is identified as the gather described it (M(portwarden.compliance.listening_sockets_info)),
    by pid, start time and executable. A process whose pid now belongs to another process (the gathered one
    exited and the kernel reused its pid) is left alone and reported as V(mismatch).
  - Where the kernel has pidfds (Linux 5.3+) the process is pinned before it is checked, so the check and
    the signals reach the same process.
  - A process whose main thread has exited while other threads run on (its leader shows as a zombie) is alive,
    so it is checked through a live thread (its executable, its unit) and signalled, never reported V(gone).
  - Never signals PID 1, the processes this module runs under (they serve the live Ansible connection),
    or processes that O(protected_names) protects (by their executable, never by their name alone); those are
    reported as V(protected).
author:
  - portwarden contributors (@portwarden)
extends_documentation_fragment:
  - portwarden.compliance.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports V(would_terminate) for each process a real run would signal, after the same identity checks.
  diff_mode:
    support: full
    details:
      - The diff lists the processes before and after.
  idempotent:
    description: When run twice in a row outside check mode with the same arguments, the second run reports no change.
    support: full
    details:
      - A process already gone is reported as V(gone) and does not count as a change.
options:
  processes:
    description: The processes to end, as gathered.
    type: list
    elements: dict
    required: true
    suboptions:
      pid:
        description:
          - Process id, a whole number from 1 to the host's C(/proc/sys/kernel/pid_max).
          - Anything else (a negative number, 0, a boolean, a fraction, text) fails the module with a message naming
            the entry, and no process is signalled.
        type: raw
        required: true
      start_time:
        description:
          - Start time in clock ticks after boot (C(/proc/PID/stat) field 22), as gathered; a whole number >= 0.
        type: raw
        required: true
      exe:
        description: Executable path as gathered; when set, it must match too.
        type: str
      name:
        description: Process name, for messages.
        type: str
      rule:
        description: The policy rule whose finding this closes, for the report.
        type: str
  timeout:
    description: Seconds to wait after SIGTERM before SIGKILL.
    type: float
    default: 10
  protected_names:
    description:
      - Shell-style patterns of the processes that are never signalled.
      - "How a pattern matches: one with a C(/) matches the executable's full path (V(/opt/vendor/bin/agent));
        one without matches the base name of an executable in a system directory (C(/usr/sbin), C(/usr/bin), C(/sbin),
        C(/bin), C(/usr/local/sbin), C(/usr/local/bin), or under C(/usr/lib), C(/usr/libexec), C(/lib)), or the name of
        the system service the process runs in (V(systemd-*) matches C(systemd-resolved.service)). On the host the
        executable must also be owned by root and writable by no one else."
      - The process name alone protects nothing (any process can call itself C(sshd)); a process whose executable
        cannot be read is taken at its name. A name-only match is said so in the reason of what was done.
    type: list
    elements: str
    default: [sshd, sshd-session, systemd, systemd-*, init, dockerd, containerd, containerd-shim*, podman, conmon,
              crio, runc, crun, kubelet]
requirements:
  - Python 3.8 to 3.13 on the managed host (the tested range).
  - Linux (C(/proc)).
'''

EXAMPLES = r'''
- name: End a process found listening on TCP 856
  portwarden.compliance.port_kill:
    processes:
      - pid: 4242
        start_time: 1234567
        exe: /opt/rogue/bin/rogue
        rule: iana-unassigned
    timeout: 5
'''

RETURN = r'''
processes:
  description: One entry per listed process, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: Process id.
      type: int
      returned: always
      sample: 4242
    name:
      description: Process name (now, or as given when the process is gone).
      type: str
      returned: always
      sample: rogue
    rule:
      description: The rule given with the process.
      type: str
      returned: when given
      sample: iana-unassigned
    outcome:
      description:
        - V(terminated) (ended by SIGTERM), V(killed) (by SIGKILL after the timeout), V(would_terminate) (check mode),
          V(gone) (had already exited), V(mismatch) (the pid belongs to another process now), V(protected),
          or V(survived) (still alive after SIGKILL).
      type: str
      returned: always
      sample: terminated
    reason:
      description: Why, in words.
      type: str
      returned: always
      sample: ended by SIGTERM
'''

import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.portwarden.compliance.plugins.module_utils.remediate_kill import (
    CHANGED_OUTCOMES,
    DEFAULT_PROTECTED_NAMES,
    SURVIVED,
    connection_chain,
    normalise_targets,
    terminate,
)


def _describe(entries):
    return ''.join('%s[%d] (%s)\n' % (entry.get('name'), entry['pid'], entry['outcome']) for entry in entries)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            processes=dict(type='list', elements='dict', required=True, options=dict(
                pid=dict(type='raw', required=True),
                start_time=dict(type='raw', required=True),
                exe=dict(type='str'),
                name=dict(type='str'),
                rule=dict(type='str'),
            )),
            timeout=dict(type='float', default=10.0),
            protected_names=dict(type='list', elements='str', default=list(DEFAULT_PROTECTED_NAMES)),
        ),
        supports_check_mode=True,
    )
    if not sys.platform.startswith('linux'):
        module.fail_json(msg='port_kill needs Linux (/proc) to identify processes; this host runs %s' % sys.platform)
    if module.params['timeout'] < 0:
        module.fail_json(msg='timeout: %s is negative; expected seconds >= 0' % module.params['timeout'])

    try:
        targets = normalise_targets(module.params['processes'])
    except ValueError as exc:
        module.fail_json(msg='%s; nothing was signalled' % exc, processes=[])

    chain = connection_chain()
    outcomes = []
    for target in targets:
        entry = terminate(target, timeout=module.params['timeout'], check_mode=module.check_mode,
                          protected_names=module.params['protected_names'], chain=chain)
        if target.get('rule'):
            entry['rule'] = target['rule']
        outcomes.append(entry)

    changed = any(entry['outcome'] in CHANGED_OUTCOMES for entry in outcomes)
    ended = [entry for entry in outcomes if entry['outcome'] in CHANGED_OUTCOMES]
    result = {'changed': changed, 'processes': outcomes}
    if module._diff:
        result['diff'] = {'before_header': 'processes to end', 'after_header': 'processes to end',
                          'before': _describe(ended), 'after': ''}
    survivors = [entry for entry in outcomes if entry['outcome'] == SURVIVED]
    if survivors:
        module.fail_json(msg='%d process(es) survived SIGKILL: %s' % (len(survivors), _describe(survivors).strip()), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
