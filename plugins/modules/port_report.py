#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: port_report
short_description: Write the fleet report of port audits and gate a deployment on it
version_added: 0.1.0
description:
  - Collects the M(portwarden.compliance.port_audit) result of every host of the play and writes the
    fleet report once, on the controller, as JSON (schema C(docs/report.schema.json)), JUnit XML,
    Markdown, self-contained HTML and Prometheus text format.
  - Every host of the play appears in the report. Hosts that were unreachable, whose audit failed
    or that never ran it are V(unknown), with the reason. A host the run never saw is never
    counted compliant.
  - When a previous JSON report is in O(report_dir), each host lists the findings that are new
    since it and those that were resolved. The previous report is kept under C(history/), which
    keeps the newest O(history_keep).
  - The formats are written as one set. Each goes to a temporary file first; only when all are
    written are they renamed over the reports, the JSON last. A failure before that (a full disk)
    leaves the previous set untouched and fails the task, saying so. The JSON names the run
    (C(run_id)) and the size and sha256 of every other file of its set, so C(portwarden gate)
    refuses a set that a crash between two renames left mixed.
  - One run at a time writes in a directory (a lock on the directory), from reading the
    previous report to the last rename, so two runs at once never interleave their files.
  - Nothing in O(report_dir) is followed. A link, FIFO or device at a report's path is never opened
    (the previous report is then not read, with a warning) and is replaced by the new report; a
    C(history/) that is a link is refused. New files get mode 0644, less the umask. A report
    directory that other users may write to is refused, unless it is sticky and owned by the user
    running the task.
  - Then it gates. The task fails when a host has a finding at or above O(fail_on), or is unknown
    (unless O(fail_on_unknown=false)). The message names what drifted (host, protocol, address and
    port, where, rule and severity), the unknown hosts with their reasons, and the report paths.
  - With C(serial), hosts of later batches have no result yet, so the report is written after the last batch.
  - Reports are written in check mode too. They are the output of a run that changes no host.
author:
  - portwarden contributors (@portwarden)
extends_documentation_fragment:
  - portwarden.compliance.attributes
  - portwarden.compliance.attributes.INFO_MODULE
  - portwarden.compliance.attributes.ACTION
options:
  report_dir:
    description: Directory on the controller for the reports (created if missing).
    type: path
    required: true
  formats:
    description: Which reports to write.
    type: list
    elements: str
    choices: [json, junit, markdown, html, prometheus]
    default: [json, junit, markdown, html, prometheus]
  results_var:
    description: The variable each host registered its M(portwarden.compliance.port_audit) result in.
    type: str
    default: port_compliance_audit
  hosts:
    description: The hosts of the report. Defaults to every host of the play (C(ansible_play_hosts_all)).
    type: list
    elements: str
  policy_info:
    description:
      - The policy's name, sha256 and rules, as returned by M(portwarden.compliance.port_policy_validate)
        in its C(info) result.
      - Defaults to the name and sha256 found in the audit results.
    type: dict
  history_keep:
    description:
      - How many previous JSON reports to keep under C(history/); older ones are deleted.
      - Only portwarden's own history files (regular files it named, owned by the user running the task)
        are ever deleted.
      - V(0) keeps none, and deletes portwarden's history files already there.
    type: int
    default: 30
  fail_on:
    description: Fail when a host has a drift finding at or above this severity; V(never) does not gate on drift.
    type: str
    choices: [never, info, low, medium, high, critical]
    default: never
  fail_on_unknown:
    description: Fail when a host is unknown or its verdict is incomplete (partial gather).
    type: bool
    default: true
  scope:
    description:
      - Whether this run writes the fleet report or a part of it.
      - V(fleet) writes the fleet report's files in O(report_dir), with the previous report's diff and history.
      - V(part) writes one set under C(parts/RUN_ID/) in O(report_dir). It never reads or touches the fleet
        report, never reads another part as previous, and never overwrites another part. The
        C(portwarden merge) command or M(portwarden.compliance.port_report_merge) makes the fleet report of parts.
      - V(auto) is V(part) when the report's hosts are not every host of the inventory (C(groups['all']), for
        example with C(--limit)), when C(awx_job_slice_count) (or C(tower_job_slice_count)) is more than 1, or
        when the job runs in an AWX workflow (C(awx_workflow_job_id) or C(tower_workflow_job_id) is set), else
        V(fleet). AWX gives each slice of a sliced job a pared-down inventory and no slice variable of its own;
        every slice is a workflow node, so V(auto) writes a part there (a plain workflow node writes one too,
        which fails safe, and is merged like any part).
      - The run id is C(awx-JOB_ID-SUFFIX) when AWX's C(awx_job_id) (or C(tower_job_id)) is set (a random suffix
        keeps a relaunch apart), else 32 random hex digits. The JSON report's C(scope) names the kind, the run id,
        the hosts covered, the policy sha256, the registry digest and the AWX job.
    type: str
    choices: [auto, fleet, part]
    default: auto
