"""`ape run deploy_market`: deploy the AI marketplace and record the addresses.

Deploys ``AgentMarket(nft, admin, settleWindow)`` for an existing ERC-7857 contract and, when the compute
market's ledger and registry are given, ``ComputeBundleMarket(ledger, registry, admin)``, then grants the
markets the roles they need: ``DELEGATION_LOCKER_ROLE`` on the token (a purchase freezes the buyer's access
delegation) and ``FUNDER_ROLE`` on the ledger (bundles are paid into the buyer's sub-account). Grants the
deployer cannot make (it is not the token's or the ledger's admin) are listed under ``pending_role_grants``
for the admin to make. The addresses and parameters are written to ``deployments/<network>-market.json``.

    ape run deploy_market --nft 0x…                      # local Anvil, test account 0
    ape run deploy_market                                # --nft / --ledger / --registry read from
                                                         # deployments/<network>-inft.json and -compute.json;
                                                         # on the default local network (a fresh Anvil per
                                                         # run) the INFT contract (and the compute contracts,
                                                         # when recorded) are deployed first
    ZG_RPC_URL=https://evmrpc-testnet.0g.ai ape run deploy_market --network ethereum:zgtestnet:node \
        --account <alias> --nft 0x…

``deploy_market(deployer, project, nft=…)`` is the reusable part (tests and the local stack call it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand, account_option

from deaios.deployment import (ADMIN_OPTION, dependency, deploying_account, load_script, out_dir_option,
                               record_deployment, recorded_address, stack_option)

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


@click.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@stack_option
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
    account = deploying_account(provider, account, accounts)
    inft_file, compute_file = out_dir / f"{network}-inft.json", out_dir / f"{network}-compute.json"

    def compute() -> str:
        deployed = load_script("deploy_compute").deploy_compute(account, project)
        nonlocal registry
        registry = deployed["registry"]
        return deployed["ledger"]

    nft = dependency(provider, nft, "--nft", inft_file, NFT_KEYS,
                     lambda: load_script("deploy_inft").deploy_inft(account, project)["nft"], "the INFT contract")
    bundles_wanted = bool(ledger or recorded_address(compute_file, ("ledger",)))
    ledger = dependency(provider, ledger, "--ledger", compute_file, ("ledger",), compute if bundles_wanted else None,
                        "the compute ledger")
    if ledger and not registry:
        registry = dependency(provider, None, "--registry", compute_file, ("registry",), None,
                              "the compute registry")
    result = deploy_market(
        account, project, nft=nft, ledger=ledger, registry=registry, settle_window=settle_window, admin=admin
    )
    record_deployment(result, provider, out_dir, f"{network}-market.json")
