"""Attacks on the NAT gather: hostile rule text, a huge ruleset, tools that hang, fail, lie or are missing, jump loops,
chains reached only by a jump, negations, OUTPUT-only rules and target ranges. Real namespaces and real rules, except
where a real tool cannot be made to misbehave (a hanging or lying nft: a fake on a PATH the test controls)."""

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_nat
from tests.helpers import nat
from tests.helpers.gather import CLI_MODULE
from tests.helpers.netns import Namespace, have_netns

pytestmark = [pytest.mark.netns, pytest.mark.skipif(not have_netns(), reason='needs root and ip netns')]


def fake_tool(directory, name, script):
    path = os.path.join(str(directory), name)
    with open(path, 'w') as handle:
        handle.write('#!/bin/sh\n' + script + '\n')
    os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return path


def test_escapes_and_json_breaking_text_in_a_comment_stay_data(tmp_path):
    hostile = '\x1b[2J\x1b]0;pwned\x07"}],{"nftables": [' + "'\\"
    with Namespace() as host:
        nat.apply(host, [['iptables-nft', '-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '856', '-m', 'comment',
                          '--comment', hostile, '-j', 'DNAT', '--to-destination', '10.9.9.9:80']])
        rc, result = nat.gather(host)
        table = host.run([sys.executable, '-m', CLI_MODULE, 'gather'])
    [exposure] = nat.by_port(result['exposures'], 856)
    assert '\x1b' not in exposure['rule'] and '\\x1b' in exposure['rule']
    assert rc == 0 and '\x1b' not in table.stdout and '\x07' not in table.stdout
    assert 'published by DNAT to 10.9.9.9:80' in table.stdout


