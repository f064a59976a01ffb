"""Fixtures and helpers shared by the alignment-economy tests (license, delegation, rewards, governance).

A uniquely named module: test folders may have a `conftest`, so tests import from here instead. Test modules
bring the fixtures into scope with ``from alignment_econ_helpers import *``; each module deploys once
(module-scoped fixtures) and ape's isolation reverts every test's changes.
"""

from __future__ import annotations

from typing import Any

import pytest
from deaios import testing
from deaios.deployment import load_script

ETHER = 10**18
ZERO_ADDRESS = "0x" + "00" * 20

# Small round parameters so that test arithmetic is readable.
MAX_SUPPLY = 40
TIER_UP_TO = (5, 20, 40)
TIER_PRICES = (100, 200, 500)
WALLET_CAP = 12
TRANSFER_LOCK = 3600
MAX_PER_OPERATOR = 8
MAX_COMMISSION_BPS = 5_000
REWARD = 10_000  # wei per license per epoch
FUNDING = 10**9
VOTING_PERIOD = 600
TIMELOCK = 300
QUORUM_BPS = 2_500
EPOCH = 3_600  # seconds: delegations and commissions apply from the next epoch

deploy_alignment_module = load_script("deploy_alignment")


def deploy(owner: Any, project: Any, **overrides: Any) -> dict[str, Any]:
    """deploy_alignment with the small test parameters (overridable)."""
    params: dict[str, Any] = dict(
        max_supply=MAX_SUPPLY,
        tier_up_to=TIER_UP_TO,
        tier_prices=TIER_PRICES,
        wallet_cap=WALLET_CAP,
        transfer_lock=TRANSFER_LOCK,
        max_licenses_per_operator=MAX_PER_OPERATOR,
        max_commission_bps=MAX_COMMISSION_BPS,
        reward_per_license=REWARD,
        reward_funding=FUNDING,
        voting_period=VOTING_PERIOD,
        timelock_delay=TIMELOCK,
        quorum_bps=QUORUM_BPS,
        epoch_seconds=EPOCH,
    )
    params.update(overrides)
    return deploy_alignment_module.deploy_alignment(owner, project, **params)


def reverts(
    method: Any, *args: Any, error: str, sender: Any = None, value: int = 0, **expected: Any
) -> None:
    """Assert that `method(*args)` sent by `sender` reverts with custom error `error` whose named arguments
    include `expected` (one eth_call, see deaios.testing)."""
    testing.assert_reverts(method.contract, method.abis[0].name, *args, error=error, sender=sender,
                           value=value, **expected)


def price_of(token_id: int) -> int:
    """Sale price of token id `token_id` under the test tiers."""
    for up_to, price in zip(TIER_UP_TO, TIER_PRICES):
        if token_id <= up_to:
            return price
    raise ValueError(token_id)


def cost(first_id: int, quantity: int) -> int:
    """Price of tokens first_id .. first_id + quantity - 1."""
    return sum(price_of(i) for i in range(first_id, first_id + quantity))


def buy(license_: Any, buyer: Any, quantity: int) -> list[int]:
    """Buy `quantity` licenses at the quoted price; return their token ids."""
    first = license_.totalMinted() + 1
    license_.buy(quantity, sender=buyer, value=license_.quote(quantity))
    return list(range(first, first + quantity))


def time_travel(seconds: int) -> None:
    """Advance the chain clock: the next block's timestamp is now + seconds."""
    from ape import chain

    chain.pending_timestamp += seconds
    chain.mine()


def next_epoch(dlg: Any) -> int:
    """Move the chain's clock to the start of the next alignment epoch; that epoch."""
    from ape import chain

    start = dlg.epochStart(dlg.currentEpoch() + 1)
    if start > chain.pending_timestamp:
        chain.pending_timestamp = start
    chain.mine()
    return dlg.currentEpoch()


def record(rew: Any, dlg: Any, operator: Any, supervisor: Any) -> Any:
    """recordOperated for the current epoch, as supervision does."""
    return rew.recordOperated(dlg.currentEpoch(), operator, sender=supervisor)


def split(reward: int, bps: int) -> tuple[int, int]:
    """(owner share, operator commission) of one license's epoch reward."""
    commission = reward * bps // 10_000
    return reward - commission, commission


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="module")
def holders(accounts):
    """Accounts 1..5: license buyers and owners."""
    return accounts[1:6]


@pytest.fixture
def alice(holders):
    return holders[0]


@pytest.fixture
def bob(holders):
    return holders[1]


@pytest.fixture
def carol(holders):
    return holders[2]


@pytest.fixture(scope="module")
def ops(accounts):
    """Accounts 6..8: operators."""
    return accounts[6:9]


@pytest.fixture(scope="module")
def supervisor(accounts):
    """Account 9 stands in for the supervision contract (granted SUPERVISION_ROLE)."""
    return accounts[9]


@pytest.fixture(scope="module")
def deployment(admin, project, supervisor) -> dict[str, Any]:
    result = deploy(admin, project)
    rewards = project.AlignmentRewards.at(result["rewards"])
    rewards.grantRole(rewards.SUPERVISION_ROLE(), supervisor.address, sender=admin)
    return result


@pytest.fixture(scope="module")
def lic(deployment, project):
    return project.AlignmentLicense.at(deployment["license"])


@pytest.fixture(scope="module")
def dlg(deployment, project):
    return project.AlignmentDelegation.at(deployment["delegation"])


@pytest.fixture(scope="module")
def rew(deployment, project):
    return project.AlignmentRewards.at(deployment["rewards"])


@pytest.fixture(scope="module")
def gov(deployment, project):
    return project.AlignmentGovernor.at(deployment["governor"])


@pytest.fixture(scope="module")
def operator_setup(lic, dlg, ops):
    """Every operator owns one license and is registered with commission 1000 * (i + 1) bps; returns
    {operator address: its own token id}."""
    own = {}
    for i, op in enumerate(ops):
        (token,) = buy(lic, op, 1)
        dlg.registerOperator(1000 * (i + 1), sender=op)
        own[op.address] = token
    return own


@pytest.fixture
def op(ops, operator_setup):
    """The first operator (commission 1000 bps, registered by operator_setup)."""
    return ops[0]


__all__ = [
    "admin",
    "holders",
    "alice",
    "bob",
    "carol",
    "op",
    "ops",
    "supervisor",
    "deployment",
    "lic",
    "dlg",
    "rew",
    "gov",
    "operator_setup",
]


# the raw JSON-RPC access of the stateful tests lives in deaios.testing (the DA tests use it too)
Rpc = testing.ChainRpc
