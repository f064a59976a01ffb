"""Resumable deployment: every transaction of a deploy script goes through one `DeploymentSession`, which records
it in the deployment record (`deaios.deployment_record`) and skips it when a previous run already did it.

The areas' deploy functions (`scripts/deploy_<area>.py`) are written against ape's ordinary API —
`project.Flow.deploy(market.address, …, sender=deployer)`, `market.setFlow(flow.address, sender=deployer)` — and
stay that way: tests call them with ape's own project and accounts. `scripts/deploy.py` hands them
`session.project` instead, a thin wrapper in which

* `project.X.deploy(*args, sender=…, value=…)` is the step `<area>:X#n` (the n-th X of the area): if the record has
  it (same arguments) the recorded contract is returned, else the contract is deployed and recorded;
* `contract.method(*args, sender=…)` on any contract obtained through it (deployed, or `project.X.at(addr)`) is the
  step `<area>:<address>.method(args)#k`, skipped the same way; calls without `sender` (views) pass through
  unchanged.

So a change of a constructor argument or an extra wiring call in an area script needs nothing here, and a
re-run of an interrupted deployment continues where it stopped.

**Never twice.** A transaction is signed first; its hash, nonce and signed bytes go into the record's `pending`
entry (written to disk) and only then is it sent. A run that finds a `pending` entry (`resolve_pending`) asks
the chain: mined and successful → the step is recorded as done; reverted, or its nonce taken by another
transaction → the step is forgotten and runs again; neither → the very same signed bytes are broadcast again
(at most one of them can be mined, they share a nonce) and waited for — unless the node refuses them (their fee
is too low by now): then they were never sent and the step runs again, signed anew. A transaction the node
refuses when it is first sent is forgotten at once. A killed deploy therefore never deploys a contract twice,
whatever instant it was killed at.

**Gas.** `TxOptions` (the deploy command's `--gas-limit`, `--gas-price`, `--max-fee`, `--priority-fee`) are added
to every transaction; without them ape estimates the gas and uses the node's fee suggestion.

**Dry run.** The same session, pointed at a throw-away fork of the target chain and a scratch copy of the record,
runs the plan there (`deaios.deployment_dry_run`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import click

from deaios.deployment_record import DeploymentRecord, jsonable

RECEIPT_TIMEOUT = 300.0


class DeploymentError(click.ClickException):
    """A deployment that cannot continue as asked (exit code 1, one message)."""


@dataclass(frozen=True)
class TxOptions:
    """Gas settings added to every transaction of a deployment (None: ape's default)."""

    gas_limit: int | None = None
    gas_price: int | None = None  # a legacy (type 0) transaction at this price
    max_fee: int | None = None  # EIP-1559 fee cap per gas
    priority_fee: int | None = None  # EIP-1559 tip per gas

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.gas_limit is not None:
            out["gas"] = self.gas_limit
        if self.gas_price is not None:
            out["gas_price"] = self.gas_price
        if self.max_fee is not None:
            out["max_fee"] = self.max_fee
        if self.priority_fee is not None:
            out["max_priority_fee"] = self.priority_fee
        return out


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value if value.startswith("0x") else "0x" + value
    return "0x" + bytes(value).hex()


def _flat(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flat(v)]
    return [value]


def _unwrap(value: Any) -> Any:
    if isinstance(value, RecordingContract):
        return value.address
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_unwrap(v) for v in value)
    return value