def test_a_huge_ruleset_is_read_whole_and_quickly():
    lines = ['*nat', ':PREROUTING ACCEPT [0:0]', ':DOCKER - [0:0]', '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER']
    lines += ['-A DOCKER ! -i docker0 -p tcp -m tcp --dport %d -j DNAT --to-destination 172.17.%d.%d:80'
              % (20000 + index, index // 250, index % 250 + 2) for index in range(5000)]
    lines.append('COMMIT')
    with Namespace() as host:
        host.run(['iptables-nft-restore'], input='\n'.join(lines) + '\n', check=True)
        answer = nat.read_nat(host)
    assert answer['errors'] == [] and len(answer['exposures']) == 5000
    assert sorted(item['port'] for item in answer['exposures']) == list(range(20000, 25000))
    assert answer['seconds'] < 20


def test_a_hanging_nft_is_killed_at_the_timeout_and_the_coverage_is_partial(tmp_path):
    pids = tmp_path / 'pids'
    # The fake and a child of it sleep: neither may outlive the read (the whole process group is killed).
    fake_tool(tmp_path, 'nft', 'echo $$ > %s; /bin/sleep 60 & echo $! >> %s; wait' % (pids, pids))
    with Namespace() as host:
        nat.nft(host, nat.NETAVARK_RULESET % {'port': 8080})  # a real table exists: it must be read or said unread
        answer = nat.read_nat(host, search_path=str(tmp_path), timeout=1.0)
    assert answer['seconds'] < 10
    # One table (inet netavark) is listed by name; a timeout is not tried again as the whole ruleset.
    assert any('nft -j list table inet netavark' in error and 'did not finish within 1 s' in error
               for error in answer['errors']), \
        answer['errors']
    assert 'nft' not in answer['summary']['sources'] and answer['exposures'] == []
    started = [int(pid) for pid in pids.read_text().split()]
    assert len(started) == 2
    time.sleep(0.2)
    assert [pid for pid in started if _running(pid)] == []


def _running(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


@pytest.mark.parametrize('script, expected', [
    ('echo "nft: Operation not permitted" >&2; exit 1', 'exited 1: nft: Operation not permitted'),
    ('echo "table inet netavark {"', 'not JSON'),
    ('echo \'{"nftables": {"table": 1}}\'', 'expected {"nftables": [...]}'),
    ('echo \'{"nftables": [{"rule": {"family": "inet", "table": "t", "chain": 5, "expr": []}}]}\'',
     'nftables[0].rule: expected a chain and an expr list'),
])
def test_a_failing_or_lying_nft_makes_the_coverage_partial_naming_it(tmp_path, script, expected):
    fake_tool(tmp_path, 'nft', script)
    with Namespace() as host:
        nat.nft(host, nat.NETAVARK_RULESET % {'port': 8080})
        answer = nat.read_nat(host, search_path=str(tmp_path))
    assert any(expected in error for error in answer['errors']), answer['errors']
    assert answer['exposures'] == []


def test_a_missing_nft_while_the_kernel_has_a_table_is_an_error_naming_the_table(tmp_path):
    with Namespace() as host:
        nat.nft(host, nat.NETAVARK_RULESET % {'port': 8080})
        answer = nat.read_nat(host, search_path=str(tmp_path))  # an empty directory: no tool at all
    [error] = answer['errors']
    assert 'inet netavark' in error and 'nft is not installed' in error


def test_a_missing_legacy_tool_while_the_kernel_has_a_legacy_nat_table_is_an_error(tmp_path):
    with Namespace() as host:
        nat.apply(host, [['iptables-legacy', '-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '856', '-j', 'DNAT',
                          '--to-destination', '10.0.0.9']])
        answer = nat.read_nat(host, search_path=str(tmp_path))
    assert any('iptables-legacy/ipv4 nat table exists but iptables-legacy-save is not installed' in error
               for error in answer['errors']), answer['errors']


def test_iptables_nft_rules_seen_only_through_nft_are_an_error_not_a_guess(tmp_path):
    os.symlink('/usr/sbin/nft', str(tmp_path / 'nft'))  # nft, but no iptables-nft-save
    with Namespace() as host:
        nat.apply(host, nat.docker_rules(856, '172.17.0.2:80'))
        answer = nat.read_nat(host, search_path=str(tmp_path))
    assert any('ip nat holds DNAT rules written by iptables-nft' in error for error in answer['errors']), answer['errors']


def test_a_nft_earlier_in_the_callers_path_is_not_the_one_run(tmp_path):
    fake_tool(tmp_path, 'nft', 'echo \'{"nftables": []}\'')
    fake_tool(tmp_path, 'iptables-nft-save', 'echo "*nat"; echo COMMIT')
    with Namespace() as host:
        nat.nft(host, nat.NETAVARK_RULESET % {'port': 8080})
        nat.apply(host, nat.docker_rules(856, '172.17.0.2:80'))
        proc = host.run(['env', 'PATH=%s:%s' % (tmp_path, os.environ.get('PATH', '')), sys.executable, '-m', CLI_MODULE,
                         'gather', '--format', 'json'])
    result = json.loads(proc.stdout)
    assert {item['port'] for item in result['exposures']} == {856, 8080}


def test_a_dnat_reached_only_by_a_jump_is_found_and_an_unreachable_one_is_listed_not_published():
    with Namespace() as host:
        nat.apply(host, [
            ['iptables-nft', '-t', 'nat', '-N', 'HOP1'], ['iptables-nft', '-t', 'nat', '-N', 'HOP2'],
            ['iptables-nft', '-t', 'nat', '-N', 'ORPHAN'],
            ['iptables-nft', '-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '-j', 'HOP1'],
            ['iptables-nft', '-t', 'nat', '-A', 'HOP1', '-d', '192.0.2.10', '-j', 'HOP2'],
            ['iptables-nft', '-t', 'nat', '-A', 'HOP2', '-p', 'tcp', '--dport', '856', '-j', 'DNAT', '--to-destination', '10.1.1.1:80'],
            ['iptables-nft', '-t', 'nat', '-A', 'ORPHAN', '-p', 'tcp', '--dport', '857', '-j', 'DNAT', '--to-destination', '10.1.1.1:80'],
        ])
        rc, result = nat.gather(host)
    [found] = nat.by_port(result['exposures'], 856)
    assert (found['chain'], found['address'], found['protocol']) == ('HOP2', '192.0.2.10', 'tcp')  # narrowed along the path
    assert nat.by_port(result['exposures'], 857) == []
    assert result['coverage']['nat']['unreachable'] == ['iptables-nft ip nat chain ORPHAN']
    assert any('no nat hook reaches' in note for note in result['coverage']['notes'])
    assert rc == 0


def test_a_jump_loop_is_followed_once():
    text = '\n'.join(['*nat', ':PREROUTING ACCEPT [0:0]', ':A - [0:0]', ':B - [0:0]', '-A PREROUTING -j A', '-A A -j B',
                      '-A B -j A', '-A B -p udp --dport 856 -j DNAT --to-destination 10.0.0.1', 'COMMIT'])
    exposures, unreachable, _found = gather_nat.parse_iptables_save(text, 'ipv4', 'iptables-legacy')
    assert [(item['protocol'], item['port'], item['chain']) for item in exposures] == [('udp', 856, 'B')]
    assert unreachable == []
    ruleset = {'nftables': [
        {'table': {'family': 'ip', 'name': 't'}},
        {'chain': {'family': 'ip', 'table': 't', 'name': 'pre', 'type': 'nat', 'hook': 'prerouting'}},
        {'chain': {'family': 'ip', 'table': 't', 'name': 'a'}},
        {'rule': {'family': 'ip', 'table': 't', 'chain': 'pre', 'expr': [{'jump': {'target': 'a'}}]}},
        {'rule': {'family': 'ip', 'table': 't', 'chain': 'a', 'expr': [{'jump': {'target': 'pre'}}]}},
        {'rule': {'family': 'ip', 'table': 't', 'chain': 'a', 'expr': [
            {'match': {'op': '==', 'left': {'payload': {'protocol': 'tcp', 'field': 'dport'}}, 'right': 856}},
            {'dnat': {'addr': '10.0.0.2', 'port': 80}}]}},
    ]}
    found, _lost, tables, _compat = gather_nat.parse_nft_ruleset(json.dumps(ruleset))
    assert [(item['port'], item['target']['address']) for item in found] == [(856, '10.0.0.2')] and tables == ['ip t']


def test_a_negated_interface_output_only_rule_and_a_target_range():
    with Namespace() as host:
        nat.apply(host, [
            ['iptables-nft', '-t', 'nat', '-A', 'PREROUTING', '!', '-i', 'eth9', '-p', 'tcp', '--dport', '856', '-j', 'DNAT',
             '--to-destination', '10.0.0.1-10.0.0.5:80-90'],
            ['iptables-nft', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '--dport', '857', '-j', 'REDIRECT', '--to-ports', '22'],
        ])
        _rc, result = nat.gather(host)
    [negated] = nat.by_port(result['exposures'], 856)
    assert negated['interface'] == '!eth9'  # a negation widens: everything but eth9 is published
    assert negated['target'] == {'address': '10.0.0.1', 'port': 80, 'port_end': 90}
    assert negated['owner']['kind'] == 'unknown' and 'range' in negated['owner']['reason']
    [local] = nat.by_port(result['exposures'], 857)
    assert local['hooks'] == ['output'] and local['action'] == 'redirect'


def test_nft_named_sets_and_verdict_maps_are_followed():
    with Namespace() as host:
        nat.nft(host, '''
table ip kube-proxy {
  set nodeport-ips { type ipv4_addr; elements = { 192.0.2.20 } }
  map service-nodeports { type inet_proto . inet_service : verdict; elements = { tcp . 30856 : goto external-web } }
  set published { type inet_service; flags interval; elements = { 856, 858-860 } }
  chain nat-prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump services
  }
  chain services {
    ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
    tcp dport @published dnat to 10.2.0.7
  }
  chain external-web {
    meta l4proto tcp dnat to 10.244.0.9:8080
  }
}''')
        answer = nat.read_nat(host)
    ports = sorted((item['port'], item['port_end'], item['target']['address']) for item in answer['exposures'])
    assert (856, 856, '10.2.0.7') in ports and (858, 860, '10.2.0.7') in ports
    assert any(target == '10.244.0.9' for _p, _e, target in ports)  # reached through the verdict map
    assert answer['errors'] == []


def test_unprivileged_the_nat_cannot_be_read_and_the_coverage_is_partial():
    with Namespace() as host:
        nat.nft(host, nat.NETAVARK_RULESET % {'port': 8080})
        proc = host.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', sys.executable, '-c', nat.READ_NAT,
                         '{}'], env=dict(os.environ, HOME='/'))
    answer = json.loads(proc.stdout)
    assert answer['errors'] and any('not running as root' in error for error in answer['errors']), answer['errors']
    assert answer['exposures'] == []


def test_reading_twice_at_the_same_moment_gives_the_same_answer_and_changes_nothing():
    with Namespace() as host:
        nat.apply(host, nat.docker_rules(856, '172.17.0.2:80'))
        before = nat.ruleset(host)
        procs = [subprocess.Popen(host.command([sys.executable, '-c', nat.READ_NAT, '{}']), stdout=subprocess.PIPE, text=True)
                 for _index in range(4)]
        answers = [json.loads(proc.communicate(timeout=60)[0]) for proc in procs]
        after = nat.ruleset(host)
    assert before == after
    assert all(answer == answers[0] for answer in answers) and len(answers[0]['exposures']) == 1


def test_an_nft_answer_missing_a_table_the_kernel_lists_is_an_error(tmp_path):
    fake_tool(tmp_path, 'nft', 'echo \'{"nftables": [{"metainfo": {"json_schema_version": 1}}]}\'')
    with Namespace() as host:
        nat.nft(host, nat.NETAVARK_RULESET % {'port': 8080})
        answer = nat.read_nat(host, search_path=str(tmp_path))
    assert any('inet netavark' in error and 'not in its output' in error for error in answer['errors']), answer['errors']


def test_a_nat_table_iptables_nft_calls_incompatible_is_read_by_nft():
    with Namespace() as host:
        nat.apply(host, [['iptables-nft', '-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '855', '-j', 'DNAT',
                          '--to-destination', '10.0.0.5']])
        host.run(['nft', 'add', 'rule', 'ip', 'nat', 'PREROUTING', 'tcp', 'dport', '856', 'dnat', 'to', '10.0.0.1'], check=True)
        assert 'incompatible' in host.run(['iptables-nft-save', '-t', 'nat']).stdout
        answer = nat.read_nat(host)
    assert [(item['port'], item['source']) for item in nat.by_port(answer['exposures'], 856)] == [(856, 'nft')]
    # The iptables-nft rule in the same table has an xt DNAT target nft cannot show: partial, never a quiet 855.
    assert any('ip nat' in error and 'iptables-nft' in error for error in answer['errors']), answer['errors']
    assert any('incompatible' in note for note in answer['notes']), answer['notes']


def test_an_unreadable_legacy_table_list_is_an_error_not_no_table():
    with Namespace() as host:
        nat.apply(host, [['iptables-legacy', '-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '856', '-j', 'DNAT',
                          '--to-destination', '10.0.0.9']])
        # 0440 root: an unprivileged gather cannot tell whether a legacy nat table exists, and must say so.
        proc = host.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', sys.executable, '-c', nat.READ_NAT,
                         '{}'], env=dict(os.environ, HOME='/'))
    answer = json.loads(proc.stdout)
    assert any('/proc/net/ip_tables_names' in error and 'legacy' in error for error in answer['errors']), answer['errors']


