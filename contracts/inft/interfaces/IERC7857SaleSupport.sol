// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title What a marketplace needs from an ERC-7857 token to sell it safely (deaios; not part of 0G's interface)
/// @notice Audit H1 and the "update while listed" low: a sale is paid first and settled later with the oracle's
///         proofs, so between the two
///         - the buyer must not be able to invalidate proofs signed by its access assistant (by changing the
///           delegation): a trusted market locks the buyer's delegation until the settlement deadline;
///         - the seller must not swap the data the buyer paid for: the market records the token's data version
///           (bumped by every `update`) and refuses to sell or settle when it changed.
interface IERC7857SaleSupport {
    /// @notice `user`'s access delegation cannot change until `until` (a pending purchase).
    event DelegationLocked(address indexed user, uint64 until);

    /// @notice `user` tried to change its access delegation while a purchase of theirs may still settle.
    error ERC7857DelegationLocked(address user, uint64 until);

    /// @notice Freeze `user`'s access delegation until `until` (extends, never shortens, an existing lock).
    ///         Only for a trusted market (DELEGATION_LOCKER_ROLE), which calls it for a buyer at purchase.
    function lockDelegation(address user, uint64 until) external;

    /// @notice Until when `user`'s access delegation is frozen (0: never).
    function delegationLockedUntil(address user) external view returns (uint64);

    /// @notice How many times the owner replaced the token's data with `update` (0 for a new token or clone);
    ///         transfers re-encrypt the same data and do not count.
    function dataVersionOf(uint256 tokenId) external view returns (uint32);
}
