// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Hooks wiring the alignment license, delegation and rewards contracts together
/// @notice Delegation does not take custody of a license: the owner keeps the token. The license contract
///         tells the delegation contract about every transfer (which clears the token's delegation), and the
///         delegation contract tells the rewards contract whenever a token's operator changes (which settles
///         the token's pending reward to its owner first).
interface ILicenseTransferHook {
    /// @notice Called by the license contract before `tokenId` moves from `from` to `to` (both non-zero).
    function onLicenseTransfer(uint256 tokenId, address from, address to) external;
}

/// @notice Called by the delegation contract around every change of a token's operator.
interface IOperatorChangeHook {
    /// @notice `tokenId` (owned by `owner`) stops being run by `oldOperator` and starts being run by
    ///         `newOperator` (either may be zero).
    function onOperatorChange(uint256 tokenId, address owner, address oldOperator, address newOperator)
        external;
}
