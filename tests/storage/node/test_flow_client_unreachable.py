"""A chain that is down (Anvil restarting under the stack, issue 13) is one clear FlowError naming the RPC and what
to do, never a raw requests/urllib3 traceback: before, Flow.submit let the ConnectionError through."""

from __future__ import annotations

import socket

import pytest

from deaios.storage.flow_client import FlowClient, FlowError
from deaios.storage.merkle import FileMerkleTree

KEY = "0x" + "11" * 32


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_chain_that_is_down_is_a_clear_flow_error() -> None:
    rpc = f"http://127.0.0.1:{closed_port()}"
    client = FlowClient(rpc, "0x" + "22" * 20, KEY)
    with pytest.raises(FlowError, match=r"the chain RPC .* is unreachable \(connection refused\)"):
        client.market()
    with pytest.raises(FlowError, match=r"is unreachable \(connection refused\)$"):  # nothing was sent
        client.submit(FileMerkleTree.from_bytes(b"x" * 1000).submission())
