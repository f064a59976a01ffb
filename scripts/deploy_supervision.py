"""`ape run deploy_supervision`: deploy AlignmentSupervision and record its address.

It needs the alignment delegation and rewards contracts (``scripts/deploy_alignment.py``) and the storage Flow
(``scripts/deploy.py``). **The rewards admin must grant the supervision contract
``AlignmentRewards.SUPERVISION_ROLE``** (keccak256("SUPERVISION_ROLE")) before operators' duty can be
recorded: when the deployer is that admin the script grants it (``--no-grant-role``: not), else it says so. The record is written to
``deployments/<network>-supervision.json``.

    ape run deploy_supervision                       # --delegation/--rewards/--flow from deployments/<network>-
                                                     # alignment.json and <network>.json; on the default local
                                                     # network (a fresh Anvil per run) it deploys them first
    ape run deploy_supervision --stack deaios-data   # onto a running stack's chain, with the stack's contracts
    ape run deploy_supervision --delegation 0x… --rewards 0x… --flow 0x…
    ZG_RPC_URL=… ape run deploy_supervision --network ethereum:zgtestnet:node --account <alias> --delegation …

``deploy_supervision(deployer, project, delegation=…, rewards=…, flow=…)`` is the reusable part (tests call it).
Epochs are the delegation contract's (``deploy_alignment --epoch-seconds``). The stack's nodes are registered by
``deaios.alignment.launch`` (with the storage network's erasure code).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from ape import accounts, chain
from ape.cli import ConnectedProviderCommand, account_option

from deaios.deployment import (ADMIN_OPTION, DeployError, dependency, deploying_account, load_script, out_dir_option,
                               record_deployment, stack_option)

#: Share of a failing node's stake slashed per failed epoch (basis points).
DEFAULT_SLASH_BPS = 1_000
#: Licenses' weight a node's attestations need in an epoch for a pass or fail result.
DEFAULT_MIN_WEIGHT = 1
#: Epochs a node's stake stays slashable after it asked to withdraw it.
DEFAULT_UNBONDING_EPOCHS = 2
#: A fail's evidence: at least this many tries, spread over at least a quarter of the epoch.
DEFAULT_MIN_FAIL_TRIES = 3
FAIL_SPAN_SHARE = 4


def deploy_supervision(
    deployer: Any,
    project: Any,
    *,
    delegation: str,
    rewards: str,
    flow: str,
    admin: str | None = None,
    slash_bps: int = DEFAULT_SLASH_BPS,
    min_weight: int = DEFAULT_MIN_WEIGHT,
    unbonding_epochs: int = DEFAULT_UNBONDING_EPOCHS,
    min_fail_tries: int = DEFAULT_MIN_FAIL_TRIES,
    min_fail_span: int | None = None,
    grant_role: bool = False,
) -> dict[str, Any]:
    """Deploy AlignmentSupervision; ``admin`` (default: the deployer) gets its admin, node-admin and pauser roles.
    ``min_fail_span`` defaults to a quarter of the delegation's epoch. ``grant_role``: also grant it
    SUPERVISION_ROLE on ``rewards`` (the deployer must be the rewards admin)."""
    admin_address = admin or deployer.address
    epoch_seconds = project.AlignmentDelegation.at(delegation).epochSeconds()
    if min_fail_span is None:
        min_fail_span = epoch_seconds // FAIL_SPAN_SHARE
    params = (slash_bps, min_weight, unbonding_epochs, min_fail_tries, min_fail_span)
    supervision = project.AlignmentSupervision.deploy(delegation, rewards, flow, admin_address, params,
                                                      sender=deployer)
    if grant_role:
        rewards_contract = project.AlignmentRewards.at(rewards)
        rewards_contract.grantRole(rewards_contract.SUPERVISION_ROLE(), supervision.address, sender=deployer)
    return {
        "chain_id": chain.chain_id,
        "supervision": supervision.address,
        "delegation": delegation,
        "rewards": rewards,
        "flow": flow,
        "epoch_seconds": epoch_seconds,
        "slash_bps": slash_bps,
        "min_weight": min_weight,
        "unbonding_epochs": unbonding_epochs,
        "min_fail_tries": min_fail_tries,
        "min_fail_span": min_fail_span,
        "supervision_role_granted": grant_role,
        "genesis": supervision.genesis(),
        "deployer": deployer.address,
        "admin": admin_address,
        "block_number": chain.blocks.head.number,
    }


def check_deployment(check: Any) -> None:
    """What `ape run verify_deployment` expects of AlignmentSupervision deployed by `deploy_supervision`."""
    area = check.area("supervision")
    supervision = check.contract("alignment_supervision")
    if supervision is None:
        return
    check.equal("alignment_supervision.delegation()", supervision.delegation(), area["delegation"])
    check.equal("alignment_supervision.rewards()", supervision.rewards(), area["rewards"])
    check.equal("alignment_supervision.flow()", supervision.flow(), area["flow"])
    check.equal("alignment_supervision.epochSeconds()", supervision.epochSeconds(), area["epoch_seconds"])
    params = supervision.params()
    for name, key in (("slashBps", "slash_bps"), ("minWeight", "min_weight"), ("unbondingEpochs", "unbonding_epochs"),
                      ("minFailTries", "min_fail_tries"), ("minFailSpan", "min_fail_span")):
        check.equal(f"alignment_supervision.params().{name}", getattr(params, name), area[key])
    if area.get("supervision_role_granted"):
        check.role(check.at(area["rewards"]), "alignment_rewards", "SUPERVISION_ROLE", supervision.address,
                   "alignment_supervision")
    check.admin_roles(supervision, "alignment_supervision", ["DEFAULT_ADMIN_ROLE", "NODE_ADMIN_ROLE", "PAUSER_ROLE"])

@click.command(cls=ConnectedProviderCommand)
@account_option(prompt=False)
@stack_option
@click.option("--delegation", default=None,
              help="AlignmentDelegation address (who is an active operator). Default: <network>-alignment.json.")
@click.option("--rewards", default=None,
              help="AlignmentRewards address (recordOperated). Default: <network>-alignment.json.")
@click.option("--flow", default=None,
              help="The storage Flow address (flow roots of storage proofs). Default: <network>.json.")
@ADMIN_OPTION
@click.option("--slash-bps", type=click.IntRange(0, 10_000), default=DEFAULT_SLASH_BPS, show_default=True,
              help="Stake share slashed per failed epoch, basis points.")
@click.option("--min-weight", type=click.IntRange(1), default=DEFAULT_MIN_WEIGHT, show_default=True,
              help="Licenses' weight of attestations needed to record a node's pass or fail.")
@click.option("--unbonding-epochs", type=click.IntRange(0), default=DEFAULT_UNBONDING_EPOCHS, show_default=True,
              help="Epochs between an unstake request and the withdrawal.")
@click.option("--min-fail-tries", type=click.IntRange(1, 64), default=DEFAULT_MIN_FAIL_TRIES, show_default=True,
              help="Tries a fail attestation's evidence must list.")
@click.option("--min-fail-span", type=click.IntRange(0), default=None,
              help="Seconds the tries must span (default: a quarter of the epoch).")
@click.option("--grant-role/--no-grant-role", default=None,
              help="Grant the new contract SUPERVISION_ROLE on the rewards contract (the deployer must be its "
                   "admin). Default: when the deployer is the rewards admin; else the admin must grant it.")
@out_dir_option("<network>-supervision.json")
def cli(provider: Any, account: Any, delegation: str | None, rewards: str | None, flow: str | None,
        admin: str | None,
        slash_bps: int, min_weight: int, unbonding_epochs: int, min_fail_tries: int, min_fail_span: int | None,
        grant_role: bool | None, out_dir: Path) -> None:
    """Deploy AlignmentSupervision and write <network>-supervision.json."""
    from ape import project

    account = deploying_account(provider, account, accounts)
    network = provider.network.name
    alignment_file = out_dir / f"{network}-alignment.json"
    deployed: dict = {}

    def alignment(key: str) -> str:  # a fresh local chain: deploy the alignment contracts once
        if not deployed:
            deployed.update(load_script("deploy_alignment").deploy_alignment(account, project))
        return deployed[key]

    flow = dependency(provider, flow, "--flow", out_dir / f"{network}.json", ("flow",),
                      lambda: load_script("deploy").deploy_storage(account, project)["flow"], "the storage Flow")
    delegation = dependency(provider, delegation, "--delegation", alignment_file, ("delegation",),
                            lambda: alignment("delegation"), "the alignment contracts")
    rewards = rewards or deployed.get("rewards")  # deployed just now with the delegation
    rewards = dependency(provider, rewards, "--rewards", alignment_file, ("rewards",),
                         lambda: alignment("rewards"), "the alignment contracts")
    rewards_contract = project.AlignmentRewards.at(rewards)
    rewards_admin = bool(rewards_contract.hasRole(rewards_contract.DEFAULT_ADMIN_ROLE(), account.address))
    if grant_role and not rewards_admin:
        raise DeployError(f"--grant-role: {account.address} is not the admin of the rewards contract {rewards}; "
                          "leave --grant-role out and have its admin grant SUPERVISION_ROLE")
    if grant_role is None:
        grant_role = rewards_admin
    result = deploy_supervision(account, project, delegation=delegation, rewards=rewards, flow=flow, admin=admin,
                                slash_bps=slash_bps, min_weight=min_weight, unbonding_epochs=unbonding_epochs,
                                min_fail_tries=min_fail_tries, min_fail_span=min_fail_span, grant_role=grant_role)
    record_deployment(result, provider, out_dir, f"{provider.network.name}-supervision.json")
    if not grant_role:
        click.echo(f"the admin of {rewards} must still grant SUPERVISION_ROLE to {result['supervision']} "
                   "(AlignmentRewards.grantRole)", err=True)
