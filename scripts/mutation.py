"""Mutation testing of the verdict code with mutmut 3 (run through scripts/mutation.sh).

mutmut 3 copies the sources into ``mutants/`` and imports them from there, by the module path their
file path gives. The collection must be imported as ``ansible_collections.portwarden.compliance``, so
the run happens in a staging tree, ``.mutation/``::

    .mutation/pyproject.toml                     [tool.mutmut] and pytest's settings
    .mutation/src/ansible_collections/portwarden/compliance/{plugins,docs,meta,galaxy.yml}
    .mutation/tests/                             the checkout's tests, with a conftest of its own

The staged conftest puts nothing of the checkout on sys.path (mutmut puts ``mutants/src`` there) and
checks that the collection is imported from the mutated copy. Hypothesis is derandomized, so a mutant
is killed or not the same way every run; the property tests run at PORTWARDEN_PROPERTY_SCALE 0.05
(the fast unit tests: about 10 s for all of tests/unit).

Scores. A mutant is killed when a test fails (or times out); survived when every test passed; no
tests when no selected test runs its function. Behaviour-changing mutants are all the mutants except:

* message-only: the mutated function's syntax tree equals the original's once every string literal
  holding whitespace is blanked (text shown to a person: a reason, a finding's message, a warning).
  A literal without whitespace (a dict key, a status, a selector prefix, a date format) always counts
  as behaviour, so the rule errs on the strict side;
* equivalent: listed in scripts/mutation-equivalent.txt with the reason no test can tell them apart
  (keyed by file, function and a digest of the changed lines, so renumbering does not lose them).

The score per file is killed / behaviour-changing; the target is 95%.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGE = os.path.join(REPO, '.mutation')
COLLECTION = os.path.join('src', 'ansible_collections', 'portwarden', 'compliance')
MODULE_PREFIX = 'ansible_collections.portwarden.compliance.'
EQUIVALENT_FILE = os.path.join(REPO, 'scripts', 'mutation-equivalent.txt')
TARGET = 95.0

TARGETS = {
    'evaluate_policy.py': 'plugins/module_utils/evaluate_policy.py',
    'report_build.py': 'plugins/module_utils/report_build.py',
    'policy_check.py': 'plugins/module_utils/policy_check.py',
    'gather_sockets.py': 'plugins/module_utils/gather_sockets.py',
}
# The part of the gather that decides coverage (and so whether a host can be called compliant), scored
# on its own: every function that writes into ``coverage``.
COVERAGE_FUNCTIONS = frozenset((
    '_read_tables', '_owners_from_fd_walk', '_psutil_records', '_read_namespace', '_read_namespace_through_pid',
    '_scan_namespaces', 'gather_listening_sockets',
))
SCOPES = [(name, name, None) for name in TARGETS] + [('gather_sockets.py (coverage)', 'gather_sockets.py', COVERAGE_FUNCTIONS)]
DEFAULT_TESTS = ['tests/unit', 'tests/adversarial/test_evaluate_*.py', 'tests/integration/test_gather_wiring.py']
COPIED = ('plugins', 'docs', 'meta', 'galaxy.yml')
SKIPPED_TESTS = ('fleet', 'quality', 'output')

STAGED_CONFTEST = '''\
"""Staged by scripts/mutation.py: the collection is the mutated copy mutmut put on sys.path (mutants/src)."""

import os

import ansible_collections
from hypothesis import settings

REPO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'src', 'ansible_collections',
                    'portwarden', 'compliance')
COLLECTIONS_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(REPO)))
_found = [os.path.realpath(path) for path in ansible_collections.__path__]
if os.path.realpath(os.path.join(COLLECTIONS_ROOT, 'ansible_collections')) not in _found:
    raise RuntimeError('mutation run: ansible_collections comes from %s, not the mutated copy' % _found)
os.environ['PYTHONPATH'] = os.pathsep.join(filter(None, [COLLECTIONS_ROOT, os.environ.get('PYTHONPATH')]))
os.environ['ANSIBLE_COLLECTIONS_PATH'] = COLLECTIONS_ROOT
# A mutant is killed or survives the same way every run.
settings.register_profile('mutation', derandomize=True, database=None, print_blob=False)
settings.load_profile('mutation')
'''

KILLED = {1: 'killed', 3: 'killed', 36: 'timeout', 24: 'timeout', -24: 'timeout', 152: 'timeout', 255: 'timeout'}
OTHER = {0: 'survived', 5: 'no tests', 33: 'no tests', 34: 'skipped', None: 'not checked'}


def status_of(code):
    return KILLED.get(code) or OTHER.get(code) or 'suspicious'


# ---- staging ----------------------------------------------------------------------------------------

def _ignore(_directory, names):
    return [name for name in names if name in ('__pycache__', '.hypothesis', '.pytest_cache')]


def stage(files, tests, max_stack_depth):
    if os.path.isdir(STAGE):
        shutil.rmtree(STAGE)
    collection = os.path.join(STAGE, COLLECTION)
    os.makedirs(collection)
    for name in COPIED:
        source = os.path.join(REPO, name)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(collection, name), ignore=_ignore)
        else:
            shutil.copy2(source, os.path.join(collection, name))
    shutil.copytree(os.path.join(REPO, 'tests'), os.path.join(STAGE, 'tests'),
                    ignore=lambda directory, names: _ignore(directory, names) + (
                        list(SKIPPED_TESTS) if os.path.samefile(directory, os.path.join(REPO, 'tests')) else []))
    with open(os.path.join(STAGE, 'tests', 'conftest.py'), 'w') as handle:
        handle.write(STAGED_CONFTEST)
    # The registry tests read shared/ beside the repository (../shared from the collection): beside the mutated copy
    # too. mutmut copies only files, and none into a path that exists already.
    shared = os.path.join(os.path.dirname(REPO), 'shared')
    if os.path.isdir(shared):
        link = os.path.join(STAGE, 'mutants', os.path.dirname(COLLECTION), 'shared')
        os.makedirs(os.path.dirname(link))
        os.symlink(shared, link)
    only = ['%s/%s' % (COLLECTION, TARGETS[name]) for name in files]
    lines = [
        '[tool.mutmut]',
        'source_paths = ["src"]',
        'only_mutate = %s' % json.dumps(only),
        'pytest_add_cli_args_test_selection = %s' % json.dumps(tests),
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]',
        # Fork each mutant's test run from a server that imported nothing of the run before: the default
        # runner forks from mutmut's own process, whose caches (compiled policies, bind classes) can hide a kill.
        'process_isolation = "forkserver"',
        'use_git_change_detection = false',
        'max_stack_depth = %d' % max_stack_depth,
        '',
        '[tool.pytest.ini_options]',
        'addopts = "--strict-markers"',
        'markers = ["netns: real network namespaces", "slow: takes more than a few seconds"]',
        '',
    ]
    with open(os.path.join(STAGE, 'pyproject.toml'), 'w') as handle:
        handle.write('\n'.join(lines))


def run_mutmut(max_children, property_scale):
    env = dict(os.environ)
    env.setdefault('PORTWARDEN_PROPERTY_SCALE', str(property_scale))
    env.pop('PYTHONPATH', None)  # nothing of the checkout, only what mutmut puts on sys.path
    mutmut = os.path.join(os.path.dirname(sys.executable), 'mutmut')
    command = [mutmut, 'run', '--max-children', str(max_children)]
    print('[mutation] %s (in %s, PORTWARDEN_PROPERTY_SCALE=%s)'
          % (' '.join(command), STAGE, env['PORTWARDEN_PROPERTY_SCALE']), flush=True)
    # mutmut redraws a spinner on one line: its output goes to a log, and only its end is shown.
    log = os.path.join(STAGE, 'mutmut.log')
    with open(log, 'w') as handle:
        code = subprocess.call(command, cwd=STAGE, env=env, stdout=handle, stderr=subprocess.STDOUT)
    with open(log, errors='replace') as handle:
        text = handle.read()
    tail = [line.rpartition('\r')[2].rpartition('\x1b[K')[2] for line in text.splitlines()[-15:]]
    print('\n'.join(line for line in tail if line.strip()))
    print('[mutation] mutmut exited %d; its output: %s' % (code, log), flush=True)
    return code


# ---- scoring ----------------------------------------------------------------------------------------

class _Blank(ast.NodeTransformer):
    """Blank every string literal that holds whitespace: text for a person, not a value the code uses."""

    def visit_Constant(self, node):
        if isinstance(node.value, str) and any(char.isspace() for char in node.value):
            return ast.copy_location(ast.Constant(value='<message>'), node)
        return node


def _normalized(node):
    copy = ast.parse(ast.unparse(node)).body[0]
    copy.name = 'f'
    return ast.dump(_Blank().visit(copy))


def _functions(path):
    with open(path, encoding='utf-8') as handle:
        tree = ast.parse(handle.read())
    return dict((node.name, node) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))


def _original_name(mutant):
    """``x_gate__mutmut_3`` -> ``gate``; ``xǁRuleǁmatches__mutmut_2`` -> ``Rule.matches``."""
    mangled = mutant.partition('__mutmut_')[0]
    if mangled.startswith('xǁ'):
        _x, cls, method = mangled.split('ǁ')
        return '%s.%s' % (cls, method)
    return mangled[2:]


def _changed_lines(orig, mutant):
    before = ast.unparse(orig).splitlines()[1:]
    after = ast.unparse(mutant).splitlines()[1:]
    return [line for line in difflib.unified_diff(before, after, lineterm='', n=0)
            if line[:1] in '+-' and not line.startswith(('+++', '---'))]


def _digest(function, changed):
    return hashlib.sha256(('%s\n%s' % (function, '\n'.join(line.strip() for line in changed))).encode('utf-8')).hexdigest()[:10]


def load_equivalent():
    """``{(file, function, digest): reason}`` from scripts/mutation-equivalent.txt."""
    found = {}
    if not os.path.exists(EQUIVALENT_FILE):
        return found
    with open(EQUIVALENT_FILE, encoding='utf-8') as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.strip()
            if not line or line.startswith('#'):
                continue
            fields = line.split(None, 3)
            if len(fields) < 4:
                raise SystemExit('%s:%d: expected FILE FUNCTION DIGEST REASON, got %r' % (EQUIVALENT_FILE, number, line))
            found[tuple(fields[:3])] = fields[3]
    return found


def classify(name):
    """Every mutant of one target file: dicts with name, function, status, kind, changed lines, digest."""
    relative = os.path.join(COLLECTION, TARGETS[name])
    meta_path = os.path.join(STAGE, 'mutants', relative + '.meta')
    if not os.path.exists(meta_path):
        return None
    with open(meta_path, encoding='utf-8') as handle:
        codes = json.load(handle)['exit_code_by_key']
    functions = _functions(os.path.join(STAGE, 'mutants', relative))
    equivalent = load_equivalent()
    mutants = []

    def order(item):
        return item[0].partition('__mutmut_')[0], int(item[0].rpartition('_')[2])

    for key, code in sorted(codes.items(), key=order):
        local = key.rpartition('.')[2]
        orig = functions.get(local.partition('__mutmut_')[0] + '__mutmut_orig')
        node = functions.get(local)
        function = _original_name(local)
        changed = _changed_lines(orig, node) if orig is not None and node is not None else []
        digest = _digest(function, changed)
        if orig is not None and node is not None and _normalized(orig) == _normalized(node):
            kind = 'message'
        elif (name, function, digest) in equivalent:
            kind = 'equivalent'
        else:
            kind = 'behaviour'
        mutants.append({'name': key[len(MODULE_PREFIX):] if key.startswith(MODULE_PREFIX) else key, 'file': name,
                        'function': function, 'status': status_of(code), 'kind': kind, 'changed': changed,
                        'digest': digest, 'reason': equivalent.get((name, function, digest))})
    return mutants


def _killed(mutant):
    return mutant['status'] in ('killed', 'timeout')


def score(survivors_dir):
    by_file = dict((name, classify(name)) for name in TARGETS)
    columns = ('file', 'mutants', 'killed', 'message', 'equiv', 'behav', 'all %', 'behav %')
    print('\n%-30s %7s %7s %7s %7s %7s %9s %9s' % columns)
    failing = []
    for label, name, functions in SCOPES:
        mutants = by_file[name]
        if mutants is None:
            print('%-30s   (not run)' % label)
            continue
        if functions is not None:
            mutants = [m for m in mutants if m['function'] in functions]
        behaviour = [m for m in mutants if m['kind'] == 'behaviour']
        killed_all = sum(1 for m in mutants if _killed(m))
        killed_behaviour = sum(1 for m in behaviour if _killed(m))
        percent_all = 100.0 * killed_all / len(mutants) if mutants else 100.0
        percent = 100.0 * killed_behaviour / len(behaviour) if behaviour else 100.0
        print('%-30s %7d %7d %7d %7d %7d %8.1f%% %8.1f%%' % (
            label, len(mutants), killed_all, sum(1 for m in mutants if m['kind'] == 'message'),
            sum(1 for m in mutants if m['kind'] == 'equivalent'), len(behaviour), percent_all, percent))
        if percent < TARGET:
            failing.append(label)
    for name, mutants in by_file.items():
        if mutants is None:
            continue
        survivors = [m for m in mutants if not _killed(m)]
        path = os.path.join(survivors_dir, 'survivors-%s.txt' % name)
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write('# %s: %d of %d mutants not killed (scripts/mutation.sh). KIND is behaviour, message (only a\n'
                         '# string with whitespace changed) or equivalent (scripts/mutation-equivalent.txt).\n'
                         '# mutant  STATUS  KIND  function  digest, then the changed lines\n'
                         % (TARGETS[name], len(survivors), len(mutants)))
            for mutant in sorted(survivors, key=lambda m: (m['kind'] != 'behaviour', m['function'], m['name'])):
                reason = '  # ' + mutant['reason'] if mutant['reason'] else ''
                fields = (mutant['name'], mutant['status'], mutant['kind'], mutant['function'], mutant['digest'], reason)
                handle.write('%s  %s  %s  %s  %s%s\n' % fields)
                for line in mutant['changed']:
                    handle.write('    %s\n' % line)
        print('[mutation] %s: %d survivors (%d behaviour-changing) -> %s' % (
            name, len(survivors), sum(1 for m in survivors if m['kind'] == 'behaviour'), path))
    return failing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--files', nargs='+', choices=sorted(TARGETS), default=sorted(TARGETS),
                        help='which target files to mutate (default: all four)')
    parser.add_argument('--tests', nargs='+', default=DEFAULT_TESTS, help='pytest paths, relative to the repository '
                        '(default: %s)' % ' '.join(DEFAULT_TESTS))
    parser.add_argument('--max-children', type=int, default=max(1, (os.cpu_count() or 2) // 2),
                        help='mutants tested at once (default: half the cores)')
    parser.add_argument('--property-scale', type=float, default=0.05,
                        help='PORTWARDEN_PROPERTY_SCALE for the property tests (default 0.05), unless set already')
    parser.add_argument('--max-stack-depth', type=int, default=-1,
                        help="mutmut's max_stack_depth: only tests that call a function within N frames count for it")
    parser.add_argument('--score', action='store_true', help='only print the scores of the last run')
    parser.add_argument('--survivors-dir', default=STAGE, help='where survivors-<file>.txt go (default: .mutation)')
    parser.add_argument('--strict', action='store_true', help='exit 1 when a file scores below %d%%%%' % TARGET)
    args = parser.parse_args(argv)
    if not args.score:
        tests = []
        for pattern in args.tests:
            found = sorted(glob.glob(os.path.join(REPO, pattern)))
            tests.extend(os.path.relpath(path, REPO) for path in found)
        if not tests:
            parser.error('no test matches %s' % ' '.join(args.tests))
        stage(args.files, tests, args.max_stack_depth)
        code = run_mutmut(args.max_children, args.property_scale)
        if code != 0:
            print('[mutation] mutmut exited %d' % code, file=sys.stderr)
            return code
    os.makedirs(args.survivors_dir, exist_ok=True)
    failing = score(args.survivors_dir)
    if failing:
        print('[mutation] below %d%% of behaviour-changing mutants killed: %s' % (TARGET, ', '.join(failing)))
        return 1 if args.strict else 0
    return 0


if __name__ == '__main__':
    sys.exit(main())
