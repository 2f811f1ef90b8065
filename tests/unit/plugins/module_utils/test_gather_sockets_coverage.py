"""Unit tests: the coverage decisions of the gather, each rule of gather_sockets as a pure function.

Each test says the rule it guards, so a mutant that breaks the rule (a negated test, a dropped append,
``complete`` set to None) fails a named test in well under a second.
"""

import os
import socket

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import gather_namespaces
from ansible_collections.portwarden.compliance.plugins.module_utils import gather_owners as owners
from ansible_collections.portwarden.compliance.plugins.module_utils import gather_sockets as gather

# What /proc lists, as gather_owners.ProcView(pid_namespace, hidepid, sees_hidden, hides), by name.
VIEWS = {
    'host': ('host', None, True, False),
    'hidepid': ('host', 'invisible', False, True),
    'private': ('private', None, True, False),
    'unknown': ('unknown', None, True, False),
    'unreadable options': ('host', None, False, None),
}


def _view(name):
    return None if name is None else owners.ProcView(*VIEWS[name])


def _coverage(unowned=(), errors=()):
    return {'unowned_sockets': list(unowned), 'errors': list(errors), 'notes': [], 'complete': True}


# -- rule: a walk that could read no process, or not every one it listed, is an error ------------------

def test_walk_errors_none_when_every_listed_process_was_read():
    assert gather.walk_errors(5, 0, True) == []


def test_walk_errors_when_no_process_could_be_read():
    assert gather.walk_errors(0, 0, True) == ['no process file descriptors could be read under /proc']


def test_walk_errors_zero_seen_wins_over_denied():
    assert gather.walk_errors(0, 3, False) == ['no process file descriptors could be read under /proc']


@pytest.mark.parametrize('privileged, reason', [
    (False, 'not running as root'),
    (True, 'access denied (hidepid, LSM or missing capabilities)'),
])
def test_walk_errors_count_denied_processes_and_say_why(privileged, reason):
    assert gather.walk_errors(1, 3, privileged) == [
        '3 processes could not be inspected (%s); their sockets show no processes' % reason]


# -- rule: processes /proc does not list (hidepid, private PID namespace) are gaps, said by name --------

def test_no_gap_when_proc_lists_every_process():
    assert gather.hidden_process_gaps(_view('host')) == []


def test_no_gap_without_proc():
    assert gather.hidden_process_gaps(None) == []


def test_private_pid_namespace_is_a_gap():
    assert gather.hidden_process_gaps(_view('private')) == [
        'the gather runs in a private PID namespace, whose /proc lists only the processes in it']


def test_unknown_pid_namespace_is_a_gap():
    gaps = gather.hidden_process_gaps(_view('unknown'))
    assert len(gaps) == 1 and 'cannot tell which PID namespace' in gaps[0]


def test_hidepid_that_hides_is_a_gap_naming_the_option():
    assert gather.hidden_process_gaps(_view('hidepid')) == [
        '/proc is mounted with hidepid=invisible, which hides the processes of other users from this user']


def test_unreadable_mount_options_are_a_gap():
    gaps = gather.hidden_process_gaps(_view('unreadable options'))
    assert len(gaps) == 1 and 'whether hidepid hides processes is unknown' in gaps[0]


def test_private_namespace_and_hidepid_are_both_gaps():
    view = owners.ProcView('private', '2', False, True)
    assert len(gather.hidden_process_gaps(view)) == 2


# -- rule: the search is exhaustive only when the walk had no error and /proc hid nothing -------------

@pytest.mark.parametrize('view, walk_ok, exhaustive', [
    ('host', True, True),
    ('host', False, False),
    ('hidepid', True, False),
    ('private', True, False),
    (None, True, True),
    (None, False, False),
])
def test_owner_search_exhaustive(view, walk_ok, exhaustive):
    assert gather.owner_search(_view(view), walk_ok)['exhaustive'] is exhaustive


def test_owner_search_says_what_proc_lists():
    assert gather.owner_search(_view('hidepid'), True) == {
        'exhaustive': False, 'pid_namespace': 'host', 'hidepid': 'invisible',
        'gaps': ['/proc is mounted with hidepid=invisible, which hides the processes of other users from this user']}
    assert gather.owner_search(None, True) == {'exhaustive': True, 'gaps': [], 'pid_namespace': None, 'hidepid': None}


