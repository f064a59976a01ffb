"""`deaios compute ...`: the compute market from the command line (users and providers).

Every command prints JSON lines on stdout (progress on stderr). The chain and contracts come from the stack
(`--stack`, else $DEAIOS_STACK, else the last `deaios up`), or from `--rpc` + `--deployment
deployments/<network>-compute.json`. The key is `--key` (or $DEAIOS_KEY), else the stack's dev key.
Amounts are a number with a unit — `1ether`, `0.5ether`, `10gwei`, `100wei` (`0g` = `ether`) — and a bare number
is wei (`deaios.units`). `--stack`, `--key`, `--json` (and `--rpc`/`--deployment`) go after the verb, as on every
command (`deaios.cli_context`); before it works too.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from deaios.cli_context import ClientContext, ClientGroup, client_context, client_options
from deaios.errors import UserError
from deaios.units import AMOUNT, AMOUNT_HELP

DEPLOYMENT_HELP = "deployments/<network>-compute.json written by `ape run deploy_compute`."

def _address(text: str, what: str = "address") -> str:
    from eth_utils import is_address, to_checksum_address

    if not is_address(text):
        raise UserError(f"{what} must be a 0x-prefixed 20-byte address, got {text!r}")
    return to_checksum_address(text)


def emit(obj: Any) -> None:
    click.echo(json.dumps(obj))


def say(text: str) -> None:
    click.echo(text, err=True)


class Ctx:
    """Lazily connected chain for one command (its options: `deaios.cli_context`)."""

    def __init__(self, client: ClientContext) -> None:
        self.client = client
        self.key: str | None = None
        self._chain = None

    def chain(self, need_key: bool = True):
        from deaios.compute.chain import ComputeAddresses, ComputeChain, ComputeError

        if self._chain is not None:
            return self._chain
        target = self.client.target(need_key=need_key, stack_entry="compute")
        try:
            addresses = ComputeAddresses.from_mapping(target.contracts)
        except ComputeError as exc:
            raise UserError(str(exc)) from None
        self._chain = ComputeChain(target.rpc, addresses, target.key)
        self.key = target.key
        return self._chain


def _run(fn, *args, **kwargs):
    """Call into the chain, turning chain errors into one-line user errors (exit 2)."""
    from deaios.compute.chain import ComputeError

    try:
        return fn(*args, **kwargs)
    except ComputeError as exc:
        raise UserError(str(exc)) from None


@click.group(cls=ClientGroup, chain=DEPLOYMENT_HELP, amounts=True)
@client_options(chain=DEPLOYMENT_HELP)
def compute() -> None:
    """0G-style compute market: prepaid ledger, services, matching, signed inference calls, settlement.
    Amounts: 1ether, 0.5ether, 10gwei, 100wei; a bare number is wei."""


def pass_ctx(f: Any) -> Any:
    """Passes a Ctx on the command's client options as the first argument."""
    import functools

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return f(Ctx(client_context()), *args, **kwargs)

    return wrapper


# --- users ----------------------------------------------------------------------------------------------
@compute.command()
@click.argument("amount", type=AMOUNT)
@pass_ctx
def deposit(c: Ctx, amount: int) -> None:
    """Deposit AMOUNT into your ledger (AMOUNT: 1ether, 0.5ether, 5gwei, 100wei; a bare number is wei)."""
    chain = c.chain()
    _run(chain.deposit, amount)
    available, reserved = _run(chain.get_ledger, chain.address)
    emit(
        {
            "user": chain.address,
            "deposited": amount,
            "available": available,
            "reserved": reserved,
        }
    )


@compute.command()
@click.argument("amount", type=AMOUNT)
@pass_ctx
def withdraw(c: Ctx, amount: int) -> None:
    """Withdraw AMOUNT of your ledger's available funds to your wallet (no lock). AMOUNT: 1ether, 0.5ether,
    5gwei, 100wei; a bare number is wei."""
    chain = c.chain()
    _run(chain.withdraw, amount)
    available, reserved = _run(chain.get_ledger, chain.address)
    emit({"user": chain.address, "withdrawn": amount, "available": available})


@compute.command()
@click.argument("provider")
@click.argument("amount", type=AMOUNT)
@pass_ctx
def transfer(c: Ctx, provider: str, amount: int) -> None:
    """Move AMOUNT from your ledger into your sub-account with PROVIDER (cancels a pending refund first).
    AMOUNT: 1ether, 0.5ether, 5gwei, 100wei; a bare number is wei."""
    chain = c.chain()
    provider = _address(provider, "PROVIDER")
    _run(chain.transfer, provider, amount)
    emit(
        {
            "user": chain.address,
            "provider": provider,
            **_run(chain.get_account, chain.address, provider).to_json(),
        }
    )


