"""Unit tests: IANA's port registry data, its generator and the regeneration from the published XML."""

import importlib.util
import os
import re
import stat

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils import registry, registry_build
from ansible_collections.portwarden.compliance.plugins.module_utils.registry_build import RegistryError
from tests.conftest import REPO

IANA_DIR = os.path.join(REPO, '..', 'shared', 'data', 'iana')
IANA_XML = os.path.join(IANA_DIR, 'service-names-port-numbers.xml')
IANA_README = os.path.join(IANA_DIR, 'README.md')
DATA_MODULE = os.path.join(REPO, 'plugins', 'module_utils', 'registry_data.py')

DATE = '2026-08-17'
SHA256 = '4bbf00ef4dd194ea3098d090b42a832c0f8aef704699956a4a7e24576a49631b'
RECORDS = 14533
SYSTEM_AND_USER = (0, 49151)
NS = 'http://www.iana.org/assignments'


def read_shared(path):
    # CI checks out shared/ beside the repository; without it the regeneration cannot be checked at all.
    if not os.path.exists(path):
        pytest.fail('%s is missing: the registry tests need shared/ checked out beside the repository' % os.path.normpath(path))
    with open(path, 'rb') as stream:
        return stream.read()


@pytest.fixture(scope='module')
def iana_xml():
    return read_shared(IANA_XML)


@pytest.fixture(scope='module')
def parsed(iana_xml):
    return registry_build.parse_registry(iana_xml)


def category_of(protocol, port):
    """The category whose ranges hold ``port``, found by scanning iana_ranges (not port_category)."""
    found = [category for category in registry.CATEGORIES
             if any(start <= port <= end for start, end in registry.iana_ranges(category, protocol))]
    assert len(found) <= 1, '%s %d is in %s' % (protocol, port, found)
    return found[0] if found else 'dynamic'


FACTS = [
    # protocol, port, category, service name
    ('tcp', 22, 'assigned', 'ssh'),
    ('udp', 22, 'assigned', 'ssh'),
    ('tcp', 0, 'reserved', None),
    ('udp', 0, 'reserved', None),
    ('tcp', 443, 'assigned', 'https'),
    ('udp', 53, 'assigned', 'domain'),
    ('tcp', 80, 'assigned', 'http'),  # http, www and www-http: the first name wins
    ('tcp', 113, 'assigned', 'ident'),  # ident then auth for tcp, only auth for udp
    ('udp', 113, 'assigned', 'auth'),
    ('tcp', 24, 'assigned', None),  # "any private mail system": designated, but no name
    ('udp', 24, 'assigned', None),
    ('tcp', 716, 'unassigned', None),  # no tcp record at all
    ('udp', 716, 'assigned', 'pana'),
    ('tcp', 15, 'unassigned', None),  # "Unassigned [was netstat]"
    ('udp', 1008, 'unassigned', None),  # "Possibly used by Sun Solaris????"
    ('tcp', 1783, 'unassigned', None),  # "Decomissioned Port 04/14/00, ms"
    ('tcp', 2825, 'unassigned', None),  # "(unassigned) Possibly assigned"
    ('tcp', 9006, 'unassigned', None),  # "De-Commissioned Port"
    ('tcp', 359, 'reserved', None),  # an empty <name/> and "Reserved"
    ('tcp', 1023, 'reserved', None),
    ('udp', 1024, 'reserved', None),
    ('tcp', 49151, 'reserved', None),
    ('tcp', 8600, 'assigned', 'asterix'),
    ('tcp', 5349, 'assigned', 'stuns'),
    # a named record is assigned even when its description says otherwise
    ('udp', 5349, 'assigned', 'stuns'),
    ('udp', 14001, 'assigned', 'sua'),  # "De-Registered", but the name stands
    ('sctp', 22, 'assigned', 'ssh'),
    ('sctp', 0, 'unassigned', None),  # port 0 is reserved for tcp and udp only
    ('dccp', 22, 'unassigned', None),
    ('tcp', 6000, 'assigned', 'x11'),  # a named range: every port gets the name
    ('tcp', 6063, 'assigned', 'x11'),
    ('udp', 6064, 'assigned', 'ndl-ahp-svc'),
]
FACTS += [(protocol, port, 'unassigned', None) for protocol in ('tcp', 'udp') for port in range(855, 860)]
FACTS += [(protocol, port, 'unassigned', None) for protocol in ('tcp', 'udp') for port in (8568, 8580, 8599)]
FACTS += [(protocol, 6400, 'assigned', 'boe-cms') for protocol in registry.PROTOCOLS]  # a record without <protocol>
FACTS += [(protocol, port, 'assigned', 'flex-lm') for protocol in registry.PROTOCOLS for port in (27000, 27009)]
FACTS += [(protocol, port, 'dynamic', None) for protocol in registry.PROTOCOLS for port in (49152, 50000, 65535)]


