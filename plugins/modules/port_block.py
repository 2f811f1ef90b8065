#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: port_block
short_description: Block listening ports with nftables, in a table of their own
version_added: 0.1.0
description:
  - Closes ports the policy says must be closed while the services behind them keep running, by dropping
    incoming packets to them with nftables. Used by the C(firewall) remediation strategy.
  - "Everything lives in one dedicated table, C(table inet portwarden); nothing else is touched. The table has,
    for each of TCP and UDP, five sets: C(<proto>_ports) (a port, IPv4 and IPv6), C(<proto>_ports_v4) and
    C(<proto>_ports_v6) (a port, one family, matched with C(meta nfproto)), C(<proto>_addr_v4) and
    C(<proto>_addr_v6) (one destination address and a port, C(ip daddr . <proto> dport) and
    C(ip6 daddr . <proto> dport) concatenations). Its chain C(input) (C(type filter hook input priority -10;
    policy accept)) has one C(drop) rule per set. Every set counts the packets each of its elements drops
    (C(counter)), so a probe dropped by a block is seen in RV(counters); a table written before the sets counted is
    rebuilt once, to the design, by the next run with O(state=present)."
  - A block is one set element. Each element carries the id of the policy rule behind it as an element
    comment, C(comment "rule=<id>"), so C(nft list table inet portwarden) tells why each port is closed.
  - All changes are made in one C(nft -f -) transaction that replaces the whole table (atomic, there is no
    moment with a half-built table). A table that differs from the design (a foreign rule, set or chain, a
    missing set) is rebuilt to the design; RV(drift) says what differed.
  - "Ports published by NAT (Docker without its userland proxy, netavark, kube-proxy) are rewritten in the nat
    prerouting hook and forwarded: the C(input) chain never sees them. O(published) closes them before NAT, in a second
    table of the same design, C(table inet portwarden_published), whose chain C(prerouting) (C(type filter hook
    prerouting priority -150; policy accept), before the nat hook at -100) leads each drop rule with
    C(fib daddr type local), so only traffic to the host's own addresses is dropped and traffic the host routes to
    other machines is not touched. The NAT rules themselves, and the containers behind them, are left alone."
  - When both tables change, both are written in one C(nft -f -) transaction.
  - Blocks on protected ports are refused, never applied. Protected are the ports in O(protected_ports), and always the
    TCP port of the live SSH connection (see O(protected_ports)). Refused blocks are returned in RV(protected);
    they do not fail the task.
author:
  - portwarden contributors (@portwarden)
extends_documentation_fragment:
  - portwarden.compliance.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the tables and reports what would change; never runs an nft command that changes anything, never writes O(persist_path).
  diff_mode:
    support: full
    details:
      - The diff shows the table before and after, as nft text (and whether O(persist_path) holds it); the prerouting
        table of O(published) too, when it exists before or after.
  idempotent:
    description: Running it again with the same arguments changes nothing and reports C(changed=false).
    support: full
