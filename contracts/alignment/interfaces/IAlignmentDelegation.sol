// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title What supervision, rewards and governance read from license delegation
/// @notice A license (ERC-721 token of AlignmentLicense) is operated by at most one operator at a time:
///         either delegated to a registered operator, or self-operated by its owner when the owner is a
///         registered operator. Changes take effect at the next epoch: in an epoch, the counts and commissions
///         are those of when the epoch began.
interface IAlignmentDelegation {
    /// @notice The epoch now (epochs are `epochSeconds()` long from `genesis()`).
    function currentEpoch() external view returns (uint256);

    /// @notice Timestamp at which epoch 0 starts.
    function genesis() external view returns (uint256);

    /// @notice Epoch length, seconds.
    function epochSeconds() external view returns (uint256);

    /// @notice The operator `tokenId` is delegated to (from the next epoch on; zero when none).
    function operatorOf(uint256 tokenId) external view returns (address);

    /// @notice How many licenses `operator` runs in the current epoch (its own included); 0 for a non-operator.
    function operatedCount(address operator) external view returns (uint256);

    /// @notice Whether `account` is a registered operator running at least one license in the current epoch.
    function isActiveOperator(address account) external view returns (bool);

    /// @notice The operator's commission on rewards in the current epoch, in basis points.
    function commissionBps(address operator) external view returns (uint16);
}
