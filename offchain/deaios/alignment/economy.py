"""Client side of the alignment-node economy: AlignmentLicense, AlignmentDelegation, AlignmentRewards and
AlignmentGovernor (docs/alignment.md). Reads go through web3 contract objects built from `abi.json`;
transactions are signed locally and sent by the DA client's generic sender (`DAChain.send`: nonce, EIP-1559
fees, receipt), as the supervision client does. A revert is reported with the contract's custom error and its
arguments, e.g. ``WalletCapExceeded(buyer=0x…, requested=3, remaining=1)``.

Addresses come from a stack.json's `contracts` (keys `alignment_license`, `alignment_delegation`,
`alignment_rewards`, `alignment_governor`) or from `deployments/<network>-alignment.json` written by
`ape run deploy_alignment` (keys `license`, `delegation`, `rewards`, `governor`).

The ABIs are in `abi.json`; regenerate it after `ape compile` with `python -m deaios.alignment.economy`
(`tests/alignment/test_alignment_cli.py` fails when it is stale).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import is_address, keccak, to_checksum_address
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError
from web3.logs import DISCARD

from deaios.abi import ContractAbis, canonical_type
from deaios.chain_time import connect
from deaios.da.chain import DAChain, DAChainError

log = logging.getLogger(__name__)

ABI_FILE = Path(__file__).with_name("abi.json")
CONTRACTS = ("AlignmentLicense", "AlignmentDelegation", "AlignmentRewards", "AlignmentGovernor")
#: deployment-record key of each contract (a stack.json has them with an `alignment_` prefix)
ROLES = {"AlignmentLicense": "license", "AlignmentDelegation": "delegation", "AlignmentRewards": "rewards",
         "AlignmentGovernor": "governor"}
PROPOSAL_STATES = ("active", "defeated", "succeeded", "executed", "canceled", "expired")
VOTE_TYPES = {"no": 0, "against": 0, "yes": 1, "for": 1, "abstain": 2}
ZERO_ADDRESS = "0x" + "00" * 20
LOG_RANGE = 5_000  # blocks per eth_getLogs call
#: address-valued keys of a deployment record that are accounts, not governance targets
ACCOUNT_KEYS = ("deployer", "admin")
TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


class EconomyError(RuntimeError):
    """The chain rejected a call (the message names the custom error) or could not be reached."""


# --- ABIs and errors ----------------------------------------------------------------------------------------
ABIS = ContractAbis(ABI_FILE, CONTRACTS)


def load_abis() -> dict[str, list]:
    """Contract name -> ABI list."""
    return ABIS.abis


def render(build_file: Path) -> str:
    """The abi.json text for the compiled project in ape's `build_file` (.build/__local__.json)."""
    return ABIS.render(build_file)


def describe_revert(data: str | bytes | None) -> str:
    """'Name(arg=value, …)' for revert data of a custom error of the four contracts, else the raw data."""
    return ABIS.decode_error(data)


def _explain(exc: BaseException) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return describe_revert(data)
    return str(exc)


# --- governance calls ---------------------------------------------------------------------------------------
_SIGNATURE = re.compile(r"^([A-Za-z_$][A-Za-z0-9_$]*)\((.*)\)$")


def split_signature(signature: str) -> tuple[str, list[str]]:
    """('setPricePerSector', ['uint256']) from 'setPricePerSector(uint256)'; ValueError when malformed."""
    match = _SIGNATURE.match(signature.replace(" ", ""))
    if not match:
        raise ValueError(f"not a function signature: {signature!r} (e.g. \"setPricePerSector(uint256)\")")
    name, inner = match.groups()
    types, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            types.append(inner[start:i])
            start = i + 1
    if inner:
        types.append(inner[start:])
    if depth != 0 or any(not t for t in types):
        raise ValueError(f"not a function signature: {signature!r}")
    return name, types


def _scalar(abi_type: str, text: Any) -> Any:
    """One CLI argument (or JSON array element) as a value of elementary `abi_type`."""
    if isinstance(text, str):
        text = text.strip()
    if abi_type.startswith(("uint", "int")):
        if isinstance(text, int) and not isinstance(text, bool):
            return text
        try:
            return int(str(text).replace("_", ""), 0)
        except ValueError:
            raise ValueError(f"{abi_type} argument is not an integer: {text!r}") from None
    if abi_type == "address":
        if not isinstance(text, str) or not is_address(text):
            raise ValueError(f"not an address: {text!r}")
        return to_checksum_address(text)
    if abi_type == "bool":
        lowered = str(text).lower()
        if lowered not in ("true", "false", "1", "0"):
            raise ValueError(f"not a bool: {text!r} (true/false)")
        return lowered in ("true", "1")
    if abi_type == "string":
        return str(text)
    if abi_type.startswith("bytes"):
        return bytes.fromhex(str(text).removeprefix("0x"))
    raise ValueError(f"unsupported argument type {abi_type}")


