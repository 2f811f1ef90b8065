"""write_atomically (the registry data and any single file): a link at the path is replaced, never followed, and the
new file's mode is never one copied through a link (nor a setuid bit, nor others' write)."""

import os
import stat

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils.atomic_write import write_atomically


@pytest.mark.parametrize('target_mode', [0o4755, 0o666])
def test_a_link_at_the_path_is_replaced_with_a_plain_0644_file(tmp_path, target_mode):
    target = tmp_path / 'target'
    target.write_text('precious\n')
    os.chmod(target, target_mode)
    path = tmp_path / 'out.txt'
    os.symlink(target, path)
    old = os.umask(0o022)
    try:
        write_atomically(str(path), 'new\n')
    finally:
        os.umask(old)
    info = os.lstat(path)
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o644
    assert path.read_text() == 'new\n' and target.read_text() == 'precious\n'
    assert stat.S_IMODE(os.stat(target).st_mode) == target_mode
    assert [name for name in os.listdir(tmp_path) if name.endswith('.tmp')] == []


def test_a_regular_file_keeps_its_permissions_but_no_special_bits(tmp_path):
    path = tmp_path / 'out.txt'
    path.write_text('old\n')
    os.chmod(path, 0o4777)
    write_atomically(str(path), 'new\n')
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o775 and path.read_text() == 'new\n'
