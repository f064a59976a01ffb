// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Per-epoch rewards for operated licenses
/// @notice Supervision reports, once per (epoch, operator), that the operator did its duty in `epoch`; every
///         license it operated at that moment earns the epoch's reward per license, split between the
///         license's owner and the operator's commission. Claims are pull payments.
interface IAlignmentRewards {
    /// @notice Record that `operator` operated its licenses in `epoch` (SUPERVISION_ROLE only; once per pair).
    function recordOperated(uint256 epoch, address operator) external;
}
