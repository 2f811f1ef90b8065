# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Remediate step: from a host's audit to the changes that close its drift, and back to a verdict.

Pure standard library, shared by the remediation action and the tests. ``plan_remediation``
decides, for each drift finding, what closes it under the strategy its rule chose (firewall,
service, kill) or why nothing may (protected, unavailable); ``verify_remediation`` judges the
gather made after the changes: a finding is ``remediated`` only when the socket is gone, or a
portwarden firewall block that is live on the host covers it.

Safety rails decided here (the modules check them again on the host): nothing on a host whose
verdict is unknown or partial; never the port of the live Ansible connection, nor a process that
listens on it; never PID 1 or a process whose name is protected.
"""

from __future__ import annotations

from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import bind_class, summarize_result
from ansible_collections.portwarden.compliance.plugins.module_utils.gather_owners import SYSTEM_SLICE, system_unit
from ansible_collections.portwarden.compliance.plugins.module_utils.remediate_kill import protection_match
from ansible_collections.portwarden.compliance.plugins.module_utils.report_sockets import HOST_WHERE, socket_label

STRATEGIES = ('none', 'firewall', 'service', 'kill')
TRUE_STRATEGY = 'firewall'  # ``remediate: true``: the least destructive fix, the service keeps running

# remediation.status of a finding
PLANNED = 'planned'          # a change is planned (check mode stops here)
PROTECTED = 'protected'      # a safety rail forbids it
UNAVAILABLE = 'unavailable'  # the strategy cannot apply (no process, no unit, no identity)
APPLIED = 'applied'          # the change was made (or was already in place)
FAILED = 'failed'            # the change was tried and failed
VERIFIED = 'verified'        # the gather after the change shows the finding closed
NOT_VERIFIED = 'not_verified'  # the change was made but the socket still listens, unblocked
ALREADY_IN_PLACE = 'the block was already in place'  # port_block's answer for a block it did not have to add
REMEDIATION_STATUSES = (PLANNED, PROTECTED, UNAVAILABLE, APPLIED, FAILED, VERIFIED, NOT_VERIFIED)


# Published traffic is rewritten in prerouting and forwarded: ending or stopping what answers behind the target does
# not unpublish the port, and the process is usually a container's, which is not ours to end.
NAT_NOT_OURS = ('the port is published by NAT (%s): the %s strategy does not apply, because the process behind the '
                'target runs in a container (or on another machine) that the publishing rule serves, and ending or '
                'stopping it is not for portwarden to do; the rule would publish the port again to whatever comes next. '
                'Use the firewall strategy (a block before NAT, at prerouting) or remove the publishing rule '
                '(docker run -p, podman -p, the Service)')
NAT_RANGE = ('the port is one of the published range %d-%d (%s): only single ports are blocked before NAT, and '
             'blocking the whole range would close ports the policy may allow; remove or narrow the publishing rule')
NAT_OUTPUT_ONLY = ('the port is published for local traffic of the host only (the OUTPUT hook, %s): a block at '
                   'prerouting does not see that traffic, and no peer reaches the port through this rule')


def strategy_of(value, fallback='none'):
    """A rule's ``remediate`` value (None, a bool or a strategy name) as a strategy name."""
    if value is None:
        return fallback
    if value is True:
        return TRUE_STRATEGY
    if value is False:
        return 'none'
    return value


