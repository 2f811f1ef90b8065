"""Fixtures for fleet suites: real hosts (network namespaces) reached by Ansible over SSH.

``fleet5`` is a ready five-host fleet for one test; ``fleet_factory(n, **kwargs)`` makes fleets of
any size and options for one test, ``module_fleet_factory`` for a whole module (set up once, shared
by its tests). Every fleet is torn down when its fixture ends, whether the test passed or not.
The suite is skipped only where fleets cannot exist (not root, ``ip netns`` unusable).
"""

import contextlib

import pytest

from .harness import Fleet, unsupported_reason


@pytest.fixture(scope='session')
def fleet_support():
    reason = unsupported_reason()
    if reason:
        pytest.skip(reason)


@contextlib.contextmanager
def _fleets(tmp_path_factory):
    with contextlib.ExitStack() as stack:
        def make(n, **kwargs):
            kwargs.setdefault('workdir', str(tmp_path_factory.mktemp('fleet')))
            return stack.enter_context(Fleet(n, **kwargs))
        yield make


@pytest.fixture
def fleet_factory(fleet_support, tmp_path_factory):
    with _fleets(tmp_path_factory) as make:
        yield make


@pytest.fixture(scope='module')
def module_fleet_factory(fleet_support, tmp_path_factory):
    with _fleets(tmp_path_factory) as make:
        yield make


@pytest.fixture
def fleet5(fleet_factory):
    return fleet_factory(5)