@pytest.mark.parametrize('protocol, port, category, name', FACTS)
def test_known_facts(protocol, port, category, name):
    assert category_of(protocol, port) == category
    assert registry.port_category(protocol, port) == category
    assert registry.service_name(protocol, port) == name


def test_emblem_range_is_unassigned():
    for protocol in ('tcp', 'udp'):
        ranges = registry.iana_ranges('unassigned', protocol)
        assert any(start <= 855 and end >= 859 for start, end in ranges)


@pytest.mark.parametrize('protocol', registry.PROTOCOLS)
def test_ranges_sorted_merged_disjoint_and_covering(protocol):
    covered = []
    for category in registry.CATEGORIES:
        ranges = registry.iana_ranges(category, protocol)
        assert isinstance(ranges, tuple)
        assert ranges, 'no %s ranges for %s' % (category, protocol)
        for start, end in ranges:
            assert isinstance(start, int) and isinstance(end, int)
            assert SYSTEM_AND_USER[0] <= start <= end <= SYSTEM_AND_USER[1]
        for before, after in zip(ranges, ranges[1:]):
            assert after[0] > before[1] + 1, '%s %s: %r and %r are out of order or not merged' % (protocol, category, before, after)
        covered.extend(ranges)
    covered.sort()
    assert covered[0][0] == SYSTEM_AND_USER[0] and covered[-1][1] == SYSTEM_AND_USER[1]
    for before, after in zip(covered, covered[1:]):
        assert after[0] == before[1] + 1, '%s: categories overlap or leave a gap after port %d' % (protocol, before[1])


@pytest.mark.parametrize('protocol', ('tcp', 'udp'))
def test_range_counts_are_plausible(protocol):
    counts = {category: len(registry.iana_ranges(category, protocol)) for category in registry.CATEGORIES}
    assert all(100 < count < 2000 for count in counts.values()), counts


@pytest.mark.parametrize('call, args', [
    (registry.iana_ranges, ('free', 'tcp')),
    (registry.iana_ranges, ('assigned', 'icmp')),
    (registry.iana_ranges, ('assigned', 'TCP')),
    (registry.service_name, ('quic', 443)),
    (registry.port_category, ('tcp', 65536)),
    (registry.port_category, ('tcp', -1)),
    (registry.port_category, ('udp6', 53)),
])
def test_unknown_arguments_raise_value_error(call, args):
    with pytest.raises(ValueError, match=r'unknown|not in'):
        call(*args)


def test_service_name_of_unnamed_port_is_none():
    assert registry.service_name('tcp', 856) is None
    assert registry.service_name('dccp', 65535) is None


def test_registry_info_matches_readme():
    readme = read_shared(IANA_README).decode('utf-8')
    assert '<updated>%s</updated>' % DATE in readme
    assert SHA256 in readme
    assert '%s records' % format(RECORDS, ',') in readme
    assert registry.registry_info() == {'date': DATE, 'sha256': SHA256, 'records': RECORDS}
    assert (registry.REGISTRY_DATE, registry.REGISTRY_SHA256, registry.REGISTRY_RECORDS) == (DATE, SHA256, RECORDS)
    assert registry.PROTOCOLS == ('tcp', 'udp', 'sctp', 'dccp')


def test_parse_of_published_xml(iana_xml, parsed):
    assert (parsed['date'], parsed['sha256'], parsed['records']) == (DATE, SHA256, RECORDS)
    for protocol in registry.PROTOCOLS:
        for category in registry.CATEGORIES:
            assert parsed['ranges'][protocol][category] == registry.iana_ranges(category, protocol)


def test_committed_data_is_the_regenerated_data(parsed):
    with open(DATA_MODULE, 'rb') as stream:
        committed = stream.read().decode('utf-8')
    assert registry_build.render_module(parsed) == committed, (
        'registry_data.py differs from what the XML yields: run portwarden registry update --from %s' % IANA_XML)


def test_committed_data_is_compact():
    assert os.path.getsize(DATA_MODULE) < 300 * 1024
    with open(DATA_MODULE) as stream:
        lines = stream.read().splitlines()
    assert max(len(line) for line in lines) <= 160


