"""policy_baseline: gather results and survey reports -> a default: deny policy, table-driven.

Each case builds the policy from hand-made gather results, renders it, parses the text back with the policy loader
and re-evaluates the hosts with evaluate_host, as ``portwarden baseline`` does.
"""

import datetime
import fnmatch
import os
import random

import pytest
import yaml

from ansible_collections.portwarden.compliance.plugins.module_utils import policy_baseline as pb
from ansible_collections.portwarden.compliance.plugins.module_utils.atomic_write import write_atomically
from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import compile_policy, evaluate_host
from ansible_collections.portwarden.compliance.plugins.plugin_utils.policy_load import (
    parse_policy_text,
    read_policy_file,
    validate_policy,
)
from tests.conftest import REPO

TODAY = datetime.date(2026, 12, 2)


def sock(port, address='0.0.0.0', protocol='tcp', name='web', unit=None, ephemeral=False, processes=None, namespace=None,
         pid=100):
    family = 'ipv6' if ':' in address else 'ipv4'
    if processes is None:
        processes = [{'pid': pid, 'name': name, 'user': 'root', 'uid': 0, 'exe': '/usr/bin/%s' % name, 'unit': unit}]
    entry = {'protocol': protocol, 'family': family, 'address': address, 'port': port,
             'v6only': None if family == 'ipv4' else False, 'ephemeral': ephemeral, 'inode': None,
             'processes': processes}
    if namespace is not None:
        entry['namespace'] = namespace
    return entry


def gather(*sockets, complete=True):
    return {'sockets': list(sockets), 'coverage': {'complete': complete, 'errors': [] if complete else ['not root'],
                                                   'sockets': len(sockets)}}


def hosts_of(gathers):
    return [pb.host_from_gather(gathered, host, '/in/%s.json' % host) for host, gathered in sorted(gathers.items())]


def build(gathers, groups=None, **options):
    items = hosts_of(gathers)
    policy, proposals = pb.build_baseline(items, pb.Options(today=TODAY, **options), groups=groups)
    return policy, proposals, items


def rules_by_id(policy):
    return dict((rule['id'], rule) for rule in policy['rules'])


def groups_of(groups):
    found = {}
    for name, members in groups.items():
        for host in members:
            found.setdefault(host, []).append(name)
    return found


def check_round_trip(policy, proposals, items, groups=None):
    """The text parses back to the policy, is valid, and every host is compliant but for its listeners to confirm."""
    text = pb.render_baseline(policy, proposals, summary_lines=['a summary line'])
    parsed = parse_policy_text(text, 'baseline.yml')
    assert parsed == policy
    assert validate_policy(parsed, 'baseline.yml') == []
    assert pb.verify_baseline(policy, items, groups_of(groups or {}), TODAY) == []
    return text


FLEET = {
    'web-1': gather(sock(8080), sock(8081), sock(22, name='sshd')),
    'web-2': gather(sock(8080), sock(8081), sock(22, name='sshd')),
    'db-1': gather(sock(8080), sock(8081), sock(22, name='sshd'), sock(5432, '127.0.0.1', name='postgres')),
    'db-2': gather(sock(8080), sock(8081), sock(22, name='sshd'), sock(5432, '127.0.0.1', name='postgres')),
    'odd-1': gather(sock(8080), sock(8081), sock(22, name='sshd'), sock(9100, name='exporter')),
}
GROUPS = {'web': ['web-1', 'web-2'], 'databases': ['db-1', 'db-2'], 'legacy': ['odd-1', 'web-1']}


