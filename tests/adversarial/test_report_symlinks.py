"""Attacks on the report directory by another local user: links planted at the reports' paths, in history/, a FIFO
at the previous report's path, and a report directory anyone may write to.

The other user is real (``nobody``, by setuid in a child); the run that writes the reports is a real ansible-playbook
as root, the user a CI controller often runs as.
"""

import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
from tests.helpers.report_run import audit_result, drift_finding, run_port_report

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root, to act as another user (nobody)')


@pytest.fixture
def shared():
    """A directory tree other users can reach (pytest's tmp_path is 0700)."""
    base = tempfile.mkdtemp(prefix='pw-shared-', dir='/tmp')
    os.chmod(base, 0o755)
    os.mkdir(os.path.join(base, 'nobody'))
    os.chown(os.path.join(base, 'nobody'), NOBODY, NOBODY)
    yield base
    shutil.rmtree(base)


def as_nobody(*argv):
    subprocess.run(list(argv), user=NOBODY, group=NOBODY, check=True, capture_output=True)


def fleet():
    return {'web-1': audit_result(), 'web-2': audit_result('drift', [drift_finding(856)])}


def victim(shared, name, mode, text='precious\n'):
    path = os.path.join(shared, name)
    with open(path, 'w') as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


def test_a_report_dir_anyone_may_write_is_refused(shared, tmp_path):
    reports = os.path.join(shared, 'reports')
    os.mkdir(reports)
    os.chmod(reports, 0o777)
    _proc, result = run_port_report(reports, fleet(), tmp_path)
    assert result['failed'], result
    assert reports in result['msg'] and 'writable by other users' in result['msg'], result['msg']
    assert os.listdir(reports) == []


def test_links_planted_in_a_sticky_report_dir_are_never_followed(shared, tmp_path):
    reports = os.path.join(shared, 'reports')
    os.mkdir(reports)
    os.chmod(reports, 0o1777)  # like /tmp: sticky, owned by the user who writes the reports
    suid = victim(shared, 'suid-binary', 0o4755)
    world = victim(shared, 'world-writable', 0o666)
    forged = os.path.join(shared, 'nobody', 'forged.json')
    as_nobody('sh', '-c', 'echo "{\\"schema_version\\": 1, \\"generated_at\\": \\"x\\", \\"hosts\\": []}" > %s' % forged)
    as_nobody('ln', '-s', suid, os.path.join(reports, FILE_NAMES['html']))
    as_nobody('ln', '-s', world, os.path.join(reports, FILE_NAMES['prometheus']))
    as_nobody('ln', '-s', forged, os.path.join(reports, FILE_NAMES['json']))
    _proc, result = run_port_report(reports, fleet(), tmp_path)
    assert not result['failed'], result['msg']
    for name in FILE_NAMES.values():
        info = os.lstat(os.path.join(reports, name))
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o644, (name, oct(info.st_mode))
    for path, mode in ((suid, 0o4755), (world, 0o666)):
        with open(path) as handle:
            assert stat.S_IMODE(os.stat(path).st_mode) == mode and handle.read() == 'precious\n'
    assert any('symbolic link' in warning for warning in result.get('warnings', [])), result.get('warnings')
    assert not os.path.exists(os.path.join(reports, 'history'))  # the forged report was not read, nor kept


def test_a_planted_history_link_is_refused(shared, tmp_path):
    reports = os.path.join(shared, 'reports')
    os.mkdir(reports)
    os.chmod(reports, 0o1777)
    run_port_report(reports, fleet(), tmp_path)
    elsewhere = os.path.join(shared, 'nobody', 'elsewhere')
    as_nobody('mkdir', elsewhere)
    as_nobody('ln', '-s', elsewhere, os.path.join(reports, 'history'))
    _proc, result = run_port_report(reports, fleet(), tmp_path)
    assert os.listdir(elsewhere) == []
    assert result['failed'] and 'history' in result['msg'] and 'symbolic link' in result['msg'], result['msg']


def test_a_fifo_at_the_previous_reports_path_does_not_hang_the_run(shared, tmp_path):
    reports = os.path.join(shared, 'reports')
    os.mkdir(reports)
    os.chmod(reports, 0o1777)
    fifo = os.path.join(reports, FILE_NAMES['json'])
    as_nobody('mkfifo', fifo)
    try:
        _proc, result = run_port_report(reports, fleet(), tmp_path, timeout=30)
    except subprocess.TimeoutExpired:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # let the stuck worker go: it reads an empty report
        pytest.fail('port_report hung on a FIFO at the previous report\'s path')
    assert not result['failed'], result['msg']
    assert any('not a regular file' in warning for warning in result.get('warnings', [])), result.get('warnings')
    assert stat.S_ISREG(os.lstat(os.path.join(reports, FILE_NAMES['json'])).st_mode)
