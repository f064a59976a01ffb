"""Helpers shared by the DA contract tests (a uniquely named module: several test folders have a
`conftest`, so tests must not import from `conftest`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deaios.deployment import load_script
import ape
from deaios.da import bls
from deaios.da.quorums import Quorum, Registration, form_quorums
from eth_abi import encode
from eth_utils import keccak
from web3.exceptions import ContractCustomError, ContractLogicError

ROOT = Path(__file__).resolve().parents[3]
#: Stake per vote in the test deployments (cheap, so that test accounts can hold many votes).
TOKENS_PER_VOTE = 10**15
BLOB_PRICE = 10**12

SUBMISSION_TYPE = "(bytes32,uint256,uint256,(uint256,uint256),bytes,(uint256[2],uint256[2]),(uint256,uint256))"
SUBMIT_VERIFIED_SIG = f"submitVerifiedCommitRoots({SUBMISSION_TYPE}[])"


deploy_da_module = load_script("deploy_da")


def signer_account() -> Any:
    """A new test account (beyond the configured ones), funded with 10^6 ETH."""
    account = ape.accounts.test_accounts.generate_test_account()
    ape.chain.provider.set_balance(account.address, 10**24)
    return account


@dataclass
class DASigner:
    account: Any
    key: bls.BLSKey

    @property
    def address(self) -> str:
        return self.account.address

    def detail(self, socket: str = "127.0.0.1:34000") -> tuple:
        """The `SignerDetail` tuple (pkG2 in 0G's signer order)."""
        return (self.address, socket, self.key.pk_g1, bls.g2_signer_order(self.key.pk_g2))


def make_signer(index: int, seed: bytes | None = None) -> DASigner:
    return DASigner(signer_account(), bls.BLSKey.generate(seed or b"signer-%d" % index))


def register(registry: Any, signer: DASigner, votes: int, *, socket: str = "127.0.0.1:34000") -> Any:
    pop = signer.key.pop(signer.address, ape.chain.chain_id)
    return registry.registerSigner(signer.detail(socket), pop, sender=signer.account,
                                   value=votes * TOKENS_PER_VOTE)


def epoch_signature(signer: DASigner, epoch: int) -> tuple[int, int]:
    return signer.key.sign(bls.epoch_digest(signer.address, epoch, ape.chain.chain_id))


def register_epoch(registry: Any, signer: DASigner) -> Any:
    return registry.registerNextEpoch(epoch_signature(signer, registry.epochNumber() + 1), sender=signer.account)


@dataclass
class World:
    """A deployment with registered signers and a made epoch."""

    registry: Any
    entrance: Any
    signers: list[DASigner]
    votes: list[int]
    epoch: int
    quorums: list[Quorum]
    deployment: dict[str, Any] = field(default_factory=dict)
    #: gas of the last registerSigner / registerNextEpoch and of makeEpoch while building the world
    gas: dict[str, int] = field(default_factory=dict)

    def by_address(self, address: str) -> DASigner:
        return next(s for s in self.signers if s.address.lower() == address.lower())


def build_world(owner: Any, project: Any, votes: Sequence[int], *, rows: int, max_quorums: int = 10,
                max_votes: int = 1024, epoch_blocks: int = 1000, account_offset: int = 0,
                epoch_window: int = 300, signers: Sequence[DASigner] | None = None,
                stake_lock_epochs: int | None = 0, max_signers: int = 128) -> World:
    """Deploy, register len(votes) signers with these votes, and force epoch 1 (the quorum model is computed
    from the epoch's seed)."""
    deployment = deploy_da_module.deploy_da(
        owner, project, tokens_per_vote=TOKENS_PER_VOTE, max_votes_per_signer=max_votes,
        max_quorums=max_quorums, epoch_blocks=epoch_blocks, encoded_slices=rows, blob_price=BLOB_PRICE,
        epoch_window=epoch_window, stake_lock_epochs=stake_lock_epochs, max_signers_per_epoch=max_signers)
    registry = project.DASigners.at(deployment["da_signers"])
    entrance = project.DAEntrance.at(deployment["da_entrance"])
    members = list(signers) if signers is not None else [make_signer(account_offset + i)
                                                         for i in range(len(votes))]
    regs = []
    gas: dict[str, int] = {}
    for signer, v in zip(members, votes, strict=True):
        gas["registerSigner"] = register(registry, signer, v).gas_used
        gas["registerNextEpoch"] = register_epoch(registry, signer).gas_used
        regs.append(Registration(signer.address, min(v, max_votes)))
    gas["makeEpoch"] = registry.forceMakeEpoch(sender=owner).gas_used
    quorums = form_quorums(regs, rows, max_quorums, bytes(registry.epochSeed(1)))
    return World(registry, entrance, members, list(votes), 1, quorums, deployment, gas)


# ---------------------------------------------------------------- submissions


def random_commitment(seed: bytes) -> tuple[int, int]:
    """An erasure commitment stand-in: a G1 point nobody knows the discrete log of."""
    return bls.hash_to_g1(keccak(b"commitment" + seed))


def sign_blob(signers: Iterable[DASigner], data_root: bytes, epoch: int, quorum_id: int,
              commitment: tuple[int, int]) -> dict[str, tuple[int, int]]:
    digest = bls.commit_digest(data_root, epoch, quorum_id, commitment)
    return {s.address: s.key.sign(digest) for s in signers}


def submission(world: World, data_root: bytes, quorum_id: int, signing: Iterable[str], *,
               epoch: int | None = None, commitment: tuple[int, int] | None = None,
               signatures: dict[str, tuple[int, int]] | None = None,
               bitmap: bytes | None = None, agg_pk_g2: Any = None) -> tuple:
    """A CommitRootSubmission tuple signed by the signers `signing` (addresses) of the quorum.

    Overrides: explicit per-signer `signatures`, a `bitmap`, or an `agg_pk_g2` (a G2Point).
    """
    epoch = world.epoch if epoch is None else epoch
    commitment = commitment or random_commitment(data_root)
    quorum = world.quorums[quorum_id] if quorum_id < len(world.quorums) else world.quorums[0]
    signing = [a for a in signing]
    chosen = [world.by_address(a) for a in signing]
    if signatures is None:
        signatures = sign_blob(chosen, data_root, epoch, quorum_id, commitment)
    sig = bls.aggregate_g1(signatures[a] for a in signing) or (0, 0)
    if bitmap is None:
        bitmap = bls.quorum_bitmap([r for a in signing for r in quorum.rows_of(a)], quorum.rows)
    if agg_pk_g2 is None:
        agg_pk_g2 = bls.aggregate_g2(s.key.pk_g2 for s in chosen)
    g2 = bls.g2_eip197(agg_pk_g2) if agg_pk_g2 is not None else ([0, 0], [0, 0])
    return (data_root, epoch, quorum_id, commitment, bitmap, g2, sig)


def rows_signed(quorum: Quorum, signing: Iterable[str]) -> int:
    return sum(len(quorum.rows_of(a)) for a in set(signing))


def error_names(*contracts: Any) -> dict[bytes, str]:
    names: dict[bytes, str] = {}
    for c in contracts:
        for e in c.contract_type.errors:
            names[keccak(text=e.selector)[:4]] = e.name
    return names


def try_call(contract: Any, data: bytes, names: dict[bytes, str], sender: str | None = None,
             value: int = 0) -> tuple[bool, Any]:
    """(True, output) of an eth_call, or (False, custom error name) if it reverts.

    Made with web3 directly: ape's `.call()` traces reverted calls (slow) and cannot name errors raised
    by another contract (DASigners' errors bubble up through DAEntrance).
    """
    tx = {"to": contract.address, "data": data, "value": value}
    if sender:
        tx["from"] = sender
    try:
        return True, ape.chain.provider.web3.eth.call(tx)
    except ContractCustomError as err:
        selector = bytes.fromhex(str(err.data)[2:10])
        return False, names.get(selector, "0x" + selector.hex())
    except ContractLogicError as err:
        return False, f"revert: {err}"


def encode_submit_verified(subs: Sequence[tuple]) -> bytes:
    return keccak(text=SUBMIT_VERIFIED_SIG)[:4] + encode([f"{SUBMISSION_TYPE}[]"], [list(subs)])


def try_submit_verified(world: World, subs: Sequence[tuple], sender: str) -> tuple[bool, Any]:
    names = error_names(world.entrance, world.registry)
    return try_call(world.entrance, encode_submit_verified(subs), names, sender)


# ---------------------------------------------------------------- G2 points off the subgroup


def _fp2_sqrt(a: tuple[int, int]) -> tuple[int, int] | None:
    """A square root in Fp2 = Fp[i]/(i² + 1), or None."""
    p = bls.P
    a0, a1 = a
    norm = (a0 * a0 + a1 * a1) % p
    s = pow(norm, (p + 1) // 4, p)
    if s * s % p != norm:
        return None
    inv2 = pow(2, p - 2, p)
    for t in ((a0 + s) * inv2 % p, (a0 - s) * inv2 % p):
        x0 = pow(t, (p + 1) // 4, p)
        if x0 * x0 % p == t and x0 != 0:
            x1 = a1 * pow(2 * x0, p - 2, p) % p
            if ((x0 * x0 - x1 * x1) % p, 2 * x0 * x1 % p) == (a0 % p, a1 % p):
                return (x0, x1)
    return None


def twist_point_outside_subgroup(seed: int = 1) -> bls.G2Point:
    """A point on the G2 twist y² = x³ + 3/(9+i) that is not in the order-r subgroup."""
    from py_ecc.optimized_bn128 import b2, is_inf, multiply

    b0, b1 = (int(c) for c in b2.coeffs)
    p = bls.P
    x0 = seed
    while True:
        x = (x0, 1)
        # x³ in Fp2
        sq = ((x[0] * x[0] - x[1] * x[1]) % p, 2 * x[0] * x[1] % p)
        cube = ((sq[0] * x[0] - sq[1] * x[1]) % p, (sq[0] * x[1] + sq[1] * x[0]) % p)
        y = _fp2_sqrt(((cube[0] + b0) % p, (cube[1] + b1) % p))
        if y is not None:
            point = (x, y)
            assert bls.is_on_curve_g2(point)
            assert not is_inf(multiply(bls._to_g2(point), bls.R))  # not killed by r: outside the subgroup
            return point
        x0 += 1
