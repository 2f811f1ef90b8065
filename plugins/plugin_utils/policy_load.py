# -*- coding: utf-8 -*-
# Copyright (c) portwarden contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Evaluate step, controller side: load a policy file and validate it.

Only the controller needs PyYAML and jsonschema. Every problem becomes one line
``SOURCE: PATH: what is wrong and what was expected``, sorted by path; nothing raises
past load_policy but PolicyInvalid.
"""

from __future__ import annotations

import difflib
import json

import yaml

from ansible_collections.portwarden.compliance.plugins.module_utils.policy_check import (
    NAMESPACE_HINT,
    format_path,
    path_sort_key,
    semantic_problems,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_overlay import (
    OverlayError,
    collect_overlays,
    overlay_problems,
)
from ansible_collections.portwarden.compliance.plugins.module_utils.policy_schema import (
    NAMESPACE_SELECTOR_PATTERN,
    OVERLAY_SCHEMA,
    POLICY_SCHEMA,
    SET_NAMES,
)

_TIMESTAMP_TAG = 'tag:yaml.org,2002:timestamp'
_TYPE_NAMES = {'object': 'a mapping', 'array': 'a list', 'string': 'a string', 'integer': 'an integer',
               'boolean': 'true or false', 'number': 'a number', 'null': 'null'}
_PATTERN_HINTS = {
    r'^[A-Za-z0-9][A-Za-z0-9._-]*$': 'an id of letters, digits, ".", "_" and "-", starting with a letter or digit',
    NAMESPACE_SELECTOR_PATTERN: NAMESPACE_HINT,
}
_UNION_HINTS = {
    'port_item': 'a port (0-65535), a range "A-B" or one of %s' % ', '.join(SET_NAMES),
    'ports': 'a port (0-65535), a range "A-B", one of %s, or a list of them' % ', '.join(SET_NAMES),
    'expect': '"closed" or a mapping with processes, users, exe, units and/or bind',
    'bind': 'one of loopback, any, specific, or a list of them',
}


class PolicyInvalid(Exception):
    """A policy that cannot be used; ``errors`` holds one line per problem."""

    def __init__(self, errors):
        super(PolicyInvalid, self).__init__('\n'.join(errors))
        self.errors = errors


class _PolicyLoader(yaml.SafeLoader):
    """Safe YAML that keeps dates as text (the schema checks them) and refuses duplicate keys."""


_PolicyLoader.yaml_implicit_resolvers = dict(
    (key, [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG])
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items())


_MERGE_TAG = 'tag:yaml.org,2002:merge'


def _construct_mapping(loader, node, deep=False):
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(None, None, 'expected a mapping', node.start_mark)
    seen = set()
    for key_node, _value_node in node.value:
        if key_node.tag == _MERGE_TAG:  # "<<: *anchor" merges; keys written out may override it
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(None, None, 'a mapping key must be a plain value',
                                                    key_node.start_mark) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, 'duplicate key %r' % (key,), key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_PolicyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# A policy is a few hundred values; YAML aliases can make a small file expand without end
# (a self-referencing alias, or aliases of aliases), so the expanded size is bounded.
MAX_POLICY_VALUES = 100000
# Numbers beyond this are no port, day count or version; they only break the tools that print them.
MAX_NUMBER = 2 ** 63


def _check_shape(value, source):
    """Refuse self-referencing data, data that expands beyond MAX_POLICY_VALUES and absurd numbers."""
    seen = 0
    stack = [(value, (), ())]
    while stack:
        item, ancestors, path = stack.pop()
        seen += 1
        if seen > MAX_POLICY_VALUES:
            raise PolicyInvalid(['%s: (top level): the policy expands to more than %d values (YAML aliases?); '
                                 'a policy is expected to be small' % (source, MAX_POLICY_VALUES)])
        if isinstance(item, (int, float)) and not isinstance(item, bool) and not -MAX_NUMBER <= item <= MAX_NUMBER:
            raise PolicyInvalid(['%s: %s: number too large; expected at most %d'
                                 % (source, format_path(list(path)), MAX_NUMBER)])
        if isinstance(item, (dict, list)):
            if id(item) in ancestors:
                raise PolicyInvalid(['%s: %s: the policy refers to itself through a YAML alias; expected plain data'
                                     % (source, format_path(list(path)))])
            children = item.items() if isinstance(item, dict) else enumerate(item)
            inner = ancestors + (id(item),)
            stack.extend((child, inner, path + (key,)) for key, child in children)


def refuse_duplicate_keys(pairs):
    """``object_pairs_hook`` for json.loads: a key twice in one object is an error (readers would disagree
    on which counts). Shared by policy loading and the gate's report loading."""
    mapping = dict(pairs)
    if len(mapping) != len(pairs):  # the common case, no duplicate, costs one dict
        seen = set()
        for key, _value in pairs:
            if key in seen:
                raise ValueError('duplicate key %r: it appears twice in one object' % key)
            seen.add(key)
    return mapping


