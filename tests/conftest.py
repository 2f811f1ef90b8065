"""Test set-up shared by every suite: the collection importable as ansible_collections.portwarden.compliance."""

import hashlib
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _collection_root():
    # Ansible and Python find the collection under <root>/ansible_collections/portwarden/compliance;
    # a symlink to this checkout keeps the tests on the working tree, not on an installed copy.
    # One link per checkout: two checkouts tested at once must not re-point each other's link.
    digest = hashlib.sha256(REPO.encode('utf-8')).hexdigest()[:12]
    root = os.path.join(tempfile.gettempdir(), 'portwarden-collections-%d-%s' % (os.getuid(), digest))
    link = os.path.join(root, 'ansible_collections', 'portwarden', 'compliance')
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.realpath(link) != REPO:
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(REPO, link)
    return root


COLLECTIONS_ROOT = _collection_root()
sys.path.insert(0, COLLECTIONS_ROOT)
sys.path.insert(0, REPO)
os.environ['PYTHONPATH'] = os.pathsep.join(filter(None, [COLLECTIONS_ROOT, os.environ.get('PYTHONPATH')]))
os.environ['ANSIBLE_COLLECTIONS_PATH'] = COLLECTIONS_ROOT
