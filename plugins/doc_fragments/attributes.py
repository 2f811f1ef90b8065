# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):

    # Standard attributes every module of the collection declares.
    DOCUMENTATION = r'''
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
'''

    # For action plugins, which run on the controller (and may call a module on the host).
    ACTION = r'''
options: {}
attributes:
  action:
    support: full
    description: Runs on the controller as an action plugin.
  async:
    support: none
    description: Cannot run asynchronously.
'''

    # For modules that only read state.
    INFO_MODULE = r'''
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
'''

    # Options port_audit and port_remediate share (plugin_utils/audit_host.AUDIT_ARGUMENT_SPEC).
    AUDIT = r'''
options:
  policy_sha256:
    description:
      - The C(info.sha256) that M(portwarden.compliance.port_policy_validate) returned for O(policy). When it matches
        the sha256 of O(policy), the policy is not checked against the schema again, only compiled (the role validates
        once, then audits every host). Pass nothing else here.
    type: str
  validated_overlays:
    description:
      - The C(overlays) that M(portwarden.compliance.port_policy_validate) returned (host name to the sha256 of the
        host's effective policy). A host whose overlays give that very digest skips the schema pass of its overlays;
        any other overlay is validated whole here. Pass nothing else here.
      - Overlays themselves are not an option; they are the host's variables C(port_compliance_policy_overlay) and
        C(port_compliance_policy_overlay_*) (rules and waivers for this host, merged after the policy's in sorted
        variable name order). An invalid overlay fails the task before the host is touched, naming the host and the
        variable.
    type: dict
  backend:
    description: Passed to M(portwarden.compliance.listening_sockets_info).
    type: str
    choices: [auto, netlink, procfs, psutil]
    default: auto
  namespaces:
    description:
      - Passed to M(portwarden.compliance.listening_sockets_info). V(host) audits the network namespace the gather runs in
        (the host's). V(all) audits every network namespace of the host, containers included, each finding saying where
        (C(findings[].where)); rules and waivers choose namespaces with C(namespaces).
      - V(all) needs root (C(become)); without it the gather is partial and the verdict V(unknown).
    type: str
    choices: [host, all]
    default: host
  nat:
    description:
      - Passed to M(portwarden.compliance.listening_sockets_info). V(auto) also reads the host's NAT rules, so a port that
        a DNAT or REDIRECT publishes with no socket on the host (Docker without its proxy, netavark, kube-proxy) is
        judged by the same rules as a listener (C(findings[].via=nat)); a nat table that cannot be read makes the verdict
        V(unknown). V(off) judges listeners only, and the result's C(notes) say that the NAT was not read.
      - Published ports are not remediated yet (closing them takes a block before NAT, at prerouting); their findings
        stay drift with C(remediation.status=unavailable).
    type: str
    choices: [auto, 'off']
    default: auto
'''
