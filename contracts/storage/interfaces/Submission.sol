// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title 0G submission structs (ABI-compatible with 0G's Flow, "NEW" layout)
/// @notice A file enters the flow as up to four power-of-two subtrees ("nodes") of 256-byte sectors,
///         biggest first. `length` is the raw file size in bytes; `tags` are opaque user bytes
///         (KV streams put sha256("STREAM") || streamIds here).

/// @notice One subtree of a submission: its merkle root and height (it covers 2^height sectors).
struct SubmissionNode {
    bytes32 root;
    uint256 height;
}

/// @notice The data part of a submission, as emitted in the `Submit` event.
struct SubmissionData {
    uint256 length;
    bytes tags;
    SubmissionNode[] nodes;
}

/// @notice A submission: its data and the account it is recorded for (the event's `sender`); deaios's Flow
///         requires it to be msg.sender.
struct Submission {
    SubmissionData data;
    address submitter;
}
