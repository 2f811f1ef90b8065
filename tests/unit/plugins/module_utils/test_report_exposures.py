"""Reports show ports published by NAT next to sockets; the schema is versioned forward and old reports still gate."""

import copy
import datetime
import json

from jsonschema import Draft202012Validator

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb
from ansible_collections.portwarden.compliance.plugins.module_utils import report_formats as rf
from ansible_collections.portwarden.compliance.plugins.module_utils import report_schema
from ansible_collections.portwarden.compliance.plugins.plugin_utils import report_load

TODAY = datetime.date(2027, 1, 20)
GENERATED = datetime.datetime(2027, 1, 20, 12, 0, 0, tzinfo=datetime.timezone.utc)
REGISTRY = {'date': '2026-08-17', 'sha256': '4b' * 32, 'records': 14533}
POLICY = {'policy_version': 1, 'name': 'nat', 'rules': [
    {'id': 'iana-unassigned-closed', 'match': {'ports': ['iana:unassigned']}, 'expect': 'closed', 'severity': 'high'}]}
WEB = {'inode': 4026532001, 'host': False, 'pid': 2001,
       'container': {'kind': 'docker', 'id': 'ab' * 32, 'pod_uid': None, 'name': 'web'}}
NGINX = [{'pid': 2001, 'name': 'nginx', 'user': 'root', 'uid': 0, 'exe': '/usr/sbin/nginx', 'unit': None, 'start_time': 5}]
EXPOSURE = {'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': 856, 'port_end': 856, 'action': 'dnat',
            'hooks': ['prerouting', 'output'], 'interface': '!docker0',
            'target': {'address': '172.17.0.2', 'port': 80, 'port_end': 80}, 'source': 'iptables-nft', 'table': 'ip nat',
            'chain': 'DOCKER', 'rule': '-A DOCKER ! -i docker0 -p tcp -m tcp --dport 856 -j DNAT --to-destination 172.17.0.2:80',
            'conditions': [], 'owner': {'kind': 'namespace', 'namespace': WEB, 'processes': NGINX, 'reason': None}}
SOCKET = {'protocol': 'tcp', 'family': 'ipv4', 'address': '0.0.0.0', 'port': 856, 'v6only': None, 'ephemeral': False,
          'inode': 7, 'processes': NGINX}


def audit(exposures=(EXPOSURE,), sockets=(SOCKET,), nat=True):
    gathered = {'sockets': list(sockets), 'coverage': {'complete': True, 'errors': [], 'notes': []}}
    if nat:
        gathered['exposures'] = list(exposures)
        gathered['coverage']['nat'] = {'mode': 'auto', 'sources': {}, 'tables': [], 'unreachable': [],
                                       'exposures': len(exposures)}
    return ev.evaluate_host(gathered, ev.compile_policy(POLICY), 'docker-1', [], TODAY)


def report(result, previous=None):
    policy = {'name': 'nat', 'sha256': ev.policy_digest(POLICY), 'rules': [{'id': 'iana-unassigned-closed'}]}
    return rb.build_report([rb.host_entry('docker-1', result)], policy, REGISTRY, generated_at=GENERATED, previous=previous)


def test_a_report_keeps_the_published_port_and_validates_against_the_schema():
    built = report(audit())
    findings = built['hosts'][0]['findings']
    nat = [finding for finding in findings if finding.get('via') == 'nat']
    assert len(findings) == 2 and len(nat) == 1
    assert nat[0]['exposure']['owner'] == {'kind': 'namespace', 'where': 'docker:web', 'reason': None}
    assert nat[0]['exposure']['target'] == {'address': '172.17.0.2', 'port': 80, 'port_end': 80}
    assert built['schema_version'] == 2
    document = json.loads(rf.render_json(built))
    assert not list(Draft202012Validator(report_schema.REPORT_SCHEMA).iter_errors(document))


