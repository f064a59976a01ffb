// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ChallengeMath: which chunk a storage node is challenged for in an epoch
/// @notice Storage nodes keep erasure shares (deaios.storage.erasure): every 256 KiB segment is cut into k data
///         shares and n - k parity shares, share s of segment i on node (i + s) mod n, shares 0..k-1 being the
///         segment's bytes. A node can answer a chunk from its own data only if the chunk lies wholly inside one
///         of its data shares. The challenge of node `nodeId` (placement index `node`) for attempt `a`:
///         1. h = keccak256(seed ‖ uint256 nodeId ‖ uint256 a); the file is the challenge pool's entry h mod
///            (pool size when the epoch was opened);
///         2. over the file's F full data segments (F = min(ceil(chunks / 1024), sectors / 1024)), the node
///            holds data share s of segment j iff j ≡ node - s (mod n): for s = 0..k-1, c_s segments
///            r_s, r_s + n, … below F with r_s = (node - s) mod n; u = keccak256(h ‖ "segment") mod Σ c_s picks
///            (s, t) in that order and the segment j = r_s + t·n;
///         3. the chunk: v = keccak256(h ‖ "chunk") mod the chunks wholly inside share s (bytes [s·sz,
///            (s+1)·sz) of the segment, sz = ceil(262144 / k)), from the first of them.
///         `deaios.alignment.challenge.storage_challenge` is the same computation off chain.
library ChallengeMath {
    uint256 internal constant CHUNK_SIZE = 256;
    uint256 internal constant SEGMENT_CHUNKS = 1024;

    /// @notice The attempt hash h.
    function attemptHash(bytes32 seed, uint256 nodeId, uint256 attempt) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(seed, nodeId, attempt));
    }

    /// @notice Full data segments of a file of `size` bytes occupying `sectors` flow sectors.
    function fullDataSegments(uint256 size, uint256 sectors) internal pure returns (uint256) {
        uint256 chunks = (size + CHUNK_SIZE - 1) / CHUNK_SIZE;
        uint256 data = (chunks + SEGMENT_CHUNKS - 1) / SEGMENT_CHUNKS;
        uint256 full = sectors / SEGMENT_CHUNKS;
        return data < full ? data : full;
    }

    /// @notice The challenged chunk (file-wide index) for attempt hash `h` of the node at placement `node`
    ///         among `n` nodes with `k` data shares, in a file with `full` full data segments; ok false when the
    ///         node keeps no whole chunk of a full data segment of it.
    function pickChunk(bytes32 h, uint256 full, uint256 node, uint256 n, uint256 k)
        internal
        pure
        returns (bool ok, uint256 chunk)
    {
        uint256 total = 0;
        for (uint256 s = 0; s < k; ++s) {
            total += _segmentsOfShare(full, node, n, s);
        }
        if (total == 0) return (false, 0);
        uint256 u = uint256(keccak256(abi.encodePacked(h, "segment"))) % total;
        uint256 share = 0;
        for (; share < k; ++share) {
            uint256 c = _segmentsOfShare(full, node, n, share);
            if (u < c) break;
            u -= c;
        }
        uint256 segment = (node + n - share % n) % n + u * n;
        uint256 size = (SEGMENT_CHUNKS * CHUNK_SIZE + k - 1) / k;
        uint256 first = (share * size + CHUNK_SIZE - 1) / CHUNK_SIZE;
        uint256 end = (share + 1) * size / CHUNK_SIZE;
        if (end > SEGMENT_CHUNKS) end = SEGMENT_CHUNKS;
        if (end <= first) return (false, 0);
        uint256 v = uint256(keccak256(abi.encodePacked(h, "chunk"))) % (end - first);
        return (true, segment * SEGMENT_CHUNKS + first + v);
    }

    /// @dev Segments below `full` of which the node holds data share `s`: j = r, r + n, … with r = (node - s) mod n.
    function _segmentsOfShare(uint256 full, uint256 node, uint256 n, uint256 s) private pure returns (uint256) {
        uint256 r = (node + n - s % n) % n;
        return r < full ? (full - 1 - r) / n + 1 : 0;
    }
}
