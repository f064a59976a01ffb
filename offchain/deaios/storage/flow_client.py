"""Client side of the Flow contract: submit a file's Submission paying the market fee.

Calldata is built from 0G's ABI signature (selector 0xbc8c11f8, the same as 0G's Flow) with eth_abi;
the transaction is signed locally with eth_account and sent through web3. The tx seq comes from the
receipt's Submit event, decoded by the same code the storage nodes' log sync uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from deaios.chain_time import connect
from deaios.eth import InsufficientFunds, TxSender
from deaios.storage.merkle import Submission, keccak256
from deaios.storage.node.logsync import SUBMIT_TOPIC, SubmitEvent, decode_submit

SUBMIT_SIGNATURE = "submit(((uint256,bytes,(bytes32,uint256)[]),address))"
SUBMIT_SELECTOR = keccak256(SUBMIT_SIGNATURE.encode())[:4]
PRICE_PER_SECTOR_SELECTOR = keccak256(b"pricePerSector()")[:4]
MARKET_SELECTOR = keccak256(b"market()")[:4]
FLOW_ROOT_SELECTOR = keccak256(b"getFlowRootByTxSeq(uint256)")[:4]


class FlowError(RuntimeError):
    """The chain rejected a submission (message says why) or could not be reached."""


@dataclass
class SubmitReceipt:
    """What a Submit event says, with its indexed fields."""

    sender: str
    identity: bytes
    event: SubmitEvent


@dataclass
class SubmitResult:
    tx_hash: str
    block: int
    gas_used: int
    fee: int
    event: SubmitEvent


class FlowClient:
    """Submits to one Flow contract with one private key."""

    def __init__(self, rpc: str, flow: str, private_key: str) -> None:
        self.rpc = rpc
        self.w3 = connect(rpc)
        self.flow = Web3.to_checksum_address(flow)
        self.account = Account.from_key(private_key)
        self.sender = TxSender(self.w3, private_key, gas_headroom=0, poll_latency=0.1)

    def _call(self, to: str, data: bytes) -> bytes:
        try:
            return bytes(self.w3.eth.call({"to": to, "data": data}))
        except OSError as exc:
            raise self._unreachable(exc) from exc
        except (Web3RPCError, ContractLogicError) as exc:
            raise FlowError(f"call to {to} failed: {exc}") from exc

    def _unreachable(self, exc: OSError, sent: bool = False) -> FlowError:
        reason = "connection refused" if "refused" in str(exc).lower() else str(exc)[:160]
        return FlowError(f"the chain RPC {self.rpc} is unreachable ({reason})" + (
            "; the submission may have been sent: run the upload again to resume (it finds the submission by its "
            "root and does not pay twice)" if sent else ""))

    def market(self) -> str:
        (address,) = abi_decode(["address"], self._call(self.flow, MARKET_SELECTOR))
        return Web3.to_checksum_address(address)

    def flow_root(self, tx_seq: int) -> bytes:
        """The flow's merkle root right after submission `tx_seq` (Flow.getFlowRootByTxSeq)."""
        return self._call(self.flow, FLOW_ROOT_SELECTOR + abi_encode(["uint256"], [tx_seq]))[:32]

    def submit_events(self, tx_hash: str) -> list[SubmitReceipt]:
        """The Submit events of one transaction, decoded."""
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        out = []
        for entry in receipt["logs"]:
            topics = [bytes(t) for t in entry["topics"]]
            if entry["address"].lower() == self.flow.lower() and topics[0].hex() == SUBMIT_TOPIC[2:]:
                event = decode_submit({"data": "0x" + bytes(entry["data"]).hex(),
                                       "blockNumber": hex(receipt["blockNumber"])})
                out.append(SubmitReceipt(Web3.to_checksum_address(topics[1][12:]), topics[2], event))
        return out

    def price_per_sector(self) -> int:
        (price,) = abi_decode(["uint256"], self._call(self.market(), PRICE_PER_SECTOR_SELECTOR))
        return int(price)

    def submit(self, submission: Submission) -> SubmitResult:
        """Send Flow.submit(submission) with fee = sectors × pricePerSector; wait for the receipt."""
        fee = submission.sectors * self.price_per_sector()
        (data, submitter) = submission.as_abi(self.account.address)
        calldata = SUBMIT_SELECTOR + abi_encode(["((uint256,bytes,(bytes32,uint256)[]),address)"],
                                                [(data, submitter)])
        try:
            tx_hash, receipt = self.sender.send(self.flow, calldata, fee)
        except OSError as exc:
            raise self._unreachable(exc, sent=True) from exc
        except InsufficientFunds as exc:
            raise FlowError(f"cannot pay for Flow.submit (fee {fee} wei): {exc.message}") from None
        except (Web3RPCError, ContractLogicError) as exc:
            raise FlowError(f"Flow.submit rejected: {exc}") from exc
        if receipt["status"] != 1:
            raise FlowError(f"Flow.submit reverted in tx 0x{tx_hash.hex()}")
        events = self.submit_events("0x" + bytes(tx_hash).hex())
        if events:
            return SubmitResult("0x" + bytes(tx_hash).hex(), receipt["blockNumber"], receipt["gasUsed"], fee,
                                events[0].event)
        raise FlowError("the transaction succeeded but emitted no Submit event")