class Protection(object):
    """What must never be touched on one host: TCP ports (with why), processes, and the units they run in."""

    def __init__(self, tcp_ports=(), names=(), pids=(), units=None, port_reasons=None):
        self.tcp_ports = frozenset(tcp_ports)
        self.names = tuple(names)
        self.pids = frozenset(pids)
        self.units = dict(units or {})  # system unit -> why it is never stopped
        self.port_reasons = dict(port_reasons or {})

    @classmethod
    def for_host(cls, gathered, tcp_ports=(), names=(), portless_connection=None):
        """Protect the given TCP ports and every process that listens on one of them (sshd, a jump proxy), and the
        system units of every protected process. ``portless_connection`` names a connection whose TCP port is not
        known (``local``, as ansible-pull runs): then every TCP port a protected process listens on is protected too,
        since any of them may be the one sshd serves."""
        sockets = (gathered or {}).get('sockets') or []
        judge = cls(names=names)
        ports = set(tcp_ports)
        port_reasons = {}
        units = {}
        for entry in sockets:
            for proc in entry.get('processes') or []:
                reason = judge.process_reason(proc)
                if reason is None:
                    continue
                unit, _why = system_unit(proc.get('unit'), None)
                if unit:
                    units.setdefault(unit, reason)
                if portless_connection and entry.get('protocol') == 'tcp' and isinstance(entry.get('port'), int):
                    ports.add(entry['port'])
                    port_reasons.setdefault(entry['port'], 'tcp port %d is where %s listens, and the %s connection has no '
                                            'port of its own to protect, so every port of a protected process is kept open'
                                            % (entry['port'], reason, portless_connection))
        holders = set()
        for entry in sockets:
            if entry.get('protocol') == 'tcp' and entry.get('port') in ports:
                for proc in entry.get('processes') or []:
                    holders.add(proc.get('pid'))
                    unit, _why = system_unit(proc.get('unit'), None)
                    if unit:
                        units.setdefault(unit, '%s[%s] listens on tcp port %d' % (proc.get('name'), proc.get('pid'), entry['port']))
        return cls(ports, names, holders, units, port_reasons)

    def port_reason(self, port):
        return self.port_reasons.get(port) or 'tcp port %d carries the live Ansible connection' % port

    def process_reason(self, proc):
        pid = proc.get('pid')
        if pid is not None and pid <= 1:
            return 'PID %s is never touched' % pid
        if pid in self.pids:
            return '%s[%s] listens on the port of the live Ansible connection' % (proc.get('name'), pid)
        pattern, evidence = protection_match(proc.get('name'), proc.get('exe'), self.names, proc.get('unit'))
        if pattern is not None:
            return '%s[%s] matches the protected process pattern %r (%s)' % (proc.get('name'), pid, pattern, evidence)
        return None

    def process_note(self, proc):
        """What an auditor should know of a process that is not protected: a name-only match, or None."""
        return protection_match(proc.get('name'), proc.get('exe'), self.names, proc.get('unit'))[1]


def block_for(finding):
    """The firewall block that closes a finding: the port for the families the socket accepts, or
    for its one address when it is bound to a specific (or loopback) address, in the network namespace
    the socket lives in (``where``: a container's drift is blocked in the container's namespace)."""
    address = finding['address']
    family = finding.get('family') or ('ipv6' if ':' in address else 'ipv4')
    block = {'protocol': finding['protocol'], 'port': finding['port'], 'family': None, 'address': None,
             'rule': finding['rule'], 'where': finding.get('where') or HOST_WHERE}
    if family == 'ipv6' and address.startswith('::ffff:') and '.' in address:
        family, address = 'ipv4', address[len('::ffff:'):]
    if bind_class(address) == 'any':
        # 0.0.0.0 takes IPv4 only; [::] may be dual-stack (v6only is not in the finding): block both.
        block['family'] = 'ipv4' if family == 'ipv4' else None
    else:
        block['family'] = family
        block['address'] = address
    return block


def published_block_for(finding):
    """The prerouting block that closes a published port before NAT: its one family (a NAT rule is per family), and
    its one destination address when the rule matches one; always in the host's namespace, whose NAT publishes it."""
    address = finding['address']
    family = finding.get('family') or ('ipv6' if ':' in address else 'ipv4')
    return {'protocol': finding['protocol'], 'port': finding['port'], 'family': family,
            'address': None if bind_class(address) == 'any' else address, 'rule': finding['rule'], 'where': HOST_WHERE}


def describe_published(block):
    return '%s before NAT (prerouting)' % describe_block(block)


def block_key(block):
    return (block.get('where') or HOST_WHERE, block['protocol'], block['port'], block.get('family') or '',
            block.get('address') or '')


BLOCK_FIELDS = ('protocol', 'port', 'family', 'address', 'rule')


def module_block(block):
    """A block as port_block takes it: the namespace is the call's, not the block's; an unset field is left out
    (port_block's argument spec refuses a null family, which a block for both families has)."""
    return dict((field, block[field]) for field in BLOCK_FIELDS if block.get(field) is not None)


def describe_block(block):
    address = block.get('address') or {'ipv4': '0.0.0.0', 'ipv6': '::', None: 'any address'}[block.get('family')]
    where = block.get('where') or HOST_WHERE
    return '%s %s port %d%s' % (block['protocol'], address, block['port'], '' if where == HOST_WHERE else ' in ' + where)