def test_shared_rule_once_group_scope_and_host_scope():
    policy, proposals, items = build(FLEET, groups=GROUPS)
    rules = rules_by_id(policy)
    assert policy['default'] == 'deny' and policy['rules'][0] == pb.IANA_RULE
    assert list(rules) == ['iana-unassigned-closed', 'allow-tcp-22-any', 'allow-tcp-5432-loopback',
                           'allow-tcp-8080-8081-any', 'allow-tcp-9100-any']
    assert 'hosts' not in rules['allow-tcp-8080-8081-any'] and 'hosts' not in rules['allow-tcp-22-any']
    assert rules['allow-tcp-8080-8081-any']['match'] == {'ports': ['8080-8081'], 'protocols': ['tcp'], 'bind': ['any']}
    assert rules['allow-tcp-22-any']['expect'] == {'bind': ['any'], 'processes': ['sshd']}
    assert rules['allow-tcp-5432-loopback']['hosts'] == ['group:databases']
    assert rules['allow-tcp-9100-any']['hosts'] == ['odd-1']  # no group is exactly odd-1
    assert 'group databases (2 hosts)' in rules['allow-tcp-5432-loopback']['description']
    assert 'every host (5)' in rules['allow-tcp-22-any']['description']
    assert 'from 5 files (db-1.json, db-2.json, odd-1.json and 2 more)' in rules['allow-tcp-22-any']['description']
    assert proposals == []
    check_round_trip(policy, proposals, items, GROUPS)


def test_a_group_but_a_few_of_its_hosts():
    members = ['n%02d' % index for index in range(20)]
    gathers = dict((host, gather(sock(22, name='sshd'), sock(80, name='nginx'))) for host in members)
    gathers['n03'] = gather(sock(22, name='sshd'))  # no web server here
    gathers['x1'] = gather(sock(22, name='sshd'))
    groups = {'web': members}
    policy, _proposals, items = build(gathers, groups=groups)
    rules = rules_by_id(policy)
    assert rules['allow-tcp-80-any']['hosts'] == ['group:web', '!n03']
    assert 'group web but 1 of its 20 hosts (19 hosts)' in rules['allow-tcp-80-any']['description']
    check_round_trip(policy, [], items, groups)
    # Not when more than a tenth of the group lacks it: then the hosts are named.
    for host in ('n04', 'n05'):
        gathers[host] = gather(sock(22, name='sshd'))
    policy, _proposals, items = build(gathers, groups=groups)
    assert len(rules_by_id(policy)['allow-tcp-80-any']['hosts']) == 17


@pytest.mark.parametrize('ports, expected', [
    ([8080, 8081, 8082], [['8080-8082']]),
    ([8080, 8082], [[8080], [8082]]),
    ([8082, 8080, 8081, 9000], [['8080-8082'], [9000]]),
])
def test_adjacent_ports_of_the_same_hosts_and_holders_make_one_range(ports, expected):
    policy, _proposals, items = build({'h1': gather(*[sock(port) for port in ports])})
    assert [rule['match']['ports'] for rule in policy['rules'][1:]] == expected
    check_round_trip(policy, [], items)


def test_ports_of_other_hosts_or_other_holders_are_not_merged():
    policy, _proposals, items = build({'h1': gather(sock(8080), sock(8081, name='other')),
                                       'h2': gather(sock(8080), sock(8081, name='other'), sock(8082, name='other'))})
    assert [(rule['match']['ports'], rule.get('hosts'), rule['expect'].get('processes')) for rule in policy['rules'][1:]] \
        == [([8080], None, ['web']), ([8081], None, ['other']), ([8082], ['h2'], ['other'])]
    check_round_trip(policy, [], items)


def test_one_host_two_sockets_on_one_port_make_one_rule_allowing_both_holders():
    # 10.0.0.1:80 nginx and 10.0.0.2:80 apache: two rules would each judge the other's socket.
    policy, _proposals, items = build({'h1': gather(sock(80, '10.0.0.1', name='nginx'), sock(80, '10.0.0.2', name='apache'))})
    assert [(rule['id'], rule['expect']) for rule in policy['rules'][1:]] == \
        [('allow-tcp-80-specific', {'bind': ['specific'], 'processes': ['apache', 'nginx']})]
    check_round_trip(policy, [], items)


def test_an_unknown_owner_drops_the_process_constraint_for_that_host_and_port():
    policy, _proposals, items = build({'h1': gather(sock(111, processes=[]), sock(111, '::', processes=[]))})
    assert policy['rules'][1]['expect'] == {'bind': ['any']}
    check_round_trip(policy, [], items)


