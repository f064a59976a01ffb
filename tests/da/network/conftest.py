"""Fixtures for the DA end-to-end tests (helpers in da_network_helpers.py).

The DA node processes act on the test chain on their own schedule (epoch registrations), so ape's
per-test chain snapshots are turned off here: reverting the chain under running nodes would drop their
transactions. The tests of a module share one chain history; the module is still isolated as a whole.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def _function_isolation():
    """No per-test snapshot/revert (overrides ape's fixture of that name for this folder)."""
    yield
