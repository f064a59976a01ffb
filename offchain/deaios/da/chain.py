"""Client side of the DA contracts (DAEntrance + DASigners) for DA nodes and clients.

Calldata is built from the ABI signatures with eth_abi (the same selectors as 0G's contracts); transactions are
signed locally with eth_account and sent through web3. A custom error in a revert is reported by name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, Web3RPCError

from deaios._keccak import keccak256
from deaios.chain_time import connect
from deaios.da import bls
from deaios.da.quorums import Quorum
from deaios.eth import InsufficientFunds, TxSender

G1 = "(uint256,uint256)"
G2 = "(uint256[2],uint256[2])"
SIGNER_DETAIL = f"(address,string,{G1},{G2})"
SUBMISSION = f"(bytes32,uint256,uint256,{G1},bytes,{G2},{G1})"
DATA_UPLOAD_TOPIC = keccak256(b"DataUpload(address,bytes32,uint256,uint256,uint256)")
VERIFIED_TOPIC = keccak256(b"ErasureCommitmentVerified(bytes32,uint256,uint256)")

#: custom errors of both contracts, by selector (for messages)
_ERRORS = [
    "InvalidSignature()", "AggregateKeyMismatch()", "InsufficientSignedRows(uint256,uint256)",
    "UnknownEpoch(uint256,uint256)", "UnknownQuorum(uint256,uint256)", "BadBitmapLength(uint256,uint256)",
    "BitmapPaddingNotZero()", "InconsistentBitmap(uint256,uint256,uint256)", "PointNotOnCurve(uint256,uint256)",
    "InvalidG2Point()", "SignerExists(address)", "PubkeyInUse(address)", "InvalidProofOfPossession(address)",
    "InvalidEpochSignature(address,uint256)", "AlreadyRegistered(address,uint256)",
    "NotEligibleToVote(address,uint256,uint256)", "EpochFull(uint256,uint256)", "EpochExpired(uint256,uint256)",
    "RegistrationClosed(uint256,uint256)", "StakeLocked(address,uint256)", "NotEquivocation()",
    "InvalidEvidence(address)", "NothingToSlash(address)", "PrecompileFailed()",
    "FeeMismatch(uint256,uint256)", "NoDataRoots()", "NoDASigners(uint256)", "SignerNotFound(address)",
    "SenderNotSigner(address,address)", "CommitmentNotFound(bytes32,uint256,uint256)", "EnforcedPause()",
]
ERROR_NAMES = {keccak256(e.encode())[:4]: e for e in _ERRORS}


def _sel(signature: str) -> bytes:
    return keccak256(signature.encode())[:4]


class DAChainError(RuntimeError):
    """A call or transaction was rejected (the message names the contract's custom error) or failed."""


def _explain(exc: Exception) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        name = ERROR_NAMES.get(bytes.fromhex(data[2:10]))
        if name:
            return name
    return str(exc)


_SOCKET = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]{1,253})):(?P<port>[0-9]{1,5})$")


def is_local_url(url: str) -> bool:
    """Whether `url` points at this machine (a local stack: its chain RPC is on loopback)."""
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def socket_url(socket: str, allow_local: bool = False) -> str:
    """`http://host:port` for a signer's registered socket, which any staked signer sets freely on chain;
    ValueError unless it is exactly `host:port` (no scheme, path or credentials, so it cannot aim our POSTs
    anywhere else) with a public host — loopback and private addresses only when `allow_local` (the stack
    itself is local), link-local and unspecified addresses never (cloud metadata services live there)."""
    match = _SOCKET.match(socket)
    if not match or not 0 < int(match["port"]) < 65536:
        raise ValueError(f"signer socket {socket[:80]!r} is not host:port")
    host = match["v6"] or match["host"]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host.lower().rstrip(".") in ("localhost", "localhost.localdomain") and not allow_local:
            raise ValueError(f"signer socket {socket!r} is local") from None
        return f"http://{socket}"
    if ip.is_link_local or ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        raise ValueError(f"signer socket {socket!r}: not a unicast address")
    if (ip.is_loopback or ip.is_private) and not allow_local:
        raise ValueError(f"signer socket {socket!r} is local or private")
    return f"http://{socket}"


@dataclass(frozen=True)
class SignerInfo:
    address: str
    socket: str
    pk_g1: bls.G1Point
    pk_g2: bls.G2Point

    def url(self, allow_local: bool = False) -> str:
        """The signer's HTTP endpoint (`socket_url`): ValueError for a socket we will not contact."""
        return socket_url(self.socket, allow_local)


@dataclass(frozen=True)
class Upload:
    data_root: bytes
    epoch: int
    quorum_id: int
    tx_hash: str


