"""The version matrix's entries, run in the background while the rest of the suite runs.

Each entry is one pytest run in a venv of its own: the unit tests, the fleet smoke (with module_defaults)
and ansible-test sanity under each other ansible-core (``.venv-core-2.NN``), and the module_utils unit
tests under each target Python (``.venv-target-3.N``). tests/matrix/conftest.py starts one worker as
soon as the matrix tests are collected (the full suite keeps the other core busy), and a second when
the first matrix test waits (the rest of the suite is then done). Each test of tests/matrix waits for
its entry and fails with the entry's output when the entry failed.
"""

import ast
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

from tests.conftest import REPO
from tests.helpers import matrix

# pytest's last line: '3 passed in 1.2s' with -q, '==== 3 passed in 1.2s (0:00:01) ====' without.
SUMMARY = re.compile(r'^(?:=+ )?(\d+ \w+.*?) in [0-9.]+s(?: \([0-9:]+\))?(?: =+)?$')
COUNTS = re.compile(r'(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected|warnings?)')
# Libraries a managed host does not have (jsonschema, PyYAML, the controller's plugin_utils and action
# plugins): the target-Python runs leave out the unit tests that import them.
CONTROLLER_ONLY = ('jsonschema', 'yaml', 'ansible_collections.portwarden.compliance.plugins.plugin_utils',
                   'ansible_collections.portwarden.compliance.plugins.action')
MODULE_UTILS_TESTS = os.path.join('tests', 'unit', 'plugins', 'module_utils')
ENTRY_TIMEOUT = 45 * 60


MODULE_UTILS = 'ansible_collections.portwarden.compliance.plugins.module_utils'


def _imported(path):
    """Every module name ``path`` imports (``from X import a`` gives X and X.a)."""
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update('%s.%s' % (node.module, alias.name) for alias in node.names)
    return names


def host_module_utils():
    """The module_utils that run on the managed host: those the modules without an action plugin (which run
    there whole) import, directly or through each other."""
    plugins = os.path.join(REPO, 'plugins')
    pending = [os.path.join(plugins, 'modules', name) for name in sorted(os.listdir(os.path.join(plugins, 'modules')))
               if name.endswith('.py') and not os.path.exists(os.path.join(plugins, 'action', name))]
    found = set()
    while pending:
        for name in _imported(pending.pop()):
            if name.startswith(MODULE_UTILS + '.'):
                short = name[len(MODULE_UTILS) + 1:].split('.')[0]
                path = os.path.join(plugins, 'module_utils', short + '.py')
                if short not in found and os.path.exists(path):
                    found.add(short)
                    pending.append(path)
    return found


def target_unit_tests():
    """The module_utils unit test files a managed host's Python runs: those of the host's module_utils that
    import no controller-only library."""
    host = host_module_utils()
    folder = os.path.join(REPO, MODULE_UTILS_TESTS)
    chosen = []
    for name in sorted(os.listdir(folder)):
        if not (name.startswith('test_') and name.endswith('.py')):
            continue
        names = _imported(os.path.join(folder, name))
        if any(imported == lib or imported.startswith(lib + '.') for imported in names for lib in CONTROLLER_ONLY):
            continue
        if any(imported.startswith(MODULE_UTILS + '.') and imported[len(MODULE_UTILS) + 1:].split('.')[0] in host
               for imported in names):
            chosen.append(os.path.join(MODULE_UTILS_TESTS, name))
    return chosen


def entry_argv(entry):
    """(argv, extra environment) of a matrix entry: ``core-2.NN-unit|fleet|sanity`` or ``target-3.N-unit``."""
    kind, version, part = entry.split('-')
    pytest_argv = ['-m', 'pytest', '-q', '-p', 'no:cacheprovider']
    if kind == 'core':
        python = os.path.join(matrix.core_venv(version), 'bin', 'python')
        paths = {'unit': ['tests/unit'],
                 'fleet': ['tests/fleet/test_fleet_smoke.py', 'tests/fleet/test_fleet_module_defaults.py'],
                 'sanity': ['tests/quality/test_sanity.py']}[part]
        env = {'PORTWARDEN_SANITY_VENV': matrix.core_venv(version)} if part == 'sanity' else {}
        return [python] + pytest_argv + paths, env
    python = os.path.join(matrix.target_venv(version), 'bin', 'python')
    return [python] + pytest_argv + target_unit_tests(), {}


def core_entries():
    return ['core-%s-%s' % (minor, part) for part in ('unit', 'fleet', 'sanity') for minor in matrix.matrix_cores()]


def target_entries():
    return ['target-%s-unit' % version for version in matrix.target_pythons()]


