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
from eth_abi import decode
from eth_utils import keccak, to_checksum_address

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


def _abi_type(o: dict) -> str:
    """The canonical ABI type of a JSON ABI parameter (tuples spelled out)."""
    if o["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in o["components"]) + ")" + o["type"][5:]
    return o["type"]


class Rpc:
    """Thin raw-JSON-RPC access to deployed contracts for the stateful test: an eth_call learns a
    transaction's outcome (custom error name, or the return value), then the transaction is sent from
    Anvil's unlocked dev account. Much cheaper per step than ape's transaction machinery."""

    def __init__(self, w3: Any, contracts: dict[str, Any]) -> None:
        self.w3 = w3
        self.c: dict[str, Any] = {}
        self.errors: dict[bytes, str] = {}
        self._encoded: dict[tuple, tuple] = {}
        for name, ape_contract in contracts.items():
            abi = [a.model_dump(mode="json", by_alias=True) for a in ape_contract.contract_type.abi]
            self.c[name] = w3.eth.contract(address=ape_contract.address, abi=abi)
            for err in ape_contract.contract_type.errors:
                self.errors[keccak(text=err.selector)[:4]] = err.name

    def rpc(self, method: str, params: list) -> Any:
        return self.w3.provider.make_request(method, params)

    def _try(self, contract: str, fn: str, args: tuple, sender: str, value: int) -> tuple[dict, str | None]:
        """The transaction, and the custom error name an eth_call of it reverts with (None: success)."""
        c = self.c[contract]
        tx = {"from": sender, "to": c.address, "value": hex(value), "data": c.encode_abi(fn, args=list(args))}
        res = self.rpc("eth_call", [tx, "latest"])
        if "error" not in res:
            return tx, None
        data = res["error"].get("data") or ""
        return tx, self.errors.get(bytes.fromhex(data[2:10]), data[:10]) if len(data) >= 10 else "revert"

    def send(self, contract: str, fn: str, *args: Any, sender: str, value: int = 0) -> tuple[bool, Any]:
        """(True, receipt) or (False, custom error name); the transaction is sent only when it succeeds."""
        tx, error = self._try(contract, fn, args, sender, value)
        if error is not None:
            return False, error
        sent = self.rpc("eth_sendTransaction", [{**tx, "gas": hex(3_000_000)}])
        assert "result" in sent, sent
        rcpt = self.w3.eth.wait_for_transaction_receipt(sent["result"], poll_latency=0.001)
        assert rcpt.status == 1, (contract, fn, args)
        return True, rcpt

    def error_of(self, contract: str, fn: str, *args: Any, sender: str) -> str | None:
        """The custom error name `fn` would revert with now, or None if it would succeed (eth_call only)."""
        return self._try(contract, fn, args, sender, 0)[1]

    def views(self, calls: list[tuple]) -> list:
        """Many eth_calls in one JSON-RPC batch: [(contract, fn, args), ...] -> decoded outputs."""
        requests, types = [], []
        for call in calls:
            if call not in self._encoded:  # web3's encoder is slow and the same reads repeat every step
                contract, fn, args = call
                c = self.c[contract]
                outs = c.get_function_by_name(fn).abi["outputs"]
                self._encoded[call] = (
                    {"to": c.address, "data": c.encode_abi(fn, args=list(args))},
                    [_abi_type(o) for o in outs],
                )
            tx, t = self._encoded[call]
            requests.append(("eth_call", [tx, "latest"]))
            types.append(t)
        results = self.w3.provider.make_batch_request(requests)
        out = []
        for res, t in zip(results, types):
            assert "result" in res, res
            values = [
                to_checksum_address(v) if typ == "address" else v
                for typ, v in zip(t, decode(t, bytes.fromhex(res["result"][2:])))
            ]
            out.append(values[0] if len(values) == 1 else values)
        return out

    def events(self, contract: str, name: str, rcpt: Any) -> list:
        from web3.logs import DISCARD

        return list(getattr(self.c[contract].events, name)().process_receipt(rcpt, errors=DISCARD))
