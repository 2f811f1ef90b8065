#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: port_remediate
short_description: Close a host's listening-port drift safely, then audit it again
version_added: 0.1.0
description:
  - Audits the host like M(portwarden.compliance.port_audit), then closes each drift finding whose rule
    (or O(default_strategy)) opts in to remediation, then gathers and evaluates again and reports each finding as
    V(remediated) or still V(drift). Nothing is remediated unless the policy or O(default_strategy) says so.
  - V(firewall) blocks the port with M(portwarden.compliance.port_block) in the nftables table C(inet portwarden);
    the service keeps running. It is the least destructive strategy, and what C(remediate=true) means.
  - "A port published by NAT (a finding C(via: nat): Docker without its userland proxy, netavark, a kube-proxy
    NodePort) is forwarded, so an input block does not close it. V(firewall) closes it before NAT, in the prerouting
    table C(inet portwarden_published) (O(portwarden.compliance.port_block#module:published)); a local listener on the
    same port keeps its input block. V(service) and V(kill) do not apply to it (V(unavailable), with the reason):
    the process behind the target is a container's, not portwarden's to end, and the rule would publish the port
    again. A published port range, and a port published only for the host's own traffic (OUTPUT), are V(unavailable)."
  - "A published port is V(remediated) only when a probe from the controller (outside the host) got no answer after
    its block and the block's drop counted packets during that probe (the host reads the count, with
    M(portwarden.compliance.port_block) O(portwarden.compliance.port_block#module:state=read), just before and just
    after it). That holds for TCP and UDP, and on a second run, when the block was already in place. An answer after
    the block, a count that did not move (the probe was stopped on its way) or went down (the table was rewritten
    meanwhile) keeps the finding V(drift), remediation V(not_verified), with what was seen. Where the count cannot
    be read, only a TCP port the probe connected to before the block and not after it is V(remediated)."
  - V(service) stops and disables (optionally masks) the systemd unit that owns the socket, with
    M(ansible.builtin.systemd_service). Only a service of the system manager in O(service_slices) is stopped; a unit
    of a user manager (C(user@1000.service/app.slice/ssh.service) is that user's C(ssh.service), not the system's),
    of a container's own systemd, or of a cgroup the system manager did not make is refused as V(protected).
  - V(kill) ends the owning processes with M(portwarden.compliance.port_kill), only if each pid still belongs
    to the process that was gathered (same start time and executable).
  - "Safety rails: a host whose verdict is unknown or partial is not touched; the TCP port of the live
    connection (the connection's port, and C(SSH_CONNECTION) on the host; with a connection without a port, such
    as C(local), every port a protected process listens on) is never blocked and the processes
    listening on it are never stopped or killed; PID 1 and O(protected_processes) are never touched. Such
    findings are reported with remediation status V(protected)."
  - In check mode nothing changes on the host; the diff shows every change a real run would make
    (the nftables table before and after, the units, the processes) and findings are marked V(planned).
author:
  - portwarden contributors (@portwarden)
extends_documentation_fragment:
  - portwarden.compliance.attributes
  - portwarden.compliance.attributes.ACTION
  - portwarden.compliance.attributes.AUDIT
attributes:
  check_mode:
    support: full
    details:
      - Every host module runs in check mode; the verdict is the host's as it is.
  diff_mode:
    support: full
  idempotent:
    description: When run twice in a row outside check mode with the same arguments, the second run reports no change.
    support: full
    details:
      - A second run finds the blocks in place and the processes gone, and reports C(changed=false).
options:
  policy:
    description: The policy, as for M(portwarden.compliance.port_audit). Rules say how their drift is closed with C(remediate).
    type: raw
  mode:
    description:
      - V(remediate) closes drift as described above.
      - V(report) only audits, exactly as M(portwarden.compliance.port_audit) does (the role uses one task for both modes).
    type: str
    choices: [report, remediate]
    default: remediate
  lift_firewall:
    description:
      - First remove every portwarden firewall block (the tables C(inet portwarden) and C(inet portwarden_published),
        and O(firewall_persist_path) if set),
        in either mode. In V(remediate) mode the blocks the policy still asks for are put back.
    type: bool
    default: false
  protocols:
    description: Transport protocols to gather and remediate.
    type: list
    elements: str
    choices: [tcp, udp]
    default: [tcp, udp]
  as_of:
    description: The date waivers are judged on (V(YYYY-MM-DD)). Defaults to the controller's today.
    type: str
  groups:
    description: Inventory groups of the host, for scoped rules and waivers. Defaults to the host's C(group_names).
    type: list
    elements: str
  default_strategy:
    description: The strategy for drift whose rule does not set C(remediate). V(none) leaves it alone.
    type: str
    choices: [none, firewall, service, kill]
    default: none
  protected_processes:
    description:
      - Shell-style patterns of the processes never stopped or killed, nor the system units they run in. With a
        connection that has no TCP port of its own (C(local), as C(ansible-pull) runs), every TCP port such a process
        listens on is never blocked either, since any of them may be the port sshd serves.
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
  protected_ports:
    description: TCP ports never blocked and whose listeners are never stopped, besides the connection's own port.
    type: list
    elements: int
    default: []
  kill_timeout:
    description: Seconds between SIGTERM and SIGKILL for the V(kill) strategy.
    type: float
    default: 10
  service_mask:
    description: Also mask the units the V(service) strategy stops.
    type: bool
    default: false
  service_slices:
    description:
      - The top-level slices whose services the V(service) strategy may stop (C(/proc/PID/cgroup) of the process must
        be C(/<slice>/[<sub>.slice/...]<unit>.service)). A service elsewhere is refused as V(protected).
      - A unit of another systemd manager is always refused, whatever this says; one under C(user@UID.service) (the
        user's own manager) or under a container's scope. The strategy never reaches a user manager.
    type: list
    elements: str
    default: [system.slice]
  firewall_persist_path:
    description:
      - Also write the portwarden table to this file on the host, for the system's nftables service to load at boot
        (see M(portwarden.compliance.port_block)).
    type: path
  probe_addresses:
    description:
      - Addresses of the host (at most one per family) that the controller probes published ports at, before and after
        their prerouting block. A NAT rule that matches one destination address is probed at that address.
      - Empty (the default) uses the connection's address (C(ansible_host), an IP address or a name resolved on the
        controller). A host with no address the controller can reach is not verified (V(not_verified)), never assumed closed.
    type: list
    elements: str
    default: []
  probe_timeout:
    description: Seconds a probe waits for a TCP connection or a UDP answer before it calls the port silent.
    type: float
    default: 2.0
requirements:
  - Python 3.8 to 3.13 on the managed host, which runs the gather, M(portwarden.compliance.port_block) and
    M(portwarden.compliance.port_kill).
  - jsonschema and PyYAML on the controller; C(nft) on hosts that use the V(firewall) strategy; systemd for V(service).
notes:
  - Run it with C(become); blocking ports, stopping units and ending other users' processes need root.
seealso:
  - module: portwarden.compliance.port_audit
  - module: portwarden.compliance.port_block
  - module: portwarden.compliance.port_kill
'''

EXAMPLES = r'''
- name: Close drift the policy opts in to remediate, firewall by default
  portwarden.compliance.port_remediate:
    policy: policies/fleet.yml
    default_strategy: firewall
  become: true
  register: remediation

- name: See what remediation would do, changing nothing
  portwarden.compliance.port_remediate:
    policy: policies/fleet.yml
  become: true
  check_mode: true
  diff: true
'''

RETURN = r'''
status:
  description: The verdict after remediation, V(compliant), V(drift) or V(unknown), as for M(portwarden.compliance.port_audit).
  returned: always
  type: str
  sample: compliant
findings:
  description:
    - The findings as for M(portwarden.compliance.port_audit). A finding closed by this run, or covered by a live portwarden
      firewall block, has status V(remediated). Findings a strategy applied to carry C(remediation).
  returned: always
  type: list
  elements: dict
  contains:
    remediation:
      description:
        - C(strategy), C(target), C(reason) and C(status), one of V(planned) (check mode), V(applied), V(verified)
          (the gather afterwards shows it closed; for a published port, the probes too), V(not_verified), V(protected),
          V(unavailable) or V(failed). For a published port, C(target) names the prerouting block and C(reason) what
          the probes saw.
      type: dict
      returned: when a strategy applies to the finding
      sample: {"strategy": "firewall", "status": "verified", "target": "tcp 0.0.0.0 port 856", "reason": "blocked by the portwarden firewall"}
probes:
  description:
    - The probes made from the controller in a real (not check mode) run, one per prerouting block of a published port
      and one per input block of the host that an address of the host reaches (TCP only).
    - C(block) names the block; C(address) is where the controller connected (V(null) when no probe could be made,
      then C(why) says why); C(before) and C(after) are what it saw before and after the block, V(open), V(refused),
      V(blocked) (no answer in O(probe_timeout)) or an error the connect gave (C(error) and its text); C(after) is
      V(null) when the block was not applied. A probe is a TCP connect, or for a published UDP port a datagram.
    - For a published port probed after its block, C(counter_before) and C(counter_after) are the packets the block's
      drop had counted just before and just after the second probe (V(null) when they could not be read).
  returned: in remediate mode
  type: list
  elements: dict
  sample: [{"block": "tcp 0.0.0.0 port 856 before NAT (prerouting)", "address": "192.0.2.1", "before": "open",
            "after": "blocked", "counter_before": 0, "counter_after": 2}]
remediation:
  description:
    - C(actions) taken on the host, each with C(strategy), C(target), C(rules), C(outcome) and C(detail); C(skipped),
      why nothing was done (an unknown verdict), or V(null); C(verified), whether a gather after the changes judged them.
  returned: always
  type: dict
  sample: {"actions": [{"strategy": "firewall", "target": "tcp 0.0.0.0 port 856", "rules": ["iana-unassigned-closed"],
                        "outcome": "applied", "detail": "nftables block added to table inet portwarden"}],
           "skipped": null, "verified": true}
summary:
  description: Counts of findings, with C(remediated).
  returned: always
  type: dict
reasons:
  description: Why the verdict is or may be incomplete.
  returned: always
  type: list
  elements: str
coverage:
  description: The coverage of the last gather.
  returned: always
  type: dict
policy:
  description:
    - The policy's name and the sha256 of the host's effective policy. Without overlays it is the sha256 of the policy's
      canonical JSON.
    - With overlays from the host's variables, also C(base_sha256) (the policy's own sha256) and C(overlays), one per
      variable applied, in order, with its C(variable) name, C(sha256), the ids of the C(rules) it added and the number
      of C(waivers).
  returned: always
  type: dict
  sample: {"name": "fleet", "sha256": "9c0e...", "base_sha256": "3b1f...",
           "overlays": [{"variable": "port_compliance_policy_overlay", "sha256": "77aa...", "rules": ["web3-metrics"],
                         "waivers": 0}]}
registry:
  description: The IANA registry data the verdict used.
  returned: always
  type: dict
'''
