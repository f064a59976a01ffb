"""`ape run deploy_market`: deploy the AI marketplace and record the addresses.

Deploys ``AgentMarket(nft, admin, settleWindow)`` for an existing ERC-7857 contract and, when the compute
market's ledger and registry are given, ``ComputeBundleMarket(ledger, registry, admin)``, then grants the
markets the roles they need: ``DELEGATION_LOCKER_ROLE`` on the token (a purchase freezes the buyer's access
delegation) and ``FUNDER_ROLE`` on the ledger (bundles are paid into the buyer's sub-account). Grants the
deployer cannot make (it is not the token's or the ledger's admin) are listed under ``pending_role_grants``
for the admin to make. The addresses and parameters are written to ``deployments/<network>-market.json``.

    ape run deploy_market --nft 0x…                      # local Anvil, test account 0
    ape run deploy_market                                # --nft / --ledger / --registry read from
                                                         # deployments/<network>-inft.json and -compute.json
    ZG_RPC_URL=https://evmrpc-testnet.0g.ai ape run deploy_market --network ethereum:zgtestnet:node \
        --account <alias> --nft 0x…

``deploy_market(deployer, project, nft=…)`` is the reusable part (tests and the local stack call it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand, account_option

from deaios.deployment import ADMIN_OPTION, deploying_account, out_dir_option, record_deployment

#: Seconds a buyer's escrowed payment waits for settlement (the oracle's re-encryption) before it can be
#: reclaimed.
DEFAULT_SETTLE_WINDOW = 86_400
#: Keys under which an INFT deployment file may name the token contract.
NFT_KEYS = ("agent_nft", "nft", "inft")


def deploy_market(
    deployer: Any,
    project: Any,
    *,
    nft: str,
    ledger: str | None = None,
    registry: str | None = None,
    settle_window: int = DEFAULT_SETTLE_WINDOW,
    admin: str | None = None,
) -> dict[str, Any]:
    """Deploy the agent market for ERC-7857 contract ``nft`` (and the compute bundle market when ``ledger``
    and ``registry`` are given); return addresses and parameters.

    ``admin`` (default: the deployer) receives every admin, params-admin and pauser role; the deployer keeps
    none when it differs.
    """
    admin_address = admin or deployer.address
    market = project.AgentMarket.deploy(nft, admin_address, settle_window, sender=deployer)
    result: dict[str, Any] = {"chain_id": chain.chain_id, "agent_market": market.address}
    pending: list[dict[str, str]] = []
    _grant(project.AgentNFT.at(nft), "DELEGATION_LOCKER_ROLE", market.address, deployer, pending)
    if ledger and registry:
        bundles = project.ComputeBundleMarket.deploy(ledger, registry, admin_address, sender=deployer)
        result["compute_bundles"] = bundles.address
        _grant(project.ComputeLedger.at(ledger), "FUNDER_ROLE", bundles.address, deployer, pending)
    if pending:
        result["pending_role_grants"] = pending
        click.echo(f"the admin must still grant: {pending}", err=True)
    result.update(
        {
            "nft": nft,
            "ledger": ledger,
            "registry": registry,
            "settle_window": settle_window,
            "deployer": deployer.address,
            "admin": admin_address,
            "block_number": chain.blocks.head.number,
        }
    )
    return result


def check_deployment(check: Any) -> None:
    """What `ape run verify_deployment` expects of the marketplace contracts deployed by `deploy_market`."""
    area = check.area("market")
    market = check.contract("agent_market")
    if market is None:
        return
    check.equal("agent_market.nft()", market.nft(), area["nft"])
    check.equal("agent_market.settleWindow()", market.settleWindow(), area["settle_window"])
    check.admin_roles(market, "agent_market", ["DEFAULT_ADMIN_ROLE", "PARAMS_ADMIN_ROLE", "PAUSER_ROLE"])
    if area.get("ledger") and area.get("registry"):
        bundles = check.contract("compute_bundles")
        if bundles is not None:
            check.equal("compute_bundles.ledger()", bundles.ledger(), area["ledger"])
            check.equal("compute_bundles.registry()", bundles.registry(), area["registry"])
            check.admin_roles(bundles, "compute_bundles", ["DEFAULT_ADMIN_ROLE", "PAUSER_ROLE"])

def _grant(contract: Any, role_name: str, account: str, deployer: Any, pending: list[dict[str, str]]) -> None:
    """Grant `role_name` of `contract` to `account` when the deployer may; else record it in `pending`."""
    role = getattr(contract, role_name)()
    if contract.hasRole(contract.DEFAULT_ADMIN_ROLE(), deployer.address):
        contract.grantRole(role, account, sender=deployer)
    else:
        pending.append({"contract": contract.address, "role": role_name, "account": account})


def _from_file(path: Path, keys: tuple[str, ...]) -> str | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return next((data[k] for k in keys if data.get(k)), None)


@click.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@click.option("--nft", default=None, help="ERC-7857 contract (default: from <network>-inft.json).")
@click.option("--ledger", default=None, help="ComputeLedger (default: from <network>-compute.json).")
@click.option("--registry", default=None, help="ServiceRegistry (default: from <network>-compute.json).")
@click.option(
    "--settle-window",
    type=int,
    default=DEFAULT_SETTLE_WINDOW,
    show_default=True,
    help="Seconds a purchase may wait for settlement (60 .. 2592000).",
)
@ADMIN_OPTION
@out_dir_option("<network>-market.json (and where the inft/compute files are read)")
def cli(
    provider: Any,
    account: Any,
    nft: str | None,
    ledger: str | None,
    registry: str | None,
    settle_window: int,
    admin: str | None,
    out_dir: Path,
) -> None:
    """Deploy the AI marketplace (agent market + compute bundle market) and write <network>-market.json."""
    from ape import project

    network = provider.network.name
    nft = nft or _from_file(out_dir / f"{network}-inft.json", NFT_KEYS)
    if not nft:
        raise click.UsageError(f"--nft is required (no {out_dir}/{network}-inft.json)")
    compute_file = out_dir / f"{network}-compute.json"
    ledger = ledger or _from_file(compute_file, ("ledger",))
    registry = registry or _from_file(compute_file, ("registry",))
    account = deploying_account(provider, account, accounts)
    result = deploy_market(
        account, project, nft=nft, ledger=ledger, registry=registry, settle_window=settle_window, admin=admin
    )
    record_deployment(result, provider, out_dir, f"{network}-market.json")
