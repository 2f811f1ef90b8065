# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The collection's own version, on the controller: for ``portwarden --version`` and the ``tool`` of a report."""

from __future__ import annotations

import json
import os

COLLECTION_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))


def collection_version(root=COLLECTION_ROOT):
    """The version of the collection at ``root``, or None when nothing there says.

    An installed tarball says it in MANIFEST.json (``ansible-galaxy collection build`` leaves galaxy.yml
    out); a checkout and a pip install (the wheel carries galaxy.yml) in galaxy.yml's ``version:`` line.
    """
    try:
        with open(os.path.join(root, 'MANIFEST.json')) as handle:
            version = json.load(handle)['collection_info']['version']
        if isinstance(version, str) and version:
            return version
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        with open(os.path.join(root, 'galaxy.yml')) as handle:
            for line in handle:
                if line.startswith('version:'):
                    # version: 0.1.0, "0.1.0" or '0.1.0', maybe with a comment after it
                    value = line.split(':', 1)[1].split(' #', 1)[0].strip().strip('"\'')
                    return value or None
    except (OSError, UnicodeDecodeError):
        pass
    return None
