"""Client side of the INFT contracts (AgentNFT + DataVerifier) through web3: reads, locally signed
transactions (custom errors reported by name), and the `PublishedSealedKey` events.

ABIs are in `abi.json`; regenerate after `ape compile` with `python -m deaios.inft.chain` (a test fails
when it is stale). Addresses: a stack.json's `contracts.inft_nft` / `contracts.inft_verifier`, or a
deployment file written by `ape run deploy_inft` (keys `nft`, `verifier`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from deaios.abi import ContractAbis
from deaios.chain_time import chain_now, connect
from deaios.eth import InsufficientFunds, TxSender
from deaios.inft.proofs import TransferContext

CONTRACTS = ("AgentNFT", "DataVerifier")
ABI_FILE = Path(__file__).with_name("abi.json")
ABIS = ContractAbis(ABI_FILE, CONTRACTS)


class InftChainError(RuntimeError):
    """The chain rejected a call (the message names the custom error) or could not be reached."""


def load_abis() -> dict[str, list]:
    return ABIS.abis


def render_abis(build_file: Path) -> str:
    """abi.json's text for the compiled project in ape's build file (.build/__local__.json)."""
    return ABIS.render(build_file)


def explain(exc: Exception) -> str:
    name = ABIS.error_name(getattr(exc, "data", None))
    if name:
        data = getattr(exc, "data")
        return f"reverted: {name} (0x{data[10:]})" if len(data) > 10 else f"reverted: {name}"
    return str(exc)


@dataclass(frozen=True)
class InftAddresses:
    nft: str
    verifier: str

    @classmethod
    def from_mapping(cls, d: dict[str, Any]) -> InftAddresses:
        nft, verifier = d.get("inft_nft") or d.get("nft"), d.get("inft_verifier") or d.get("verifier")
        if not (nft and verifier):
            raise InftChainError(
                "no INFT contracts in this deployment (deploy them with `ape run deploy_inft`)"
            )
        return cls(to_checksum_address(nft), to_checksum_address(verifier))


@dataclass(frozen=True)
class DataEntry:
    description: str
    data_hash: bytes

    def to_json(self) -> dict[str, str]:
        return {"dataDescription": self.description, "dataHash": "0x" + self.data_hash.hex()}


class InftChain:
    """AgentNFT and its verifier as seen by one account (`private_key`; reads work without one)."""

    def __init__(self, rpc: str, addresses: InftAddresses, private_key: str | None = None) -> None:
        self.w3 = connect(rpc)
        abis = load_abis()
        self.nft = self.w3.eth.contract(address=addresses.nft, abi=abis["AgentNFT"])
        self.verifier = self.w3.eth.contract(address=addresses.verifier, abi=abis["DataVerifier"])
        self.account = Account.from_key(private_key) if private_key else None
        self._sender = TxSender(self.w3, private_key, gas_margin=1.0, gas_headroom=0) if private_key else None

    @property
    def address(self) -> str:
        if self.account is None:
            raise InftChainError("this command needs a private key")
        return self.account.address

    def call(self, fn: Any) -> Any:
        try:
            return fn.call()
        except ContractCustomError as exc:
            raise InftChainError(explain(exc)) from None
        except (ContractLogicError, Web3RPCError, OSError) as exc:
            raise InftChainError(f"call failed: {exc}") from exc

    def send(self, fn: Any) -> Any:
        """Sign and send `fn` from the account (the shared `deaios.eth.TxSender`) and wait for the receipt;
        InftChainError on revert or when the account cannot pay (with the figures)."""
        self.address  # noqa: B018 - an InftChainError without a key
        try:
            _, receipt = self._sender.send_call(fn)  # type: ignore[union-attr]
        except ContractCustomError as exc:
            raise InftChainError(explain(exc)) from None
        except InsufficientFunds as exc:
            raise InftChainError(exc.message) from None
        except (ContractLogicError, Web3RPCError, OSError) as exc:
            raise InftChainError(f"transaction failed: {exc}") from exc
        if receipt["status"] != 1:
            raise InftChainError(f"transaction {receipt['transactionHash'].hex()} reverted")
        return receipt

    # -- reads -----------------------------------------------------------------------------------------------
    def datas(self, token_id: int) -> list[DataEntry]:
        return [
            DataEntry(d[0], bytes(d[1])) for d in self.call(self.nft.functions.intelligentDatasOf(token_id))
        ]

    def owner_of(self, token_id: int) -> str:
        return self.call(self.nft.functions.ownerOf(token_id))

    def token_info(self, token_id: int) -> dict[str, Any]:
        f = self.nft.functions
        return {
            "tokenId": token_id,
            "owner": self.owner_of(token_id),
            "creator": self.call(f.creatorOf(token_id)),
            "datas": [d.to_json() for d in self.datas(token_id)],
            "authorizedUsers": self.call(f.authorizedUsersOf(token_id)),
        }

    def oracle_signer(self) -> str:
        return self.call(self.verifier.functions.oracleSigner())

    def context(self, token_id: int, from_: str, to: str) -> TransferContext:
        """The transfer `from_` -> `to` of `token_id` that proofs are signed for."""
        return TransferContext(int(self.w3.eth.chain_id), self.verifier.address, self.nft.address, token_id,
                               to_checksum_address(from_), to_checksum_address(to))

    def delegate_of(self, user: str) -> str:
        """The access assistant of `user` (the zero address when none)."""
        return self.call(self.nft.functions.getDelegateAccess(to_checksum_address(user)))

    def access_nonce_used(self, token_id: int, nonce: bytes) -> bool:
        """Whether an access proof nonce was already spent on `token_id`."""
        key = self.call(self.verifier.functions.nonceKey(0, self.nft.address, token_id, nonce))
        return bool(self.call(self.verifier.functions.usedNonces(key)))

    def timestamp(self) -> int:
        return chain_now(self.w3)

    def sealed_keys_for(self, owner: str, token_id: int) -> list[bytes] | None:
        """The data keys last published sealed to `owner` for `token_id` (None when there are none)."""
        event = self.nft.events.PublishedSealedKey
        try:
            logs = event.get_logs(
                from_block=0, argument_filters={"_to": to_checksum_address(owner), "_tokenId": token_id}
            )
        except (Web3RPCError, OSError) as exc:
            raise InftChainError(f"cannot read events: {exc}") from exc
        if not logs:
            return None
        last = max(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))
        return [bytes(k) for k in last["args"]["_sealedKeys"]]

    # -- transactions ----------------------------------------------------------------------------------
    def mint(self, entries: list[DataEntry], to: str, sealed_keys: list[bytes]) -> int:
        receipt = self.send(
            self.nft.functions.mintWithSealedKeys(
                [(e.description, e.data_hash) for e in entries], to_checksum_address(to), sealed_keys
            )
        )
        return self._token_from(receipt, "CreatorSet")

    def transfer(self, owner: str, to: str, token_id: int, proofs: list[tuple]) -> Any:
        return self.send(
            self.nft.functions.iTransferFrom(
                to_checksum_address(owner), to_checksum_address(to), token_id, proofs
            )
        )

    def clone(self, owner: str, to: str, token_id: int, proofs: list[tuple]) -> int:
        receipt = self.send(
            self.nft.functions.iCloneFrom(
                to_checksum_address(owner), to_checksum_address(to), token_id, proofs
            )
        )
        return self._token_from(receipt, "Cloned", "_newTokenId")

    def authorize(self, token_id: int, user: str, revoke: bool = False) -> Any:
        f = self.nft.functions
        fn = f.revokeAuthorization if revoke else f.authorizeUsage
        return self.send(fn(token_id, to_checksum_address(user)))

    def _token_from(self, receipt: Any, name: str, field: str = "tokenId") -> int:
        from web3.logs import DISCARD

        events = getattr(self.nft.events, name)().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"][field])


def main() -> None:
    print(f"wrote {ABIS.write()}")


if __name__ == "__main__":
    main()
