"""Unit tests: the controller's inventory reader, shared by ``portwarden merge`` and ``portwarden baseline``:
hosts, groups and each host's groups as ansible-core reads them; a missing, unreadable or empty inventory is an
error naming the source, never an empty fleet."""

import pytest

from ansible_collections.portwarden.compliance.plugins.plugin_utils import baseline_run, merge_run
from ansible_collections.portwarden.compliance.plugins.plugin_utils.inventory_read import InventoryError, read_inventory

INVENTORY = """
[web]
web1
web2

[db]
db1

[prod:children]
web
"""


def test_hosts_groups_and_the_groups_of_each_host(tmp_path):
    path = tmp_path / 'hosts.ini'
    path.write_text(INVENTORY)
    hosts, groups, groups_of = read_inventory([str(path)])
    assert sorted(hosts) == ['db1', 'web1', 'web2']
    assert sorted(groups['web']) == ['web1', 'web2'] and groups['db'] == ['db1']
    assert sorted(groups['prod']) == ['web1', 'web2']
    assert groups_of['web1'] == ['prod', 'web'] and groups_of['db1'] == ['db']


def test_a_host_list_is_an_inventory():
    hosts, _groups, groups_of = read_inventory(['alpha,beta,'])
    assert sorted(hosts) == ['alpha', 'beta'] and groups_of['alpha'] == ['ungrouped']


@pytest.mark.parametrize('text, expected', [
    (None, 'no such file or directory'),
    ('[web]\n', 'gives no host'),
    ('[web\nthis is not an inventory = = =\n', 'inventory '),
])
def test_what_cannot_be_a_fleet_is_an_error_naming_the_source(tmp_path, text, expected):
    path = tmp_path / 'inventory.ini'
    if text is not None:
        path.write_text(text)
    with pytest.raises(InventoryError) as caught:
        read_inventory([str(path)])
    assert str(path) in str(caught.value) and expected in str(caught.value)


def test_each_command_says_it_in_its_own_words(tmp_path):
    path = tmp_path / 'empty.ini'
    path.write_text('[web]\n')
    with pytest.raises(merge_run.MergeError) as merge_caught:
        merge_run.inventory_hosts([str(path)])
    assert merge_caught.value.problems == ['inventory %s gives no host: a merge against it would vouch for nothing' % path]
    with pytest.raises(baseline_run.BaselineError) as baseline_caught:
        baseline_run.read_inventory([str(path)])
    assert baseline_caught.value.problems == ['inventory %s gives no host' % path]
