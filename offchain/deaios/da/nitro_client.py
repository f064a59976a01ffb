"""A client of a Nitro DA provider that sends exactly what Nitro's Go client (`daprovider/daclient`, v3.10) sends.

Each call is one JSON-RPC 2.0 request with positional params encoded as go-ethereum does: `hexutil.Uint64` →
"0x" + hex without leading zeros, `hexutil.Bytes` → "0x" + lowercase hex, `common.Hash` → "0x" + 64 hex digits.
Results are decoded as Go decodes them: `hexutil.Bytes` fields from 0x-hex, the untagged `[]byte` fields of
`PayloadResult`/`PreimagesResult` from base64. The chunked store signs each step with Nitro's `PayloadCommiter`
(keccak256 of the bytes ‖ uint64 BE fields). A JSON-RPC error becomes `NitroRpcError` whose text is the server's
message, as Go's `err.Error()`. Used by the tests and `scripts/demo_rollup.py`.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
import urllib.request
from typing import Any

from deaios.da.nitro_cert import stream_commitment

_ids = itertools.count(1)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
#: Nitro's default chunk body limit (go-ethereum's 5 MB HTTP body limit) → ~2.6 MB of payload per chunk
DEFAULT_CHUNK_BODY = 5 * 1024 * 1024


class NitroRpcError(RuntimeError):
    """The provider answered with a JSON-RPC error (str(err) is its message, as Go's err.Error())."""


def u64(value: int) -> str:
    return hex(value)


def hex_bytes(data: bytes) -> str:
    return "0x" + data.hex()


def _from_hex(value: str) -> bytes:
    return bytes.fromhex(value[2:]) if value else b""


def chunk_size_for(body_limit: int = DEFAULT_CHUNK_BODY, method: str = "daprovider_sendChunk") -> int:
    """Nitro's calculateEffectiveChunkSize."""
    overhead = len('{"jsonrpc":"2.0","id":4294967295,"method":"","params":[""]}') + len(method)
    return (body_limit - overhead - 512) // 2


class NitroDAClient:
    def __init__(self, url: str, timeout: float = 600.0) -> None:
        self.url = url
        self.timeout = timeout

    def call(self, method: str, *params: object) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": list(params)}).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with _OPENER.open(request, timeout=self.timeout) as resp:
            reply = json.loads(resp.read())
        if reply.get("error"):
            raise NitroRpcError(reply["error"].get("message", str(reply["error"])))
        return reply.get("result")

    # reader
    def get_supported_header_bytes(self) -> bytes:
        return _from_hex(self.call("daprovider_getSupportedHeaderBytes").get("headerBytes", ""))

    def recover_payload(self, batch_num: int, block_hash: bytes, sequencer_msg: bytes) -> bytes:
        result = self.call("daprovider_recoverPayload", u64(batch_num), hex_bytes(block_hash), hex_bytes(sequencer_msg))
        return base64.b64decode(result["Payload"] or "")

    def collect_preimages(self, batch_num: int, block_hash: bytes, sequencer_msg: bytes) \
            -> dict[int, dict[bytes, bytes]]:
        result = self.call("daprovider_collectPreimages", u64(batch_num), hex_bytes(block_hash),
                           hex_bytes(sequencer_msg))
        return _preimages(result["Preimages"])

    def recover_payload_and_preimages(self, batch_num: int, block_hash: bytes, sequencer_msg: bytes) \
            -> tuple[bytes, dict[int, dict[bytes, bytes]]]:
        result = self.call("daprovider_recoverPayloadAndPreimages", u64(batch_num), hex_bytes(block_hash),
                           hex_bytes(sequencer_msg))
        return base64.b64decode(result["Payload"] or ""), _preimages(result["Preimages"])

    # writer
    def get_max_message_size(self) -> int:
        return int(self.call("daprovider_getMaxMessageSize")["maxSize"])

    def store(self, message: bytes, timeout: int) -> bytes:
        result = self.call("daprovider_store", hex_bytes(message), u64(timeout))
        return _from_hex(result.get("serialized-da-cert", ""))

    def store_chunked(self, message: bytes, timeout: int, chunk_size: int | None = None) -> bytes:
        """Nitro's DataStreamer: start, every chunk, commit (chunks sent one after the other here)."""
        chunk_size = chunk_size or chunk_size_for()
        n_chunks = -(-len(message) // chunk_size)
        timestamp = int(time.time())
        sig = stream_commitment(b"", timestamp, n_chunks, chunk_size, len(message), timeout)
        result = self.call("daprovider_startChunkedStore", u64(timestamp), u64(n_chunks), u64(chunk_size),
                           u64(len(message)), u64(timeout), hex_bytes(sig))
        message_id = int(result["BatchId"], 16)
        for i in range(n_chunks):
            chunk = message[i * chunk_size:(i + 1) * chunk_size]
            self.call("daprovider_sendChunk", u64(message_id), u64(i), hex_bytes(chunk),
                      hex_bytes(stream_commitment(chunk, message_id, i)))
        result = self.call("daprovider_commitChunkedStore", u64(message_id), hex_bytes(stream_commitment(b"", message_id)))
        return _from_hex(result.get("serialized-da-cert", ""))

    # validator
    def generate_read_preimage_proof(self, offset: int, certificate: bytes) -> bytes:
        result = self.call("daprovider_generateReadPreimageProof", u64(offset), hex_bytes(certificate))
        return _from_hex(result.get("proof", ""))

    def generate_certificate_validity_proof(self, certificate: bytes) -> bytes:
        result = self.call("daprovider_generateCertificateValidityProof", hex_bytes(certificate))
        return _from_hex(result.get("proof", ""))


def _preimages(raw: dict[str, dict[str, str]] | None) -> dict[int, dict[bytes, bytes]]:
    return {int(kind): {_from_hex(h): base64.b64decode(v) for h, v in entries.items()}
            for kind, entries in (raw or {}).items()}
