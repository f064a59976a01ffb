"""Fixtures for the DA contracts (DASigners, DAEntrance) on a local Anvil.

Each "world" is a session-scoped deployment with registered signers and epoch 1 made; ape's isolation
reverts the chain to the fixture's snapshot after each test, so tests may change state freely.
Hypothesis tests only make `eth_call`s (state-independent).
"""

from __future__ import annotations

import random

import pytest
from da_contract_helpers import World, build_world, make_signer


@pytest.fixture(scope="session")
def owner(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def alice(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def signer_pool():
    """16 signers (funded accounts with BLS keys), reused across deployments."""
    return [make_signer(i) for i in range(16)]


@pytest.fixture(scope="session")
def world(owner, project, signer_pool) -> World:
    """One quorum of 30 rows over 7 signers with unequal votes (18 votes < 30 rows: proportional rows)."""
    return build_world(owner, project, [1, 2, 3, 4, 5, 1, 2], rows=30, signers=signer_pool[:7])


@pytest.fixture(scope="session")
def world_multi(owner, project, signer_pool) -> World:
    """14 votes over quorums of 8 rows: one full quorum plus one of the last 8 ballots."""
    return build_world(owner, project, [3, 5, 4, 2], rows=8, signers=signer_pool[7:11])


@pytest.fixture(scope="session")
def world_3072(owner, project, signer_pool) -> World:
    """0G's shape: one quorum of 3072 rows, 12 signers with 256 votes each."""
    return build_world(owner, project, [256] * 12, rows=3072, signers=signer_pool[:12])


@pytest.fixture
def rng(request) -> random.Random:
    return random.Random(request.node.name)
