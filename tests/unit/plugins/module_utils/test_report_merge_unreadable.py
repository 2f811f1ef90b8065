"""A merge whose every part is bad (a slice killed while writing left only an unfinished part directory):
with --skip-bad there is still no policy to judge any host under. The merge refuses, naming the file and
why, never an internal error."""

import pytest

from ansible_collections.portwarden.compliance.plugins.module_utils.report_merge import MergeRefused, merge_parts

UNFINISHED = {'file': '/drop/parts/awx-813-9123e8ef6d6ae95a',
              'reason': 'no portwarden-report.json: the run that writes this part has not finished, or was killed',
              'hosts': None}


@pytest.mark.parametrize('expected', [
    ['web03', 'web06'],
    None,  # already refused: which hosts it covered cannot be told
])
def test_only_bad_parts_are_refused_by_name(expected):
    with pytest.raises(MergeRefused) as refused:
        merge_parts([], expected=expected, skipped=[UNFINISHED])
    message = str(refused.value)
    assert UNFINISHED['file'] in message and 'has not finished, or was killed' in message
