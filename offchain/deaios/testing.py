"""Support for the contract test suites (needs ape): simulate a transaction with one `eth_call` and check the
custom error it reverts with; compile and deploy small test-only contracts; `ChainRpc`, raw JSON-RPC access
for stateful tests; `audit_settings`, the Hypothesis settings of the stateful campaigns (short in `make test`,
long with $DEAIOS_AUDIT_STEPS).

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

from eth_abi import decode
from eth_utils import keccak, to_checksum_address

#: Environment variable: the total number of state-machine steps of an audit campaign.
AUDIT_STEPS_ENV = "DEAIOS_AUDIT_STEPS"

ZERO_ADDRESS = "0x" + "00" * 20


def revert_data(contract: Any, method: str, *args: Any, sender: Any = None, value: int = 0) -> bytes | None:
    """eth_call of `contract.method(*args)` from `sender` (an ape account, an address, or the zero address):
    None when it would succeed, else its revert data (b"" when the revert carries none)."""
    from ape import chain
    from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

    frm = ZERO_ADDRESS if sender is None else sender if isinstance(sender, str) else sender.address
    call = {"from": frm, "to": contract.address, "value": value, "data": getattr(contract, method).encode_input(*args)}
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
    and the examples grow so that max_examples × stateful_step_count >= N, with half as many again: Hypothesis
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
        max_examples = max(max_examples, math.ceil(1.5 * steps / stateful_step_count))
    return settings(
        max_examples=max_examples,
        stateful_step_count=stateful_step_count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )


def _abi_type(o: dict) -> str:
    """The canonical ABI type of a JSON ABI parameter (tuples spelled out)."""
    if o["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in o["components"]) + ")" + o["type"][5:]
    return o["type"]


class ChainRpc:
    """Thin raw-JSON-RPC access to deployed contracts for stateful tests and bulk set-ups: an eth_call learns a
    transaction's outcome (custom error name, or the return value), then the transaction is sent from an Anvil
    account that needs no key (a dev account, or any address after `impersonate`). Much cheaper per step than
    ape's transaction machinery. `contracts` maps short names to ape contract instances; the custom errors of
    all of them are decoded by name."""

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

    def impersonate(self, address: str, balance: int = 10**24) -> str:
        """Let transactions be sent from `address` without its key (Anvil), funded with `balance` wei."""
        address = to_checksum_address(address)
        self.rpc("anvil_impersonateAccount", [address])
        self.rpc("anvil_setBalance", [address, hex(balance)])
        return address

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

    def send_unchecked(self, contract: str, fn: str, *args: Any, sender: str, value: int = 0) -> str:
        """Send without simulating first (bulk set-ups); the transaction hash. `statuses` waits for it to be
        mined and tells whether it succeeded."""
        c = self.c[contract]
        tx = {"from": sender, "to": c.address, "value": hex(value), "data": c.encode_abi(fn, args=list(args)),
              "gas": hex(3_000_000)}
        sent = self.rpc("eth_sendTransaction", [tx])
        assert "result" in sent, sent
        return sent["result"]

    def statuses(self, tx_hashes: list[str]) -> list[bool]:
        """Whether each transaction succeeded: its receipt, in JSON-RPC batches until every one is mined (Anvil's
        automine usually has mined a transaction when eth_sendTransaction returns, not always on a busy machine)."""
        import time

        found: dict[str, dict] = {}
        deadline = time.monotonic() + 120
        while len(found) < len(set(tx_hashes)):
            missing = [h for h in dict.fromkeys(tx_hashes) if h not in found]
            replies = self.w3.provider.make_batch_request([("eth_getTransactionReceipt", [h]) for h in missing])
            found.update({h: r["result"] for h, r in zip(missing, replies) if r.get("result")})
            if len(found) < len(set(tx_hashes)):
                assert time.monotonic() < deadline, f"{len(missing)} transactions not mined within 120 s"
                time.sleep(0.05)
        return [int(found[h]["status"], 16) == 1 for h in tx_hashes]

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


class Outcomes:
    """What a state machine's steps reached: each outcome label counted (Hypothesis `event`s too, shown with
    `--hypothesis-show-statistics`), and `expect`, the check of a call's outcome against the model's prediction."""

    def __init__(self) -> None:
        from collections import Counter

        self.counts: Counter = Counter()
        self.steps = 0
        self.calls = 0

    def seen(self, label: str) -> None:
        from hypothesis import event
        from hypothesis.errors import InvalidArgument

        try:
            event(label)
        except InvalidArgument:  # a fixed sequence run outside Hypothesis
            pass
        self.counts[label] += 1

    def expect(self, what: str, ok: bool, res: Any, error: str | None) -> bool:
        """Assert that a call (`ok`, `res` = receipt or custom error name) went as predicted: success when
        `error` is None, else that custom error; whether it succeeded."""
        self.calls += 1
        self.seen(f"{what}: {error or 'ok'}")
        if error is None:
            assert ok, (what, res)
            return True
        assert not ok and res == error, (what, res, error)
        return False

    def report(self) -> str:
        return f"steps: {self.steps} ({self.calls} calls); coverage: {dict(sorted(self.counts.items()))}"
