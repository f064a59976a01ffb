"""Fixtures for the market contracts on a local Anvil: the real INFT (AgentNFT + DataVerifier), the compute
contracts, AgentMarket and ComputeBundleMarket, deployed once per session; ape's isolation reverts each test's
changes."""

from __future__ import annotations

import pytest
from market_helpers import deploy_compute, deploy_inft, deploy_market


@pytest.fixture(scope="session")
def owner(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def creator(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def seller(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def buyer(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def other(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def inft(owner, project):
    return deploy_inft(owner, project)


@pytest.fixture(scope="session")
def nft(inft):
    return inft[0]


@pytest.fixture(scope="session")
def verifier(inft):
    return inft[1]


@pytest.fixture(scope="session")
def compute(owner, project):
    return deploy_compute(owner, project)


@pytest.fixture(scope="session")
def deployment(owner, project, nft, compute):
    return deploy_market(owner, project, nft, ledger=compute["ledger"], registry=compute["registry"])


@pytest.fixture(scope="session")
def market(deployment, project):
    return project.AgentMarket.at(deployment["agent_market"])


@pytest.fixture(scope="session")
def bundles(deployment, project):
    return project.ComputeBundleMarket.at(deployment["compute_bundles"])


@pytest.fixture(scope="session")
def ledger(compute, project):
    return project.ComputeLedger.at(compute["ledger"])


@pytest.fixture(scope="session")
def registry(compute, project):
    return project.ServiceRegistry.at(compute["registry"])
