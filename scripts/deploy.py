"""`ape run deploy`: deploy the storage log layer (FixedPriceMarket + Flow) and record the addresses.

Order: the market first, then Flow pointing at it, then ``market.setFlow(flow)`` (settable once).
The addresses and parameters are written to ``deployments/<network>.json`` (e.g. ``local.json``,
``zgtestnet.json``).

    ape run deploy                                    # local Anvil, test account 0
    ape run deploy --all-areas                        # + DA, compute market, … (what `deaios up` runs)
    ZG_RPC_URL=https://evmrpc-testnet.0g.ai ape run deploy --network ethereum:zgtestnet:node --account <alias>

``deploy_storage(deployer, project)`` is the reusable part (tests and ``scripts/demo.py`` call it).
``--all-areas`` then runs every other area's deploy function (``scripts/deploy_<area>.py``, in
``AREA_SCRIPTS`` order, with the short windows a local network wants) and adds their addresses to the same
record under ``<area>_<name>`` keys (e.g. ``da_entrance``, ``compute_ledger``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand, account_option

from deaios.deployment import ADMIN_OPTION, deploying_account, load_script, out_dir_option, record_deployment

#: 0G's default: 3 months × 1 unit × 1e18 / 1024³ / 12 wei per 256-byte sector.
DEFAULT_PRICE_PER_SECTOR = 232_830_643
#: 0G's default epoch length: 1e9 blocks, i.e. mining is effectively off.
DEFAULT_BLOCKS_PER_EPOCH = 1_000_000_000
DEFAULT_DEPLOY_DELAY = 0


def deploy_storage(
    deployer: Any,
    project: Any,
    *,
    price_per_sector: int = DEFAULT_PRICE_PER_SECTOR,
    blocks_per_epoch: int = DEFAULT_BLOCKS_PER_EPOCH,
    deploy_delay: int = DEFAULT_DEPLOY_DELAY,
    admin: str | None = None,
) -> dict[str, Any]:
    """Deploy FixedPriceMarket and Flow, link them, and return addresses and parameters.

    ``admin`` (default: the deployer) receives the admin, pauser and params-admin roles; when it
    differs from the deployer, the deployer hands the market's roles over and keeps none.
    """
    admin_address = admin or deployer.address
    market = project.FixedPriceMarket.deploy(price_per_sector, deployer.address, sender=deployer)
    flow = project.Flow.deploy(market.address, blocks_per_epoch, deploy_delay, admin_address, sender=deployer)
    market.setFlow(flow.address, sender=deployer)
    if admin_address.lower() != deployer.address.lower():
        for role in (market.PARAMS_ADMIN_ROLE(), market.DEFAULT_ADMIN_ROLE()):
            market.grantRole(role, admin_address, sender=deployer)
        for role in (market.PARAMS_ADMIN_ROLE(), market.DEFAULT_ADMIN_ROLE()):
            market.renounceRole(role, deployer.address, sender=deployer)
    first_block = flow.firstBlock()
    return {
        "chain_id": chain.chain_id,
        "flow": flow.address,
        "market": market.address,
        "price_per_sector": price_per_sector,
        "blocks_per_epoch": blocks_per_epoch,
        "deploy_delay": deploy_delay,
        "first_block": first_block,
        "deployer": deployer.address,
        "admin": admin_address,
        "block_number": first_block - deploy_delay,  # the Flow deployment block
    }


#: Other areas deployed by --all-areas, in order: (script, function, key prefix — "" when the record's own keys
#: are distinct enough, keyword arguments for a local network computed from the addresses deployed so far —
#: the flat ``<prefix>_<name>`` keys plus the storage ``flow`` and ``market``).
AREA_SCRIPTS: list[tuple[str, str, str, Callable[[dict[str, Any]], dict[str, Any]]]] = [
    ("deploy_da", "deploy_da", "da", lambda deployed: {}),
    ("deploy_compute", "deploy_compute", "compute", lambda deployed: {"lock_time": 60, "decline_window": 10}),
    ("deploy_inft", "deploy_inft", "inft", lambda deployed: {}),
    ("deploy_alignment", "deploy_alignment", "alignment",
     lambda deployed: {"storage_market": deployed["market"], "da_entrance": deployed["da_entrance"],
                       "transfer_lock": 0, "epoch_seconds": 60}),
    ("deploy_supervision", "deploy_supervision", "alignment",
     lambda deployed: {"delegation": deployed["alignment_delegation"], "rewards": deployed["alignment_rewards"],
                       "flow": deployed["flow"], "grant_role": True}),
    ("deploy_market", "deploy_market", "",
     lambda deployed: {"nft": deployed["inft_nft"], "ledger": deployed["compute_ledger"],
                       "registry": deployed["compute_registry"]}),
]


def deploy_areas(deployer: Any, project: Any, deployed: dict[str, Any], admin: str | None = None) -> dict[str, Any]:
    """Deploy every area of AREA_SCRIPTS after the storage contracts in ``deployed``; return the new contracts'
    addresses as flat ``<prefix>_<name>`` keys plus each area's full record under ``areas``."""
    known = dict(deployed)
    flat: dict[str, Any] = {}
    records: dict[str, Any] = {}
    for script, function, prefix, local_kwargs in AREA_SCRIPTS:
        record = getattr(load_script(script), function)(deployer, project, admin=admin, **local_kwargs(known))
        records[prefix] = record
        for key, value in record.items():
            if isinstance(value, str) and value.startswith("0x") and len(value) == 42 \
                    and value not in known.values() and chain.provider.get_code(value):
                # new contracts only: not signer/admin accounts, not the earlier contracts it was given
                name = key if not prefix or key.startswith(prefix + "_") else f"{prefix}_{key}"
                flat[name] = known[name] = value
    flat["areas"] = records
    return flat


@click.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@click.option("--price-per-sector", type=int, default=DEFAULT_PRICE_PER_SECTOR, show_default=True,
              help="Market price in wei per 256-byte sector.")
@click.option("--blocks-per-epoch", type=int, default=DEFAULT_BLOCKS_PER_EPOCH, show_default=True,
              help="Mining epoch length in blocks (the default keeps mining off).")
@click.option("--deploy-delay", type=int, default=DEFAULT_DEPLOY_DELAY, show_default=True,
              help="Flow accepts submissions from deploy block + delay on.")
@ADMIN_OPTION
@click.option("--all-areas", is_flag=True, help="Also deploy every other area (DA, compute market, …).")
@out_dir_option("<network>.json")
def cli(provider: Any, account: Any, price_per_sector: int, blocks_per_epoch: int, deploy_delay: int,
        admin: str | None, all_areas: bool, out_dir: Path) -> None:
    """Deploy Flow + FixedPriceMarket and write deployments/<network>.json."""
    from ape import project

    account = deploying_account(provider, account, accounts)
    result = deploy_storage(account, project, price_per_sector=price_per_sector,
                            blocks_per_epoch=blocks_per_epoch, deploy_delay=deploy_delay, admin=admin)
    if all_areas:
        result.update(deploy_areas(account, project, result, admin=admin))
    record_deployment(result, provider, out_dir, f"{provider.network.name}.json")
