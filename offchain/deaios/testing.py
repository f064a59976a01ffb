"""Support for the contract test suites (needs ape): simulate a transaction with one `eth_call` and check the
custom error it reverts with; compile and deploy small test-only contracts; size stateful audit campaigns.

ape's own `ape.reverts` renders a call trace for every reverting transaction (about 0.5 s each, up to a minute
for an error raised by a contract further down the call), which made the areas' suites too slow; one eth_call
and the selector table of the contract types take milliseconds.

`audit_settings` sizes the Hypothesis state machines of the audit (compute, market, …): short runs for
`make test`, and with `DEAIOS_AUDIT_STEPS=N` a campaign of at least N steps in all (`make audit`).
"""

from __future__ import annotations

import math
import os
from typing import Any

#: Environment variable: the total number of state-machine steps of an audit campaign.
AUDIT_STEPS_ENV = "DEAIOS_AUDIT_STEPS"

ZERO_ADDRESS = "0x" + "00" * 20


def revert_data(contract: Any, method: str, *args: Any, sender: Any = None, value: int = 0) -> bytes | None:
    """eth_call of `contract.method(*args)` from `sender` (an ape account, or the zero address): None when it
    would succeed, else its revert data (b"" when the revert carries none)."""
    from ape import chain
    from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

    call = {"from": sender.address if sender is not None else ZERO_ADDRESS, "to": contract.address,
            "value": value, "data": getattr(contract, method).encode_input(*args)}
    try:
        chain.provider.web3.eth.call(call)
    except (ContractCustomError, ContractLogicError, Web3RPCError) as exc:
        data = getattr(exc, "data", None)
        return bytes.fromhex(data[2:]) if isinstance(data, str) and data.startswith("0x") else b""
    return None


def revert_name(contract: Any, method: str, *args: Any, sender: Any = None, value: int = 0,
                source: Any = None) -> str | None:
    """None when `contract.method(*args)` would succeed, else the name of the custom error (declared by `source`,
    default `contract`) it reverts with (the raw data as 0x-hex when it is none of them)."""
    from eth_utils import keccak

    data = revert_data(contract, method, *args, sender=sender, value=value)
    if data is None:
        return None
    names = {keccak(text=e.selector)[:4]: e.name for e in (source or contract).contract_type.errors}
    return names.get(data[:4], "0x" + data.hex())


def assert_reverts(contract: Any, method: str, *args: Any, error: str, sender: Any = None, value: int = 0,
                   source: Any = None, **expected: Any) -> None:
    """`contract.method(*args)` from `sender` reverts with custom error `error` (declared by `source`, default
    `contract`) whose named arguments include `expected` (accounts and contracts compare by address)."""
    from eth_abi import decode
    from eth_utils import is_address, keccak, to_checksum_address

    data = revert_data(contract, method, *args, sender=sender, value=value)
    assert data is not None, f"{method}{args} did not revert (expected {error})"
    abi = next(e for e in (source or contract).contract_type.errors if e.name == error)
    assert data[:4] == keccak(text=abi.selector)[:4], f"{method}{args}: expected {abi.selector}, got 0x{data.hex()}"
    values = dict(zip([i.name for i in abi.inputs], decode([i.canonical_type for i in abi.inputs], data[4:])))
    for name, want in expected.items():
        want, got = getattr(want, "address", want), values[name]
        if isinstance(got, str) and is_address(got):
            got, want = to_checksum_address(got), to_checksum_address(want)
        assert got == want, f"{error}.{name}: {got!r} != {want!r}"


def compile_solidity(source: str, name: str) -> tuple[list, str]:
    """(abi, 0x-bytecode) of contract `name` in a Solidity `source` string, compiled with the project's solc
    (the solc-js shim registered for py-solc-x): test-only contracts (attackers, receivers) that do not belong
    in contracts/. About a second per call."""
    import solcx

    out = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {"Inline.sol": {"content": source}},
            "settings": {"outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
        },
        solc_version="0.8.30",
    )
    contract = out["contracts"]["Inline.sol"][name]
    return contract["abi"], "0x" + contract["evm"]["bytecode"]["object"]


def deploy_inline(source: str, name: str, sender: str, *args: Any) -> Any:
    """Compile `name` from `source` (see compile_solidity) and deploy it from Anvil's unlocked account
    `sender`; a web3 contract object."""
    from ape import chain

    w3 = chain.provider.web3
    abi, bytecode = compile_solidity(source, name)
    tx_hash = w3.eth.contract(abi=abi, bytecode=bytecode).constructor(*args).transact({"from": sender})
    address = w3.eth.wait_for_transaction_receipt(tx_hash).contractAddress
    return w3.eth.contract(address=address, abi=abi)


def audit_settings(max_examples: int, stateful_step_count: int) -> Any:
    """Hypothesis `settings` for a stateful audit machine: `max_examples` examples of at most
    `stateful_step_count` steps (the short default run), no deadline, function-scoped fixtures allowed.

    With `DEAIOS_AUDIT_STEPS=N` set (a positive int: the campaign's total of steps), the steps per example stay
    and the examples grow so that max_examples × stateful_step_count >= N, with a fifth more examples: Hypothesis
    ends some examples before their step count (a 10,000-step setting ran about 8,800 steps), so the steps
    actually run reach N."""
    from hypothesis import HealthCheck, settings

    total = os.environ.get(AUDIT_STEPS_ENV, "").strip()
    if total:
        try:
            steps = int(total)
        except ValueError:
            raise ValueError(f"{AUDIT_STEPS_ENV} must be an integer, got {total!r}") from None
        if steps <= 0:
            raise ValueError(f"{AUDIT_STEPS_ENV} must be positive, got {steps}")
        max_examples = max(1, math.ceil(1.2 * steps / stateful_step_count))
    return settings(
        max_examples=max_examples,
        stateful_step_count=stateful_step_count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.filter_too_much],
    )
