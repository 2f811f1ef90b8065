#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: listening_sockets_info
short_description: Gather every listening socket of a host with its owning processes
version_added: 0.1.0
description:
  - Lists every listening TCP socket and every bound, unconnected UDP socket of the host, IPv4 and IPv6,
    with every process that holds it (forked workers sharing one socket are all listed).
  - On Linux it asks the kernel through a C(NETLINK_SOCK_DIAG) dump filtered to listening states, then
    walks C(/proc/*/fd) once to find the owning processes. Its cost does not grow with established connections.
  - Fails closed. A gather that could read nothing fails the task; a gather that could read only part of what
    it should (a socket table, or the processes of other users) returns C(coverage.complete=false) with the
    reasons in C(coverage.errors). An empty RV(sockets) list with complete coverage means the host really has
    no listeners.
  - Run it with C(become) enabled (as root) to see the processes of every user. Without it, sockets
    are still listed but processes of other users are missing, and C(coverage) says so.
  - Sees the network namespace the module runs in (the host's, unless run inside a container).
author:
  - portwarden contributors (@portwarden)
extends_documentation_fragment:
  - portwarden.compliance.attributes
  - portwarden.compliance.attributes.INFO_MODULE
options:
  backend:
    description:
      - How sockets are read.
      - V(auto) uses V(netlink) on Linux, falling back to V(procfs) for any table netlink cannot dump,
        and V(psutil) on other systems.
      - V(netlink) reads the kernel's socket diagnostics (Linux). It tells dual-stack IPv6 sockets from V6ONLY ones.
      - V(procfs) parses C(/proc/net/tcp), C(tcp6), C(udp), C(udp6) (Linux). It cannot tell V6ONLY sockets
        from dual-stack ones, so RV(sockets[].v6only) is V(null) for IPv6 sockets.
      - V(psutil) uses the psutil library, which must be installed on the host. It cannot tell
        SO_REUSEPORT sockets on the same address apart (they appear as one), gives no inode or v6only,
        and on Linux names only one of the processes that share a socket.
    type: str
    choices: [auto, netlink, procfs, psutil]
    default: auto
  protocols:
    description:
      - Transport protocols to gather.
    type: list
    elements: str
    choices: [tcp, udp]
    default: [tcp, udp]
requirements:
  - Linux for the V(netlink) and V(procfs) backends (Python standard library only).
  - psutil on the managed host for the V(psutil) backend (the default on non-Linux hosts).
notes:
  - A UDP socket counts as listening when it is bound and not connected; a connected UDP client socket is not listed.
  - RV(sockets[].ephemeral) marks UDP sockets bound inside the host's C(net.ipv4.ip_local_port_range)
    (less C(ip_local_reserved_ports)), which are most likely client sockets, not services.
  - Process command lines are never collected; they can carry secrets.
seealso:
  - name: ss(8)
    description: The iproute2 tool that reads the same kernel interface.
    link: https://man7.org/linux/man-pages/man8/ss.8.html
'''

EXAMPLES = r'''
- name: Gather listening sockets
  portwarden.compliance.listening_sockets_info:
  become: true
  register: listening

- name: Show what listens on TCP 856 (nothing should)
  ansible.builtin.debug:
    msg: "{{ listening.sockets | selectattr('protocol', 'eq', 'tcp') | selectattr('port', 'eq', 856) }}"

- name: Stop here when the gather could not see everything
  ansible.builtin.assert:
    that: listening.coverage.complete
    fail_msg: "{{ listening.coverage.errors }}"

- name: Gather TCP only, reading /proc/net (for kernels without sock_diag)
  portwarden.compliance.listening_sockets_info:
    backend: procfs
    protocols: [tcp]
  become: true
'''

RETURN = r'''
sockets:
  description:
    - One entry per listening socket, sorted by protocol, port, family and address.
    - Empty only when the host really has no listening socket (see RV(coverage)).
  returned: success
  type: list
  elements: dict
  contains:
    protocol:
      description: Transport protocol.
      type: str
      returned: always
      sample: tcp
    family:
      description: Address family.
      type: str
      returned: always
      sample: ipv4
    address:
      description: Local address the socket is bound to; V(0.0.0.0) or V(::) for every address.
      type: str
      returned: always
      sample: 0.0.0.0
    port:
      description: Local port.
      type: int
      returned: always
      sample: 856
    v6only:
      description:
        - For IPv6 sockets, V(true) when the socket accepts IPv6 only (IPV6_V6ONLY), V(false) when a
          V(::) socket also accepts IPv4 (dual-stack). V(null) for IPv4 sockets, and for IPv6 sockets
          when the backend cannot tell (V(procfs), V(psutil)).
      type: bool
      returned: always
      sample: false
    ephemeral:
      description: V(true) for a UDP socket bound inside the host's ephemeral port range (likely client noise).
      type: bool
      returned: always
      sample: false
    inode:
      description: The socket's inode number; V(null) with the V(psutil) backend.
      type: int
      returned: always
      sample: 41235
    processes:
      description:
        - Every process holding the socket, sorted by pid. Empty when none was found (a kernel socket,
          a process that just exited, or a process the gather was not allowed to inspect).
      type: list
      elements: dict
      returned: always
      contains:
        pid:
          description: Process id.
          type: int
          returned: always
          sample: 812
        name:
          description: Process name (C(/proc/PID/comm), at most 15 characters on Linux).
          type: str
          returned: always
          sample: sshd
        user:
          description: Name of the effective user, V(null) if the uid has no name.
          type: str
          returned: always
          sample: root
        uid:
          description: Effective user id.
          type: int
          returned: always
          sample: 0
        exe:
          description: Path of the executable, V(null) where it cannot be read.
          type: str
          returned: always
          sample: /usr/sbin/sshd
        unit:
          description: The systemd unit the process runs in (from C(/proc/PID/cgroup)), or V(null).
          type: str
          returned: always
          sample: ssh.service
        start_time:
          description:
            - When the process started, in clock ticks after boot (C(/proc/PID/stat) field 22); V(null) off Linux.
            - With RV(sockets[].processes[].exe) it identifies the process, so a recycled pid is never mistaken for it.
          type: int
          returned: always
          sample: 1234567
coverage:
  description: What the gather could and could not see. Judge RV(sockets) only together with it.
  returned: success
  type: dict
  contains:
    backend:
      description: Backend used (V(auto) resolved per table in RV(coverage.sources)).
      type: str
      returned: always
      sample: auto
    sources:
      description: For each socket table (C(protocol/family)), the backend that read it.
      type: dict
      returned: always
      sample: {"tcp/ipv4": "netlink", "tcp/ipv6": "netlink", "udp/ipv4": "netlink", "udp/ipv6": "netlink"}
    privileged:
      description: Whether the gather ran as root.
      type: bool
      returned: always
      sample: true
    complete:
      description:
        - V(true) when every socket table was read and every process could be inspected.
        - V(false) means the result is partial; RV(coverage.errors) says why. Never treat a partial gather as clean.
      type: bool
      returned: always
      sample: true
    sockets:
      description: Number of sockets returned.
      type: int
      returned: always
      sample: 12
    unowned_sockets:
      description: Sockets for which no owning process was found, as C(protocol address:port).
      type: list
      elements: str
      returned: always
      sample: ["tcp 0.0.0.0:2049"]
    processes_scanned:
      description: Processes whose file descriptors were read.
      type: int
      returned: always
      sample: 143
    processes_unreadable:
      description: Processes whose file descriptors could not be read.
      type: int
      returned: always
      sample: 0
    ephemeral_port_range:
      description: The host's ephemeral port range V([low, high]), V(null) where unknown.
      type: list
      elements: int
      returned: always
      sample: [32768, 60999]
    errors:
      description: What could not be read. Non-empty exactly when RV(coverage.complete) is V(false).
      type: list
      elements: str
      returned: always
      sample: []
    notes:
      description: Facts about the gather that do not make it partial (fallbacks, IPv6 disabled, unprivileged run).
      type: list
      elements: str
      returned: always
      sample: []
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.portwarden.compliance.plugins.module_utils.gather_sockets import (
    BACKENDS,
    PROTOCOLS,
    GatherError,
    PsutilMissing,
    gather_listening_sockets,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backend=dict(type='str', default='auto', choices=list(BACKENDS)),
            protocols=dict(type='list', elements='str', default=list(PROTOCOLS), choices=list(PROTOCOLS)),
        ),
        supports_check_mode=True,
    )
    try:
        result = gather_listening_sockets(backend=module.params['backend'], protocols=module.params['protocols'])
    except PsutilMissing:
        module.fail_json(msg=missing_required_lib('psutil', reason='for the psutil backend (the default off Linux)'))
    except GatherError as exc:
        module.fail_json(msg='Gathering listening sockets failed: %s' % exc)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
