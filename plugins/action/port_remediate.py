# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin port_remediate: audit a host, close the drift its policy lets us close, audit again.

gather -> evaluate -> plan (controller) -> firewall / service / kill (host modules) -> gather ->
evaluate -> verify. In check mode the modules run in check mode: nothing changes, the diff shows
what a real run would do, and the verdict is the one of the host as it is.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import bind_class
from ansible_collections.portwarden.compliance.plugins.module_utils.remediate_kill import DEFAULT_PROTECTED_NAMES
from ansible_collections.portwarden.compliance.plugins.module_utils.remediate_plan import (
    ALREADY_IN_PLACE,
    APPLIED,
    FAILED,
    PLANNED,
    PROTECTED,
    STRATEGIES,
    Protection,
    apply_outcomes,
    block_key,
    describe_block,
    describe_published,
    module_block,
    packet_count,
    plan_remediation,
    refused_actions,
    verify_remediation,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.remediate_probe import probe_addresses, probe_many, probe_target
from ansible_collections.portwarden.compliance.plugins.module_utils.report_sockets import HOST_WHERE
from ansible_collections.portwarden.compliance.plugins.plugin_utils.audit_host import (
    AUDIT_ARGUMENT_SPEC,
    GATHER_MODULE,
    audit_host,
    prepare_audit,
)

BLOCK_MODULE = 'portwarden.compliance.port_block'
KILL_MODULE = 'portwarden.compliance.port_kill'
SERVICE_MODULE = 'ansible.builtin.systemd_service'
# Connection plugins whose port is a TCP port on the managed host.
_NETWORK_CONNECTIONS = ('ssh', 'paramiko_ssh', 'paramiko', 'ansible.builtin.ssh', 'ansible.builtin.paramiko_ssh')

ARGUMENT_SPEC = dict(AUDIT_ARGUMENT_SPEC, **{
    'mode': {'type': 'str', 'default': 'remediate', 'choices': ['report', 'remediate']},
    'lift_firewall': {'type': 'bool', 'default': False},
    'default_strategy': {'type': 'str', 'default': 'none', 'choices': list(STRATEGIES)},
    'protected_processes': {'type': 'list', 'elements': 'str', 'default': list(DEFAULT_PROTECTED_NAMES)},
    'protected_ports': {'type': 'list', 'elements': 'int', 'default': []},
    'kill_timeout': {'type': 'float', 'default': 10.0},
    'service_mask': {'type': 'bool', 'default': False},
    'service_slices': {'type': 'list', 'elements': 'str', 'default': ['system.slice']},
    'firewall_persist_path': {'type': 'path'},
    'probe_addresses': {'type': 'list', 'elements': 'str', 'default': []},
    'probe_timeout': {'type': 'float', 'default': 2.0},
})


def _counters(answer):
    """``{block key: packets}`` of the host's published blocks in a port_block answer (its C(published) part); a block
    without a readable count is left out."""
    found = {}
    for entry in (answer or {}).get('counters') or []:
        packets = packet_count(entry.get('packets')) if isinstance(entry, dict) else None
        if packets is not None:
            found[block_key(dict(entry, where=HOST_WHERE))] = packets
    return found


def _unread(count):
    return 'unreadable' if count is None else count


def _unit_state(result):
    """A unit's state as systemd_service saw it before changing it, for the diff."""
    status = result.get('status') or {}
    return '%s, %s\n' % (status.get('ActiveState') or 'unknown', status.get('UnitFileState') or 'unknown')


def _module_error(result):
    return result.get('msg') or result.get('module_stderr') or 'failed without a message'


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        compiled, today = prepare_audit(self, args, task_vars)
        check_mode = bool(self._task.check_mode)

        # One task serves both modes, so a report-mode run pays for no skipped task on every host.
        diffs = []
        changed = False
        if args['lift_firewall']:
            self._lift_skipped = []
            changed = self._lift(args, task_vars, diffs)
            if self._lift_skipped:
                result.setdefault('warnings', []).append(
                    'lifting: %s no process is in, so portwarden never blocked there; nothing lifted in it'
                    % ', '.join(self._lift_skipped))
        before, gathered = audit_host(self, task_vars, args, compiled, today)
        if args['mode'] == 'report':
            result.update(before)
            result['changed'] = changed
            if diffs:
                result['diff'] = diffs
            result['msg'] = '%s is %s (%d drift, %d waived, %d unknown findings)' % (
                before['host'], before['status'], before['summary']['drift'], before['summary']['waived'],
                before['summary']['unknown'])
            return result
        ports = set(args['protected_ports'])
        connection_port = self._connection_port(task_vars)
        if connection_port is not None:
            ports.add(connection_port)
        # Without a connection port (local, as ansible-pull runs), every port a protected process listens on is kept.
        protection = Protection.for_host(gathered, ports, args['protected_processes'],
                                         portless_connection=None if connection_port is not None else self._connection_name())
        ports = set(protection.tcp_ports)
        plan = plan_remediation(before, compiled.remediation(), args['default_strategy'], protection, args['service_slices'])

        actions = refused_actions(before)
        outcomes = {'blocks': {}, 'services': {}, 'processes': {}, 'published': {}}
        live_blocks = []
        live_published = []
        # A published port is verified from outside the host: a probe before its block, and one after it.
        probes = self._probe_before(args, task_vars, plan, connection_port is None) if not check_mode else {
            'published': {}, 'blocks': {}}
        # One port_block call per network namespace: a container's drift is blocked in its own namespace, and the
        # host's call writes the prerouting table of published ports too (one transaction).
        wheres = set(block['where'] for block in plan['blocks'])
        counted = {}
        if plan['published']:
            wheres.add(HOST_WHERE)
        for where in sorted(wheres):
            blocks = [block for block in plan['blocks'] if block['where'] == where]
            published = plan['published'] if where == HOST_WHERE else []
            live, live_pub, block_changed, found = self._block(args, where, plan['namespaces'].get(where), blocks,
                                                               published, sorted(ports), task_vars, outcomes, actions, diffs)
            live_blocks.extend(live)
            live_published.extend(live_pub)
            changed |= block_changed
            if where == HOST_WHERE:
                counted = _counters(found.get('published'))
        self._probe_after(args, plan, probes, outcomes, actions, counted, task_vars)
        for service in plan['services']:
            changed |= self._stop_service(args, service, task_vars, outcomes, actions, diffs)
        if plan['processes']:
            changed |= self._kill(args, plan['processes'], task_vars, outcomes, actions, diffs)
        apply_outcomes(before, outcomes)
        if plan['skipped'] or check_mode or not (plan['blocks'] or plan['published'] or plan['services'] or plan['processes']):
            final = before
            final['remediation'] = {'actions': actions, 'skipped': plan['skipped'], 'verified': False}
        else:
            after, _gathered = audit_host(self, task_vars, args, compiled, today)
            if after['status'] == 'unknown' and after['coverage'] is None:
                final = before  # the second gather failed: the changes stand, but nothing is verified
                final['reasons'].append('the gather after remediation failed: %s' % '; '.join(after['reasons']))
                final['status'] = 'unknown'
                final['remediation'] = {'actions': actions, 'skipped': None, 'verified': False}
            else:
                final = verify_remediation(before, after, live_blocks, actions, probes['published'], live_published,
                                           probes['blocks'])
        result.update(final)
        result['probes'] = [dict(probe, block=describe(block)) for kind, describe in
                            (('published', describe_published), ('blocks', describe_block))
                            for block in plan[kind] if block_key(block) in probes[kind]
                            for probe in [probes[kind][block_key(block)]]]
        result['changed'] = changed
        if diffs:
            result['diff'] = diffs
        summary = final['summary']
        result['msg'] = '%s is %s after remediation%s: %d remediated, %d drift, %d actions%s' % (
            final['host'], final['status'], ' (check mode: nothing changed)' if check_mode else '',
            summary['remediated'], summary['drift'], len(actions),
            '; %s' % plan['skipped'] if plan['skipped'] else '')
        return result

    def _lift(self, args, task_vars, diffs):
        """Remove every portwarden firewall block (and the persisted file), before the audit; with namespaces=all,
        in every other network namespace of the host too (one call each: lifting is a rare, explicit act)."""
        module_args = {'state': 'absent'}
        if args['firewall_persist_path']:
            module_args['persist_path'] = args['firewall_persist_path']
        calls = [(HOST_WHERE, module_args)]
        if args['namespaces'] == 'all':
            gathered = self._execute_module(module_name=GATHER_MODULE, task_vars=task_vars, module_args={
                'backend': args['backend'], 'protocols': args['protocols'], 'namespaces': 'all'})
            if gathered.get('failed'):
                raise AnsibleActionFail('lifting the portwarden firewall blocks failed: the network namespaces could '
                                        'not be listed: %s' % _module_error(gathered))
            scanned = ((gathered.get('coverage') or {}).get('namespaces') or {}).get('scanned') or []
            calls.extend(('netns %d' % entry['inode'], {'state': 'absent', 'namespace': {'inode': entry['inode'], 'pid': entry['pid']}})
                         for entry in scanned if not entry.get('host') and entry.get('pid') is not None)
            # A namespace no process is in (only mounted, or held by a socket) never gets a block: remediation
            # blocks only where a process lets port_block enter. So there is nothing of ours to lift there.
            self._lift_skipped = ['netns %d' % entry['inode'] for entry in scanned
                                  if not entry.get('host') and entry.get('pid') is None]
        changed = False
        for where, call_args in calls:
            found = self._execute_module(module_name=BLOCK_MODULE, module_args=call_args, task_vars=task_vars)
            if found.get('failed'):
                raise AnsibleActionFail('lifting the portwarden firewall blocks failed (%s): %s' % (where, _module_error(found)))
            if found.get('diff') and found.get('changed'):
                tables = 'tables inet portwarden, inet portwarden_published' if (found.get('published') or {}).get('removed') \
                    else 'table inet portwarden'
                header = 'nftables %s%s' % (tables, '' if where == HOST_WHERE else ' in ' + where)
                diffs.append(dict(found['diff'], before_header=header, after_header=header))
            changed |= bool(found.get('changed'))
        return changed

    def _done(self):
        """(finding status, action outcome) of a change the host made, or would make in check mode."""
        return (PLANNED, 'would_apply') if self._task.check_mode else (APPLIED, 'applied')

    def _connection_name(self):
        return getattr(self._connection, '_load_name', None) or getattr(self._connection, 'transport', '') or 'unknown'

    def _connection_port(self, task_vars):
        """The TCP port the live connection uses on the host, or None for connections without one."""
        name = self._connection_name()
        if name not in _NETWORK_CONNECTIONS:
            return None
        port = task_vars.get('ansible_port') or task_vars.get('ansible_ssh_port') or self._play_context.port or 22
        try:
            return int(port)
        except (TypeError, ValueError):
            return 22

    def _probe_before(self, args, task_vars, plan, portless):
        """Probe each port to be blocked from here (the controller, outside the host) before its block: by kind
        (``published``, ``blocks``) and block key, ``{'address', 'before', 'after'}``, or for a published port that
        cannot be probed ``{'address': None, 'why'}``. An input block of the host's is probed only where an address
        of the host reaches it (not a loopback one), and only TCP."""
        fallback = task_vars.get('ansible_host') or self._play_context.remote_addr or task_vars.get('inventory_hostname')
        if portless and not args['probe_addresses']:
            # -c local (ansible-pull): the controller is the host, and its own address is no view from outside.
            addresses, why = {}, ('the %s connection runs on the host itself, so no probe from outside is made '
                                  '(set probe_addresses to probe from here anyway)' % self._connection_name())
        else:
            addresses, why = probe_addresses(args['probe_addresses'], fallback)
        probes = {'published': {}, 'blocks': {}}
        for block in plan['published']:
            address, reason = probe_target(block, addresses, why)
            probes['published'][block_key(block)] = {'address': address, 'why': reason, 'before': None, 'after': None}
        for block in plan['blocks']:
            if block['where'] != HOST_WHERE or block['protocol'] != 'tcp' or bind_class(block.get('address') or '::') == 'loopback':
                continue
            address, _reason = probe_target(dict(block, family=block.get('family') or ('ipv4' if 'ipv4' in addresses else 'ipv6')),
                                            addresses, why)
            if address is not None:
                probes['blocks'][block_key(block)] = {'address': address, 'why': None, 'before': None, 'after': None}
        self._probe_all(args, plan, probes, 'before')
        return probes

    def _probe_all(self, args, plan, probes, when, outcomes=None):
        """Probe, all at once, every port of ``probes`` that has an address (after: only where the block is applied)."""
        targets = []
        for kind in ('published', 'blocks'):
            for block in plan[kind]:
                probe = probes[kind].get(block_key(block))
                if probe is None or not probe['address']:
                    continue
                if outcomes is not None and (outcomes[kind].get(block_key(block)) or (None,))[0] != APPLIED:
                    continue
                targets.append((probe, block))
        answers = probe_many([(block['protocol'], probe['address'], block['port']) for probe, block in targets],
                             args['probe_timeout'])
        for (probe, _block), answer in zip(targets, answers):
            probe[when] = answer

    def _probe_after(self, args, plan, probes, outcomes, actions, counted, task_vars):
        """Probe again each port whose block is now in place, between two readings of the packets each published
        block's drop has counted (``counted``, by block key, from port_block's answer; the second reading is made here),
        and list what the probes saw."""
        self._probe_all(args, plan, probes, 'after', outcomes)
        if any(probe.get('after') is not None for probe in probes['published'].values()):
            after = self._read_counters(task_vars)
            for key, probe in probes['published'].items():
                if probe.get('after') is not None:
                    probe['counter_before'], probe['counter_after'] = counted.get(key), after.get(key)
        for kind, describe in (('published', describe_published), ('blocks', describe_block)):
            for block in plan[kind]:
                probe = probes[kind].get(block_key(block))
                if probe is None:
                    continue
                if probe['address']:
                    detail = 'from the controller to %s port %d: %s before the block, %s after it' % (
                        probe['address'], block['port'], probe['before'], probe['after'] or 'not probed (the block is not in place)')
                    if probe.get('after') is not None and kind == 'published':
                        detail += '; packets counted by the block: %s before the second probe, %s after it' % (
                            _unread(probe.get('counter_before')), _unread(probe.get('counter_after')))
                else:
                    detail = 'not probed: %s' % probe['why']
                actions.append({'strategy': 'firewall', 'target': describe(block), 'rules': [block['rule']],
                                'outcome': 'probed' if probe['address'] else 'not_probed', 'detail': detail})

    def _block(self, args, where, namespace, blocks, published, ports, task_vars, outcomes, actions, diffs):
        """Apply ``blocks`` in one network namespace (``where``; ``namespace`` its inode and pid, None for the host's),
        and the prerouting ``published`` blocks there: (live input blocks, live prerouting blocks, changed, port_block's
        answer)."""
        module_args = {'blocks': [module_block(block) for block in blocks], 'state': 'present',
                       'protected_ports': [{'protocol': 'tcp', 'port': port} for port in ports]}
        if published:
            module_args['published'] = [module_block(block) for block in published]
        if namespace is not None:
            module_args['namespace'] = namespace
        elif args['firewall_persist_path']:
            module_args['persist_path'] = args['firewall_persist_path']
        found = self._execute_module(module_name=BLOCK_MODULE, module_args=module_args, task_vars=task_vars)
        kinds = (('blocks', blocks, found, describe_block, 'inet portwarden'),
                 ('published', published, found.get('published') or {}, describe_published, 'inet portwarden_published'))
        if found.get('failed'):
            reason = 'firewall: %s' % _module_error(found)
            for kind, items, _found, describe, _table in kinds:
                for block in items:
                    outcomes[kind][block_key(block)] = (FAILED, reason)
                    actions.append({'strategy': 'firewall', 'target': describe(block), 'rules': [block['rule']],
                                    'outcome': FAILED, 'detail': reason})
            return [], [], False, found
        for kind, items, answer, describe, table in kinds:
            refused = dict((block_key(dict(item, where=where)), item.get('reason') or 'protected') for item in answer.get('protected') or [])
            added = set(block_key(dict(block, where=where)) for block in answer.get('added') or [])
            for block in items:
                key = block_key(block)
                if key in refused:
                    status, outcome, detail = PROTECTED, PROTECTED, refused[key]
                elif key in added:
                    status, outcome = self._done()
                    detail = '%s to table %s' % ('would add the nftables block' if self._task.check_mode else 'nftables block added', table)
                else:
                    status, outcome, detail = APPLIED, 'unchanged', ALREADY_IN_PLACE
                outcomes[kind][key] = (status, detail)
                actions.append({'strategy': 'firewall', 'target': describe(block), 'rules': [block['rule']],
                                'outcome': outcome, 'detail': detail})
        if found.get('diff'):
            tables = 'inet portwarden, inet portwarden_published' if (found.get('published') or {}).get('table') or published \
                else 'inet portwarden'
            header = 'nftables table%s %s%s' % ('s' if ',' in tables else '', tables, '' if where == HOST_WHERE else ' in ' + where)
            diffs.append(dict(found['diff'], before_header=header, after_header=header))
        return ([dict(block, where=where) for block in found.get('blocks') or []],
                [dict(block, where=where) for block in (found.get('published') or {}).get('blocks') or []],
                bool(found.get('changed')), found)

    def _read_counters(self, task_vars):
        """The packets each published block's drop has counted on the host now, by block key ({} when they cannot be
        read: then no count proves anything)."""
        found = self._execute_module(module_name=BLOCK_MODULE, module_args={'state': 'read'}, task_vars=task_vars)
        if found.get('failed'):
            return {}
        return _counters(found.get('published'))

    def _stop_service(self, args, service, task_vars, outcomes, actions, diffs):
        unit = service['unit']
        # Two calls: systemd_service masks before it checks is-enabled, which then says "masked" and
        # leaves the unit enabled underneath; disabling first, then masking, does both.
        calls = [{'name': unit, 'state': 'stopped', 'enabled': False}]
        if args['service_mask']:
            calls.append({'name': unit, 'masked': True})
        changed = False
        found = {}
        before = None
        for module_args in calls:
            found = self._execute_module(module_name=SERVICE_MODULE, module_args=module_args, task_vars=task_vars)
            if before is None:
                before = _unit_state(found)
            if found.get('failed'):
                break
            changed |= bool(found.get('changed'))
        if found.get('failed'):
            detail = 'systemd: %s' % _module_error(found)
            outcome = FAILED
            outcomes['services'][unit] = (FAILED, detail)
        else:
            if changed and self._task.check_mode:
                detail = 'would stop and disable%s' % (' and mask' if args['service_mask'] else '')
            else:
                detail = 'stopped and disabled%s' % (' and masked' if args['service_mask'] else '')
            status, outcome = self._done() if changed else (APPLIED, 'unchanged')
            outcomes['services'][unit] = (status, detail)
            if changed:
                diffs.append({'before_header': 'systemd unit %s' % unit, 'after_header': 'systemd unit %s' % unit,
                              'before': before, 'after': 'inactive, disabled%s\n' % (', masked' if args['service_mask'] else '')})
        actions.append({'strategy': 'service', 'target': unit, 'rules': list(service['rules']),
                        'outcome': outcome, 'detail': detail})
        return changed

    def _kill(self, args, processes, task_vars, outcomes, actions, diffs):
        found = self._execute_module(module_name=KILL_MODULE, task_vars=task_vars, module_args={
            'processes': processes, 'timeout': args['kill_timeout'], 'protected_names': args['protected_processes']})
        by_pid = dict((entry['pid'], entry) for entry in found.get('processes') or [])
        for target in processes:
            entry = by_pid.get(target['pid'])
            if entry is None:
                status, outcome, detail = FAILED, FAILED, 'kill: %s' % _module_error(found)
            else:
                outcome, detail = entry['outcome'], entry['reason']
                status = {'terminated': APPLIED, 'killed': APPLIED, 'would_terminate': PLANNED, 'gone': APPLIED,
                          'protected': PROTECTED}.get(outcome, FAILED)
            outcomes['processes'][target['pid']] = (status, detail)
            actions.append({'strategy': 'kill', 'target': '%s[%d]' % (target.get('name'), target['pid']),
                            'rules': [target['rule']], 'outcome': outcome, 'detail': detail})
        if found.get('diff') and found['diff'].get('before'):
            diffs.append(found['diff'])
        return bool(found.get('changed'))
