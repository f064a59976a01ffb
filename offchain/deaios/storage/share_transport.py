"""The binary share API between deaios storage nodes and deaios clients (not part of 0G's RPC).

Erasure shares are large and numerous, so they travel as raw bytes over HTTP rather than base64 JSON:

    GET  /deaios/v1/roots/<root>                    the file's segment roots (32 bytes each) | 404
    PUT  /deaios/v1/roots/<root>                    store them (checked: their tree root is <root>)
    GET  /deaios/v1/shares/<root>?first=F&count=C[&kind=data]
                                                    for each segment F..F+C-1: one flag byte (1 present,
                                                    0 missing), then the share if present; kind=data
                                                    leaves out parity shares (the no-decode fast path)
    PUT  /deaios/v1/shares/<root>?first=F&count=C   the node's shares of segments F..F+C-1, each data
                                                    share followed by its merkle proof (deaios.storage.
                                                    placement); at most MAX_PUT_SEGMENTS segments
    GET  /deaios/v1/missing/<root>                  JSON list of data segments whose share is missing
    GET  /deaios/v1/identity                        {"address", "index"}: the node's placement key

Both PUTs need the `X-Deaios-Placement` header (a submitter's or a peer node's signature, see
deaios.storage.placement); shares are write-once. A share's size follows from the file size
(erasure.segment_lengths and ErasureCode.share_size), so no lengths are sent. Errors come back as HTTP
4xx with a JSON body {"error": message}. Replies are read up to the size the request implies (a peer
cannot make us buffer more).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import aiohttp

from deaios.service_limits import ReplyTooLarge, read_capped
from deaios.storage.erasure import ErasureCode, segment_lengths
from deaios.storage.merkle import HASH_SIZE

PREFIX = "/deaios/v1"
MAX_PUT_SEGMENTS = 64  # segments per PUT /shares
MAX_GET_SEGMENTS = 1024  # segments per GET /shares
MAX_SMALL_REPLY = 64 << 10  # identity, missing lists of small files, errors


class TransportError(RuntimeError):
    """A node refused a request or could not be reached."""


class PlacementRefused(TransportError):
    """A node refused to take a file's shares from this signer (HTTP 403: not a submitter of the file)."""


def share_sizes(code: ErasureCode, file_size: int, first: int, count: int) -> list[int]:
    lengths = segment_lengths(file_size)
    return [code.share_size(length) for length in lengths[first:first + count]]


def pack_optional(shares: list[bytes | None]) -> bytes:
    """The GET /shares body: a flag byte per segment, then the share if present (one copy of each)."""
    parts: list[bytes] = []
    for share in shares:
        if share is None:
            parts.append(b"\x00")
        else:
            parts += (b"\x01", share)
    return b"".join(parts)


def unpack_optional(body: bytes, sizes: list[int]) -> list[bytes | None]:
    """Parse a GET /shares body; the shares are zero-copy views (memoryview) into `body`."""
    shares: list[bytes | None] = []
    view = memoryview(body)
    pos = 0
    for size in sizes:
        if pos >= len(body):
            raise TransportError("truncated share response")
        flag = body[pos]
        pos += 1
        if flag:
            shares.append(view[pos:pos + size])
            pos += size
        else:
            shares.append(None)
    if pos != len(body) or any(s is not None and len(s) != n for s, n in zip(shares, sizes)):
        raise TransportError("malformed share response")
    return shares


def consecutive_runs(indices: list[int], limit: int | None = None) -> list[list[int]]:
    """Split sorted segment indices into runs of consecutive values (each at most `limit` long)."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1 and (limit is None or len(runs[-1]) < limit):
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def split_concatenated(body: bytes, sizes: list[int]) -> list[bytes]:
    if len(body) != sum(sizes):
        raise ValueError(f"expected {sum(sizes)} bytes of shares, got {len(body)}")
    shares, pos = [], 0
    for size in sizes:
        shares.append(body[pos:pos + size])
        pos += size
    return shares


def refusal(status: int, body: bytes) -> str:
    """A node's refusal as one line: its JSON {"error": …} message (or the start of its body) and the status."""
    text = body[:300].decode(errors="replace")
    with contextlib.suppress(ValueError, TypeError, KeyError):
        text = str(json.loads(body)["error"])[:300]
    return f"{text.strip() or 'no reason given'} (HTTP {status})"