seealso:
  - module: portwarden.compliance.port_audit
  - module: portwarden.compliance.port_report_merge
'''

EXAMPLES = r'''
- name: Write the fleet report and fail on high drift or unknown hosts
  portwarden.compliance.port_report:
    report_dir: "{{ playbook_dir }}/reports"
    fail_on: high
  run_once: true
'''

RETURN = r'''
paths:
  description: The report files written, by format.
  returned: when written
  type: dict
  sample: {"json": "/srv/reports/portwarden-report.json", "html": "/srv/reports/portwarden-report.html"}
summary:
  description: Counts of hosts by status and of drift findings by severity.
  returned: when written
  type: dict
  sample: {"hosts": 12, "compliant": 9, "drift": 2, "unknown": 1,
           "findings_by_severity": {"info": 0, "low": 0, "medium": 1, "high": 2, "critical": 0}}
gate:
  description: The gate's settings, exit code (0 compliant, 1 drift, 2 unknown), failing hosts and summary lines.
  returned: when written
  type: dict
generated_at:
  description: When the report was generated (UTC).
  returned: when written
  type: str
  sample: "2026-11-26T22:40:00Z"
run_id:
  description: Names this run; the JSON report carries it with the sha256 of every other file of its set.
  returned: when written
  type: str
  sample: "0f4c2a9e8b7d4c1f9a3e6b5d2c8f7a10"
history:
  description: The previous report kept under C(history/) (its file name, or null) and the history files retention deleted.
  returned: when written
  type: dict
  sample: {"kept": "portwarden-report-20261126T224000Z.json", "pruned": ["portwarden-report-20261020T224000Z.json"]}
scope:
  description: What the report covers (the JSON report's C(scope)).
  returned: when written
  type: dict
  sample: {"kind": "part", "run_id": "awx-4711-0f4c2a9e8b7d4c1f", "hosts": ["web-1", "web-2"],
           "policy_sha256": "9f2c...", "registry_digest": "1be0...", "awx": {"job_id": 4711}}
stats:
  description:
    - The summary the role publishes with M(ansible.builtin.set_stats) as C(portwarden), for a later AWX workflow node.
    - C(hosts) is a count. C(gate_exit_code) is 0 compliant, 1 drift, 2 unknown. C(report_json_path) is null without
      the JSON format.
  returned: when written
  type: dict
  sample: {"scope": "fleet", "run_id": "0f4c2a9e8b7d4c1f9a3e6b5d2c8f7a10", "hosts": 12, "compliant": 9, "drift": 2,
           "unknown": 1, "worst_severity": "high", "gate_exit_code": 2,
           "report_json_path": "/srv/reports/portwarden-report.json"}
pending:
  description: Hosts of later C(serial) batches; the report waits for them.
  returned: when deferred
  type: list
  elements: str
'''