def block_covers(block, finding):
    """Whether a firewall block stops the traffic a finding's socket accepts (in the socket's own namespace)."""
    if block['protocol'] != finding['protocol'] or block['port'] != finding['port']:
        return False
    if (block.get('where') or HOST_WHERE) != (finding.get('where') or HOST_WHERE):
        return False
    wanted = block_for(finding)
    if block.get('address'):
        return block['address'] == wanted['address']
    return block.get('family') is None or block['family'] == wanted['family']


def plan_remediation(audit, strategies, default_strategy='none', protection=None, service_slices=None):
    """Annotate each drift finding of ``audit`` with ``remediation`` and return the plan.

    ``strategies`` maps rule ids to their ``remediate`` value (None: the rule did not say); rules
    that did not say use ``default_strategy``. The service strategy stops only services of the system
    manager whose top slice is one of ``service_slices`` (default system.slice), never another manager's.
    Returns ``{'blocks', 'published', 'services', 'processes', 'skipped'}``: ``published`` are the prerouting blocks of
    ports published by NAT (firewall strategy; a local listener on the same port keeps its input block in ``blocks``);
    ``skipped`` is why nothing at all is done on this host (its verdict is unknown or partial), else None.
    """
    protection = protection or Protection()
    service_slices = tuple(service_slices or (SYSTEM_SLICE,))
    # namespaces: where -> {'inode', 'pid'} of each namespace other than the host's that a block goes into.
    plan = {'blocks': [], 'published': [], 'services': [], 'processes': [], 'skipped': None, 'namespaces': {}}
    if audit.get('status') == 'unknown' or audit.get('reasons'):
        plan['skipped'] = 'no remediation on a host whose verdict is unknown: %s' % (
            '; '.join(audit.get('reasons') or ['no verdict']))
        return plan
    blocks = {}
    published = {}
    services = {}
    processes = {}
    for finding in audit.get('findings') or []:
        if finding.get('status') != 'drift':
            continue
        strategy = strategy_of(strategies.get(finding['rule']), default_strategy)
        if strategy == 'none':
            continue
        procs = finding.get('processes') or []
        note = {'strategy': strategy, 'status': PLANNED, 'reason': None, 'target': _target(strategy, finding, procs)}
        finding['remediation'] = note
        if finding['protocol'] == 'tcp' and finding['port'] in protection.tcp_ports:
            note.update(status=PROTECTED, reason=protection.port_reason(finding['port']))
            continue
        if finding.get('via') == 'nat':
            reason = _published_refusal(strategy, finding)
            if reason:
                note.update(status=UNAVAILABLE, reason=reason)
            else:
                block = published_block_for(finding)
                published.setdefault(block_key(block), block)
            continue
        if strategy == 'firewall':
            block = block_for(finding)
            if block['where'] != HOST_WHERE:
                namespace = finding.get('namespace') or {}
                if not isinstance(namespace.get('inode'), int) or not isinstance(namespace.get('pid'), int):
                    note.update(status=UNAVAILABLE, reason='the network namespace of %s is not known' % block['where'])
                    continue
                plan['namespaces'][block['where']] = {'inode': namespace['inode'], 'pid': namespace['pid']}
            blocks.setdefault(block_key(block), block)
            continue
        if not procs:
            note.update(status=UNAVAILABLE, reason='no owning process is known (gather with become)')
            continue
        refusals = [reason for reason in map(protection.process_reason, procs) if reason]
        if refusals:
            note.update(status=PROTECTED, reason='; '.join(refusals))
            continue
        name_only = [text for text in map(protection.process_note, procs) if text]
        if name_only:
            note['reason'] = '; '.join(name_only)
        if strategy == 'service':
            units = sorted(set(proc.get('unit') or '' for proc in procs))
            if not all(unit.endswith('.service') for unit in units):
                note.update(status=UNAVAILABLE, reason='not every owning process runs in a systemd service unit (%s)'
                            % ', '.join(unit or 'no unit' for unit in units))
                continue
            resolved = [system_unit(unit, service_slices) for unit in units]
            refusals = [why for _name, why in resolved if why]
            if refusals:
                note.update(status=PROTECTED, reason='%s; the service strategy stops only services of the system manager in %s '
                            '(service_slices)' % ('; '.join(refusals), ', '.join(service_slices)))
                continue
            names = sorted(set(name for name, _why in resolved))
            note['target'] = ', '.join(names)
            guarded = ['unit %s is never stopped: %s' % (name, protection.units[name]) for name in names if name in protection.units]
            if guarded:
                note.update(status=PROTECTED, reason='; '.join(guarded))
                continue
            for unit in names:
                services.setdefault(unit, {'unit': unit, 'rules': []})
                if finding['rule'] not in services[unit]['rules']:
                    services[unit]['rules'].append(finding['rule'])
        else:  # kill
            if any(proc.get('start_time') is None or proc.get('pid') is None for proc in procs):
                note.update(status=UNAVAILABLE,
                            reason='the owning processes were gathered without a start time, so they cannot be told from a recycled pid')
                continue
            for proc in procs:
                processes.setdefault(proc['pid'], {'pid': proc['pid'], 'start_time': proc['start_time'],
                                                   'exe': proc.get('exe'), 'name': proc.get('name'),
                                                   'rule': finding['rule']})
    plan['blocks'] = [blocks[key] for key in sorted(blocks)]
    plan['published'] = [published[key] for key in sorted(published)]
    plan['services'] = [services[unit] for unit in sorted(services)]
    plan['processes'] = [processes[pid] for pid in sorted(processes)]
    return plan