class ShareClient:
    """Client side of the share API, for one set of node URLs."""

    def __init__(self, session: aiohttp.ClientSession, urls: list[str], timeout: float = 30.0) -> None:
        self.session = session
        self.urls = [u.rstrip("/") for u in urls]
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _request(self, method: str, node: int, path: str, limit: int = MAX_SMALL_REPLY,
                       **kwargs: object) -> tuple[int, bytes]:
        try:
            async with self.session.request(method, self.urls[node] + PREFIX + path, timeout=self.timeout,
                                            **kwargs) as resp:  # type: ignore[arg-type]
                return resp.status, await read_capped(resp, limit)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ReplyTooLarge) as exc:
            raise TransportError(f"node {node} ({self.urls[node]}): {exc or type(exc).__name__}") from exc

    async def identity(self, node: int) -> str | None:
        """The placement address node `node` reports (None if it does not answer properly)."""
        status, body = await self._request("GET", node, "/identity")
        try:
            address = json.loads(body)["address"] if status == 200 else None
        except (ValueError, KeyError, TypeError):
            return None
        return address if isinstance(address, str) and address.startswith("0x") and len(address) == 42 else None

    async def get_roots(self, node: int, root: bytes, segments: int | None = None) -> bytes | None:
        limit = (segments or (1 << 22)) * HASH_SIZE
        status, body = await self._request("GET", node, f"/roots/0x{root.hex()}", limit=limit)
        return body if status == 200 else None

    async def put_roots(self, node: int, root: bytes, roots: bytes, headers: dict[str, str] | None = None) -> None:
        status, body = await self._request("PUT", node, f"/roots/0x{root.hex()}", data=roots, headers=headers)
        if status >= 300:
            error = PlacementRefused if status == 403 else TransportError
            raise error(f"node {node} refused segment roots: {refusal(status, body)}")

    async def get_shares(self, node: int, root: bytes, first: int, sizes: list[int],
                         data_only: bool = False) -> list[bytes | None]:
        """The node's shares of segments first..; with data_only, parity shares come back as missing."""
        status, body = await self._request("GET", node, f"/shares/0x{root.hex()}", limit=sum(sizes) + len(sizes),
                                           params={"first": first, "count": len(sizes),
                                                   "kind": "data" if data_only else "all"})
        if status != 200:
            raise TransportError(f"node {node} refused shares: {refusal(status, body)}")
        return unpack_optional(body, sizes)

    async def put_shares(self, node: int, root: bytes, first: int, shares: list[bytes],
                         headers: dict[str, str] | None = None) -> None:
        """Place `shares` (each a placement body piece: the share, plus its proof for a data share)."""
        status, body = await self._request("PUT", node, f"/shares/0x{root.hex()}", data=b"".join(shares),
                                           params={"first": first, "count": len(shares)}, headers=headers)
        if status >= 300:
            raise TransportError(f"node {node} refused shares: {refusal(status, body)}")

    async def missing(self, node: int, root: bytes, segments: int | None = None) -> list[int] | None:
        """Data segments whose share node `node` lacks; None if the node does not know the file yet."""
        limit = max(MAX_SMALL_REPLY, 12 * (segments or (1 << 22)))
        status, body = await self._request("GET", node, f"/missing/0x{root.hex()}", limit=limit)
        if status == 404:
            return None
        if status != 200:
            raise TransportError(f"node {node}: {refusal(status, body)}")
        try:
            out = json.loads(body)
        except ValueError:
            raise TransportError(f"node {node}: malformed missing list") from None
        if not isinstance(out, list) or not all(isinstance(i, int) for i in out):
            raise TransportError(f"node {node}: malformed missing list")
        return out
