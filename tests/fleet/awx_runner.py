"""Run playbooks against a test fleet the way AWX runs a job: ``ansible-runner run`` on a private data dir.

AWX (awx/main/tasks/jobs.py) gives ansible-runner a private data dir per job: ``inventory/hosts``,
``env/extravars`` (the template's extra vars plus AWX's meta vars), ``project/`` with the playbook. A
sliced job template (``job_slice_count`` > 1) becomes a workflow of N jobs, one per slice, each an
ansible-runner run whose inventory holds only its slice: the inventory's enabled hosts ordered by name,
taken round-robin (awx/main/models/inventory.py ``get_sliced_hosts``: slice k of n is ``hosts[k-1::n]``).

AWX's extra vars for a job (awx/main/models/unified_jobs.py and jobs.py ``awx_meta_vars``) come with both
prefixes ``awx_`` and ``tower_``: job id, launch type, workflow job id and name (a slice is a workflow
node: all slices of one launch share the workflow job), job template id and name, inventory id and
name. AWX sets no extra var with the slice's number or count: those are fields of the job in its API.
"""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import yaml

_EVENT_FILE = re.compile(r'^(\d+)-[0-9a-f-]+\.json$')


def awx_slices(hosts, count):
    """The hosts of each slice, as AWX slices an inventory: sorted by name, round-robin."""
    ordered = sorted(hosts)
    return [ordered[index::count] for index in range(count)]


def slice_inventory(inventory_path, hosts):
    """The fleet's inventory (YAML) pared down to ``hosts``, groups and their vars kept, as AWX gives a slice."""
    with open(inventory_path) as handle:
        data = yaml.safe_load(handle)
    keep = set(hosts)

    def pare(group):
        group = dict(group or {})
        if group.get('hosts'):
            group['hosts'] = dict((name, value) for name, value in group['hosts'].items() if name in keep)
        if group.get('children'):
            group['children'] = dict((name, pare(child)) for name, child in group['children'].items())
        return group

    return {'all': pare(data['all'])}


class RunnerJob(object):
    """One ``ansible-runner run`` (one AWX job) in its own private data dir, started in the background."""

    def __init__(self, fleet, private_data_dir, playbook_text, inventory, extravars, ident='job'):
        self.fleet = fleet
        self.dir = os.path.abspath(private_data_dir)
        self.ident = ident
        self.proc = None
        self.stdout = self.stderr = ''
        for sub in ('inventory', 'env', 'project'):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        with open(os.path.join(self.dir, 'inventory', 'hosts.yml'), 'w') as handle:
            yaml.safe_dump(inventory, handle, default_flow_style=False, sort_keys=False)
        with open(os.path.join(self.dir, 'env', 'extravars'), 'w') as handle:
            yaml.safe_dump(extravars, handle, default_flow_style=False)
        with open(os.path.join(self.dir, 'project', 'audit.yml'), 'w') as handle:
            handle.write(playbook_text)

    @property
    def artifacts(self):
        return os.path.join(self.dir, 'artifacts', self.ident)

    def start(self):
        env = dict(self.fleet.env)
        # ansible-runner runs the ansible-playbook it finds on PATH: the test venv's
        env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
        argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-runner'), 'run', self.dir, '-p', 'audit.yml',
                '--ident', self.ident]
        self.proc = subprocess.Popen(argv, cwd=self.dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        return self

    def wait(self, timeout=600):
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.stdout, self.stderr = self.proc.communicate()
            raise AssertionError('ansible-runner job %s did not end within %ds:\n%s' % (self.ident, timeout, self.stdout[-4000:])) from None
        return self.proc.returncode

    def result(self):
        """(status, rc) as ansible-runner recorded them in artifacts/<ident>/ (what AWX reads): ``rc`` is
        ``'None'`` when ansible-playbook died of a signal, and then the CLI itself exits 0."""
        values = []
        for name in ('status', 'rc'):
            with open(os.path.join(self.artifacts, name)) as handle:
                values.append(handle.read().strip())
        return tuple(values)

    @property
    def output(self):
        return self.stdout + self.stderr

    def events(self):
        """The job events ansible-runner has written so far (artifacts/<ident>/job_events), in order."""
        found = []
        # <counter>-<uuid>.json; other names there are ansible-runner's partial files
        numbered = [(int(match.group(1)), path) for path in glob.glob(os.path.join(self.artifacts, 'job_events', '*.json'))
                    for match in [_EVENT_FILE.match(os.path.basename(path))] if match]
        for _counter, path in sorted(numbered):
            try:
                with open(path) as handle:
                    found.append(json.load(handle))
            except (OSError, ValueError):  # being written
                pass
        return found

    def wait_for_task(self, task, timeout=300):
        """Block until the play has started ``task`` (a playbook_on_task_start event names it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event.get('event') == 'playbook_on_task_start' and event.get('event_data', {}).get('task') == task:
                    return event
            if self.proc.poll() is not None:
                raise AssertionError('job %s ended (%s) before task %r started' % (self.ident, self.proc.returncode, task))
            time.sleep(0.05)
        raise AssertionError('job %s: task %r did not start within %ds' % (self.ident, task, timeout))

    def playbook_pids(self):
        """(main pid, [every pid]) of the ansible-playbook processes of this job: the main one and its workers."""
        pids = {}
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                    argv = handle.read().decode('utf-8', 'replace').split('\0')
                with open('/proc/%s/stat' % entry) as handle:
                    ppid = int(handle.read().rsplit(')', 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if any(arg.endswith('/ansible-playbook') for arg in argv[:2]) and any(arg.startswith(self.dir) for arg in argv):
                pids[int(entry)] = ppid
        main = [pid for pid, ppid in pids.items() if ppid not in pids]
        return (main[0] if len(main) == 1 else None), sorted(pids)
