// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {BN254} from "../libraries/BN254.sol";

/// @title IDAEntrance: blob uploads and verified erasure commitments (0G's `IDAEntrance` ABI)
/// @notice A client pays `blobPrice` per data root with `submitOriginalData`; the `DataUpload` event names
///         the epoch and quorum whose signers must store the blob's rows. Once signers holding at least
///         2/3 of the quorum's rows have signed (dataRoot, epoch, quorumId, erasureCommitment), anyone
///         submits the aggregate signature with `submitVerifiedCommitRoots` and the commitment is recorded.
interface IDAEntrance {
    struct CommitRootSubmission {
        bytes32 dataRoot;
        uint256 epoch;
        uint256 quorumId;
        BN254.G1Point erasureCommitment;
        /// @dev bit i = byte[i / 8] & (1 << (i % 8)) set iff row i's signer signed; length ceil(rows / 8)
        bytes quorumBitmap;
        /// @dev sum of the signing signers' G2 keys (each once), EIP-197 order
        BN254.G2Point aggPkG2;
        /// @dev sum of the signing signers' signatures over hashToG1(keccak256(dataRoot ‖ epoch ‖
        ///      quorumId ‖ erasureCommitment.X ‖ erasureCommitment.Y))
        BN254.G1Point signature;
    }

    event DataUpload(address sender, bytes32 dataRoot, uint256 epoch, uint256 quorumId, uint256 blobPrice);
    event ErasureCommitmentVerified(bytes32 dataRoot, uint256 epoch, uint256 quorumId);

    /// @notice Pay for and announce blobs; msg.value must be `blobPrice() * _dataRoots.length`.
    function submitOriginalData(bytes32[] calldata _dataRoots) external payable;

    /// @notice Record erasure commitments signed by at least 2/3 of their quorum's rows. Submissions
    ///         whose commitment is already recorded are skipped; any invalid one reverts the call.
    function submitVerifiedCommitRoots(CommitRootSubmission[] calldata _submissions) external;

    /// @notice The verified commitment of a blob (reverts `CommitmentNotFound` if none).
    function verifiedErasureCommitment(bytes32 _dataRoot, uint256 _epoch, uint256 _quorumId)
        external
        view
        returns (BN254.G1Point memory);

    function commitmentExists(bytes32 _dataRoot, uint256 _epoch, uint256 _quorumId) external view returns (bool);

    /// @notice Advance the signer registry's epoch if due and cache it.
    function sync() external;

    function currentEpoch() external view returns (uint256);

    function blobPrice() external view returns (uint256);

    /// @notice Epochs after its own for which a blob must still be served (see `isEpochExpired`).
    function epochWindowSize() external view returns (uint256);
}
