# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The ``portwarden`` command line.

- ``portwarden gather``: this host's listening sockets, through the gather core the module uses.
- ``portwarden lint POLICY...``: validate policy files (exit 0 valid, 1 invalid).
- ``portwarden schema``: print the policy JSON Schema (docs/policy.schema.json).
- ``portwarden registry update --from FILE.xml [--check]``: regenerate the IANA registry data.
- ``portwarden registry info``: the registry data in use.
- ``portwarden gate REPORT.json``: gate a pipeline on a saved fleet report (exit 0, 1 drift, 2 unknown/unusable).
- ``portwarden merge [PART ...] --report-dir OUT [--inventory INV]``: merge part reports into one fleet report, then gate.
- ``portwarden explain``: why one socket got its verdict (a saved report, or gathers with a policy).
- ``portwarden baseline FILE... [-i INV] [-o POLICY]``: a ``default: deny`` policy from gather results or survey reports.
- ``portwarden --version``: the collection's version (MANIFEST.json of an installed tarball, else galaxy.yml).

Commands import what they need when they run, so ``gather`` stays quick.

Text that came from a host or a file (process and container names, paths, policy values, reasons) is
shown through ``printable``: a control or invisible character is written as its escape (``\\x1b``), so
nothing printed can drive the terminal or forge a line; every stream the commands write to escapes
what a field missed, too.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_nat, gather_sockets
from ansible_collections.portwarden.compliance.plugins.module_utils.report_sockets import exposure_lines, printable, render_socket_table, socket_label

# Audit under it, and the fleet report lists every listener: input for portwarden baseline.
_SURVEY_POLICY = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'docs', 'policies',
                                               'survey.yml'))
EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_ERROR = 2


def command_gather(args):
    try:
        result = gather_sockets.gather_listening_sockets(backend=args.backend,
                                                         protocols=args.protocol or gather_sockets.PROTOCOLS,
                                                         namespaces=args.namespaces, nat=args.nat)
    except gather_sockets.GatherError as exc:
        sys.stderr.write('portwarden gather: %s\n' % printable(exc))
        return EXIT_ERROR
    if args.format == 'json':
        # Key order is fixed by the gather core, so the output is deterministic without sort_keys. The result is a tree
        # the gather built (no cycle to look for), and encoding it allocates no cycle for the collector to find: both
        # checks would only rescan tens of thousands of records (a third of the encoding time on a Docker host).
        collecting = gc.isenabled()
        gc.disable()
        try:
            if args.compact:
                text = json.dumps(result, separators=(',', ':'), check_circular=False)
            else:
                text = json.dumps(result, indent=2, check_circular=False)
        finally:
            if collecting:
                gc.enable()
        sys.stdout.write(text + '\n')
    else:
        lines = render_socket_table(result)
        if 'namespaces' in result['coverage']:
            lines.extend(_namespace_lines(result))
        lines.extend(exposure_lines(result))
        sys.stdout.write('\n'.join(lines) + '\n')
    return EXIT_OK if result['coverage']['complete'] else EXIT_PARTIAL


def _namespace_lines(result):
    """With --namespaces all the table has no namespace column: list each namespace and its sockets after it."""
    by_namespace = {}
    for entry in result['sockets']:
        by_namespace.setdefault(entry['namespace']['inode'], []).append(printable(socket_label(entry, with_namespace=False)))
    summary = result['coverage']['namespaces']
    lines = ['', 'network namespaces: %d scanned, %d unreadable, %d vanished'
             % (len(summary['scanned']), len(summary['unreadable']), len(summary['vanished']))]
    for scanned in summary['scanned']:
        container = scanned['container']
        where = ''
        if container:
            where = ' %s %s' % (printable(container['kind']),
                                printable(container['name'] or (container['id'] or '')[:12] or container['pod_uid']))
        lines.append('netns %d%s pid %s%s: %s' % (scanned['inode'], ' (host)' if scanned['host'] else '', scanned['pid'], where,
                                                  ', '.join(by_namespace.get(scanned['inode'], [])) or 'no sockets'))
    lines.extend('netns %d pid %s: unreadable: %s' % (item['inode'], item['pid'], printable(item['reason']))
                 for item in summary['unreadable'])
    lines.extend('netns %d pid %s: vanished' % (item['inode'], item['pid']) for item in summary['vanished'])
    return lines