class DAChain:
    """One DAEntrance (and its DASigners), optionally with a key to send transactions."""

    def __init__(self, rpc: str, entrance: str, private_key: str | None = None, receipt_timeout: float = 120) -> None:
        self.w3 = connect(rpc)
        self.local = is_local_url(rpc)  # signer sockets on loopback are fine only for a local stack
        self.receipt_timeout = receipt_timeout
        self.entrance = Web3.to_checksum_address(entrance)
        self.account = Account.from_key(private_key) if private_key else None
        self._signers: str | None = None
        self._chain_id: int | None = None
        self._quorums: dict[tuple[int, int], Quorum] = {}
        self._sender = TxSender(self.w3, private_key, receipt_timeout=receipt_timeout, poll_latency=0.1) \
            if private_key else None  # nonce → signed → sent is atomic across threads

    # ------------------------------------------------------------ plumbing

    def call(self, to: str, signature: str, types: Sequence[str] = (), args: Sequence[Any] = (),
             out: Sequence[str] = ()) -> tuple:
        data = _sel(signature) + (abi_encode(list(types), list(args)) if types else b"")
        try:
            raw = bytes(self.w3.eth.call({"to": to, "data": data}))
        except (ContractCustomError, ContractLogicError, Web3RPCError) as exc:
            raise DAChainError(f"{signature}: {_explain(exc)}") from exc
        except OSError as exc:
            raise DAChainError(f"{signature}: chain unreachable: {exc}") from exc
        return tuple(abi_decode(list(out), raw)) if out else ()

    def send(self, to: str, signature: str, types: Sequence[str], args: Sequence[Any], value: int = 0) -> Any:
        """Send a transaction (the shared `deaios.eth.TxSender`) and wait for its receipt (raises DAChainError if
        it reverts, or with the figures when the account cannot pay)."""
        if self._sender is None:
            raise DAChainError("no private key to send transactions")
        data = _sel(signature) + abi_encode(list(types), list(args))
        name = signature.split('(')[0]
        try:
            tx_hash, receipt = self._sender.send(to, data, value)
        except (ContractCustomError, ContractLogicError, Web3RPCError) as exc:
            raise DAChainError(f"{name}: {_explain(exc)}") from exc
        except InsufficientFunds as exc:
            raise DAChainError(f"{name}: {exc.message}") from None
        except (OSError, TimeExhausted) as exc:
            raise DAChainError(f"{name}: {exc}") from exc
        if receipt["status"] != 1:
            raise DAChainError(f"{name} reverted in tx 0x{tx_hash.hex()}")
        return receipt

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    @property
    def signers(self) -> str:
        if self._signers is None:
            (addr,) = self.call(self.entrance, "signers()", out=["address"])
            self._signers = Web3.to_checksum_address(addr)
        return self._signers

    # ------------------------------------------------------------ registry views

    def epoch_number(self) -> int:
        return self.call(self.signers, "epochNumber()", out=["uint256"])[0]

    def params(self) -> dict[str, int]:
        (p,) = self.call(self.signers, "params()", out=["(uint256,uint256,uint256,uint256,uint256)"])
        return dict(zip(("tokensPerVote", "maxVotesPerSigner", "maxQuorums", "epochBlocks", "encodedSlices"), p))

    def is_signer(self, address: str) -> bool:
        return self.call(self.signers, "isSigner(address)", ["address"], [address], ["bool"])[0]

    def registered_epoch(self, address: str, epoch: int) -> bool:
        return self.call(self.signers, "registeredEpoch(address,uint256)", ["address", "uint256"],
                         [address, epoch], ["bool"])[0]

    def quorum_count(self, epoch: int) -> int:
        return self.call(self.signers, "quorumCount(uint256)", ["uint256"], [epoch], ["uint256"])[0]

    def quorum(self, epoch: int, quorum_id: int) -> Quorum:
        """Members and row ends of a quorum (immutable once made, so cached)."""
        key = (epoch, quorum_id)
        if key not in self._quorums:
            members, ends, _ = self.call(self.signers, "getQuorumMembers(uint256,uint256)", ["uint256", "uint256"],
                                         [epoch, quorum_id], ["address[]", "uint256[]", G1])
            self._quorums[key] = Quorum(tuple(Web3.to_checksum_address(m) for m in members),
                                        tuple(int(e) for e in ends))
        return self._quorums[key]

    def signer_infos(self, addresses: Sequence[str]) -> list[SignerInfo]:
        (details,) = self.call(self.signers, "getSigner(address[])", ["address[]"], [list(addresses)],
                               [f"{SIGNER_DETAIL}[]"])
        return [SignerInfo(Web3.to_checksum_address(d[0]), d[1], (int(d[2][0]), int(d[2][1])),
                           bls.g2_from_signer_order(d[3][0], d[3][1])) for d in details]

    # ------------------------------------------------------------ registry transactions

    def register_signer(self, key: bls.BLSKey, socket: str, stake: int) -> Any:
        assert self.account is not None
        detail = (self.account.address, socket, key.pk_g1, bls.g2_signer_order(key.pk_g2))
        pop = key.pop(self.account.address, self.chain_id)
        return self.send(self.signers, f"registerSigner({SIGNER_DETAIL},{G1})", [SIGNER_DETAIL, G1],
                         [detail, pop], value=stake)

    def registration_closes_at(self) -> int:
        """The block from which registration for the next epoch is closed."""
        return self.call(self.signers, "registrationClosesAt()", out=["uint256"])[0]

    def epoch_seed(self, epoch: int) -> bytes:
        return bytes(self.call(self.signers, "epochSeed(uint256)", ["uint256"], [epoch], ["bytes32"])[0])

    def register_next_epoch(self, key: bls.BLSKey) -> Any:
        assert self.account is not None
        epoch = self.epoch_number() + 1
        sig = key.sign(bls.epoch_digest(self.account.address, epoch, self.chain_id))
        return self.send(self.signers, f"registerNextEpoch({G1})", [G1], [sig])

    def update_socket(self, socket: str) -> Any:
        return self.send(self.signers, "updateSocket(string)", ["string"], [socket])

    def force_make_epoch(self) -> Any:
        return self.send(self.signers, "forceMakeEpoch()", [], [])

    # ------------------------------------------------------------ entrance

    def blob_price(self) -> int:
        return self.call(self.entrance, "blobPrice()", out=["uint256"])[0]

    def epoch_window(self) -> int:
        return self.call(self.entrance, "epochWindowSize()", out=["uint256"])[0]

    def is_epoch_expired(self, epoch: int) -> bool:
        return self.call(self.entrance, "isEpochExpired(uint256)", ["uint256"], [epoch], ["bool"])[0]

    def commitment_exists(self, data_root: bytes, epoch: int, quorum_id: int) -> bool:
        return self.call(self.entrance, "commitmentExists(bytes32,uint256,uint256)",
                         ["bytes32", "uint256", "uint256"], [data_root, epoch, quorum_id], ["bool"])[0]

    def verified_commitment(self, data_root: bytes, epoch: int, quorum_id: int) -> bls.G1Point:
        (c,) = self.call(self.entrance, "verifiedErasureCommitment(bytes32,uint256,uint256)",
                         ["bytes32", "uint256", "uint256"], [data_root, epoch, quorum_id], [G1])
        return (int(c[0]), int(c[1]))

    def submit_original_data(self, data_roots: Sequence[bytes]) -> list[Upload]:
        price = self.blob_price()
        receipt = self.send(self.entrance, "submitOriginalData(bytes32[])", ["bytes32[]"], [list(data_roots)],
                            value=price * len(data_roots))
        return self.uploads_in(receipt)

    def uploads_in(self, receipt: Any) -> list[Upload]:
        out = []
        tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
        for entry in receipt["logs"]:
            topics = [bytes(t) for t in entry["topics"]]
            if entry["address"].lower() == self.entrance.lower() and topics and topics[0] == DATA_UPLOAD_TOPIC:
                _, root, epoch, quorum_id, _ = abi_decode(["address", "bytes32", "uint256", "uint256", "uint256"],
                                                          bytes(entry["data"]))
                out.append(Upload(bytes(root), int(epoch), int(quorum_id), tx_hash))
        return out

    def uploads_of_tx(self, tx_hash: str) -> list[Upload]:
        try:
            receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except Exception as exc:
            raise DAChainError(f"no receipt for {tx_hash}: {exc}") from exc
        return self.uploads_in(receipt)

    def submit_verified(self, submissions: Sequence[tuple]) -> Any:
        return self.send(self.entrance, f"submitVerifiedCommitRoots({SUBMISSION}[])", [f"{SUBMISSION}[]"],
                         [list(submissions)])

    # ------------------------------------------------------------ pairing precompile

    def precompile_call(self, to: str, data: bytes) -> bytes:
        return bytes(self.w3.eth.call({"to": to, "data": data}))

    def verify_signature(self, digest: bytes, sig: bls.G1Point, pk1: bls.G1Point, pk2: bls.G2Point) -> bool:
        """The contracts' BLS check through the chain's pairing precompile (milliseconds)."""
        return bls.verify_with(self.precompile_call, digest, sig, pk1, pk2)
