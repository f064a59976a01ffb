"""`ape run deploy_alignment`: deploy the alignment-node economy (license, delegation, rewards, governor).

Order: AlignmentLicense, AlignmentDelegation(license), AlignmentRewards(license, delegation),
AlignmentGovernor(license); then ``delegation.setRewards(rewards)`` and ``license.setDelegation(delegation)``
(both settable once). The rewards pool is funded with ``reward_funding`` wei. The governor gets
PARAMS_ADMIN_ROLE on the rewards contract and its ``setRewardPerLicense`` is allowlisted; when
``storage_market`` / ``da_entrance`` addresses are given, the governor also gets PARAMS_ADMIN_ROLE there
(the deployer must hold their DEFAULT_ADMIN_ROLE; otherwise the grant is listed under ``pending_grants`` for
their admin) and ``FixedPriceMarket.setPricePerSector`` / ``DAEntrance.setBlobPrice`` are allowlisted.

The supervision contract must then be granted ``AlignmentRewards.SUPERVISION_ROLE`` (=
keccak256("SUPERVISION_ROLE"), also in the record as ``supervision_role``) by the rewards admin.
The addresses and parameters are written to ``deployments/<network>-alignment.json``.

    ape run deploy_alignment                                   # local Anvil, test account 0, cheap & quick
    ape run deploy_alignment --storage-market 0x… --da-entrance 0x…
    ZG_RPC_URL=https://evmrpc-testnet.0g.ai ape run deploy_alignment --network ethereum:zgtestnet:node \
        --account <alias> --reward-funding 0

``deploy_alignment(deployer, project)`` is the reusable part (tests and the local stack call it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand, account_option
from eth_utils import keccak

from deaios.deployment import (ADMIN_OPTION, deploying_account, out_dir_option, record_deployment, selected_stack,
                               stack_option)

log = logging.getLogger(__name__)

ETHER = 10**18
#: Licenses that can ever exist (0G sold 175,500; small locally).
DEFAULT_MAX_SUPPLY = 1_000
#: Price tiers: token ids up to each bound cost the matching price (cheap locally).
DEFAULT_TIER_UP_TO = (100, 500, 1_000)
DEFAULT_TIER_PRICES = (ETHER // 1000, 2 * ETHER // 1000, 5 * ETHER // 1000)
#: Most licenses one wallet may buy.
DEFAULT_WALLET_CAP = 50
#: Seconds a license stays non-transferable after its sale.
DEFAULT_TRANSFER_LOCK = 3600
#: Most licenses one operator runs, and its highest commission (basis points).
DEFAULT_MAX_LICENSES_PER_OPERATOR = 100
DEFAULT_MAX_COMMISSION_BPS = 5_000
#: Epoch length in seconds: delegations, commissions and supervision change at epoch boundaries (0G's
#: alignment nodes report daily; an hour by default, short for a local network).
DEFAULT_EPOCH_SECONDS = 3600
#: Reward per operated license per recorded epoch, and the initial pool.
DEFAULT_REWARD_PER_LICENSE = ETHER // 1000
DEFAULT_REWARD_FUNDING = ETHER
#: Governance: seconds of voting, seconds of timelock, quorum (basis points of the licenses at proposal
#: time), licenses needed to propose.
DEFAULT_VOTING_PERIOD = 120
DEFAULT_TIMELOCK_DELAY = 60
DEFAULT_QUORUM_BPS = 1_000
DEFAULT_PROPOSAL_THRESHOLD = 1

SUPERVISION_ROLE = "0x" + keccak(text="SUPERVISION_ROLE").hex()
PARAMS_ADMIN_ROLE = "0x" + keccak(text="PARAMS_ADMIN_ROLE").hex()
DEFAULT_ADMIN_ROLE = "0x" + "00" * 32


def selector(signature: str) -> bytes:
    """The 4-byte function selector of e.g. "setBlobPrice(uint256)"."""
    return keccak(text=signature)[:4]


def _allow_governed(governor: Any, target: Any, signature: str, deployer: Any, pending: list[dict]) -> None:
    """Give the governor PARAMS_ADMIN_ROLE on `target` and allowlist `signature` there."""
    if target.hasRole(DEFAULT_ADMIN_ROLE, deployer.address):
        if not target.hasRole(PARAMS_ADMIN_ROLE, governor.address):
            target.grantRole(PARAMS_ADMIN_ROLE, governor.address, sender=deployer)
    else:
        log.warning("deployer is not admin of %s: its admin must grant PARAMS_ADMIN_ROLE to the governor %s",
                    target.address, governor.address)
        pending.append({"contract": target.address, "role": PARAMS_ADMIN_ROLE, "account": governor.address})
    governor.setAllowed(target.address, selector(signature), True, sender=deployer)


def deploy_alignment(
    deployer: Any,
    project: Any,
    *,
    admin: str | None = None,
    storage_market: str | None = None,
    da_entrance: str | None = None,
    max_supply: int = DEFAULT_MAX_SUPPLY,
    tier_up_to: tuple[int, ...] | list[int] = DEFAULT_TIER_UP_TO,
    tier_prices: tuple[int, ...] | list[int] = DEFAULT_TIER_PRICES,
    wallet_cap: int = DEFAULT_WALLET_CAP,
    transfer_lock: int = DEFAULT_TRANSFER_LOCK,
    max_licenses_per_operator: int = DEFAULT_MAX_LICENSES_PER_OPERATOR,
    max_commission_bps: int = DEFAULT_MAX_COMMISSION_BPS,
    epoch_seconds: int = DEFAULT_EPOCH_SECONDS,
    reward_per_license: int = DEFAULT_REWARD_PER_LICENSE,
    reward_funding: int = DEFAULT_REWARD_FUNDING,
    voting_period: int = DEFAULT_VOTING_PERIOD,
    timelock_delay: int = DEFAULT_TIMELOCK_DELAY,
    quorum_bps: int = DEFAULT_QUORUM_BPS,
    proposal_threshold: int = DEFAULT_PROPOSAL_THRESHOLD,
) -> dict[str, Any]:
    """Deploy and wire the four alignment contracts; return addresses and parameters.

    ``admin`` (default: the deployer) receives every admin, params-admin, pauser and funder role; when it
    differs from the deployer, the deployer hands the roles over after wiring and keeps none.
    """
    admin_address = admin or deployer.address
    tier_up_to, tier_prices = list(tier_up_to), list(tier_prices)
    if tier_up_to and tier_up_to[-1] != max_supply:
        raise ValueError(f"the last tier must end at max_supply ({max_supply}), not {tier_up_to[-1]}")
    d = deployer.address
    license_ = project.AlignmentLicense.deploy(
        d, max_supply, tier_up_to, tier_prices, wallet_cap, transfer_lock, sender=deployer
    )
    delegation = project.AlignmentDelegation.deploy(
        license_.address, d, max_licenses_per_operator, max_commission_bps, epoch_seconds, sender=deployer
    )
    rewards = project.AlignmentRewards.deploy(
        license_.address, delegation.address, d, reward_per_license, sender=deployer
    )
    governor = project.AlignmentGovernor.deploy(
        license_.address, d, voting_period, timelock_delay, quorum_bps, proposal_threshold, sender=deployer
    )
    delegation.setRewards(rewards.address, sender=deployer)
    license_.setDelegation(delegation.address, sender=deployer)
    if reward_funding:
        rewards.fundRewards(sender=deployer, value=reward_funding)

    pending: list[dict] = []
    _allow_governed(governor, rewards, "setRewardPerLicense(uint256)", deployer, pending)
    if storage_market:
        market = project.FixedPriceMarket.at(storage_market)
        _allow_governed(governor, market, "setPricePerSector(uint256)", deployer, pending)
    if da_entrance:
        entrance = project.DAEntrance.at(da_entrance)
        _allow_governed(governor, entrance, "setBlobPrice(uint256)", deployer, pending)

    if admin_address.lower() != d.lower():
        for contract in (license_, delegation, rewards, governor):
            roles = [contract.PARAMS_ADMIN_ROLE()]
            for name in ("PAUSER_ROLE", "FUNDER_ROLE"):
                if hasattr(contract, name):
                    roles.append(getattr(contract, name)())
            roles.append(contract.DEFAULT_ADMIN_ROLE())  # last: needed to grant the others
            for role in roles:
                contract.grantRole(role, admin_address, sender=deployer)
            for role in roles:
                contract.renounceRole(role, d, sender=deployer)
    return {
        "chain_id": chain.chain_id,
        "license": license_.address,
        "delegation": delegation.address,
        "rewards": rewards.address,
        "governor": governor.address,
        "storage_market": storage_market,
        "da_entrance": da_entrance,
        "supervision_role": SUPERVISION_ROLE,
        "pending_grants": pending,
        "max_supply": max_supply,
        "tier_up_to": tier_up_to,
        "tier_prices": tier_prices,
        "wallet_cap": wallet_cap,
        "transfer_lock": transfer_lock,
        "max_licenses_per_operator": max_licenses_per_operator,
        "max_commission_bps": max_commission_bps,
        "epoch_seconds": epoch_seconds,
        "genesis": delegation.genesis(),
        "reward_per_license": reward_per_license,
        "reward_funding": reward_funding,
        "voting_period": voting_period,
        "timelock_delay": timelock_delay,
        "quorum_bps": quorum_bps,
        "proposal_threshold": proposal_threshold,
        "deployer": d,
        "admin": admin_address,
        "block_number": chain.blocks.head.number,
    }


def check_deployment(check: Any) -> None:
    """What `ape run verify_deployment` expects of the alignment economy deployed by `deploy_alignment`."""
    area = check.area("alignment")
    license_, delegation = check.contract("alignment_license"), check.contract("alignment_delegation")
    rewards, governor = check.contract("alignment_rewards"), check.contract("alignment_governor")
    if None in (license_, delegation, rewards, governor):
        return
    check.equal("alignment_license.delegation()", license_.delegation(), delegation.address)
    check.equal("alignment_delegation.license()", delegation.license(), license_.address)
    check.equal("alignment_delegation.rewards()", delegation.rewards(), rewards.address)
    check.equal("alignment_rewards.license()", rewards.license(), license_.address)
    check.equal("alignment_rewards.delegation()", rewards.delegation(), delegation.address)
    check.equal("alignment_governor.license()", governor.license(), license_.address)
    check.equal("alignment_license.maxSupply()", license_.maxSupply(), area["max_supply"])
    check.equal("alignment_license.walletCap()", license_.walletCap(), area["wallet_cap"])
    check.equal("alignment_license.transferLockPeriod()", license_.transferLockPeriod(), area["transfer_lock"])
    check.equal("alignment_delegation.maxLicensesPerOperator()", delegation.maxLicensesPerOperator(),
                area["max_licenses_per_operator"])
    check.equal("alignment_delegation.maxCommissionBps()", delegation.maxCommissionBps(), area["max_commission_bps"])
    check.equal("alignment_rewards.rewardPerLicense()", rewards.rewardPerLicense(), area["reward_per_license"])
    check.equal("alignment_governor.votingPeriod()", governor.votingPeriod(), area["voting_period"])
    check.equal("alignment_governor.timelockDelay()", governor.timelockDelay(), area["timelock_delay"])
    check.equal("alignment_governor.quorumBps()", governor.quorumBps(), area["quorum_bps"])
    check.equal("alignment_governor.proposalThreshold()", governor.proposalThreshold(), area["proposal_threshold"])
    governed = [(rewards.address, "setRewardPerLicense(uint256)")]
    if area.get("storage_market"):
        governed.append((area["storage_market"], "setPricePerSector(uint256)"))
    if area.get("da_entrance"):
        governed.append((area["da_entrance"], "setBlobPrice(uint256)"))
    pending = {(g["contract"].lower(), g["account"].lower()) for g in area.get("pending_grants", [])}
    for target, signature in governed:
        check.equal(f"alignment_governor.isAllowed({check.name_of(target)}, {signature})",
                    governor.isAllowed(target, selector(signature)), True)
        if (target.lower(), governor.address.lower()) not in pending:
            check.role(check.at(target), check.name_of(target), "PARAMS_ADMIN_ROLE", governor.address,
                       "alignment_governor")
    for name, contract, roles in (
            ("alignment_license", license_, ["DEFAULT_ADMIN_ROLE", "PARAMS_ADMIN_ROLE", "PAUSER_ROLE"]),
            ("alignment_delegation", delegation, ["DEFAULT_ADMIN_ROLE", "PARAMS_ADMIN_ROLE", "PAUSER_ROLE"]),
            ("alignment_rewards", rewards, ["DEFAULT_ADMIN_ROLE", "PARAMS_ADMIN_ROLE", "FUNDER_ROLE"]),
            ("alignment_governor", governor, ["DEFAULT_ADMIN_ROLE", "PARAMS_ADMIN_ROLE"])):
        check.admin_roles(contract, name, roles)

def _int_list(ctx: Any, param: Any, value: str) -> list[int]:
    try:
        return [int(x) for x in value.split(",") if x.strip()]
    except ValueError as exc:
        raise click.BadParameter("a comma-separated list of integers") from exc


@click.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@stack_option
@ADMIN_OPTION
@click.option("--storage-market", default=None,
              help="FixedPriceMarket the governor may reprice (with --stack: default the stack's).")
@click.option("--da-entrance", default=None,
              help="DAEntrance whose blob price the governor may change (with --stack: default the stack's).")
@click.option("--max-supply", type=int, default=DEFAULT_MAX_SUPPLY, show_default=True, help="License cap.")
@click.option("--tier-up-to", default=",".join(map(str, DEFAULT_TIER_UP_TO)), show_default=True,
              callback=_int_list, help="Last token id of each price tier (the last = --max-supply).")
@click.option("--tier-prices", default=",".join(map(str, DEFAULT_TIER_PRICES)), show_default=True,
              callback=_int_list, help="Price of a license of each tier, wei.")
@click.option("--wallet-cap", type=int, default=DEFAULT_WALLET_CAP, show_default=True,
              help="Most licenses one wallet may buy.")
@click.option("--transfer-lock", type=int, default=DEFAULT_TRANSFER_LOCK, show_default=True,
              help="Seconds a license is non-transferable after its sale.")
@click.option("--max-licenses-per-operator", type=int, default=DEFAULT_MAX_LICENSES_PER_OPERATOR,
              show_default=True, help="Most licenses one operator runs.")
@click.option("--max-commission-bps", type=int, default=DEFAULT_MAX_COMMISSION_BPS, show_default=True,
              help="Highest operator commission, basis points.")
@click.option("--epoch-seconds", type=click.IntRange(1), default=DEFAULT_EPOCH_SECONDS, show_default=True,
              help="Epoch length: delegations and commissions apply from the next epoch; supervision's epochs.")
@click.option("--reward-per-license", type=int, default=DEFAULT_REWARD_PER_LICENSE, show_default=True,
              help="Reward per operated license per epoch, wei.")
@click.option("--reward-funding", type=int, default=DEFAULT_REWARD_FUNDING, show_default=True,
              help="Wei put into the reward pool at deployment.")
@click.option("--voting-period", type=int, default=DEFAULT_VOTING_PERIOD, show_default=True,
              help="Seconds a proposal is open for votes.")
@click.option("--timelock-delay", type=int, default=DEFAULT_TIMELOCK_DELAY, show_default=True,
              help="Seconds from the end of voting to execution.")
@click.option("--quorum-bps", type=int, default=DEFAULT_QUORUM_BPS, show_default=True,
              help="Votes needed, basis points of the licenses at proposal time.")
@click.option("--proposal-threshold", type=int, default=DEFAULT_PROPOSAL_THRESHOLD, show_default=True,
              help="Licenses a proposer must own.")
@out_dir_option("<network>-alignment.json")
def cli(provider: Any, account: Any, out_dir: Path, **params: Any) -> None:
    """Deploy the alignment license, delegation, rewards and governor and write <network>-alignment.json."""
    from ape import project

    account = deploying_account(provider, account, accounts)
    stack = selected_stack()
    if stack is not None:  # the governor may reprice the stack's storage and DA
        params["storage_market"] = params["storage_market"] or stack.contracts.get("market")
        params["da_entrance"] = params["da_entrance"] or stack.contracts.get("da_entrance")
    result = deploy_alignment(account, project, **params)
    record_deployment(result, provider, out_dir, f"{provider.network.name}-alignment.json")
