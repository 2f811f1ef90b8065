"""Fuzz `portwarden gate` (its real entry point, in-process) over mutations of a valid report: keys deleted, types
changed, values huge or odd, deep nesting, truncated or flipped bytes, other encodings.

Never a traceback (the CLI's last-resort "internal error"), the exit code is always 0, 1 or 2, and a mutated
report is never judged more compliant than the valid one (which has high drift: exit 1).
PORTWARDEN_FUZZ_EXAMPLES sets the number of examples (default 300).
"""

import collections
import contextlib
import datetime
import io
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.portwarden.compliance.plugins.module_utils import report_build as rb
from ansible_collections.portwarden.compliance.plugins.plugin_utils import cli

EXAMPLES = int(os.environ.get('PORTWARDEN_FUZZ_EXAMPLES', '300'))
POLICY = {'name': 'fleet', 'sha256': 'a' * 64, 'rules': [{'id': 'r', 'severity': 'high'}]}
REGISTRY = {'date': '2026-08-17', 'sha256': 'b' * 64, 'records': 3}
OUTCOMES = collections.Counter()


def _finding(port, severity, status='drift'):
    return {'rule': 'r', 'severity': severity, 'status': status, 'protocol': 'tcp', 'family': 'ipv4',
            'address': '0.0.0.0', 'port': port, 'service': None, 'waived': status == 'waived', 'waiver': None,
            'message': 'm', 'processes': [{'pid': 1, 'name': 'x', 'user': 'u', 'uid': 0, 'exe': None, 'unit': None}]}


def _audit(status, findings=()):
    return {'status': status, 'findings': list(findings), 'reasons': [], 'warnings': [],
            'coverage': {'complete': True}, 'evaluated_on': '2026-11-26'}


def valid_report():
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    findings = [_finding(856, 'high'), _finding(857, 'low'), _finding(858, 'high', 'waived')]
    hosts = [rb.host_entry('a', _audit('drift', findings)), rb.host_entry('b', _audit('compliant'))]
    return rb.build_report(hosts, POLICY, REGISTRY, generated_at=when)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


BASE = valid_report()
PATHS = [path for path in _paths(BASE) if path]
ODD_VALUES = [None, True, False, 0, -1, 1, 65536, 10 ** 30, 1.5, 1e308, '', 'x' * 10000, 'drift', 'compliant',
              'unknown', 'critical', [], {}, [None], {'': None}, '\ud800'.encode('utf-8', 'surrogatepass').decode(
                  'utf-8', 'replace'), '2999-01-01T00:00:00Z']


def _set(report, path, value):
    target = report
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()


@st.composite
def mutated(draw):
    report = json.loads(json.dumps(BASE))
    kind = draw(st.sampled_from(['delete', 'value', 'nest', 'truncate', 'flip', 'encoding', 'several']))
    if kind in ('delete', 'value', 'nest', 'several'):
        for _round in range(draw(st.integers(2, 5)) if kind == 'several' else 1):
            path = draw(st.sampled_from(PATHS))
            try:
                if kind == 'delete' or (kind == 'several' and draw(st.booleans())):
                    _set(report, path, _DELETE)
                elif kind == 'nest':
                    depth = draw(st.sampled_from([10, 1000, 50000]))
                    _set(report, path, json.loads('[' * min(depth, 900) + ']' * min(depth, 900))
                         if depth < 1000 else '__NEST%d__' % depth)
                else:
                    _set(report, path, draw(st.sampled_from(ODD_VALUES)))
            except (KeyError, IndexError, TypeError):
                pass  # an earlier change removed this path
        text = json.dumps(report, indent=2)
        for depth in (1000, 50000):
            text = text.replace('"__NEST%d__"' % depth, '[' * depth + ']' * depth)
        return kind, text.encode('utf-8')
    data = json.dumps(report, indent=2).encode('utf-8')
    if kind == 'truncate':
        return kind, data[:draw(st.integers(0, len(data) - 1))]
    if kind == 'flip':
        position = draw(st.integers(0, len(data) - 1))
        return kind, data[:position] + bytes([data[position] ^ draw(st.integers(1, 255))]) + data[position + 1:]
    encoding = draw(st.sampled_from(['utf-16', 'utf-32', 'latin-1-with-bom', 'utf-8-sig']))
    if encoding == 'latin-1-with-bom':
        return kind, b'\xef\xbb\xbf' + data
    return kind, data.decode('utf-8').encode(encoding)


def run_gate(path):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(['gate', str(path), '--fail-on', 'high'])
    return code, out.getvalue(), err.getvalue()


def test_the_valid_report_is_drift(tmp_path):
    path = tmp_path / 'report.json'
    path.write_text(json.dumps(BASE))
    assert run_gate(path)[0] == 1


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutated())
def test_a_mutated_report_is_never_more_compliant(tmp_path, case):
    kind, data = case
    path = tmp_path / 'report.json'
    path.write_bytes(data)
    code, out, err = run_gate(path)
    OUTCOMES[(kind, code)] += 1
    assert 'internal error' not in err and 'Traceback' not in out + err, err
    assert code in (1, 2), (kind, code, out, data[:2000])  # never PASS: the valid report has high drift
    if code == 2:
        assert out.startswith('portwarden gate: UNKNOWN'), out


def test_zz_report_counts():
    print('gate fuzz outcomes (kind, exit code): %s' % dict(sorted(OUTCOMES.items())))
