// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title QuorumMath: stake-proportional quorums of DA rows from an epoch seed
/// @notice Every quorum of an epoch is the same stake-proportional sample of the epoch's registered signers:
///         signer j with v_j of the V votes holds floor(v_j * R / V) or ceil(v_j * R / V) of the R rows. The
///         rounding and the order of the signers' row ranges come from the epoch seed, which is fixed after
///         registration for the epoch closed:
///         1. signers are ordered by keccak256(seed, signer) (ties by address);
///         2. with cumulative votes c_j in that order and u = keccak256(seed, "offset") mod V, signer j holds
///            rows [floor((c_{j-1} * R + u) / V), floor((c_j * R + u) / V)) (systematic rounding: exactly R
///            rows, each signer floor or ceil of its quota).
///         This is the zero-variance limit of 0G's per-vote shuffle (a random permutation of all ballots cut
///         into quorums): a party's rows never exceed the sum of its signers' quotas rounded up, whatever keys,
///         addresses or registration order it picks. `deaios.da.quorums` is the same algorithm in Python.
/// @dev O(n^2) comparisons for n signers (n <= 128) in memory; no storage access.
library QuorumMath {
    /// @notice The order key of `signer` under `seed`.
    function orderKey(bytes32 seed, address signer) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, signer)));
    }

    /// @notice The rounding offset u in [0, total) of an epoch.
    function offset(bytes32 seed, uint256 total) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, "offset"))) % total;
    }

    /// @notice Sort `signers` (and their `votes`) in place by (orderKey, address).
    function sortBySeed(bytes32 seed, address[] memory signers, uint256[] memory votes) internal pure {
        uint256 n = signers.length;
        uint256[] memory keys = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            address a = signers[i];
            uint256 v = votes[i];
            uint256 key = orderKey(seed, a);
            uint256 j = i;
            while (j > 0 && (keys[j - 1] > key || (keys[j - 1] == key && signers[j - 1] > a))) {
                signers[j] = signers[j - 1];
                votes[j] = votes[j - 1];
                keys[j] = keys[j - 1];
                --j;
            }
            signers[j] = a;
            votes[j] = v;
            keys[j] = key;
        }
    }

    /// @notice Row ends (exclusive) of signers with `votes`, in order, for a quorum of `rows` rows and rounding
    ///         offset `u` (< the votes' sum); a signer whose end equals the previous one holds no row.
    function rowEnds(uint256[] memory votes, uint256 rows, uint256 u) internal pure returns (uint256[] memory ends) {
        uint256 n = votes.length;
        uint256 total = 0;
        for (uint256 i = 0; i < n; ++i) {
            total += votes[i];
        }
        ends = new uint256[](n);
        uint256 cum = 0;
        for (uint256 i = 0; i < n; ++i) {
            cum += votes[i];
            ends[i] = (cum * rows + u) / total;
        }
    }
}
