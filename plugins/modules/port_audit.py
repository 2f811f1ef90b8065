#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: port_audit
short_description: Audit a host's listening sockets against a portwarden policy
version_added: 0.1.0
description:
  - Loads a policy on the controller (a file next to the playbook, or a mapping) and validates it
    against the published JSON Schema before touching the host. An invalid policy fails the task
    with every error, each naming the file, the path inside it and what was expected.
  - Gathers the host's listening sockets with M(portwarden.compliance.listening_sockets_info) in one
    round trip, then evaluates them on the controller.
  - Returns the host's RV(status) (V(compliant), V(drift) or V(unknown)), its RV(findings), the gather
    RV(coverage) and a RV(summary). Waivers that expire soon come back as warnings.
  - V(unknown) whenever the gather cannot support a verdict, because it failed, its coverage is
    partial, its result is malformed (not the shape the gather writes, checked on the controller before
    judging), or a rule constrains processes the gather could not see. An unknown host is never
    reported compliant.
  - Changes nothing on the host. It fails the task only when told to gate, with O(fail_on) or
    O(fail_on_unknown).
author:
  - portwarden contributors (@portwarden)
extends_documentation_fragment:
  - portwarden.compliance.attributes
  - portwarden.compliance.attributes.INFO_MODULE
  - portwarden.compliance.attributes.ACTION
  - portwarden.compliance.attributes.AUDIT
options:
  policy:
    description:
      - The policy, as a path to a YAML or JSON file or as a mapping.
      - A relative path is looked up like other task files, next to the playbook, in its C(files/)
        directory and in the role.
      - Defaults to the bundled baseline, under which ports IANA has not assigned stay closed.
      - The policy language is described by C(docs/policy.schema.json) in the collection.
    type: raw
  protocols:
    description: Transport protocols to gather and audit.
    type: list
    elements: str
    choices: [tcp, udp]
    default: [tcp, udp]
  fail_on:
    description:
      - Fail the task when the host has a finding, not waived, at or above this severity.
      - V(never) only reports.
    type: str
    choices: [never, info, low, medium, high, critical]
    default: never
  fail_on_unknown:
    description:
      - Fail the task when the verdict is unknown, or the gather was partial.
      - When not set, it follows O(fail_on). Gating on drift gates on unknown too, because unknown fails closed.
    type: bool
  as_of:
    description:
      - The date waivers are judged on (V(YYYY-MM-DD)). Defaults to the controller's today.
    type: str
  groups:
    description:
      - Inventory groups of the host, for rules and waivers scoped with C(group:NAME).
      - Defaults to the host's C(group_names).
    type: list
    elements: str
requirements:
  - jsonschema and PyYAML on the controller.
  - Python 3.8 to 3.13 on the managed host, which runs M(portwarden.compliance.listening_sockets_info).
notes:
  - The gather needs root to see the processes of every user; use C(become).
seealso:
  - module: portwarden.compliance.listening_sockets_info
'''

EXAMPLES = r'''
- name: Audit against the bundled baseline (IANA-unassigned ports closed)
  portwarden.compliance.port_audit:
  become: true
  register: audit

- name: Audit with the fleet policy and fail on high drift or an unknown verdict
  portwarden.compliance.port_audit:
    policy: policies/fleet.yml
    fail_on: high
  become: true

- name: Audit with an inline policy (allow-list mode)
  portwarden.compliance.port_audit:
    policy:
      policy_version: 1
      name: web-allow-list
      default: deny
      rules:
        - id: web
          match: {ports: [80, 443], protocols: [tcp]}
          expect: {processes: [nginx]}
        - id: ssh
          match: {ports: [22], protocols: [tcp]}
          expect: {processes: [sshd]}
  become: true
'''

RETURN = r'''
status:
  description: V(compliant), V(drift) (a finding not waived) or V(unknown) (the gather cannot support a verdict).
  returned: always
  type: str
  sample: drift
reasons:
  description:
    - Why the verdict is or may be incomplete (failed, partial or malformed gather, unknown findings). Empty when complete.
    - "A malformed gather result gives one reason, C(malformed gather result: PATH: expected ..., got ...), and no findings."
  returned: always
  type: list
  elements: str
  sample: []