def _published_refusal(strategy, finding):
    """Why a published port cannot be closed under ``strategy``, or None when a prerouting block closes it."""
    exposure = finding.get('exposure') or {}
    label = _published_label(exposure)
    if strategy != 'firewall':
        return NAT_NOT_OURS % (label, strategy)
    if (finding.get('port_end') or finding['port']) != finding['port'] or exposure.get('port_end') not in (None, finding['port']):
        return NAT_RANGE % (finding['port'], finding.get('port_end') or finding['port'], label)
    if exposure.get('hooks') == ['output']:
        return NAT_OUTPUT_ONLY % label
    return None


def _published_label(exposure):
    """``DNAT to 172.17.0.2:80 (docker:web)``: where a published port leads, from a finding's ``exposure``."""
    target = exposure.get('target') or {}
    address = target.get('address')
    shown = 'this host' if address is None else ('[%s]' % address if ':' in address else address)
    if target.get('port') is not None:
        shown += ':%s' % target['port']
    owner = (exposure.get('owner') or {}).get('where')
    return '%s to %s%s' % ('REDIRECT' if exposure.get('action') == 'redirect' else 'DNAT', shown,
                           ' (%s)' % owner if owner else '')


def refused_actions(audit):
    """The changes a safety rail refused at planning, before the host was asked, as report actions:
    an auditor sees what was not done and why. Call it right after plan_remediation."""
    return [{'strategy': finding['remediation']['strategy'],
             'target': finding['remediation']['target'] or socket_label(finding),
             'rules': [finding['rule']], 'outcome': PROTECTED, 'detail': finding['remediation']['reason']}
            for finding in audit.get('findings') or []
            if (finding.get('remediation') or {}).get('status') == PROTECTED]


def _target(strategy, finding, procs):
    """What a strategy acts on, in words: the block, the units or the processes."""
    if strategy == 'firewall':
        if finding.get('via') == 'nat':
            return describe_published(published_block_for(finding))
        return describe_block(block_for(finding))
    if strategy == 'service':
        return ', '.join(sorted(set(proc.get('unit') or 'no unit' for proc in procs))) or None
    return ', '.join('%s[%s]' % (proc.get('name'), proc.get('pid')) for proc in procs) or None


def _finding_key(finding):
    key = (finding['rule'], finding['protocol'], finding['address'], finding['port'], finding.get('where') or HOST_WHERE)
    return key + ('nat',) if finding.get('via') == 'nat' else key


def apply_outcomes(audit, outcomes):
    """Record on each planned finding what the host did: ``outcomes`` maps a finding's target kind to
    ``{'blocks': {block_key: (status, reason)}, 'services': {unit: ...}, 'processes': {pid: ...}}``."""
    for finding in audit.get('findings') or []:
        note = finding.get('remediation')
        if not note or note['status'] != PLANNED:
            continue
        if note['strategy'] == 'firewall' and finding.get('via') == 'nat':
            results = [(outcomes.get('published') or {}).get(block_key(published_block_for(finding)))]
        elif note['strategy'] == 'firewall':
            results = [outcomes['blocks'].get(block_key(block_for(finding)))]
        elif note['strategy'] == 'service':
            results = [outcomes['services'].get(system_unit(proc.get('unit'), None)[0]) for proc in finding.get('processes') or []]
        else:
            results = [outcomes['processes'].get(proc.get('pid')) for proc in finding.get('processes') or []]
        results = [result for result in results if result is not None]
        if not results:
            note.update(status=FAILED, reason='the host reported nothing for this change')
            continue
        # The worst outcome counts: protected or failed anywhere means the finding is not closed by us.
        planned_note = note.get('reason')  # what planning noted (a name-only match) stays in the report
        for status in (PROTECTED, FAILED, UNAVAILABLE, PLANNED, APPLIED):
            chosen = [reason for found, reason in results if found == status]
            if chosen:
                reason = '; '.join(reason for reason in chosen if reason)
                if planned_note and planned_note not in reason:
                    reason = '%s; %s' % (reason, planned_note) if reason else planned_note
                note.update(status=status, reason=reason or None)
                break


