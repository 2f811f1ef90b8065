"""Make this checkout importable as ansible_collections.portwarden.compliance, for in-process benchmarks."""

import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def link_collection(prefix='pw-bench-'):
    """Link the checkout under a temporary ansible_collections/portwarden/compliance and put it on sys.path."""
    root = tempfile.mkdtemp(prefix=prefix)
    link = os.path.join(root, 'ansible_collections', 'portwarden', 'compliance')
    os.makedirs(os.path.dirname(link))
    os.symlink(REPO, link)
    sys.path.insert(0, root)
    return root