def _one_line(text):
    return ' '.join(str(text).split())


def parse_policy_text(text, source):
    """Parse a JSON or YAML policy; PolicyInvalid says where it is broken (line and column)."""
    if text.lstrip().startswith('{'):
        # JSON first: its escapes (surrogate pairs, control characters) are not YAML's.
        try:
            policy = json.loads(text, object_pairs_hook=refuse_duplicate_keys)
        except ValueError as exc:
            if 'duplicate key' in str(exc):
                raise PolicyInvalid(['%s: (top level): not valid JSON: %s' % (source, exc)]) from None
            policy = _parse_yaml(text, source)  # flow-style YAML starts with "{" too
    else:
        policy = _parse_yaml(text, source)
    _check_shape(policy, source)
    return policy


def _parse_yaml(text, source):
    try:
        return yaml.load(text, Loader=_PolicyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = 'line %d, column %d: ' % (mark.line + 1, mark.column + 1) if mark else ''
        raise PolicyInvalid(['%s: %snot valid YAML: %s' % (source, where, _one_line(exc.problem or exc.context))]) \
            from None
    except yaml.reader.ReaderError as exc:
        raise PolicyInvalid(['%s: character %d: not valid YAML: character %r is not allowed'
                             % (source, exc.position + 1, exc.character)]) from None
    except yaml.YAMLError as exc:
        raise PolicyInvalid(['%s: not valid YAML: %s' % (source, _one_line(exc))]) from None
    except RecursionError:
        raise PolicyInvalid(['%s: not valid YAML: nested too deeply; a policy is expected to be a few levels deep'
                             % source]) from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        # An explicit tag such as "!!int x" or "!!timestamp 2027-13-01" that PyYAML cannot build.
        raise PolicyInvalid(['%s: not valid YAML: a tagged value cannot be read (%s)'
                             % (source, _one_line(exc) or type(exc).__name__)]) from None


def read_policy_file(path, source=None):
    source = source or path
    try:
        with open(path, 'rb') as handle:
            raw = handle.read()
    except OSError as exc:
        raise PolicyInvalid(['%s: cannot read the policy: %s' % (source, exc.strerror or exc)]) from None
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise PolicyInvalid(['%s: not UTF-8 text (byte %d)' % (source, exc.start)]) from None
    return parse_policy_text(text, source)


def _short(value):
    try:
        text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    except (ValueError, TypeError, RecursionError):
        text = '%s value' % type(value).__name__
    return text if len(text) <= 60 else text[:57] + '...'


def _did_you_mean(value, choices):
    if not isinstance(value, str):
        return ''
    close = difflib.get_close_matches(value, [str(choice) for choice in choices], n=1, cutoff=0.6)
    return " (did you mean '%s'?)" % close[0] if close else ''


def _union_hint(error):
    ref_names = [name for name, definition in POLICY_SCHEMA['$defs'].items() if definition is error.schema]
    for name in ref_names:
        if name in _UNION_HINTS:
            return _UNION_HINTS[name]
    if error.schema is POLICY_SCHEMA['$defs']['expect']['oneOf'][1]['properties']['bind']:
        return _UNION_HINTS['bind']
    return None


def _message(error):
    """One readable sentence for a jsonschema error: what is wrong and what was expected."""
    validator, value, instance = error.validator, error.validator_value, error.instance
    if validator == 'enum':
        return '%s is not one of %s%s' % (_short(instance), ', '.join(str(item) for item in value),
                                          _did_you_mean(instance, value))
    if validator == 'const':
        return '%s: expected %s' % (_short(instance), _short(value))
    if validator == 'type':
        return 'expected %s, got %s' % (_TYPE_NAMES.get(value, value), _short(instance))
    if validator == 'required':
        missing = [name for name in value if isinstance(instance, dict) and name not in instance]
        return 'missing %s' % ', '.join(repr(name) for name in missing)
    if validator == 'additionalProperties':
        allowed = sorted(error.schema.get('properties', {}))
        extra = sorted(str(key) for key in instance if key not in error.schema.get('properties', {}))
        hint = _did_you_mean(extra[0], allowed) if len(extra) == 1 else ''
        return 'unknown key%s %s; expected %s%s' % ('s' if len(extra) > 1 else '', ', '.join(repr(k) for k in extra),
                                                    ', '.join(allowed), hint)
    if validator == 'pattern':
        return '%s is not %s' % (_short(instance), _PATTERN_HINTS.get(value, 'text matching %s' % value))
    if validator == 'format':
        return '%s is not a %s%s' % (_short(instance), value, '; expected YYYY-MM-DD' if value == 'date' else '')
    if validator in ('minimum', 'maximum'):
        return '%s is %s than the %s %s' % (_short(instance), 'less' if validator == 'minimum' else 'greater',
                                            validator, value)
    if validator == 'minItems':
        return 'expected at least %d item%s' % (value, '' if value == 1 else 's')
    if validator == 'minLength':
        return 'expected a non-empty string'
    if validator == 'minProperties':
        return 'expected at least one of %s' % ', '.join(sorted(error.schema.get('properties', {})))
    if validator in ('anyOf', 'oneOf'):
        hint = _union_hint(error)
        return '%s is not %s' % (_short(instance), hint) if hint else '%s is not valid here' % _short(instance)
    return error.message


def _explain(error):
    """``(path, message)`` pairs for one schema error, descending into unions where that is clearer."""
    from jsonschema.exceptions import best_match  # only ever called with jsonschema's errors

    if error.validator in ('anyOf', 'oneOf') and error.context:
        if isinstance(error.instance, list):
            # A list where one item is wrong: name the item, not the whole list.
            deeper = [sub for sub in error.context if len(sub.absolute_path) > len(error.absolute_path)]
            if deeper:
                return [pair for sub in deeper for pair in _explain(sub)]
        if isinstance(error.instance, dict):
            # A mapping under a union (expect) with a bad key inside: the inner error says it best.
            inner = [sub for sub in error.context if sub.validator not in {'const', 'type'}]
            if inner:
                return _explain(best_match(inner))
        if _union_hint(error) is None:
            return _explain(best_match(error.context))
    return [(list(error.absolute_path), _message(error))]


_VALIDATORS = {}


def _schema_errors(policy, schema=None):
    # Imported when a policy is validated, not with this module: the per-host audit of an already
    # validated policy (policy_sha256) never needs it, and importing it costs each forked worker ~45 ms.
    try:
        from jsonschema import Draft202012Validator
    except ImportError:
        return [([], 'the jsonschema Python library is needed on the controller to validate policies '
                     '(pip install jsonschema)')]
    schema = schema or POLICY_SCHEMA
    validator = _VALIDATORS.get(id(schema))
    if validator is None:  # built once per schema: the validation of many hosts' overlays shares it
        validator = _VALIDATORS[id(schema)] = Draft202012Validator(schema,
                                                                   format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [pair for error in validator.iter_errors(policy) for pair in _explain(error)]


def validate_policy(policy, source):
    """Return the sorted error lines for a parsed policy (empty when it is valid)."""
    if policy is None:
        return ['%s: (top level): the policy is empty; expected a mapping with policy_version and name' % source]
    problems = set((tuple(path), message) for path, message in _schema_errors(policy))
    schema_paths = set(path for path, _message in problems)
    # Where the schema already spoke, its message stands; the semantic check would repeat it.
    problems.update((tuple(path), message) for path, message in semantic_problems(policy)
                    if tuple(path) not in schema_paths)
    unique = sorted(problems,
                    key=lambda problem: (path_sort_key(problem[0]), problem[1]))
    return ['%s: %s: %s' % (source, format_path(list(path)), message) for path, message in unique]


def load_policy(policy, source=None):
    """A policy file path or an already parsed mapping -> the validated policy mapping.

    Raises PolicyInvalid with every problem.
    """
    if isinstance(policy, str):
        source = source or policy
        policy = read_policy_file(policy, source)
    source = source or 'policy'
    _check_shape(policy, source)  # an inline mapping gets the same limits as a file
    errors = validate_policy(policy, source)
    if errors:
        raise PolicyInvalid(errors)
    return policy


_OVERLAY_SCHEMA_ERRORS = {}
_OVERLAY_SCHEMA_ERRORS_MAX = 4096


def _overlay_schema_errors(overlay):
    """_schema_errors of an overlay under OVERLAY_SCHEMA, memoised by its JSON text: a group's overlay is the same
    value on each of its hosts, and a fleet's validation checks it once. The overlay is plain data (plain_data: text
    keys; None, booleans, int, float, text, lists and mappings), whose JSON text, in its key order, tells any two
    apart (``1`` from ``1.0`` and ``true``, ``[]`` from ``{}``), so a value is only ever given its own errors."""
    try:
        key = json.dumps(overlay, separators=(',', ':'), allow_nan=False)
    except (TypeError, ValueError):  # not plain data after all: checked each time
        key = None
    errors = _OVERLAY_SCHEMA_ERRORS.get(key) if key is not None else None
    if errors is None:
        errors = tuple((tuple(path), message) for path, message in _schema_errors(overlay, OVERLAY_SCHEMA))
        if key is not None:
            if len(_OVERLAY_SCHEMA_ERRORS) >= _OVERLAY_SCHEMA_ERRORS_MAX:
                _OVERLAY_SCHEMA_ERRORS.clear()
            _OVERLAY_SCHEMA_ERRORS[key] = errors
    return errors


_OVERLAY_TOP_HINT = '; an overlay only adds rules and waivers, the policy\'s default and settings stay its own'


def overlay_errors(policy, overlays, host, groups=()):
    """``(error lines, warnings)`` for one host's overlays (``[(variable, overlay)]``) under a validated policy.

    Each line is ``host HOST: VARIABLE.PATH: what is wrong and what was expected``, sorted by variable and path:
    the overlay JSON Schema (``$defs/overlay`` of the policy schema) and overlay_problems (ids, collisions with
    the policy's rules, the baseline, what the policy's ``overlays`` settings allow)."""
    problems = set()
    schema_paths = set()
    for variable, overlay in overlays:
        for path, message in _overlay_schema_errors(overlay):
            hint = _OVERLAY_TOP_HINT if not path and message.startswith('unknown key') else ''
            problems.add(((variable,) + tuple(path), message + hint))
            schema_paths.add((variable,) + tuple(path))
    checked, warnings = overlay_problems(policy, overlays, host, groups)
    problems.update(((variable,) + tuple(path), message) for variable, path, message in checked
                    if (variable,) + tuple(path) not in schema_paths)
    unique = sorted(problems, key=lambda problem: (problem[0][0], path_sort_key(problem[0][1:]), problem[1]))
    return (['host %s: %s: %s' % (host, format_path(list(path)), message) for path, message in unique],
            ['host %s: %s' % (host, warning) for warning in warnings])


def load_host_overlays(policy, variables, host, groups=()):
    """The overlays a host's variables give (``[(variable, overlay)]``, in the order they apply) and warnings,
    validated under ``policy`` (already valid). Raises PolicyInvalid with every error line."""
    try:
        overlays = collect_overlays(variables)
    except OverlayError as exc:
        raise PolicyInvalid(['host %s: %s: %s' % (host, format_path(exc.path), exc)]) from None
    if not overlays:
        return [], []
    errors, warnings = overlay_errors(policy, overlays, host, groups)
    if errors:
        raise PolicyInvalid(errors)
    return overlays, warnings