def _published_covers(live, block):
    """Whether a prerouting block read from the host drops what the planned ``block`` drops."""
    if live['protocol'] != block['protocol'] or live['port'] != block['port']:
        return False
    if live.get('address'):
        return live['address'] == block['address']
    return live.get('family') in (None, block['family'])


def packet_count(value):
    """``value`` when it is a packet count (an int, not a bool, not negative), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def judge_probe(finding, probe, cover):
    """(remediated?, why) of a published port after its prerouting block, from a probe made from outside the host.

    ``probe`` is ``{'address', 'before', 'after', 'counter_before', 'counter_after'}``: what the probe saw before and
    after the block (each ``open``, ``refused``, ``blocked`` or what went wrong), and the packets the block's drop had
    counted on the host just before and just after the second probe (None when they could not be read); or
    ``{'address': None, 'why': ...}`` when no probe could be made. ``cover`` is the live prerouting block, or None.

    - An answer after the block (``open``) is traffic that still arrives: never closed.
    - With both counts: closed only when the second probe was silent and the block's drop counted more packets
      during it. That is proof the probe's port is dropped by portwarden, for TCP and UDP alike, and on a second
      run too, when the block was already in place before the first probe. A count that did not move tells nothing
      (the probe's packets were stopped before they reached the host, or went elsewhere), nor does one that went
      down (the table was rewritten meanwhile).
    - Without the counts: only a TCP port the probe reached before the block (a connect that succeeded) and that is
      refused or silent after it is closed. A UDP port is then never closed from a probe: silence is a dropped
      datagram or a service that does not answer, and the two look alike.
    """
    if cover is None:
        return False, 'the prerouting block is not in table inet portwarden_published after the change'
    if not probe or not probe.get('address'):
        return False, 'prerouting block in place, not verified: %s' % ((probe or {}).get('why') or 'no probe was made')
    seen = 'probe from the controller to %s: %s before the block, %s after it' % (
        probe['address'], probe.get('before') or 'not made', probe.get('after') or 'not made')
    first, second = packet_count(probe.get('counter_before')), packet_count(probe.get('counter_after'))
    if probe.get('after') == 'open':
        return False, '%s; traffic still arrives (another rule or path publishes the port before the block)' % seen
    if first is not None and second is not None:
        counted = "the block's drop counted %d packets before the second probe and %d after it" % (first, second)
        if second < first:
            return False, ('%s; %s: the count went down, so the table was rewritten meanwhile and the probe tells '
                           'nothing' % (seen, counted))
        if second == first:
            return False, ("%s; %s: the probe's packets never reached the block (something on the way stopped them, "
                           "or they went elsewhere), so the probe tells nothing" % (seen, counted))
        if probe.get('after') != 'blocked':
            return False, ('%s; %s, yet the probe was answered (%s), so its own packets went elsewhere and the probe '
                           'tells nothing' % (seen, counted, probe.get('after')))
        return True, "%s; %s: the probe's packets were dropped by portwarden" % (seen, counted)
    if finding['protocol'] != 'tcp':
        return False, ("%s; the block's packet count could not be read, and a UDP probe alone cannot tell a dropped "
                       "datagram from a service that does not answer" % seen)
    if probe.get('before') != 'open':
        return False, '%s; the port was not reachable from the probe before the block either, so the probe tells nothing' % seen
    if probe.get('after') not in ('blocked', 'refused'):
        return False, '%s; the probe after the block failed, so it tells nothing' % seen
    return True, seen


def verify_remediation(before, after, live_blocks, actions, probes=None, live_published=(), input_probes=None):
    """The host's verdict after remediation, from the gather made after the changes.

    ``before`` is the annotated audit the changes were made from, ``after`` the fresh audit,
    ``live_blocks`` the portwarden firewall blocks now in the host's ruleset. A drift finding of
    ``after`` covered by a live block is ``remediated``; a finding of ``before`` whose change was
    applied and that ``after`` no longer has (the process or service is gone) is listed as
    ``remediated`` too, so the report shows what was closed. A port published by NAT is ``remediated``
    only by its prerouting block (``live_published``) and a probe from outside (``probes``, by block key) that
    the block's drop counted, or that reached it before the block and not after (judge_probe). A local listener's
    input block is judged by the rule as before, except when a probe from outside (``input_probes``, by block key)
    still connected after the block: then traffic still arrives, and it stays drift. Returns ``after``, updated.
    """
    probes = probes or {}
    input_probes = input_probes or {}
    notes = dict((_finding_key(finding), finding['remediation']) for finding in before.get('findings') or []
                 if finding.get('remediation'))
    seen = set()
    for finding in after.get('findings') or []:
        key = _finding_key(finding)
        seen.add(key)
        note = dict(notes[key]) if key in notes else None
        if finding.get('status') == 'drift' and finding.get('via') == 'nat':  # an input block leaves a published port open
            if note is not None and note.get('strategy') == 'firewall' and note['status'] == APPLIED:
                block = published_block_for(finding)
                cover = next((live for live in live_published if _published_covers(live, block)), None)
                closed, why = judge_probe(finding, probes.get(block_key(block)), cover)
                if closed:
                    finding['status'] = 'remediated'
                    note.update(status=VERIFIED, reason='blocked before NAT by the portwarden firewall (%s, rule %s); %s' % (
                        describe_published(block), cover.get('rule'), why))
                    finding['message'] += '; remediated: blocked before NAT, and a probe from outside no longer reaches it'
                else:
                    probe = probes.get(block_key(block)) or {}
                    if (note.get('reason') == ALREADY_IN_PLACE and probe.get('before') != 'open'
                            and packet_count(probe.get('counter_after')) is None):
                        why += ('; the block was already in place before this run and its packet count could not be '
                                'read, so no probe could show it closed: lift the blocks (lift_firewall) and remediate '
                                'again to verify')
                    note.update(status=NOT_VERIFIED, reason=why)
        elif finding.get('status') == 'drift':
            cover = next((block for block in live_blocks if block_covers(block, finding)), None)
            probe = input_probes.get(block_key(block_for(finding))) if cover is not None else None
            probed = None
            if probe and probe.get('address'):
                probed = 'probe from the controller to %s: %s before the block, %s after it' % (
                    probe['address'], probe.get('before') or 'not made', probe.get('after') or 'not made')
            if cover is not None and probe and probe.get('after') == 'open':
                note = note or {'strategy': 'firewall', 'target': describe_block(cover)}
                note.update(status=NOT_VERIFIED, reason='blocked by the portwarden firewall (%s), but %s: traffic still '
                            'arrives' % (describe_block(cover), probed))
            elif cover is not None:
                finding['status'] = 'remediated'
                note = note or {'strategy': 'firewall', 'target': None}
                note.update(status=VERIFIED, reason='blocked by the portwarden firewall (%s, rule %s)%s' % (
                    describe_block(cover), cover.get('rule'), '; %s' % probed if probed else ''),
                    target=note.get('target') or describe_block(cover))
                finding['message'] += '; remediated: blocked by the portwarden firewall'
            elif note is not None and note['status'] == APPLIED:
                note.update(status=NOT_VERIFIED, reason='the change was made but the socket still listens')
        if note is not None:
            finding['remediation'] = note
    for finding in before.get('findings') or []:
        note = finding.get('remediation')
        if not note or note['status'] != APPLIED or _finding_key(finding) in seen:
            continue
        closed = dict(finding)
        closed['status'] = 'remediated'
        gone = 'the port is no longer published' if finding.get('via') == 'nat' else 'the socket no longer listens'
        closed['remediation'] = dict(note, status=VERIFIED, reason='%s; %s' % (note.get('reason') or 'done', gone))
        closed['message'] = '%s %s; remediated (%s: %s)' % (
            socket_label(finding), 'is no longer published' if finding.get('via') == 'nat' else 'no longer listens',
            note['strategy'], note.get('target'))
        after['findings'].append(closed)
    summarize_result(after)
    after['remediation'] = {'actions': actions, 'skipped': None, 'verified': True}
    return after