def command_lint(args):
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import PolicyInvalid, load_policy

    invalid = 0
    for path in args.policies:
        try:
            policy = load_policy(path)
        except PolicyInvalid as exc:
            invalid += 1
            sys.stdout.write(''.join(printable(error) + '\n' for error in exc.errors))
            continue
        sys.stdout.write('%s: valid (policy %s, %d rules, %d waivers)\n' % (
            printable(path), printable(policy.get('name')), len(policy.get('rules') or []), len(policy.get('waivers') or [])))
    if invalid:
        sys.stderr.write('portwarden lint: %d of %d policies invalid\n' % (invalid, len(args.policies)))
        return EXIT_PARTIAL
    return EXIT_OK


def command_schema(args):
    from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import schema_text

    if args.output:
        with open(args.output, 'w') as handle:
            handle.write(schema_text())
    else:
        sys.stdout.write(schema_text())
    return EXIT_OK


def command_registry_update(args):
    from ansible_collections.portwarden.compliance.plugins.module_utils import registry_build

    output = args.output or os.path.join(os.path.dirname(registry_build.__file__), 'registry_data.py')
    try:
        changed, data = registry_build.update_registry(args.source, output, check=args.check)
    except registry_build.RegistryError as exc:
        sys.stderr.write('portwarden registry update: %s\n' % printable(exc))
        return EXIT_ERROR
    state = ('would change' if args.check else 'updated') if changed else 'up to date'
    sys.stdout.write('%s: %s (IANA registry of %s, %d records, sha256 %s)\n'
                     % (printable(output), state, printable(data['date']), data['records'], data['sha256']))
    return EXIT_PARTIAL if (changed and args.check) else EXIT_OK


def command_registry_info(_args):
    from ansible_collections.portwarden.compliance.plugins.module_utils import registry

    sys.stdout.write(json.dumps(registry.registry_info(), indent=2) + '\n')
    return EXIT_OK


def max_age_seconds(text):
    """``--max-age``: seconds, or a number with s, m, h or d."""
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.report_load import parse_age

    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def command_gate(args):
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import (
        EXIT_UNKNOWN,
        ReportError,
        gate_report,
        report_contradictions,
    )
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.report_load import load_report, set_problems

    try:
        report = load_report(args.report)
    except ReportError as exc:
        sys.stdout.write('portwarden gate: UNKNOWN: %s\n' % printable(exc))
        return EXIT_UNKNOWN
    problems = report_contradictions(report, max_age=args.max_age) + set_problems(args.report, report)
    if problems:
        sys.stdout.write('portwarden gate: UNKNOWN: %s: the report contradicts itself or cannot be trusted:\n'
                         % args.report)
        sys.stdout.write(''.join('  %s\n' % printable(problem) for problem in problems))
        return EXIT_UNKNOWN
    code, _failing, lines = gate_report(report, args.fail_on, allow_unknown=args.allow_unknown)
    verdict = {0: 'PASS', 1: 'DRIFT', 2: 'UNKNOWN'}[code]
    sys.stdout.write('portwarden gate: %s (policy %s, report of %s, IANA registry of %s)\n' % (
        verdict, printable(report['policy'].get('name')), printable(report['generated_at']),
        printable(report['registry'].get('date'))))
    sys.stdout.write(''.join('  %s\n' % line for line in lines))
    return code