@compute.command()
@click.option("--model", default=None, help="Only services of this model.")
@pass_ctx
def services(c: Ctx, model: str | None) -> None:
    """List registered services, one JSON line each."""
    chain = c.chain(need_key=False)
    for s in _run(chain.services):
        if model is None or s.model == model:
            emit(s.to_json())


@compute.command()
@click.option("--model", required=True)
@click.option("--deposit", "deposit_", required=True, type=AMOUNT,
              help=f"Funds to commit to the matched provider ({AMOUNT_HELP}).")
@click.option("--fine-tuning", is_flag=True, help="A fine-tuning service (default: inference).")
@click.option("--min-gpus", default=0, show_default=True, type=click.IntRange(0))
@click.option("--min-memory-mib", default=0, show_default=True, type=click.IntRange(0))
@click.option("--max-input-price", default=None, type=AMOUNT, help=f"Max price per input token ({AMOUNT_HELP}).")
@click.option("--max-output-price", default=None, type=AMOUNT, help=f"Max price per output token ({AMOUNT_HELP}).")
@click.option("--pay", default="0", show_default=True, type=AMOUNT,
              help=f"Also deposit this much in the same transaction ({AMOUNT_HELP}).")
@click.option(
    "--wait",
    "wait_s",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds to wait for the provider to accept.",
)
@pass_ctx
def match(
    c: Ctx,
    model: str,
    deposit_: int,
    fine_tuning: bool,
    min_gpus: int,
    min_memory_mib: int,
    max_input_price: int | None,
    max_output_price: int | None,
    pay: int,
    wait_s: float,
) -> None:
    """Match the cheapest suitable service on chain and reserve the deposit for it."""
    chain = c.chain()
    top = 2**128 - 1
    result = _run(
        chain.request_service,
        model=model,
        deposit=deposit_,
        service_type=int(fine_tuning),
        min_gpu_count=min_gpus,
        min_memory_mib=min_memory_mib,
        max_input_price=top if max_input_price is None else max_input_price,
        max_output_price=top if max_output_price is None else max_output_price,
        value=pay,
    )
    say(
        f"request {result['requestId']} matched provider {result['provider']} "
        f"(input {result['inputPrice']} / output {result['outputPrice']} wei per token)"
    )
    deadline = time.monotonic() + wait_s
    status = _run(chain.get_request, result["requestId"])
    while status["status"] == "Matched" and time.monotonic() < deadline:
        time.sleep(0.5)
        status = _run(chain.get_request, result["requestId"])
    emit({**result, "status": status["status"], "provider": status["provider"]})


@compute.command()
@click.argument("provider")
@click.option("--signer", default=None, help="Signer address (default: the one the provider registered).")
@pass_ctx
def ack(c: Ctx, provider: str, signer: str | None) -> None:
    """Accept TEE-signed receipts of PROVIDER from its signer (check its attestation first)."""
    chain = c.chain()
    provider = _address(provider, "PROVIDER")
    if signer is None:
        service = _run(chain.service, provider)
        if service is None or int(service.signer, 16) == 0:
            raise UserError(f"{provider} registered no TEE signer; pass --signer")
        signer = service.signer
    _run(chain.acknowledge_signer, provider, _address(signer, "--signer"))
    emit({"user": chain.address, "provider": provider, "signer": signer})


@compute.command()
@click.argument("provider")
@click.argument("message")
@click.option("--max-tokens", default=None, type=click.IntRange(0))
@click.option(
    "--state-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where the client keeps its receipts (default ~/.deaios/compute/...).",
)
@pass_ctx
def chat(c: Ctx, provider: str, message: str, max_tokens: int | None, state_file: Path | None) -> None:
    """Send MESSAGE to PROVIDER's chat endpoint, signed and billed; prints the reply and the bill."""
    from deaios.compute.client import ComputeClient

    chain = c.chain()
    client = ComputeClient(chain, c.key, state_file)  # type: ignore[arg-type]
    out = _run(
        client.chat, _address(provider, "PROVIDER"), [{"role": "user", "content": message}], max_tokens
    )
    emit(out)


@compute.command()
@click.option("--provider", "providers", multiple=True, help="Only these sub-accounts (repeatable).")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@pass_ctx
def balance(c: Ctx, providers: tuple[str, ...], state_file: Path | None) -> None:
    """Your ledger and sub-accounts: balance, pending refund, settled and signed spend."""
    from deaios.compute.client import ComputeClient

    chain = c.chain()
    client = ComputeClient(chain, c.key, state_file)  # type: ignore[arg-type]
    emit(_run(client.balances, [_address(p) for p in providers] or None))


