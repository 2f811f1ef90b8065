# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Report step: the fleet report's JSON Schema (draft 2020-12), published as docs/report.schema.json."""

from __future__ import annotations

import json
import re

from ansible_collections.portwarden.compliance.plugins.module_utils.evaluate_policy import FINDING_STATUSES
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import SEVERITIES
from ansible_collections.portwarden.compliance.plugins.module_utils.remediate_plan import REMEDIATION_STATUSES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_build import (
    ACTION_FIELDS,
    EXPOSURE_FIELDS,
    READABLE_SCHEMA_VERSIONS,
    REMEDIATION_FIELDS,
    REPORT_SCHEMA_VERSION,
    STATUSES,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.report_formats import FILE_NAMES
from ansible_collections.portwarden.compliance.plugins.module_utils.report_merge import RUN_ID_PATTERN, SCOPE_KINDS

_STRINGS = {'type': 'array', 'items': {'type': 'string'}}
_FINDING_KEY = {'type': 'object', 'required': ['rule', 'protocol', 'address', 'port'],
                'properties': {'rule': {'type': 'string'}, 'protocol': {'type': 'string'},
                               'address': {'type': 'string'}, 'port': {'type': 'integer'},
                               'where': {'type': 'string', 'description': 'As the finding\'s where.'},
                               'via': {'const': 'nat', 'description': 'A port published by NAT (schema version 2).'}}}

REPORT_SCHEMA = {
    '$schema': 'https://json-schema.org/draft/2020-12/schema',
    '$id': 'https://portwarden.dev/schemas/report/v%d.json' % REPORT_SCHEMA_VERSION,
    'title': 'portwarden fleet report',
    'type': 'object',
    'required': ['schema_version', 'generated_at', 'policy', 'registry', 'summary', 'hosts'],
    'properties': {
        'schema_version': {'enum': list(READABLE_SCHEMA_VERSIONS),
                           'description': 'Written as %d; version 1 (before ports published by NAT) is still read.'
                                          % REPORT_SCHEMA_VERSION},
        'run_id': {'type': 'string', 'pattern': RUN_ID_PATTERN,
                   'description': 'Names the run that wrote this report and the files of its set: 32 hex digits, or '
                                  'awx-JOB_ID-SUFFIX for an AWX job.'},
        'scope': {
            'type': 'object', 'required': ['kind', 'run_id', 'hosts', 'policy_sha256', 'registry_digest'],
            'description': 'What the report covers. A part (a run over part of the inventory, a slice of a job) is '
                           'written under parts/RUN_ID/ and never gated as the fleet: portwarden merge makes the fleet '
                           'report of parts. A report without scope is a fleet report of an older portwarden.',
            'properties': {
                'kind': {'enum': list(SCOPE_KINDS)},
                'run_id': {'type': 'string', 'pattern': RUN_ID_PATTERN},
                'hosts': _STRINGS,
                'policy_sha256': {'type': ['string', 'null']},
                'registry_digest': {'type': ['string', 'null']},
                'awx': {'type': ['object', 'null'], 'description': 'AWX job id, workflow job id, template name, '
                                                                   'slice number and count, from its extra vars.'},
                'parts': {'type': 'array', 'description': 'Merged reports: each part merged.',
                          'items': {'type': 'object', 'required': ['run_id', 'file', 'generated_at', 'hosts'],
                                    'properties': {'run_id': {'type': ['string', 'null']}, 'file': {'type': 'string'},
                                                   'generated_at': {'type': 'string'}, 'kind': {'enum': list(SCOPE_KINDS)},
                                                   'hosts': _STRINGS}}},
                'expected': {'type': ['string', 'null'],
                             'description': 'Merged reports: where the expected hosts came from (null: not given).'},
                'skipped': {'type': 'array', 'description': 'Merged reports: bad parts skipped (--skip-bad), whose '
                                                            'hosts are unknown.',
                            'items': {'type': 'object', 'required': ['file', 'reason'],
                                      'properties': {'file': {'type': 'string'}, 'reason': {'type': 'string'},
                                                     'hosts': {'type': ['array', 'null'], 'items': {'type': 'string'}}}}},
                'warnings': _STRINGS,
                'policies': {'type': 'array', 'description': 'Merged with --allow-mixed-policies: each policy, '
                                                             'and the hosts it judged.',
                             'items': {'type': 'object', 'required': ['policy_sha256', 'registry_digest', 'hosts'],
                                       'properties': {'name': {'type': ['string', 'null']},
                                                      'policy_sha256': {'type': ['string', 'null']},
                                                      'registry_digest': {'type': ['string', 'null']},
                                                      'files': _STRINGS, 'hosts': _STRINGS}}},
            },
        },
        'files': {
            'type': 'object', 'additionalProperties': False,
            'description': 'The other files of this report\'s set, written by the same run: their size and sha256. A '
                           'file beside the JSON that differs is of another run (the set is mixed).',
            'properties': dict((name, {'type': 'object', 'required': ['bytes', 'sha256'], 'additionalProperties': False,
                                       'properties': {'bytes': {'type': 'integer', 'minimum': 0},
                                                      'sha256': {'type': 'string', 'pattern': '^[0-9a-f]{64}$'}}})
                               for key, name in sorted(FILE_NAMES.items()) if key != 'json'),
        },
        'generated_at': {'type': 'string', 'format': 'date-time'},
        'tool': {'type': 'object'},
        'policy': {
            'type': 'object', 'required': ['name', 'sha256'],
            'properties': {'name': {'type': 'string'}, 'sha256': {'type': 'string', 'pattern': '^[0-9a-f]{64}$'},
                           'rules': {'type': 'array', 'items': {'type': 'object', 'required': ['id']}}},
        },
        'registry': {'type': 'object', 'required': ['date', 'sha256'],
                     'properties': {'date': {'type': 'string', 'format': 'date'}, 'sha256': {'type': 'string'},
                                    'records': {'type': 'integer'}}},
        'summary': {
            'type': 'object',
            'required': ['hosts', 'findings_by_severity'] + list(STATUSES),
            'properties': dict([(status, {'type': 'integer', 'minimum': 0}) for status in STATUSES] + [
                ('hosts', {'type': 'integer', 'minimum': 0}),
                ('findings_by_severity', {'type': 'object', 'required': list(SEVERITIES),
                                          'additionalProperties': False,
                                          'properties': dict((s, {'type': 'integer', 'minimum': 0})
                                                             for s in SEVERITIES)}),
                ('waived_findings', {'type': 'integer', 'minimum': 0}),
                ('unknown_findings', {'type': 'integer', 'minimum': 0}),
                ('remediated_findings', {'type': 'integer', 'minimum': 0}),
                ('remediation_actions', {'type': 'integer', 'minimum': 0}),
            ]),
        },
        'hosts': {'type': 'array', 'items': {'$ref': '#/$defs/host'}},
        'previous': {'type': ['object', 'null']},
    },
    '$defs': {
        'process': {
            'type': 'object', 'additionalProperties': False,
            'properties': {'pid': {'type': ['integer', 'null']}, 'name': {'type': ['string', 'null']},
                           'user': {'type': ['string', 'null']}, 'uid': {'type': ['integer', 'null']},
                           'exe': {'type': ['string', 'null']}, 'unit': {'type': ['string', 'null']},
                           'start_time': {'type': ['integer', 'null']}},
        },
        'finding': {
            'type': 'object',
            'required': ['rule', 'severity', 'status', 'protocol', 'address', 'port', 'processes', 'waived', 'message'],
            'properties': {
                'rule': {'type': 'string'}, 'severity': {'enum': list(SEVERITIES)},
                'status': {'enum': list(FINDING_STATUSES)}, 'protocol': {'type': 'string'},
                'family': {'type': 'string'}, 'address': {'type': 'string'},
                'port': {'type': 'integer', 'minimum': 0, 'maximum': 65535},
                'v6only': {'type': ['boolean', 'null'],
                           'description': 'IPv6 sockets: true when IPv6 only, false when dual-stack (reachable over IPv4 too); '
                                          'null for IPv4 or when the gather could not tell.'},
                'where': {'type': 'string', 'description': 'The socket\'s network namespace: "host", "KIND:NAME" for a '
                                                           'container (docker:web), "netns:INODE" for any other.'},
                'namespace': {'oneOf': [
                    {'type': 'null'},
                    {'type': 'object', 'required': ['inode', 'host'],
                     'properties': {'inode': {'type': 'integer'}, 'host': {'type': 'boolean'},
                                    'pid': {'type': ['integer', 'null']},
                                    'container': {'type': ['object', 'null'],
                                                  'properties': {'kind': {'type': 'string'},
                                                                 'id': {'type': ['string', 'null']},
                                                                 'pod_uid': {'type': ['string', 'null']},
                                                                 'name': {'type': ['string', 'null']}}}}},
                ], 'description': 'The namespace as gathered with namespaces: all; null otherwise.'},
                'service': {'type': ['string', 'null']},
                'processes': {'type': 'array', 'items': {'$ref': '#/$defs/process'}},
                'waived': {'type': 'boolean'}, 'waiver': {'type': ['object', 'null']},
                'waiver_expired': {'type': 'object'}, 'message': {'type': 'string'},
                'via': {'enum': ['listen', 'nat'],
                        'description': '"nat": a port a DNAT or REDIRECT rule publishes (no "via": a listening socket).'},
                'port_end': {'type': 'integer', 'minimum': 0, 'maximum': 65535,
                             'description': 'The last port of the published range; port is the first the rule is about.'},
                'exposure': {
                    'type': 'object', 'required': list(EXPOSURE_FIELDS), 'additionalProperties': False,
                    'description': 'How the port is published and who answers behind it.',
                    'properties': {
                        'action': {'enum': ['dnat', 'redirect']},
                        'hooks': {'type': 'array', 'items': {'enum': ['prerouting', 'output']}, 'minItems': 1},
                        'interface': {'type': ['string', 'null']},
                        'target': {'type': 'object', 'properties': {'address': {'type': ['string', 'null']},
                                                                    'port': {'type': ['integer', 'null']},
                                                                    'port_end': {'type': ['integer', 'null']}}},
                        'source': {'type': 'string'}, 'table': {'type': 'string'}, 'chain': {'type': 'string'},
                        'rule': {'type': 'string'},
                        'owner': {'type': 'object', 'required': ['kind'],
                                  'properties': {'kind': {'enum': ['namespace', 'local', 'unknown']},
                                                 'where': {'type': ['string', 'null']},
                                                 'reason': {'type': ['string', 'null']}}},
                    },
                },
                'remediation': {
                    'type': 'object', 'required': list(REMEDIATION_FIELDS), 'additionalProperties': False,
                    'properties': {'strategy': {'enum': ['firewall', 'service', 'kill']},
                                   'status': {'enum': list(REMEDIATION_STATUSES)},
                                   'target': {'type': ['string', 'null']}, 'reason': {'type': ['string', 'null']}},
                },
            },
        },
        'action': {
            'type': 'object', 'required': list(ACTION_FIELDS), 'additionalProperties': False,
            'description': 'One change remediate mode made, would make (check mode) or was refused.',
            'properties': {'strategy': {'enum': ['firewall', 'service', 'kill']}, 'target': {'type': 'string'},
                           'rules': {'type': 'array', 'items': {'type': 'string'}},
                           'outcome': {'type': 'string'}, 'detail': {'type': ['string', 'null']}},
        },
        'host': {
            'type': 'object',
            'required': ['host', 'status', 'reasons', 'errors', 'findings', 'coverage'],
            'properties': {
                'host': {'type': 'string'}, 'status': {'enum': list(STATUSES)},
                'reasons': _STRINGS, 'errors': _STRINGS, 'warnings': _STRINGS, 'notes': _STRINGS,
                'findings': {'type': 'array', 'items': {'$ref': '#/$defs/finding'}},
                'coverage': {'type': ['object', 'null']},
                'evaluated_on': {'type': ['string', 'null']},
                'policy': {
                    'type': 'object', 'required': ['sha256', 'base_sha256', 'overlays'],
                    'description': 'Only for a host judged with overlays from its inventory variables: the sha256 of '
                                   'its effective policy, the policy\'s own (the report\'s policy.sha256) and each '
                                   'overlay applied, in order.',
                    'properties': {
                        'sha256': {'type': 'string', 'pattern': '^[0-9a-f]{64}$'},
                        'base_sha256': {'type': 'string', 'pattern': '^[0-9a-f]{64}$'},
                        'overlays': {'type': 'array', 'minItems': 1, 'items': {
                            'type': 'object', 'required': ['variable', 'sha256', 'rules', 'waivers'],
                            'additionalProperties': False,
                            'properties': {'variable': {'type': 'string'},
                                           'sha256': {'type': 'string', 'pattern': '^[0-9a-f]{64}$'},
                                           'rules': _STRINGS, 'waivers': {'type': 'integer', 'minimum': 0}}}},
                    },
                },
                'part': {'oneOf': [
                    {'type': 'null'},
                    {'type': 'object', 'required': ['run_id', 'generated_at', 'covered_by'],
                     'properties': {'run_id': {'type': ['string', 'null']}, 'generated_at': {'type': 'string'},
                                    'covered_by': _STRINGS}},
                ], 'description': 'Merged reports: the run id of the part whose audit of this host won (the newest; '
                                  'scope.parts names its file), when it was audited, and every part that covered the '
                                  'host; null when no part did.'},
                'remediation': {'oneOf': [
                    {'type': 'null'},
                    {'type': 'object', 'required': ['actions', 'skipped', 'verified'], 'additionalProperties': False,
                     'properties': {'actions': {'type': 'array', 'items': {'$ref': '#/$defs/action'}},
                                    'skipped': {'type': ['string', 'null']}, 'verified': {'type': 'boolean'}}},
                ]},
                'changes': {'oneOf': [
                    {'type': 'null'},
                    {'type': 'object', 'required': ['new', 'resolved'],
                     'properties': {'new': {'type': 'array', 'items': _FINDING_KEY},
                                    'resolved': {'type': 'array', 'items': _FINDING_KEY},
                                    'first_seen': {'type': 'boolean'}}},
                ]},
            },
        },
    },
}


def schema_text():
    """The schema as published in docs/report.schema.json."""
    return json.dumps(REPORT_SCHEMA, indent=2, sort_keys=True) + '\n'


# ------------------------------------------------------------------------------ a fast check, same schema
#
# jsonschema validates a report of 100,000 hosts in tens of seconds. compile_check turns REPORT_SCHEMA (the
# keywords it uses, and only those: any other keyword refuses to compile) into plain functions that say whether a
# report is valid in a fraction of that. The caller still asks jsonschema for the message of an invalid report, so
# the check only ever decides "valid", and a test holds it to jsonschema's verdict on mutated reports.

_IGNORED = frozenset(('$schema', '$id', 'title', 'description', 'format', '$defs'))


def _is_integer(value):
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_TYPES = {
    'object': lambda value: isinstance(value, dict),
    'array': lambda value: isinstance(value, list),
    'string': lambda value: isinstance(value, str),
    'integer': _is_integer,
    'number': _is_number,
    'boolean': lambda value: isinstance(value, bool),
    'null': lambda value: value is None,
}


def _same(left, right):
    """JSON equality as jsonschema's enum and const see it: true is not 1, 1 is 1.0."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, str) or isinstance(right, str):
        return isinstance(left, str) and isinstance(right, str) and left == right
    if _is_number(left) and _is_number(right):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return set(left) == set(right) and all(_same(left[key], right[key]) for key in left)
    return left is None and right is None


class SchemaNotCompiled(ValueError):
    """The schema uses a keyword compile_check does not know: validate with jsonschema instead."""


_KNOWN = frozenset(('$ref', 'type', 'enum', 'const', 'minimum', 'maximum', 'pattern', 'required', 'properties',
                    'additionalProperties', 'items', 'oneOf', 'minItems'))
_TYPE_TESTS = {
    'object': 'isinstance({v}, dict)', 'array': 'isinstance({v}, list)', 'string': 'isinstance({v}, str)',
    'boolean': 'isinstance({v}, bool)', 'null': '{v} is None', 'integer': '_is_integer({v})',
    'number': '_is_number({v})',
}


class _Compiler(object):
    """Writes a schema as Python functions (one per $defs entry and oneOf branch) that return whether a value is
    valid, then compiles them: straight-line code, several times faster than walking the schema per value."""

    def __init__(self, root):
        self.root = root
        self.functions = []
        self.constants = {}
        self.refs = {}
        self.count = 0

    def constant(self, value):
        name = '_c%d' % len(self.constants)
        self.constants[name] = value
        return name

    def function(self, schema, name=None):
        name = name or '_f%d' % len(self.functions)
        self.functions.append(None)
        index = len(self.functions) - 1
        body = self.checks(schema, 'v', '    ')
        self.functions[index] = '\n'.join(['def %s(v):' % name] + body + ['    return True'])
        return name

    def ref(self, ref):
        if not ref.startswith('#/$defs/'):
            raise SchemaNotCompiled('$ref %s' % ref)
        key = ref[len('#/$defs/'):]
        if key not in self.refs:
            self.refs[key] = '_ref_%s' % re.sub(r'[^0-9A-Za-z_]', '_', key)
            self.function(self.root['$defs'][key], self.refs[key])
        return self.refs[key]

    def var(self):
        self.count += 1
        return '_v%d' % self.count

    def checks(self, schema, v, pad):
        unknown = set(schema) - _IGNORED - _KNOWN
        if unknown:
            raise SchemaNotCompiled('keywords %s' % ', '.join(sorted(unknown)))
        lines = []
        if '$ref' in schema:
            lines.append('%sif not %s(%s): return False' % (pad, self.ref(schema['$ref']), v))
        if 'type' in schema:
            kinds = schema['type'] if isinstance(schema['type'], list) else [schema['type']]
            lines.append('%sif not (%s): return False' % (pad, ' or '.join(_TYPE_TESTS[kind].format(v=v) for kind in kinds)))
        if 'enum' in schema:
            lines.append('%sif not any(_same(%s, item) for item in %s): return False' % (pad, v, self.constant(list(schema['enum']))))
        if 'const' in schema:
            lines.append('%sif not _same(%s, %s): return False' % (pad, v, self.constant(schema['const'])))
        for key, test in (('minimum', '<'), ('maximum', '>')):
            if key in schema:
                lines.append('%sif _is_number(%s) and %s %s %r: return False' % (pad, v, v, test, schema[key]))
        if 'minItems' in schema:
            lines.append('%sif isinstance(%s, list) and len(%s) < %d: return False' % (pad, v, v, schema['minItems']))
        if 'pattern' in schema:
            lines.append('%sif isinstance(%s, str) and %s(%s) is None: return False'
                         % (pad, v, self.constant(re.compile(schema['pattern']).search), v))
        properties = schema.get('properties') or {}
        extra = schema.get('additionalProperties', True)
        if 'required' in schema or properties or extra is not True:
            inner = pad + '    '
            body = []
            for key in schema.get('required') or ():
                body.append('%sif %r not in %s: return False' % (inner, key, v))
            for key, sub in properties.items():
                item = self.var()
                checks = self.checks(sub, item, inner + '    ')
                if checks:
                    body.append('%s%s = %s.get(%r, _MISSING)' % (inner, item, v, key))
                    body.append('%sif %s is not _MISSING:' % (inner, item))
                    body.extend(checks)
            if extra is False:
                body.append('%sif not %s.issuperset(%s): return False' % (inner, self.constant(frozenset(properties)), v))
            elif extra is not True:
                item = self.var()
                checks = self.checks(extra, item, inner + '        ')
                body.append('%sfor _key, %s in %s.items():' % (inner, item, v))
                body.append('%s    if _key not in %s:' % (inner, self.constant(frozenset(properties))))
                body.extend(checks or [inner + '        pass'])
            if body:
                lines.append('%sif isinstance(%s, dict):' % (pad, v))
                lines.extend(body)
        if 'items' in schema:
            item = self.var()
            checks = self.checks(schema['items'], item, pad + '        ')
            if checks:
                lines.append('%sif isinstance(%s, list):' % (pad, v))
                lines.append('%s    for %s in %s:' % (pad, item, v))
                lines.extend(checks)
        if 'oneOf' in schema:
            branches = [self.function(sub) for sub in schema['oneOf']]
            lines.append('%sif (%s) != 1: return False' % (pad, ' + '.join('%s(%s)' % (name, v) for name in branches)))
        return lines

    def build(self):
        entry = self.function(self.root, '_check')
        namespace = dict(self.constants, _same=_same, _is_number=_is_number, _is_integer=_is_integer, _MISSING=object())
        exec(compile('\n\n'.join(self.functions), '<report schema check>', 'exec'), namespace)  # pylint: disable=exec-used
        return namespace[entry]


def compile_check(schema):
    """A function ``value -> bool``: whether ``value`` is valid against ``schema`` (the keywords of draft 2020-12
    that REPORT_SCHEMA uses; SchemaNotCompiled for any other)."""
    return _Compiler(schema).build()


_REPORT_CHECK = []


def report_valid(report):
    """Whether ``report`` is valid against REPORT_SCHEMA, quickly (None when the schema cannot be compiled)."""
    if not _REPORT_CHECK:
        try:
            _REPORT_CHECK.append(compile_check(REPORT_SCHEMA))
        except SchemaNotCompiled:
            _REPORT_CHECK.append(None)
    check = _REPORT_CHECK[0]
    return None if check is None else bool(check(report))
