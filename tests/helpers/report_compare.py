"""Comparing reports in the fleet suites: the CLI run as a user runs it, JSON differences by path, gate lines."""

import re
import subprocess
import sys

CLI = [sys.executable, '-m', 'ansible_collections.portwarden.compliance.plugins.plugin_utils.cli']


def run_cli(*args):
    proc = subprocess.run(CLI + [str(arg) for arg in args], capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode in (0, 1, 2) and 'Traceback' not in proc.stderr, proc.stdout + proc.stderr
    return proc


def differences(left, right, path='report'):
    """Where two JSON values differ (paths), for a readable assertion."""
    if isinstance(left, dict) and isinstance(right, dict):
        return [item for key in sorted(set(left) | set(right))
                for item in differences(left.get(key, '<missing>'), right.get(key, '<missing>'), '%s.%s' % (path, key))]
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        return [item for index, (one, two) in enumerate(zip(left, right)) for item in differences(one, two, '%s[%d]' % (path, index))]
    return [] if left == right else ['%s: %r != %r' % (path, left, right)]


def gate_lines(proc):
    """The gate's exit code and lines, its header's report time taken out."""
    return proc.returncode, re.sub(r'report of [0-9T:Z-]+', 'report of TIME', proc.stdout)
