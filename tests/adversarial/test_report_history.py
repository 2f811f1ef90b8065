"""history/ retention: it keeps the newest N of portwarden's own history files and never deletes anything else,
not a file another user planted under a history name, not a link, not the user's own notes."""

import os
import shutil
import tempfile

import pytest

from tests.helpers.report_run import audit_result, run_port_report

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='needs root, to plant a file as another user')


def test_history_keeps_the_newest_and_deletes_only_its_own(tmp_path):
    reports = tmp_path / 'reports'
    history = reports / 'history'
    history.mkdir(parents=True)
    precious = tempfile.mkdtemp(dir='/tmp')
    try:
        target = os.path.join(precious, 'keep-me')
        with open(target, 'w') as handle:
            handle.write('precious\n')
        planted = {
            'notes.txt': None,
            'portwarden-report-19990101T000000Z.json.bak': None,
            'portwarden-report-19990101T000001Z.json': NOBODY,  # named like ours, but another user's
        }
        for name, owner in planted.items():
            (history / name).write_text('not portwarden\'s\n')
            if owner is not None:
                os.chown(history / name, owner, owner)
        os.symlink(target, history / 'portwarden-report-19990101T000002Z.json')
        results = []
        for _run in range(5):
            _proc, result = run_port_report(reports, {'web-1': audit_result()}, tmp_path, history_keep=2)
            assert not result['failed'], result['msg']
            results.append(result)
        ours = sorted(name for name in os.listdir(history) if name.startswith('portwarden-report-2'))
        assert len(ours) == 2, ours
        # the newest two previous reports: those of the third and fourth runs
        assert [result['generated_at'].replace('-', '').replace(':', '') for result in results[2:4]] == \
            [name.split('-')[2].split('.')[0] for name in ours]
        for name in planted:
            assert (history / name).exists(), name
        assert os.path.islink(history / 'portwarden-report-19990101T000002Z.json')
        with open(target) as handle:
            assert handle.read() == 'precious\n'
        assert results[-1]['history']['pruned']
    finally:
        shutil.rmtree(precious)
