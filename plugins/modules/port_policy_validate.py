#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: port_policy_validate
short_description: Validate a portwarden policy on the controller
version_added: 0.1.0
description:
  - Loads a policy (a file or a mapping) on the controller and validates it against the published
    JSON Schema and the checks a schema cannot express. No host is contacted.
  - An invalid policy fails the task with every error, each naming the file, the path inside it and
    what was expected.
  - "Validates the overlays of every host of O(hosts) too, from each host's variables C(port_compliance_policy_overlay)
    and C(port_compliance_policy_overlay_*), so that a bad overlay stops the play before any host is contacted. Each error
    names the host and the variable, for example C(host web3: port_compliance_policy_overlay.rules[0].match.ports: ...)."
  - Run it once (C(run_once)) before touching any host. The role P(portwarden.compliance.port_compliance#role)
    does so.
author:
  - portwarden contributors (@portwarden)
extends_documentation_fragment:
  - portwarden.compliance.attributes
  - portwarden.compliance.attributes.INFO_MODULE
  - portwarden.compliance.attributes.ACTION
options:
  policy:
    description:
      - A path to a YAML or JSON policy file, looked up like other task files, or a mapping.
      - Defaults to the bundled baseline, under which ports IANA has not assigned stay closed.
    type: raw
  hosts:
    description:
      - The hosts whose overlays to validate, by inventory name. Their variables are read from C(hostvars), as
        Ansible gives them there (inventory, C(host_vars/), C(group_vars/), C(set_fact), extra vars; host over
        group, extra vars over all). An overlay set as a play, role or task variable is refused.
      - Defaults to every host of the play (C(ansible_play_hosts_all)). V([]) validates no overlay.
    type: list
    elements: str
requirements:
  - jsonschema and PyYAML on the controller.
seealso:
  - module: portwarden.compliance.port_audit
'''

EXAMPLES = r'''
- name: Validate the fleet policy once, before any host is touched
  portwarden.compliance.port_policy_validate:
    policy: policies/fleet.yml
  run_once: true
  register: validated

- name: Audit with the validated policy
  portwarden.compliance.port_audit:
    policy: "{{ validated.policy }}"
  become: true
'''

RETURN = r'''
policy:
  description: The validated policy as a mapping, ready to pass to M(portwarden.compliance.port_audit).
  returned: success
  type: dict
source:
  description: Where the policy came from (the path as given, or V(policy (inline))).
  returned: success
  type: str
  sample: policies/fleet.yml
info:
  description: The policy's name, the sha256 of its canonical JSON and its rules (id, severity, description).
  returned: success
  type: dict
  sample: {"name": "fleet", "sha256": "3b1f...", "rules": [{"id": "iana-unassigned-closed", "severity": "high",
           "description": "Ports IANA has not assigned must stay closed"}]}
overlays:
  description:
    - The hosts with overlays, each with the sha256 of its effective policy and the C(overlays) applied (variable,
      sha256, rules added, number of waivers). Pass it to M(portwarden.compliance.port_audit)'s O(portwarden.compliance.port_audit#module:validated_overlays).
  returned: success
  type: dict
  sample: {"web3": {"sha256": "9c0e...", "overlays": [{"variable": "port_compliance_policy_overlay", "sha256": "77aa...",
                                                       "rules": ["web3-metrics"], "waivers": 0}]}}
errors:
  description: Every problem found, one line each, sorted by path (overlay errors sorted by host, variable and path).
  returned: failure
  type: list
  elements: str
  sample: ["policy.yml: rules[2].severity: 'hihg' is not one of info, low, medium, high, critical (did you mean 'high'?)"]
'''
