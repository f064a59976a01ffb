"""Helpers shared by the market tests (a uniquely named module: tests must not import from `conftest`).

The INFT is the real one (contracts/inft: AgentNFT + DataVerifier), deployed by scripts/deploy_inft.py; valid
transfer proofs come from `deaios.inft.proofs` (the oracle's signing code).
"""

from __future__ import annotations

import os
from typing import Any

from deaios import testing
from deaios.deployment import load_script
from deaios.inft.proofs import AccessProof, OwnershipProof, TransferContext, transfer_proofs
from eth_account import Account
from eth_utils import keccak

ZERO_ADDRESS = "0x" + "00" * 20

SETTLE_WINDOW = 3_600
ROYALTY_BPS = 500  # 5 % to the creator
#: A fixed key for the INFT oracle (it never sends transactions).
ORACLE_KEY = "0x" + keccak(text="deaios market test oracle").hex()
ORACLE = Account.from_key(ORACLE_KEY).address
#: The X25519 key the oracle "seals" the new data key to (any non-empty bytes for the verifier).
TARGET_PUBKEY = keccak(text="deaios market test receiver key")


def deploy_inft(owner: Any, project: Any) -> tuple[Any, Any]:
    """(AgentNFT, DataVerifier) from the INFT deploy script, ORACLE as oracle signer, ROYALTY_BPS royalty."""
    deploy = load_script("deploy_inft").deploy_inft
    result = deploy(owner, project, oracle_signer=ORACLE, royalty_bps=ROYALTY_BPS)
    return project.AgentNFT.at(result["nft"]), project.DataVerifier.at(result["verifier"])


def deploy_market(owner: Any, project: Any, nft: Any, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("settle_window", SETTLE_WINDOW)
    return load_script("deploy_market").deploy_market(owner, project, nft=nft.address, **kwargs)


def deploy_compute(owner: Any, project: Any) -> dict[str, Any]:
    return load_script("deploy_compute").deploy_compute(
        owner, project, lock_time=3600, min_deposit=1_000, min_transfer=100, min_stake=10**17
    )


def mint(nft: Any, creator: Any, to: Any, entries: int = 1) -> int:
    """Mint a token with `entries` data entries (random hashes) created by `creator`; its id."""
    datas = [(f"agent part {i}", os.urandom(32)) for i in range(entries)]
    tx = nft.mint(datas, to.address, sender=creator)
    return int(tx.decode_logs(nft.Transfer)[0].tokenId)


def context(nft: Any, token_id: int, sender: str, receiver: str, chain_id: int | None = None,
            verifier: str | None = None) -> TransferContext:
    """The transfer of `token_id` from `sender` to `receiver` that proofs name (chain id and verifier are read
    from the chain unless given)."""
    if chain_id is None:
        from ape import chain

        chain_id = chain.chain_id
    return TransferContext(chain_id, verifier or nft.verifier(), nft.address, token_id, sender, receiver)


def proofs_for(ctx: TransferContext, data_hashes: list[bytes], signer_key: str) -> list[tuple]:
    """Valid TransferValidityProof tuples for transfer `ctx` of data at `data_hashes`, the access proofs signed
    with `signer_key` (the receiver's, or its assistant's)."""
    access = [AccessProof.create(signer_key, ctx, h, TARGET_PUBKEY) for h in data_hashes]
    ownership = [
        OwnershipProof.create(ORACLE_KEY, ctx, h, os.urandom(32), os.urandom(48), TARGET_PUBKEY)
        for h in data_hashes
    ]
    return transfer_proofs(access, ownership)


def token_proofs(nft: Any, token_id: int, receiver: Any, signer_key: str | None = None) -> list[tuple]:
    """Valid proofs moving `token_id`'s current data from its owner to ape account `receiver` (access proofs
    signed by the receiver, or `signer_key`)."""
    hashes = [bytes(d.dataHash) for d in nft.intelligentDatasOf(token_id)]
    ctx = context(nft, token_id, nft.ownerOf(token_id), receiver.address)
    return proofs_for(ctx, hashes, signer_key or receiver.private_key)


def royalty_split(price: int) -> tuple[int, int]:
    """(seller proceeds, royalty) of a sale at `price`."""
    royalty = price * ROYALTY_BPS // 10_000
    return price - royalty, royalty


def time_travel(seconds: int) -> None:
    from ape import chain

    chain.pending_timestamp += seconds
    chain.mine()


def now() -> int:
    from ape import chain

    return chain.blocks.head.timestamp


def revert_data(contract: Any, method: str, *args: Any, sender: Any, value: int = 0) -> bytes:
    """The revert data of an eth_call of `contract.method(*args)` (b"" when it succeeds)."""
    return testing.revert_data(contract, method, *args, sender=sender, value=value) or b""


def assert_reverts(contract: Any, method: str, *args: Any, sender: Any, error: str, value: int = 0,
                   source: Any = None, **expected: Any) -> None:
    """`contract.method(*args)` from `sender` reverts with custom error `error` (declared by `source`, default
    `contract`) whose arguments include `expected` (see deaios.testing)."""
    testing.assert_reverts(contract, method, *args, sender=sender, error=error, value=value, source=source,
                           **expected)