def parse_argument(abi_type: str, text: str) -> Any:
    """A CLI argument as a value of `abi_type`: numbers (decimal or 0x), addresses, true/false, 0x-hex bytes,
    strings; arrays as JSON lists (e.g. '[1,2]'). Tuples are not supported. ValueError when it does not
    fit."""
    if abi_type.startswith("("):
        raise ValueError("tuple arguments are not supported")
    if abi_type.endswith("]"):
        element = abi_type[: abi_type.rindex("[")]
        items = json.loads(text)
        if not isinstance(items, list):
            raise ValueError(f"{abi_type} needs a JSON list, got {text!r}")
        return [parse_argument(element, json.dumps(i) if isinstance(i, list) else i) for i in items]
    return _scalar(abi_type, text)


def encode_call(signature: str, args: Sequence[str]) -> bytes:
    """Calldata of `signature` with CLI arguments `args` (parsed by their types); ValueError on bad input."""
    name, types = split_signature(signature)
    if len(args) != len(types):
        wanted = ", ".join(types) or "none"
        raise ValueError(f"{name} takes {len(types)} argument(s) ({wanted}), got {len(args)}")
    values = [parse_argument(t, a) for t, a in zip(types, args)]
    canonical = f"{name}({','.join(types)})"
    try:
        return keccak(text=canonical)[:4] + abi_encode(types, values)
    except Exception as exc:  # noqa: BLE001 - eth_abi's many encoding errors: a value out of range etc.
        raise ValueError(f"cannot encode {canonical} with {list(args)}: {exc}") from None


# --- addresses and views ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EconomyAddresses:
    """The four contracts, plus every named address of the deployment (governance targets by name)."""

    license: str
    delegation: str
    rewards: str
    governor: str
    names: tuple[tuple[str, str], ...] = ()
    from_block: int = 0

    @classmethod
    def from_mapping(cls, d: dict[str, Any], from_block: int = 0) -> EconomyAddresses:
        """From a stack's `contracts` (alignment_* keys) or a deploy_alignment record (short keys)."""
        found = {}
        for role in ROLES.values():
            value = d.get(f"alignment_{role}") or d.get(role)
            if not (isinstance(value, str) and is_address(value)):
                raise EconomyError(f"no alignment {role} contract in this deployment (deploy the alignment "
                                   "contracts with `ape run deploy_alignment`, or `deaios up`)")
            found[role] = to_checksum_address(value)
        names = {k: to_checksum_address(v) for k, v in d.items()
                 if isinstance(v, str) and is_address(v) and k not in ACCOUNT_KEYS}
        names.update(found)
        if "storage_market" in names:
            names.setdefault("market", names["storage_market"])
        block = d.get("block_number") if isinstance(d.get("block_number"), int) else from_block
        return cls(**found, names=tuple(sorted(names.items())), from_block=block)

    @classmethod
    def from_file(cls, path: Path) -> EconomyAddresses:
        return cls.from_mapping(json.loads(Path(path).read_text()))

    def resolve(self, target: str) -> str:
        """An address, or a contract name of the deployment (`market`, `da_entrance`, `rewards`, …)."""
        if is_address(target):
            return to_checksum_address(target)
        names = dict(self.names)
        if target in names:
            return names[target]
        known = ", ".join(sorted(names)) or "none"
        raise EconomyError(f"unknown target {target!r}: give an address or one of: {known}")

    def name_of(self, address: str) -> str | None:
        return next((n for n, a in self.names if a == address), None)


@dataclass(frozen=True)
class LicenseView:
    token_id: int
    owner: str
    operator: str | None
    unlock_at: int

    def to_json(self) -> dict[str, Any]:
        return {"tokenId": self.token_id, "owner": self.owner, "operator": self.operator,
                "transferLockedUntil": self.unlock_at}


@dataclass(frozen=True)
class ProposalView:
    proposal_id: int
    state: str
    proposer: str
    target: str
    target_name: str | None
    calldata: str
    for_votes: int
    against_votes: int
    abstain_votes: int
    quorum: int
    snapshot_supply: int
    vote_end: int
    eta: int
    description: str | None

    def to_json(self) -> dict[str, Any]:
        names = {"proposal_id": "proposalId", "target_name": "targetName", "for_votes": "forVotes",
                 "against_votes": "againstVotes", "abstain_votes": "abstainVotes",
                 "snapshot_supply": "snapshotSupply", "vote_end": "voteEnd"}
        return {names.get(k, k): v for k, v in asdict(self).items()}


