# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet's inventory, read on the controller by ansible-core's own InventoryManager.

One reader for the commands that need to know the fleet outside a play: ``portwarden merge`` (every host a
merged report must hold) and ``portwarden baseline`` (the groups a generated rule is scoped to).
"""

from __future__ import annotations

import os


class InventoryError(ValueError):
    """One line saying why the inventory cannot be read (names the sources)."""


def read_inventory(sources):
    """``(hosts, groups, groups_of)`` of the inventory ``sources``: every host (``all``), group name -> its hosts,
    host -> its groups as ``group_names`` has them (``all`` left out).

    A source that is neither a file nor a host list, or one no inventory plugin can read, is an InventoryError,
    never an empty fleet; so is an inventory without hosts.
    """
    from ansible import constants as C
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    for source in sources:
        if ',' not in source and not os.path.exists(source):
            raise InventoryError('inventory %s: no such file or directory' % source)
    unparsed = C.INVENTORY_UNPARSED_IS_FAILED
    C.INVENTORY_UNPARSED_IS_FAILED = True  # a source no plugin can read is an error, not an empty fleet
    try:
        manager = InventoryManager(loader=DataLoader(), sources=list(sources))
        members = manager.get_hosts('all')
        hosts = [host.name for host in members]
        groups = dict((name, [host.name for host in group.get_hosts()]) for name, group in manager.groups.items())
        groups_of = dict((host.name, sorted(group.name for group in host.get_groups() if group.name != 'all'))
                         for host in members)
    except AnsibleError as exc:
        raise InventoryError('inventory %s: %s' % (', '.join(sources), exc)) from None
    finally:
        C.INVENTORY_UNPARSED_IS_FAILED = unparsed
    if not hosts:
        raise InventoryError('inventory %s gives no host' % ', '.join(sources))
    return hosts, groups, groups_of
