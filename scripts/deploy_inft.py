"""`ape run deploy_inft`: deploy the ERC-7857 intelligent NFT (DataVerifier + AgentNFT) and record them.

Order: DataVerifier(admin, oracle signer), then AgentNFT(admin, verifier, royalty bps). The addresses and
parameters are written to ``deployments/<network>-inft.json``.

    ape run deploy_inft --oracle-signer 0x…                      # local Anvil, test account 0
    ZG_RPC_URL=https://evmrpc-testnet.0g.ai ape run deploy_inft --network ethereum:zgtestnet:node \
        --account <alias> --oracle-signer 0x…

``deploy_inft(deployer, project, oracle_signer=…)`` is the reusable part (tests and the local stack call it).
The oracle signer is the address of the key `deaios inft oracle --key` runs with; the local stack uses
Anvil dev key 15 (``LOCAL_ORACLE_SIGNER``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand, account_option
from deaios.deployment import ADMIN_OPTION, deploying_account, out_dir_option, record_deployment, stack_option
from deaios.stack.config import DEV_KEY_ROLES, dev_address

#: Royalty paid to a token's creator on marketplace sales, basis points (5 %).
DEFAULT_ROYALTY_BPS = 500
#: The local stack's INFT oracle: Anvil dev key 15 (`DEV_KEY_ROLES`), 0xcd3B…ce71.
LOCAL_ORACLE_SIGNER = dev_address(DEV_KEY_ROLES["INFT oracle"])  # type: ignore[arg-type]


def deploy_inft(
    deployer: Any,
    project: Any,
    *,
    admin: str | None = None,
    oracle_signer: str | None = None,
    royalty_bps: int = DEFAULT_ROYALTY_BPS,
) -> dict[str, Any]:
    """Deploy the verifier and the NFT; return addresses and parameters.

    ``oracle_signer`` (default: ``LOCAL_ORACLE_SIGNER``, only on a local network) is the oracle's
    signing address. ``admin`` (default: the deployer) gets the admin and pauser roles of both contracts
    directly; the deployer keeps none when it differs.
    """
    admin_address = admin or deployer.address
    if oracle_signer is None:
        if not chain.provider.network.is_dev:
            raise click.UsageError("--oracle-signer is required on a live network")
        oracle_signer = LOCAL_ORACLE_SIGNER
    verifier = project.DataVerifier.deploy(admin_address, oracle_signer, sender=deployer)
    nft = project.AgentNFT.deploy(admin_address, verifier.address, royalty_bps, sender=deployer)
    return {
        "chain_id": chain.chain_id,
        "nft": nft.address,
        "verifier": verifier.address,
        "oracle_signer": oracle_signer,
        "royalty_bps": royalty_bps,
        "deployer": deployer.address,
        "admin": admin_address,
        "block_number": chain.blocks.head.number,
    }


def check_deployment(check: Any) -> None:
    """What `ape run verify_deployment` expects of the INFT contracts deployed by `deploy_inft`."""
    area = check.area("inft")
    nft, verifier = check.contract("inft_nft"), check.contract("inft_verifier")
    if nft is None or verifier is None:
        return
    check.equal("inft_nft.verifier()", nft.verifier(), verifier.address)
    check.equal("inft_verifier.oracleSigner()", verifier.oracleSigner(), area["oracle_signer"])
    check.equal("inft_nft.royaltyBps()", nft.royaltyBps(), area["royalty_bps"])
    check.admin_roles(nft, "inft_nft", ["DEFAULT_ADMIN_ROLE", "PAUSER_ROLE"])
    check.admin_roles(verifier, "inft_verifier", ["DEFAULT_ADMIN_ROLE", "PAUSER_ROLE"])

@click.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@stack_option
@click.option(
    "--oracle-signer",
    default=None,
    help="The oracle's signing address (default on a local network: Anvil dev key 15's).",
)
@click.option(
    "--royalty-bps",
    type=int,
    default=DEFAULT_ROYALTY_BPS,
    show_default=True,
    help="Creator royalty for new tokens, basis points (at most 2500).",
)
@ADMIN_OPTION
@out_dir_option("<network>-inft.json")
def cli(
    provider: Any, account: Any, oracle_signer: str | None, royalty_bps: int, admin: str | None, out_dir: Path
) -> None:
    """Deploy DataVerifier + AgentNFT and write <network>-inft.json."""
    from ape import project

    account = deploying_account(provider, account, accounts)
    result = deploy_inft(account, project, admin=admin, oracle_signer=oracle_signer, royalty_bps=royalty_bps)
    record_deployment(result, provider, out_dir, f"{provider.network.name}-inft.json")
