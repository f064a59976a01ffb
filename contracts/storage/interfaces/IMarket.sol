// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Storage market interface called by the Flow contract (0G-compatible function names)
interface IMarket {
    /// @notice Receives the fee of one submission. Only the flow contract may call it.
    /// @param beforeLength flow length (sectors) before the submission, padding included
    /// @param uploadSectors sectors the submission occupies (its nodes), the priced amount
    /// @param paddingSectors zero sectors inserted before the submission for alignment
    function chargeFee(uint256 beforeLength, uint256 uploadSectors, uint256 paddingSectors) external payable;

    /// @notice The flow contract allowed to charge fees.
    function flow() external view returns (address);

    /// @notice Price of one 256-byte sector, in wei.
    function pricePerSector() external view returns (uint256);
}