def test_units_are_constrained_when_every_holder_has_one():
    policy, _proposals, _items = build({'h1': gather(sock(80, name='nginx', unit='nginx.service'), sock(81, name='x'))})
    rules = rules_by_id(policy)
    assert rules['allow-tcp-80-any']['expect'] == {'bind': ['any'], 'processes': ['nginx'], 'units': ['nginx.service']}
    assert 'units' not in rules['confirm-tcp-81-any']['expect']


@pytest.mark.parametrize('options, match, expect', [
    ({}, {'ports': [5432], 'protocols': ['tcp'], 'bind': ['loopback']}, {'bind': ['loopback'], 'processes': ['pg']}),
    ({'processes': False}, {'ports': [5432], 'protocols': ['tcp'], 'bind': ['loopback']}, {'bind': ['loopback']}),
    ({'bind': False}, {'ports': [5432], 'protocols': ['tcp']}, {'bind': ['loopback', 'any', 'specific'],
                                                                'processes': ['pg']}),
    ({'bind': False, 'processes': False}, {'ports': [5432], 'protocols': ['tcp']},
     {'bind': ['loopback', 'any', 'specific']}),
])
def test_strictness_options(options, match, expect):
    policy, _proposals, items = build({'h1': gather(sock(5432, '127.0.0.1', name='pg'))}, **options)
    assert (policy['rules'][1]['match'], policy['rules'][1]['expect']) == (match, expect)
    check_round_trip(policy, [], items)


def test_without_bind_one_rule_covers_both_bind_classes_of_a_host():
    policy, _proposals, items = build({'h1': gather(sock(5432, '127.0.0.1', name='pg'), sock(5432, '::', name='pg'))},
                                      bind=False)
    assert len(policy['rules']) == 2
    check_round_trip(policy, [], items)
    policy, _proposals, items = build({'h1': gather(sock(5432, '127.0.0.1', name='pg'), sock(5432, '::', name='pg'))})
    assert [rule['match']['bind'] for rule in policy['rules'][1:]] == [['any'], ['loopback']]
    check_round_trip(policy, [], items)


def test_ephemeral_udp_is_skipped_or_included():
    gathers = {'h1': gather(sock(53, protocol='udp', name='dns'), sock(40001, protocol='udp', name='cl', ephemeral=True))}
    policy, _proposals, items = build(gathers)
    assert [rule['id'] for rule in policy['rules'][1:]] == ['allow-udp-53-any']
    check_round_trip(policy, [], items)
    policy, _proposals, items = build(gathers, ephemeral='include')
    rules = rules_by_id(policy)
    assert rules['allow-udp-40001-any']['match']['include_ephemeral'] is True
    check_round_trip(policy, [], items)


def test_an_unassigned_port_is_never_allowed_silently():
    policy, proposals, items = build({'h1': gather(sock(22, name='sshd'), sock(856, name='agent')),
                                      'h2': gather(sock(22, name='sshd'))})
    rules = rules_by_id(policy)
    flagged = rules['confirm-tcp-856-any']
    assert flagged['description'].startswith('TO CONFIRM (IANA has not assigned this port')
    assert proposals == [{'rule_id': 'confirm-tcp-856-any', 'hosts': ['h1'], 'waiver': {
        'rule': 'iana-unassigned-closed', 'hosts': ['h1'], 'ports': [856], 'protocols': ['tcp'],
        'reason': 'TO CONFIRM: found listening by portwarden baseline (rule confirm-tcp-856-any); say why it may',
        'expires': '2027-01-01'}}]
    text = check_round_trip(policy, proposals, items)
    # The host stays drift on 856 under the policy as written ...
    result = evaluate_host(items[0].gathered, compile_policy(policy), 'h1', (), TODAY)
    assert result['status'] == 'drift'
    assert [(item['rule'], item['port']) for item in result['findings']] == [('iana-unassigned-closed', 856)]
    # ... and the proposal, uncommented, is a valid waiver that makes it compliant.
    assert '\n#waivers:\n#  - rule: "iana-unassigned-closed"\n' in text
    accepted = parse_policy_text(text.replace('\n#waivers:', '\nwaivers:').replace('\n#  ', '\n  '), 'accepted.yml')
    assert validate_policy(accepted, 'accepted.yml') == []
    assert evaluate_host(items[0].gathered, compile_policy(accepted), 'h1', (), TODAY)['status'] == 'compliant'
    assert evaluate_host(items[1].gathered, compile_policy(accepted), 'h2', (), TODAY)['status'] == 'compliant'


