"""Client side of AlignmentSupervision (and the Flow / DAEntrance events it needs): views and logs through web3,
transactions signed locally and sent by the DA client's generic sender (`DAChain.send`). Calldata comes from the
ABI signatures with eth_abi; a revert is reported with the contract's custom error name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from deaios._keccak import keccak256
from deaios.chain_time import connect
from deaios.da.chain import DAChain, DAChainError
from deaios.storage.node.logsync import SUBMIT_TOPIC, SubmitEvent, decode_submit

STORAGE, DA = 0, 1
KIND_NAMES = {STORAGE: "storage", DA: "da"}
RESULT_NAMES = {0: "none", 1: "pass", 2: "fail", 3: "inconclusive"}
NODE_TYPE = "(uint8,bool,bool,address,uint32,uint64,uint16,uint32,uint256,string)"
PROOF_TYPE = "(uint256,bytes,bytes32[])"  # (attempt, chunk, siblings)
EVIDENCE_TYPE = "(uint32[],bytes32)"  # (try offsets in seconds from the first, hash of the record of the tries)
PARAMS_TYPE = "(uint16,uint32,uint32,uint16,uint32)"
EMPTY_PROOF = (0, b"", [])
LOG_RANGE = 5000  # blocks per eth_getLogs call
EPOCH_OPENED_TOPIC = "0x" + keccak256(b"EpochOpened(uint256,bytes32,uint256)").hex()

_ERRORS = [
    "ZeroAddress()", "InvalidParams()", "TooManyNodes(uint256)", "BadUrl()", "UnknownNode(uint256)",
    "NodeInactive(uint256)", "NotNodeOperator(uint256,address)", "NotActiveOperator(address)",
    "EpochNotCurrent(uint256,uint256)", "EpochNotOpened(uint256)", "EpochNotOver(uint256)",
    "AlreadyAttested(uint256,uint256,address)", "UnknownSubmission(uint256)", "InvalidChunkProof(uint256,uint256)",
    "BatchTooLarge(uint256,uint256)", "BadChunkLength(uint256)", "ProofTooLong(uint256)",
    "PositionOutOfTree(uint256,uint256)", "EnforcedPause()", "NoErasureCode()", "NoChallenge(uint256,uint256)",
    "AlreadyChallengeFile(uint256)", "FileTooSmall(uint256,uint256,uint256)", "InsufficientEvidence(uint256,uint256)",
    "ResultsPending(uint256,uint256)", "StakeLocked(uint256,uint256)", "UnstakeNotRequested(uint256)",
    "NothingToWithdraw()", "AmountTooLarge(uint256,uint256)",
]
_ERROR_NAMES = {keccak256(e.encode())[:4]: e.split("(")[0] for e in _ERRORS}


class SupervisionChainError(RuntimeError):
    """A call or transaction was rejected (the message names the custom error) or the chain is unreachable."""


def _reason(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return _ERROR_NAMES.get(bytes.fromhex(data[2:10]), data)
    return str(exc)


@dataclass(frozen=True)
class SupervisedNode:
    """A node registered in AlignmentSupervision."""

    node_id: int
    kind: int
    active: bool
    flagged: bool
    operator: str
    failures: int
    stake: int
    url: str
    placement: int = 0  # a storage node's index in the erasure code

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, str(self.kind))


@dataclass(frozen=True)
class SupervisionParams:
    """AlignmentSupervision's parameters (`params()`)."""

    slash_bps: int
    min_weight: int
    unbonding_epochs: int
    min_fail_tries: int
    min_fail_span: int


