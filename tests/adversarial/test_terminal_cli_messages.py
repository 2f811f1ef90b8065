"""Attack: text the operator did not write reaches the terminal through a CLI message.

A policy from a pull request (its name, a rule id, a value in an error) and a file name taken from a
checkout are printed by ``portwarden lint``; an argument naming a missing registry file is printed by
``portwarden registry update``. Each is shown with its control and invisible characters escaped, and a
message never spans more lines than it should.
"""

import subprocess
import sys
import unicodedata

from tests.helpers.gather import CLI_MODULE

OSC_TITLE = '\x1b]0;pwned\x07'
CLEAR = '\x1b[2J\x1b[H'


def portwarden(*args, cwd=None):
    return subprocess.run([sys.executable, '-m', CLI_MODULE] + list(args), cwd=cwd, capture_output=True,
                          check=False, timeout=120)


def hostile_chars(data):
    text = data.decode('utf-8')
    return sorted(set(char for char in text if char != '\n'
                      and unicodedata.category(char) in ('Cc', 'Cf', 'Cs', 'Zl', 'Zp')))


def test_lint_of_a_valid_policy_escapes_its_name_and_path(tmp_path):
    name = 'policy%s\u202e.yml' % CLEAR
    (tmp_path / name).write_text('policy_version: 1\nname: "base\\e[2Jline\\nforged: valid"\nrules: []\n')
    proc = portwarden('lint', name, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert hostile_chars(proc.stdout + proc.stderr) == []
    assert proc.stdout.decode('utf-8') == (
        'policy\\x1b[2J\\x1b[H\\u202e.yml: valid (policy base\\x1b[2Jline\\nforged: valid, 0 rules, 0 waivers)\n')


def test_lint_errors_escape_what_the_policy_holds(tmp_path):
    (tmp_path / 'bad.yml').write_text(
        'policy_version: 1\nname: x\nrules:\n  - id: "r\\e]0;pwned\\a"\n    match: {ports: ["\\e[2J\\u200b"]}\n'
        '    expect: closed\n')
    proc = portwarden('lint', 'bad.yml', cwd=str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert b'Traceback' not in proc.stderr
    assert hostile_chars(proc.stdout + proc.stderr) == []
    out = proc.stdout.decode('utf-8')
    assert out.startswith('bad.yml: ') and '\\x1b[2J\\u200b' in out, out


def test_registry_update_escapes_the_path_it_cannot_read(tmp_path):
    proc = portwarden('registry', 'update', '--from', str(tmp_path / ('missing%s.xml' % OSC_TITLE)), '--check')
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert hostile_chars(proc.stdout + proc.stderr) == []
    assert b'missing\\x1b]0;pwned\\x07.xml' in proc.stderr


def hostile_report(tmp_path):
    """A saved fleet report whose host was unreachable with a hostile message (an SSH banner, a DNS answer)."""
    from ansible_collections.portwarden.compliance.plugins.module_utils import registry
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import build_report, host_entry
    from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import render_json

    reason = 'unreachable: banner %s\u202e\nportwarden gate: PASS (forged)' % OSC_TITLE
    report = build_report([host_entry('web-01', None, reason)], {'name': 'p', 'sha256': '0' * 64, 'rules': []},
                          registry.registry_info(), tool_version='0.1.0')
    path = tmp_path / 'portwarden-report.json'
    path.write_text(render_json(report))
    return path


def test_gate_output_carries_no_control_character(tmp_path):
    proc = portwarden('gate', str(hostile_report(tmp_path)))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert hostile_chars(proc.stdout + proc.stderr) == []  # every CLI stream escapes what a field missed
    assert b'banner \\x1b]0;pwned\\x07\\u202e' in proc.stdout


def test_gate_output_cannot_be_forged_by_a_line_feed_in_a_reason(tmp_path):
    proc = portwarden('gate', str(hostile_report(tmp_path)))
    assert proc.returncode == 2
    assert [line for line in proc.stdout.decode('utf-8').splitlines() if line.startswith('portwarden gate:')] == [
        proc.stdout.decode('utf-8').splitlines()[0]]