def test_every_format_shows_the_published_port_next_to_the_socket():
    built = report(audit())
    for name in ('markdown', 'html', 'junit', 'json'):
        text = rf.RENDERERS[name](built)
        assert 'published by' in text, name
    assert 'tcp 0.0.0.0:856 published by NAT' in rf.render_html(built)


def test_the_published_port_is_a_new_finding_against_a_report_that_had_only_the_socket():
    before = report(audit(exposures=(), nat=False))
    after = report(audit(), previous=before)
    changes = after['hosts'][0]['changes']
    assert changes['new'] == [{'rule': 'iana-unassigned-closed', 'protocol': 'tcp', 'address': '0.0.0.0', 'port': 856,
                               'where': 'host', 'via': 'nat'}]
    assert changes['resolved'] == []


def test_a_host_whose_gather_did_not_read_the_nat_carries_the_note():
    built = report(audit(exposures=(), nat=False))
    assert 'did not read the NAT' in built['hosts'][0]['notes'][0]


def test_a_version_1_report_still_gates(tmp_path):
    old = report(audit(exposures=(), nat=False))
    old['schema_version'] = 1
    for entry in old['hosts']:
        entry.pop('notes', None)
    path = tmp_path / 'fleet-report.json'
    path.write_text(rf.render_json(old))
    loaded = report_load.load_report(str(path))
    assert loaded['schema_version'] == 1
    code, _failing, _lines = rb.gate_report(loaded, fail_on="high")
    assert code == rb.EXIT_DRIFT
    newer = copy.deepcopy(old)
    newer['schema_version'] = 3
    path.write_text(rf.render_json(newer))
    try:
        report_load.load_report(str(path))
    except rb.ReportError as exc:
        assert 'reads versions 1, 2' in str(exc)
    else:
        raise AssertionError('a report of schema version 3 was read')


def test_the_remediation_notes_show_the_prerouting_block_and_the_probes():
    from ansible_collections.portwarden.compliance.plugins.module_utils import remediate_plan as rp
    before = audit(sockets=())
    rp.plan_remediation(before, {}, 'firewall')
    [finding] = before['findings']
    block = rp.published_block_for(finding)
    key = rp.block_key(block)
    rp.apply_outcomes(before, {'blocks': {}, 'services': {}, 'processes': {}, 'published': {key: (rp.APPLIED, 'added')}})
    probes = {key: {'address': '192.0.2.1', 'before': 'open', 'after': 'blocked'}}
    final = rp.verify_remediation(before, audit(sockets=()), [], [], probes, [block])
    built = report(final)
    document = json.loads(rf.render_json(built))
    assert not list(Draft202012Validator(report_schema.REPORT_SCHEMA).iter_errors(document))
    note = built['hosts'][0]['findings'][0]['remediation']
    assert note['status'] == 'verified' and note['target'] == 'tcp 0.0.0.0 port 856 before NAT (prerouting)'
    html = rf.render_html(built)
    assert 'before NAT (prerouting)' in html
    assert 'probe from the controller to 192.0.2.1: open before the block, blocked after it' in html
    assert 'before NAT (prerouting)' in rf.render_junit(built)
    # Not verified: the host is drift, and every format says what the probes saw.
    probes[key] = {'address': '192.0.2.1', 'before': 'blocked', 'after': 'blocked'}
    before = audit(sockets=())
    rp.plan_remediation(before, {}, 'firewall')
    rp.apply_outcomes(before, {'blocks': {}, 'services': {}, 'processes': {}, 'published': {key: (rp.APPLIED, 'added')}})
    built = report(rp.verify_remediation(before, audit(sockets=()), [], [], probes, [block]))
    assert built['hosts'][0]['status'] == 'drift'
    for name in ('html', 'junit'):  # the Markdown summary cuts a host's detail to one short cell
        text = getattr(rf, 'render_' + name)(built)
        assert 'not_verified' in text and 'blocked before the block, blocked after it' in text, name
