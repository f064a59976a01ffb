// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Submission, SubmissionData} from "./Submission.sol";

/// @notice A range of flow positions [start, end) sealed by one mining epoch.
struct EpochRange {
    uint128 start;
    uint128 end;
}

/// @notice An epoch range together with the context digest that identifies it.
struct EpochRangeWithContextDigest {
    uint128 start;
    uint128 end;
    bytes32 digest;
}

/// @notice The mining context of the current epoch.
struct MineContext {
    uint256 epoch;
    uint256 mineStart;
    bytes32 flowRoot;
    uint256 flowLength;
    bytes32 blockDigest;
    bytes32 digest;
}

/// @title The storage log ("flow") interface, ABI-compatible with 0G's Flow contract
interface IFlow {
    /// @notice A submission was appended to the flow.
    /// @param sender the submission's `submitter`, which is the account that sent it
    /// @param identity keccak256 of the concatenated node roots
    /// @param submissionIndex the transaction sequence number of the submission
    /// @param startPos flow position (sector index) of the first node
    /// @param length sectors occupied by the submission's nodes
    /// @param submission the submission data
    event Submit(
        address indexed sender,
        bytes32 indexed identity,
        uint256 submissionIndex,
        uint256 startPos,
        uint256 length,
        SubmissionData submission
    );

    /// @notice A mining epoch was sealed.
    event NewEpoch(
        address indexed sender,
        uint256 indexed index,
        bytes32 startMerkleRoot,
        uint256 submissionIndex,
        uint256 flowLength,
        bytes32 context
    );

    function submit(Submission calldata submission)
        external
        payable
        returns (uint256 index, bytes32 digest, uint256 startIndex, uint256 length);

    function batchSubmit(Submission[] calldata submissions)
        external
        payable
        returns (
            uint256[] memory indexes,
            bytes32[] memory digests,
            uint256[] memory startIndexes,
            uint256[] memory lengths
        );

    function market() external view returns (address payable);

    function numSubmissions() external view returns (uint256);

    function submissionIndex() external view returns (uint256);

    function epoch() external view returns (uint256);

    function firstBlock() external view returns (uint256);

    function blocksPerEpoch() external view returns (uint256);

    function epochStartPosition() external view returns (uint256);

    function tree() external view returns (uint256 currentLength, uint256 height);

    function getFlowRootByTxSeq(uint256 txSeq) external view returns (bytes32);

    function submissionInfo(uint256 txSeq) external view returns (uint256 startPos, uint256 sectors, uint256 size);

    function getContext() external view returns (MineContext memory);

    function getEpochRange(bytes32 digest) external view returns (EpochRange memory);

    function makeContext() external;

    function makeContextFixedTimes(uint256 cnt) external;

    function makeContextWithResult() external returns (MineContext memory);

    function queryContextAtPosition(uint128 targetPosition)
        external
        returns (EpochRangeWithContextDigest memory range);
}
