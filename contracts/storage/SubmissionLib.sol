// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Submission, SubmissionData, SubmissionNode} from "./interfaces/Submission.sol";

/// @notice The submission has no nodes.
error EmptySubmission();
/// @notice More than `SubmissionLib.MAX_NODES` nodes.
error TooManyNodes(uint256 count);
/// @notice The first (largest) node is at least 2^64 sectors.
error HeightTooLarge(uint256 height);
/// @notice Node `index` is not strictly smaller than the node before it.
error HeightsNotDecreasing(uint256 index);
/// @notice The first and last node heights differ by 4 or more (not a minimal split).
error HeightSpanTooLarge(uint256 firstHeight, uint256 lastHeight);
/// @notice `length` bytes do not fit in the nodes (`maxLength` bytes at most).
error LengthTooLarge(uint256 length, uint256 maxLength);
/// @notice `length` bytes would fit a smaller split: it must be strictly greater than `minLengthExclusive`.
error LengthTooSmall(uint256 length, uint256 minLengthExclusive);
/// @notice The submission names no submitter.
error ZeroSubmitter();

/// @title Validation, size and digest of 0G submissions
/// @notice A submission is valid when its nodes are exactly the split the 0G client computes for its
///         byte length: chunks = ceil(length / 256); p2 = nextPow2(chunks); the chunk count is padded
///         to a multiple of max(1, p2 / 16) and split into descending powers of two (at most four).
///         This makes the split unique per length, so the contract rules below reproduce the 0G rules.
library SubmissionLib {
    /// @notice Bytes per flow sector (entry).
    uint256 internal constant SECTOR_SIZE = 256;
    /// @notice Maximum number of nodes in a submission.
    uint256 internal constant MAX_NODES = 4;
    /// @notice Node heights must be below this.
    uint256 internal constant MAX_HEIGHT = 64;

    /// @notice Number of sectors the submission occupies: sum of 2^height over its nodes.
    function size(SubmissionData calldata data) internal pure returns (uint256 sectors) {
        uint256 n = data.nodes.length;
        for (uint256 i = 0; i < n; ++i) {
            sectors += uint256(1) << data.nodes[i].height;
        }
    }

    /// @notice Reverts with a specific error unless the submission is valid; returns its size in sectors.
    function check(Submission calldata sub) internal pure returns (uint256 sectors) {
        SubmissionNode[] calldata nodes = sub.data.nodes;
        uint256 n = nodes.length;
        if (n == 0) revert EmptySubmission();
        if (n > MAX_NODES) revert TooManyNodes(n);
        uint256 first = nodes[0].height;
        if (first >= MAX_HEIGHT) revert HeightTooLarge(first);
        sectors = uint256(1) << first;
        uint256 previous = first;
        for (uint256 i = 1; i < n; ++i) {
            uint256 h = nodes[i].height;
            if (h >= previous) revert HeightsNotDecreasing(i);
            sectors += uint256(1) << h;
            previous = h;
        }
        // `previous` is now the last height.
        if (first - previous >= MAX_NODES) revert HeightSpanTooLarge(first, previous);
        if (sub.submitter == address(0)) revert ZeroSubmitter();

        uint256 length = sub.data.length;
        uint256 maxLength = sectors * SECTOR_SIZE;
        if (length > maxLength) revert LengthTooLarge(length, maxLength);
        // Largest capacity of the next-smaller valid split: the length must exceed it.
        uint256 smaller;
        if (sectors < 16) {
            smaller = sectors - 1;
        } else if (n == 1) {
            smaller = sectors - (sectors >> 4);
        } else {
            smaller = sectors - (uint256(1) << (first - 3));
        }
        uint256 minExclusive = smaller * SECTOR_SIZE;
        if (length <= minExclusive) revert LengthTooSmall(length, minExclusive);
    }

    /// @notice The submission's identity: keccak256 of its node roots concatenated (abi.encodePacked).
    function digest(SubmissionData calldata data) internal pure returns (bytes32 result) {
        SubmissionNode[] calldata nodes = data.nodes;
        uint256 n = nodes.length;
        bytes32[] memory roots = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            roots[i] = nodes[i].root;
        }
        result = keccak256(abi.encodePacked(roots));
    }
}
