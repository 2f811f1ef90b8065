"""The ``portwarden`` policy and registry commands as a person runs them: a subprocess, exit codes, output.

- ``lint``: 0 for valid policies, 1 with one exact line per problem (file, path, what was expected)
  for invalid ones, and never a Python traceback, whatever the file holds.
- ``schema``: exactly the published docs/policy.schema.json.
- ``registry update``: the committed registry data is what IANA's XML (the shared copy) yields;
  input that is not the registry exits 2 with a message, writing nothing.
- ``registry info``: the registry data in use.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO
from tests.helpers.gather import CLI_MODULE

BASELINE = os.path.join(REPO, 'docs', 'policies', 'baseline.yml')
PUBLISHED_SCHEMA = os.path.join(REPO, 'docs', 'policy.schema.json')
REGISTRY_DATA = os.path.join(REPO, 'plugins', 'module_utils', 'registry_data.py')
IANA_XML = os.path.join(REPO, '..', 'shared', 'data', 'iana', 'service-names-port-numbers.xml')
REGISTRY_DATE = '2026-08-17'
REGISTRY_SHA256 = '4bbf00ef4dd194ea3098d090b42a832c0f8aef704699956a4a7e24576a49631b'
REGISTRY_RECORDS = 14533
SEVERITY_CHOICES = 'info, low, medium, high, critical'


def portwarden(*args, cwd=None, text=True):
    """Run the CLI (tests/conftest.py put the collection on PYTHONPATH); the CompletedProcess."""
    return subprocess.run([sys.executable, '-m', CLI_MODULE] + [str(arg) for arg in args], cwd=cwd,
                          capture_output=True, text=text, check=False, timeout=120)


def no_traceback(proc):
    stderr = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode('utf-8', 'replace')
    assert 'Traceback' not in stderr, stderr
    return proc


def write(directory, name, text):
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip('\n'))
    return path


def iana_xml():
    # The shared copy of IANA's registry is part of the project's set-up: without it the registry
    # data cannot be checked, and that is a failure, not a reason to skip.
    assert os.path.isfile(IANA_XML), 'IANA registry XML missing: %s' % os.path.normpath(IANA_XML)
    return IANA_XML


# ---- lint: valid policies ------------------------------------------------------------------------

FULL_POLICY = """
    # Every feature of the policy language, in one valid policy.
    policy_version: 1
    name: full-featured
    description: Allow-list mode, scoped rules, every match and expect key, waivers.
    default: deny
    default_severity: low
    waiver_warning_days: 30
    rules:
      - id: ssh
        description: SSH from sshd, as root
        match: {ports: [22], protocols: [tcp]}
        expect: {processes: [sshd, /usr/sbin/sshd], users: [root, "0"]}
      - id: web
        match:
          ports: ["80", 443, "8000-8099", " 9000 - 9009 "]
          protocols: [tcp]
          families: [ipv4, ipv6]
          bind: [any, specific]
        expect: {units: [nginx.service, "web-*.service"], bind: [any, specific]}
        hosts: ["web*", "group:frontends", "!web-canary*"]
        severity: critical
      - id: postgres.loopback_only
        match: {ports: 5432}
        expect: {bind: loopback}
        hosts: ["group:databases"]
        severity: high
      - id: unassigned
        match: {ports: ["iana:unassigned", "iana:reserved"]}
        expect: closed
        severity: high
      - id: high-ports
        match: {ports: [dynamic, user, system, "iana:assigned"], protocols: [udp], include_ephemeral: true}
        expect: {bind: loopback}
        severity: info
    waivers:
      - rule: unassigned
        hosts: ["group:legacy", "!legacy-db*"]
        ports: [856, "857-859"]
        protocols: [tcp]
        reason: Legacy agent
        ticket: PWA-1
        approved_by: secops
        expires: "2027-01-31"
      - rule: default
        reason: Unknown listeners during the migration
        expires: "2026-12-31"
