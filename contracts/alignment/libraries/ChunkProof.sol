// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ChunkProof: a 256-byte flow sector proven against a flow root
/// @notice The flow tree (contracts/storage/FlowTree.sol) is a complete binary keccak tree over 2^h
///         positions: leaf = keccak256(sector), parent = keccak256(left || right). A file's submission nodes
///         are complete, aligned subtrees of it, and inside a node 0G's file tree (chunks -> segment ->
///         file) is the same complete binary tree, so one chunk of a file is proven to the flow root by the
///         plain path of its flow position: sibling i is on the right when bit i of the position is 0.
/// @dev Bounded: at most MAX_DEPTH (64, the flow's maximum height) hashes.
library ChunkProof {
    /// @notice Bytes of one flow sector (0G chunk).
    uint256 internal constant CHUNK_SIZE = 256;
    /// @notice The flow holds at most 2^64 sectors.
    uint256 internal constant MAX_DEPTH = 64;

    /// @notice A chunk must be exactly 256 bytes.
    error BadChunkLength(uint256 length);
    /// @notice More siblings than the flow tree can be high.
    error ProofTooLong(uint256 depth);
    /// @notice `position` does not fit in a tree of 2^depth positions.
    error PositionOutOfTree(uint256 position, uint256 depth);

    /// @notice The root reached from `chunk` at flow `position` through `siblings` (bottom-up).
    function rootOf(bytes calldata chunk, uint256 position, bytes32[] calldata siblings)
        internal
        pure
        returns (bytes32 node)
    {
        if (chunk.length != CHUNK_SIZE) revert BadChunkLength(chunk.length);
        uint256 depth = siblings.length;
        if (depth > MAX_DEPTH) revert ProofTooLong(depth);
        if (position >> depth != 0) revert PositionOutOfTree(position, depth);
        node = keccak256(chunk);
        for (uint256 i = 0; i < depth; ++i) {
            bytes32 sibling = siblings[i];
            node = (position >> i) & 1 == 0 ? _hash(node, sibling) : _hash(sibling, node);
        }
    }

    function _hash(bytes32 left, bytes32 right) private pure returns (bytes32 result) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            result := keccak256(0x00, 0x40)
        }
    }
}
