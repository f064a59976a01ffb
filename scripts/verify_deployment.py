"""`ape run verify_deployment`: check a deployment record against the chain and the build; emit explorer inputs.

    ZG_RPC_URL=… ape run verify_deployment --network ethereum:zgtestnet:node    # deployments/zgtestnet.json

Checks (see ``deaios.deployment_verify``): the node's chain id is the record's; every contract's runtime code is
the build's (immutables aside) and its creation transaction sent the build's creation code with the recorded
constructor arguments; then every deployed area's ``check_deployment(check)`` (``scripts/deploy.py`` for storage,
``scripts/deploy_<area>.py`` for the others): wiring between contracts, roles, parameters. Prints one line per
difference and exits with code 1 when there is any (0: ``ok: N checks``).

It also writes, for every contract, the standard-JSON input that reproduces its bytecode (all sources included)
to ``--standard-json-dir`` (default ``deployments/<network>-verify/``): ``<name>.input.json`` plus ``index.json``
listing each contract's address, fully qualified name, compiler version and ABI-encoded constructor arguments —
what a block explorer's "verify and publish (standard JSON input)" form asks for.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from ape.cli import ConnectedProviderCommand

from deaios.deployment import load_script
from deaios.deployment_record import DeploymentRecord, RecordError
from deaios.deployment_verify import DeploymentCheck
from deaios.standard_json import standard_input


def area_checks() -> list[tuple[str, Any]]:
    """(area name, its check_deployment, or None when its script declares none) for storage and every area of
    `deploy.AREAS`."""
    deploy = load_script("deploy")
    return [("storage", deploy.check_deployment)] + [
        (area.name, getattr(load_script(area.script), "check_deployment", None)) for area in deploy.AREAS]


def write_standard_json(record: DeploymentRecord, project: Any, out_dir: Path) -> Path:
    """<name>.input.json per contract and index.json, from the build's own compiler entry (version and settings)."""
    root = Path(project.path)
    compilers = [c for c in project.manifest.compilers or [] if c.name == "solidity"]
    out_dir.mkdir(parents=True, exist_ok=True)
    index = []
    for name, entry in (record.data.get("contracts") or {}).items():
        compiler = next((c for c in compilers if entry["contract_type"] in (c.contractTypes or [])), None)
        if compiler is None:
            raise click.ClickException(f"the build has no solidity compiler entry for {entry['contract_type']} "
                                       "(run `ape compile`)")
        source_id = entry["source_id"]
        container = getattr(project, entry["contract_type"])
        file_name = f"{name}.input.json"
        (out_dir / file_name).write_text(json.dumps(standard_input(source_id, root, compiler.settings or {}),
                                                    indent=1) + "\n")
        index.append({"name": name, "address": entry["address"], "contract": f"{source_id}:{entry['contract_type']}",
                      "compiler": f"v{compiler.version}", "input": file_name,
                      "constructor_arguments": "0x" + bytes(container.constructor.encode_input(
                          *entry.get("args", []))).hex()})
    (out_dir / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    return out_dir


@click.command(cls=ConnectedProviderCommand)
@click.option("--deployment", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The deployment record (default: deployments/<network>.json).")
@click.option("--standard-json-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the explorer inputs (default: deployments/<network>-verify/).")
@click.option("--no-standard-json", is_flag=True, help="Only check; write no explorer inputs.")
def cli(provider: Any, deployment: Path | None, standard_json_dir: Path | None, no_standard_json: bool) -> None:
    """Check a deployment against the chain and the build; exit code 1 with the list of differences."""
    from ape import project

    network = provider.network.name
    path = deployment or Path("deployments") / f"{network}.json"
    try:
        record = DeploymentRecord.load(path)
    except RecordError as exc:
        raise click.UsageError(str(exc)) from None
    check = DeploymentCheck(record, project, provider)
    check.start_area("record")
    check.equal("the node's chain id", provider.chain_id, record.chain_id)
    if not record.complete:
        check.differ(f"the deployment is not complete (status {record.data.get('status')!r}): re-run the deploy")
    if not check.differences:
        check.check_code()
        areas = (record.data.get("areas") or {})
        for name, function in area_checks():
            if name in areas:
                check.start_area(name)
                if function is None:
                    check.differ("its deploy script declares no check_deployment(check): nothing verifies its wiring")
                else:
                    function(check)
    if not no_standard_json:
        out = write_standard_json(record, project, standard_json_dir or path.parent / f"{network}-verify")
        click.echo(f"explorer inputs: {out}/index.json", err=True)
    if check.differences:
        for line in check.differences:
            click.echo(line)
        click.echo(f"{len(check.differences)} differences in {check.checks} checks of {path}", err=True)
        sys.exit(1)
    click.echo(f"ok: {check.checks} checks of {path} ({len(record.data.get('contracts') or {})} contracts)")
