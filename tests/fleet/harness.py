"""A fleet of test hosts on one machine, reached by Ansible over real SSH.

Each host is a Linux network namespace named like its inventory hostname (``pwf-host01`` ...), so a
socket opened in one host is seen by that host only. There is no IP network: the ssh client's
ProxyCommand runs ``sshd -i`` (inetd mode) inside the host's namespace and talks to it over a pipe.
Only the network is isolated; the filesystem and the PID space are shared by every host.

Recipe and pitfalls: /work/shared/docs/fleet-testing.md. Typical use::

    with Fleet(3, workdir=tmp) as fleet:
        holder = fleet.listen('pwf-host01', [{'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856}])
        proc = fleet.playbook('site.yml', extra_vars={'out_dir': tmp})
        assert proc.returncode == 0, proc.stdout + proc.stderr

Teardown order (matters, or a namespace stays alive but hidden): ``ssh -O exit`` on every
ControlMaster socket, then kill every pid in each namespace (TERM, then KILL), then ``ip netns del``.
It also runs once before set-up, for the names this fleet uses, to clean up after a crashed run.
"""

import atexit
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import yaml

from tests.helpers import netns
from tests.helpers.netns import kill_namespace as destroy_namespace
from tests.helpers.netns import namespace_pids as _netns_pids

SSHD = '/usr/sbin/sshd'
_RECAP = re.compile(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)


def play_recap(output):
    """The PLAY RECAP of ansible-playbook output: host -> {'changed', 'unreachable', 'failed'} counts."""
    return dict((host, {'changed': int(changed), 'unreachable': int(unreachable), 'failed': int(failed)})
                for host, _ok, changed, unreachable, failed in _RECAP.findall(output))


# Above ~10 forks does not help on the 2-core machines these tests run on.
DEFAULT_FORKS = 10


def unsupported_reason():
    """Why fleets cannot run here (not root, ``ip netns`` unusable), or None when they can."""
    if os.geteuid() != 0:
        return 'fleet tests need root (network namespaces and sshd)'
    if shutil.which('ip') is None:
        return 'fleet tests need iproute2 (ip netns)'
    probe = 'pwf-probe-%d' % os.getpid()
    added = subprocess.run(['ip', 'netns', 'add', probe], capture_output=True, text=True, check=False)
    if added.returncode != 0:
        return 'ip netns is unusable here: %s' % (added.stderr.strip() or 'exit %d' % added.returncode)
    subprocess.run(['ip', 'netns', 'del', probe], capture_output=True, check=False)
    return None


def _exit_control_master(socket_path):
    """Ask the ssh ControlMaster behind ``socket_path`` to exit; a stale socket is just removed."""
    subprocess.run(['ssh', '-F', '/dev/null', '-o', 'ControlPath=' + socket_path, '-O', 'exit', 'fleet-host'],
                   capture_output=True, timeout=15, check=False)
    try:  # the master removes its own socket as it exits
        os.remove(socket_path)
    except FileNotFoundError:
        pass


