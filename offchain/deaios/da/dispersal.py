"""How the rollup servers (OP alt-DA, Nitro DA provider) write blobs: through the stack's disperser (gRPC), or,
without one, through an in-process `DAClient`. Both give a `Disperse` callable: data → the blob's `BlobRef` once
its commitment is verified on chain, or a `DispersalError` carrying the HTTP-like status to answer with (400 bad
data, 413 too large, 503 the DA cannot take it now, 500 anything else)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from deaios.da.blobref import BlobRef

Disperse = Callable[[bytes], Awaitable[BlobRef]]


class DispersalError(RuntimeError):
    """Dispersal failed; `status` says how: 400 bad data, 413 too large, 503 DA unavailable, 500 other."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


def via_disperser(target: str, poll: float = 0.02) -> tuple[Disperse, Callable[[], Awaitable[None]]]:
    """Dispersal through the disperser at `target` (host:port): (disperse, close)."""
    import grpc

    from deaios.da.disperser_client import DisperserClient, DisperserClientError

    client = DisperserClient(target, poll=poll)

    async def disperse(data: bytes) -> BlobRef:
        try:
            return (await client.disperse(data)).ref
        except DisperserClientError as exc:
            if exc.code == grpc.StatusCode.INVALID_ARGUMENT:
                raise DispersalError(str(exc), 413 if "exceed" in str(exc) else 400) from None
            if exc.code is None or exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                raise DispersalError(str(exc), 503) from None  # FAILED (no signers, chain down) or unreachable
            raise DispersalError(str(exc)) from None

    return disperse, client.close


def in_process(client) -> Disperse:
    """Dispersal with an in-process `deaios.da.client.DAClient` (it holds the fee payer's key)."""
    from deaios.da.chain import DAChainError
    from deaios.da.client import DAClientError
    from deaios.da.encoding import MAX_DATA

    async def disperse(data: bytes) -> BlobRef:
        if len(data) > MAX_DATA:
            raise DispersalError(f"{len(data)} bytes; a DA blob holds at most {MAX_DATA}", 413)
        try:
            return (await client.put(data)).ref
        except (DAClientError, DAChainError, OSError) as exc:
            raise DispersalError(str(exc), 503) from None

    return disperse
