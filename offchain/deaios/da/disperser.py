"""The disperser (`deaios da disperser`): 0G's disperser gRPC API (`disperser.Disperser`) over a warm `DAClient`.

0G runs its DA client as a service that rollups and users send blobs to; deaios does the same so that no client
pays for the KZG tables (a few seconds per process) or holds a funded key. The service keeps an `Encoder` pool
warm (each worker has loaded the trusted setup) and one `DAChain` with the fee payer's key, and serves:

* ``DisperseBlob(data)`` → ``{result: PROCESSING, request_id}`` at once (1 … 32,505,852 bytes, 0G's limit; else
  INVALID_ARGUMENT with 0G's messages). The dispersal runs in the background: `DAClient.put` — encode,
  ``submitOriginalData`` with the fee, the quorum's signatures, ``submitVerifiedCommitRoots``.
* ``GetBlobStatus(request_id)`` → PROCESSING, then CONFIRMED (verified on chain) and FINALIZED once the confirming
  block is final (`--finality-depth`: default the chain's ``finalized`` block; 0 = final when verified, right for
  a local Anvil, which never reorganises), or FAILED. Once CONFIRMED/FINALIZED, ``info.blob_header`` holds the
  blob's (storage_root = dataRoot, epoch, quorum_id). Unknown request ids: NOT_FOUND. Failures are FAILED, never
  INSUFFICIENT_SIGNATURES: 0G's clients stop polling only on FAILED.
* ``RetrieveBlob(storage_root, epoch, quorum_id)`` → the bytes, from the DA nodes with every cell's KZG proof
  checked (`DAClient.get`; the disperser keeps no copy). NOT_FOUND when no verified commitment is on chain.

Request ids look like 0G's (``<keccak256(data) hex>-<unix ns>``); requests live in memory (the newest
`MAX_REQUESTS`), so a restarted disperser answers NOT_FOUND for older ids — the blob itself stays retrievable by
its header. The gRPC server is built in one function, `build_server`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import grpc

from deaios import metrics
from deaios._keccak import keccak256
from deaios.da.chain import DAChainError
from deaios.da.client import BlobRef, DAClient, DAClientError
from deaios.da.encoding import MAX_DATA
from deaios.da.proto import disperser_pb2 as pb
from deaios.da.proto import disperser_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

DEFAULT_PORT = 51001  # 0G's disperser gRPC port
MAX_REQUESTS = 100_000  # request records kept (finished ones are dropped oldest first)
MAX_PENDING = 64  # dispersals in flight at once; more: RESOURCE_EXHAUSTED
#: gRPC message limit both ways: a 31 MiB blob and the protobuf framing
MAX_MESSAGE = 64 << 20
GRPC_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)]


class DisperserError(Exception):
    """A request the disperser refuses; `code` is the gRPC status it answers with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Request:
    """One dispersal request and what became of it."""

    request_id: bytes
    length: int
    status: int = pb.PROCESSING
    ref: BlobRef | None = None
    error: str = ""
    confirm_block: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)