def _formats(text):
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES

    names = [name.strip() for name in text.split(',') if name.strip()]
    unknown = [name for name in names if name not in FILE_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError('%r: formats are a comma-separated list of %s' % (text, ', '.join(FILE_NAMES)))
    return names


def command_merge(args):
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import EXIT_UNKNOWN
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.collection_version import collection_version
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.merge_run import MergeError, run_merge

    try:
        outcome = run_merge(paths=args.parts, parts_dir=args.parts_dir, report_dir=args.report_dir,
                            inventory=args.inventory, hosts=args.hosts.split(',') if args.hosts is not None else None,
                            hosts_file=args.hosts_file, max_age=args.max_age, skip_bad=args.skip_bad,
                            allow_mixed=args.allow_mixed_policies, formats=args.formats, history_keep=args.history_keep,
                            fail_on=args.fail_on, allow_unknown=args.allow_unknown, tool_version=collection_version())
    except MergeError as exc:
        sys.stdout.write('portwarden merge: UNKNOWN: no fleet report was written:\n')
        sys.stdout.write(''.join('  %s\n' % printable(problem) for problem in exc.problems))
        return EXIT_UNKNOWN
    report = outcome['report']
    for warning in outcome['warnings']:
        sys.stderr.write('portwarden merge: warning: %s\n' % printable(warning))
    for item in outcome['skipped']:
        sys.stderr.write('portwarden merge: skipped bad part %s: %s\n' % (printable(item['file']), printable(item['reason'])))
    verdict = {0: 'PASS', 1: 'DRIFT', 2: 'UNKNOWN'}[outcome['code']]
    sys.stdout.write('portwarden merge: %s (%d part%s, policy %s, merged report of %s, IANA registry of %s)\n' % (
        verdict, len(report['scope']['parts']), '' if len(report['scope']['parts']) == 1 else 's',
        printable(report['policy'].get('name')), printable(report['generated_at']), printable(report['registry'].get('date'))))
    sys.stdout.write(''.join('  %s\n' % line for line in outcome['lines']))
    sys.stdout.write('reports: %s\n' % ', '.join(printable(outcome['paths'][name]) for name in sorted(outcome['paths'])))
    return outcome['code']


class _ExplainError(Exception):
    """One line saying why ``portwarden explain`` cannot answer (exit 2)."""


def _load_json(path, what):
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import refuse_duplicate_keys
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.report_load import read_regular

    try:
        raw = read_regular(path)
    except (OSError, ValueError) as exc:
        raise _ExplainError('%s: cannot read the %s: %s' % (path, what, getattr(exc, 'strerror', None) or exc)) from None
    try:
        return json.loads(raw.decode('utf-8'), object_pairs_hook=refuse_duplicate_keys)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise _ExplainError('%s: (top level): expected a %s as JSON, got text that is not (%s)' % (path, what, exc)) from None


def _explain_gathers(args):
    """``--policy POLICY GATHER.json ...``: evaluate each gather's sockets under the policy, explained."""
    from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_explain, evaluate_policy
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import PolicyInvalid, load_policy

    try:
        compiled = evaluate_policy.compile_policy(load_policy(args.policy))
    except PolicyInvalid as exc:
        raise _ExplainError('%s (and %d more)' % (exc.errors[0], len(exc.errors) - 1) if len(exc.errors) > 1
                            else exc.errors[0]) from None
    if args.host is not None and len(args.files) > 1:
        raise _ExplainError('--host names the host of one gather; with several, each is named by its file name')
    explanations = []
    for path in args.files:
        gathered = _load_json(path, 'gather result')  # portwarden gather --format json, or a registered module result
        problem = evaluate_policy.gather_problem(gathered) if isinstance(gathered, dict) and 'coverage' in gathered \
            else 'coverage: expected the gather\'s coverage, got nothing'
        if problem is not None:
            raise _ExplainError('%s: not a gather result portwarden can judge: %s' % (path, problem))
        host = args.host or os.path.splitext(os.path.basename(path))[0]
        entries = evaluate_explain.select_sockets(gathered, args.protocol, args.port, args.address)
        published = evaluate_explain.select_exposures(gathered, args.protocol, args.port, args.address)
        if not entries and not published:
            raise _ExplainError('%s: no %s socket or published port%s%s in this gather (%d sockets, %d published)' % (
                path, args.protocol or 'tcp or udp', ' on port %d' % args.port if args.port is not None else '',
                ' on address %s' % args.address if args.address else '', len(gathered['sockets']),
                len(gathered.get('exposures') or [])))
        explanations.extend(evaluate_explain.explain_socket(entry, compiled, host, args.group, coverage=gathered['coverage'])
                            for entry in entries)
        explanations.extend(evaluate_explain.explain_exposure(exposure, compiled, host, args.group,
                                                              coverage=gathered['coverage']) for exposure in published)
    return explanations


def _report_sockets(findings):
    """The sockets of a report's findings, as the evaluation read them (a report keeps no ephemeral flag: a socket
    with a finding was judged as not ephemeral unless a rule asked for ephemeral ones)."""
    entries = {}
    for finding in findings:
        if finding.get('via') == 'nat':
            continue
        entry = {'protocol': finding['protocol'], 'family': finding['family'], 'address': finding['address'],
                 'port': finding['port'], 'v6only': finding.get('v6only'), 'ephemeral': False,
                 'processes': finding.get('processes') or []}
        if finding.get('namespace') is not None:
            entry['namespace'] = finding['namespace']
        entries.setdefault((entry['protocol'], entry['address'], entry['port'], finding.get('where')), entry)
    return list(entries.values())


def _explain_report(args):
    """``--host H --port P REPORT``: the findings a saved report holds for one socket, re-explained when --policy
    names the policy it was judged under."""
    import datetime

    from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_explain, evaluate_policy
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import ReportError
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import PolicyInvalid, load_policy
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.report_load import load_report

    if len(args.files) != 1 or args.host is None or args.port is None:
        raise _ExplainError('a saved report is explained for one host and port: --host H --port P REPORT.json')
    path = args.files[0]
    try:
        report = load_report(path)
    except ReportError as exc:
        data = _load_json(path, 'report')
        if isinstance(data, dict) and 'sockets' in data and 'coverage' in data:
            raise _ExplainError('%s: a gather result, not a saved report: explain it with --policy POLICY' % path) from None
        raise _ExplainError(str(exc)) from None
    hosts = dict((entry['host'], entry) for entry in report['hosts'])
    entry = hosts.get(args.host)
    if entry is None:
        names = sorted(hosts)
        raise _ExplainError('%s: no host %s in this report (it has %d: %s%s)' % (
            path, args.host, len(names), ', '.join(names[:10]), ', ...' if len(names) > 10 else ''))
    findings = [finding for finding in entry['findings'] if finding['port'] == args.port
                and (args.protocol is None or finding['protocol'] == args.protocol)
                and (args.address is None or finding['address'] == args.address)]
    if not findings:
        raise _ExplainError('%s: host %s (%s) has no finding on %s port %d%s: a report keeps findings only, so that socket '
                            'was allowed or not listening; explain its gather with --policy to see every rule' % (
                                path, args.host, entry['status'], args.protocol or 'tcp or udp', args.port,
                                ' at %s' % args.address if args.address else ''))
    if args.policy is None:
        return [_report_explanation(report, entry, findings)]
    try:
        policy = load_policy(args.policy)
    except PolicyInvalid as exc:
        raise _ExplainError(exc.errors[0]) from None
    compiled = evaluate_policy.compile_policy(policy)
    if compiled.digest != report['policy'].get('sha256'):
        raise _ExplainError('%s: policy %s (sha256 %s) is not the one the report was judged under (%s, sha256 %s)' % (
            path, args.policy, compiled.digest, report['policy'].get('name'), report['policy'].get('sha256')))
    today = datetime.date.fromisoformat(entry['evaluated_on']) if entry.get('evaluated_on') else None
    sockets = _report_sockets(findings)
    if not sockets:
        raise _ExplainError('%s: the findings of host %s on port %d are of a published port (via nat), which explain '
                            'tells from the report without --policy, not rule by rule' % (path, args.host, args.port))
    explanations = []
    for socket in sockets:
        explanation = evaluate_explain.explain_socket(socket, compiled, args.host, args.group, today, entry['coverage'])
        key = (socket['protocol'], socket['address'], socket['port'])
        recorded = sorted((f['rule'], f['status'], f['message']) for f in findings
                          if f.get('via') != 'nat' and (f['protocol'], f['address'], f['port']) == key)
        again = sorted((f['rule'], f['status'], f['message']) for f in explanation['findings'])
        explanation['report'] = {'path': path, 'status': entry['status'], 'reproduced': again == recorded}
        explanations.append(explanation)
    return explanations


def _report_explanation(report, entry, findings):
    from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_explain import socket_decision

    described = dict((rule.get('id'), rule) for rule in report['policy'].get('rules') or [])
    decision = socket_decision(findings)
    return {'host': entry['host'], 'status': entry['status'], 'policy': report['policy'],
            'evaluated_on': entry.get('evaluated_on'),
            'findings': [{'rule': f['rule'], 'severity': f['severity'], 'status': f['status'], 'message': f['message'],
                          'label': socket_label(f) if f.get('via') != 'nat' else 'published %s port %d' % (
                              f['protocol'], f['port']),
                          'description': (described.get(f['rule']) or {}).get('description'),
                          'waiver': f.get('waiver'), 'waiver_expired': f.get('waiver_expired')} for f in findings],
            'decision': decision,
            'decided_by': sorted(set(f['rule'] for f in findings if f['status'] == decision))}


def _report_lines(explanation):
    policy = explanation['policy']
    lines = ['%s in a saved report: host status %s, policy %s (sha256 %s), evaluated on %s' % (
        explanation['host'], explanation['status'], printable(policy.get('name')), policy.get('sha256'),
        explanation['evaluated_on']),
        'the report keeps the findings of a socket, not the rules that did not match it; give --policy with the same '
        'policy to see every rule']
    for finding in explanation['findings']:
        lines.append('finding of %s (%s) on %s: %s' % (printable(finding['rule']), finding['severity'],
                                                       printable(finding['label']), finding['status']))
        lines.append('  %s' % printable(finding['message']))
        if finding['description']:
            lines.append('  rule %s: %s' % (printable(finding['rule']), printable(finding['description'])))
        waiver = finding['waiver'] or finding['waiver_expired']
        if finding['waiver']:
            lines.append('  waived until %s: %s' % (printable(waiver.get('expires')), printable(waiver.get('reason'))))
        elif waiver:
            lines.append('  its waiver expired %s: %s' % (printable(waiver.get('expires')), printable(waiver.get('reason'))))
    lines.append('decision: %s (decided by %s)' % (explanation['decision'], printable(', '.join(explanation['decided_by']))))
    return lines


def command_explain(args):
    from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_explain import explain_lines

    try:
        explanations = _explain_gathers(args) if args.policy is not None and not _is_report(args.files) \
            else _explain_report(args)
    except _ExplainError as exc:
        sys.stderr.write('portwarden explain: %s\n' % printable(exc))
        return EXIT_ERROR
    if args.format == 'json':
        sys.stdout.write(json.dumps({'explanations': explanations}, indent=2, sort_keys=True) + '\n')
        return EXIT_OK
    blocks = []
    for explanation in explanations:
        if 'rules' not in explanation:
            lines = _report_lines(explanation)
        else:
            lines = [printable(line) for line in explain_lines(explanation)]
            if 'report' in explanation:
                lines.insert(1, '  re-evaluated under the policy the report %s was judged under: %s' % (
                    printable(explanation['report']['path']),
                    'the same findings as the report' if explanation['report']['reproduced'] else
                    'NOT the findings the report holds (the host\'s groups not given with --group?); the report\'s '
                    'findings are what the audit decided'))
        blocks.append('\n'.join(lines))
    sys.stdout.write('\n\n'.join(blocks) + '\n')
    return EXIT_OK


def _is_report(paths):
    """Whether the one file given is a saved fleet report (it has a schema_version and hosts), not a gather."""
    if len(paths) != 1:
        return False
    try:
        data = _load_json(paths[0], 'report or gather result')
    except _ExplainError:
        return False
    return isinstance(data, dict) and 'schema_version' in data and 'hosts' in data


def command_baseline(args):
    import datetime

    from ansible_collections.portwarden.compliance.plugins.module_utils.policy_baseline import Options
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.baseline_run import BaselineError, run_baseline

    today = datetime.date.today()
    if args.as_of:
        try:
            today = datetime.date.fromisoformat(args.as_of)
        except ValueError:
            args.parser.error('--as-of %r is not a date; expected YYYY-MM-DD' % args.as_of)
    options = Options(processes=args.processes, bind=args.bind, ephemeral=args.ephemeral_udp, name=args.name,
                      today=today)
    try:
        outcome = run_baseline(args.files, options, inventory=args.inventory, output=args.output, force=args.force)
    except BaselineError as exc:
        sys.stderr.write('portwarden baseline: no policy was made:\n')
        sys.stderr.write(''.join('  %s\n' % printable(problem) for problem in exc.problems))
        return EXIT_ERROR
    except OSError as exc:
        sys.stderr.write('portwarden baseline: %s: cannot write the policy: %s\n'
                         % (printable(args.output), printable(exc.strerror or exc)))
        return EXIT_ERROR
    if outcome['written'] is None:
        sys.stdout.write(outcome['text'])
    for item in outcome['skipped']:
        sys.stderr.write('portwarden baseline: warning: skipped host %s (%s): %s\n'
                         % (printable(item.host), printable(item.source), printable(item.skipped)))
    for warning in outcome['warnings']:
        sys.stderr.write('portwarden baseline: warning: %s\n' % printable(warning))
    sys.stderr.write(''.join('portwarden baseline: %s\n' % printable(line) for line in outcome['summary']))
    if outcome['written']:
        sys.stderr.write('portwarden baseline: wrote %s; check it with: portwarden lint %s\n'
                         % (printable(outcome['written']), printable(outcome['written'])))
    return EXIT_PARTIAL if (outcome['skipped'] or outcome['proposals'] or outcome['warnings']) else EXIT_OK


def _version_text():
    from ansible_collections.portwarden.compliance.plugins.plugin_utils.collection_version import COLLECTION_ROOT, collection_version

    version = collection_version()
    if version is None:
        return 'portwarden (version unknown: neither MANIFEST.json nor galaxy.yml in %s names one)' % printable(COLLECTION_ROOT)
    return 'portwarden %s' % printable(version)


class _VersionAction(argparse.Action):
    """``--version``, reading the version only when asked (``gather`` stays quick)."""

    def __init__(self, option_strings, **kwargs):
        kwargs.update(dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0)
        super(_VersionAction, self).__init__(option_strings, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stdout.write(_version_text() + '\n')
        parser.exit()


def _paragraphs(text, width=79):
    """Help text of several paragraphs (blank lines between them), each filled to ``width``."""
    import textwrap

    return '\n\n'.join(textwrap.fill(paragraph, width, break_long_words=False, break_on_hyphens=False)
                       for paragraph in text.split('\n\n'))


def build_parser():
    parser = argparse.ArgumentParser(prog='portwarden', description='Listening-port compliance for fleets.')
    parser.add_argument('--version', action=_VersionAction, help="print the collection's version and exit")
    commands = parser.add_subparsers(dest='command', metavar='COMMAND')
    commands.required = True
    gather = commands.add_parser('gather', help="print this host's listening sockets",
                                 description="Print this host's listening sockets and the gather coverage. "
                                             "Exit 0 when coverage is complete, 1 when partial, 2 when nothing "
                                             "could be gathered.")
    gather.add_argument('--backend', choices=gather_sockets.BACKENDS, default='auto')
    gather.add_argument('--namespaces', choices=gather_sockets.NAMESPACE_MODES, default='host',
                        help='host: the network namespace the command runs in (default); all: every network namespace '
                             'of the host (containers, pods), each socket tagged with its namespace (needs root)')
    gather.add_argument('--nat', choices=gather_nat.NAT_MODES, default='auto',
                        help='auto: also read the NAT rules (nft, iptables-nft, iptables-legacy) for ports published by '
                             'DNAT or REDIRECT (default); off: sockets only')
    gather.add_argument('--protocol', action='append', choices=gather_sockets.PROTOCOLS,
                        help='limit to a protocol (repeatable; default: tcp and udp)')
    gather.add_argument('--format', choices=('table', 'json'), default='table')
    gather.add_argument('--compact', action='store_true', help='one-line JSON')
    gather.set_defaults(handler=command_gather)

    lint = commands.add_parser('lint', help='validate policy files',
                               description='Validate policy files against the schema and the semantic checks. '
                                           'Every error names the file, the path inside it and what was expected. '
                                           'Exit 0 when all are valid, 1 otherwise.')
    lint.add_argument('policies', nargs='+', metavar='POLICY')
    lint.set_defaults(handler=command_lint)

    schema = commands.add_parser('schema', help='print the policy JSON Schema')
    schema.add_argument('--output', metavar='PATH', help='write it to PATH instead')
    schema.set_defaults(handler=command_schema)

    registry = commands.add_parser('registry', help='the IANA port registry data')
    registry_commands = registry.add_subparsers(dest='registry_command', metavar='COMMAND')
    registry_commands.required = True
    update = registry_commands.add_parser(
        'update', help="regenerate the data from IANA's registry XML",
        description="Regenerate the collection's registry data from IANA's service-names-port-numbers.xml. "
                    "With --check, change nothing and exit 1 if the data would change.")
    update.add_argument('--from', dest='source', required=True, metavar='FILE.xml')
    update.add_argument('--check', action='store_true')
    update.add_argument('--output', metavar='PATH', help='write here instead of the installed collection')
    update.set_defaults(handler=command_registry_update)
    info = registry_commands.add_parser('info', help='date, checksum and size of the registry data in use')
    info.set_defaults(handler=command_registry_info)

    gate = commands.add_parser(
        'gate', help='gate a pipeline on a saved fleet report',
        description='Judge a saved fleet report (portwarden-report.json). Exit 0 when the fleet passes, 1 when a host '
                    'has drift at or above --fail-on, 2 when a host is unknown (unless --allow-unknown) or the report '
                    'is unusable (missing, truncated, another schema version, older than --max-age, stamped in the '
                    'future, its summary or a host status contradicted by its hosts, a host listed twice, no host, '
                    'or a file of its set beside it not of its run).')
    gate.add_argument('report', metavar='REPORT.json')
    gate.add_argument('--fail-on', default='high', choices=('never', 'info', 'low', 'medium', 'high', 'critical'),
                      help='lowest drift severity that fails the gate (default: high)')
    gate.add_argument('--allow-unknown', action='store_true',
                      help='do not fail on unknown hosts (not recommended: unknown fails closed)')
    gate.add_argument('--max-age', type=max_age_seconds, metavar='AGE',
                      help='refuse (exit 2) a report generated longer ago than AGE: seconds, or with s, m, h or d')
    gate.set_defaults(handler=command_gate)

    merge = commands.add_parser(
        'merge', help='merge part reports into one fleet report and gate on it',
        description='Merge part reports (each run over part of the fleet: an AWX slice, a --limit run, a host auditing '
                    'itself) and fleet reports into one fleet report in REPORT_DIR, in every format, with the diff '
                    'against its previous report and history as port_report writes them; then gate on it as '
                    'portwarden gate does. Every expected host appears: a host no part covers is unknown (no report), '
                    'a host whose newest audit is older than --max-age is unknown (stale), a host in several parts '
                    'takes the newest audit. Exit 0 when the fleet passes, 1 on drift at or above --fail-on, 2 when a '
                    'host is unknown, or when no verdict can be given: a bad part (unreadable, truncated, not a '
                    'portwarden report, another schema version, stamped in the future, tampered with, contradicting '
                    'itself) unless --skip-bad, parts of different policies unless --allow-mixed-policies.')
    merge.add_argument('parts', nargs='*', metavar='PART',
                       help='a part or fleet JSON report, or a directory: its parts/*/portwarden-report.json and its '
                            '*.json reports. Nothing found inside a directory is followed if it is a link.')
    merge.add_argument('--parts-dir', metavar='DIR',
                       help='a parts/ directory (REPORT_DIR/parts of the runs that wrote parts): its '
                            '*/portwarden-report.json. REPORT_DIR/parts is NOT read unless given here or as a PART.')
    merge.add_argument('--report-dir', required=True, metavar='REPORT_DIR',
                       help='where the merged fleet report is written (created if missing)')
    expected = merge.add_mutually_exclusive_group()
    expected.add_argument('--inventory', '-i', action='append', metavar='INVENTORY',
                          help="the fleet's inventory, read by ansible-core (any source: INI, YAML, a script, a plugin "
                               "config; repeatable); its hosts (all) are the expected hosts")
    expected.add_argument('--hosts', metavar='H1,H2', help='the expected hosts, comma-separated')
    expected.add_argument('--hosts-file', metavar='FILE', help='the expected hosts, one a line (# comments)')
    merge.add_argument('--max-age', type=max_age_seconds, metavar='AGE',
                       help="a host whose newest audit is older than AGE is unknown (stale): seconds, or with s, m, h or d")
    merge.add_argument('--skip-bad', action='store_true',
                       help='make the hosts of a bad part unknown (with the reason) instead of refusing the merge')
    merge.add_argument('--allow-mixed-policies', action='store_true',
                       help='merge parts judged under different policies or registry data; the report lists each '
                            'policy and the hosts it judged')
    merge.add_argument('--formats', type=_formats, default=None, metavar='json,junit,...',
                       help='formats to write (default: all of json, junit, markdown, html, prometheus)')
    merge.add_argument('--history-keep', type=int, default=30, metavar='N',
                       help='previous merged reports to keep under REPORT_DIR/history (default 30; 0 keeps none)')
    merge.add_argument('--fail-on', default='high', choices=('never', 'info', 'low', 'medium', 'high', 'critical'),
                       help='lowest drift severity that fails the gate (default: high)')
    merge.add_argument('--allow-unknown', action='store_true',
                       help='do not fail on unknown hosts (not recommended: unknown fails closed)')
    merge.set_defaults(handler=command_merge, parser=merge)

    explain = commands.add_parser(
        'explain', help='say why a socket got its verdict',
        description='Explain, in plain words, the verdict on one socket: the rules in policy order, which matched and '
                    'why or why not (host scope, protocol, port, ephemeral, family, via, namespace, bind, process), '
                    'which decided, each waiver checked and why it covers or not, and the decision. Two forms: '
                    '--host H --port P REPORT.json (a saved fleet report: the findings it holds for that socket; with '
                    '--policy, the policy it was judged under, re-explained rule by rule), or --policy POLICY '
                    'GATHER.json ... (gather results, from portwarden gather --format json: each socket and each port '
                    'published by NAT asked about, every one without --port; the host is the file name without .json '
                    'unless --host). Host text is '
                    'shown escaped. Exit 0, or 2 with one line when it cannot answer (no such host or socket, a file '
                    'that is not a report, a gather or a policy).')
    explain.add_argument('files', nargs='+', metavar='REPORT.json|GATHER.json')
    explain.add_argument('--host', metavar='H', help='the host (a report: required; a gather: its name in host patterns)')
    explain.add_argument('--port', type=_port_number, metavar='P', help='the port of the socket (required with a report)')
    explain.add_argument('--protocol', choices=('tcp', 'udp'), help='the protocol of the socket (default: both)')
    explain.add_argument('--address', metavar='A', help='the local address of the socket, as the gather writes it')
    explain.add_argument('--policy', metavar='POLICY', help='the policy file: required with gathers; with a report, the '
                                                            'policy it was judged under (its sha256 must match)')
    explain.add_argument('--group', action='append', default=[], metavar='GROUP',
                         help="an inventory group of the host, for rules scoped to group:NAME (repeatable)")
    explain.add_argument('--format', choices=('text', 'json'), default='text')
    explain.set_defaults(handler=command_explain)
    baseline = commands.add_parser(
        'baseline', help='write a default: deny policy from what the fleet runs now',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=_paragraphs('Make a policy from what a known-good fleet runs now: default: deny, the bundled IANA rule kept, '
                                'and one allow rule per protocol, port or range, bind class and process/unit that a set of hosts '
                                'shares, scoped to an inventory group when exactly its hosts have it, to the hosts otherwise. '
                                'Each rule\'s description says where it came from.\n\n'
                                'A FILE is a gather result (portwarden gather --format json, or the gather playbook\'s saved '
                                'results with -e portwarden_gather_save_dir=DIR) whose host is its file name without .json, or a '
                                'fleet report audited under the survey policy (docs/policies/survey.yml); a directory gives its '
                                '*.json. A host whose gather was partial or failed, or whose verdict is unknown, is skipped with a '
                                'warning. A listener on a port IANA has not assigned (856) is never allowed: it stays drift, and a '
                                'waiver proposal is written commented out for you to confirm.\n\n'
                                'The policy goes to standard output (or -o FILE), the summary to standard error. Exit 0: a policy '
                                'with nothing to confirm; 1: a policy, but hosts were skipped, inventory hosts had no input or '
                                'listeners are to confirm; 2: no policy (bad input, a host in two inputs, FILE exists).\n\n'
                                'The survey policy of this installation: %s' % _SURVEY_POLICY))
    baseline.add_argument('files', nargs='+', metavar='FILE', help='gather results, survey reports or directories of them')
    baseline.add_argument('-i', '--inventory', action='append', metavar='INVENTORY',
                          help="the fleet's inventory, read by ansible-core (repeatable): scopes rules to its groups; a "
                               "host of the inputs not in it is skipped")
    baseline.add_argument('-o', '--output', metavar='POLICY', help='write the policy here (atomically) instead')
    baseline.add_argument('--force', action='store_true', help='replace the -o file if it exists')
    baseline.add_argument('--processes', action=argparse.BooleanOptionalAction, default=True,
                          help='rules name the processes and systemd units that hold each port (default: yes)')
    baseline.add_argument('--bind', action=argparse.BooleanOptionalAction, default=True,
                          help='rules name the bind class (loopback, any, specific) of each port (default: yes)')
    baseline.add_argument('--ephemeral-udp', choices=('skip', 'include'), default='skip',
                          help='UDP sockets in the ephemeral port range, most likely clients: skip them (default; the '
                               'policy ignores them anyway) or allow them with include_ephemeral rules')
    baseline.add_argument('--name', default='baseline', help='the policy\'s name (default: baseline)')
    baseline.add_argument('--as-of', metavar='YYYY-MM-DD',
                          help='the date the descriptions and the proposed waivers count from (default: today)')
    baseline.set_defaults(handler=command_baseline, parser=baseline)
    return parser


def _port_number(text):
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not a port number' % text) from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError('%d is not a port number (0-65535)' % port)
    return port


class _PrintableStream(object):
    """A text stream that writes through ``printable`` (line feeds kept): whatever a command prints, no
    control or invisible character reaches the terminal, and no undecodable byte stops the write."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        return self._stream.write(printable(text, newlines=True))

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == 'merge':
        from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES

        if args.history_keep < 0:
            args.parser.error('--history-keep must be 0 or more, not %d' % args.history_keep)
        if args.hosts is not None and not args.hosts.strip(' ,'):
            args.parser.error('--hosts names no host')
        args.formats = args.formats or list(FILE_NAMES)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _PrintableStream(sys.stdout), _PrintableStream(sys.stderr)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # last resort: a user sees a sentence, never a traceback
        sys.stderr.write('portwarden %s: internal error: %s: %s (please report it)\n'
                         % (args.command, type(exc).__name__, printable(exc)))
        return EXIT_ERROR
    finally:
        sys.stdout, sys.stderr = streams


if __name__ == '__main__':
    sys.exit(main())