def test_unassigned_ports_do_not_merge_into_an_allowed_range():
    policy, _proposals, _items = build({'h1': gather(sock(854), sock(855), sock(856))})  # 854 assigned, 855-859 not
    assert [rule['id'] for rule in policy['rules'][1:]] == ['allow-tcp-854-any', 'confirm-tcp-855-856-any']


@pytest.mark.parametrize('gathered, skipped', [
    (gather(sock(22), complete=False), 'partial gather (not root)'),
    ({'failed': True, 'msg': 'psutil missing', 'coverage': None}, 'the gather failed: psutil missing'),
])
def test_a_host_not_seen_whole_is_skipped(gathered, skipped):
    item = pb.host_from_gather(gathered, 'h1', 'h1.json')
    assert item.skipped.startswith(skipped) and item.listeners == []


@pytest.mark.parametrize('data, message', [
    ([], 'h1.json: (top level): expected a gather result (a mapping with sockets and coverage) or a portwarden report, '
         'got a list'),
    ({'hello': 1}, 'h1.json: coverage: expected a gather result'),
    ({'coverage': {'complete': True, 'errors': []}, 'sockets': [dict(sock(22), port=70000)]},
     'h1.json: sockets[0].port: expected a port number 0-65535, got 70000'),
    ({'coverage': {'complete': 'yes', 'errors': []}, 'sockets': []}, 'h1.json: coverage.complete: expected true or false'),
])
def test_malformed_input_names_the_file_the_path_and_what_was_expected(data, message):
    with pytest.raises(pb.BaselineInputError) as caught:
        pb.host_from_gather(data, 'h1', 'h1.json')
    assert str(caught.value).startswith(message), str(caught.value)


def test_output_is_deterministic_whatever_the_input_order():
    texts = set()
    for seed in range(5):
        items = hosts_of(FLEET)
        random.Random(seed).shuffle(items)
        for item in items:
            random.Random(seed).shuffle(item.listeners)
        policy, proposals = pb.build_baseline(items, pb.Options(today=TODAY), groups=GROUPS)
        texts.add(pb.render_baseline(policy, proposals))
    assert len(texts) == 1


def test_namespaces_gathered_scope_rules_to_where_the_socket_lives():
    host_ns = {'inode': 4026531840, 'host': True, 'pid': 1, 'container': None}
    web_ns = {'inode': 4026532000, 'host': False, 'pid': 900,
              'container': {'kind': 'docker', 'id': 'ab' * 32, 'pod_uid': None, 'name': 'web*1'}}
    gathered = gather(sock(22, name='sshd', namespace=host_ns), sock(80, name='nginx', namespace=web_ns))
    gathered['coverage']['namespaces'] = {'scanned': [], 'unreadable': [], 'vanished': []}
    policy, _proposals, items = build({'h1': gathered})
    rules = rules_by_id(policy)
    assert rules['allow-tcp-22-any']['namespaces'] == ['host']
    assert rules['allow-tcp-80-any']['namespaces'] == ['docker:web[*]1']
    check_round_trip(policy, [], items)


def test_hostile_text_is_quoted_and_escaped_exactly():
    names = ['a\nb', '*', '{x}', '# c', "it's", '"q"', 'back\\slash', '\x1b[2J', '\u202etxt', 'sn\u2028ap', '\U0001f600',
             'b\udcff', 'ok: yes', '- dash', '&anchor', '!tag', '[set]', '?']
    for name in names:
        quoted = pb.yaml_string(name)
        assert '\n' not in quoted and quoted.isascii()
        assert yaml.safe_load('k: %s' % quoted) == {'k': name}
        assert fnmatch.fnmatchcase(name, pb.glob_exact(name))
        assert not fnmatch.fnmatchcase(name + 'x', pb.glob_exact(name))
    assert not fnmatch.fnmatchcase('rogue', pb.glob_exact('*'))


