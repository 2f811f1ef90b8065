# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Write a file so that no reader ever sees half of it (reports, generated registry data)."""

from __future__ import annotations

import os
import tempfile

FILE_MODE = 0o644


def write_atomically(path, text):
    """Write ``text`` to a temporary file beside ``path`` (a random name, created exclusively), flush it to disk,
    rename it over ``path`` and flush the directory.

    Nothing at ``path`` is followed: a link there is replaced, its target untouched. The file gets mode 0644 less
    the umask, never a mode taken from what was at ``path`` (a planted link would hand over its target's).
    """
    directory = os.path.dirname(os.path.abspath(path))
    umask = os.umask(0)
    os.umask(umask)
    handle, temp_path = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(text.encode('utf-8'))
            stream.flush()
            os.fchmod(stream.fileno(), FILE_MODE & ~umask)
            os.fsync(stream.fileno())
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except OSError:
            pass
        raise
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
