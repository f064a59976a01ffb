"""The DA services rollups use, as processes of a stack (`deaios up`): the disperser, the OP Stack alt-DA server
and the Arbitrum Nitro DA provider — three `StackService`s the launcher starts after the DA nodes.

* ``deaios da disperser`` pays blob fees with the stack's ``da_disperser`` key (``deaios.stack.keys``: Anvil dev
  key 20 locally), passed in ``$DEAIOS_DISPERSER_KEY``, keeps its encoder warm and, on a local chain, reports
  FINALIZED as soon as a blob is verified (``--finality-depth 0``: Anvil never reorganises);
* ``deaios da altda-server`` and ``deaios da nitro-server`` write through the disperser and read from the DA
  nodes directly; they hold no key.

All listen on free ports; stack.json lists them as

    "da_disperser": {"name": "da-disperser", "grpc": "127.0.0.1:PORT", "url": "http://127.0.0.1:PORT" (its
                     Prometheus /metrics), "pid": PID, "address": "0x…",
                     "log": "…", "cmd": [argv…]},
    "da_altda": {"name": "da-altda", "url": "http://127.0.0.1:PORT", "pid": PID, "dir": "DATA/altda", "log", "cmd"},
    "da_nitro": {"name": "da-nitro", "url": "http://127.0.0.1:PORT", "pid": PID, "log", "cmd"}

A stack without DA nodes (``--da-nodes 0``) or without DA contracts runs none of them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from deaios.procs import child_env, free_ports, http_get_json, rpc_call
from deaios.stack.keys import address_of
from deaios.stack.service import LaunchContext, StackService

DISPERSER_KEY_ENV = "DEAIOS_DISPERSER_KEY"
DEAIOS = [sys.executable, "-m", "deaios.cli", "da"]


def _wanted(ctx: LaunchContext) -> bool:
    """DA contracts are deployed and DA nodes are wanted (`--da-nodes` not 0; None: the default number)."""
    return bool(ctx.contracts.get("da_entrance")) and getattr(ctx.options, "da_nodes", None) != 0


def disperser_ready(target: str) -> bool:
    """The disperser answers gRPC (it listens only once its encoder is warm)."""
    import grpc

    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=1.0)
    return True


class _RollupService(StackService):
    """One DA process of the stack: spawned in `start`, probed in `wait`, listed under `key` in stack.json."""

    key = ""

    def __init__(self) -> None:
        self.entry: dict[str, Any] = {}

    def command(self, ctx: LaunchContext, port: int) -> tuple[list[str], dict[str, str], dict[str, Any]] | None:
        """The command line, environment and stack.json fields of the process (None: not started)."""
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, ctx: LaunchContext) -> None:
        if not _wanted(ctx):
            return
        port = free_ports(ctx.host, 1)[0]
        started = self.command(ctx, port)
        if started is None:
            return
        cmd, env, extra = started
        log = ctx.logs / f"{self.name}.log"
        proc = ctx.spawn(self.name, cmd, log, env=env)
        self.entry = {"name": self.name, **extra, "pid": proc.pid, "log": str(log), "cmd": cmd}

    def wait(self, ctx: LaunchContext) -> None:
        if self.entry:
            ctx.wait(self.name, self.ready, Path(self.entry["log"]))

    def entries(self) -> dict[str, Any]:
        return {self.key: self.entry} if self.entry else {}


class DisperserService(_RollupService):
    name = "da-disperser"
    key = "da_disperser"

    def command(self, ctx: LaunchContext, port: int) -> tuple[list[str], dict[str, str], dict[str, Any]] | None:
        key = ctx.keys.one("da_disperser") if ctx.keys is not None else None
        if key is None:
            ctx.say("no da_disperser key: no DA disperser (nor the OP alt-DA and Nitro servers that write through it)")
            return None
        self.target = f"{ctx.advertise or ctx.host}:{port}"
        metrics_port = free_ports(ctx.host, 1)[0]
        cmd = DEAIOS + ["disperser", "--rpc", ctx.rpc, "--entrance", ctx.contracts["da_entrance"], "--host", ctx.host,
                        "--port", str(port), "--metrics-port", str(metrics_port)]
        if ctx.local:
            cmd += ["--finality-depth", "0"]  # Anvil never reorganises; a real chain: its `finalized` block
        return cmd, child_env({DISPERSER_KEY_ENV: key}), {
            "grpc": self.target, "url": ctx.url(metrics_port), "address": address_of(key)}

    def ready(self) -> bool:
        return disperser_ready(self.target)


class _RollupServer(_RollupService):
    """An HTTP server that writes through the stack's disperser (`deaios da <subcommand> --disperser …`)."""

    subcommand = ""

    def __init__(self, disperser: DisperserService) -> None:
        super().__init__()
        self.disperser = disperser

    def extra(self, ctx: LaunchContext) -> tuple[list[str], dict[str, Any]]:
        """Further arguments and stack.json fields of this server."""
        return [], {}

    def command(self, ctx: LaunchContext, port: int) -> tuple[list[str], dict[str, str], dict[str, Any]] | None:
        if not self.disperser.entry:
            return None
        self.url = ctx.url(port)
        args, fields = self.extra(ctx)
        cmd = DEAIOS + [self.subcommand, "--rpc", ctx.rpc, "--entrance", ctx.contracts["da_entrance"], "--disperser",
                        self.disperser.target, *args, "--host", ctx.host, "--port", str(port)]
        return cmd, child_env(), {"url": self.url, **fields}


class AltDAService(_RollupServer):
    name = "da-altda"
    key = "da_altda"
    subcommand = "altda-server"

    def extra(self, ctx: LaunchContext) -> tuple[list[str], dict[str, Any]]:
        data_dir = ctx.data_dir / "altda"
        return ["--dir", str(data_dir)], {"dir": str(data_dir)}

    def ready(self) -> bool:
        return http_get_json(f"{self.url}/health").get("status") == "ok"


class NitroService(_RollupServer):
    name = "da-nitro"
    key = "da_nitro"
    subcommand = "nitro-server"

    def ready(self) -> bool:
        return bool(rpc_call(self.url, "daprovider_getSupportedHeaderBytes").get("headerBytes"))


def services() -> list[StackService]:
    """The disperser, then the two rollup servers that write through it."""
    disperser = DisperserService()
    return [disperser, AltDAService(disperser), NitroService(disperser)]
