"""Client side of the compute contracts (ComputeLedger, ServiceRegistry, ComputeMatcher): calls and locally
signed transactions through web3, custom errors decoded into readable messages.

The ABIs are in `abi.json` (exported from the compiled contracts; `tests/compute/offchain` checks they are
current). Addresses come from a stack.json's `contracts` (keys `ledger`, `registry`, `matcher`,
`fine_tuning`, or the same with a `compute_` prefix) or a `deployments/<network>-compute.json`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak, to_checksum_address
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from deaios.abi import ContractAbis
from deaios.chain_time import connect
from deaios.compute.receipts import Receipt, SettlementStatus
from deaios.eth import InsufficientFunds, TxSender

CONTRACTS = ("ComputeLedger", "ServiceRegistry", "ComputeMatcher", "FineTuningServing")
ABIS = ContractAbis(Path(__file__).with_name("abi.json"), CONTRACTS)
INFERENCE, FINE_TUNING = 0, 1
ZERO_ADDRESS = "0x" + "00" * 20


class ComputeError(RuntimeError):
    """The chain rejected a call (message names the contract's custom error) or could not be reached."""


def load_abis() -> dict[str, list]:
    return ABIS.abis


def decode_error(data: str | bytes | None) -> str:
    """'Name(arg=value, ...)' for custom-error revert data, else a short hex form."""
    return ABIS.decode_error(data)


@dataclass(frozen=True)
class ComputeAddresses:
    ledger: str
    registry: str
    matcher: str
    fine_tuning: str | None = None

    @classmethod
    def from_mapping(cls, d: dict[str, Any]) -> ComputeAddresses:
        def get(key: str) -> str | None:
            value = d.get(key) or d.get(f"compute_{key}")
            return to_checksum_address(value) if value else None

        ledger, registry, matcher = get("ledger"), get("registry"), get("matcher")
        if not (ledger and registry and matcher):
            raise ComputeError(
                "no compute contracts in this deployment (need ledger, registry and matcher "
                "addresses: deploy them with `ape run deploy_compute`)"
            )
        return cls(ledger, registry, matcher, get("fine_tuning"))

    @classmethod
    def from_file(cls, path: Path) -> ComputeAddresses:
        return cls.from_mapping(json.loads(Path(path).read_text()))


@dataclass
class Service:
    provider: str
    service_type: int
    model: str
    url: str
    gpu_type: str
    gpu_count: int
    memory_mib: int
    input_price: int
    output_price: int
    verifiability: str
    signer: str
    additional_info: str
    stake: int
    active: bool
    #: an announced price increase: billed from `next_price_at` on (0: none pending)
    next_input_price: int = 0
    next_output_price: int = 0
    next_price_at: int = 0

    @property
    def listed_prices(self) -> tuple[int, int]:
        """The prices the provider set (a pending increase included): what matching uses."""
        if self.next_price_at:
            return self.next_input_price, self.next_output_price
        return self.input_price, self.output_price

    def to_json(self) -> dict:
        pending = (
            {"nextInputPrice": self.next_input_price, "nextOutputPrice": self.next_output_price,
             "nextPriceAt": self.next_price_at} if self.next_price_at else {}
        )
        return {
            "provider": self.provider,
            "type": "inference" if self.service_type == INFERENCE else "fine-tuning",
            "model": self.model,
            "url": self.url,
            "gpuType": self.gpu_type,
            "gpuCount": self.gpu_count,
            "memoryMiB": self.memory_mib,
            "inputPrice": self.input_price,
            "outputPrice": self.output_price,
            "verifiability": self.verifiability,
            "signer": self.signer,
            "stake": self.stake,
            "active": self.active,
            **pending,
        }


@dataclass
class SubAccount:
    balance: int
    pending_refund: int
    refund_unlock_at: int
    nonce: int
    charged: int
    tee_signer: str

    def to_json(self) -> dict:
        return {
            "balance": self.balance,
            "pendingRefund": self.pending_refund,
            "refundUnlockAt": self.refund_unlock_at,
            "nonce": self.nonce,
            "charged": self.charged,
            "teeSigner": self.tee_signer,
        }


class ComputeChain:
    """The compute contracts as seen by one account (`private_key`; calls work without one)."""

    def __init__(self, rpc: str, addresses: ComputeAddresses, private_key: str | None = None) -> None:
        self.w3 = connect(rpc)
        self.addresses = addresses
        abis = load_abis()
        self.ledger = self.w3.eth.contract(address=addresses.ledger, abi=abis["ComputeLedger"])
        self.registry = self.w3.eth.contract(address=addresses.registry, abi=abis["ServiceRegistry"])
        self.matcher = self.w3.eth.contract(address=addresses.matcher, abi=abis["ComputeMatcher"])
        self.account = Account.from_key(private_key) if private_key else None
        self._sender = TxSender(self.w3, private_key, gas_margin=1.3) if private_key else None

    @property
    def address(self) -> str:
        if self.account is None:
            raise ComputeError("this command needs a private key")
        return self.account.address

    @functools.cached_property
    def chain_id(self) -> int:
        return self._sender.chain_id if self._sender else int(self.w3.eth.chain_id)

    # --- plumbing -----------------------------------------------------------------------------------
    def _call(self, fn: Any, sender: str | None = None) -> Any:
        try:
            return fn.call({"from": sender} if sender else {})
        except ContractCustomError as exc:
            raise ComputeError(decode_error(exc.data)) from None
        except (ContractLogicError, Web3RPCError, OSError) as exc:
            raise ComputeError(f"call failed: {exc}") from exc

    def _send(self, fn: Any, value: int = 0) -> Any:
        """Sign and send a contract call from the account (the shared `deaios.eth.TxSender`); the receipt
        (raises ComputeError on revert or when the account cannot pay, with the figures)."""
        self.address  # noqa: B018 - a ComputeError without a key
        try:
            tx_hash, receipt = self._sender.send_call(fn, value)  # type: ignore[union-attr]
        except ContractCustomError as exc:
            raise ComputeError(decode_error(exc.data)) from None
        except InsufficientFunds as exc:
            raise ComputeError(exc.message) from None
        except (ContractLogicError, Web3RPCError, OSError) as exc:
            raise ComputeError(f"transaction failed: {exc}") from exc
        if receipt["status"] != 1:
            raise ComputeError(f"transaction {tx_hash.hex()} reverted")
        return receipt

    def _events(self, contract: Any, name: str, receipt: Any) -> list:
        from web3.logs import DISCARD

        return list(getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD))

    # --- ledger: reads ------------------------------------------------------------------------------
    def get_ledger(self, user: str) -> tuple[int, int]:
        available, reserved = self._call(self.ledger.functions.getLedger(to_checksum_address(user)))
        return int(available), int(reserved)

    def get_account(self, user: str, provider: str) -> SubAccount:
        r = self._call(
            self.ledger.functions.getAccount(to_checksum_address(user), to_checksum_address(provider))
        )
        return SubAccount(*[int(x) for x in r[:5]], to_checksum_address(r[5]))

    def earnings(self, provider: str) -> int:
        return int(self._call(self.ledger.functions.earnings(to_checksum_address(provider))))

    def params(self) -> dict[str, int]:
        f = self.ledger.functions
        return {
            "lockTime": int(self._call(f.lockTime())),
            "minDeposit": int(self._call(f.minDeposit())),
            "minTransfer": int(self._call(f.minTransfer())),
        }

    # --- ledger: users ------------------------------------------------------------------------------
    def deposit(self, amount: int) -> Any:
        return self._send(self.ledger.functions.depositFund(), value=amount)

    def withdraw(self, amount: int) -> Any:
        return self._send(self.ledger.functions.refund(amount))

    def transfer(self, provider: str, amount: int) -> Any:
        return self._send(self.ledger.functions.transferFund(to_checksum_address(provider), amount))

    def request_refund(self, provider: str, amount: int) -> Any:
        return self._send(self.ledger.functions.requestRefund(to_checksum_address(provider), amount))

    def collect_refund(self, provider: str) -> int:
        receipt = self._send(self.ledger.functions.collectRefund(to_checksum_address(provider)))
        return sum(e.args.amount for e in self._events(self.ledger, "RefundCollected", receipt))

    def acknowledge_signer(self, provider: str, signer: str) -> Any:
        return self._send(
            self.ledger.functions.acknowledgeSigner(
                to_checksum_address(provider), to_checksum_address(signer)
            )
        )

    # --- ledger: providers ----------------------------------------------------------------------------
    def settle(self, receipts: list[Receipt]) -> list[dict]:
        """settleFees(receipts) sent by the account (the provider); per receipt: status, paid, unpaid."""
        receipt = self._send(self.ledger.functions.settleFees([r.as_abi() for r in receipts]))
        out = []
        for e in self._events(self.ledger, "ReceiptSettled", receipt):
            out.append(
                {
                    "user": e.args.user,
                    "nonce": e.args.nonce,
                    "status": SettlementStatus(e.args.status).name,
                    "paid": e.args.paid,
                    "unpaid": e.args.unpaid,
                }
            )
        return out

    def preview_settle(self, receipts: list[Receipt]) -> list[SettlementStatus]:
        out = self._call(
            self.ledger.functions.settleFees([r.as_abi() for r in receipts]), sender=self.address
        )
        return [SettlementStatus(s) for s in out]

    def withdraw_earnings(self, to: str | None = None) -> int:
        receipt = self._send(self.ledger.functions.withdrawEarnings(to_checksum_address(to or self.address)))
        return sum(e.args.amount for e in self._events(self.ledger, "EarningsWithdrawn", receipt))

    # --- registry ---------------------------------------------------------------------------------
    def service(self, provider: str) -> Service | None:
        provider = to_checksum_address(provider)
        if not self._call(self.registry.functions.serviceExists(provider)):
            return None
        s = self._call(self.registry.functions.getService(provider))
        return Service(
            provider=to_checksum_address(s[0]),
            service_type=int(s[1]),
            model=s[2],
            url=s[3],
            gpu_type=s[4],
            gpu_count=int(s[5]),
            memory_mib=int(s[6]),
            input_price=int(s[7]),
            output_price=int(s[8]),
            verifiability=s[9],
            signer=to_checksum_address(s[10]),
            additional_info=s[11],
            stake=int(s[12]),
            active=bool(s[15]),
            next_input_price=int(s[16]),
            next_output_price=int(s[17]),
            next_price_at=int(s[18]),
        )

    def services(self) -> list[Service]:
        count = int(self._call(self.registry.functions.serviceCount()))
        providers: list[str] = []
        for offset in range(0, count, 100):
            providers += self._call(self.registry.functions.getProviders(offset, 100))
        return [s for s in (self.service(p) for p in providers) if s is not None]

    def list_key(self, service_type: int, model: str) -> bytes:
        return bytes(self._call(self.registry.functions.listKeyOf(service_type, model)))

    def register_service(
        self,
        *,
        model: str,
        url: str,
        input_price: int,
        output_price: int,
        service_type: int = INFERENCE,
        gpu_type: str = "",
        gpu_count: int = 0,
        memory_mib: int = 0,
        verifiability: str = "",
        signer: str = ZERO_ADDRESS,
        additional_info: str = "",
    ) -> str:
        """Register (staking minStake) or update the account's service; 'registered'/'updated'/'unchanged'."""
        params = (
            service_type,
            model,
            url,
            gpu_type,
            gpu_count,
            memory_mib,
            input_price,
            output_price,
            verifiability,
            to_checksum_address(signer),
            additional_info,
        )
        current = self.service(self.address)
        if (
            current is not None
            and (
                current.service_type,
                current.model,
                current.url,
                current.gpu_type,
                current.gpu_count,
                current.memory_mib,
                *current.listed_prices,
                current.verifiability,
                current.signer,
                current.additional_info,
            )
            == params
        ):
            return "unchanged"
        key = self.list_key(service_type, model)
        hint = self._call(
            self.registry.functions.findInsertHint(key, input_price, output_price, self.address)
        )
        stake = 0 if current is not None else int(self._call(self.registry.functions.minStake()))
        self._send(self.registry.functions.addOrUpdateService(params, hint), value=stake)
        return "updated" if current is not None else "registered"

    def remove_service(self) -> Any:
        return self._send(self.registry.functions.removeService())

    # --- matcher ----------------------------------------------------------------------------------
    def request_service(
        self,
        *,
        model: str,
        deposit: int,
        service_type: int = INFERENCE,
        min_gpu_count: int = 0,
        min_memory_mib: int = 0,
        max_input_price: int = 2**128 - 1,
        max_output_price: int = 2**128 - 1,
        value: int = 0,
    ) -> dict:
        """Request a match. The scan starts at the first qualifying service (`findFirstMatch`, computed here
        with an unbounded eth_call), so services that never qualify cannot hide it."""
        key = self.list_key(service_type, model)
        start = self._call(
            self.registry.functions.findFirstMatch(key, min_gpu_count, min_memory_mib, max_input_price,
                                                   max_output_price)
        )
        req = (service_type, model, min_gpu_count, min_memory_mib, max_input_price, max_output_price, deposit,
               start)
        receipt = self._send(self.matcher.functions.requestService(req), value=value)
        (ev,) = self._events(self.matcher, "ServiceMatched", receipt)
        return {
            "requestId": ev.args.requestId,
            "provider": ev.args.provider,
            "deposit": ev.args.deposit,
            "inputPrice": ev.args.inputPrice,
            "outputPrice": ev.args.outputPrice,
            "declineDeadline": ev.args.declineDeadline,
            "txHash": "0x" + bytes(receipt["transactionHash"]).hex(),
        }

    def get_request(self, request_id: int) -> dict:
        r = self._call(self.matcher.functions.getRequest(request_id))
        status = ["None", "Matched", "Accepted", "Cancelled", "Unmatched"][int(r[2])]
        return {
            "requestId": request_id,
            "user": r[0],
            "provider": r[1],
            "status": status,
            "deposit": int(r[3]),
            "declineDeadline": int(r[4]),
            "declines": int(r[5]),
            "matchedInputPrice": int(r[12]),
            "matchedOutputPrice": int(r[13]),
        }

    def prices(self, provider: str) -> tuple[int, int]:
        """The prices `provider` bills now (an announced increase applies only from its date)."""
        i, o = self._call(self.registry.functions.pricesOf(to_checksum_address(provider)))
        return int(i), int(o)

    def accept_match(self, request_id: int) -> Any:
        return self._send(self.matcher.functions.acceptMatch(request_id))

    def decline_match(self, request_id: int) -> Any:
        return self._send(self.matcher.functions.declineMatch(request_id))

    def finalize_match(self, request_id: int) -> Any:
        return self._send(self.matcher.functions.finalizeMatch(request_id))

    def cancel_request(self, request_id: int) -> Any:
        return self._send(self.matcher.functions.cancelRequest(request_id))

    def matches_for(self, provider: str, from_block: int, to_block: int | str = "latest") -> list[int]:
        """Ids of requests matched to `provider` (ServiceMatched events) in a block range."""
        topic0 = (
            "0x"
            + keccak(text="ServiceMatched(uint256,address,address,uint256,uint256,uint256,uint256)").hex()
        )
        topic3 = "0x" + "00" * 12 + to_checksum_address(provider)[2:].lower()
        logs = self.w3.eth.get_logs(
            {
                "address": self.addresses.matcher,
                "fromBlock": from_block,
                "toBlock": to_block,
                "topics": [topic0, None, None, topic3],
            }
        )
        return [int.from_bytes(bytes(log["topics"][1]), "big") for log in logs]