class DeploymentSession:
    """Runs deploy steps against one chain and one record; see the module docstring."""

    def __init__(self, record: DeploymentRecord, account: Any, provider: Any, *, tx_options: TxOptions = TxOptions(),
                 log: Callable[[str], None] | None = None) -> None:
        self.record = record
        self.account = account
        self.provider = provider
        self.tx_options = tx_options
        self.log = log or (lambda message: click.echo(message, err=True))
        self.area_name = "main"
        self._counts: Counter[str] = Counter()
        self._names = {e["address"].lower(): sid.split(":", 1)[-1] for sid, e in record.deployments()}
        #: step ids sent by this run, in order (the dry run's plan)
        self.executed: list[str] = []

    # -- what the deploy functions see ----------------------------------------------------------------------
    def wrap(self, project: Any) -> RecordingProject:
        return RecordingProject(self, project)

    @contextlib.contextmanager
    def area(self, name: str) -> Iterator[None]:
        """Steps inside are named `<name>:…`."""
        previous, self.area_name = self.area_name, name
        try:
            yield
        finally:
            self.area_name = previous

    def area_steps(self, name: str) -> list[dict[str, Any]]:
        return [e for sid, e in self.record.steps.items() if sid.startswith(name + ":")]

    # -- consistency with the chain ---------------------------------------------------------------------------
    def check_chain(self) -> None:
        """The record belongs to this chain and its contracts are still there (a reset testnet is not resumed)."""
        recorded = self.record.chain_id
        if recorded is not None and recorded != self.provider.chain_id:
            raise DeploymentError(f"{self.record.path} records chain id {recorded}, but the node reports "
                                  f"{self.provider.chain_id}; use another --out-dir, or --fresh to start over")
        deployer = str(self.record.data.get("deployer") or "")
        if deployer and deployer.lower() != self.account.address.lower():
            raise DeploymentError(f"{self.record.path} was deployed by {deployer}, not {self.account.address}; "
                                  "resume it with the same --account, or --fresh to start over")
        for sid, entry in self.record.deployments():
            if not self._has_code(entry["address"]):
                raise DeploymentError(f"{sid} is recorded at {entry['address']}, but there is no code there "
                                      "(was the chain reset?); --fresh starts a new deployment")

    def _has_code(self, address: str) -> bool:
        code = self.provider.web3.eth.get_code(address)
        return bool(code) and bytes(code) != b""

    def resolve_pending(self, timeout: float = RECEIPT_TIMEOUT) -> None:
        """Settle the transaction a previous run signed but did not see mined (see the module docstring)."""
        pending = self.record.pending
        if not pending:
            return
        web3 = self.provider.web3
        tx_hash, step = pending["tx_hash"], pending["step"]
        receipt = self._receipt(tx_hash)
        if receipt is None and self._nonce_used(int(pending["nonce"])):
            receipt = self._receipt(tx_hash, tries=3)  # a node may index the receipt a moment after the nonce
            if receipt is None:
                self.log(f"{step}: its transaction {tx_hash} was replaced (nonce {pending['nonce']} is used); "
                         "it runs again")
                self.record.clear_pending()
                return
        if receipt is None:
            self.log(f"{step}: re-broadcasting the signed transaction {tx_hash} of the interrupted run")
            try:
                web3.eth.send_raw_transaction(pending["raw"])
            except Exception as exc:  # noqa: BLE001  ("already known" is fine; a refusal means it was never sent)
                if not self._known(tx_hash) and not self._nonce_used(int(pending["nonce"])):
                    self.log(f"{step}: the node refuses it ({exc}); it runs again")
                    self.record.clear_pending()
                    return
            deadline = time.monotonic() + timeout
            while receipt is None:
                if time.monotonic() > deadline:
                    raise DeploymentError(f"{step}: transaction {tx_hash} is neither mined nor replaced after "
                                          f"{timeout:.0f} s; re-run later (it is still recorded as pending)")
                if self._nonce_used(int(pending["nonce"])):
                    receipt = self._receipt(tx_hash, tries=3)
                    if receipt is None:
                        self.record.clear_pending()
                        return
                    break
                time.sleep(1.0)
                receipt = self._receipt(tx_hash)
        if int(receipt["status"]) != 1:
            self.log(f"{step}: its transaction {tx_hash} reverted; it runs again")
            self.record.clear_pending()
            return
        entry = dict(pending["entry"])
        entry.update(tx_hash=tx_hash, block_number=int(receipt["blockNumber"]), gas_used=int(receipt["gasUsed"]))
        if entry["kind"] == "deploy":
            entry["address"] = receipt["contractAddress"]
            self._names[entry["address"].lower()] = step.split(":", 1)[-1]
        self.record.finish_step(step, entry)
        self.log(f"{step}: mined before the interruption (block {entry['block_number']}); recorded")

    def _receipt(self, tx_hash: str, tries: int = 1) -> Any:
        from web3.exceptions import TransactionNotFound

        for attempt in range(tries):
            try:
                return self.provider.web3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                if attempt + 1 < tries:
                    time.sleep(2.0)
        return None

    def _known(self, tx_hash: str) -> bool:
        """Whether the node has the transaction (in its pool or mined)."""
        from web3.exceptions import TransactionNotFound

        try:
            self.provider.web3.eth.get_transaction(tx_hash)
            return True
        except TransactionNotFound:
            return False

    def _nonce_used(self, nonce: int) -> bool:
        return self.provider.web3.eth.get_transaction_count(self.account.address, "latest") > nonce

    # -- steps ------------------------------------------------------------------------------------------------
    def _next_id(self, base: str) -> str:
        n = self._counts[base]
        self._counts[base] += 1
        return f"{base}#{n}"

    def _check_sender(self, kwargs: dict[str, Any]) -> None:
        sender = kwargs.get("sender")
        if sender is not None and getattr(sender, "address", sender).lower() != self.account.address.lower():
            raise DeploymentError(f"a deploy step sends from {getattr(sender, 'address', sender)}, but this "
                                  f"deployment's account is {self.account.address}")

    def deploy(self, container: Any, args: tuple, kwargs: dict[str, Any]) -> RecordingContract:
        self._check_sender(kwargs)
        contract_type = container.contract_type
        args = _unwrap(args)
        value = int(kwargs.get("value") or 0)
        step = self._next_id(f"{self.area_name}:{contract_type.name}")
        done = self.record.steps.get(step)
        if done is not None:
            if done.get("args") != jsonable(args):
                replaced = self.record.replaced_addresses()
                if any(isinstance(a, str) and a.lower() in replaced for a in _flat(done.get("args"))):
                    raise DeploymentError(
                        f"{step} (at {done['address']}) was built on a contract that is being redeployed: redeploy "
                        f"its area too (--redeploy {self.area_name})")
                raise DeploymentError(
                    f"{step} was deployed at {done['address']} with arguments {done.get('args')}, but this run "
                    f"asks for {jsonable(args)}: re-run with the options of the first run, or --fresh")
            self.log(f"{step}: recorded at {done['address']} (block {done['block_number']}), skipped")
            return RecordingContract(self, container.at(done["address"]), step)
        entry = {"kind": "deploy", "contract_type": contract_type.name, "source_id": contract_type.source_id,
                 "args": jsonable(args), "value": value}
        txn = container(*args, sender=self.account, value=value, **self.tx_options.kwargs())
        receipt = self._send(step, entry, self.account.prepare_transaction(txn))
        address = receipt.contract_address
        if not address:
            raise DeploymentError(f"{step}: transaction {receipt.txn_hash} created no contract")
        entry.update(address=address, tx_hash=_hex(receipt.txn_hash), block_number=receipt.block_number,
                     gas_used=receipt.gas_used)
        self.record.finish_step(step, entry)
        self._names[address.lower()] = step.split(":", 1)[-1]
        self.log(f"{step}: deployed at {address} (block {receipt.block_number}, gas {receipt.gas_used})")
        return RecordingContract(self, container.at(address), step)

    def transact(self, contract: RecordingContract, method: str, handler: Any, args: tuple,
                 kwargs: dict[str, Any]) -> Any:
        self._check_sender(kwargs)
        args = _unwrap(args)
        value = int(kwargs.get("value") or 0)
        target = self._names.get(contract.address.lower(), contract.address)
        described = json.dumps(jsonable(args), separators=(",", ":"))[1:-1]
        # the id names the target by address: a redeployed contract (new address) is wired again
        step = self._next_id(f"{self.area_name}:{contract.address}.{method}({described})"
                             + (f"{{value={value}}}" if value else ""))
        label = f"{self.area_name}:{target}.{method}({described})"
        if step in self.record.steps:
            self.log(f"{label}: recorded, skipped")
            return None
        entry = {"kind": "call", "target": contract.address, "target_name": target, "method": method,
                 "args": jsonable(args), "value": value}
        txn = handler.as_transaction(*args, sender=self.account, value=value, **self.tx_options.kwargs())
        receipt = self._send(step, entry, txn)
        entry.update(tx_hash=_hex(receipt.txn_hash), block_number=receipt.block_number, gas_used=receipt.gas_used)
        self.record.finish_step(step, entry)
        self.log(f"{label}: done (block {receipt.block_number}, gas {receipt.gas_used})")
        return receipt

    def _send(self, step: str, entry: dict[str, Any], txn: Any) -> Any:
        """Sign, record as pending, send, wait for the receipt (ape raises on a revert)."""
        from ape.logging import logger

        with logger.at_level("ERROR"):  # an unlocked keyfile account warns "Using cached key" on every signature
            signed = self.account.sign_transaction(txn)
        if signed is None:
            raise DeploymentError(f"{step}: the account did not sign the transaction")
        tx_hash = _hex(signed.txn_hash)
        self.record.set_pending(step, entry, tx_hash, int(signed.nonce), _hex(signed.serialize_transaction()))
        self.executed.append(step)
        try:
            return self.provider.send_transaction(signed)
        except Exception:
            if not self._known(tx_hash):  # refused (fees, funds, …): nothing was sent, nothing is pending
                self.record.clear_pending()
                self.executed.pop()
            raise


