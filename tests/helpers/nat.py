"""NAT rules as Docker, netavark and kube-proxy write them, in real network namespaces, and the gather run there."""

import json
import os
import subprocess
import sys
import time

from tests.helpers.gather import CLI_MODULE
from tests.helpers.netns import HELPERS, LISTENERS, Namespace

PROBE = os.path.join(HELPERS, 'probe.py')


def docker_rules(host_port=856, target='172.17.0.2:80', bridge='docker0'):
    """iptables-nft commands as dockerd writes them for ``-p HOST_PORT:...`` with ``userland-proxy: false``."""
    return [
        ['iptables-nft', '-t', 'nat', '-N', 'DOCKER'],
        ['iptables-nft', '-t', 'nat', '-A', 'PREROUTING', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'DOCKER'],
        ['iptables-nft', '-t', 'nat', '-A', 'OUTPUT', '!', '-d', '127.0.0.0/8', '-m', 'addrtype', '--dst-type', 'LOCAL',
         '-j', 'DOCKER'],
        ['iptables-nft', '-t', 'nat', '-A', 'POSTROUTING', '-s', '172.17.0.0/16', '!', '-o', bridge, '-j', 'MASQUERADE'],
        ['iptables-nft', '-t', 'nat', '-A', 'DOCKER', '-i', bridge, '-j', 'RETURN'],
        ['iptables-nft', '-t', 'nat', '-A', 'DOCKER', '!', '-i', bridge, '-p', 'tcp', '-m', 'tcp', '--dport', str(host_port),
         '-j', 'DNAT', '--to-destination', target],
    ]


def nodeport_range_rules(ports='30000:32767', target='10.244.1.5:8080'):
    """iptables-nft commands publishing a whole NodePort-style port range to one target (a kube-proxy-like rule)."""
    return [
        ['iptables-nft', '-t', 'nat', '-N', 'KUBE-NODEPORTS'],
        ['iptables-nft', '-t', 'nat', '-A', 'PREROUTING', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'KUBE-NODEPORTS'],
        ['iptables-nft', '-t', 'nat', '-A', 'KUBE-NODEPORTS', '-p', 'tcp', '-m', 'tcp', '--dport', ports, '-j', 'DNAT',
         '--to-destination', target],
    ]


# netavark's nftables driver (table inet netavark) for ``podman run -p 8080:80`` on the default network, dual stack.
NETAVARK_RULESET = '''
table inet netavark {
  chain PREROUTING {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local jump NETAVARK-HOSTPORT-DNAT
  }
  chain OUTPUT {
    type nat hook output priority -100; policy accept;
    fib daddr type local jump NETAVARK-HOSTPORT-DNAT
  }
  chain NETAVARK-HOSTPORT-DNAT {
    tcp dport %(port)d jump nv_2f259bab_172_18_0_0_nm24_dnat
    tcp dport %(port)d jump nv_2f259bab_fd5e-822b-4924-c112--_nm64_dnat
  }
  chain NETAVARK-HOSTPORT-SETMARK {
    meta mark set meta mark | 0x00002000
  }
  chain nv_2f259bab_172_18_0_0_nm24_dnat {
    ip saddr 172.18.0.0/24 tcp dport %(port)d jump NETAVARK-HOSTPORT-SETMARK
    ip saddr 127.0.0.1 tcp dport %(port)d jump NETAVARK-HOSTPORT-SETMARK
    tcp dport %(port)d dnat ip to 172.18.0.2:80
  }
  chain nv_2f259bab_fd5e-822b-4924-c112--_nm64_dnat {
    ip6 saddr fd5e:822b:4924:c112::/64 tcp dport %(port)d jump NETAVARK-HOSTPORT-SETMARK
    tcp dport %(port)d dnat ip6 to [fd5e:822b:4924:c112::2]:80
  }
}
'''


def apply(namespace, commands):
    for argv in commands:
        namespace.run(argv, check=True)


