"""A hostile local user's listeners: real processes whose name (comm) and executable path carry text
meant for the operator's terminal, a pull-request comment or a report, listening on real sockets.

- ``hostile_python(directory)``: a copy of this Python at a path holding escape sequences, a newline, a
  bidi override, a zero-width space and a byte that is not UTF-8 (what /proc/PID/exe then shows);
- ``listen_as(namespace, python, name, sockets)``: tests/helpers/listeners.py run by that copy in a
  network namespace, its comm set to ``name`` (prctl PR_SET_NAME, 15 bytes at most).
"""

import json
import os
import shutil
import subprocess
import sys

from tests.helpers.netns import LISTENERS, Listeners

# Each part of the path is one attack: an OSC 8 hyperlink, clearing the screen, a forged second line,
# a mention and an issue reference for a PR comment, a bare URL, invisible and reordering characters.
EXE_DIR_PARTS = (
    '\x1b]8;;https:\x07link\x1b]8;;\x07',
    'bin\x1b[2J\nforged: complete=True',
    '@security-team #4242 www.evil.example',
    'rtl\u202eexe.txt\u200bzw',
)
NOT_UTF8 = b'\xff'


def hostile_python(directory):
    """Copy this Python's binary under ``directory`` at a hostile path; the path (bytes)."""
    path = os.fsencode(directory)
    for part in EXE_DIR_PARTS:
        path = os.path.join(path, part.encode('utf-8'))
    path = os.path.join(path + NOT_UTF8, b'python3')
    os.makedirs(os.path.dirname(path))
    shutil.copy2(os.path.realpath(sys.executable), path)
    return path


def listen_as(namespace, python, name, sockets):
    """Hold ``sockets`` (listeners.py spec) in ``namespace`` from a process named ``name`` run by ``python``."""
    if len(name.encode('utf-8')) > 15:
        raise ValueError('a comm holds 15 bytes: %r' % name)
    spec = json.dumps({'sockets': sockets, 'name': name})
    proc = subprocess.Popen(namespace.command([python, LISTENERS, spec]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError('listeners.py under a hostile name failed (exit %s)' % proc.returncode)
    holder = Listeners(proc, json.loads(line))
    namespace.holders.append(holder)
    return holder
