"""`ape run deploy`: deploy the storage log layer (FixedPriceMarket + Flow) — with `--all-areas` every area — and
record it in ``deployments/<network>.json``.

Order: the market first, then Flow pointing at it, then ``market.setFlow(flow)`` (settable once); with
``--all-areas`` every other area's deploy function follows (``AREAS``: ``scripts/deploy_<area>.py``), each given
the addresses of the areas before it, and on a local (dev) network the short windows a local stack wants.

    ape run deploy                                    # local Anvil, test account 0
    ape run deploy --all-areas                        # every area (what `deaios up` runs)
    ZG_RPC_URL=https://evmrpc-testnet.0g.ai ape run deploy --all-areas --network ethereum:zgtestnet:node \
        --account deployer --oracle-signer 0x…        # a live network (docs/deploy.md)

Every transaction goes through a ``deaios.deployment_session.DeploymentSession``: the record is written after each
one, a re-run continues where an interrupted run stopped and never sends a transaction twice, ``--fresh`` starts
a new deployment (the old record is kept as ``<network>.json.<time>.bak``), ``--dry-run`` runs the whole plan on a
throw-away fork of the target chain and prints its gas and cost without sending anything. ``ape run
verify_deployment`` checks the result against the build and against what each area's ``check_deployment``
declares.

``deploy_storage(deployer, project)`` is the reusable part (tests and ``scripts/demo.py`` call it with ape's own
project and accounts); ``check_deployment(check)`` is what verification expects of it.
"""

from __future__ import annotations

import inspect
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand, account_option

from deaios.deployment import (ADMIN_OPTION, Area, deploying_account, load_script, out_dir_option, tx_options,
                               tx_options_of)
from deaios.deployment_record import DeploymentRecord, RecordError, is_address
from deaios.deployment_dry_run import anvil_fork, plan_lines
from deaios.deployment_session import DeploymentSession, TxOptions

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


def check_deployment(check: Any) -> None:
    """What `ape run verify_deployment` expects of the storage contracts deployed by `deploy_storage`."""
    area = check.area("storage")
    market, flow = check.contract("market"), check.contract("flow")
    if market is None or flow is None:
        return
    check.equal("market.flow()", market.flow(), flow.address)
    check.equal("flow.market()", flow.market(), market.address)
    check.equal("market.pricePerSector()", market.pricePerSector(), area["price_per_sector"])
    check.equal("flow.blocksPerEpoch()", flow.blocksPerEpoch(), area["blocks_per_epoch"])
    check.equal("flow.firstBlock()", flow.firstBlock(), area["first_block"])
    check.admin_roles(market, "market", ["DEFAULT_ADMIN_ROLE", "PARAMS_ADMIN_ROLE"])
    check.admin_roles(flow, "flow", ["DEFAULT_ADMIN_ROLE", "PAUSER_ROLE"])


#: The areas --all-areas deploys after storage, in order.
AREAS: list[Area] = [
    Area("da", "deploy_da", "da"),
    Area("compute", "deploy_compute", "compute", local={"lock_time": 60, "decline_window": 10}),
    Area("inft", "deploy_inft", "inft"),
    Area("alignment", "deploy_alignment", "alignment",
         lambda deployed: {"storage_market": deployed["market"], "da_entrance": deployed["da_entrance"]},
         local={"transfer_lock": 0, "epoch_seconds": 60}),
    Area("supervision", "deploy_supervision", "alignment",
         lambda deployed: {"delegation": deployed["alignment_delegation"], "rewards": deployed["alignment_rewards"],
                           "flow": deployed["flow"],
                           "grant_role": deployed["admin"].lower() == deployed["deployer"].lower()}),
    Area("market", "deploy_market", "",
         lambda deployed: {"nft": deployed["inft_nft"], "ledger": deployed["compute_ledger"],
                           "registry": deployed["compute_registry"]}),
]


def area_by_name(name: str) -> Area:
    found = next((a for a in AREAS if a.name == name), None)
    if found is None:
        raise click.UsageError(f"unknown area {name!r} (areas: storage, {', '.join(a.name for a in AREAS)})")
    return found