# -- rule: processes whose fd links the kernel refused are a gap, named by pid -----------------------

REFUSED_TEXT = ('the fd links of %d process(es) could not be read (ptrace access refused: the gather lacks '
                'CAP_SYS_PTRACE or capabilities they hold, or an LSM denies it): pid %s')


def test_no_refused_process_is_no_gap():
    assert gather.refused_gap([]) == []
    assert gather.owner_search(_view('host'), True, []) == gather.owner_search(_view('host'), True)


def test_refused_processes_are_a_gap_naming_them():
    assert gather.refused_gap([1, 4242]) == [REFUSED_TEXT % (2, '1, 4242')]
    search = gather.owner_search(_view('host'), True, [1])
    assert search == {'exhaustive': False, 'pid_namespace': 'host', 'hidepid': None, 'gaps': [REFUSED_TEXT % (1, '1')]}


def test_a_refused_gap_follows_what_proc_could_not_list():
    search = gather.owner_search(_view('hidepid'), True, (7,))
    assert search['gaps'] == [
        '/proc is mounted with hidepid=invisible, which hides the processes of other users from this user',
        REFUSED_TEXT % (1, '7')]


def test_a_refused_gap_names_at_most_twenty_pids_and_counts_the_rest():
    pids = list(range(100, 125))
    [gap] = gather.refused_gap(pids)
    assert gap == REFUSED_TEXT % (25, ', '.join(str(pid) for pid in range(100, 120)) + ' and 5 more')
    [gap] = gather.refused_gap(pids[:20])
    assert gap == REFUSED_TEXT % (20, ', '.join(str(pid) for pid in range(100, 120)))


def test_an_unowned_socket_beside_a_refused_process_is_an_error_not_a_kernel_socket():
    coverage = gather.finish_coverage(_coverage(['tcp 0.0.0.0:856']), _view('host'), True, [1])
    assert coverage['errors'] == ['1 sockets show no owning process, and not every process could be looked in (%s): '
                                  'tcp 0.0.0.0:856' % (REFUSED_TEXT % (1, '1'))]
    assert coverage['notes'] == [] and coverage['complete'] is False
    assert coverage['unowned_case'] == 'not_looked_for'


def test_a_refused_process_with_every_socket_owned_is_a_note_the_gather_stays_complete():
    coverage = gather.finish_coverage(_coverage(), _view('host'), True, [1])
    assert coverage['errors'] == [] and coverage['complete'] is True
    assert coverage['notes'] == ['the processes listed for each socket may miss holders that could not be looked in '
                                 '(%s)' % (REFUSED_TEXT % (1, '1'))]
    assert coverage['unowned_case'] == 'none' and coverage['owner_search']['exhaustive'] is False


# -- rule: which case the unowned sockets are ------------------------------------------------------

@pytest.mark.parametrize('unowned, exhaustive, case', [
    ([], True, 'none'),
    ([], False, 'none'),
    (['tcp 0.0.0.0:2049'], True, 'kernel'),
    (['tcp 0.0.0.0:856'], False, 'not_looked_for'),
])
def test_unowned_case(unowned, exhaustive, case):
    assert gather.unowned_case(unowned, {'exhaustive': exhaustive}) == case


# -- rule: an unowned socket not looked for everywhere is an error naming it; a kernel socket a note --

def test_unowned_socket_behind_a_gap_is_an_error_naming_it_and_the_gap():
    search = gather.owner_search(_view('hidepid'), True)
    errors, notes = gather.unowned_findings(['tcp 0.0.0.0:856', 'udp [::]:856'], search)
    assert notes == []
    assert errors == ['2 sockets show no owning process, and not every process could be looked in '
                      '(/proc is mounted with hidepid=invisible, which hides the processes of other users from this user): '
                      'tcp 0.0.0.0:856, udp [::]:856']


