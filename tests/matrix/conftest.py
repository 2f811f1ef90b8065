"""Starts the version matrix in the background as soon as its tests are collected (see runner.py)."""

import os
import tempfile

import pytest

from tests.matrix.runner import Runner

_RUNNER = {}


HERE = os.path.dirname(os.path.abspath(__file__))


def _entries(session):
    """The matrix entries of the collected tests of this directory (other suites' parameters named ``entry`` are
    theirs, not matrix entries)."""
    found = []
    for item in session.items:
        if os.path.dirname(str(item.path)) != HERE:
            continue
        params = getattr(getattr(item, 'callspec', None), 'params', {})
        entry = params.get('entry')
        if isinstance(entry, str) and entry not in found:
            found.append(entry)
    return found


def pytest_collection_finish(session):
    entries = _entries(session)
    if entries and not session.config.option.collectonly:
        runner = Runner(tempfile.mkdtemp(prefix='portwarden-matrix-'), entries)
        _RUNNER['runner'] = runner
        runner.start_workers(1)  # the rest of the suite keeps the other core busy


def pytest_sessionfinish(session):
    runner = _RUNNER.get('runner')
    if runner is not None:
        runner.stop()


def pytest_terminal_summary(terminalreporter):
    """One line per matrix entry: its exit code and wall time, or that it did not run."""
    runner = _RUNNER.pop('runner', None)
    if runner is None:
        return
    terminalreporter.section('version matrix')
    for entry in sorted(runner.entries):
        try:
            with open(runner.path(entry, 'rc')) as handle:
                code, seconds = handle.read().split()
        except OSError:
            terminalreporter.write_line('%-22s did not finish' % entry)
            continue
        # The verdict (exit 0 is not enough) is the entry's own test; this line is for reading.
        terminalreporter.write_line('%-22s exit %-3s %6.0f s  %s' % (entry, code, float(seconds), runner.path(entry, 'log')))


@pytest.fixture(scope='session')
def matrix_runner():
    runner = _RUNNER.get('runner')
    if runner is None:
        pytest.fail('the matrix runner did not start (tests/matrix/conftest.py)')
    runner.start_workers(2)  # the first matrix test: the rest of the suite is done
    return runner