# --- the client ---------------------------------------------------------------------------------------------
class Economy:
    """The four alignment contracts as seen by one account (`private_key`; reads work without one)."""

    def __init__(self, rpc: str, addresses: EconomyAddresses, private_key: str | None = None) -> None:
        self.w3 = connect(rpc)
        self.addresses = addresses
        abis = load_abis()
        self.contracts = {name: self.w3.eth.contract(address=getattr(addresses, role), abi=abis[name])
                          for name, role in ROLES.items()}
        self.license = self.contracts["AlignmentLicense"]
        self.delegation = self.contracts["AlignmentDelegation"]
        self.rewards = self.contracts["AlignmentRewards"]
        self.governor = self.contracts["AlignmentGovernor"]
        self._sender = DAChain(rpc, addresses.license, private_key) if private_key else None

    @property
    def address(self) -> str:
        if self._sender is None or self._sender.account is None:
            raise EconomyError("this command needs a private key: --key HEX or $DEAIOS_KEY")
        return self._sender.account.address

    # -- plumbing -------------------------------------------------------------------------------------------
    def call(self, fn: Any) -> Any:
        try:
            return fn.call()
        except ContractCustomError as exc:
            raise EconomyError(f"{fn.fn_name}: {_explain(exc)}") from None
        except (ContractLogicError, Web3RPCError, OSError) as exc:
            raise EconomyError(f"{fn.fn_name}: call failed: {exc}") from exc

    def send(self, contract: Any, function: str, args: Sequence[Any] = (), value: int = 0) -> Any:
        """Send `contract.function(*args)` from the account; the receipt (EconomyError naming the custom error
        when it would revert)."""
        address = self.address
        item = next(i for i in contract.abi if i.get("type") == "function" and i["name"] == function)
        types = [canonical_type(i) for i in item["inputs"]]
        sender: DAChain = self._sender  # type: ignore[assignment]  (set: self.address checked it)
        signature = f"{function}({','.join(types)})"
        try:
            receipt = sender.send(contract.address, signature, types, list(args), value=value)
        except DAChainError as exc:
            raise EconomyError(f"{function}: {_explain(exc.__cause__ or exc)}") from None
        log.info("%s from %s: tx 0x%s, gas %d", function, address, bytes(receipt["transactionHash"]).hex(),
                 receipt["gasUsed"])
        return receipt

    @staticmethod
    def events(contract: Any, name: str, receipt: Any) -> list[Any]:
        return list(getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD))

    @staticmethod
    def tx_hash(receipt: Any) -> str:
        return "0x" + bytes(receipt["transactionHash"]).hex()

    # -- license --------------------------------------------------------------------------------------------
    def quote(self, count: int) -> int:
        return int(self.call(self.license.functions.quote(count)))

    def total_minted(self) -> int:
        return int(self.call(self.license.functions.totalMinted()))

    def buy(self, count: int) -> dict[str, Any]:
        """Buy `count` licenses at the quoted (tiered) price."""
        cost = self.quote(count)
        receipt = self.send(self.license, "buy", [count], value=cost)
        (ev,) = self.events(self.license, "LicensesPurchased", receipt)
        first = int(ev.args.firstTokenId)
        return {"buyer": ev.args.buyer, "tokenIds": list(range(first, first + int(ev.args.quantity))),
                "paid": int(ev.args.paid), "tx": self.tx_hash(receipt)}

    def license_info(self, token_id: int) -> LicenseView:
        owner = to_checksum_address(self.call(self.license.functions.ownerOf(token_id)))
        operator = to_checksum_address(self.call(self.delegation.functions.operatorOf(token_id)))
        unlock = int(self.call(self.license.functions.unlockAt(token_id)))
        return LicenseView(token_id, owner, None if operator == ZERO_ADDRESS else operator, unlock)

    def licenses_of(self, owner: str) -> list[int]:
        """Token ids `owner` holds now: candidates from the Transfer logs to it, checked with ownerOf."""
        owner = to_checksum_address(owner)
        topic = "0x" + "00" * 12 + owner[2:].lower()
        try:
            head = self.w3.eth.block_number
            logs: list[Any] = []
            for start in range(self.addresses.from_block, head + 1, LOG_RANGE):
                logs += self.w3.eth.get_logs({"address": self.license.address, "fromBlock": start,
                                              "toBlock": min(start + LOG_RANGE - 1, head),
                                              "topics": [TRANSFER_TOPIC, None, topic]})
        except (OSError, Web3RPCError) as exc:
            raise EconomyError(f"eth_getLogs: {exc}") from exc
        candidates = sorted({int.from_bytes(bytes(e["topics"][3]), "big") for e in logs})
        owner_of = self.license.functions.ownerOf
        return [t for t in candidates if to_checksum_address(self.call(owner_of(t))) == owner]

    # -- delegation -----------------------------------------------------------------------------------------
    def register_operator(self, commission_bps: int) -> str:
        return self.tx_hash(self.send(self.delegation, "registerOperator", [commission_bps]))

    def delegate(self, operator: str, token_ids: Sequence[int]) -> str:
        return self.tx_hash(self.send(self.delegation, "delegateNfts", [operator, list(token_ids)]))

    def undelegate(self, address: str, token_ids: Sequence[int], by_operator: bool) -> str:
        args = [address, list(token_ids), by_operator]
        return self.tx_hash(self.send(self.delegation, "undelegateNfts", args))

    def current_epoch(self) -> int:
        """The alignment epoch (delegations and commissions apply from the next one)."""
        return int(self.call(self.delegation.functions.currentEpoch()))

    def operator_info(self, operator: str) -> dict[str, Any]:
        """The operator's commission and licenses in this epoch, and from the next one."""
        f = self.delegation.functions
        return {"operator": operator, "registered": bool(self.call(f.isRegistered(operator))),
                "epoch": self.current_epoch(),
                "commissionBps": int(self.call(f.commissionBps(operator))),
                "licenses": int(self.call(f.operatedCount(operator))),
                "nextCommissionBps": int(self.call(f.nextCommissionBps(operator))),
                "nextLicenses": int(self.call(f.nextOperatedCount(operator)))}

    # -- rewards --------------------------------------------------------------------------------------------
    def rewards_of(self, account: str, token_ids: Sequence[int]) -> dict[str, Any]:
        f = self.rewards.functions
        return {"account": account, "epoch": self.current_epoch(), "credited": int(self.call(f.credited(account))),
                "pending": {str(t): int(self.call(f.pendingOf(t))) for t in token_ids},
                "claimable": int(self.call(f.claimable(account, list(token_ids))))}

    def claim(self, token_ids: Sequence[int]) -> dict[str, Any]:
        receipt = self.send(self.rewards, "claim", [list(token_ids)])
        claimed = sum(int(e.args.amount) for e in self.events(self.rewards, "RewardsClaimed", receipt))
        return {"account": self.address, "tokenIds": list(token_ids), "claimed": claimed,
                "tx": self.tx_hash(receipt)}

    # -- governance -----------------------------------------------------------------------------------------
    def is_allowed(self, target: str, calldata: bytes) -> bool:
        return bool(self.call(self.governor.functions.isAllowed(target, calldata[:4])))

    def propose(self, target: str, calldata: bytes, description: str) -> dict[str, Any]:
        receipt = self.send(self.governor, "propose", [target, calldata, description])
        (ev,) = self.events(self.governor, "ProposalCreated", receipt)
        return {"proposalId": int(ev.args.proposalId), "target": ev.args.target,
                "data": "0x" + calldata.hex(), "voteEnd": int(ev.args.voteEnd), "eta": int(ev.args.eta),
                "quorum": int(ev.args.quorum), "tx": self.tx_hash(receipt)}

    def proposal_count(self) -> int:
        return int(self.call(self.governor.functions.proposalCount()))

    def has_voted(self, proposal_id: int, token_id: int) -> bool:
        return bool(self.call(self.governor.functions.hasVoted(proposal_id, token_id)))

    def vote(self, proposal_id: int, support: int, token_ids: Sequence[int]) -> str:
        return self.tx_hash(self.send(self.governor, "castVote", [proposal_id, support, list(token_ids)]))

    def execute(self, proposal_id: int) -> str:
        return self.tx_hash(self.send(self.governor, "execute", [proposal_id]))

    def _descriptions(self) -> dict[int, str]:
        try:
            logs = self.governor.events.ProposalCreated().get_logs(from_block=self.addresses.from_block)
        except (OSError, Web3RPCError) as exc:
            log.warning("ProposalCreated logs unavailable: %s", exc)
            return {}
        return {int(e.args.proposalId): e.args.description for e in logs}

    def proposals(self, ids: Iterable[int] | None = None) -> list[ProposalView]:
        ids = list(ids) if ids is not None else list(range(1, self.proposal_count() + 1))
        descriptions = self._descriptions() if ids else {}
        out = []
        for pid in ids:
            (proposer, vote_end, eta, target, supply, quorum, for_, against, abstain, _, _, data) = self.call(
                self.governor.functions.getProposal(pid))
            state = PROPOSAL_STATES[int(self.call(self.governor.functions.state(pid)))]
            target = to_checksum_address(target)
            out.append(ProposalView(pid, state, to_checksum_address(proposer), target,
                                    self.addresses.name_of(target), "0x" + bytes(data).hex(), for_, against,
                                    abstain, quorum, supply, vote_end, eta, descriptions.get(pid)))
        return out


def main() -> None:
    """Regenerate abi.json from the compiled contracts (run `ape compile` first)."""
    print(f"wrote {ABIS.write()}")


if __name__ == "__main__":
    main()