def test_gap_without_unowned_sockets_is_a_note_not_an_error():
    errors, notes = gather.unowned_findings([], gather.owner_search(_view('private'), True))
    assert errors == []
    assert len(notes) == 1 and 'private PID namespace' in notes[0]


def test_unowned_socket_looked_for_everywhere_is_a_kernel_socket_note():
    errors, notes = gather.unowned_findings(['tcp 0.0.0.0:2049'], gather.owner_search(_view('host'), True))
    assert errors == []
    assert notes == ['1 sockets have no owning process though every process was looked in: kernel sockets, '
                     'sockets only in flight in a unix socket queue (passed, not yet received), '
                     'or owners that exited during the gather: tcp 0.0.0.0:2049']


def test_denied_walk_adds_nothing_its_own_error_has_not_said():
    assert gather.unowned_findings(['tcp 0.0.0.0:856'], gather.owner_search(_view('host'), False)) == ([], [])


def test_nothing_to_say_when_every_socket_has_an_owner_and_nothing_was_hidden():
    assert gather.unowned_findings([], gather.owner_search(_view('host'), True)) == ([], [])


def test_errors_name_at_most_twenty_sockets_and_count_the_rest():
    labels = ['tcp 0.0.0.0:%d' % port for port in range(1000, 1025)]
    errors, _notes = gather.unowned_findings(labels, gather.owner_search(_view('hidepid'), True))
    assert errors[0].startswith('25 sockets show no owning process')
    assert 'tcp 0.0.0.0:1019 and 5 more (coverage.unowned_sockets)' in errors[0]
    assert 'tcp 0.0.0.0:1020' not in errors[0]


def test_exactly_twenty_sockets_are_all_named_without_more():
    labels = ['tcp 0.0.0.0:%d' % port for port in range(1000, 1020)]
    errors, _notes = gather.unowned_findings(labels, gather.owner_search(_view('hidepid'), True))
    assert errors[0].endswith('tcp 0.0.0.0:1019') and 'more' not in errors[0]


# -- rule: complete is true exactly when no error was recorded ----------------------------------------

def test_finish_complete_true_with_no_error():
    coverage = gather.finish_coverage(_coverage(), _view('host'), True)
    assert coverage['complete'] is True
    assert coverage['unowned_case'] == 'none'
    assert coverage['owner_search']['exhaustive'] is True


def test_finish_complete_false_with_an_earlier_error():
    coverage = gather.finish_coverage(_coverage(errors=['tcp/ipv6: procfs backend: gone']), _view('host'), True)
    assert coverage['complete'] is False
    assert coverage['errors'] == ['tcp/ipv6: procfs backend: gone']


def test_finish_hidden_unowned_socket_makes_it_partial():
    coverage = gather.finish_coverage(_coverage(unowned=['tcp 0.0.0.0:856']), _view('hidepid'), True)
    assert coverage['complete'] is False
    assert coverage['unowned_case'] == 'not_looked_for'
    assert len(coverage['errors']) == 1 and 'tcp 0.0.0.0:856' in coverage['errors'][0]


def test_finish_kernel_socket_stays_complete_with_a_note():
    coverage = gather.finish_coverage(_coverage(unowned=['tcp 0.0.0.0:2049']), _view('host'), True)
    assert coverage['complete'] is True
    assert coverage['unowned_case'] == 'kernel'
    assert len(coverage['notes']) == 1 and 'tcp 0.0.0.0:2049' in coverage['notes'][0]


def test_finish_keeps_earlier_notes():
    coverage = _coverage(unowned=['tcp 0.0.0.0:2049'])
    coverage['notes'].append('earlier')
    gather.finish_coverage(coverage, _view('host'), True)
    assert coverage['notes'][0] == 'earlier' and len(coverage['notes']) == 2


# -- rule: a namespace that vanished is a note; one that could not be read, or its read errors, errors --

def _summary_coverage():
    return {'errors': [], 'notes': [], 'namespaces': {'mode': 'all', 'scanned': [], 'unreadable': [], 'vanished': []}}


def _visit(error=None, result=None):
    visit = gather_namespaces.Visit(4026532999, 77)
    visit.error, visit.result = error, result
    return visit


def _entry(inode, pid):
    return {'inode': inode, 'host': False, 'pid': pid, 'container': None}