@compute.group()
def refund() -> None:
    """Take funds back from a sub-account: request, wait for the lock, collect."""


@refund.command("request")
@click.argument("provider")
@click.argument("amount", type=AMOUNT)
@pass_ctx
def refund_request(c: Ctx, provider: str, amount: int) -> None:
    """Lock AMOUNT of your sub-account with PROVIDER for refund (AMOUNT: 1ether, 0.5ether, 5gwei, 100wei; a
    bare number is wei)."""
    chain = c.chain()
    provider = _address(provider, "PROVIDER")
    _run(chain.request_refund, provider, amount)
    acct = _run(chain.get_account, chain.address, provider)
    unlock = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(acct.refund_unlock_at))
    say(f"refund of {acct.pending_refund} wei unlocks at {unlock}")
    emit({"user": chain.address, "provider": provider, **acct.to_json()})


@refund.command("collect")
@click.argument("provider")
@pass_ctx
def refund_collect(c: Ctx, provider: str) -> None:
    """Move the unlocked pending refund of PROVIDER's sub-account back to your ledger."""
    chain = c.chain()
    provider = _address(provider, "PROVIDER")
    amount = _run(chain.collect_refund, provider)
    available, _ = _run(chain.get_ledger, chain.address)
    emit({"user": chain.address, "provider": provider, "collected": amount, "available": available})


# --- providers ------------------------------------------------------------------------------------------
@compute.command()
@click.option("--withdraw", "to", default=None, help="Withdraw all earnings to this address.")
@pass_ctx
def earnings(c: Ctx, to: str | None) -> None:
    """Your earnings as a provider (optionally withdraw them)."""
    chain = c.chain()
    out: dict[str, Any] = {"provider": chain.address, "earnings": _run(chain.earnings, chain.address)}
    if to:
        out["withdrawn"] = _run(chain.withdraw_earnings, _address(to, "--withdraw"))
    emit(out)


@compute.command()
@click.option(
    "--dir",
    "data_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Broker state directory (bills, receipts).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
@click.option("--public-url", default=None, help="URL registered on chain (default http://HOST:PORT).")
@click.option("--model", default="deaios-echo", show_default=True)
@click.option("--input-price", default="1000000", show_default=True, type=AMOUNT,
              help=f"Price per input token ({AMOUNT_HELP}).")
@click.option("--output-price", default="2000000", show_default=True, type=AMOUNT,
              help=f"Price per output token ({AMOUNT_HELP}).")
@click.option(
    "--settlement",
    type=click.Choice(["user", "tee"]),
    default="user",
    show_default=True,
    help="Who signs receipts: the user, or this broker's signer key (a stand-in for a TEE).",
)
@click.option("--signer-key", default=None, help="TEE signer key (with --settlement tee; default: derived).")
@click.option("--settle-interval", default=5.0, show_default=True, type=click.FloatRange(0.1))
@click.option("--no-register", is_flag=True, help="Do not register/update the service on chain.")
@click.option("--log-level", default="INFO", show_default=True)
@pass_ctx
def provider(
    c: Ctx,
    data_dir: Path,
    host: str,
    port: int,
    public_url: str | None,
    model: str,
    input_price: int,
    output_price: int,
    settlement: str,
    signer_key: str | None,
    settle_interval: float,
    no_register: bool,
    log_level: str,
) -> None:
    """Run a provider broker: OpenAI-compatible /v1/chat/completions, billed and settled on chain."""
    import asyncio
    import logging

    from eth_utils import keccak

    from deaios.compute.broker import BrokerConfig, serve

    chain = c.chain()
    if settlement == "tee" and signer_key is None:
        signer_key = "0x" + keccak(text=f"deaios tee signer {chain.address}").hex()
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s compute-provider %(levelname)s %(message)s",
    )
    config = BrokerConfig(
        rpc=chain.w3.provider.endpoint_uri,
        provider_key=c.key,
        data_dir=data_dir,  # type: ignore
        model=model,
        host=host,
        port=port,
        public_url=public_url,
        input_price=input_price,
        output_price=output_price,
        settlement=settlement,
        signer_key=signer_key,
        settle_interval=settle_interval,
        register=not no_register,
    )

    def announce(info: dict) -> None:
        emit(info)
        sys.stdout.flush()

    try:
        asyncio.run(serve(config, chain, announce=announce))
    except KeyboardInterrupt:
        pass