options:
  blocks:
    description:
      - The blocks to add (O(state=present)) or to lift (O(state=absent)).
      - Two entries for the same port, protocol, family and address are one block.
      - With O(state=absent), an empty list lifts every block and removes the table.
    type: list
    elements: dict
    default: []
    suboptions:
      protocol:
        description: Transport protocol.
        type: str
        required: true
        choices: [tcp, udp]
      port:
        description: Destination port to close, 1 to 65535.
        type: int
        required: true
      family:
        description:
          - V(ipv4) or V(ipv6) to block one address family only; unset (V(null)) blocks both.
          - With O(blocks[].address) it may be left out (the address says it); if given it must match the address.
        type: str
        choices: [ipv4, ipv6]
      address:
        description:
          - Block only packets to this one local address (an IPv4 or IPv6 address, not a network).
          - V(0.0.0.0) and V(::) (a socket bound to every address) mean every address of that family, the
            same as O(blocks[].family) without an address. For a dual-stack V(::) socket, which also takes IPv4,
            leave both O(blocks[].address) and O(blocks[].family) unset.
        type: str
      rule:
        description:
          - Id of the policy rule that asks for the block; kept as the element comment C(rule=<id>).
          - Letters, digits, C(.), C(_) and C(-), at most 123 characters.
          - When unset, a block already in the table keeps its rule id; a new one gets no comment.
          - With O(state=absent) it is ignored; blocks are matched by protocol, port, family and address.
        type: str
  published:
    description:
      - The blocks of ports published by NAT, to add to (O(state=present)) or lift from (O(state=absent)) the prerouting
        table C(inet portwarden_published); the same fields as O(blocks).
      - With O(state=absent), lifting only O(blocks) leaves this table as it is, and lifting only O(published) leaves
        the input table; with neither, both tables are removed.
      - Protection (O(protected_ports), the live SSH connection) applies to these blocks too.
    type: list
    elements: dict
    default: []
    suboptions:
      protocol:
        description: Transport protocol.
        type: str
        required: true
        choices: [tcp, udp]
      port:
        description: Published destination port to close, 1 to 65535, as it is before NAT (the host port).
        type: int
        required: true
      family:
        description: V(ipv4) or V(ipv6) to block one address family only; unset (V(null)) blocks both.
        type: str
        choices: [ipv4, ipv6]
      address:
        description: Block only packets to this one address of the host (before NAT); V(0.0.0.0) and V(::) mean the whole family.
        type: str
      rule:
        description: Id of the policy rule that asks for the block; kept as the element comment C(rule=<id>).
        type: str
  state:
    description:
      - V(present) makes sure the table exists and holds every block of O(blocks). A listed block that is
        already there under another rule id gets the new id. When there is nothing to block (no blocks, or
        every one refused as protected) and there is no table, none is made.
      - V(absent) lifts the blocks of O(blocks) (the table stays, possibly empty); with no O(blocks) and no
        O(published) it lifts every block and removes both tables (C(inet portwarden) and C(inet portwarden_published)),
        and nothing else.
      - V(read) changes nothing and takes no lock; it returns both tables as they are (RV(blocks), RV(table),
        RV(drift)) and the packets each block's drop has counted (RV(counters)), which is what the remediation reads
        before and after its probe. O(blocks) and O(published) are ignored.
    type: str
    choices: [present, absent, read]
    default: present
  exclusive:
    description:
      - With O(state=present), also lift every block of the tables that O(blocks) and O(published) do not list, so
        the tables hold exactly O(blocks) and O(published) (less refused ones).
      - Ignored with O(state=absent).
    type: bool
    default: false
  persist_path:
    description:
      - Also write the table to this file, so that the system's nftables service restores it at boot. Add
        C(include "/etc/nftables.d/portwarden.nft") (this path) to C(/etc/nftables.conf).
      - The file is C(nft -f) loadable and starts by declaring and deleting the table, so loading it again,
        or loading it over a live table, gives the same table. It holds the prerouting table of O(published) too,
        when there is one.
      - The file always mirrors the table after the run. It is written atomically (a temporary file in the
        same directory, renamed over it). When the table is removed (O(state=absent) without O(blocks)),
        the file is removed.
      - The directory must exist.
      - Not with O(namespace), since a file the host's nftables service loads would block the port on the host.
    type: path
  namespace:
    description:
      - Apply the blocks in another network namespace of the host (a container's, a pod's), whose own table
        C(inet portwarden) then holds them. The host's ruleset is not touched.
      - Identified by the namespace's inode and a process in it, as M(portwarden.compliance.listening_sockets_info) returns
        them (RV(portwarden.compliance.listening_sockets_info#module:sockets[].namespace)). The module enters it only when
        that process is still in that very namespace; otherwise it fails and changes nothing. With O(state=absent), a
        namespace whose processes have all exited has no table left to lift, and the module succeeds unchanged.
      - The C(nft) command of the host runs inside the namespace, so the container needs no nftables of its own. Needs root.
    type: dict
    suboptions:
      inode:
        description: Inode of the network namespace.
        type: int
        required: true
      pid:
        description: A process in it.
        type: int
        required: true
  protected_ports:
    description:
      - Ports that must never be blocked, whatever O(blocks) says. A block on one of them (any family or
        address) is refused and returned in RV(protected).
      - In addition, the module always protects the TCP port of the live SSH connection, read from the
        C(SSH_CONNECTION) environment variable (C(client_ip client_port server_ip server_port)). When the
        variable is not in the module's environment (C(sudo) resets it under C(become)), the environments of
        the module's ancestor processes are searched (the login shell under sshd has it). A value that does
        not parse (for example C(UNKNOWN 65535 UNKNOWN 65535)) is ignored.
      - Protection applies to adding blocks; lifting a block is always allowed.
    type: list
    elements: dict
    default: []
    suboptions:
      protocol:
        description: Transport protocol.
        type: str
        required: true
        choices: [tcp, udp]
      port:
        description: Port, 1 to 65535.
        type: int
        required: true
requirements:
  - Python 3.8 to 3.13 on the managed host (the tested range).
  - Linux with nftables (the C(nft) command, built with JSON support, C(nft -j)); root (C(become)).
notes:
  - Idempotent. A second run with the same arguments finds every block in place and reports C(changed=false);
    it runs no nft command that changes anything.
  - A blocked port drops every incoming packet to it, new connections and established ones, from any source;
    the service keeps running and keeps its socket. TCP clients time out, UDP clients get no answer.
  - A block also drops packets that come back to a local client socket bound to the same port. Policy ports
    are normally services, below the ephemeral range, where client sockets do not live.
  - Other firewall tables (firewalld, ufw, docker) cannot undo a block; a C(drop) in any base chain is final.
    Their own C(drop) rules still apply to ports that are not blocked here.
  - Only this module should write to C(table inet portwarden) and C(table inet portwarden_published); anything else
    found in them (a foreign rule, set or chain, an C(accept) someone added) is reported in RV(drift) and
    RV(published.drift) and removed on the next run with O(state=present), which rebuilds the table to the design.
  - Two runs at once in one network namespace (two plays, C(ansible-pull) and an operator) take turns, so neither loses
    the other's blocks; each holds a lock, C(/run/portwarden-nft.<netns inode>.lock), from reading the tables to writing
    them (and O(persist_path)), and fails without changing anything when it cannot get it within 120 seconds.
  - Sees the network namespace the module runs in (the host's, unless run inside a container).
seealso:
  - module: portwarden.compliance.listening_sockets_info
  - name: nft(8)
    description: The nftables command line tool.
    link: https://www.netfilter.org/projects/nftables/manpage.html
'''

EXAMPLES = r'''
- name: Close TCP 856 and UDP 857 (both families), and TCP 858 on ::1 only
  portwarden.compliance.port_block:
    blocks:
      - {protocol: tcp, port: 856, rule: no-legacy-rpc}
      - {protocol: udp, port: 857, rule: no-legacy-rpc}
      - {protocol: tcp, port: 858, address: "::1", rule: no-debug-port}
    protected_ports:
      - {protocol: tcp, port: 22}
    persist_path: /etc/nftables.d/portwarden.nft
  become: true
  register: blocked

- name: Say which blocks were refused
  ansible.builtin.debug:
    msg: "{{ blocked.protected }}"
  when: blocked.protected | length > 0

- name: Make the table hold exactly these blocks (lift any other)
  portwarden.compliance.port_block:
    blocks:
      - {protocol: tcp, port: 856, family: ipv6, rule: no-legacy-rpc}
    exclusive: true
  become: true

- name: Close TCP 856 that Docker publishes to a container (DNAT, no socket on the host), before NAT
  portwarden.compliance.port_block:
    published:
      - {protocol: tcp, port: 856, family: ipv4, rule: iana-unassigned-closed}
  become: true

- name: Lift one block
  portwarden.compliance.port_block:
    blocks:
      - {protocol: udp, port: 857}
    state: absent
  become: true

- name: Lift every block, remove the table and its file
  portwarden.compliance.port_block:
    state: absent
    persist_path: /etc/nftables.d/portwarden.nft
  become: true
'''

RETURN = r'''
blocks:
  description: Every block in the table after the run (what it would be, in check mode), sorted by protocol, port, family and address.
  returned: success
  type: list
  elements: dict
  contains:
    protocol:
      description: Transport protocol.
      type: str
      returned: always
      sample: tcp
    port:
      description: Blocked destination port.
      type: int
      returned: always
      sample: 856
    family:
      description: V(ipv4) or V(ipv6); V(null) for both.
      type: str
      returned: always
      sample: null
    address:
      description: The one destination address blocked, or V(null) for every address.
      type: str
      returned: always
      sample: null
    rule:
      description: Rule id from the element comment, V(null) for an element without one.
      type: str
      returned: always
      sample: no-legacy-rpc
  sample: [{"protocol": "tcp", "port": 856, "family": null, "address": null, "rule": "no-legacy-rpc"}]
added:
  description:
    - Blocks added (that would be, in check mode); same fields as RV(blocks).
    - A block whose rule id changes appears in both RV(added) (new id) and RV(removed) (old id).
  returned: success
  type: list
  elements: dict
  sample: [{"protocol": "udp", "port": 857, "family": null, "address": null, "rule": "no-legacy-rpc"}]
removed:
  description: Blocks lifted (that would be, in check mode); same fields as RV(blocks).
  returned: success
  type: list
  elements: dict
  sample: []
protected:
  description: Blocks refused because they are on a protected port, with the fields of RV(blocks) and a C(reason).
  returned: success
  type: list
  elements: dict
  sample: [{"protocol": "tcp", "port": 22, "family": null, "address": null, "rule": "no-ssh",
            "reason": "tcp port 22 carries the live SSH connection (SSH_CONNECTION); blocking it would cut the connection"}]
table:
  description: The table after the run as nft text; empty when there is no table.
  returned: success
  type: str
  sample: "table inet portwarden {\n\tset tcp_ports {\n\t\ttype inet_service\n..."
persisted:
  description: O(persist_path) when the file holds the table after the run; V(null) without O(persist_path) or when the file was removed.
  returned: success
  type: str
  sample: /etc/nftables.d/portwarden.nft
published:
  description:
    - The prerouting table of ports published by NAT (C(inet portwarden_published), O(published)), with the fields
      RV(blocks), RV(added), RV(removed), RV(protected), RV(table) and RV(drift) have for the input table.
  returned: success
  type: dict
  contains:
    blocks:
      description: Every block in the prerouting table after the run; same fields as RV(blocks).
      type: list
      elements: dict
      returned: always
    added:
      description: Prerouting blocks added (that would be, in check mode).
      type: list
      elements: dict
      returned: always
    removed:
      description: Prerouting blocks lifted (that would be, in check mode).
      type: list
      elements: dict
      returned: always
    protected:
      description: Prerouting blocks refused because they are on a protected port, with a C(reason).
      type: list
      elements: dict
      returned: always
    table:
      description: The prerouting table after the run as nft text; empty when there is none.
      type: str
      returned: always
      sample: "table inet portwarden_published {\n\tset tcp_ports {\n..."
    drift:
      description: How the prerouting table found differed from the design; empty when it did not.
      type: list
      elements: str
      returned: always
    counters:
      description: Each prerouting block with the packets its drop has counted, as RV(counters).
      type: list
      elements: dict
      returned: always
  sample: {"blocks": [{"protocol": "tcp", "port": 856, "family": "ipv4", "address": null, "rule": "iana-unassigned-closed"}],
           "added": [], "removed": [], "protected": [], "table": "table inet portwarden_published {...", "drift": []}
counters:
  description:
    - Each block of RV(blocks) with C(packets), the number of packets its drop has counted since the table was last
      written (every set counts per element; a table is rewritten whenever its blocks change, which starts the counts
      again). V(null) for a block with no count (in check mode, one not yet in the table).
    - A probe whose packets move the count of the block of its port was dropped by that block.
  returned: success
  type: list
  elements: dict
  sample: [{"protocol": "tcp", "port": 856, "family": null, "address": null, "rule": "no-legacy-rpc", "packets": 2}]
drift:
  description:
    - How the table found differed from the design; empty when it did not.
    - With O(state=present), and whenever blocks are added or lifted, a table that differs is rebuilt to the design.
  returned: success
  type: list
  elements: str
  sample: ["set extra is not part of the design"]
'''

import errno
import fcntl
import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.portwarden.compliance.plugins.module_utils.gather_namespaces import (
    NamespaceGone,
    NamespaceUnreadable,
    enter_namespace,
    open_namespace,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.remediate_firewall import (
    FAMILIES,
    INPUT,
    PROTOCOLS,
    STATES,
    TABLE_FAMILY,
    TABLE_NAME,
    block_key,
    block_label,
    compute_plan,
    describe_table,
    filter_protected,
    find_ssh_connection,
    normalise_blocks,
    normalise_protected_ports,
    parse_counters,
    parse_table,
    persist_text,
    public_block,
    sort_blocks,
    table_exists,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.remediate_prerouting import PUBLISHED


class Nft(object):
    """The nft command; every failure ends the module with nft's own message."""

    def __init__(self, module):
        self.module = module
        path = module.get_bin_path('nft')
        if not path:
            module.fail_json(msg='nft (nftables) not found in PATH, /sbin, /usr/sbin or /usr/local/sbin: install the nftables package '
                                 '(port_block needs the nft command)')
        self.path = path

    def run(self, args, data=None, what=None):
        cmd = [self.path] + list(args)
        rc, out, err = self.module.run_command(cmd, data=data, binary_data=data is not None)
        if rc != 0:
            self.module.fail_json(msg='%s failed (nft exit code %d): %s' % (what or ' '.join(cmd), rc, (err or out).strip()),
                                  rc=rc, cmd=cmd, stdout=out, stderr=err)
        return out

    def read(self, spec):
        """(exists, blocks, drift, counters) of the table ``spec``; ``counters`` maps a block's key to the packets its
        drop has counted."""
        try:
            if not table_exists(self.run(['-j', 'list', 'tables']), spec):
                return False, [], [], {}
            listed = self.run(['-j', 'list', 'table', spec.family, spec.name])
            blocks, drift = parse_table(listed, spec)
            counters = parse_counters(listed, spec)
        except ValueError as exc:
            self.module.fail_json(msg='Could not read table %s: %s' % (spec.ref, to_native(exc)))
        return True, blocks, drift, counters


def read_file(module, path):
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8', 'replace')
    except FileNotFoundError:
        return None
    except OSError as exc:
        module.fail_json(msg='Could not read persist_path %s: %s' % (path, to_native(exc)))


def write_file(module, path, text):
    """Write ``text`` to a temporary file beside ``path`` and rename it over ``path`` (atomic)."""
    directory = os.path.dirname(path) or '.'
    try:
        handle, temp_path = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    except OSError as exc:
        module.fail_json(msg='Could not write persist_path %s: %s' % (path, to_native(exc)))
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(text.encode('utf-8'))
            stream.flush()
            os.fsync(stream.fileno())
    except OSError as exc:
        os.unlink(temp_path)
        module.fail_json(msg='Could not write persist_path %s: %s' % (path, to_native(exc)))
    # atomic_move renames in place and keeps an existing file's owner, mode and SELinux context.
    module.atomic_move(temp_path, path)


def file_state(path, content, blocks_text):
    if content is None:
        return '# persist_path %s: absent\n' % path
    if content == blocks_text:
        return '# persist_path %s: holds this table\n' % path
    return '# persist_path %s: holds something else\n' % path


def enter(module, inode, pid):
    """Move this (short-lived) module process into network namespace ``inode``, through ``pid``, for good:
    every nft command it runs from now on works on that namespace's ruleset. A namespace whose processes
    have all exited has nothing left to lift (state=absent succeeds unchanged), nor to block in (it fails)."""
    try:
        fd, _pid = open_namespace(inode, [pid])
    except NamespaceGone as exc:
        if module.params['state'] == 'absent':
            module.exit_json(changed=False, blocks=[], added=[], removed=[], protected=[], table='', persisted=None, drift=[],
                             published=dict(blocks=[], added=[], removed=[], protected=[], table='', drift=[]),
                             msg='network namespace %d is gone (%s): nothing to lift' % (inode, to_native(exc)))
        module.fail_json(msg='network namespace %d (pid %d) cannot be entered: %s; nothing was changed' % (inode, pid, to_native(exc)))
    except NamespaceUnreadable as exc:
        module.fail_json(msg='network namespace %d (pid %d) cannot be entered: %s; nothing was changed' % (inode, pid, to_native(exc)))
    try:
        enter_namespace(fd, inode)
    except NamespaceUnreadable as exc:
        module.fail_json(msg='network namespace %d (pid %d): %s; nothing was changed' % (inode, pid, to_native(exc)))
    finally:
        os.close(fd)


LOCK_DIR = '/run'  # root's alone: a user cannot pre-create (and hold) the lock file there
LOCK_TIMEOUT = 120.0


def lock_table(module):
    """Hold an exclusive lock on this network namespace's table until the module exits: two runs at once (two plays,
    ansible-pull and an operator) would each write the table they read, and the first one's blocks would be lost."""
    try:
        inode = os.stat('/proc/self/ns/net').st_ino
        path = os.path.join(LOCK_DIR, 'portwarden-nft.%d.lock' % inode)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except PermissionError:
        return None  # not root: nft cannot change the ruleset either, and says so in its own words
    except OSError as exc:
        module.fail_json(msg='Could not open the lock of table %s %s in %s: %s; nothing was changed'
                             % (TABLE_FAMILY, TABLE_NAME, LOCK_DIR, to_native(exc)))
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd  # released when the process exits
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                module.fail_json(msg='Another port_block run holds the lock %s (for %gs); nothing was changed'
                                     % (path, LOCK_TIMEOUT))
            time.sleep(0.05)


BLOCK_OPTIONS = dict(
    protocol=dict(type='str', required=True, choices=list(PROTOCOLS)),
    port=dict(type='int', required=True),
    family=dict(type='str', choices=list(FAMILIES)),
    address=dict(type='str'),
    rule=dict(type='str'),
)


class TableRun(object):
    """What one run does to one portwarden table (the input one, or the prerouting one of published ports)."""

    def __init__(self, spec, nft, desired):
        self.spec = spec
        self.desired = desired
        self.exists_before, self.current, self.drift, self.counters = nft.read(spec)
        self.refused = []

    def keep(self):
        """state=read: the table as it is, nothing planned."""
        self.plan = {'added': [], 'removed': [], 'final': self.current, 'lift_all': False}
        self.final = self.current
        self.exists_after = self.exists_before
        self.changed = False

    def decide(self, state, exclusive, lift_everything, guard):
        """Plan the table; ``guard`` splits blocks into (allowed, refused) as filter_protected does."""
        if state == 'absent' and not self.desired and not lift_everything:
            plan = compute_plan(self.current, [], 'present')  # the other table's blocks are lifted: this one stays
        else:
            plan = compute_plan(self.current, self.desired, state, exclusive)
        # A block found in the table on a protected port (someone else's content, the port of the live SSH connection)
        # is never written back: it is lifted, and said so.
        kept, found_protected = guard(plan['final'])
        if found_protected and not plan['lift_all']:
            plan['final'] = kept
            plan['removed'] = sort_blocks(plan['removed'] + [block for block in self.current if block_key(block) in set(
                block_key(item) for item in found_protected)])
            self.drift = list(self.drift) + ['element %s found in the table is on a protected port (%s): lifted, never written back'
                                             % (block_label(item), item['reason']) for item in found_protected]
        self.plan = plan
        self.final = plan['final']
        if plan['lift_all']:
            self.exists_after = False
            self.changed = self.exists_before
        elif state == 'present':
            # Nothing to block (every listed block refused as protected) creates no table: no change at all.
            self.exists_after = self.exists_before or bool(self.final)
            self.changed = self.exists_after and (not self.exists_before or bool(self.drift or plan['added'] or plan['removed']))
        else:
            self.exists_after = self.exists_before
            self.changed = bool(plan['removed'])

    def script(self):
        return self.spec.reset if not self.exists_after else self.spec.script(self.final)

    def check_readback(self, module, nft):
        exists_now, now, drift_now, self.counters = nft.read(self.spec)
        if exists_now != self.exists_after or (exists_now and (
                [public_block(b) for b in now] != [public_block(b) for b in self.final] or drift_now)):
            module.fail_json(msg='nft applied the change, but table %s reads back differently than written' % self.spec.ref,
                             expected=describe_table(self.exists_after, self.final, spec=self.spec),
                             found=describe_table(exists_now, now, drift_now, spec=self.spec))

    def text_after(self):
        return describe_table(self.exists_after, self.final, spec=self.spec)

    def text_before(self):
        return describe_table(self.exists_before, self.current, self.drift, spec=self.spec)

    def result(self):
        return dict(
            blocks=[public_block(block) for block in self.final] if self.exists_after else [],
            added=[public_block(block) for block in self.plan['added']],
            removed=[public_block(block) for block in self.plan['removed']],
            protected=self.refused,
            table=self.text_after(),
            drift=self.drift,
            counters=[dict(public_block(block), packets=self.counters.get(block_key(block))) for block in self.final]
            if self.exists_after else [],
        )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            blocks=dict(type='list', elements='dict', default=[], options=BLOCK_OPTIONS),
            published=dict(type='list', elements='dict', default=[], options=BLOCK_OPTIONS),
            state=dict(type='str', default='present', choices=list(STATES) + ['read']),
            exclusive=dict(type='bool', default=False),
            persist_path=dict(type='path'),
            namespace=dict(type='dict', options=dict(
                inode=dict(type='int', required=True),
                pid=dict(type='int', required=True),
            )),
            protected_ports=dict(type='list', elements='dict', default=[], options=dict(
                protocol=dict(type='str', required=True, choices=list(PROTOCOLS)),
                port=dict(type='int', required=True),
            )),
        ),
        supports_check_mode=True,
    )
    params = module.params
    state = params['state']
    persist_path = params['persist_path']
    try:
        desired = normalise_blocks(params['blocks'])
        desired_published = normalise_blocks(params['published'], field='published')
        protected_ports = normalise_protected_ports(params['protected_ports'])
    except ValueError as exc:
        module.fail_json(msg=to_native(exc))
    if params['namespace']:
        if persist_path:
            module.fail_json(msg='persist_path cannot be used with namespace: the host\'s nftables service would load '
                                 'the blocks of another namespace into the host\'s own ruleset')
        enter(module, params['namespace']['inode'], params['namespace']['pid'])

    nft = Nft(module)
    if state == 'read':  # what is there, and what each drop has counted: no lock, no change (nft reads are atomic)
        tables = [TableRun(INPUT, nft, []), TableRun(PUBLISHED, nft, [])]
        for table in tables:
            table.keep()
        result = tables[0].result()
        result.update(changed=False, published=tables[1].result(), persisted=None)
        module.exit_json(**result)
    if not module.check_mode:
        lock_table(module)  # before reading: what is read is what the write replaces (both tables, one lock)
    tables = [TableRun(INPUT, nft, desired), TableRun(PUBLISHED, nft, desired_published)]
    lift_everything = state == 'absent' and not desired and not desired_published
    ssh_port, ssh_source = find_ssh_connection(os.environ)

    def guard(blocks):
        return filter_protected(blocks, protected_ports, ssh_port, ssh_source or 'SSH_CONNECTION')

    if state == 'present':
        for table in tables:
            table.desired, table.refused = guard(table.desired)
    for table in tables:
        table.decide(state, params['exclusive'], lift_everything, guard)
    inp, pub = tables

    file_changed = False
    file_before = file_after = None
    if persist_path:
        file_before = read_file(module, persist_path)
        if inp.exists_after or pub.exists_after:
            file_after = persist_text(inp.final if inp.exists_after else None,
                                      pub.final if pub.exists_after else None, PUBLISHED)
        file_changed = file_before != file_after
        if file_after is not None and not os.path.isdir(os.path.dirname(persist_path) or '.'):
            module.fail_json(msg='persist_path %s: directory %s does not exist' % (persist_path, os.path.dirname(persist_path)))

    changing = [table for table in tables if table.changed]
    if changing and not module.check_mode:
        # Every table that changes, in one nft -f transaction: all of it applies, or none.
        nft.run(['-f', '-'], data=''.join(table.script() for table in changing),
                what='Applying the %s table%s (nft -f -)' % (', '.join(t.spec.ref for t in changing), 's' if len(changing) > 1 else ''))
        for table in changing:
            table.check_readback(module, nft)
    if file_changed and not module.check_mode:
        if file_after is None:
            try:
                os.unlink(persist_path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                module.fail_json(msg='Could not remove persist_path %s: %s' % (persist_path, to_native(exc)))
        else:
            write_file(module, persist_path, file_after)

    result = inp.result()
    result.update(changed=bool(changing) or file_changed, published=pub.result(),
                  persisted=persist_path if persist_path and file_after is not None else None)
    if module._diff:
        before = inp.text_before()
        after = inp.text_after()
        header = 'nft table %s' % INPUT.ref
        if pub.exists_before or pub.exists_after:
            before += pub.text_before()
            after += pub.text_after()
            header = 'nft tables %s, %s' % (INPUT.ref, PUBLISHED.ref)
        if persist_path:
            before_file = None
            if inp.exists_before or pub.exists_before:
                before_file = persist_text(inp.current if inp.exists_before else None,
                                           pub.current if pub.exists_before else None, PUBLISHED)
            before += file_state(persist_path, file_before, before_file)
            after += file_state(persist_path, file_after, file_after)
        result['diff'] = dict(before=before, after=after, before_header=header, after_header=header)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