def deploy_area(session: DeploymentSession, project: Any, area: Area, deployed: dict[str, Any], *,
                admin: str | None, params: dict[str, Any]) -> dict[str, Any]:
    """Run one area's deploy function inside `session`; return its new contracts as flat keys (named
    `<prefix>_<name>`) and its own record under `areas.<name>`, with `block_number` = its first deployment's."""
    function = getattr(load_script(area.script), area.script)
    with session.area(area.name):
        record = function(session.account, project, admin=admin, **area.wiring(deployed), **params)
    steps = session.area_steps(area.name)
    mine = {e["address"].lower() for e in steps if e["kind"] == "deploy"}
    blocks = [e["block_number"] for e in steps if e["kind"] == "deploy"]
    if blocks:
        record["block_number"] = min(blocks)
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if is_address(value) and value.lower() in mine:
            flat[key if not area.prefix or key.startswith(area.prefix + "_") else f"{area.prefix}_{key}"] = value
    return {**flat, "areas": {**deployed.get("areas", {}), area.name: record}}


def area_params(area: Area, local: bool, overrides: dict[str, dict[str, Any]], extra: dict[str, Any]) -> dict:
    """The deploy function's keyword arguments: local windows (dev networks), then `extra`, then --set."""
    params = {**(area.local if local else {}), **extra, **overrides.get(area.name, {})}
    accepted = inspect.signature(getattr(load_script(area.script), area.script)).parameters
    unknown = [k for k in params if k not in accepted]
    if unknown:
        raise click.UsageError(f"--set {area.name}.{unknown[0]}: {area.script}() has no parameter {unknown[0]!r} "
                               f"(it takes: {', '.join(p for p in accepted if p not in ('deployer', 'project'))})")
    return params


