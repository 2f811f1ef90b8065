# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Remediate step, firewall strategy for ports published by NAT: drop them in prerouting, before DNAT.

Pure logic (standard library only), the counterpart of remediate_firewall for exposures. A published port is
rewritten by DNAT in the nat prerouting hook (priority dstnat, -100) and then forwarded: the ``input`` table of
remediate_firewall never sees it. This table drops the port's packets addressed to the host itself before DNAT::

    table inet portwarden_published {
        (the sets of remediate_firewall: tcp_ports, tcp_ports_v4, tcp_ports_v6, tcp_addr_v4, tcp_addr_v6, udp_...)
        chain prerouting {
            type filter hook prerouting priority -150; policy accept;
            fib daddr type local tcp dport @tcp_ports drop
            ...
        }
    }

``fib daddr type local`` keeps the drop to traffic for the host's own addresses (what Docker's and netavark's
PREROUTING jumps match): a packet routed through the host to another machine's port 856 is not touched. Its own
table, so the input table and everything reading it stay as they are; lifting deletes only this table.

port_block writes it (option ``published``) beside the input table, in one transaction; remediation plans it for
findings ``via: nat`` and verifies it by a probe from outside the host (remediate_plan.judge_probe), never by the
presence of the rule.
"""

from __future__ import annotations

from ansible_collections.portwarden.compliance.plugins.module_utils.remediate_firewall import TableSpec

CHAIN_PRIORITY = -150  # before the nat prerouting hook (dstnat, -100): the port is seen as published, not as rewritten
# ``fib daddr type local`` as it is written, and as parse_rule reads it back from ``nft -j``.
PUBLISHED = TableSpec('portwarden_published', 'prerouting', 'prerouting', CHAIN_PRIORITY, 'fib daddr type local ',
                      'daddr type local')
TABLE_FAMILY = PUBLISHED.family
TABLE_NAME = PUBLISHED.name
TABLE_REF = PUBLISHED.ref
CHAIN_NAME = PUBLISHED.chain
RESET = PUBLISHED.reset


def render_table(blocks):
    """The table with ``blocks`` (normalised, remediate_firewall.normalise_blocks) as nft text, in a fixed order:
    a drop at prerouting of traffic to this host's own addresses (fib daddr type local)."""
    return PUBLISHED.render(blocks)


def nft_script(blocks):
    """The ``nft -f`` script that replaces the table with one holding exactly ``blocks``, in one transaction."""
    return PUBLISHED.script(blocks)


def lift_script():
    """The ``nft -f`` script that removes the table, whether or not it exists."""
    return RESET