"""


def test_lint_accepts_the_bundled_baseline():
    proc = no_traceback(portwarden('lint', BASELINE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == '%s: valid (policy portwarden-baseline, 1 rules, 0 waivers)\n' % BASELINE
    assert proc.stderr == ''


def test_lint_accepts_a_full_featured_policy(tmp_path):
    write(tmp_path, 'policy.yml', FULL_POLICY)
    proc = no_traceback(portwarden('lint', 'policy.yml', cwd=tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == 'policy.yml: valid (policy full-featured, 5 rules, 2 waivers)\n'
    assert proc.stderr == ''


def test_lint_accepts_json(tmp_path):
    write(tmp_path, 'policy.json', '{"policy_version": 1, "name": "as-json", "rules": [{"id": "r", '
                                   '"match": {"ports": [856]}, "expect": "closed"}]}')
    proc = no_traceback(portwarden('lint', 'policy.json', cwd=tmp_path))
    assert (proc.returncode, proc.stdout) == (0, 'policy.json: valid (policy as-json, 1 rules, 0 waivers)\n')


# ---- lint: invalid policies ----------------------------------------------------------------------

# name -> (file content, or None for no file; the exact stdout lines, each prefixed "policy.yml: ")
INVALID = {
    'misspelt-severity': ("""
        policy_version: 1
        name: typo
        rules:
          - {id: one, match: {ports: 856}, expect: closed}
          - {id: two, match: {ports: 857}, expect: closed, severity: low}
          - {id: three, match: {ports: 858}, expect: closed, severity: hihg}
        """, ["rules[2].severity: 'hihg' is not one of %s (did you mean 'high'?)" % SEVERITY_CHOICES]),
    'duplicate-rule-ids': ("""
        policy_version: 1
        name: dup
        rules:
          - {id: web, match: {ports: 80}, expect: {processes: [nginx]}}
          - {id: ssh, match: {ports: 22}, expect: {processes: [sshd]}}
          - {id: web, match: {ports: 443}, expect: {processes: [nginx]}}
        """, ["rules[2].id: duplicate rule id 'web' (first at rules[0])"]),
    'waiver-names-no-rule': ("""
        policy_version: 1
        name: waiver
        rules:
          - {id: unassigned, match: {ports: "iana:unassigned"}, expect: closed}
        waivers:
          - {rule: unasigned, reason: typo, expires: "2027-01-01"}
        """, ["waivers[0].rule: 'unasigned' names no rule; expected one of unassigned, default"]),
    'range-backwards': ("""
        policy_version: 1
        name: range
        rules:
          - {id: r, match: {ports: [22, "900-800"]}, expect: closed}
        """, ["rules[0].match.ports[1]: range '900-800' starts after it ends"]),
    'date-that-does-not-exist': ("""
        policy_version: 1
        name: date
        rules:
          - {id: r, match: {ports: 856}, expect: closed}
        waivers:
          - {rule: r, reason: leap, expires: "2027-02-29"}
        """, ["waivers[0].expires: '2027-02-29' is not a date; expected YYYY-MM-DD"]),
    'unknown-key': ("""
        policy_version: 1
        name: key
        rules:
          - {id: r, match: {portz: [856]}, expect: closed}
        """, ["rules[0].match: unknown key 'portz'; expected bind, families, include_ephemeral, ports, protocols, via "
              "(did you mean 'ports'?)"]),
    'several-problems-sorted-by-path': ("""
        policy_version: 2
        name: many
        rules:
          - {id: a, match: {ports: 70000}, expect: open}
          - {id: a, match: {ports: 1}, expect: closed}
        waivers:
          - {rule: b, expires: 2027-01-01}
        """, ["policy_version: 2: expected 1",
              "rules[0].expect: 'open' is not \"closed\" or a mapping with processes, users, exe, units and/or bind",
              "rules[0].match.ports: 70000 is not a port (0-65535), a range \"A-B\", one of system, user, dynamic, "
              "iana:unassigned, iana:reserved, iana:assigned, or a list of them",
              "rules[1].id: duplicate rule id 'a' (first at rules[0])",
              "waivers[0]: missing 'reason'",
              "waivers[0].rule: 'b' names no rule; expected one of a, default"]),
    'yaml-syntax-error': ("""
        policy_version: 1
        name: syntax
        rules: [{id: r, match: {ports: 856}, expect: closed}
        """, ["line 4, column 1: not valid YAML: expected ',' or ']', but got '<stream end>'"]),
    'yaml-duplicate-key': ("""
        policy_version: 1
        name: one
        name: two
        """, ["line 3, column 1: not valid YAML: duplicate key 'name'"]),
    'yaml-list': ("""
        - policy_version: 1
        - name: list
        """, ['(top level): expected a mapping, got [{"policy_version": 1}, {"name": "list"}]']),
    'empty-file': ('', ['(top level): the policy is empty; expected a mapping with policy_version and name']),
    'missing-file': (None, ['cannot read the policy: No such file or directory']),
}


@pytest.mark.parametrize('case', sorted(INVALID))
def test_lint_names_every_problem_exactly(tmp_path, case):
    content, lines = INVALID[case]
    if content is not None:
        write(tmp_path, 'policy.yml', content)
    proc = no_traceback(portwarden('lint', 'policy.yml', cwd=tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ['policy.yml: ' + line for line in lines]
    assert proc.stderr == 'portwarden lint: 1 of 1 policies invalid\n'


def test_lint_not_utf8(tmp_path):
    (tmp_path / 'policy.yml').write_bytes(b'policy_version: 1\nname: caf\xe9\n')
    proc = no_traceback(portwarden('lint', 'policy.yml', cwd=tmp_path))
    assert (proc.returncode, proc.stdout) == (1, 'policy.yml: not UTF-8 text (byte 27)\n')


def test_lint_checks_every_file_and_fails_if_any_is_invalid(tmp_path):
    write(tmp_path, 'good.yml', FULL_POLICY)
    write(tmp_path, 'bad.yml', INVALID['misspelt-severity'][0])
    proc = no_traceback(portwarden('lint', 'good.yml', 'bad.yml', BASELINE, 'missing.yml', cwd=tmp_path))
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        'good.yml: valid (policy full-featured, 5 rules, 2 waivers)',
        'bad.yml: ' + INVALID['misspelt-severity'][1][0],
        '%s: valid (policy portwarden-baseline, 1 rules, 0 waivers)' % BASELINE,
        'missing.yml: cannot read the policy: No such file or directory',
    ]
    assert proc.stderr == 'portwarden lint: 2 of 4 policies invalid\n'


# Files built to break a loader rather than to be policies: lint must still answer with a line
# naming the file, exit 1, and no traceback.
HOSTILE = {
    'directory': None,
    'yaml-python-tag': '!!python/object/apply:os.system ["true"]\n',
    'yaml-self-alias': '&a [*a]\n',
    'yaml-self-alias-inside': 'policy_version: 1\nname: x\nrules: [{id: r, match: {ports: 1}, expect: closed, '
                              'severity: &s [*s]}]\n',
    'yaml-deeply-nested': '[' * 3000 + ']' * 3000 + '\n',
    'binary': bytes(range(256)) * 4,
}


@pytest.mark.parametrize('case', sorted(HOSTILE))
def test_lint_never_prints_a_traceback(tmp_path, case):
    content = HOSTILE[case]
    target = tmp_path / 'policy.yml'
    if content is None:
        target.mkdir()
    elif isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)
    proc = no_traceback(portwarden('lint', 'policy.yml', cwd=tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and all(line.startswith('policy.yml: ') for line in lines), proc.stdout
    assert proc.stderr == 'portwarden lint: 1 of 1 policies invalid\n'


# ---- schema --------------------------------------------------------------------------------------

def test_schema_is_the_published_schema_byte_for_byte(tmp_path):
    with open(PUBLISHED_SCHEMA, 'rb') as handle:
        published = handle.read()
    proc = portwarden('schema', text=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == published, 'docs/policy.schema.json is stale: regenerate it with `portwarden schema`'
    written = tmp_path / 'schema.json'
    proc = portwarden('schema', '--output', written, text=False)
    assert (proc.returncode, proc.stdout) == (0, b'')
    assert written.read_bytes() == published


# ---- registry ------------------------------------------------------------------------------------

def _summary(output, state):
    return '%s: %s (IANA registry of %s, %d records, sha256 %s)\n' % (output, state, REGISTRY_DATE, REGISTRY_RECORDS,
                                                                      REGISTRY_SHA256)


def test_registry_data_is_up_to_date_with_the_iana_xml():
    with open(REGISTRY_DATA, 'rb') as handle:
        before = handle.read()
    proc = no_traceback(portwarden('registry', 'update', '--from', iana_xml(), '--check'))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.endswith(': up to date (IANA registry of %s, %d records, sha256 %s)\n'
                                % (REGISTRY_DATE, REGISTRY_RECORDS, REGISTRY_SHA256)), proc.stdout
    assert os.path.realpath(proc.stdout.split(': ')[0]) == os.path.realpath(REGISTRY_DATA)
    with open(REGISTRY_DATA, 'rb') as handle:
        assert handle.read() == before, '--check changed the registry data'


def test_registry_update_writes_exactly_the_committed_data(tmp_path):
    output = tmp_path / 'x.py'
    proc = no_traceback(portwarden('registry', 'update', '--from', iana_xml(), '--output', output))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == _summary(output, 'updated')
    with open(REGISTRY_DATA, 'rb') as handle:
        assert output.read_bytes() == handle.read()
    # Once written, the same input changes nothing; a stale file is reported by --check, untouched.
    proc = portwarden('registry', 'update', '--from', iana_xml(), '--output', output)
    assert (proc.returncode, proc.stdout) == (0, _summary(output, 'up to date'))
    output.write_text('# stale\n')
    proc = portwarden('registry', 'update', '--from', iana_xml(), '--output', output, '--check')
    assert (proc.returncode, proc.stdout) == (1, _summary(output, 'would change'))
    assert output.read_text() == '# stale\n'


REGISTRY_BAD_INPUT = {
    'not-xml': ('policy_version: 1\n', 'not well-formed XML: syntax error: line 1, column 0'),
    'other-xml': ('<html><body/></html>', 'root element is <html>, expected '
                                          '<registry xmlns="http://www.iana.org/assignments">: not IANA\'s port registry'),
    'other-registry': ('<registry xmlns="http://www.iana.org/assignments" id="protocol-numbers"/>',
                       "registry id is 'protocol-numbers', expected 'service-names-port-numbers': "
                       "a different IANA registry"),
    'missing': (None, None),
}


@pytest.mark.parametrize('case', sorted(REGISTRY_BAD_INPUT))
def test_registry_update_refuses_what_is_not_the_registry(tmp_path, case):
    content, problem = REGISTRY_BAD_INPUT[case]
    source = tmp_path / 'input.xml'
    if content is not None:
        source.write_text(content)
    output = tmp_path / 'out.py'
    proc = no_traceback(portwarden('registry', 'update', '--from', source, '--output', output))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    if problem is None:
        problem = 'cannot read %s: No such file or directory' % source
    else:
        problem = '%s: %s' % (source, problem)
    assert proc.stderr == 'portwarden registry update: %s\n' % problem
    assert proc.stdout == ''
    assert not output.exists()


def test_registry_info_names_the_data_in_use():
    proc = no_traceback(portwarden('registry', 'info'))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ('{\n  "date": "%s",\n  "sha256": "%s",\n  "records": %d\n}\n'
                           % (REGISTRY_DATE, REGISTRY_SHA256, REGISTRY_RECORDS))