def _logging_nft(directory, log):
    """An nft that writes its arguments to ``log`` and runs the real one; the real iptables-nft-save next to it."""
    fake_tool(directory, 'nft', 'echo "$*" >> %s; exec /usr/sbin/nft "$@"' % log)
    os.symlink('/usr/sbin/iptables-nft-save', str(directory / 'iptables-nft-save'))


def test_nft_lists_only_the_tables_iptables_nft_save_does_not_read_each_by_name(tmp_path):
    log = tmp_path / 'nft.log'
    _logging_nft(tmp_path, log)
    with Namespace() as host:
        nat.apply(host, nat.docker_rules(856, '172.17.0.2:80'))
        host.run(['iptables-nft', '-t', 'filter', '-A', 'FORWARD', '-o', 'docker0', '-j', 'ACCEPT'], check=True)
        nat.nft(host, nat.NETAVARK_RULESET % {'port': 8080})
        nat.nft(host, 'table bridge nat-perf-br {\n chain c {\n type filter hook prerouting priority 0;\n }\n}\n')
        answer = nat.read_nat(host, search_path=str(tmp_path))
    assert answer['errors'] == [], answer['errors']
    # iptables-nft's ip nat (Docker's thousands of rules) is not listed again, nor a bridge table (no ip NAT there).
    assert sorted(log.read_text().splitlines()) == ['-j list table inet netavark', '-j list table ip filter']
    assert sorted(answer['summary']['sources']) == ['iptables-nft/ipv4', 'nft']
    assert {(item['port'], item['source']) for item in answer['exposures']} == {(856, 'iptables-nft'), (8080, 'nft')}


