# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Gather and evaluate one host from an action plugin: shared by port_audit and port_remediate."""

from __future__ import annotations

import datetime

from ansible.errors import AnsibleActionFail

from ansible_collections.portwarden.compliance.plugins.module_utils import registry
from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import (
    PolicyError,
    compile_policy,
    evaluate_host,
    policy_digest,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_check import format_path, parse_date
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_overlay import (
    OverlayError,
    collect_overlays,
    compile_host_policy,
    effective_digest,
    overlay_problems,
    overlay_records,
    overlay_variables,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_ports import IANA_SETS, named_set
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import PROTOCOLS
from ansible_collections.portwarden.compliance.plugins.plugin_utils.overlay_vars import (
    read_overlay_variables,
    stray_overlay_problems,
)
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import (
    PolicyInvalid,
    load_host_overlays,
    load_policy,
)
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_resolve import resolve_policy

GATHER_MODULE = 'portwarden.compliance.listening_sockets_info'
_CAUSE_CHARS = 600  # of the module's output kept in the reason: the end, where a failure says what went wrong

# The options port_audit and port_remediate share.
AUDIT_ARGUMENT_SPEC = {
    'policy': {'type': 'raw'},
    'backend': {'type': 'str', 'default': 'auto', 'choices': ['auto', 'netlink', 'procfs', 'psutil']},
    'protocols': {'type': 'list', 'elements': 'str', 'default': ['tcp', 'udp'], 'choices': ['tcp', 'udp']},
    'namespaces': {'type': 'str', 'default': 'host', 'choices': ['host', 'all']},
    'nat': {'type': 'str', 'default': 'auto', 'choices': ['auto', 'off']},
    'as_of': {'type': 'str'},
    'groups': {'type': 'list', 'elements': 'str'},
    'policy_sha256': {'type': 'str'},
    'validated_overlays': {'type': 'dict'},
}


def _build_shared_caches():
    """Build in ansible-playbook's main process what evaluating any host needs first: strptime's parser
    (parse_date), the IANA service names and port sets per protocol.

    The strategy imports this action there before it forks a worker per host; each worker inherits them
    instead of building its own (about 5 ms per host)."""
    parse_date('2000-01-01')
    for protocol in PROTOCOLS:
        registry.service_names(protocol)
        for name in IANA_SETS:
            named_set(name, protocol)


_build_shared_caches()


def prepare_audit(action, args, task_vars=None):
    """``(compiled policy, today)``; a bad policy, overlay or date fails the task before the host is touched.

    With ``task_vars``, the host's overlays (its variables port_compliance_policy_overlay[_*]) are merged in: the
    compiled policy is the host's effective one."""
    today = datetime.date.today()
    if args['as_of']:
        today = parse_date(args['as_of'])
        if today is None:
            raise AnsibleActionFail('as_of: %r is not a date; expected YYYY-MM-DD' % args['as_of'])
    policy, source = resolve_policy(action, args['policy'])
    try:
        if args['policy_sha256'] and isinstance(policy, dict) and policy_digest(policy) == args['policy_sha256']:
            # The very data port_policy_validate checked (the role validates once, then audits every
            # host): compiling still refuses what it cannot compile, without the schema pass per host.
            loaded = policy
        else:
            loaded = load_policy(policy, source)
        compiled = compile_policy(loaded)
        if task_vars is not None:
            compiled = _host_policy(action, task_vars, args, loaded, compiled)
    except PolicyInvalid as exc:
        raise AnsibleActionFail('invalid policy:\n%s' % '\n'.join(exc.errors), result={'errors': exc.errors}) from None
    except PolicyError as exc:
        raise AnsibleActionFail('invalid policy: %s: %s' % (source, exc)) from None
    return compiled, today


def _host_policy(action, task_vars, args, loaded, compiled):
    """The compiled policy of this host: ``compiled`` itself without overlays, else the policy with them merged.

    Overlays port_policy_validate checked (``validated_overlays``, its digest per host) skip the schema pass; the
    checks in pure Python run again either way, so an overlay changed since is judged whole."""
    if not overlay_variables(task_vars):
        return compiled  # no overlay anywhere: hostvars, which costs a variable pass per host, is not read
    host = task_vars.get('inventory_hostname', action._play_context.remote_addr)
    stray = stray_overlay_problems(task_vars, host)
    if stray:
        raise PolicyInvalid(stray)
    hostvars = task_vars.get('hostvars') or {}
    if host not in hostvars:
        return compiled
    variables, errors = read_overlay_variables(hostvars[host], host)
    if errors:
        raise PolicyInvalid(errors)
    if not variables:
        return compiled
    groups = args['groups'] if args['groups'] is not None else task_vars.get('group_names', [])
    try:
        overlays = collect_overlays(variables)
    except OverlayError as exc:
        raise PolicyInvalid(['host %s: %s: %s' % (host, format_path(exc.path), exc)]) from None
    if not overlays:
        return compiled
    validated = (args['validated_overlays'] or {}).get(host)
    digest = effective_digest(compiled.digest, overlay_records(overlays))
    if isinstance(validated, dict) and validated.get('sha256') == digest:
        problems, warnings = overlay_problems(loaded, overlays, host, groups)
        if problems:
            raise PolicyInvalid(['host %s: %s: %s' % (host, format_path([variable] + path), message)
                                 for variable, path, message in problems])
        warnings = ['host %s: %s' % (host, text) for text in warnings]
    else:
        overlays, warnings = load_host_overlays(loaded, variables, host, groups)
    return compile_host_policy(loaded, overlays, compiled.digest, warnings)


def audit_host(action, task_vars, args, compiled, today):
    """Gather on the host (one module round trip) and evaluate on the controller: ``(audit, gathered)``.

    ``gathered`` is None when the gather failed or its result is malformed; the audit is then unknown with the reason.
    """
    gathered = action._execute_module(module_name=GATHER_MODULE,
                                      module_args={'backend': args['backend'], 'protocols': args['protocols'],
                                                   'namespaces': args['namespaces'], 'nat': args['nat']},
                                      task_vars=task_vars)
    host = task_vars.get('inventory_hostname', action._play_context.remote_addr)
    groups = args['groups'] if args['groups'] is not None else task_vars.get('group_names', [])
    if gathered.get('failed'):
        audit = evaluate_host(None, compiled, host, groups, today)
        audit['warnings'].extend(compiled.overlay_warnings)
        audit['reasons'] = [gather_failure(gathered)]
        return audit, None
    audit = evaluate_host(gathered, compiled, host, groups, today)
    audit['warnings'].extend(compiled.overlay_warnings)
    if audit['coverage'] is None:
        # Malformed: what the verdict refused to read, remediation (protected holders, namespaces) must not read either.
        return audit, None
    return audit, gathered


def _one_line(text, limit):
    """The end of ``text`` (its last lines, where an error says what went wrong) as one line of at most ``limit``."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    joined = ' | '.join(lines)
    return joined if len(joined) <= limit else '...' + joined[-limit:]


def gather_failure(gathered):
    """The reason of a failed gather: Ansible's message, and what the module printed when it printed no result.

    When the module's output is not a result ("Module result deserialization failed", a broken interpreter),
    Ansible keeps it in ``module_stderr``, ``module_stdout`` and ``rc``: the cause is there.
    """
    reason = 'gather failed: %s' % _one_line(gathered.get('msg') or 'no message', _CAUSE_CHARS)
    details = []
    if gathered.get('rc') is not None:
        details.append('rc %s' % _one_line(gathered['rc'], 20))
    for key in ('module_stderr', 'module_stdout'):
        if gathered.get(key) and str(gathered[key]).strip():
            details.append('%s: %s' % (key.replace('module_', ''), _one_line(gathered[key], _CAUSE_CHARS)))
            break  # stderr says why; stdout only when stderr is silent
    return reason + (' (%s)' % '; '.join(details) if details else '')