findings:
  description: What breaks the policy, worst first. Waived findings stay in the list, marked as waived.
  returned: always
  type: list
  elements: dict
  contains:
    rule:
      description: The rule id, or V(default) for a socket no rule allows under C(default=deny).
      type: str
      returned: always
      sample: iana-unassigned-closed
    severity:
      description: One of V(info), V(low), V(medium), V(high), V(critical).
      type: str
      returned: always
      sample: high
    status:
      description: V(drift), V(waived), or V(unknown) when the rule could not be checked.
      type: str
      returned: always
      sample: drift
    protocol:
      description: V(tcp) or V(udp).
      type: str
      returned: always
      sample: tcp
    family:
      description: V(ipv4) or V(ipv6).
      type: str
      returned: always
      sample: ipv4
    address:
      description: Local address.
      type: str
      returned: always
      sample: 0.0.0.0
    v6only:
      description:
        - For an IPv6 socket, whether it accepts IPv6 only (V(true)) or IPv4 too (V(false), dual-stack, the usual
          C([::]) listener); V(null) for IPv4 and when the gather could not tell (procfs, psutil), which rules read
          as dual-stack.
      type: bool
      returned: always
      sample: false
    port:
      description: Local port.
      type: int
      returned: always
      sample: 856
    where:
      description:
        - The network namespace of the socket, named to stay the same from run to run. V(host) for the host's own (and with
          O(namespaces=host)); V(KIND:NAME) for a container (V(docker:web), V(kubernetes:shop/cart-5d9f); the first 12
          characters of its id when its name is unknown); V(netns:INODE) for any other namespace.
      type: str
      returned: always
      sample: podman:web
    namespace:
      description:
        - The socket's namespace as the gather returned it (inode, host, pid, container), V(null) with O(namespaces=host).
      type: dict
      returned: always
      sample: {"inode": 4026532312, "host": false, "pid": 2231, "container": {"kind": "podman", "id": "4f1c0a7e5b1d",
               "pod_uid": null, "name": "web"}}
    service:
      description: The IANA service name of the port for this protocol, V(null) if none.
      type: str
      returned: always
      sample: null
    processes:
      description: The processes holding the socket (pid, name, user, uid, exe, unit). Command lines are never included.
      type: list
      elements: dict
      returned: always
    waived:
      description: Whether a waiver covers the finding.
      type: bool
      returned: always
      sample: false
    waiver:
      description:
        - The waiver that covers the finding (rule, reason, ticket, approved_by, expires), or V(null).
        - A waiver bound to processes also carries the keys it was bound with (processes, users, exe, units); it
          covers a finding only when every process holding the socket matches them. When it does not, the finding
          stays drift and RV(findings[].message) names the holder it does not cover; when the holders are not known,
          the finding stays drift and RV(reasons) says the waiver could not be checked.
      type: dict
      returned: always
    waiver_expired:
      description: An expired waiver that would have covered the finding.
      type: dict
      returned: when a waiver matched but has expired
    via:
      description:
        - V(nat) for a port a DNAT or REDIRECT rule publishes (gathered with O(nat=auto)); absent for a listening socket.
        - Its RV(findings[].address) is the destination the rule matches (V(0.0.0.0) for any), RV(findings[].where) is
          V(host) (where the port is published) and RV(findings[].processes) are those of the target's owner.
      type: str
      returned: for a published port
      sample: nat
    port_end:
      description: The last port of the published range (RV(findings[].port) is the first port of it the rule is about).
      type: int
      returned: for a published port
      sample: 856
    exposure:
      description:
        - How the port is published, from the gather's C(exposures)
          (action, hooks, interface, target, source, table, chain, rule), and who answers behind it
          (C(owner.kind) V(namespace), V(local) or V(unknown), C(owner.where) as RV(findings[].where), C(owner.reason)).
      type: dict
      returned: for a published port
      sample: {"action": "dnat", "hooks": ["prerouting", "output"], "interface": "!docker0",
               "target": {"address": "172.17.0.2", "port": 80, "port_end": 80}, "source": "iptables-nft",
               "table": "ip nat", "chain": "DOCKER", "rule": "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 856 -j DNAT ...",
               "owner": {"kind": "namespace", "where": "docker:web", "reason": null}}
    message:
      description: One line a person can act on.
      type: str
      returned: always
      sample: >-
        tcp 0.0.0.0:856 (not an IANA-assigned service) must be closed but is listening (agent[4242] as nobody);
        rule iana-unassigned-closed: Ports IANA has not assigned must stay closed (outside the host's namespace the
        socket reads C(tcp 0.0.0.0:856 in podman:web))
notes:
  description:
    - What the verdict did not judge without making it unknown. A gather that did not read the NAT (from before NAT was read,
      or O(nat=off)) is judged as before, on its sockets alone, and says so here.
  returned: always
  type: list
  elements: str
  sample: []
summary:
  description: Counts of findings.
  returned: always
  type: dict
  sample: {"findings": 2, "drift": 1, "waived": 1, "unknown": 0, "remediated": 0,
           "drift_by_severity": {"info": 0, "low": 0, "medium": 0, "high": 1, "critical": 0}}
coverage:
  description: The gather coverage (see M(portwarden.compliance.listening_sockets_info)); V(null) when the gather failed.
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
  description: The IANA registry data the verdict used. Its date tells how old the idea of "unassigned" is.
  returned: always
  type: dict
  sample: {"date": "2026-08-17", "sha256": "4bbf00ef...", "records": 14533}
evaluated_on:
  description: The date waivers were judged on.
  returned: always
  type: str
  sample: "2026-11-26"
gate:
  description: The gate applied (fail_on, fail_on_unknown) and why it failed, if it did.
  returned: always
  type: dict
  sample: {"fail_on": "high", "fail_on_unknown": true, "failures": []}
'''
