"""Fixtures for the storage log layer contracts (Flow, FixedPriceMarket) on a local Anvil.

Deployments are session-scoped; ape's isolation reverts the chain to the fixture's snapshot after each
test, so tests may change state freely. Hypothesis tests only make `eth_call`s (state-independent).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from storage_contracts_helpers import SMALL_EPOCH, deploy_module


@pytest.fixture(scope="session")
def owner(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def users(accounts):
    return accounts[1:5]


@pytest.fixture(scope="session")
def alice(users):
    return users[0]


@pytest.fixture(scope="session")
def bob(users):
    return users[1]


@pytest.fixture(scope="session")
def deployment(owner, project) -> dict[str, Any]:
    return deploy_module.deploy_storage(owner, project)


@pytest.fixture(scope="session")
def flow(deployment, project):
    return project.Flow.at(deployment["flow"])


@pytest.fixture(scope="session")
def market(deployment, project):
    return project.FixedPriceMarket.at(deployment["market"])


@pytest.fixture(scope="session")
def epoch_deployment(owner, project) -> dict[str, Any]:
    """A second deployment with short epochs (mining "on")."""
    return deploy_module.deploy_storage(owner, project, blocks_per_epoch=SMALL_EPOCH)


@pytest.fixture(scope="session")
def epoch_flow(epoch_deployment, project):
    return project.Flow.at(epoch_deployment["flow"])


@pytest.fixture
def rng(request) -> random.Random:
    return random.Random(request.node.name)
