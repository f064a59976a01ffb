"""A client of the disperser's gRPC API (`deaios.da.disperser`), as 0G's own clients use it.

`disperse(data)`: ``DisperseBlob`` then ``GetBlobStatus`` every `poll` seconds until CONFIRMED or FINALIZED (a
`BlobRef`) or FAILED (`DisperserClientError`). `retrieve(ref)`: ``RetrieveBlob``. Used by `deaios da put/get`,
the OP alt-DA server and the Nitro DA provider. It imports only grpc and the generated stubs (no web3, no KZG),
so a `deaios da put` process starts in a fraction of a second.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import grpc

from deaios.da.blobref import BlobRef
from deaios.da.proto import disperser_pb2 as pb
from deaios.da.proto import disperser_pb2_grpc as pb_grpc

MAX_MESSAGE = 64 << 20
OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)]
DONE = (pb.CONFIRMED, pb.FINALIZED)


class DisperserClientError(RuntimeError):
    """The disperser refused a request, failed it, or could not be reached; `code` is the gRPC status if any."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Dispersed:
    ref: BlobRef
    request_id: bytes
    status: str  # "CONFIRMED" or "FINALIZED"
    seconds: float


def target_of(address: str) -> str:
    """A gRPC target from "host:port", "grpc://host:port" or "http://host:port"."""
    for prefix in ("grpc://", "http://", "dns:///"):
        if address.startswith(prefix):
            return address[len(prefix):].rstrip("/")
    return address


class DisperserClient:
    """One channel to a disperser; use as ``async with DisperserClient(target) as c:``."""

    def __init__(self, target: str, poll: float = 0.02, timeout: float = 600.0, until: str = "CONFIRMED") -> None:
        self.target = target_of(target)
        self.poll = poll
        self.timeout = timeout
        self.until = DONE if until == "CONFIRMED" else (pb.FINALIZED,)
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.DisperserStub | None = None

    async def __aenter__(self) -> DisperserClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def stub(self) -> pb_grpc.DisperserStub:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.target, options=OPTIONS)
            self._stub = pb_grpc.DisperserStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel, self._stub = None, None

    async def _call(self, method, request, timeout: float):
        try:
            return await method(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise DisperserClientError(f"disperser at {self.target}: {exc.details() or exc.code().name}",
                                       exc.code()) from None

    async def disperse_blob(self, data: bytes) -> bytes:
        """``DisperseBlob``: the request id."""
        reply = await self._call(self.stub.DisperseBlob, pb.DisperseBlobRequest(data=data), 120)
        return reply.request_id

    async def blob_status(self, request_id: bytes) -> pb.BlobStatusReply:
        return await self._call(self.stub.GetBlobStatus, pb.BlobStatusRequest(request_id=request_id), 30)

    async def wait(self, request_id: bytes, started: float | None = None) -> Dispersed:
        """Poll ``GetBlobStatus`` until the blob is dispersed (or failed, or `timeout` passed)."""
        started = time.monotonic() if started is None else started
        while True:
            reply = await self.blob_status(request_id)
            if reply.status in self.until:
                h = reply.info.blob_header
                return Dispersed(BlobRef(bytes(h.storage_root), h.epoch, h.quorum_id), request_id,
                                 pb.BlobStatus.Name(reply.status), time.monotonic() - started)
            if reply.status == pb.FAILED:
                raise DisperserClientError(f"dispersal failed (request {request_id.decode(errors='replace')}); "
                                           f"see the disperser's log")
            if time.monotonic() - started > self.timeout:
                raise DisperserClientError(f"request {request_id.decode(errors='replace')} still "
                                           f"{pb.BlobStatus.Name(reply.status)} after {self.timeout:.0f} s",
                                           grpc.StatusCode.DEADLINE_EXCEEDED)
            await asyncio.sleep(self.poll)

    async def disperse(self, data: bytes) -> Dispersed:
        """DisperseBlob, then wait until CONFIRMED (or FINALIZED with ``until="FINALIZED"``)."""
        started = time.monotonic()
        return await self.wait(await self.disperse_blob(data), started)

    async def retrieve(self, ref: BlobRef) -> bytes:
        reply = await self._call(self.stub.RetrieveBlob, pb.RetrieveBlobRequest(
            storage_root=ref.data_root, epoch=ref.epoch, quorum_id=ref.quorum_id), self.timeout)
        return bytes(reply.data)
