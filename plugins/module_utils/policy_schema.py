# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Evaluate step: the policy's JSON Schema (draft 2020-12), the one source of truth.

``docs/policy.schema.json`` is generated from POLICY_SCHEMA (``portwarden schema``); a test
keeps them equal. Checks a schema cannot express (duplicate rule ids, waivers naming unknown
rules, ranges that start after they end, dates that do not exist) live in policy_check.
"""

from __future__ import annotations

import json

POLICY_VERSION = 1
SEVERITIES = ('info', 'low', 'medium', 'high', 'critical')
PROTOCOLS = ('tcp', 'udp')
FAMILIES = ('ipv4', 'ipv6')
BIND_CLASSES = ('loopback', 'any', 'specific')
VIA = ('listen', 'nat')  # how a port is reached: a listening socket, or a DNAT/REDIRECT that publishes it
DEFAULT_RULE_ID = 'default'  # the id findings of ``default: deny`` carry; waivers may name it
REMEDIATE_STRATEGIES = ('none', 'firewall', 'service', 'kill')
# Namespace selectors of rules and waivers (``namespaces``): the host's own network namespace, any container
# or one runtime's (with an optional ``:NAME`` pattern), or any other network namespace.
CONTAINER_KINDS = ('docker', 'podman', 'containerd', 'crio', 'kubernetes')
NAMESPACE_SELECTOR_PATTERN = r'^!?(host|other|(container|%s)(:.+)?)$' % '|'.join(CONTAINER_KINDS)
# What an overlay from inventory variables (port_compliance_policy_overlay[_*]) may add to a host's policy.
OVERLAY_PARTS = ('rules', 'waivers')
SET_NAMES = ('system', 'user', 'dynamic', 'iana:unassigned', 'iana:reserved', 'iana:assigned')

_ID_PATTERN = r'^[A-Za-z0-9][A-Za-z0-9._-]*$'


def _strings(description, min_items=1):
    return {'type': 'array', 'items': {'type': 'string', 'minLength': 1}, 'minItems': min_items,
            'description': description}


POLICY_SCHEMA = {
    '$schema': 'https://json-schema.org/draft/2020-12/schema',
    '$id': 'https://portwarden.dev/schemas/policy/v%d.json' % POLICY_VERSION,
    'title': 'portwarden listening-port policy',
    'description': 'What may listen on the hosts of a fleet. Ports IANA has not assigned stay closed; '
                   'rules say what else may, or must not, listen.',
    'type': 'object',
    'required': ['policy_version', 'name'],
    'additionalProperties': False,
    'properties': {
        'policy_version': {'const': POLICY_VERSION, 'description': 'Version of this policy language.'},
        'name': {'type': 'string', 'minLength': 1, 'description': 'Name shown in reports.'},
        'description': {'type': 'string'},
        'default': {'enum': ['allow', 'deny'], 'default': 'allow',
                    'description': 'allow: only sockets a rule forbids are drift. deny (allow-list mode): '
                                   'every socket no rule matches is drift too.'},
        'default_severity': {'$ref': '#/$defs/severity', 'default': 'medium',
                             'description': 'Severity of the findings of default: deny.'},
        'default_remediate': {'$ref': '#/$defs/remediate',
                              'description': 'How remediate mode closes the findings of default: deny.'},
        'waiver_warning_days': {'type': 'integer', 'minimum': 0, 'default': 14,
                                'description': 'A waiver expiring within this many days is reported as a warning.'},
        'rules': {'type': 'array', 'items': {'$ref': '#/$defs/rule'}},
        'waivers': {'type': 'array', 'items': {'$ref': '#/$defs/waiver'}},
        'overlays': {'$ref': '#/$defs/overlay_settings'},
    },
    '$defs': {
        'severity': {'enum': list(SEVERITIES)},
        'protocol': {'enum': list(PROTOCOLS)},
        'family': {'enum': list(FAMILIES)},
        'bind_class': {'enum': list(BIND_CLASSES)},
        'remediate': {
            'description': 'How remediate mode closes this drift: "firewall" blocks the port with nftables and the '
                           'service keeps running; "service" stops and disables the systemd unit that owns the socket; '
                           '"kill" ends the owning process (checked against pid reuse); "none" or false leaves it to '
                           'people; true means "firewall". Unset: the role\'s port_compliance_remediate_default.',
            'anyOf': [{'type': 'boolean'}, {'enum': list(REMEDIATE_STRATEGIES)}],
        },
        'port_item': {
            'description': 'A port (22 or "22"), an inclusive range ("855-859") or a named set.',
            'anyOf': [
                {'type': 'integer', 'minimum': 0, 'maximum': 65535},
                {'type': 'string', 'pattern': r'^\s*[0-9]+\s*(-\s*[0-9]+\s*)?$'},
                {'enum': list(SET_NAMES)},
            ],
        },
        'ports': {
            'anyOf': [
                {'$ref': '#/$defs/port_item'},
                {'type': 'array', 'items': {'$ref': '#/$defs/port_item'}, 'minItems': 1},
            ],
        },
        'host_patterns': _strings('Inventory host name patterns (shell-style), "group:NAME" for inventory groups, '
                                  '"!" before either to exclude.'),
        'namespace_patterns': {
            'type': 'array', 'minItems': 1,
            'items': {'type': 'string', 'pattern': NAMESPACE_SELECTOR_PATTERN},
            'description': 'Network namespaces (gathered with namespaces: all): "host" for the host\'s own; "container" '
                           'for any container, "container:NAME" for those whose name or id matches the shell-style '
                           'pattern; "%s" (optionally with ":NAME") for one runtime\'s containers; "other" for any other '
                           'namespace (ip netns, an unrecognised runtime); "!" before any of them to exclude. '
                           'Unset: every namespace.' % '", "'.join(CONTAINER_KINDS),
        },
        # Who may hold a socket: the same four keys, with the same meaning, in a rule's expect and in a waiver.
        'owner_processes': _strings('Allowed process names or executable paths (shell-style patterns). A process '
                                    'chooses its own name: bind to exe or units where a rogue could take the name.'),
        'owner_users': _strings('Allowed user names or uids (shell-style patterns).'),
        'owner_exe': _strings('Allowed executable paths (shell-style patterns), matched against the path of the '
                              'running binary only, never the name.'),
        'owner_units': _strings('Allowed systemd units (shell-style patterns).'),
        'match': {
            'type': 'object',
            'additionalProperties': False,
            'description': 'Which sockets the rule is about; an empty match is every socket.',
            'properties': {
                'ports': {'$ref': '#/$defs/ports'},
                'protocols': {'type': 'array', 'items': {'$ref': '#/$defs/protocol'}, 'minItems': 1},
                'families': {'type': 'array', 'items': {'$ref': '#/$defs/family'}, 'minItems': 1},
                'bind': {'type': 'array', 'items': {'$ref': '#/$defs/bind_class'}, 'minItems': 1},
                'via': {'type': 'array', 'items': {'enum': list(VIA)}, 'minItems': 1, 'uniqueItems': True,
                        'description': 'How the port is reached: "listen" (a listening socket), "nat" (a port a DNAT or '
                                       'REDIRECT rule publishes, gathered with nat: auto). Unset: both.'},
                'include_ephemeral': {'type': 'boolean', 'default': False,
                                      'description': 'Also match UDP sockets in the ephemeral port range '
                                                     '(ignored otherwise: they are most likely clients).'},
            },
        },
        'expect': {
            'description': '"closed": nothing may listen. Otherwise what a listening socket must satisfy.',
            'oneOf': [
                {'const': 'closed'},
                {
                    'type': 'object',
                    'additionalProperties': False,
                    'minProperties': 1,
                    'properties': {
                        'processes': {'$ref': '#/$defs/owner_processes'},
                        'users': {'$ref': '#/$defs/owner_users'},
                        'exe': {'$ref': '#/$defs/owner_exe'},
                        'units': {'$ref': '#/$defs/owner_units'},
                        'bind': {'anyOf': [{'$ref': '#/$defs/bind_class'},
                                           {'type': 'array', 'items': {'$ref': '#/$defs/bind_class'}, 'minItems': 1}]},
                    },
                },
            ],
        },
        'rule': {
            'type': 'object',
            'required': ['id', 'match', 'expect'],
            'additionalProperties': False,
            'properties': {
                'id': {'type': 'string', 'pattern': _ID_PATTERN},
                'description': {'type': 'string'},
                'match': {'$ref': '#/$defs/match'},
                'expect': {'$ref': '#/$defs/expect'},
                'severity': {'$ref': '#/$defs/severity', 'default': 'medium'},
                'hosts': {'$ref': '#/$defs/host_patterns'},
                'namespaces': {'$ref': '#/$defs/namespace_patterns'},
                'remediate': {'$ref': '#/$defs/remediate'},
            },
        },
        'waiver': {
            'type': 'object',
            'required': ['rule', 'reason', 'expires'],
            'additionalProperties': False,
            'properties': {
                'rule': {'type': 'string', 'pattern': _ID_PATTERN,
                         'description': 'The rule id whose findings are waived ("%s" for default: deny).'
                                        % DEFAULT_RULE_ID},
                'hosts': {'$ref': '#/$defs/host_patterns'},
                'namespaces': {'$ref': '#/$defs/namespace_patterns'},
                'ports': {'$ref': '#/$defs/ports'},
                'protocols': {'type': 'array', 'items': {'$ref': '#/$defs/protocol'}, 'minItems': 1},
                'processes': {'$ref': '#/$defs/owner_processes',
                              'description': 'Bind the waiver to processes (names or executable paths, shell-style): '
                                             'it covers a socket only when every process holding it matches. A socket '
                                             'whose holders are unknown (a gather without root) is never waived. On a '
                                             'port published by NAT, the holders are those of the target socket.'},
                'users': {'$ref': '#/$defs/owner_users',
                          'description': 'Bind the waiver to users (names or uids): every holder must run as one.'},
                'exe': {'$ref': '#/$defs/owner_exe',
                        'description': 'Bind the waiver to executable paths: every holder must run one of them. '
                                       'Unlike a name, a rogue cannot choose its executable path.'},
                'units': {'$ref': '#/$defs/owner_units',
                          'description': 'Bind the waiver to systemd units: every holder must be in one of them.'},
                'reason': {'type': 'string', 'minLength': 1},
                'ticket': {'type': 'string', 'minLength': 1},
                'approved_by': {'type': 'string', 'minLength': 1},
                'expires': {'type': 'string', 'format': 'date',
                            'description': 'Last day the waiver holds (YYYY-MM-DD).'},
            },
        },
        'overlay_settings': {
            'type': 'object',
            'additionalProperties': False,
            'description': 'What overlays may do: a host\'s inventory variables port_compliance_policy_overlay and '
                           'port_compliance_policy_overlay_* add rules and waivers for that host alone. They can '
                           'never change default or any other setting, nor redefine a rule of this policy.',
            'properties': {
                'allow': {'type': 'array', 'items': {'enum': list(OVERLAY_PARTS)}, 'uniqueItems': True,
                          'default': list(OVERLAY_PARTS),
                          'description': 'What overlays may add: rules, waivers, both (the default) or nothing '
                                         '([]: a host with an overlay fails validation).'},
                'may_weaken_baseline': {
                    'type': 'boolean', 'default': False,
                    'description': 'false (the default): an overlay may not allow a port IANA has not assigned, which '
                                   'the bundled baseline keeps closed (a rule other than expect: closed whose match '
                                   'covers one), nor waive a finding there (a waiver whose ports, within the rule it '
                                   'names, cover one). true lets overlays do both.'},
            },
        },
        'overlay': {
            'type': 'object',
            'additionalProperties': False,
            'description': 'One inventory variable port_compliance_policy_overlay[_*]: rules and waivers added to the '
                           'policy of the host that has the variable. Rule ids must differ from the policy\'s and '
                           'from other overlays\' of the host.',
            'properties': {
                'description': {'type': 'string'},
                'rules': {'type': 'array', 'items': {'$ref': '#/$defs/rule'}},
                'waivers': {'type': 'array', 'items': {'$ref': '#/$defs/waiver'}},
            },
        },
    },
}

# An overlay is validated against the policy's own definitions ($defs/overlay).
OVERLAY_SCHEMA = {'$schema': POLICY_SCHEMA['$schema'], '$ref': '#/$defs/overlay', '$defs': POLICY_SCHEMA['$defs']}


def schema_text():
    """The schema as published in docs/policy.schema.json."""
    return json.dumps(POLICY_SCHEMA, indent=2, sort_keys=True) + '\n'