def test_vanished_namespace_is_a_note():
    coverage = _summary_coverage()
    assert gather.account_visit(_visit(gather_namespaces.NamespaceGone('gone')), coverage, _entry) is None
    assert coverage['errors'] == []
    assert coverage['namespaces']['vanished'] == [{'inode': 4026532999, 'pid': 77}]
    assert len(coverage['notes']) == 1 and 'vanished' in coverage['notes'][0]


def test_unreadable_namespace_is_an_error():
    coverage = _summary_coverage()
    error = gather_namespaces.CannotEnter('cannot enter it: setns: Operation not permitted')
    assert gather.account_visit(_visit(error), coverage, _entry) is None
    assert coverage['errors'] == ['network namespace 4026532999 (pid 77) could not be read: '
                                  'cannot enter it: setns: Operation not permitted']
    assert coverage['namespaces']['unreadable'] == [
        {'inode': 4026532999, 'pid': 77, 'reason': 'cannot enter it: setns: Operation not permitted'}]
    assert coverage['namespaces']['scanned'] == []


def test_read_namespace_is_scanned_and_carries_its_errors_and_notes():
    coverage = _summary_coverage()
    records = [('tcp', 'ipv4', '0.0.0.0', 856, None, 41)]
    local = {'sources': {'tcp/ipv4': 'netlink'}, 'errors': ['tcp/ipv6: gone'], 'notes': ['fell back']}
    scan = gather.account_visit(_visit(result=(records, local, (32768, 60999, set()))), coverage, _entry)
    assert scan == (_entry(4026532999, 77), (32768, 60999, set()), records)
    assert coverage['errors'] == ['network namespace 4026532999: tcp/ipv6: gone']
    assert coverage['notes'] == ['network namespace 4026532999: fell back']
    assert coverage['namespaces']['scanned'] == [dict(_entry(4026532999, 77), sockets=1, sources={'tcp/ipv4': 'netlink'},
                                                      ephemeral_port_range=[32768, 60999])]


def test_unprivileged_all_reads_only_its_own_namespace_and_says_so():
    coverage = {'errors': [], 'notes': [], 'sources': {'tcp/ipv4': 'netlink'}}
    scans = gather._scan_namespaces('auto', ('tcp',), [], coverage, privileged=False)
    assert len(scans) == 1 and scans[0][0]['host'] is True
    assert len(coverage['errors']) == 1 and 'not running as root' in coverage['errors'][0]


# -- rule: tables -- a table no backend could read is an error, one read is a source -----------------

def _proc_net(tmp_path, tables):
    header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n'
    line = '   0: 00000000:0358 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1\n'
    for name in tables:
        (tmp_path / name).write_text(header + line)
    return str(tmp_path)


def test_a_table_that_cannot_be_read_is_an_error_and_the_others_are_read(tmp_path):
    coverage = {'sources': {}, 'errors': [], 'notes': []}
    records = gather._read_tables('procfs', ('tcp',), coverage, proc_net=_proc_net(tmp_path, ['tcp']), ipv6=True)
    assert records == [('tcp', 'ipv4', '0.0.0.0', 856, None, 4242)]
    assert coverage['sources'] == {'tcp/ipv4': 'procfs'}
    assert len(coverage['errors']) == 1 and coverage['errors'][0].startswith('tcp/ipv6: procfs backend: ')
    assert coverage['notes'] == []


def test_no_table_at_all_raises_not_an_empty_host(tmp_path):
    with pytest.raises(gather.GatherError) as caught:
        gather._read_tables('procfs', ('tcp', 'udp'), {'sources': {}, 'errors': [], 'notes': []},
                            proc_net=str(tmp_path), ipv6=False)
    assert 'no socket table could be read' in str(caught.value)


def test_every_table_is_read_when_all_exist(tmp_path):
    coverage = {'sources': {}, 'errors': [], 'notes': []}
    records = gather._read_tables('procfs', ('tcp',), coverage, proc_net=_proc_net(tmp_path, ['tcp', 'tcp6']), ipv6=True)
    assert coverage['errors'] == [] and sorted(coverage['sources']) == ['tcp/ipv4', 'tcp/ipv6']
    assert len(records) == 2