@pytest.mark.parametrize('name', ['counter', 'a;flush ruleset'])
def test_a_table_nft_cannot_be_asked_for_by_name_is_read_in_the_whole_ruleset_and_runs_nothing(tmp_path, name):
    # Made through nft's JSON input, as any netlink client may name a table: a keyword nft's command line refuses, or
    # text that would be a second command if it were passed as one.
    log = tmp_path / 'nft.log'
    _logging_nft(tmp_path, log)
    made = {'nftables': [{'add': {'table': {'family': 'ip', 'name': name}}},
                         {'add': {'chain': {'family': 'ip', 'table': name, 'name': 'pre', 'type': 'nat',
                                            'hook': 'prerouting', 'prio': -100, 'policy': 'accept'}}},
                         {'add': {'rule': {'family': 'ip', 'table': name, 'chain': 'pre', 'expr': [
                             {'match': {'op': '==', 'left': {'payload': {'protocol': 'tcp', 'field': 'dport'}}, 'right': 856}},
                             {'dnat': {'addr': '10.0.0.9', 'port': 80}}]}}}]}
    with Namespace() as host:
        subprocess.run(host.command(['nft', '-j', '-f', '-']), input=json.dumps(made), text=True, check=True)
        before = nat.ruleset(host)
        answer = nat.read_nat(host, search_path=str(tmp_path))
        after = nat.ruleset(host)
    assert before == after and 'ip %s' % name in before[0].replace('"', '')
    assert answer['errors'] == [], answer['errors']
    assert [(item['port'], item['table'], item['target']['address']) for item in answer['exposures']] == \
        [(856, 'ip %s' % name, '10.0.0.9')]
    assert log.read_text().splitlines()[-1] == '-j list ruleset'
