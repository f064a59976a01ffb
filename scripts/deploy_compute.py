"""`ape run deploy_compute`: deploy the compute market and record the addresses.

Order: ComputeLedger, ServiceRegistry, ComputeMatcher(ledger, registry), FineTuningServing(ledger, registry);
then the ledger grants MATCHER_ROLE to the matcher and SPENDER_ROLE to the fine-tuning contract, and the
registry MATCHER_ROLE to the matcher (strikes). The addresses and parameters are written to
``deployments/<network>-compute.json``.

    ape run deploy_compute                                        # local Anvil, test account 0
    ape run deploy_compute --lock-time 60 --decline-window 10     # short windows for a local demo
    ZG_RPC_URL=https://evmrpc-testnet.0g.ai ape run deploy_compute --network ethereum:zgtestnet:node \
        --account <alias>

``deploy_compute(deployer, project)`` is the reusable part (tests and demos call it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand, account_option

from deaios.deployment import ADMIN_OPTION, deploying_account, out_dir_option, record_deployment, stack_option

ETHER = 10**18
#: Seconds a requested sub-account refund stays locked (0G allows 1 h .. 7 d; ours 1 min .. 7 d).
DEFAULT_LOCK_TIME = 3600
#: Smallest ledger deposit and smallest transfer into a sub-account (0G: 3 and 1 0G; smaller here).
DEFAULT_MIN_DEPOSIT = ETHER // 100
DEFAULT_MIN_TRANSFER = ETHER // 1000
#: Stake of a service, returned on removal (0G: 100 0G).
DEFAULT_MIN_STAKE = ETHER // 10
#: Seconds a matched provider has to decline a request.
DEFAULT_DECLINE_WINDOW = 60
#: Share of a fine-tuning fee paid for an unacknowledged deliverable (basis points).
DEFAULT_PENALTY_BPS = 3000
#: Seconds a user has to acknowledge a fine-tuning deliverable before a penalty settlement.
DEFAULT_ACK_WINDOW = 3600


def deploy_compute(
    deployer: Any,
    project: Any,
    *,
    lock_time: int = DEFAULT_LOCK_TIME,
    min_deposit: int = DEFAULT_MIN_DEPOSIT,
    min_transfer: int = DEFAULT_MIN_TRANSFER,
    min_stake: int = DEFAULT_MIN_STAKE,
    decline_window: int = DEFAULT_DECLINE_WINDOW,
    penalty_bps: int = DEFAULT_PENALTY_BPS,
    ack_window: int = DEFAULT_ACK_WINDOW,
    price_increase_delay: int | None = None,
    strike_penalty: int | None = None,
    admin: str | None = None,
) -> dict[str, Any]:
    """Deploy and wire the four compute contracts; return addresses and parameters.

    ``price_increase_delay`` defaults to ``lock_time`` (a funded user can leave before a price increase is
    billed), ``strike_penalty`` to a tenth of ``min_stake``. ``admin`` (default: the deployer) receives every
    admin, params-admin and pauser role; when it differs from the deployer, the deployer hands the roles over
    after wiring and keeps none.
    """
    admin_address = admin or deployer.address
    price_increase_delay = lock_time if price_increase_delay is None else price_increase_delay
    strike_penalty = min_stake // 10 if strike_penalty is None else strike_penalty
    ledger = project.ComputeLedger.deploy(
        deployer.address, lock_time, min_deposit, min_transfer, sender=deployer
    )
    registry = project.ServiceRegistry.deploy(
        deployer.address, min_stake, price_increase_delay, strike_penalty, sender=deployer
    )
    matcher = project.ComputeMatcher.deploy(
        ledger.address, registry.address, deployer.address, decline_window, sender=deployer
    )
    fine_tuning = project.FineTuningServing.deploy(
        ledger.address, registry.address, deployer.address, penalty_bps, ack_window, sender=deployer
    )
    ledger.grantRole(ledger.MATCHER_ROLE(), matcher.address, sender=deployer)
    ledger.grantRole(ledger.SPENDER_ROLE(), fine_tuning.address, sender=deployer)
    registry.grantRole(registry.MATCHER_ROLE(), matcher.address, sender=deployer)
    if admin_address.lower() != deployer.address.lower():
        for contract in (ledger, registry, matcher, fine_tuning):
            roles = [contract.PARAMS_ADMIN_ROLE()]
            if hasattr(contract, "PAUSER_ROLE"):
                roles.append(contract.PAUSER_ROLE())
            roles.append(contract.DEFAULT_ADMIN_ROLE())  # last: needed to grant the others
            for role in roles:
                contract.grantRole(role, admin_address, sender=deployer)
            for role in roles:
                contract.renounceRole(role, deployer.address, sender=deployer)
    return {
        "chain_id": chain.chain_id,
        "ledger": ledger.address,
        "registry": registry.address,
        "matcher": matcher.address,
        "fine_tuning": fine_tuning.address,
        "lock_time": lock_time,
        "min_deposit": min_deposit,
        "min_transfer": min_transfer,
        "min_stake": min_stake,
        "decline_window": decline_window,
        "penalty_bps": penalty_bps,
        "ack_window": ack_window,
        "price_increase_delay": price_increase_delay,
        "strike_penalty": strike_penalty,
        "deployer": deployer.address,
        "admin": admin_address,
        "block_number": chain.blocks.head.number,
    }


def check_deployment(check: Any) -> None:
    """What `ape run verify_deployment` expects of the compute contracts deployed by `deploy_compute`."""
    area = check.area("compute")
    ledger, registry = check.contract("compute_ledger"), check.contract("compute_registry")
    matcher, fine_tuning = check.contract("compute_matcher"), check.contract("compute_fine_tuning")
    if None in (ledger, registry, matcher, fine_tuning):
        return
    for name, contract in (("compute_matcher", matcher), ("compute_fine_tuning", fine_tuning)):
        check.equal(f"{name}.ledger()", contract.ledger(), ledger.address)
        check.equal(f"{name}.registry()", contract.registry(), registry.address)
    check.role(ledger, "compute_ledger", "MATCHER_ROLE", matcher.address, "compute_matcher")
    check.role(ledger, "compute_ledger", "SPENDER_ROLE", fine_tuning.address, "compute_fine_tuning")
    check.equal("compute_ledger.lockTime()", ledger.lockTime(), area["lock_time"])
    check.equal("compute_ledger.minDeposit()", ledger.minDeposit(), area["min_deposit"])
    check.equal("compute_ledger.minTransfer()", ledger.minTransfer(), area["min_transfer"])
    check.equal("compute_registry.minStake()", registry.minStake(), area["min_stake"])
    check.equal("compute_matcher.declineWindow()", matcher.declineWindow(), area["decline_window"])
    check.equal("compute_fine_tuning.penaltyBps()", fine_tuning.penaltyBps(), area["penalty_bps"])
    check.equal("compute_fine_tuning.ackWindow()", fine_tuning.ackWindow(), area["ack_window"])
    for name, contract in (("compute_ledger", ledger), ("compute_registry", registry), ("compute_matcher", matcher)):
        check.admin_roles(contract, name, ["DEFAULT_ADMIN_ROLE", "PARAMS_ADMIN_ROLE", "PAUSER_ROLE"])
    check.admin_roles(fine_tuning, "compute_fine_tuning", ["DEFAULT_ADMIN_ROLE", "PARAMS_ADMIN_ROLE"])

@click.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@stack_option
@click.option(
    "--lock-time",
    type=int,
    default=DEFAULT_LOCK_TIME,
    show_default=True,
    help="Seconds a sub-account refund stays locked (60 .. 604800).",
)
@click.option(
    "--min-deposit",
    type=int,
    default=DEFAULT_MIN_DEPOSIT,
    show_default=True,
    help="Smallest ledger deposit, wei.",
)
@click.option(
    "--min-transfer",
    type=int,
    default=DEFAULT_MIN_TRANSFER,
    show_default=True,
    help="Smallest transfer into a sub-account (and match deposit), wei.",
)
@click.option(
    "--min-stake",
    type=int,
    default=DEFAULT_MIN_STAKE,
    show_default=True,
    help="Stake to register a service, wei.",
)
@click.option(
    "--decline-window",
    type=int,
    default=DEFAULT_DECLINE_WINDOW,
    show_default=True,
    help="Seconds a matched provider may decline (10 .. 86400).",
)
@click.option(
    "--penalty-bps",
    type=int,
    default=DEFAULT_PENALTY_BPS,
    show_default=True,
    help="Fine-tuning fee share paid for unacknowledged deliverables, basis points.",
)
@click.option(
    "--ack-window",
    type=int,
    default=DEFAULT_ACK_WINDOW,
    show_default=True,
    help="Seconds a user has to acknowledge a fine-tuning deliverable.",
)
@click.option(
    "--price-increase-delay",
    type=int,
    default=None,
    help="Seconds before an announced price increase is billed (default: the lock time).",
)
@click.option(
    "--strike-penalty",
    type=int,
    default=None,
    help="Stake a provider loses per declined or ignored match, wei (default: a tenth of the minimum stake).",
)
@ADMIN_OPTION
@out_dir_option("<network>-compute.json")
def cli(
    provider: Any,
    account: Any,
    lock_time: int,
    min_deposit: int,
    min_transfer: int,
    min_stake: int,
    decline_window: int,
    penalty_bps: int,
    ack_window: int,
    price_increase_delay: int | None,
    strike_penalty: int | None,
    admin: str | None,
    out_dir: Path,
) -> None:
    """Deploy the compute market (ledger, registry, matcher, fine-tuning) and write <network>-compute.json."""
    from ape import project

    account = deploying_account(provider, account, accounts)
    result = deploy_compute(
        account,
        project,
        lock_time=lock_time,
        min_deposit=min_deposit,
        min_transfer=min_transfer,
        min_stake=min_stake,
        decline_window=decline_window,
        penalty_bps=penalty_bps,
        ack_window=ack_window,
        price_increase_delay=price_increase_delay,
        strike_penalty=strike_penalty,
        admin=admin,
    )
    record_deployment(result, provider, out_dir, f"{provider.network.name}-compute.json")
