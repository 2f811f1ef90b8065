#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: listening_sockets_info
short_description: Gather every listening socket of a host with its owning processes
version_added: 0.1.0
description:
  - Lists every listening TCP socket and every bound, unconnected UDP socket of the host, IPv4 and IPv6,
    with every process that holds it (forked workers sharing one socket are all listed).
  - On Linux it asks the kernel through a C(NETLINK_SOCK_DIAG) dump filtered to listening states, then
    walks C(/proc/*/fd) once to find the owning processes. Its cost does not grow with established connections.
  - Fails closed. A gather that could read nothing fails the task; a gather that could read only part of what
    it should (a socket table, or the processes of other users) returns C(coverage.complete=false) with the
    reasons in C(coverage.errors). That includes processes C(/proc) does not even list (C(hidepid=2) for a
    non-root user, a private PID namespace), and a socket with no owner found there is an error naming it.
    A mount at or below a process's C(/proc/PID) (a careless C(mount --bind)) is an error naming it, since
    what is read there can hide or forge the owner of a socket.
  - A process whose main thread has exited while other threads run on (a zombie leader) is read through a
    live thread, so its sockets keep their owner, its executable is told, and a namespace only it is in is read.
    An empty RV(sockets) list with complete coverage means the host really has no listeners.
  - Run it with C(become) enabled (as root) to see the processes of every user. Without it, sockets
    are still listed but processes of other users are missing, and C(coverage) says so.
  - By default sees the network namespace the module runs in (the host's, unless run inside a container).
    With O(namespaces=all) it also reads every other network namespace a process of the host is in
    (containers, Kubernetes pods, C(ip netns)), and says which namespace and container each socket belongs to.
author:
  - portwarden contributors (@portwarden)
extends_documentation_fragment:
  - portwarden.compliance.attributes
  - portwarden.compliance.attributes.INFO_MODULE
options:
  backend:
    description:
      - How sockets are read.
      - V(auto) uses V(netlink) on Linux, falling back to V(procfs) for any table netlink cannot dump,
        and V(psutil) on other systems.
      - V(netlink) reads the kernel's socket diagnostics (Linux). It tells dual-stack IPv6 sockets from V6ONLY ones.
      - V(procfs) parses C(/proc/net/tcp), C(tcp6), C(udp), C(udp6) (Linux). It cannot tell V6ONLY sockets
        from dual-stack ones, so RV(sockets[].v6only) is V(null) for IPv6 sockets.
      - V(psutil) uses the psutil library, which must be installed on the host. It cannot tell
        SO_REUSEPORT sockets on the same address apart (they appear as one), gives no inode or v6only,
        and on Linux names only one of the processes that share a socket.
    type: str
    choices: [auto, netlink, procfs, psutil]
    default: auto
  protocols:
    description:
      - Transport protocols to gather.
    type: list
    elements: str
    choices: [tcp, udp]
    default: [tcp, udp]
  namespaces:
    description:
      - Which network namespaces to read.
      - V(host) reads the network namespace the module runs in, and returns exactly what it always did.
      - V(all) (Linux, V(auto), V(netlink) or V(procfs) backend) finds every distinct network namespace that a
        process of the host is in (C(/proc/*/ns/net) grouped by inode), that is bind-mounted (C(ip netns) mounts
        under C(/run/netns), any nsfs bind mount, from the C(mountinfo) of each mount namespace), that an fd is open
        on, or that a socket held by a process belongs to (C(SIOCGSKNS), up to 20000 sockets; past that, an error
        says so), and reads each one's listening sockets
        (entering it with C(setns) in a short-lived thread; V(procfs) and V(auto) fall back to
        C(/proc/PID/net) where entering is refused), and adds RV(sockets[].namespace) and RV(coverage.namespaces).
        One C(/proc/*/fd) walk still finds the owning processes of every namespace's sockets.
      - V(all) needs root. Without it only the module's own namespace is read and RV(coverage.complete) is
        V(false), since the request could not be honoured. A namespace that cannot be entered or read is an error
        (partial coverage), never silently left out. A namespace whose every process exits during the scan
        is noted in RV(coverage.notes) and RV(coverage.namespaces.vanished), not as an error, since nothing listens there any more.
      - V(all) with the V(psutil) backend (the default off Linux) fails, since psutil cannot enter other namespaces.
    type: str
    choices: [host, all]
    default: host
  nat:
    description:
      - Whether to read the NAT rules too, for the host ports that DNAT and REDIRECT rules publish with no socket on the
        host (Docker without its userland proxy, netavark, kube-proxy NodePorts).
      - V(auto) (Linux) reads C(iptables-nft-save -t nat), C(ip6tables-nft-save -t nat), C(nft -j list table FAMILY NAME)
        for each other nftables table of the ip, ip6 and inet families (C(nft -j list ruleset) when there are more than
        six, or a name nft cannot be given) and, only where the kernel lists a legacy nat table,
        C(iptables-legacy-save -t nat) and C(ip6tables-legacy-save -t nat),
        each run from C(/usr/sbin:/usr/bin:/sbin:/bin) with an empty environment and a 10 second timeout, and returns
        RV(exposures) and RV(coverage.nat). A nat table that exists but cannot be read (its tool missing, failing, timing
        out, refused without root, or giving output that cannot be read) is an error, so the coverage is partial.
      - Which tables exist is known without the tools, from C(/proc/net/ip_tables_names) and C(ip6_tables_names) (legacy)
        and a netlink dump of the nftables tables; a host with no table at all is complete for NAT, and a note says so.
      - V(off) reads no NAT; RV(exposures) is empty and RV(coverage.notes) says that NAT was not read.
    type: str
    choices: [auto, 'off']
    default: auto
requirements:
  - Python 3.8 to 3.13 on the managed host (the tested range).
  - Linux for the V(netlink) and V(procfs) backends (Python standard library only).
  - psutil on the managed host for the V(psutil) backend (the default on non-Linux hosts).
notes:
  - A UDP socket counts as listening when it is bound and not connected; a connected UDP client socket is not listed.
  - RV(sockets[].ephemeral) marks UDP sockets bound inside the host's C(net.ipv4.ip_local_port_range)
    (less C(ip_local_reserved_ports)), which are most likely client sockets, not services.
  - Process command lines are never collected; they can carry secrets.
  - With O(namespaces=all), the namespace the module runs in is RV(sockets[].namespace.host=true). On a real host that
    is the host's own namespace; where the module runs inside a container or a test namespace, it is that one.
  - With O(namespaces=all), a network namespace no process is in is still read when it is mounted, an fd is open on
    it, or a process holds a socket in it. One found only through a mount or an fd that cannot be opened (covered by
    another mount, say) is an error. Run in a private PID namespace (a container), only the namespaces that its
    processes are in, mount or keep open are found, and RV(coverage.notes) says so.
seealso:
  - name: ss(8)
    description: The iproute2 tool that reads the same kernel interface.
    link: https://man7.org/linux/man-pages/man8/ss.8.html
'''

EXAMPLES = r'''
- name: Gather listening sockets
  portwarden.compliance.listening_sockets_info:
  become: true
  register: listening

- name: Show what listens on TCP 856 (nothing should)
  ansible.builtin.debug:
    msg: "{{ listening.sockets | selectattr('protocol', 'eq', 'tcp') | selectattr('port', 'eq', 856) }}"

- name: Stop here when the gather could not see everything
  ansible.builtin.assert:
    that: listening.coverage.complete
    fail_msg: "{{ listening.coverage.errors }}"

- name: Gather the sockets of every container and pod too
  portwarden.compliance.listening_sockets_info:
    namespaces: all
  become: true
  register: everywhere

- name: Show which containers listen on TCP 856
  ansible.builtin.debug:
    msg: "{{ everywhere.sockets | selectattr('port', 'eq', 856) | map(attribute='namespace.container') }}"

- name: Gather TCP only, reading /proc/net (for kernels without sock_diag)
  portwarden.compliance.listening_sockets_info:
    backend: procfs
    protocols: [tcp]
  become: true
'''

RETURN = r'''
exposures:
  description:
    - One entry per host port (or port range) that a DNAT or REDIRECT rule reached from the nat C(prerouting) or C(output)
      hook publishes, per protocol and family, sorted by protocol, port, family and address.
    - Reading is conservative, never narrower than the kernel. A match it cannot read, and a RETURN or ACCEPT before the
      rule, do not narrow it. Rules in chains no hook reaches publish nothing; RV(coverage.nat.unreachable) lists them.
  type: list
  elements: dict
  returned: always
  contains:
    protocol:
      description: V(tcp) or V(udp) (a rule without a protocol match publishes both).
      type: str
      returned: always
    family:
      description: V(ipv4) or V(ipv6).
      type: str
      returned: always
    address:
      description: The destination the rule matches, V(0.0.0.0) or V(::) when any (a network such as V(10.0.0.0/24) when a prefix).
      type: str
      returned: always
    port:
      description: The first published port.
      type: int
      returned: always
    port_end:
      description: The last published port (the same as RV(exposures[].port) for one port).
      type: int
      returned: always
    action:
      description: V(dnat) or V(redirect) (to this host).
      type: str
      returned: always
    hooks:
      description: The nat hooks the rule is reached from; V([output]) alone means only the host's own traffic.
      type: list
      elements: str
      returned: always
    interface:
      description: The in-interface match along the way (V(!docker0) for a negated one), or V(null).
      type: str
      returned: always
    target:
      description: Where the traffic goes, C(address) (V(null) for REDIRECT, V(?) when not one address), C(port) and C(port_end) (V(null) keeps the port).
      type: dict
      returned: always
    source:
      description: V(nft), V(iptables-nft) or V(iptables-legacy).
      type: str
      returned: always
    table:
      description: The table, as C(family name) (V(ip nat), V(inet netavark)).
      type: str
      returned: always
    chain:
      description: The chain of the DNAT or REDIRECT rule.
      type: str
      returned: always
    rule:
      description: The rule's text (controls escaped, at most 300 characters).
      type: str
      returned: always
    conditions:
      description: Other matches along the way, as text (they may narrow what is published; they are not relied on).
      type: list
      elements: str
      returned: always
    owner:
      description:
        - Who answers behind the target. C(kind) V(namespace) (the network namespace holding the target address and a
          listener on its port, with O(namespaces=all)), V(local) (a listener of this host's namespace), or V(unknown)
          with C(reason) (a stale rule, a target on another machine, or namespaces not gathered).
        - C(namespace) as RV(sockets[].namespace), C(processes) as RV(sockets[].processes).
      type: dict
      returned: always
sockets:
  description:
    - One entry per listening socket, sorted by protocol, port, family and address (then namespace, with O(namespaces=all)).
    - Empty only when the host really has no listening socket (see RV(coverage)).
  returned: success
  type: list
  elements: dict
  contains:
    protocol:
      description: Transport protocol.
      type: str
      returned: always
      sample: tcp
    family:
      description: Address family.
      type: str
      returned: always
      sample: ipv4
    address:
      description: Local address the socket is bound to; V(0.0.0.0) or V(::) for every address.
      type: str
      returned: always
      sample: 0.0.0.0
    port:
      description: Local port.
      type: int
      returned: always
      sample: 856
    v6only:
      description:
        - For IPv6 sockets, V(true) when the socket accepts IPv6 only (IPV6_V6ONLY), V(false) when a
          V(::) socket also accepts IPv4 (dual-stack). V(null) for IPv4 sockets, and for IPv6 sockets
          when the backend cannot tell (V(procfs), V(psutil)).
      type: bool
      returned: always
      sample: false
    ephemeral:
      description: V(true) for a UDP socket bound inside the host's ephemeral port range (likely client noise).
      type: bool
      returned: always
      sample: false
    inode:
      description: The socket's inode number; V(null) with the V(psutil) backend.
      type: int
      returned: always
      sample: 41235
    processes:
      description:
        - Every process holding the socket, sorted by pid. Empty when none was found (a kernel socket,
          a process that just exited, or a process the gather was not allowed to inspect).
      type: list
      elements: dict
      returned: always
      contains:
        pid:
          description: Process id.
          type: int
          returned: always
          sample: 812
        name:
          description: Process name (C(/proc/PID/comm), at most 15 characters on Linux).
          type: str
          returned: always
          sample: sshd
        user:
          description: Name of the effective user, V(null) if the uid has no name.
          type: str
          returned: always
          sample: root
        uid:
          description: Effective user id.
          type: int
          returned: always
          sample: 0
        exe:
          description: Path of the executable, V(null) where it cannot be read.
          type: str
          returned: always
          sample: /usr/sbin/sshd
        unit:
          description:
            - The systemd unit the process runs in (from C(/proc/PID/cgroup)), or V(null).
            - A bare name (V(ssh.service)) only for a unit of the system manager in C(system.slice); any other unit is
              given as its cgroup path (V(/user.slice/user-1000.slice/user@1000.service/app.slice/ssh.service) is a
              user's own C(ssh.service), V(/init.scope)), which no system unit name can be taken for.
          type: str
          returned: always
          sample: ssh.service
        start_time:
          description:
            - When the process started, in clock ticks after boot (C(/proc/PID/stat) field 22); V(null) off Linux.
            - With RV(sockets[].processes[].exe) it identifies the process, so a recycled pid is never mistaken for it.
          type: int
          returned: always
          sample: 1234567
    namespace:
      description: The network namespace the socket belongs to.
      type: dict
      returned: when O(namespaces=all)
      contains:
        inode:
          description: Inode of the namespace (as in C(readlink /proc/PID/ns/net), V(net:[inode])).
          type: int
          returned: always
          sample: 4026532312
        host:
          description: V(true) for the namespace the module runs in (the host's on a real host), V(false) for the others.
          type: bool
          returned: always
          sample: false
        pid:
          description:
            - A process in the namespace (the lowest pid still in it; the one it was entered through).
            - V(null) for a namespace no process is in, found through a mount, an fd open on it or a socket in it.
          type: int
          returned: always
          sample: 2231
        container:
          description:
            - The container that process runs in, from its cgroup path, or V(null) (none, or not recognised).
            - Recognised layouts are those of docker, podman, containerd (CRI and nerdctl), CRI-O and the kubelet.
          type: dict
          returned: always
          contains:
            kind:
              description: V(docker), V(podman), V(containerd), V(crio), or V(kubernetes) for any container of a pod.
              type: str
              returned: always
              sample: docker
            id:
              description: Container id from the cgroup path; V(null) for a process of a pod outside its containers.
              type: str
              returned: always
              sample: 4f1c0a7e5b1d4a6c9e0f2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70
            pod_uid:
              description: For V(kubernetes), the pod's uid; V(null) otherwise.
              type: str
              returned: always
              sample: 1b2c3d4e-5f60-4172-8394-a5b6c7d8e9f0
            name:
              description:
                - The container's name where the runtime's own files tell it cheaply, else V(null). No runtime CLI is run.
                - docker from C(/var/lib/docker/containers/ID/config.v2.json), rootful podman from its storage's
                  C(containers.json), Kubernetes as V(namespace/pod) from the kubelet's C(/var/log/pods).
              type: str
              returned: always
              sample: web
coverage:
  description: What the gather could and could not see. Judge RV(sockets) only together with it.
  returned: success
  type: dict
  contains:
    backend:
      description: Backend used (V(auto) resolved per table in RV(coverage.sources)).
      type: str
      returned: always
      sample: auto
    sources:
      description: For each socket table (C(protocol/family)), the backend that read it.
      type: dict
      returned: always
      sample: {"tcp/ipv4": "netlink", "tcp/ipv6": "netlink", "udp/ipv4": "netlink", "udp/ipv6": "netlink"}
    privileged:
      description: Whether the gather ran as root.
      type: bool
      returned: always
      sample: true
    complete:
      description:
        - V(true) when every socket table was read and every process could be inspected (with O(namespaces=all),
          in every network namespace, as root).
        - V(false) means the result is partial; RV(coverage.errors) says why. Never treat a partial gather as clean.
      type: bool
      returned: always
      sample: true
    sockets:
      description: Number of sockets returned.
      type: int
      returned: always
      sample: 12
    unowned_sockets:
      description: Sockets for which no owning process was found, as C(protocol address:port).
      type: list
      elements: str
      returned: always
      sample: ["tcp 0.0.0.0:2049"]
    unowned_case:
      description:
        - Which case the RV(coverage.unowned_sockets) are.
        - V(none) when every socket has an owning process.
        - V(kernel) when every process of the machine was looked in (as root, in the host's PID namespace, with
          nothing hidden from C(/proc)), so they are kernel sockets (such as nfsd's), sockets held only in flight in a
          unix socket queue (passed with C(SCM_RIGHTS), not yet received; they still accept connections), or their owners
          exited meanwhile; a note in RV(coverage.notes) names them.
        - V(not_looked_for) when some processes could not be looked in (not root, C(hidepid), a private PID
          namespace, fd links the kernel refused to read); their owners are unknown, not absent, and the coverage
          is partial.
      type: str
      returned: always
      choices: [none, kernel, not_looked_for]
      sample: none
    owner_search:
      description: Whether the owners of sockets were looked for in every process of the machine.
      type: dict
      returned: always
      contains:
        exhaustive:
          description: V(true) when every process was listed by C(/proc) and its fds read.
          type: bool
          returned: always
          sample: true
        gaps:
          description:
            - Why C(/proc) did not list every process (or covers some with mounts), and the processes whose fd links
              the kernel refused to read (ptrace access), by pid; V([]) when none. An unowned socket behind a gap is
              an error naming it; with no unowned socket a gap is a note.
          type: list
          elements: str
          returned: always
          sample: ["/proc is mounted with hidepid=invisible, which hides the processes of other users from this user"]
        pid_namespace:
          description:
            - The PID namespace the walked C(/proc) lists. V(host) (the initial one, every process), V(private) or
              V(unknown); V(null) off Linux.
          type: str
          returned: always
          sample: host
        hidepid:
          description: The C(hidepid) mount option of the walked C(/proc), V(null) when unset.
          type: str
          returned: always
          sample: null
    processes_scanned:
      description: Processes whose file descriptors were read.
      type: int
      returned: always
      sample: 143
    processes_unreadable:
      description: Processes whose file descriptors could not be read.
      type: int
      returned: always
      sample: 0
    ephemeral_port_range:
      description: The host's ephemeral port range V([low, high]), V(null) where unknown.
      type: list
      elements: int
      returned: always
      sample: [32768, 60999]
    errors:
      description: What could not be read. Non-empty exactly when RV(coverage.complete) is V(false).
      type: list
      elements: str
      returned: always
      sample: []
    notes:
      description: Facts about the gather that do not make it partial (fallbacks, IPv6 disabled, unprivileged run).
      type: list
      elements: str
      returned: always
      sample: []
    nat:
      description: What of the NAT was read (see O(nat)).
      type: dict
      returned: always
      contains:
        mode:
          description: The O(nat) asked for (V(off) also off Linux).
          type: str
          returned: always
        sources:
          description: Each source read (V(nft), V(iptables-nft/ipv4), V(iptables-legacy/ipv6)...), mapped to V(read).
          type: dict
          returned: always
          sample: {"iptables-nft/ipv4": "read", "nft": "read"}
        tables:
          description: The nftables tables the kernel lists, as C(family name).
          type: list
          elements: str
          returned: always
        unreachable:
          description: Chains holding a DNAT or REDIRECT that no nat hook reaches (they publish nothing).
          type: list
          elements: str
          returned: always
        exposures:
          description: The number of RV(exposures).
          type: int
          returned: always
    namespaces:
      description: The network namespaces read, and those that could not be.
      type: dict
      returned: when O(namespaces=all)
      contains:
        mode:
          description: The O(namespaces) asked for.
          type: str
          returned: always
          sample: all
        scanned:
          description:
            - Every namespace read, the module's own first; then those a process is in or a mount keeps, by inode; then
              those only an fd keeps (an nsfs handle or a socket), by inode.
          type: list
          elements: dict
          returned: always
          contains:
            inode:
              description: Inode of the namespace.
              type: int
              returned: always
              sample: 4026532312
            host:
              description: V(true) for the namespace the module runs in.
              type: bool
              returned: always
              sample: false
            pid:
              description: The process it was entered through; V(null) when it was entered through a mount or an fd.
              type: int
              returned: always
              sample: 2231
            container:
              description: As RV(sockets[].namespace.container).
              type: dict
              returned: always
            sockets:
              description: Number of listening sockets found in it.
              type: int
              returned: always
              sample: 3
            sources:
              description: For each socket table, the backend that read it there.
              type: dict
              returned: always
              sample: {"tcp/ipv4": "netlink", "tcp/ipv6": "netlink", "udp/ipv4": "netlink", "udp/ipv6": "netlink"}
            ephemeral_port_range:
              description: The namespace's own ephemeral port range, V(null) where unknown.
              type: list
              elements: int
              returned: always
              sample: [32768, 60999]
        unreadable:
          description: Namespaces that could not be entered or read; each is also an error in RV(coverage.errors).
          type: list
          elements: dict
          returned: always
          contains:
            inode:
              description: Inode of the namespace.
              type: int
              returned: always
            pid:
              description: The process it was to be entered through.
              type: int
              returned: always
            reason:
              description: Why it could not be read.
              type: str
              returned: always
              sample: "cannot enter it: setns: Operation not permitted"
        vanished:
          description:
            - Namespaces whose every process exited between being found and being entered; each is also in RV(coverage.notes).
            - Not an error, since no process is left to hold a listening socket there.
          type: list
          elements: dict
          returned: always
          contains:
            inode:
              description: Inode of the namespace.
              type: int
              returned: always
            pid:
              description: The process it was last seen with.
              type: int
              returned: always
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.portwarden.compliance.plugins.module_utils.gather_exit import exit_gathered
from ansible_collections.portwarden.compliance.plugins.module_utils.gather_sockets import (
    BACKENDS,
    NAMESPACE_MODES,
    PROTOCOLS,
    GatherError,
    PsutilMissing,
    gather_listening_sockets,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backend=dict(type='str', default='auto', choices=list(BACKENDS)),
            protocols=dict(type='list', elements='str', default=list(PROTOCOLS), choices=list(PROTOCOLS)),
            namespaces=dict(type='str', default='host', choices=list(NAMESPACE_MODES)),
            nat=dict(type='str', default='auto', choices=['auto', 'off']),
        ),
        supports_check_mode=True,
    )
    try:
        result = gather_listening_sockets(backend=module.params['backend'], protocols=module.params['protocols'],
                                          namespaces=module.params['namespaces'], nat=module.params['nat'])
    except PsutilMissing:
        module.fail_json(msg=missing_required_lib('psutil', reason='for the psutil backend (the default off Linux)'))
    except GatherError as exc:
        module.fail_json(msg='Gathering listening sockets failed: %s' % exc)
    exit_gathered(module, result)


if __name__ == '__main__':
    main()