def _reference_categories(xml_bytes):
    """The classification again, port by port and in the plainest way, to check the generator against."""
    import xml.etree.ElementTree as ET

    rank = {'unassigned': 0, 'reserved': 1, 'assigned': 2}
    table = {protocol: ['unassigned'] * (SYSTEM_AND_USER[1] + 1) for protocol in registry.PROTOCOLS}
    for record in ET.fromstring(xml_bytes).iter('{%s}record' % NS):
        number = record.findtext('{%s}number' % NS)
        if number is None:
            continue
        first, last = (number.split('-') + [number])[:2]
        description = (record.findtext('{%s}description' % NS) or '').lower()
        if (record.findtext('{%s}name' % NS) or '').strip() or description.startswith('any private'):
            category = 'assigned'
        elif description.startswith('reserved'):
            category = 'reserved'
        else:
            category = 'unassigned'
        protocol = record.findtext('{%s}protocol' % NS)
        for proto in [protocol] if protocol else registry.PROTOCOLS:
            for port in range(int(first), min(int(last), SYSTEM_AND_USER[1]) + 1):
                if rank[category] > rank[table[proto][port]]:
                    table[proto][port] = category
    return table


def test_ranges_agree_with_port_by_port_reference(iana_xml):
    reference = _reference_categories(iana_xml)
    for protocol in registry.PROTOCOLS:
        expected = reference[protocol]
        for category in registry.CATEGORIES:
            ports = [port for start, end in registry.iana_ranges(category, protocol) for port in range(start, end + 1)]
            assert ports == [port for port, value in enumerate(expected) if value == category], (protocol, category)


SMALL = '''<?xml version='1.0' encoding='UTF-8'?>
<registry xmlns="http://www.iana.org/assignments" id="service-names-port-numbers">
  <updated>2026-01-02</updated>
  %s
</registry>
'''


def small_xml(*records):
    body = []
    for number, protocol, name, description in records:
        fields = ['<description>%s</description>' % description]
        if name is not None:
            fields.append('<name>%s</name>' % name)
        if protocol is not None:
            fields.append('<protocol>%s</protocol>' % protocol)
        if number is not None:
            fields.append('<number>%s</number>' % number)
        body.append('<record>%s</record>' % ''.join(fields))
    return (SMALL % '\n  '.join(body)).encode('utf-8')


GOOD = small_xml(
    ('0', 'tcp', None, 'Reserved'),
    ('1', 'tcp', 'tcpmux', 'TCP Port Service Multiplexer'),
    ('2-4', None, None, 'Unassigned'),
    ('3', 'udp', None, 'Reserved'),
    ('3', 'udp', 'three', 'Three'),
    ('5', 'tcp', None, 'any private thing'),
    ('7-8', None, 'echo', 'Echo'),
    ('7', 'udp', 'later', 'A later name for the same port'),
    ('10', 'tcp', 'dropped', 'De-registered'),
    ('11', 'dccp', '', 'Reserved'),
    ('12', 'ipx', 'unknown', 'A protocol not checked'),
    (None, None, 'noport', 'A service name without a port'),
    ('49000-50000', 'udp', None, 'Unassigned'),
)


def test_small_registry_classification():
    data = registry_build.parse_registry(GOOD)
    assert (data['date'], data['records']) == ('2026-01-02', 13)
    ranges = data['ranges']
    assert ranges['tcp']['assigned'] == ((1, 1), (5, 5), (7, 8), (10, 10))
    assert ranges['tcp']['reserved'] == ((0, 0),)
    assert ranges['tcp']['unassigned'] == ((2, 4), (6, 6), (9, 9), (11, 49151))
    assert ranges['udp']['assigned'] == ((3, 3), (7, 8))
    assert ranges['udp']['reserved'] == ()
    assert ranges['dccp']['reserved'] == ((11, 11),)
    assert data['names']['udp'] == {3: 'three', 7: 'echo', 8: 'echo'}
    assert data['names']['tcp'] == {1: 'tcpmux', 7: 'echo', 8: 'echo', 10: 'dropped'}


