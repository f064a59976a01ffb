// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {BN254} from "../libraries/BN254.sol";

/// @title IDASigners: the DA signer registry (0G's `IDASigners` precompile ABI, plus deaios extensions)
/// @notice Signers register BN254 keys with a proof of possession, stake, and register for each next
///         epoch; `makeEpoch` turns the registrations into quorums of `encodedSlices` rows (slices),
///         each row assigned to one signer, in proportion to the signers' votes.
/// @dev Key encodings follow 0G: `SignerDetail.pkG2` is (real, imaginary) per coordinate as 0G's DA nodes
///      write it, while every other G2 point (e.g. `CommitRootSubmission.aggPkG2`) is in EIP-197 order.
interface IDASigners {
    struct SignerDetail {
        address signer;
        string socket;
        BN254.G1Point pkG1;
        /// @dev X = [x real, x imaginary], Y = [y real, y imaginary] (0G's signer encoding)
        BN254.G2Point pkG2;
    }

    struct Params {
        /// @dev stake (wei) per vote
        uint256 tokensPerVote;
        uint256 maxVotesPerSigner;
        uint256 maxQuorums;
        uint256 epochBlocks;
        /// @dev rows (slices) per quorum
        uint256 encodedSlices;
    }

    event NewSigner(address indexed signer, BN254.G1Point pkG1, BN254.G2Point pkG2);
    event SocketUpdated(address indexed signer, string socket);

    /// @notice The current parameters (changes apply from the next epoch made).
    function params() external view returns (Params memory);

    /// @notice The current epoch (0 before the first `makeEpoch`; epoch 0 has no quorums).
    function epochNumber() external view returns (uint256);

    /// @notice Number of quorums of `_epoch` (0 for an epoch with no registrations or not yet made).
    function quorumCount(uint256 _epoch) external view returns (uint256);

    function isSigner(address _account) external view returns (bool);

    function getSigner(address[] calldata _account) external view returns (SignerDetail[] memory);

    /// @notice The signer of every row of a quorum (length `encodedSlices`; a signer may own many rows).
    function getQuorum(uint256 _epoch, uint256 _quorumId) external view returns (address[] memory);

    function getQuorumRow(uint256 _epoch, uint256 _quorumId, uint32 _rowIndex) external view returns (address);

    /// @notice Register a signer (msg.sender must be `_signer.signer`) with a proof of possession:
    ///         `_signature` = sk * hashToG1(keccak256(signer ‖ uint256 chainId ‖ "0G_BN254_Pubkey_Registration")).
    function registerSigner(SignerDetail calldata _signer, BN254.G1Point calldata _signature) external payable;

    function updateSocket(string calldata _socket) external;

    function registeredEpoch(address _account, uint256 _epoch) external view returns (bool);

    /// @notice Register msg.sender for epoch `epochNumber() + 1` with votes from its stake:
    ///         `_signature` = sk * hashToG1(keccak256(signer ‖ uint64 (epochNumber() + 1) ‖ uint256 chainId)).
    function registerNextEpoch(BN254.G1Point calldata _signature) external;

    /// @notice Start the next epoch if `epochBlocks` blocks have passed since the current one began.
    function makeEpoch() external;

    /// @notice Aggregate G1 key of the signers whose rows are set in `_quorumBitmap` (bit i =
    ///         byte[i / 8] & (1 << (i % 8)), length ceil(rows / 8)), the quorum's rows and the rows hit.
    function getAggPkG1(uint256 _epoch, uint256 _quorumId, bytes calldata _quorumBitmap)
        external
        view
        returns (BN254.G1Point memory aggPkG1, uint256 total, uint256 hit);
}
