"""Fixtures for the INFT contracts on ape's Anvil: one deployment per session; ape's isolation reverts the
chain after each test, so tests may change state freely."""

from __future__ import annotations

from typing import Any

import pytest
from inft_helpers import datas, deploy


@pytest.fixture(scope="session")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def alice(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def bob(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def carol(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def deployment(admin, project) -> dict[str, Any]:
    return deploy(admin, project)


@pytest.fixture(scope="session")
def nft(deployment, project):
    return project.AgentNFT.at(deployment["nft"])


@pytest.fixture(scope="session")
def verifier(deployment, project):
    return project.DataVerifier.at(deployment["verifier"])


@pytest.fixture(scope="session")
def w3nft(nft, chain):
    """The token as a web3 contract (fast eth_calls, errors decoded from deaios.inft's ABIs)."""
    from deaios.inft.chain import load_abis

    return chain.provider.web3.eth.contract(address=nft.address, abi=load_abis()["AgentNFT"])


@pytest.fixture(scope="session")
def token(nft, alice) -> int:
    """Token 1: two data entries, minted by and to alice."""
    nft.mint(datas("a", "b"), alice, sender=alice)
    return 1
