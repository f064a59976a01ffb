// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @notice The flow would exceed 2^64 sectors.
error FlowTreeFull(uint256 newLength);

/// @title FlowTree: append-only merkle tree over the flow's 256-byte sectors
/// @notice Leaves are keccak256 hashes of 256-byte sectors; a parent is keccak256(left || right).
///         Position 0 holds a placeholder leaf whose hash is bytes32(0), so a fresh tree has length 1.
///         Subtree roots (submission nodes) are inserted whole at a position aligned to their size;
///         skipped positions are zero sectors (leaf hash `ZERO_LEAF` = keccak256 of 256 zero bytes).
///         The root covers the smallest power of two >= length positions, empty positions being zero
///         sectors, so the root of an empty subtree of height h is zeros(h), zeros(h+1) = H(zeros(h), zeros(h)).
/// @dev State is a frontier: `frontier[i]` is the root of the complete, left-aligned subtree of height i
///      that ends where bit i of `length` says one exists (valid iff bit i of `length` is 1). Appending a
///      subtree of height h at a 2^h-aligned length works like a binary counter: O(log n) hashes and
///      at most one storage write per level that carries. Roots of zero subtrees are computed on the fly
///      (one keccak per level) instead of being stored.
library FlowTree {
    /// @notice Sectors per 256 KiB segment; a submission never starts mid-segment and crosses one.
    uint256 internal constant SECTORS_PER_SEGMENT = 1024;
    /// @notice log2(SECTORS_PER_SEGMENT).
    uint256 internal constant SEGMENT_HEIGHT = 10;
    /// @notice Maximum flow length in sectors.
    uint256 internal constant MAX_LENGTH = 1 << 64;
    /// @notice keccak256 of a 256-byte all-zero sector: zeros(0).
    bytes32 internal constant ZERO_LEAF = 0xd397b3b043d87fcd6fad1291ff0bfd16401c274896d8c63a923727f077b8e0b5;

    struct Tree {
        /// @notice Number of positions used (placeholder and padding included).
        uint256 length;
        /// @notice Frontier subtree roots per level, see the library notes.
        bytes32[65] frontier;
    }

    /// @notice Initialise: position 0 is the placeholder leaf bytes32(0).
    function init(Tree storage tree) internal {
        tree.length = 1;
        tree.frontier[0] = bytes32(0);
    }

    /// @notice Round `length` up to a multiple of 2^height.
    function nextAlign(uint256 length, uint256 height) internal pure returns (uint256) {
        uint256 mask = (uint256(1) << height) - 1;
        return (length + mask) & ~mask;
    }

    /// @notice The 0G pad rule, applied before a submission of `sectors` sectors whose first node has
    ///         height `firstHeight`: if, aligned to its first node, it would start inside a segment and
    ///         cross into the next one, zero-fill up to the next segment boundary instead.
    function pad(Tree storage tree, uint256 firstHeight, uint256 sectors) internal {
        uint256 start = nextAlign(tree.length, firstHeight);
        if (
            start % SECTORS_PER_SEGMENT != 0
                && start / SECTORS_PER_SEGMENT != (start + sectors - 1) / SECTORS_PER_SEGMENT
        ) {
            padTo(tree, SEGMENT_HEIGHT);
        }
    }

    /// @notice Fill the tree with zero sectors up to the next multiple of 2^height.
    function padTo(Tree storage tree, uint256 height) internal {
        uint256 length = tree.length;
        uint256 target = nextAlign(length, height);
        if (target == length) return;
        // Root of the 2^height block [target - 2^height, target): the data in [blockStart, length) then zeros.
        bytes32 blockRoot = _partialRoot(tree, length, height);
        _appendAligned(tree, target - (uint256(1) << height), blockRoot, height);
    }

    /// @notice Insert a subtree root of the given height at the next 2^height-aligned position
    ///         (zero-filling the gap). Returns the position of its first sector.
    function insertNode(Tree storage tree, bytes32 root_, uint256 height) internal returns (uint256 start) {
        padTo(tree, height);
        start = tree.length;
        _appendAligned(tree, start, root_, height);
    }

    /// @notice The tree height: smallest h with 2^h >= length.
    function height(Tree storage tree) internal view returns (uint256) {
        return _ceilLog2(tree.length);
    }

    /// @notice The merkle root over 2^height(tree) positions (empty positions are zero sectors).
    function root(Tree storage tree) internal view returns (bytes32) {
        uint256 length = tree.length;
        uint256 h = _ceilLog2(length);
        if (length == uint256(1) << h) return tree.frontier[h];
        return _partialRoot(tree, length, h);
    }

    /// @dev Append a complete subtree at `position` (a multiple of 2^h that is >= the last used position
    ///      rounded down to 2^h), i.e. set length = position then add 2^h positions.
    function _appendAligned(Tree storage tree, uint256 position, bytes32 node, uint256 h) private {
        uint256 newLength = position + (uint256(1) << h);
        if (newLength > MAX_LENGTH) revert FlowTreeFull(newLength);
        for (uint256 i = h;; ++i) {
            if ((position >> i) & 1 == 0) {
                tree.frontier[i] = node;
                break;
            }
            node = _hash(tree.frontier[i], node);
        }
        tree.length = newLength;
    }

    /// @dev Root of the height-`h` block that contains position `length - 1`, positions >= length being
    ///      zero sectors. Requires `length` not to be a multiple of 2^h.
    function _partialRoot(Tree storage tree, uint256 length, uint256 h) private view returns (bytes32 node) {
        bytes32 zero = ZERO_LEAF;
        bool started;
        for (uint256 i = 0; i < h; ++i) {
            if ((length >> i) & 1 == 1) {
                node = _hash(tree.frontier[i], started ? node : zero);
                started = true;
            } else if (started) {
                node = _hash(node, zero);
            }
            zero = _hash(zero, zero);
        }
    }

    function _ceilLog2(uint256 x) private pure returns (uint256) {
        return Math.log2(x, Math.Rounding.Ceil);
    }

    function _hash(bytes32 left, bytes32 right) private pure returns (bytes32 result) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            result := keccak256(0x00, 0x40)
        }
    }
}
