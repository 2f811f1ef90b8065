#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: port_report_merge
short_description: Merge part reports of port audits into one fleet report and gate a deployment on it
version_added: 0.1.0
description:
  - Merges part reports (written by M(portwarden.compliance.port_report) with
    O(portwarden.compliance.port_report#module:scope=part) by AWX job slices, C(--limit) runs, hosts auditing
    themselves) and fleet reports into one fleet report in O(report_dir), in every format, on the controller. It is
    the C(portwarden merge) command as a task; both share one implementation.
  - Every expected host appears (O(inventory), O(hosts) or O(hosts_file); without them the hosts the parts name,
    with a warning). A host no part covers is V(unknown) (C(no report)). A host whose newest audit is older than
    O(max_age) is V(unknown) (C(stale)). A host in several parts takes the newest audit (a tie, the worse verdict),
    and its entry names the part it came from and every part that covered it (C(hosts[].part)).
  - Refused, and nothing written, when a part is bad (unreadable, truncated, not a portwarden report, another schema
    version, stamped more than 5 minutes in the future, tampered with, its hosts list disagreeing with its host
    entries, its summary or a host status contradicted by its hosts) unless O(skip_bad); when two parts claim one
    run id with other content; and when parts were judged under different policies or registry data unless
    O(allow_mixed_policies).
  - Nothing inside a directory is followed if it is a link; a FIFO, a device or a file over 1 GiB is never read; a
    directory other users may write to is refused.
  - The previous merged report in O(report_dir) gives each host's new and resolved findings and is kept under
    C(history/), as M(portwarden.compliance.port_report) does; the set is written the same way (one set, the JSON
    last, a lock on the directory, so two merges at once never interleave).
  - Then it gates as C(portwarden gate) does. The task fails on drift at or above O(fail_on), or on an unknown host
    unless O(allow_unknown).
  - In check mode it merges and renders, and reports what it would write, but writes nothing.
author:
  - portwarden contributors (@portwarden)
extends_documentation_fragment:
  - portwarden.compliance.attributes
  - portwarden.compliance.attributes.INFO_MODULE
  - portwarden.compliance.attributes.ACTION
options:
  parts:
    description:
      - Part or fleet JSON reports, or directories. A directory gives its C(parts/*/portwarden-report.json) and its
        C(*.json) reports.
    type: list
    elements: path
    default: []
  parts_dir:
    description:
      - A C(parts/) directory (C(REPORT_DIR/parts) of the runs that wrote parts); its C(*/portwarden-report.json).
      - C(parts/) of O(report_dir) is not read unless given here or in O(parts).
    type: path
  report_dir:
    description: Directory on the controller for the merged fleet report (created if missing).
    type: path
    required: true
  inventory:
    description:
      - Inventory sources whose hosts (C(all)) are the expected hosts, read by ansible-core's own inventory manager
        (any source a user has). A source no inventory plugin can read is an error.
      - Mutually exclusive with O(hosts) and O(hosts_file).
    type: list
    elements: str
  hosts:
    description: The expected hosts. Mutually exclusive with O(inventory) and O(hosts_file).
    type: list
    elements: str
  hosts_file:
    description: A file of the expected hosts, one a line (C(#) comments). Mutually exclusive with O(inventory) and O(hosts).
    type: path
  max_age:
    description: A host whose newest audit is older than this is V(unknown) (stale). Seconds, or a number with C(s), C(m), C(h) or C(d).
    type: str
  skip_bad:
    description: Make the hosts of a bad part V(unknown), with the reason, instead of refusing the merge.
    type: bool
    default: false
  allow_mixed_policies:
    description: Merge parts judged under different policies or registry data; the report lists each policy and its hosts (C(scope.policies)).
    type: bool
    default: false
  formats:
    description: Which reports to write.
    type: list
    elements: str
    choices: [json, junit, markdown, html, prometheus]
    default: [json, junit, markdown, html, prometheus]
  history_keep:
    description: How many previous merged JSON reports to keep under C(history/). V(0) keeps none.
    type: int
    default: 30
  fail_on:
    description: Fail when a host has a drift finding at or above this severity; V(never) does not gate on drift.
    type: str
    choices: [never, info, low, medium, high, critical]
    default: high
  allow_unknown:
    description: Do not fail on unknown hosts (not recommended; unknown fails closed).
    type: bool
    default: false
seealso:
  - module: portwarden.compliance.port_report
'''

EXAMPLES = r'''
- name: Merge the slices' parts against the whole inventory and gate on the fleet
  portwarden.compliance.port_report_merge:
    parts_dir: /srv/portwarden/parts
    report_dir: /srv/portwarden/fleet
    inventory: [/srv/inventory/production.yml]
    max_age: 2h
  run_once: true
'''

RETURN = r'''
paths:
  description: The merged report files written (or, in check mode, that would be), by format.
  returned: when merged
  type: dict
  sample: {"json": "/srv/portwarden/fleet/portwarden-report.json"}
summary:
  description: Counts of hosts by status and of drift findings by severity.
  returned: when merged
  type: dict
gate:
  description: The gate's settings, exit code (0 compliant, 1 drift, 2 unknown), failing hosts and summary lines.
  returned: when merged
  type: dict
generated_at:
  description: When the merged report was generated (UTC).
  returned: when merged
  type: str
run_id:
  description: Names this merge; the JSON report carries it with the sha256 of every other file of its set.
  returned: when merged
  type: str
history:
  description: The previous report kept under C(history/) (or null) and the history files retention deleted.
  returned: when merged
  type: dict
scope:
  description:
    - The merged report's C(scope), kind V(fleet), with each part merged (C(parts)), where the expected hosts came from,
      the parts skipped and the warnings.
  returned: when merged
  type: dict
skipped:
  description: Bad parts skipped with O(skip_bad) (file, reason, hosts made unknown or null).
  returned: when merged
  type: list
  elements: dict
stats:
  description: The summary published with M(ansible.builtin.set_stats) as C(portwarden) by the role's C(merge) entry point.
  returned: when merged
  type: dict
  sample: {"scope": "fleet", "run_id": "0f4c2a9e8b7d4c1f9a3e6b5d2c8f7a10", "hosts": 12, "compliant": 9, "drift": 2,
           "unknown": 1, "worst_severity": "high", "gate_exit_code": 2,
           "report_json_path": "/srv/portwarden/fleet/portwarden-report.json"}
check_mode:
  description: Whether this was a check-mode run (nothing written).
  returned: when merged
  type: bool
problems:
  description: Why no fleet report was written (a bad part, mixed policies, an unreadable inventory).
  returned: when refused
  type: list
  elements: str
'''