class Runner(object):
    """Runs the entries it is given, each once, writing ENTRY.log and ENTRY.rc into ``directory``."""

    def __init__(self, directory, entries):
        self.directory = directory
        self.pending = queue.Queue()
        # Quick entries first, so that a broken venv shows early; sanity (minutes each) last.
        for entry in sorted(entries, key=lambda name: (name.endswith('-sanity'), name)):
            self.pending.put(entry)
        self.entries = set(entries)
        self.workers = []
        self.running = {}
        self.seconds = {}
        self.stopped = False
        self.lock = threading.Lock()

    def path(self, entry, suffix):
        return os.path.join(self.directory, '%s.%s' % (entry, suffix))

    def start_workers(self, count):
        with self.lock:
            while len(self.workers) < count and not self.stopped:
                worker = threading.Thread(target=self._work, name='matrix-%d' % len(self.workers), daemon=True)
                self.workers.append(worker)
                worker.start()

    def _work(self):
        while not self.stopped:
            try:
                entry = self.pending.get_nowait()
            except queue.Empty:
                return
            self._run(entry)

    def _run(self, entry):
        log = self.path(entry, 'log')
        try:
            argv, extra = entry_argv(entry)
        except (OSError, ValueError) as error:
            self._finish(entry, log, 'cannot run %s: %s\n' % (entry, error), 99)
            return
        if not os.path.exists(argv[0]):
            self._finish(entry, log, 'no %s: run scripts/setup.sh matrix first\n' % argv[0], 98)
            return
        env = dict(os.environ, **extra)
        env.pop('PYTEST_ADDOPTS', None)
        started = time.monotonic()
        with open(log, 'w') as handle:
            handle.write('$ %s\n' % ' '.join(argv))
            handle.flush()
            proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=handle,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            self.running[entry] = proc
            try:
                code = proc.wait(timeout=ENTRY_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                handle.write('\nmatrix: %s killed after %d s\n' % (entry, ENTRY_TIMEOUT))
                code = 97
            finally:
                self.running.pop(entry, None)
        self._finish(entry, log, None, code, time.monotonic() - started)

    def _finish(self, entry, log, text, code, seconds=0.0):
        if text is not None:
            with open(log, 'w') as handle:
                handle.write(text)
        with open(self.path(entry, 'rc') + '.tmp', 'w') as handle:
            handle.write('%d %.1f\n' % (code, seconds))
        os.rename(self.path(entry, 'rc') + '.tmp', self.path(entry, 'rc'))

    def wait(self, entry, timeout):
        """(exit code, output) of ``entry`` once it has run; its wall time is in ``self.seconds[entry]``."""
        if entry not in self.entries:
            raise KeyError('%s is not an entry of this run' % entry)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.path(entry, 'rc')):
            if time.monotonic() > deadline:
                raise AssertionError('%s did not finish within %d s' % (entry, timeout))
            if self.workers and not any(worker.is_alive() for worker in self.workers) and self.pending.empty():
                raise AssertionError('%s: the matrix workers ended without running it' % entry)
            time.sleep(1)
        with open(self.path(entry, 'rc')) as handle:
            code, seconds = handle.read().split()
        self.seconds[entry] = float(seconds)
        with open(self.path(entry, 'log'), errors='replace') as handle:
            return int(code), handle.read()

    def stop(self):
        self.stopped = True
        for proc in list(self.running.values()):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def judge(entry, code, output, least=1):
    """Why the entry's run does not count as passed, or None: it must exit 0 with a pytest summary of at least
    ``least`` passed tests and none failed, in error or skipped (a venv that cannot reach the fleet or a test
    that skips itself must not pass the matrix)."""
    counts = pytest_counts(output)
    if code != 0:
        return '%s: exit %d (%s)' % (entry, code, counts or 'no pytest summary')
    if counts is None:
        return '%s: exit 0 but no pytest summary' % entry
    bad = dict((word, counts[word]) for word in ('failed', 'errors', 'skipped', 'xpassed') if counts.get(word))
    if bad or counts.get('passed', 0) < least:
        return '%s: %s' % (entry, ', '.join('%d %s' % (number, word) for word, number in sorted(counts.items())))
    return None


def pytest_counts(output):
    """The counts of pytest's summary, the last line of ``output``: {'passed': N, 'failed': N, ...}; None when the
    last line is not a summary (a line that looks like one earlier in the output, printed by a test, is not it)."""
    found = SUMMARY.findall(output.rstrip().splitlines()[-1] if output.strip() else '')
    if not found:
        return None
    counts = {}
    for number, word in COUNTS.findall(found[-1]):
        counts[{'error': 'errors', 'warning': 'warnings'}.get(word, word)] = int(number)
    return counts


if __name__ == '__main__':  # one entry by hand: python -m tests.matrix.runner core-2.17-fleet
    argv, extra = entry_argv(sys.argv[1])
    os.chdir(REPO)
    os.execve(argv[0], argv, dict(os.environ, **extra))
