// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title What supervision, rewards and governance read from license delegation
/// @notice A license (ERC-721 token of AlignmentLicense) is operated by at most one operator at a time:
///         either delegated to a registered operator, or self-operated by its owner when the owner is a
///         registered operator.
interface IAlignmentDelegation {
    /// @notice The operator currently running `tokenId` (zero when nobody does).
    function operatorOf(uint256 tokenId) external view returns (address);

    /// @notice How many licenses `operator` runs right now (its own included); 0 for a non-operator.
    function operatedCount(address operator) external view returns (uint256);

    /// @notice Whether `account` is a registered operator running at least one license.
    function isActiveOperator(address account) external view returns (bool);

    /// @notice The operator's commission on rewards, in basis points.
    function commissionBps(address operator) external view returns (uint16);
}