def test_survey_policy_file_is_the_survey_policy_and_the_iana_rule_is_the_bundled_one():
    assert read_policy_file(os.path.join(REPO, 'docs', 'policies', 'survey.yml')) == pb.SURVEY_POLICY
    bundled = read_policy_file(os.path.join(REPO, 'docs', 'policies', 'baseline.yml'))
    assert bundled['rules'] == [pb.IANA_RULE]


def _report(hosts, digest=None):
    return {'schema_version': 2, 'policy': {'name': 'portwarden-survey', 'sha256': digest or pb.SURVEY_DIGEST},
            'hosts': hosts}


def _entry(host, findings, status='drift', reasons=()):
    return {'host': host, 'status': status, 'reasons': list(reasons), 'findings': findings}


def _finding(rule, port, address='0.0.0.0', name='web'):
    return {'rule': rule, 'severity': 'info', 'status': 'drift', 'protocol': 'tcp', 'family': 'ipv4', 'address': address,
            'port': port, 'v6only': None, 'where': 'host', 'namespace': None, 'service': None,
            'processes': [{'pid': 5, 'name': name, 'user': 'root', 'uid': 0, 'exe': None, 'unit': None,
                           'start_time': None}], 'waived': False, 'waiver': None, 'message': 'm'}


def test_a_survey_report_lists_its_hosts_listeners():
    items = pb.hosts_from_report(_report([
        _entry('h1', [_finding('default', 22, name='sshd'), _finding('iana-unassigned-closed', 856, name='agent')]),
        _entry('h2', [], status='compliant'),
        _entry('h3', [], status='unknown', reasons=['unreachable: ssh']),
    ]), 'r.json')
    assert [(item.host, item.skipped) for item in items][:2] == [('h1', None), ('h2', None)]
    assert items[2].skipped.startswith('verdict unknown (unreachable: ssh)')
    policy, proposals = pb.build_baseline([item for item in items if item.skipped is None], pb.Options(today=TODAY))
    assert [rule['id'] for rule in policy['rules']] == ['iana-unassigned-closed', 'allow-tcp-22-any', 'confirm-tcp-856-any']
    assert rules_by_id(policy)['allow-tcp-22-any']['hosts'] == ['h1']  # h2 listens on nothing
    check_round_trip(policy, proposals, [item for item in items if item.skipped is None])


def test_a_report_of_another_policy_is_refused():
    with pytest.raises(pb.BaselineInputError) as caught:
        pb.hosts_from_report(_report([], digest='0' * 64), 'r.json')
    assert str(caught.value).startswith("r.json: policy.sha256: expected the survey policy (portwarden-survey, sha256 ")


def test_write_atomically_without_replace_never_replaces(tmp_path):
    target = str(tmp_path / 'policy.yml')
    write_atomically(target, 'first\n', replace=False)
    with pytest.raises(FileExistsError):
        write_atomically(target, 'second\n', replace=False)
    with open(target) as handle:
        assert handle.read() == 'first\n'
    assert os.listdir(str(tmp_path)) == ['policy.yml']  # no temporary file left


@pytest.mark.parametrize('patterns, host, groups, applies', [
    (['h1', 'h2'], 'h1', (), True),
    (['h1', 'h2'], 'h3', (), False),
    (['h1', '!h1'], 'h1', (), False),
    (['h1', 'group:web'], 'h9', ('web',), True),
    (['h[*]'], 'h*', (), True),
    (['h[*]'], 'hx', (), False),
    (['db-*', 'h1'], 'db-7', (), True),
    (['h?'], 'h1', (), True),
])
def test_host_scope_looks_plain_names_up_and_matches_patterns(patterns, host, groups, applies):
    from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import HostScope

    assert HostScope(patterns).applies(host, groups) is applies


def test_every_host_but_a_few():
    gathers = dict(('n%02d' % index, gather(sock(22, name='sshd'))) for index in range(20))
    gathers['n07'] = gather(sock(2222, name='sshd'))
    policy, _proposals, items = build(gathers)
    rules = rules_by_id(policy)
    assert rules['allow-tcp-22-any']['hosts'] == ['!n07']
    assert 'every host but 1 of 20 (19 hosts)' in rules['allow-tcp-22-any']['description']
    check_round_trip(policy, [], items)
