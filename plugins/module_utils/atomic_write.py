# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Write a file so that no reader ever sees half of it (reports, generated registry data)."""

from __future__ import annotations

import os
import stat
import tempfile

FILE_MODE = 0o644
# What an existing file's mode may hand on: no setuid, setgid or sticky bit, and never write access for others.
KEPT_MODE_BITS = 0o775


def write_atomically(path, text, replace=True):
    """Write ``text`` to a temporary file beside ``path`` (a random name, created exclusively), flush it to disk,
    rename it over ``path`` and flush the directory.

    ``replace`` False: never replace what is at ``path``; the file is linked there only if nothing is, else
    FileExistsError (no window between a check and the rename for another writer to use).

    Nothing at ``path`` is followed: a link there is replaced, its target untouched. A regular file there keeps
    its permission bits (less setuid, setgid, sticky and others' write); anything else (a link, a planted link's
    target, nothing) gives mode 0644 less the umask.
    """
    directory = os.path.dirname(os.path.abspath(path))
    umask = os.umask(0)
    os.umask(umask)
    mode = FILE_MODE & ~umask
    try:
        info = os.lstat(path)
        if stat.S_ISREG(info.st_mode):
            mode = stat.S_IMODE(info.st_mode) & KEPT_MODE_BITS
    except FileNotFoundError:
        pass
    handle, temp_path = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(text.encode('utf-8'))
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        if replace:
            os.replace(temp_path, path)
        else:
            os.link(temp_path, path)
            os.unlink(temp_path)
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