def nft(namespace, text):
    proc = subprocess.run(namespace.command(['nft', '-f', '-']), input=text, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise AssertionError('nft -f failed: %s' % proc.stderr)


def ruleset(namespace):
    """What nft and both iptables back ends show: identical before and after a read-only step."""
    return (namespace.run(['nft', 'list', 'ruleset']).stdout, namespace.run(['iptables-legacy-save', '-t', 'nat']).stdout
            if 'nat' in namespace.run(['cat', '/proc/net/ip_tables_names']).stdout else '',
            namespace.run(['cat', '/proc/net/ip_tables_names']).stdout)


def gather(namespace, *args, prefix=()):
    """``(exit code, JSON)`` of ``portwarden gather --format json ARGS`` run in ``namespace``."""
    proc = namespace.run(list(prefix) + [sys.executable, '-m', CLI_MODULE, 'gather', '--format', 'json'] + list(args))
    if proc.returncode not in (0, 1):
        raise AssertionError('gather failed (%d): %s' % (proc.returncode, proc.stderr))
    return proc.returncode, json.loads(proc.stdout)


READ_NAT = '''
import json, sys
from ansible_collections.portwarden.compliance.plugins.module_utils import gather_nat
kwargs = json.loads(sys.argv[1])
exposures, summary, errors, notes = gather_nat.read_nat(**kwargs)
print(json.dumps({"exposures": exposures, "summary": summary, "errors": errors, "notes": notes}))
'''


def read_nat(namespace, timeout_seconds=60, **kwargs):
    """gather_nat.read_nat(**kwargs) run in ``namespace``: its answer as a dict, and how long it took."""
    started = time.monotonic()
    proc = namespace.run([sys.executable, '-c', READ_NAT, json.dumps(kwargs)], timeout=timeout_seconds)
    if proc.returncode:
        raise AssertionError('read_nat failed: %s' % proc.stderr)
    answer = json.loads(proc.stdout)
    answer['seconds'] = time.monotonic() - started
    return answer


def by_port(exposures, port):
    return [item for item in exposures if item['port'] <= port <= item['port_end']]


class Container(object):
    """A "container": a namespace on a veth whose host end is on a bridge in ``host``, with an address."""

    def __init__(self, host, bridge='docker0', bridge_address='172.17.0.1/16', address='172.17.0.2/16'):
        self.host = host
        self.bridge = bridge
        self.bridge_address = bridge_address
        self.address = address
        self.namespace = Namespace()

    def __enter__(self):
        self.namespace.__enter__()
        host = self.host
        host.run(['ip', 'link', 'add', self.bridge, 'type', 'bridge'], check=True)
        host.run(['ip', 'addr', 'add', self.bridge_address, 'dev', self.bridge], check=True)
        host.run(['ip', 'link', 'set', self.bridge, 'up'], check=True)
        host.run(['ip', 'link', 'add', 'veth-pw', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', self.namespace.name],
                 check=True)
        host.run(['ip', 'link', 'set', 'veth-pw', 'master', self.bridge, 'up'], check=True)
        self.namespace.run(['ip', 'addr', 'add', self.address, 'dev', 'eth0'], check=True)
        self.namespace.run(['ip', 'link', 'set', 'eth0', 'up'], check=True)
        self.namespace.run(['ip', 'route', 'add', 'default', 'via', self.bridge_address.split('/')[0]], check=True)
        return self

    def __exit__(self, *exc):
        self.namespace.__exit__(*exc)


# The gather with namespaces=all sees every process of its PID namespace: run it in a fresh one, where the listener
# it starts in the container is the only other process (``unshare --pid --fork --mount-proc``).
GATHER_ALL = '''
import json, subprocess, sys
listeners, container, spec, cli = sys.argv[1:5]
holder = subprocess.Popen(['ip', 'netns', 'exec', container, sys.executable, listeners, spec],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
ready = json.loads(holder.stdout.readline())
proc = subprocess.run([sys.executable, '-m', cli, 'gather', '--format', 'json', '--namespaces', 'all'] + sys.argv[5:],
                      capture_output=True, text=True)
holder.stdin.close()
holder.wait()
print(json.dumps({'rc': proc.returncode, 'result': json.loads(proc.stdout) if proc.stdout else None,
                  'stderr': proc.stderr, 'listener_pids': ready['pids']}))
'''


def gather_all_with_listener(host, container, spec, *args):
    """namespaces=all gather in ``host`` while a listener (listeners.py ``spec``) runs in ``container``."""
    proc = host.run(['unshare', '--pid', '--fork', '--mount-proc', sys.executable, '-c', GATHER_ALL, LISTENERS,
                     container.namespace.name, json.dumps(spec), CLI_MODULE] + list(args), timeout=120)
    if proc.returncode:
        raise AssertionError('gather (namespaces=all) failed: %s' % proc.stderr)
    return json.loads(proc.stdout)


class Peer(object):
    """A machine beside ``host``: a namespace on a veth to it (host 192.0.2.1, peer 192.0.2.2), the host forwarding,
    so published traffic goes through the host's prerouting as a real peer's would."""

    HOST_ADDRESS = '192.0.2.1'

    def __init__(self, host):
        self.host = host
        self.namespace = Namespace()

    def __enter__(self):
        self.namespace.__enter__()
        self.host.run(['ip', 'link', 'add', 'peer-pw', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', self.namespace.name],
                      check=True)
        self.host.run(['ip', 'addr', 'add', self.HOST_ADDRESS + '/24', 'dev', 'peer-pw'], check=True)
        self.host.run(['ip', 'link', 'set', 'peer-pw', 'up'], check=True)
        self.host.run(['sysctl', '-qw', 'net.ipv4.ip_forward=1'], check=True)
        self.namespace.run(['ip', 'addr', 'add', '192.0.2.2/24', 'dev', 'eth0'], check=True)
        self.namespace.run(['ip', 'link', 'set', 'eth0', 'up'], check=True)
        return self

    def probe(self, protocol, port, address=HOST_ADDRESS):
        """``open``, ``blocked`` or ``refused`` (tests/helpers/probe.py), from the peer."""
        return self.namespace.run([sys.executable, PROBE, protocol, str(port), address], check=True).stdout.strip()

    def __exit__(self, *exc):
        self.namespace.__exit__(*exc)


def probe_from_here(protocol, port, address):
    """``open``, ``blocked`` or ``refused`` (tests/helpers/probe.py) from the namespace the test runs in."""
    return subprocess.run([sys.executable, PROBE, protocol, str(port), address], check=True, capture_output=True,
                          text=True, timeout=30).stdout.strip()


class Uplink(object):
    """A veth from the namespace the test runs in (the fleet's controller) to ``host``, so the controller reaches the
    host as a peer on the network does: IPv4 ``198.18.N.x/30`` and IPv6 ``fd9e:N:I::/64`` (no DAD wait), the host
    forwarding both. ``name`` is the controller's end (unique per run: other suites make links beside it)."""

    def __init__(self, host, name, subnet, index):
        self.host = host
        self.name = name
        base = 4 * index
        self.here4, self.host4 = '198.18.%d.%d' % (subnet, base + 1), '198.18.%d.%d' % (subnet, base + 2)
        self.here6, self.host6 = 'fd9e:%x:%x::1' % (subnet, index), 'fd9e:%x:%x::2' % (subnet, index)

    @staticmethod
    def free_subnet():
        """A 198.18.N.0/24 (RFC 2544 benchmarking space) no address here is in yet."""
        used = subprocess.run(['ip', '-o', 'addr', 'show'], capture_output=True, text=True, check=True).stdout
        for _attempt in range(100):
            subnet = int.from_bytes(os.urandom(1), 'big')
            if ' 198.18.%d.' % subnet not in used and 'fd9e:%x:' % subnet not in used:
                return subnet
        raise AssertionError('no free 198.18.N.0/24 for the uplinks')

    def __enter__(self):
        def run(argv):
            subprocess.run(argv, check=True, capture_output=True, text=True)

        run(['ip', 'link', 'add', self.name, 'type', 'veth', 'peer', 'name', 'uplink', 'netns', self.host.name])
        run(['ip', 'addr', 'add', self.here4 + '/30', 'dev', self.name])
        run(['ip', '-6', 'addr', 'add', self.here6 + '/64', 'dev', self.name, 'nodad'])
        run(['ip', 'link', 'set', self.name, 'up'])
        self.host.run(['ip', 'addr', 'add', self.host4 + '/30', 'dev', 'uplink'], check=True)
        self.host.run(['ip', '-6', 'addr', 'add', self.host6 + '/64', 'dev', 'uplink', 'nodad'], check=True)
        self.host.run(['ip', 'link', 'set', 'uplink', 'up'], check=True)
        self.host.run(['sysctl', '-qw', 'net.ipv4.ip_forward=1'], check=True)
        self.host.run(['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1'], check=True)
        return self

    def __exit__(self, *exc):
        subprocess.run(['ip', 'link', 'del', self.name], capture_output=True, check=False)