def parse_overrides(values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """`--set AREA.NAME=VALUE` (VALUE as JSON when it parses, else a string)."""
    out: dict[str, dict[str, Any]] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        area, dot, name = key.partition(".")
        if not (sep and dot and area and name):
            raise click.UsageError(f"--set {item!r}: expected AREA.NAME=VALUE, e.g. compute.lock_time=600")
        area_by_name(area)
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.setdefault(area, {})[name] = value
    return out


def open_record(path: Path, *, fresh: bool, network: str, chain_id: int, deployer: str,
                options: dict[str, Any]) -> DeploymentRecord:
    """The record to continue, or a new one (`fresh`: the old file is kept as <file>.<time>.bak)."""
    from deaios.procs import project_root

    if path.exists():
        if fresh:
            backup = path.with_name(f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.bak")
            shutil.move(path, backup)
            click.echo(f"--fresh: the previous record is kept as {backup}", err=True)
        else:
            try:
                record = DeploymentRecord.load(path)
            except RecordError as exc:
                raise click.UsageError(str(exc)) from None
            if "format" not in record.data:
                raise click.UsageError(f"{path} was written by an older deploy script and cannot be resumed; "
                                       "--fresh starts a new deployment (and keeps it as a .bak file)")
            click.echo(f"continuing the deployment in {path} ({record.data.get('status')}, "
                       f"{len(record.steps)} transactions recorded)", err=True)
            return record
    return DeploymentRecord.start(path, network=network, chain_id=chain_id, deployer=deployer, options=options,
                                  source_root=project_root())


def run_deployment(session: DeploymentSession, project: Any, *, storage: dict[str, Any], admin: str | None,
                   all_areas: bool, local: bool, overrides: dict[str, dict[str, Any]],
                   extra: dict[str, dict[str, Any]]) -> None:
    """Storage, then (with all_areas) every area; the record is completed and published area by area."""
    record = session.record
    session.check_chain()
    session.resolve_pending()
    wrapped = session.wrap(project)
    with session.area("storage"):
        result = deploy_storage(session.account, wrapped, admin=admin, **storage)
    result["areas"] = {"storage": dict(result)}
    record.publish(result)
    if all_areas:
        for area in AREAS:
            params = area_params(area, local, overrides, extra.get(area.name, {}))
            record.publish(deploy_area(session, wrapped, area, record.data, admin=admin, params=params))
    record.mark_complete()


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
@click.option("--oracle-signer", default=None,
              help="With --all-areas: the INFT re-encryption oracle's signing address (required on a live network).")
@click.option("--set", "overrides", multiple=True, metavar="AREA.NAME=VALUE",
              help="With --all-areas: a parameter of an area's deploy function, e.g. compute.lock_time=600 "
                   "(repeatable; VALUE is JSON or a string).")
@click.option("--fresh", is_flag=True, help="Start a new deployment instead of continuing the recorded one "
              "(the old record is kept as <network>.json.<time>.bak).")
@click.option("--redeploy", multiple=True, metavar="AREA",
              help="Deploy AREA's contracts again (new addresses; the old steps are kept under `replaced`) and make "
                   "every call that names them again (re-wiring). An area whose constructors take a redeployed "
                   "contract must be named too. Repeatable.")
@click.option("--dry-run", is_flag=True, help="Run the plan on a throw-away fork of the target chain and print "
              "every transaction's gas and the cost at the current gas price; sends nothing.")
@tx_options
@out_dir_option("<network>.json")
def cli(provider: Any, account: Any, price_per_sector: int, blocks_per_epoch: int, deploy_delay: int,
        admin: str | None, all_areas: bool, oracle_signer: str | None, overrides: tuple[str, ...], fresh: bool,
        redeploy: tuple[str, ...], dry_run: bool, out_dir: Path, **gas: Any) -> None:
    """Deploy Flow + FixedPriceMarket (with --all-areas: every area) and write deployments/<network>.json."""
    from ape import project

    txo = tx_options_of(gas)
    local = bool(provider.network.is_dev)
    parsed = parse_overrides(overrides)
    if (overrides or oracle_signer) and not all_areas:
        raise click.UsageError("--set and --oracle-signer configure other areas: they need --all-areas")
    if all_areas and not local and not (oracle_signer or parsed.get("inft", {}).get("oracle_signer")):
        raise click.UsageError("--oracle-signer ADDRESS is required with --all-areas on a live network (the INFT "
                               "oracle's signing address: the address of the key `deaios inft oracle` runs with)")
    account = deploying_account(provider, account, accounts)
    storage = {"price_per_sector": price_per_sector, "blocks_per_epoch": blocks_per_epoch,
               "deploy_delay": deploy_delay}
    extra = {"inft": {"oracle_signer": oracle_signer}} if oracle_signer else {}
    for area in AREAS if all_areas else []:
        area_params(area, local, parsed, extra.get(area.name, {}))  # unknown --set names fail before spending
    for name in redeploy:
        if name != "storage":
            area_by_name(name)
            if not all_areas:
                raise click.UsageError(f"--redeploy {name}: that area is deployed with --all-areas")
    if redeploy and fresh:
        raise click.UsageError("--redeploy changes a recorded deployment; --fresh starts a new one")
    options = {**storage, "admin": admin, "all_areas": all_areas, "oracle_signer": oracle_signer,
               "set": list(overrides)}
    network = provider.network.name
    path = out_dir / f"{network}.json"

    def run(record: DeploymentRecord, target: Any) -> DeploymentSession:
        if redeploy and not record.steps:
            raise click.UsageError(f"--redeploy: {path} records no deployment to change")
        record.redeploy(list(redeploy))
        session = DeploymentSession(record, account, target, tx_options=txo)
        run_deployment(session, project, storage=storage, admin=admin, all_areas=all_areas, local=local,
                       overrides=parsed, extra=extra)
        return session

    if dry_run:
        print_dry_run(provider, account, path, fresh, options, txo, run)
        return
    record = open_record(path, fresh=fresh, network=network, chain_id=provider.chain_id, deployer=account.address,
                         options=options)
    session = run(record, provider)
    click.echo(json.dumps({"network": network, "chain_id": provider.chain_id, **record.addresses(),
                           "block_number": record.data.get("block_number")}, indent=2))
    click.echo(f"wrote {path}: {sum(1 for _ in record.deployments())} contracts, {len(session.executed)} "
               f"transactions sent by this run", err=True)


def print_dry_run(provider: Any, account: Any, path: Path, fresh: bool, options: dict[str, Any], txo: TxOptions,
                  run: Callable[[DeploymentRecord, Any], DeploymentSession]) -> None:
    """Run the deployment against a fork of the target chain and a scratch copy of the record; print the plan."""
    price = txo.gas_price or txo.max_fee or int(provider.gas_price)
    balance = int(provider.get_balance(account.address))
    head = provider.get_block("latest").number
    with tempfile.TemporaryDirectory(prefix="deaios-dry-run-") as tmp:
        scratch = Path(tmp) / path.name
        if path.exists() and not fresh:
            shutil.copy(path, scratch)
        with anvil_fork(provider.uri, provider.chain_id, Path(tmp)) as url, \
                provider.network.use_provider("node", provider_settings={"uri": url}, disconnect_after=True) as fork:
            record = open_record(scratch, fresh=False, network=provider.network.name, chain_id=fork.chain_id,
                                 deployer=account.address, options=options)
            session = run(record, fork)
    click.echo(f"dry run on a fork of {provider.network.name} (chain id {provider.chain_id}) at block {head}: "
               "nothing was sent to the chain")
    for line in plan_lines(record, session.executed, price, balance):
        click.echo(line)