class Disperser:
    """The dispersal queue and status table behind the gRPC API (usable in-process too)."""

    def __init__(self, client: DAClient, finality_depth: int | None = None) -> None:
        self.client = client
        self.finality_depth = finality_depth
        self.requests: OrderedDict[bytes, Request] = OrderedDict()
        self._tasks: set[asyncio.Task] = set()
        self._finalized: tuple[float, int] = (0.0, -1)  # (when asked, the chain's final block)

    @property
    def pending(self) -> int:
        return sum(1 for r in self.requests.values() if r.status == pb.PROCESSING)

    # ------------------------------------------------------------ DisperseBlob
    def disperse(self, data: bytes) -> Request:
        if len(data) > MAX_DATA:
            raise DisperserError(grpc.StatusCode.INVALID_ARGUMENT,
                                 f"blob size cannot exceed {(MAX_DATA + 4) // 1024} KiB")
        if not data:
            raise DisperserError(grpc.StatusCode.INVALID_ARGUMENT, "blob size must be greater than 0")
        if self.pending >= MAX_PENDING:
            raise DisperserError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                 f"{MAX_PENDING} dispersals in flight; retry later")
        request_id = f"{keccak256(data).hex()}-{time.time_ns()}".encode()
        request = Request(request_id, len(data))
        self.requests[request_id] = request
        self._trim()
        task = asyncio.get_running_loop().create_task(self._run(request, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return request

    async def _run(self, request: Request, data: bytes) -> None:
        try:
            result = await self.client.put(data)
        except (DAClientError, DAChainError, OSError) as exc:
            request.status, request.error = pb.FAILED, str(exc)
            log.error("request %s (%d bytes) failed: %s", request.request_id.decode(), request.length, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a request must end FAILED, whatever went wrong
            request.status, request.error = pb.FAILED, f"{type(exc).__name__}: {exc}"
            log.exception("request %s failed", request.request_id.decode())
            return
        request.ref, request.seconds = result.ref, result.seconds
        if self.finality_depth != 0:
            try:
                receipt = await asyncio.to_thread(self.client.chain.w3.eth.get_transaction_receipt,
                                                  result.verify_tx)  # type: ignore[arg-type]
                request.confirm_block = int(receipt["blockNumber"])
            except Exception as exc:  # noqa: BLE001 - stays CONFIRMED; finality is checked again later
                log.warning("no receipt for %s yet: %s", result.verify_tx, exc)
        request.status = pb.CONFIRMED
        log.info("request %s: %d bytes dispersed as %s in %.2f s (%s)", request.request_id.decode(), request.length,
                 result.ref, result.seconds["total"],
                 ", ".join(f"{k} {v:.2f}" for k, v in result.seconds.items() if k != "total"))

    def _trim(self) -> None:
        while len(self.requests) > MAX_REQUESTS:
            oldest = next((k for k, r in self.requests.items() if r.status != pb.PROCESSING), None)
            if oldest is None:
                break
            del self.requests[oldest]

    # ------------------------------------------------------------ GetBlobStatus
    async def status(self, request_id: bytes) -> Request:
        if not request_id:
            raise DisperserError(grpc.StatusCode.INVALID_ARGUMENT, "invalid request: request_id must not be empty")
        request = self.requests.get(request_id)
        if request is None:
            raise DisperserError(grpc.StatusCode.NOT_FOUND, f"unknown request id {request_id[:80]!r}")
        if request.status == pb.CONFIRMED and await self._is_final(request):
            request.status = pb.FINALIZED
        return request

    async def _is_final(self, request: Request) -> bool:
        if self.finality_depth == 0:
            return True
        if request.confirm_block is None:
            return False
        final = await self._final_block()
        return final >= request.confirm_block

    async def _final_block(self) -> int:
        asked, block = self._finalized
        if time.monotonic() - asked < 1.0:
            return block
        eth = self.client.chain.w3.eth
        try:
            if self.finality_depth is None:
                header = await asyncio.to_thread(eth.get_block, "finalized")
                block = int(header["number"])
            else:
                block = int(await asyncio.to_thread(lambda: eth.block_number)) - self.finality_depth
        except Exception as exc:  # noqa: BLE001 - the chain is unreachable: nothing is final yet
            log.warning("cannot read the final block: %s", exc)
            return -1
        self._finalized = (time.monotonic(), block)
        return block

    # ------------------------------------------------------------ RetrieveBlob
    async def retrieve(self, storage_root: bytes, epoch: int, quorum_id: int) -> bytes:
        if len(storage_root) != 32:
            raise DisperserError(grpc.StatusCode.INVALID_ARGUMENT, "parameter StorageRoot len is not accepted")
        ref = BlobRef(bytes(storage_root), int(epoch), int(quorum_id))
        chain = self.client.chain
        try:
            known = await asyncio.to_thread(chain.commitment_exists, ref.data_root, ref.epoch, ref.quorum_id)
        except DAChainError as exc:
            raise DisperserError(grpc.StatusCode.UNAVAILABLE, str(exc)) from None
        if not known:
            raise DisperserError(grpc.StatusCode.NOT_FOUND, f"no verified commitment for blob {ref} on chain")
        try:
            return await self.client.get(ref)
        except DAClientError as exc:
            raise DisperserError(grpc.StatusCode.UNAVAILABLE, str(exc)) from None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()


def _header(request: Request) -> pb.BlobInfo:
    if request.ref is None or request.status not in (pb.CONFIRMED, pb.FINALIZED):
        return pb.BlobInfo()
    ref = request.ref
    return pb.BlobInfo(blob_header=pb.BlobHeader(storage_root=ref.data_root, epoch=ref.epoch,
                                                 quorum_id=ref.quorum_id))


class DisperserServicer(pb_grpc.DisperserServicer):
    """The gRPC handlers: requests → `Disperser`, `DisperserError` → the gRPC status it names."""

    def __init__(self, disperser: Disperser) -> None:
        self.disperser = disperser

    async def DisperseBlob(self, request: pb.DisperseBlobRequest, context: grpc.aio.ServicerContext) \
            -> pb.DisperseBlobReply:
        try:
            accepted = self.disperser.disperse(request.data)
        except DisperserError as exc:
            await context.abort(exc.code, str(exc))
        return pb.DisperseBlobReply(result=accepted.status, request_id=accepted.request_id)

    async def GetBlobStatus(self, request: pb.BlobStatusRequest, context: grpc.aio.ServicerContext) \
            -> pb.BlobStatusReply:
        try:
            found = await self.disperser.status(request.request_id)
        except DisperserError as exc:
            await context.abort(exc.code, str(exc))
        return pb.BlobStatusReply(status=found.status, info=_header(found))

    async def RetrieveBlob(self, request: pb.RetrieveBlobRequest, context: grpc.aio.ServicerContext) \
            -> pb.RetrieveBlobReply:
        try:
            data = await self.disperser.retrieve(request.storage_root, request.epoch, request.quorum_id)
        except DisperserError as exc:
            await context.abort(exc.code, str(exc))
        return pb.RetrieveBlobReply(data=data)


def build_server(disperser: Disperser) -> grpc.aio.Server:
    """The gRPC server with the Disperser service (no port bound yet); each method counted and timed as
    `deaios_disperser_rpc_*{method}` (the metrics are served by `metrics.serve_http`)."""
    server = grpc.aio.server(options=GRPC_OPTIONS)
    servicer = DisperserServicer(disperser)
    methods = {name: getattr(servicer, name) for name in ("DisperseBlob", "GetBlobStatus", "RetrieveBlob")}
    metrics.instrument_rpc(methods, "disperser")
    for name, method in methods.items():
        setattr(servicer, name, method)
    pb_grpc.add_DisperserServicer_to_server(servicer, server)
    return server


async def serve(disperser: Disperser, host: str, port: int, ready=None) -> None:
    """Serve until cancelled; `ready(target)` is called once listening (target = "host:port")."""
    server = build_server(disperser)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen on {host}:{port}")
    await server.start()
    target = f"{host}:{bound}"
    log.info("disperser listening on %s (gRPC disperser.Disperser)", target)
    if ready is not None:
        ready(target)
    try:
        await server.wait_for_termination()
    finally:
        await disperser.close()
        await server.stop(grace=2)


def print_ready(target: str, address: str, metrics_url: str | None = None) -> None:
    sys.stdout.write(json.dumps({"grpc": target, "address": address, "pid": os.getpid(), "metrics": metrics_url})
                     + "\n")
    sys.stdout.flush()
