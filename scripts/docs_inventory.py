# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the Sphinx inventory of Ansible's own docs that the docs site links into, without the network.

The pages antsibull-docs generates reference labels of Ansible's documentation (the common return
values, the configuration settings, action plugins) and our docs name ansible.builtin plugins. Sphinx
resolves such references through intersphinx, which downloads objects.inv from docs.ansible.com; the
build runs offline (CI has no network), so this script writes that inventory here: the labels of the
templates, and one label per ansible.builtin plugin that the installed ansible-core really has
(the list ``ansible-doc --list`` prints), each pointing at its page on docs.ansible.com. A reference to anything else
stays unresolved, and the build (sphinx-build -W) fails on it.

    docs_inventory.py OUTPUT.inv
"""

import sys
import zlib

# Labels of Ansible's documentation that antsibull-docs' templates reference: label, page, title.
CORE_LABELS = [
    ('action_plugins', 'plugins/action.html', 'Action plugins'),
    ('ansible_configuration_settings', 'reference_appendices/config.html', 'Ansible Configuration Settings'),
    ('callback_plugins', 'plugins/callback.html', 'Callback plugins'),
    ('collections_keyword', 'collections_guide/collections_using_playbooks.html', 'Using collections in playbooks'),
    ('common_return_values', 'reference_appendices/common_return_values.html', 'Return Values'),
    ('list_of_callback_plugins', 'collections/index_callback.html', 'Index of all Callback Plugins'),
    ('list_of_collections', 'collections/index.html', 'Collection Index'),
]
# The plugin types of ansible.builtin a collection's docs may name (M(), P(), :ansplugin:).
PLUGIN_TYPES = ['module', 'filter', 'test', 'lookup', 'become', 'cache', 'callback', 'connection', 'inventory', 'shell',
                'strategy', 'vars']


def anchor(label):
    """The HTML id Sphinx gives a label: lower case, runs of other characters as one '-'."""
    out, dash = [], False
    for char in label.lower():
        if char.isalnum():
            out.append(char)
            dash = False
        elif not dash:
            out.append('-')
            dash = True
    return ''.join(out).strip('-')


def builtin_plugins():
    """{plugin type: [FQCN...]} of the installed ansible-core, as ``ansible-doc --list`` lists them (one process)."""
    from ansible.plugins.list import list_plugins
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader([])
    return dict((plugin_type, sorted(list_plugins(plugin_type, ['ansible.builtin']))) for plugin_type in PLUGIN_TYPES)


def entries():
    for label, page, title in CORE_LABELS:
        yield label, '%s#%s' % (page, anchor(label)), title
    for plugin_type, names in builtin_plugins().items():
        for fqcn in names:
            name = fqcn.split('.', 2)[2]
            label = 'ansible_collections.%s_%s' % (fqcn, plugin_type)
            page = 'collections/ansible/builtin/%s_%s.html' % (name, plugin_type)
            yield label, '%s#%s' % (page, anchor(label)), '%s %s' % (fqcn, plugin_type)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__.rstrip().rsplit('\n', 1)[1].strip(), file=sys.stderr)
        return 2
    lines = ['%s std:label -1 %s %s' % item for item in entries()]
    header = ('# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n'
              '# The remainder of this file is compressed using zlib.\n')
    with open(argv[0], 'wb') as handle:
        handle.write(header.encode('utf-8'))
        handle.write(zlib.compress(('\n'.join(lines) + '\n').encode('utf-8')))
    return 0


if __name__ == '__main__':
    sys.exit(main())