class Fleet(object):
    """``n`` hosts (network namespaces) with sshd, keys, ansible.cfg and an inventory under ``workdir``.

    ``groups`` adds inventory groups: ``{'web': ['pwf-host01']}`` or
    ``{'web': {'hosts': [...], 'vars': {...}}}``; ``hostvars`` maps a hostname to its variables.
    Every host is in group ``fleet``, which carries the connection variables.
    """

    def __init__(self, n, prefix='pwf', workdir=None, groups=None, hostvars=None, forks=DEFAULT_FORKS,
                 python=None):
        if n < 1:
            raise ValueError('a fleet needs at least one host')
        width = max(2, len(str(n)))
        # PORTWARDEN_FLEET_TAG keeps two checkouts' fleets apart when their tests run at once.
        prefix += os.environ.get('PORTWARDEN_FLEET_TAG', '')
        self.prefix = prefix
        self.hosts = ['%s-host%0*d' % (prefix, width, index) for index in range(1, n + 1)]
        self.forks = forks
        # The module's psutil backend needs psutil, which only the test venv has.
        self.python = python or sys.executable
        self._own_workdir = workdir is None
        self.workdir = os.path.abspath(workdir) if workdir else None
        self.groups = {}
        self.hostvars = {}
        self.broken = set()
        self.env = None
        self._namespaces = {}
        self._control_dir = None
        self._active = False
        for name, members in (groups or {}).items():
            if isinstance(members, dict):
                self.add_group(name, members.get('hosts', ()), members.get('vars'), write=False)
            else:
                self.add_group(name, members, write=False)
        for host, variables in (hostvars or {}).items():
            self.set_hostvars(host, variables, write=False)

    # -- paths -------------------------------------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.workdir, *parts)

    @property
    def inventory(self):
        return self.path('inventory.yml')

    @property
    def config(self):
        return self.path('ansible.cfg')

    @property
    def sshd_config(self):
        return self.path('sshd_config')

    @property
    def private_key(self):
        return self.path('keys', 'id_ed25519')

    @property
    def control_dir(self):
        """Where the ssh ControlMaster sockets live (short, under /tmp: socket paths must stay < 108 bytes)."""
        return self._control_dir

    # -- life cycle --------------------------------------------------------------------------

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb):
        problems = self.close()
        if problems and exc_type is None:
            raise RuntimeError('fleet teardown: ' + '; '.join(problems))

    def open(self):
        """Set the fleet up; on any failure, what was set up is torn down again."""
        if self._active:
            raise RuntimeError('fleet is already open')
        self._active = True
        atexit.register(self.close)
        try:
            self._cleanup_previous_run()
            if self._own_workdir:
                self.workdir = tempfile.mkdtemp(prefix='%s-fleet-' % self.prefix)
            os.makedirs(self.workdir, exist_ok=True)
            self._control_dir = tempfile.mkdtemp(prefix='%s-ssh-' % self.prefix, dir='/tmp')
            os.makedirs('/run/sshd', mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
            self._write_keys()
            self._write_sshd_config()
            self._write_ansible_cfg()
            self._write_inventory()
            self.env = self._environment()
            for host in self.hosts:
                self._create_host(host)
        except BaseException:
            self.close()
            raise
        return self

    def close(self):
        """Tear the fleet down (idempotent). Returns the problems met, empty when all went away."""
        if not self._active:
            return []
        self._active = False
        atexit.unregister(self.close)
        problems = []
        self._exit_control_masters(problems)
        for host in self.hosts:
            namespace = self._namespaces.pop(host, None)
            if namespace is not None:
                self._stop_holders(namespace)
            problem = destroy_namespace(host)
            if problem:
                problems.append(problem)
        if self._control_dir:
            shutil.rmtree(self._control_dir, ignore_errors=True)
        if self._own_workdir and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return problems

    def _cleanup_previous_run(self):
        # Every ``<prefix>-hostNN`` namespace belongs to this harness: a crashed run may have left
        # more of them than this fleet has hosts.
        pattern = re.compile(r'^%s-host\d+$' % re.escape(self.prefix))
        listed = subprocess.run(['ip', 'netns', 'list'], capture_output=True, text=True, check=True).stdout
        stale = {line.split()[0] for line in listed.splitlines() if line.strip()}
        for name in sorted({name for name in stale if pattern.match(name)} | set(self.hosts)):
            destroy_namespace(name)

    def _exit_control_masters(self, problems, host=None):
        if not self._control_dir:
            return
        # control_path is ``<dir>/<host>-<user>``: see _write_ansible_cfg.
        for socket_path in glob.glob(os.path.join(self._control_dir, (host + '-*') if host else '*')):
            try:
                _exit_control_master(socket_path)
            except (OSError, subprocess.SubprocessError) as exc:
                problems.append('ssh -O exit %s: %s' % (socket_path, exc))

    @staticmethod
    def _stop_holders(namespace):
        for holder in namespace.holders:
            holder.stop()
        del namespace.holders[:]

    def _create_host(self, host):
        namespace = netns.Namespace(host)
        namespace.__enter__()  # ip netns add, lo up; torn down by close(), not by Namespace.__exit__
        self._namespaces[host] = namespace

    # -- files -------------------------------------------------------------------------------

    def _write_keys(self):
        keys = self.path('keys')
        os.makedirs(keys, mode=0o700, exist_ok=True)
        for key in ('id_ed25519', 'ssh_host_ed25519_key'):
            target = os.path.join(keys, key)
            if not os.path.exists(target):
                subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'pwf-fleet-' + key,
                                '-f', target], check=True, capture_output=True)
        shutil.copyfile(self.private_key + '.pub', os.path.join(keys, 'authorized_keys'))
        with open(os.path.join(keys, 'ssh_host_ed25519_key.pub')) as handle:
            host_key = ' '.join(handle.read().split()[:2])
        # One host key for every host; host key checking stays on against this known_hosts file.
        with open(self.path('known_hosts'), 'w') as handle:
            handle.write('%s-host* %s\n' % (self.prefix, host_key))

    def _write_sshd_config(self):
        lines = [
            'HostKey ' + self.path('keys', 'ssh_host_ed25519_key'),
            'AuthorizedKeysFile ' + self.path('keys', 'authorized_keys'),
            'PidFile none',
            'PermitRootLogin prohibit-password',
            'PasswordAuthentication no',
            'KbdInteractiveAuthentication no',
            'UsePAM no',
            'StrictModes no',  # the keys live under a temporary directory
            'UseDNS no',
            'Subsystem sftp internal-sftp',
            'LogLevel ERROR',
        ]
        with open(self.sshd_config, 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
        checked = subprocess.run([SSHD, '-t', '-f', self.sshd_config], capture_output=True, text=True, check=False)
        if checked.returncode != 0:
            raise RuntimeError('sshd -t rejected %s: %s' % (self.sshd_config, checked.stderr.strip()))

    def _write_ansible_cfg(self):
        ssh_args = ' '.join([
            '-F /dev/null', '-o ControlMaster=auto', '-o ControlPersist=60s', '-o IdentitiesOnly=yes',
            '-o StrictHostKeyChecking=yes', '-o GlobalKnownHostsFile=/dev/null',
            '-o UserKnownHostsFile=' + self.path('known_hosts'),
        ])
        text = '\n'.join([
            '[defaults]',
            'inventory = ' + self.inventory,
            'forks = %d' % self.forks,
            'host_key_checking = True',
            'remote_tmp = ' + self.path('remote-tmp'),
            'retry_files_enabled = False',
            'nocolor = True',
            '',
            '[ssh_connection]',
            'pipelining = True',
            'control_path_dir = ' + self._control_dir,
            # One socket per host, named after it, so break_host() and teardown can find it.
            'control_path = %(directory)s/%%h-%%r',
            'ssh_args = ' + ssh_args,
            '',
        ])
        with open(self.config, 'w') as handle:
            handle.write(text)

    def _write_inventory(self):
        fleet_vars = {
            'ansible_user': 'root',
            'ansible_ssh_private_key_file': self.private_key,
            # %h is the inventory hostname, which is also the namespace name.
            'ansible_ssh_common_args': '-o ProxyCommand="ip netns exec %%h %s -i -f %s"' % (SSHD, self.sshd_config),
            'ansible_python_interpreter': self.python,
        }
        children = {'fleet': {'hosts': {host: dict(self.hostvars.get(host, {})) or None for host in self.hosts},
                              'vars': fleet_vars}}
        for name, group in sorted(self.groups.items()):
            entry = {'hosts': {host: None for host in group['hosts']}}
            if group['vars']:
                entry['vars'] = dict(group['vars'])
            children[name] = entry
        with open(self.inventory, 'w') as handle:
            yaml.safe_dump({'all': {'children': children}}, handle, default_flow_style=False, sort_keys=False)

    def _environment(self):
        env = dict(os.environ)
        # Stray ANSIBLE_* settings of the caller would override ansible.cfg; keep only the
        # collection path that tests/conftest.py set, and pass anything else through ``env=``.
        for key in list(env):
            if key.startswith('ANSIBLE_') and key not in ('ANSIBLE_COLLECTIONS_PATH', 'ANSIBLE_COLLECTIONS_PATHS'):
                del env[key]
        env.update({
            'ANSIBLE_CONFIG': self.config,
            'ANSIBLE_HOME': self.path('ansible-home'),
            'ANSIBLE_NOCOLOR': '1',
            'ANSIBLE_FORCE_COLOR': '0',
            'PYTHONUNBUFFERED': '1',
        })
        return env

    # -- inventory ---------------------------------------------------------------------------

    def _check_hosts(self, hosts):
        unknown = [host for host in hosts if host not in self.hosts]
        if unknown:
            raise ValueError('not hosts of this fleet: %s' % ', '.join(unknown))

    def add_group(self, name, hosts, variables=None, write=True):
        """Add (or replace) inventory group ``name`` with ``hosts`` and group ``variables``."""
        hosts = list(hosts)
        self._check_hosts(hosts)
        self.groups[name] = {'hosts': hosts, 'vars': dict(variables or {})}
        if write and self._active:
            self._write_inventory()

    def set_hostvars(self, host, variables, write=True):
        """Merge ``variables`` into the inventory variables of ``host``."""
        self._check_hosts([host])
        self.hostvars.setdefault(host, {}).update(variables)
        if write and self._active:
            self._write_inventory()

    # -- hosts -------------------------------------------------------------------------------

    def namespace(self, host):
        """The netns.Namespace of ``host`` (for ``run``, ``command``, ``listen``)."""
        self._check_hosts([host])
        if host not in self._namespaces:
            raise RuntimeError('%s is broken or the fleet is not open' % host)
        return self._namespaces[host]

    def listen(self, host, spec, python=None):
        """Open the sockets of ``spec`` (see tests/helpers/listeners.py) in ``host`` and hold them
        until teardown (or ``holder.stop()``), run by ``python`` if given (another interpreter binary).
        Returns the netns.Listeners with its pids and sockets."""
        return self.namespace(host).listen(spec, python=python)

    def run(self, host, argv, **kwargs):
        """Run ``argv`` inside ``host``'s namespace (subprocess.run, text output captured)."""
        return self.namespace(host).run(argv, **kwargs)

    def processes(self, host):
        """``(pid, name)`` of every process now in ``host``'s namespace (``ip netns pids``)."""
        self.namespace(host)
        found = []
        for pid in _netns_pids(host):
            try:
                with open('/proc/%d/comm' % pid) as handle:
                    found.append((pid, handle.read().strip()))
            except OSError:  # exited meanwhile
                pass
        return found

    def break_host(self, host):
        """Make ``host`` unreachable: its namespace is deleted, so the ProxyCommand fails."""
        namespace = self.namespace(host)
        problems = []
        self._exit_control_masters(problems, host=host)  # else Ansible would reuse the live master
        self._stop_holders(namespace)
        problem = destroy_namespace(host)
        del self._namespaces[host]
        self.broken.add(host)
        if problem:
            problems.append(problem)
        if problems:
            raise RuntimeError('break_host(%s): %s' % (host, '; '.join(problems)))

    def revive_host(self, host):
        """Bring a broken host back, empty (no listeners)."""
        self._check_hosts([host])
        if host not in self.broken:
            raise RuntimeError('%s is not broken' % host)
        self._create_host(host)
        self.broken.discard(host)

    # -- running Ansible ---------------------------------------------------------------------

    def ansible_command(self, tool):
        """Path of ``tool`` (ansible-playbook, ansible, ...) from the venv that runs these tests."""
        return os.path.join(os.path.dirname(sys.executable), tool)

    def run_ansible(self, tool, args, env=None, timeout=600):
        """Run an Ansible command line with this fleet's config and inventory; the CompletedProcess.

        On timeout the whole process group (workers, ssh clients) is killed and
        subprocess.TimeoutExpired raised with the output so far.
        """
        if not self._active:
            raise RuntimeError('the fleet is not open')
        argv = [self.ansible_command(tool)] + [str(arg) for arg in args]
        run_env = dict(self.env)
        run_env.update(env or {})
        proc = subprocess.Popen(argv, cwd=self.workdir, env=run_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise subprocess.TimeoutExpired(argv, timeout, output=stdout, stderr=stderr) from None
        return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)

    def playbook(self, path, extra_vars=None, limit=None, check=False, env=None, timeout=600, args=()):
        """Run ``ansible-playbook path`` against the fleet; returns the CompletedProcess (text)."""
        argv = ['-i', self.inventory]
        if extra_vars:
            argv += ['-e', json.dumps(extra_vars)]
        if limit:
            argv += ['--limit', limit if isinstance(limit, str) else ','.join(limit)]
        if check:
            argv.append('--check')
        argv += list(args) + [os.path.abspath(path)]
        return self.run_ansible('ansible-playbook', argv, env=env, timeout=timeout)

    def role_run(self, path, log, report_dir, extra_vars, check=False, limit=None):
        """Run a playbook of the port_compliance role with ``--diff``, which must succeed; keep its output in
        ``log`` and return ``(output, the JSON report it wrote to report_dir)``."""
        extra_vars = dict(extra_vars, port_compliance_report_dir=report_dir)
        proc = self.playbook(path, extra_vars=extra_vars, check=check, limit=limit, args=['--diff'])
        output = proc.stdout + proc.stderr
        with open(log, 'w') as handle:
            handle.write(output)
        assert proc.returncode == 0, output[-6000:]
        with open(os.path.join(report_dir, 'portwarden-report.json')) as handle:
            return output, json.load(handle)