def test_rendered_module_is_deterministic_python(tmp_path):
    data = registry_build.parse_registry(GOOD)
    text = registry_build.render_module(data)
    assert text == registry_build.render_module(registry_build.parse_registry(GOOD))
    assert 'GENERATED by `portwarden registry update --from FILE.xml`' in text
    assert '2026-01-02' in text and data['sha256'] in text
    path = tmp_path / 'rendered_registry_data.py'
    path.write_text(text)
    spec = importlib.util.spec_from_file_location('rendered_registry_data', str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.RANGES['tcp']['assigned'] == '1 5 7-8 10'
    assert module.RANGES['tcp']['reserved'] == '0'
    assert module.RANGES['udp']['reserved'] == ''
    assert module.REGISTRY_RECORDS == 13
    assert module.NAMES_TCP_UDP == '7 echo 8 echo'
    assert module.NAMES_TCP == '1 tcpmux 10 dropped'
    assert module.NAMES_UDP == '3 three'
    assert module.NAMES_SCTP == module.NAMES_DCCP == '7 echo 8 echo'


@pytest.mark.parametrize('xml_bytes, message', [
    (b'', 'not well-formed XML'),
    (b'port 22 ssh', 'not well-formed XML'),
    (b'<registry xmlns="http://www.iana.org/assignments"><updated>2026-01-02</updated>', 'not well-formed XML'),
    (b'<html><body/></html>', 'root element is <html>'),
    (b'<registry><updated>2026-01-02</updated></registry>', 'root element is <registry>'),
    (b'<registry xmlns="http://www.iana.org/assignments" id="protocol-numbers"><updated>2026-01-02</updated></registry>',
     "registry id is 'protocol-numbers'"),
    (b'<registry xmlns="http://www.iana.org/assignments"><record><number>1</number></record></registry>', 'no <updated>'),
    (SMALL.replace('2026-01-02', '17 Aug 2026').encode() % b'', "<updated> is '17 Aug 2026'"),
    (SMALL.replace('2026-01-02', '2026-02-30').encode() % b'', "<updated> is '2026-02-30'"),
    (SMALL.encode() % b'', 'no <record>'),
    (small_xml(('22', 'tcp', 'ssh', 'SSH'), ('ssh', 'tcp', 'ssh', 'SSH')), "record 2 (number 'ssh', protocol 'tcp', name 'ssh')"),
    (small_xml(('80-', 'tcp', None, 'Unassigned')), "'80-' is not a port or an inclusive port range"),
    (small_xml(('1,2', 'tcp', None, 'Unassigned')), "'1,2' is not a port"),
    (small_xml(('-5', None, None, 'Unassigned')), "'-5' is not a port"),
    (small_xml(('859-855', None, None, 'Unassigned')), 'range start 859 is greater than its end 855'),
    (small_xml(('65536', 'udp', None, 'Unassigned')), 'port 65536 is greater than 65535'),
    (small_xml(('9' * 5000, 'udp', None, 'Unassigned')), 'is not a port'),
    (small_xml(('49152-70000', 'udp', None, 'Unassigned')), 'port 70000 is greater than 65535'),
    (small_xml(('22', 'tcp', 'two words', 'x')), 'service name contains whitespace'),
])
def test_parse_errors(xml_bytes, message):
    with pytest.raises(RegistryError) as caught:
        registry_build.parse_registry(xml_bytes)
    assert message in str(caught.value)


def test_update_registry_writes_atomically_and_reports_changes(tmp_path):
    source = tmp_path / 'registry.xml'
    source.write_bytes(GOOD)
    output = tmp_path / 'out' / 'registry_data.py'
    output.parent.mkdir()

    changed, data = registry_build.update_registry(str(source), str(output), check=True)
    assert changed and data['records'] == 13 and not output.exists()

    changed, data = registry_build.update_registry(str(source), str(output))
    assert changed
    assert output.read_text() == registry_build.render_module(data)
    assert stat.S_IMODE(output.stat().st_mode) == 0o666 & ~_umask()
    assert os.listdir(str(output.parent)) == ['registry_data.py']  # no temporary file left behind

    assert registry_build.update_registry(str(source), str(output), check=True)[0] is False
    assert registry_build.update_registry(str(source), str(output))[0] is False

    output.chmod(0o640)
    source.write_bytes(GOOD.replace(b'2026-01-02', b'2026-01-03'))
    assert registry_build.update_registry(str(source), str(output), check=True)[0] is True
    assert '2026-01-02' in output.read_text()
    assert registry_build.update_registry(str(source), str(output))[0] is True
    assert '2026-01-03' in output.read_text()
    assert stat.S_IMODE(output.stat().st_mode) == 0o640  # the file's mode survives the replacement
    assert os.listdir(str(output.parent)) == ['registry_data.py']


def _umask():
    value = os.umask(0)
    os.umask(value)
    return value


def test_update_registry_errors_name_the_file(tmp_path):
    missing = str(tmp_path / 'nope.xml')
    with pytest.raises(RegistryError, match='cannot read %s' % re.escape(missing)):
        registry_build.update_registry(missing, str(tmp_path / 'out.py'))
    bad = tmp_path / 'bad.xml'
    bad.write_bytes(b'<html/>')
    with pytest.raises(RegistryError, match='^%s: root element is <html>' % re.escape(str(bad))):
        registry_build.update_registry(str(bad), str(tmp_path / 'out.py'))
    assert not (tmp_path / 'out.py').exists()
    source = tmp_path / 'good.xml'
    source.write_bytes(GOOD)
    target = str(tmp_path / 'no-such-dir' / 'out.py')
    with pytest.raises(RegistryError, match='cannot write %s' % re.escape(target)):
        registry_build.update_registry(str(source), target)
