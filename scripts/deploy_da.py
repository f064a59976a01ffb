"""`ape run deploy_da`: deploy the data-availability contracts (DASigners + DAEntrance) and record them.

Order: the signer registry, then DAEntrance pointing at it. The addresses and parameters are written to
``deployments/da-<network>.json`` (e.g. ``da-local.json``).

    ape run deploy_da                                   # local Anvil, test account 0
    ZG_RPC_URL=https://evmrpc-testnet.0g.ai ape run deploy_da --network ethereum:zgtestnet:node --account <alias>

``deploy_da(deployer, project)`` is the reusable part (tests and the local stack call it). Signers then
register themselves (``DASigners.registerSigner`` with a proof of possession and stake, then
``registerNextEpoch``); the first epoch with quorums starts when ``epochBlocks`` blocks have passed and
someone calls ``makeEpoch`` (DAEntrance does on every upload), or at once with the admin's
``forceMakeEpoch``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand, account_option

from deaios.deployment import ADMIN_OPTION, deploying_account, out_dir_option, record_deployment, stack_option

#: Stake per vote (1 token; 0G's DARegistry asks 30 tokens of balance per vote).
DEFAULT_TOKENS_PER_VOTE = 10**18
#: 0G's chain defaults: 1024 votes per signer at most, 10 quorums, 3072 rows (slices) per quorum.
DEFAULT_MAX_VOTES_PER_SIGNER = 1024
DEFAULT_MAX_QUORUMS = 10
DEFAULT_ENCODED_SLICES = 3072
#: 0G's epoch: 5760 blocks.
DEFAULT_EPOCH_BLOCKS = 5760
#: Fee per blob in wei (0G initializes it to 0).
DEFAULT_BLOB_PRICE = 10**15
#: Epochs during which a blob is served after its own (0G: 300).
DEFAULT_EPOCH_WINDOW = 300
#: Registrations per epoch (the contract's upper bound; the signers with the most votes keep their places).
DEFAULT_MAX_SIGNERS_PER_EPOCH = 128


def deploy_da(
    deployer: Any,
    project: Any,
    *,
    tokens_per_vote: int = DEFAULT_TOKENS_PER_VOTE,
    max_votes_per_signer: int = DEFAULT_MAX_VOTES_PER_SIGNER,
    max_quorums: int = DEFAULT_MAX_QUORUMS,
    epoch_blocks: int = DEFAULT_EPOCH_BLOCKS,
    encoded_slices: int = DEFAULT_ENCODED_SLICES,
    blob_price: int = DEFAULT_BLOB_PRICE,
    epoch_window: int = DEFAULT_EPOCH_WINDOW,
    max_signers_per_epoch: int = DEFAULT_MAX_SIGNERS_PER_EPOCH,
    stake_lock_epochs: int | None = None,
    admin: str | None = None,
) -> dict[str, Any]:
    """Deploy DASigners and DAEntrance and return their addresses and parameters.

    ``stake_lock_epochs`` (default ``epoch_window + 1``: a signature for an epoch can be used on chain until the
    epoch expires, so the signer stays slashable for equivocation that long) is how long a signer's stake stays
    locked after the last epoch it registered for. ``admin`` (default: the deployer) receives every role of both
    contracts; when it differs from the deployer, the deployer keeps none.
    """
    admin_address = admin or deployer.address
    if stake_lock_epochs is None:
        stake_lock_epochs = epoch_window + 1
    params = (tokens_per_vote, max_votes_per_signer, max_quorums, epoch_blocks, encoded_slices)
    signers = project.DASigners.deploy(params, max_signers_per_epoch, stake_lock_epochs, admin_address,
                                       sender=deployer)
    entrance = project.DAEntrance.deploy(signers.address, blob_price, epoch_window, admin_address,
                                         sender=deployer)
    receipt = signers.creation_metadata.receipt if signers.creation_metadata else None
    return {
        "chain_id": chain.chain_id,
        "da_signers": signers.address,
        "da_entrance": entrance.address,
        "tokens_per_vote": tokens_per_vote,
        "max_votes_per_signer": max_votes_per_signer,
        "max_quorums": max_quorums,
        "epoch_blocks": epoch_blocks,
        "encoded_slices": encoded_slices,
        "blob_price": blob_price,
        "epoch_window": epoch_window,
        "max_signers_per_epoch": max_signers_per_epoch,
        "stake_lock_epochs": stake_lock_epochs,
        "deployer": deployer.address,
        "admin": admin_address,
        "block_number": receipt.block_number if receipt is not None else chain.blocks.head.number,
    }


def check_deployment(check: Any) -> None:
    """What `ape run verify_deployment` expects of the DA contracts deployed by `deploy_da`."""
    area = check.area("da")
    signers, entrance = check.contract("da_signers"), check.contract("da_entrance")
    if signers is None or entrance is None:
        return
    check.equal("da_entrance.signers()", entrance.signers(), signers.address)
    params = signers.params()
    for name, key in (("tokensPerVote", "tokens_per_vote"), ("maxVotesPerSigner", "max_votes_per_signer"),
                      ("maxQuorums", "max_quorums"), ("epochBlocks", "epoch_blocks"),
                      ("encodedSlices", "encoded_slices")):
        check.equal(f"da_signers.params().{name}", getattr(params, name), area[key])
    check.equal("da_entrance.blobPrice()", entrance.blobPrice(), area["blob_price"])
    check.equal("da_entrance.epochWindowSize()", entrance.epochWindowSize(), area["epoch_window"])
    check.admin_roles(signers, "da_signers", ["DEFAULT_ADMIN_ROLE", "PARAMS_ADMIN_ROLE"])
    check.admin_roles(entrance, "da_entrance", ["DEFAULT_ADMIN_ROLE", "PARAMS_ADMIN_ROLE", "PAUSER_ROLE"])

@click.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@stack_option
@click.option("--tokens-per-vote", type=int, default=DEFAULT_TOKENS_PER_VOTE, show_default=True,
              help="Stake (wei) per vote.")
@click.option("--max-votes-per-signer", type=int, default=DEFAULT_MAX_VOTES_PER_SIGNER, show_default=True)
@click.option("--max-quorums", type=int, default=DEFAULT_MAX_QUORUMS, show_default=True)
@click.option("--epoch-blocks", type=int, default=DEFAULT_EPOCH_BLOCKS, show_default=True,
              help="Blocks per DA epoch.")
@click.option("--encoded-slices", type=int, default=DEFAULT_ENCODED_SLICES, show_default=True,
              help="Rows per quorum.")
@click.option("--blob-price", type=int, default=DEFAULT_BLOB_PRICE, show_default=True, help="Wei per blob.")
@click.option("--epoch-window", type=int, default=DEFAULT_EPOCH_WINDOW, show_default=True,
              help="Epochs a blob is served after its own.")
@click.option("--max-signers-per-epoch", type=int, default=DEFAULT_MAX_SIGNERS_PER_EPOCH, show_default=True,
              help="Registrations per epoch (1..128; when full, more votes take a place).")
@click.option("--stake-lock-epochs", type=int, default=None,
              help="Epochs a signer's stake stays locked after its last epoch (default: the window + 1).")
@ADMIN_OPTION
@out_dir_option("da-<network>.json")
def cli(provider: Any, account: Any, tokens_per_vote: int, max_votes_per_signer: int, max_quorums: int,
        epoch_blocks: int, encoded_slices: int, blob_price: int, epoch_window: int, max_signers_per_epoch: int,
        stake_lock_epochs: int | None, admin: str | None, out_dir: Path) -> None:
    """Deploy DASigners + DAEntrance and write deployments/da-<network>.json."""
    from ape import project

    account = deploying_account(provider, account, accounts)
    result = deploy_da(account, project, tokens_per_vote=tokens_per_vote,
                       max_votes_per_signer=max_votes_per_signer, max_quorums=max_quorums,
                       epoch_blocks=epoch_blocks, encoded_slices=encoded_slices, blob_price=blob_price,
                       epoch_window=epoch_window, max_signers_per_epoch=max_signers_per_epoch,
                       stake_lock_epochs=stake_lock_epochs, admin=admin)
    record_deployment(result, provider, out_dir, f"da-{provider.network.name}.json")