class SupervisionChain:
    """One AlignmentSupervision contract, optionally with the key of an alignment operator."""

    def __init__(self, rpc: str, supervision: str, private_key: str | None = None, timeout: float = 60) -> None:
        self.w3 = connect(rpc, timeout)
        self.address = Web3.to_checksum_address(supervision)
        self.account = Account.from_key(private_key) if private_key else None
        self._sender = DAChain(rpc, self.address, private_key, receipt_timeout=timeout) if private_key else None

    # -- plumbing -------------------------------------------------------------------------------------
    def view(self, signature: str, types: Sequence[str] = (), args: Sequence[Any] = (),
             out: Sequence[str] = (), to: str | None = None, sender: str | None = None) -> tuple:
        """eth_call of `signature` (on the contract, or `to`), optionally as `sender` (to simulate a transaction)."""
        calldata = keccak256(signature.encode())[:4] + abi_encode(list(types), list(args))
        call: dict[str, Any] = {"to": to or self.address, "data": calldata}
        if sender:
            call["from"] = Web3.to_checksum_address(sender)
        try:
            raw = bytes(self.w3.eth.call(call))
        except (ContractCustomError, ContractLogicError, Web3RPCError) as exc:
            raise SupervisionChainError(f"{signature}: {_reason(exc)}") from exc
        except OSError as exc:
            raise SupervisionChainError(f"chain unreachable: {exc}") from exc
        return tuple(abi_decode(list(out), raw))

    def transact(self, signature: str, types: Sequence[str] = (), args: Sequence[Any] = ()) -> str:
        """Send a transaction to the contract, wait for it; its hash (raises if it reverts). The sending itself
        (nonce, EIP-1559 fees, receipt) is the DA client's generic `DAChain.send`."""
        if self._sender is None:
            raise SupervisionChainError("a private key is needed to send transactions")
        try:
            receipt = self._sender.send(self.address, signature, list(types), list(args))
        except DAChainError as exc:
            raise SupervisionChainError(f"{signature.split('(')[0]}: {_reason(exc.__cause__ or exc)}") from exc
        return "0x" + bytes(receipt["transactionHash"]).hex()

    @property
    def operator(self) -> str:
        if self.account is None:
            raise SupervisionChainError("no operator key")
        return self.account.address

    # -- views ----------------------------------------------------------------------------------------
    def current_epoch(self) -> int:
        return self.view("currentEpoch()", out=["uint256"])[0]

    def epoch_start(self, epoch: int) -> int:
        return self.view("epochStart(uint256)", ["uint256"], [epoch], ["uint256"])[0]

    def epoch_seconds(self) -> int:
        return self.view("epochSeconds()", out=["uint256"])[0]

    def params(self) -> SupervisionParams:
        return SupervisionParams(*self.view("params()", out=[PARAMS_TYPE])[0])

    def erasure_code(self) -> tuple[int, int]:
        """(n, k) of the storage network as registered ((0, 0) until set)."""
        return self.view("codeN()", out=["uint16"])[0], self.view("codeK()", out=["uint16"])[0]

    def delegation(self) -> str:
        return Web3.to_checksum_address(self.view("delegation()", out=["address"])[0])

    def weight(self, operator: str) -> int:
        """The licenses `operator` runs in the current epoch (its attestations' weight; 0: not active)."""
        return self.view("operatedCount(address)", ["address"], [operator], ["uint256"], to=self.delegation())[0]

    def challenge_files(self) -> list[int]:
        """The challenge pool: flow tx seqs, in pool order."""
        count = self.view("challengeFileCount()", out=["uint256"])[0]
        return [self.view("challengeFile(uint256)", ["uint256"], [i], ["uint256"])[0] for i in range(count)]

    def is_challenge_file(self, tx_seq: int) -> bool:
        return self.view("isChallengeFile(uint256)", ["uint256"], [tx_seq], ["bool"])[0]

    def challenge_of(self, epoch: int, node_id: int, attempt: int) -> tuple[bool, int, int, int]:
        """(ok, txSeq, chunk index, flow position) of a storage node's challenge, as the contract derives it."""
        return self.view("challengeOf(uint256,uint256,uint256)", ["uint256", "uint256", "uint256"],
                         [epoch, node_id, attempt], ["bool", "uint256", "uint256", "uint256"])

    def epoch_info(self, epoch: int) -> tuple[bytes, int]:
        """(seed, challenge pool size when opened); a zero seed means not opened yet."""
        seed, submissions = self.view("epochInfo(uint256)", ["uint256"], [epoch], ["(bytes32,uint256)"])[0]
        return bytes(seed), int(submissions)

    def flow(self) -> str:
        return Web3.to_checksum_address(self.view("flow()", out=["address"])[0])

    def nodes(self) -> list[SupervisedNode]:
        count = self.view("nodeCount()", out=["uint256"])[0]
        out = []
        for node_id in range(count):
            kind, active, flagged, operator, failures, _, placement, _, stake, url = self.view(
                "getNode(uint256)", ["uint256"], [node_id], [NODE_TYPE])[0]
            out.append(SupervisedNode(node_id, kind, active, flagged, Web3.to_checksum_address(operator), failures,
                                      stake, url, placement))
        return out

    def has_attested(self, epoch: int, node_id: int, operator: str) -> bool:
        return self.view("hasAttested(uint256,uint256,address)", ["uint256", "uint256", "address"],
                         [epoch, node_id, operator], ["bool"])[0]

    def tally(self, epoch: int, node_id: int) -> tuple[int, int, str]:
        """(passes, fails, result name) of a node in an epoch."""
        passes, fails, result = self.view("tallyOf(uint256,uint256)", ["uint256", "uint256"], [epoch, node_id],
                                          ["(uint32,uint32,uint8)"])[0]
        return passes, fails, RESULT_NAMES.get(result, str(result))

    def logs(self, address: str, topics: list, from_block: int) -> tuple[list[Any], int]:
        """Logs of `address` matching `topics` from `from_block` to the head; and the next block to scan."""
        try:
            head = self.w3.eth.block_number
            out: list[Any] = []
            for start in range(from_block, head + 1, LOG_RANGE):
                out += self.w3.eth.get_logs({"address": Web3.to_checksum_address(address), "topics": topics,
                                             "fromBlock": start, "toBlock": min(start + LOG_RANGE - 1, head)})
        except (OSError, Web3RPCError) as exc:
            raise SupervisionChainError(f"eth_getLogs: {exc}") from exc
        return out, head + 1

    def submit_events(self, flow: str, from_block: int) -> tuple[list[SubmitEvent], int]:
        """Flow `Submit` events from `from_block` to the head; and the next block to scan."""
        logs, next_block = self.logs(flow, [SUBMIT_TOPIC], from_block)
        return [decode_submit({"data": "0x" + bytes(e["data"]).hex(), "blockNumber": hex(e["blockNumber"])})
                for e in logs], next_block

    def opened_block(self, epoch: int, from_block: int = 0) -> int | None:
        """The block whose `openEpoch` fixed `epoch`'s seed (None if not opened)."""
        logs, _ = self.logs(self.address, [EPOCH_OPENED_TOPIC, "0x" + epoch.to_bytes(32, "big").hex()], from_block)
        return int(logs[0]["blockNumber"]) if logs else None

    # -- transactions ---------------------------------------------------------------------------------
    def open_epoch(self) -> str:
        return self.transact("openEpoch()")

    def attest_pass(self, epoch: int, node_id: int, proof: tuple = EMPTY_PROOF) -> str:
        """`proof` = (attempt, chunk, siblings) for a storage node (empty for a DA node)."""
        return self.transact(f"attestPass(uint256,uint256,{PROOF_TYPE})", ["uint256", "uint256", PROOF_TYPE],
                             [epoch, node_id, proof])

    def attest_fail(self, epoch: int, node_id: int, tries: Sequence[int], record: bytes) -> str:
        """`tries`: offsets in seconds of the tries from the first (0, increasing); `record`: the hash of the
        operator's record of them."""
        return self.transact(f"attestFail(uint256,uint256,{EVIDENCE_TYPE})", ["uint256", "uint256", EVIDENCE_TYPE],
                             [epoch, node_id, (list(tries), record)])

    def register_challenge_file(self, tx_seq: int) -> str:
        return self.transact("registerChallengeFile(uint256)", ["uint256"], [tx_seq])

    def finalize(self, epoch: int, node_ids: Sequence[int]) -> str:
        return self.transact("finalize(uint256,uint256[])", ["uint256", "uint256[]"], [epoch, list(node_ids)])
