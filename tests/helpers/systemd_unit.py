"""Read a systemd unit file and turn its ExecStart= into the argv systemd would run, without systemd.

Just enough of systemd.syntax(7), systemd.exec(5) and systemd.service(5) for the units the collection
ships: sections, repeated keys, comments, backslash continuation; the specifiers %% %l %H %n; Environment=
(several quoted assignments per line), EnvironmentFile= overriding it; ExecStart= split into words as
systemd does (double/single quotes), then ``${NAME}`` replaced inside a word by its value. A ``$NAME``
word (split on whitespace by systemd) or an unknown variable is an error here: the tests must not guess.
"""

import re
import shlex

_VARIABLE = re.compile(r'\$\{([A-Za-z_][A-Za-z0-9_]*)\}')


def parse_unit(text):
    """``{section: [(key, value), ...]}`` in file order (keys repeat)."""
    sections = {}
    current = None
    pending = ''
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        pending = ''
        if not line or line[0] in '#;':
            continue
        if line.endswith('\\'):
            pending = line[:-1] + ' '
            continue
        if line.startswith('[') and line.endswith(']'):
            current = sections.setdefault(line[1:-1], [])
            continue
        if current is None or '=' not in line:
            raise ValueError('not a unit file line: %r' % line)
        key, value = line.split('=', 1)
        current.append((key.strip(), value.strip()))
    return sections


def values(sections, section, key):
    return [value for name, value in sections.get(section, []) if name == key]


def expand_specifiers(value, hostname, unit_name):
    def replace(match):
        letter = match.group(1)
        table = {'%': '%', 'l': hostname.split('.')[0], 'H': hostname, 'n': unit_name}
        if letter not in table:
            raise ValueError('specifier %%%s not known to this test helper' % letter)
        return table[letter]
    return re.sub(r'%(.)', replace, value)


def read_environment_file(text):
    """KEY=VALUE lines of an EnvironmentFile= (comments and blank lines skipped, quotes removed)."""
    env = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in '#;':
            continue
        key, value = line.split('=', 1)
        words = shlex.split(value) if value.strip() else ['']
        env[key.strip()] = ' '.join(words)
    return env


def service_command(unit_text, environment_file_text='', hostname='localhost', unit_name='unit.service'):
    """``(argv, environment)`` of the unit's one ExecStart=, as systemd would run it."""
    sections = parse_unit(unit_text)
    env = {}
    for line in values(sections, 'Service', 'Environment'):
        for assignment in shlex.split(expand_specifiers(line, hostname, unit_name)):
            key, value = assignment.split('=', 1)
            env[key] = value
    env.update(read_environment_file(environment_file_text))  # files override Environment=
    starts = values(sections, 'Service', 'ExecStart')
    if len(starts) != 1:
        raise ValueError('expected one ExecStart=, found %d' % len(starts))
    command = expand_specifiers(starts[0].lstrip('@-:+!'), hostname, unit_name)
    argv = []
    for word in shlex.split(command):
        if re.search(r'\$(?!\{)', word):
            raise ValueError('a $NAME word (split by systemd) in ExecStart=: %r' % word)

        def substitute(match):
            if match.group(1) not in env:
                raise ValueError('ExecStart= uses ${%s}, which neither Environment= nor the file sets' % match.group(1))
            return env[match.group(1)]
        argv.append(_VARIABLE.sub(substitute, word))
    return argv, env
