"""A port published by NAT is never 'remediated' by an input-hook block, nor by ending the process behind it.

Published traffic is rewritten in prerouting and forwarded: a block at ``input`` leaves it reachable. Until
remediation closes published ports before NAT, such a finding is planned as unavailable and stays drift."""

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import evaluate_policy as ev
from ansible_collections.portwarden.compliance.plugins.module_utils import remediate_plan as rp

NGINX = {'pid': 2001, 'name': 'nginx', 'user': 'root', 'uid': 0, 'exe': '/usr/sbin/nginx', 'unit': 'docker.service',
         'start_time': 5}


def published(port=856):
    return {'rule': 'closed', 'severity': 'high', 'status': 'drift', 'protocol': 'tcp', 'family': 'ipv4',
            'address': '0.0.0.0', 'port': port, 'service': None, 'processes': [dict(NGINX)], 'waived': False,
            'waiver': None, 'where': 'host', 'namespace': None, 'via': 'nat', 'port_end': port,
            'message': 'tcp 0.0.0.0:%d published by DNAT to docker:web 172.17.0.2:80 must be closed' % port}


def audit(*findings):
    return ev.summarize_result({'host': 'h1', 'status': None, 'reasons': [], 'findings': list(findings), 'warnings': [],
                                'summary': None, 'coverage': {'complete': True}})


@pytest.mark.parametrize('strategy', ['firewall', 'kill', 'service'])
def test_a_published_port_is_planned_unavailable_with_every_strategy(strategy):
    result = audit(published())
    plan = rp.plan_remediation(result, {}, strategy)
    assert plan['blocks'] == [] and plan['processes'] == [] and plan['services'] == []
    note = result['findings'][0]['remediation']
    assert note['status'] == rp.UNAVAILABLE and 'prerouting' in note['reason']


def test_an_input_block_on_the_same_port_does_not_make_a_published_port_remediated():
    before = audit(published())
    rp.plan_remediation(before, {}, 'firewall')
    live = [{'protocol': 'tcp', 'port': 856, 'family': 'ipv4', 'address': None, 'rule': 'closed'}]
    final = rp.verify_remediation(before, audit(published()), live, actions=[])
    assert final['findings'][0]['status'] == 'drift' and final['status'] == 'drift'