# -- the gather itself, real, in this process: the rules wired together -----------------------------

def test_walk_of_this_process_finds_its_socket_and_is_ok():
    sock = socket.socket()
    other = socket.socket()  # a socket the walk is not asked about
    try:
        inode = os.fstat(sock.fileno()).st_ino
        coverage = {'errors': [], 'processes_scanned': 0, 'processes_unreadable': 0}
        found, walk_ok, foreign, _leaders = gather._owners_from_fd_walk([('tcp', 'ipv4', '0.0.0.0', 0, None, inode)], coverage,
                                                                        os.geteuid() == 0)
        assert os.getpid() in found[inode]
        assert foreign == {}  # other sockets are collected only when asked (namespaces=all)
        _found, _ok, foreign, _leaders = gather._owners_from_fd_walk([('tcp', 'ipv4', '0.0.0.0', 0, None, inode)], coverage,
                                                                     os.geteuid() == 0, collect=True)
        assert (os.getpid(), other.fileno()) in foreign['socket:[%d]' % os.fstat(other.fileno()).st_ino]
        assert coverage['processes_scanned'] >= 1
        assert walk_ok is (not coverage['errors'])
    finally:
        sock.close()
        other.close()


@pytest.mark.skipif(os.geteuid() != 0, reason='as root every process can be looked in')
def test_real_gather_owns_its_listener_and_complete_means_no_error():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    sock.listen(1)
    try:
        result = gather.gather_listening_sockets(protocols=['tcp'])
        coverage = result['coverage']
        port = sock.getsockname()[1]
        mine = [entry for entry in result['sockets'] if entry['port'] == port and entry['address'] == '127.0.0.1']
        assert [proc['pid'] for proc in mine[0]['processes']] == [os.getpid()]
        assert coverage['complete'] is (not coverage['errors'])
        assert coverage['owner_search']['pid_namespace'] in ('host', 'private')
        expected_case = 'none' if not coverage['unowned_sockets'] else (
            'kernel' if coverage['owner_search']['exhaustive'] else 'not_looked_for')
        assert coverage['unowned_case'] == expected_case
    finally:
        sock.close()


# -- rule: namespaces=all looks for namespaces no process is in through fds on them and other sockets --

def test_unlisted_candidates_split_nsfs_handles_from_other_sockets():
    foreign = {
        'net:[4026532900]': [(10, 3), (11, 4)],
        'net:[4026532901]': [(12, 5)],  # already scanned
        'socket:[5555]': [(13, 7), (14, 7)],
        'socket:[4444]': [(15, 9)],
    }
    handles, sockets = gather.unlisted_namespace_candidates(foreign, {4026532901})
    assert handles == {4026532900: [(10, 3), (11, 4)]}
    assert sockets == [('socket:[4444]', 15, 9), ('socket:[5555]', 13, 7)]


def test_too_many_sockets_to_ask_is_an_error_not_a_silent_skip(monkeypatch):
    monkeypatch.setattr(gather, 'SOCKET_NAMESPACE_BUDGET', 1)
    coverage = {'errors': []}
    assert gather._socket_namespaces([('socket:[1]', 1, 3), ('socket:[2]', 1, 4)], set(), coverage) == {}
    assert len(coverage['errors']) == 1 and '2 sockets held by processes were not asked' in coverage['errors'][0]


@pytest.mark.skipif(os.geteuid() != 0, reason='pidfd_getfd needs ptrace rights over the holder')
def test_socket_of_this_process_is_asked_its_namespace():
    sock = socket.socket()
    try:
        link = 'socket:[%d]' % os.fstat(sock.fileno()).st_ino
        coverage = {'errors': []}
        own = os.stat('/proc/thread-self/ns/net').st_ino
        assert gather._socket_namespaces([(link, os.getpid(), sock.fileno())], {own}, coverage) == {}
        found = gather._socket_namespaces([(link, os.getpid(), sock.fileno())], set(), coverage)
        assert list(found) == [own] and coverage['errors'] == []
        for fd in found.values():
            os.close(fd)
    finally:
        sock.close()
