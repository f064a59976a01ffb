"""Fixtures for the compute market contracts on a local Anvil.

The deployment is session-scoped; ape's isolation reverts the chain to the fixture's snapshot after each
test, so tests may change state freely. The stateful Hypothesis test snapshots and restores per example.
"""

from __future__ import annotations

from typing import Any

import pytest
from compute_helpers import deploy


@pytest.fixture(scope="session")
def owner(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def users(accounts):
    return accounts[1:4]


@pytest.fixture(scope="session")
def providers(accounts):
    return accounts[4:8]


@pytest.fixture(scope="session")
def alice(users):
    return users[0]


@pytest.fixture(scope="session")
def bob(users):
    return users[1]


@pytest.fixture(scope="session")
def prov(providers):
    return providers[0]


@pytest.fixture(scope="session")
def prov2(providers):
    return providers[1]


@pytest.fixture(scope="session")
def outsider(accounts):
    return accounts[9]


@pytest.fixture(scope="session")
def deployment(owner, project) -> dict[str, Any]:
    return deploy(owner, project)


@pytest.fixture(scope="session")
def ledger(deployment, project):
    return project.ComputeLedger.at(deployment["ledger"])


@pytest.fixture(scope="session")
def registry(deployment, project):
    return project.ServiceRegistry.at(deployment["registry"])


@pytest.fixture(scope="session")
def matcher(deployment, project):
    return project.ComputeMatcher.at(deployment["matcher"])


@pytest.fixture(scope="session")
def fine_tuning(deployment, project):
    return project.FineTuningServing.at(deployment["fine_tuning"])