class RecordingProject:
    """`project` as the deploy functions see it inside a session: contract containers record their deployments."""

    def __init__(self, session: DeploymentSession, project: Any) -> None:
        self._session = session
        self._project = project

    def __getattr__(self, name: str) -> Any:
        from ape.contracts import ContractContainer

        attr = getattr(self._project, name)
        return RecordingContainer(self._session, attr) if isinstance(attr, ContractContainer) else attr


class RecordingContainer:
    def __init__(self, session: DeploymentSession, container: Any) -> None:
        self._session = session
        self._container = container

    def deploy(self, *args: Any, **kwargs: Any) -> RecordingContract:
        return self._session.deploy(self._container, args, kwargs)

    def at(self, address: Any, *args: Any, **kwargs: Any) -> RecordingContract:
        instance = self._container.at(_unwrap(address), *args, **kwargs)
        found = self._session.record.step_at(instance.address)
        return RecordingContract(self._session, instance, found[0] if found else None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)


class RecordingContract:
    """A contract instance whose transactions (method calls with `sender=`) are session steps."""

    def __init__(self, session: DeploymentSession, instance: Any, step: str | None) -> None:
        self._session = session
        self._instance = instance
        self._step = step

    @property
    def address(self) -> str:
        return self._instance.address

    @property
    def creation_metadata(self) -> Any:
        """From the record (ape would otherwise search the chain for the creation transaction)."""
        entry = self._session.record.steps.get(self._step or "")
        if entry is None:
            return self._instance.creation_metadata
        receipt = SimpleNamespace(block_number=entry["block_number"], txn_hash=entry["tx_hash"])
        return SimpleNamespace(receipt=receipt, block=entry["block_number"], txn_hash=entry["tx_hash"],
                               deployer=self._session.account.address, factory=None)

    def __getattr__(self, name: str) -> Any:
        from ape.contracts.base import ContractCallHandler, ContractTransactionHandler

        attr = getattr(self._instance, name)
        if isinstance(attr, ContractTransactionHandler):
            return RecordingMethod(self._session, self, name, attr)
        if isinstance(attr, ContractCallHandler):
            return lambda *args, **kwargs: attr(*_unwrap(args), **kwargs)
        return attr

    def __repr__(self) -> str:
        return f"<recorded {self._instance!r}>"


class RecordingMethod:
    def __init__(self, session: DeploymentSession, contract: RecordingContract, name: str, handler: Any) -> None:
        self._session, self._contract, self._name, self._handler = session, contract, name, handler

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if "sender" not in kwargs:
            raise DeploymentError(f"{self._name}(…) inside a deployment needs sender= (the deployer)")
        return self._session.transact(self._contract, self._name, self._handler, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handler, name)
