"""Attacks on ``portwarden baseline``: each runs the real command on files an attacker could shape.

- Processes with hostile names (``*``, a newline, YAML and comment syntax) listen on real sockets in a network
  namespace: the policy is valid YAML that parses back to exactly those names, and a rogue that takes over the
  port named ``*`` is drift, not allowed by a wildcard.
- Host names that are patterns (``*``), exclusions (``!x``) or groups (``group:web``), from file names.
- A report naming a host that is not in the inventory; the same host in two files; a report of another policy.
- Malformed files: not JSON, truncated, NaN, a byte order mark, a key twice, nested too deep, a FIFO, a link
  planted in a directory, a gather with a bad port: each one line naming the file and the path, no traceback.
- A listener on 856: never allowed silently. A partial gather: its host is skipped, and no "every host" rule
  covers it unseen.
- ``-o``: an existing file or link is not replaced without --force; two runs at once onto one file: one wins
  whole, the other refuses.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.portwarden.compliance.plugins.module_utils import policy_baseline as pb
from ansible_collections.portwarden.compliance.plugins.module_utils import registry
from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import compile_policy, evaluate_host
from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import build_report, host_entry
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import load_policy
from tests.helpers import netns
from tests.helpers.gather import gather_in

CLI = [sys.executable, '-m', 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli']


def baseline(*args, timeout=120):
    return subprocess.run(CLI + ['baseline'] + [str(arg) for arg in args], capture_output=True, text=True, check=False,
                          timeout=timeout)


def sock(port, name='web', address='0.0.0.0', protocol='tcp'):
    return {'protocol': protocol, 'family': 'ipv6' if ':' in address else 'ipv4', 'address': address, 'port': port,
            'v6only': None, 'ephemeral': False, 'inode': port,
            'processes': [{'pid': port, 'name': name, 'user': 'root', 'uid': 0, 'exe': None, 'unit': None}]}


def gathered(*sockets, complete=True):
    return {'sockets': list(sockets), 'coverage': {'complete': complete, 'errors': [] if complete else ['not root'],
                                                   'sockets': len(sockets)}}


def write(path, data):
    with open(str(path), 'w') as handle:
        handle.write(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def no_traceback(proc):
    assert 'Traceback' not in proc.stderr and 'internal error' not in proc.stderr, proc.stderr


@pytest.mark.netns
def test_hostile_process_names_on_real_sockets_stay_exact(tmp_path):
    if not netns.have_netns():
        pytest.skip('needs ip netns (root)')
    names = ['*', 'a\nb: c', '{x}', '# y', 'q\'"', ': z', '[!a]', '&ref']
    with netns.Namespace('baseline-adv-names') as ns:
        holders = [ns.listen({'name': name, 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 8000 + i}]})
                   for i, name in enumerate(names)]
        _code, result = gather_in(ns, 'auto')
        gather_file = write(tmp_path / 'h1.json', result)
        made = baseline(gather_file, '-o', tmp_path / 'policy.yml', '--as-of', '2026-12-02')
        assert made.returncode == 0, made.stderr
        policy = load_policy(str(tmp_path / 'policy.yml'))  # valid, as portwarden lint reads it
        by_port = dict((rule['match']['ports'][0], rule['expect']['processes']) for rule in policy['rules'][1:])
        assert by_port == dict((8000 + i, [pb.glob_exact(name)]) for i, name in enumerate(names))
        with open(str(tmp_path / 'policy.yml')) as handle:
            text = handle.read()
        assert yaml.safe_load(text) == policy
        # Every line is a comment, a key or a list item: no name broke out of its scalar.
        assert all(line in ('', '---') or line.lstrip().startswith(('#', '- ')) or ':' in line for line in text.splitlines())
        # A rogue takes over the port of the process named "*": drift, "*" allowed "*" alone.
        holders[0].stop()
        ns.listen({'name': 'rogue', 'sockets': [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 8000}]})
        _code, after = gather_in(ns, 'auto')
    verdict = evaluate_host(after, compile_policy(policy), 'h1')
    assert verdict['status'] == 'drift'
    assert [(item['rule'], item['port']) for item in verdict['findings']] == [('allow-tcp-8000-any', 8000)]
    assert 'is held by rogue[' in verdict['findings'][0]['message']


def test_host_names_that_are_patterns_are_exact_or_skipped(tmp_path):
    for name in ('*', '!h2', 'group:web', 'h2'):
        write(tmp_path / ('%s.json' % name), gathered(sock(22, 'sshd')))
    made = baseline(tmp_path)
    no_traceback(made)
    assert made.returncode == 1
    assert 'skipped host !h2' in made.stderr and 'skipped host group:web' in made.stderr
    policy = yaml.safe_load(made.stdout)
    rule = policy['rules'][1]
    # Not "every host": two hosts were skipped, unseen. And "*" names the host called "*" only.
    assert rule['hosts'] == ['[*]', 'h2']
    compiled = compile_policy(policy)
    assert evaluate_host(gathered(sock(22, 'sshd')), compiled, 'other')['status'] == 'drift'
    assert evaluate_host(gathered(sock(22, 'sshd')), compiled, '*')['status'] == 'compliant'


def _survey_report(path, gathers):
    compiled = compile_policy(pb.SURVEY_POLICY)
    hosts = [host_entry(host, evaluate_host(data, compiled, host)) for host, data in sorted(gathers.items())]
    info = dict(compiled.info(), rules=[{'id': rule.id, 'severity': rule.severity, 'description': rule.description}
                                        for rule in compiled.rules])
    return write(path, build_report(hosts, info, registry.registry_info()))


def test_a_report_host_not_in_the_inventory_is_skipped(tmp_path):
    report = _survey_report(tmp_path / 'report.json', {'h1': gathered(sock(22, 'sshd')), 'ghost': gathered(sock(4444))})
    inventory = write(tmp_path / 'inventory.yml', yaml.safe_dump({'all': {'hosts': {'h1': None, 'h2': None}}}))
    made = baseline(report, '-i', inventory)
    no_traceback(made)
    assert made.returncode == 1
    assert 'skipped host ghost' in made.stderr and 'not a host of the inventory' in made.stderr
    assert '1 inventory host had no input, so what listens there is not allowed: h2' in made.stderr
    policy = yaml.safe_load(made.stdout)
    assert [(rule['id'], rule.get('hosts')) for rule in policy['rules']] == [
        ('iana-unassigned-closed', None), ('allow-tcp-22-any', ['h1'])]
    assert 'ghost' not in made.stdout and '4444' not in made.stdout


def test_a_host_in_two_files_is_refused(tmp_path):
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    first = write(tmp_path / 'a' / 'h1.json', gathered(sock(22, 'sshd')))
    second = write(tmp_path / 'b' / 'h1.json', gathered(sock(22, 'sshd'), sock(4444, 'backdoor')))
    report = _survey_report(tmp_path / 'report.json', {'h1': gathered(sock(22, 'sshd'))})
    for args in ((tmp_path / 'a', tmp_path / 'b'), (first, report)):
        made = baseline(*args, '-o', tmp_path / 'out.yml')
        no_traceback(made)
        assert made.returncode == 2 and not os.path.exists(str(tmp_path / 'out.yml'))
        assert 'host h1 is also in %s' % first in made.stderr, made.stderr
    assert second


def test_a_report_of_another_policy_is_refused(tmp_path):
    compiled = compile_policy(load_policy(os.path.join(os.path.dirname(pb.__file__), '..', '..', 'docs', 'policies',
                                                       'baseline.yml')))
    hosts = [host_entry('h1', evaluate_host(gathered(sock(22, 'sshd')), compiled, 'h1'))]
    report = write(tmp_path / 'report.json', build_report(hosts, compiled.info(), registry.registry_info()))
    made = baseline(report)
    no_traceback(made)
    assert made.returncode == 2
    assert '%s: policy.sha256: expected the survey policy (portwarden-survey' % report in made.stderr
    assert 'lists only what its policy flags' in made.stderr


MALFORMED = [
    ('notjson.json', 'hello', 'notjson.json: (top level): not valid JSON'),
    ('truncated.json', '{"sockets": [', 'truncated.json: (top level): not valid JSON'),
    ('nan.json', '{"sockets": [], "coverage": {"complete": true, "errors": [], "x": NaN}}',
     'nan.json: (top level): not valid JSON (NaN is not JSON'),
    ('bom.json', '\ufeff{"sockets": [], "coverage": {"complete": true, "errors": []}}', 'bom.json: (top level): not valid JSON'),
    ('twice.json', '{"sockets": [], "sockets": [], "coverage": {"complete": true, "errors": []}}',
     'twice.json: (top level): not valid JSON (duplicate key'),
    ('list.json', '[1, 2]', 'list.json: (top level): expected a gather result (a mapping with sockets and coverage) or a '
                            'portwarden report, got a list'),
    ('deep.json', '[' * 100000 + ']' * 100000, 'deep.json: (top level): JSON nested too deeply'),
    ('badport.json', json.dumps(gathered(dict(sock(22), port=True))),
     'badport.json: sockets[0].port: expected a port number 0-65535, got True'),
    ('noprocs.json', json.dumps(gathered(dict(sock(22), processes='root'))),
     'noprocs.json: sockets[0].processes: expected a list of processes'),
    ('report.json', json.dumps({'schema_version': 99, 'hosts': []}), 'report.json: report schema version 99'),
]


@pytest.mark.parametrize('name, text, message', MALFORMED, ids=[item[0] for item in MALFORMED])
def test_malformed_files_are_one_line_naming_the_file_and_the_path(tmp_path, name, text, message):
    path = write(tmp_path / name, text)
    made = baseline(path)
    no_traceback(made)
    assert made.returncode == 2 and made.stdout == ''
    lines = made.stderr.splitlines()
    assert lines[0] == 'portwarden baseline: no policy was made:'
    assert len(lines) == 2 and lines[1].startswith('  %s' % os.path.join(str(tmp_path), message)), lines


def test_a_fifo_and_a_planted_link_are_not_read(tmp_path):
    fifo = str(tmp_path / 'fifo.json')
    os.mkfifo(fifo)
    made = baseline(fifo, timeout=20)  # never blocks on it
    no_traceback(made)
    assert made.returncode == 2 and '%s: cannot read it: not a regular file' % fifo in made.stderr
    planted = tmp_path / 'dir'
    planted.mkdir()
    write(planted / 'h1.json', gathered(sock(22, 'sshd')))
    os.symlink(write(tmp_path / 'elsewhere.json', gathered(sock(4444))), str(planted / 'h2.json'))
    made = baseline(planted)
    assert made.returncode == 2
    assert '%s: a symbolic link; it was not followed' % (planted / 'h2.json') in made.stderr


def test_a_listener_on_856_is_never_allowed_silently(tmp_path):
    data = gathered(sock(22, 'sshd'), sock(856, 'agent'))
    made = baseline(write(tmp_path / 'h1.json', data), '--as-of', '2026-12-02')
    no_traceback(made)
    assert made.returncode == 1
    assert ('NOT ALLOWED, TO CONFIRM: tcp 856 on an IANA-unassigned port, on h1 (rule confirm-tcp-856-any; waiver '
            'proposal commented out at the end)') in made.stderr
    policy = yaml.safe_load(made.stdout)
    assert 'waivers' not in policy
    verdict = evaluate_host(data, compile_policy(policy), 'h1')
    assert verdict['status'] == 'drift'
    assert [(item['rule'], item['port'], item['status']) for item in verdict['findings']] == \
        [('iana-unassigned-closed', 856, 'drift')]
    assert '#  - rule: "iana-unassigned-closed"\n#    hosts: ["h1"]\n#    ports: [856]\n' in made.stdout


def test_a_partial_gather_is_skipped_and_no_every_host_rule_covers_it(tmp_path):
    write(tmp_path / 'h1.json', gathered(sock(22, 'sshd'), sock(4444, 'backdoor'), complete=False))
    write(tmp_path / 'h2.json', gathered(sock(22, 'sshd')))
    made = baseline(tmp_path)
    no_traceback(made)
    assert made.returncode == 1
    assert 'skipped host h1 (%s): partial gather (not root)' % (tmp_path / 'h1.json') in made.stderr
    policy = yaml.safe_load(made.stdout)
    assert [(rule['id'], rule.get('hosts')) for rule in policy['rules']] == [
        ('iana-unassigned-closed', None), ('allow-tcp-22-any', ['h2'])]
    only = baseline(tmp_path / 'h1.json')
    assert only.returncode == 2 and 'no host to make a policy from: h1' in only.stderr


def test_output_is_never_replaced_without_force(tmp_path):
    source = write(tmp_path / 'h1.json', gathered(sock(22, 'sshd')))
    target = write(tmp_path / 'policy.yml', 'mine\n')
    made = baseline(source, '-o', target)
    assert made.returncode == 2 and 'policy.yml exists; give --force to replace it' in made.stderr
    with open(target) as handle:
        assert handle.read() == 'mine\n'
    secret = write(tmp_path / 'secret', 'keep\n')
    link = str(tmp_path / 'link.yml')
    os.symlink(secret, link)
    assert baseline(source, '-o', link).returncode == 2
    made = baseline(source, '-o', link, '--force')
    assert made.returncode == 0, made.stderr
    assert not os.path.islink(link) and load_policy(link)['default'] == 'deny'
    with open(secret) as handle:
        assert handle.read() == 'keep\n'  # the link was replaced, its target untouched


def test_two_runs_at_once_onto_one_file(tmp_path):
    write(tmp_path / 'a.json', gathered(sock(22, 'sshd')))
    write(tmp_path / 'b.json', gathered(sock(80, 'nginx')))
    target = str(tmp_path / 'policy.yml')
    for _round in range(5):
        if os.path.exists(target):
            os.remove(target)
        procs = [subprocess.Popen(CLI + ['baseline', str(tmp_path / name), '-o', target], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for name in ('a.json', 'b.json')]
        outcomes = [(proc.wait(timeout=120), proc.stderr.read()) for proc in procs]
        for proc in procs:
            proc.stdout.close()
            proc.stderr.close()
        codes = sorted(code for code, _err in outcomes)
        assert codes == [0, 2], outcomes
        loser = next(err for code, err in outcomes if code == 2)
        assert 'exists; give --force' in loser or 'cannot write the policy: File exists' in loser, loser
        rules = load_policy(target)['rules']
        winner = next(name for (code, _err), name in zip(outcomes, ('a.json', 'b.json')) if code == 0)
        assert rules[1]['match']['ports'] == ([22] if winner == 'a.json' else [80])
        assert sorted(os.listdir(str(tmp_path))) == ['a.json', 'b.json', 'policy.yml']  # no temporary file left


def test_a_gather_whose_process_names_read_like_a_report_is_a_gather(tmp_path):
    data = gathered(sock(22, '"schema_version"'), sock(80, '"hosts"'))
    made = baseline(write(tmp_path / 'h1.json', data))
    no_traceback(made)
    assert made.returncode == 0, made.stderr
    assert [rule['expect']['processes'] for rule in yaml.safe_load(made.stdout)['rules'][1:]] == \
        [['"schema_version"'], ['"hosts"']]
