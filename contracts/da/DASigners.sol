// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IDASigners} from "./interfaces/IDASigners.sol";
import {BN254} from "./libraries/BN254.sol";

/// @title DASigners: the DA signer registry, epochs and quorums (0G's `IDASigners` precompile as a contract)
/// @notice Life of a signer:
///         1. `registerSigner` once, with BN254 keys in G1 and G2 and a proof of possession (PoP) of the
///            secret key: a BLS signature over the signer's address and the chain id. Without the PoP,
///            a rogue key `x*G - pk_victim` would let one signer forge "aggregate" signatures.
///            msg.value is added to the signer's stake.
///         2. `registerNextEpoch` during each epoch, with a BLS signature over the next epoch number;
///            votes = min(stake / tokensPerVote, maxVotesPerSigner).
///         3. `makeEpoch` (anyone, e.g. DAEntrance on every upload) starts the next epoch once
///            `epochBlocks` blocks have passed, and turns its registrations into quorums.
/// @dev Quorums. Registrations are ordered by keccak256 of their (unique, unpredictable) epoch
///      signature; each signer contributes `votes` consecutive ballots. With V ballots and R =
///      `encodedSlices` rows per quorum: if V >= R, quorum k holds ballots [k*R, (k+1)*R) and, if
///      V mod R != 0, one more quorum holds the last R ballots (at most `maxQuorums` in all, as 0G);
///      if V < R, one quorum in which signer j (cumulative votes c_j) holds rows
///      [floor(c_{j-1} * R / V), floor(c_j * R / V)). Either way every signer of a quorum holds one
///      contiguous range of rows ("member"), so a quorum is stored as members (address, row end, G1 key)
///      plus the aggregate G1 key of all members. `getAggPkG1` starts from that aggregate and subtracts
///      the members whose rows are clear in the bitmap (EigenDA-style): its cost grows with the
///      non-signers, not with the quorum's 3072 rows. 0G interleaves rows per ballot instead.
contract DASigners is IDASigners, AccessControl, ReentrancyGuard {
    /// @notice Role allowed to change the parameters and to start an epoch early (`forceMakeEpoch`).
    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");
    /// @notice Registrations accepted per epoch (bounds the gas of `makeEpoch`).
    uint256 public constant MAX_SIGNERS_PER_EPOCH = 128;
    /// @notice Upper bound of `encodedSlices` (row ends are stored as uint16).
    uint256 public constant MAX_ROWS = 65_535;
    /// @dev Words of 16-bit entries for a member count and MAX_SIGNERS_PER_EPOCH row ends.
    uint256 private constant PACKED_WORDS = (MAX_SIGNERS_PER_EPOCH + 1 + 15) / 16;
    /// @dev Domain tag of the proof-of-possession message (0G's).
    bytes private constant POP_DOMAIN = "0G_BN254_Pubkey_Registration";

    struct Signer {
        string socket;
        BN254.G1Point pkG1;
        /// @dev as registered: (real, imaginary) per coordinate
        BN254.G2Point pkG2;
        bool exists;
    }

    struct Registration {
        uint64 votes;
        /// @dev high 192 bits of keccak256(signature): the signer's ballot order in the epoch
        uint192 ballot;
    }

    /// @dev One quorum: members in row order; member i holds rows [end(i-1), end(i)) (end(-1) = 0), so
    ///      the quorum's row count is the last end. `packed` holds 16-bit entries, 16 per word: entry 0
    ///      is the member count, entry i + 1 the end of member i (one word read for up to 15 members).
    struct Quorum {
        uint256 apkX;
        uint256 apkY;
        uint256[PACKED_WORDS] packed;
        address[] members;
        BN254.G1Point[] pks;
    }

    Params private _params;
    uint256 private _epochNumber;
    uint256 private _epochStartBlock;

    mapping(address => Signer) private _signers;
    /// @dev keccak256(pkG1) => signer (a key may belong to one signer only)
    mapping(bytes32 => address) private _keyOwner;
    /// @notice Stake of each signer in wei (deposited with `registerSigner` / `addStake`).
    mapping(address => uint256) public stakeOf;

    mapping(uint256 => address[]) private _registered;
    mapping(uint256 => mapping(address => Registration)) private _registrations;
    mapping(uint256 => uint256) private _quorumCount;
    mapping(uint256 => mapping(uint256 => Quorum)) private _quorums;

    event ParamsUpdated(Params params);
    event StakeAdded(address indexed signer, uint256 amount, uint256 stake);
    event StakeWithdrawn(address indexed signer, address indexed to, uint256 amount, uint256 stake);
    /// @notice `signer` registered for `epoch` with `votes` votes.
    event EpochRegistered(address indexed signer, uint256 indexed epoch, uint256 votes);
    /// @notice Epoch `epoch` started at `startBlock` with `quorums` quorums.
    event NewEpoch(uint256 indexed epoch, uint256 startBlock, uint256 quorums);

    error ZeroAddress();
    error InvalidParams();
    /// @notice msg.sender must register itself.
    error SenderNotSigner(address sender, address signer);
    error SignerExists(address signer);
    error SignerNotFound(address account);
    /// @notice The G1 key is already registered by `owner`.
    error PubkeyInUse(address owner);
    /// @notice A G1 point is not on the curve (or is the point at infinity, or has a coordinate >= p).
    error PointNotOnCurve(uint256 x, uint256 y);
    /// @notice A G2 point is not on the twist, not in the subgroup, or is the point at infinity.
    error InvalidG2Point();
    /// @notice The proof of possession does not verify against the keys.
    error InvalidProofOfPossession(address signer);
    /// @notice The epoch registration signature does not verify against the signer's keys.
    error InvalidEpochSignature(address signer, uint256 epoch);
    error AlreadyRegistered(address signer, uint256 epoch);
    /// @notice stake / tokensPerVote is zero.
    error NotEligibleToVote(address signer, uint256 stake, uint256 tokensPerVote);
    error EpochFull(uint256 epoch);
    /// @notice Stake can be withdrawn only while not registered for the current or the next epoch.
    error StakeLocked(address signer, uint256 epoch);
    error InsufficientStake(uint256 requested, uint256 stake);
    error TransferFailed();
    /// @notice `epoch` is after the current epoch.
    error UnknownEpoch(uint256 epoch, uint256 currentEpoch);
    /// @notice `epoch` has no quorum `quorumId`.
    error UnknownQuorum(uint256 epoch, uint256 quorumId);
    error RowOutOfRange(uint256 row, uint256 rows);
    /// @notice The bitmap must have ceil(rows / 8) bytes.
    error BadBitmapLength(uint256 expected, uint256 actual);
    /// @notice The bits after the last row must be zero.
    error BitmapPaddingNotZero();
    /// @notice A member's rows must be all set or all clear (a signer signs all its rows or none).
    error InconsistentBitmap(uint256 member, uint256 rowStart, uint256 rowEnd);

    /// @param params_ initial parameters (see `Params`)
    /// @param admin receives DEFAULT_ADMIN_ROLE and PARAMS_ADMIN_ROLE
    constructor(Params memory params_, address admin) {
        if (admin == address(0)) revert ZeroAddress();
        _setParams(params_);
        _epochStartBlock = block.number;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMS_ADMIN_ROLE, admin);
    }

    /*=== parameters ===*/

    /// @inheritdoc IDASigners
    function params() external view returns (Params memory) {
        return _params;
    }

    /// @notice Change the parameters (PARAMS_ADMIN_ROLE); quorums already made keep their shape.
    function setParams(Params calldata params_) external onlyRole(PARAMS_ADMIN_ROLE) {
        _setParams(params_);
    }

    function _setParams(Params memory p) private {
        if (
            p.tokensPerVote == 0 || p.maxVotesPerSigner == 0 || p.maxVotesPerSigner > type(uint64).max
                || p.maxQuorums == 0 || p.epochBlocks == 0 || p.encodedSlices == 0 || p.encodedSlices > MAX_ROWS
        ) revert InvalidParams();
        _params = p;
        emit ParamsUpdated(p);
    }

    /*=== signers ===*/

    /// @inheritdoc IDASigners
    function registerSigner(SignerDetail calldata _signer, BN254.G1Point calldata _signature)
        external
        payable
    {
        address account = _signer.signer;
        if (msg.sender != account) revert SenderNotSigner(msg.sender, account);
        if (_signers[account].exists) revert SignerExists(account);
        BN254.G1Point memory pk1 = _signer.pkG1;
        _requireOnCurve(pk1);
        _requireOnCurve(_signature);
        bytes32 keyHash = keccak256(abi.encode(pk1.X, pk1.Y));
        address owner = _keyOwner[keyHash];
        if (owner != address(0)) revert PubkeyInUse(owner);
        BN254.G2Point memory pk2 = _signer.pkG2;
        BN254.G1Point memory h = BN254.hashToG1(popDigest(account));
        (bool valid, bool callOk) = BN254.verifyBLS(h, _signature, pk1, _toEip197(pk2));
        if (!callOk || _isZero(pk2)) revert InvalidG2Point();
        if (!valid) revert InvalidProofOfPossession(account);

        Signer storage s = _signers[account];
        s.socket = _signer.socket;
        s.pkG1 = pk1;
        s.pkG2 = pk2;
        s.exists = true;
        _keyOwner[keyHash] = account;
        emit NewSigner(account, pk1, pk2);
        emit SocketUpdated(account, _signer.socket);
        if (msg.value > 0) _addStake(account);
    }

    /// @inheritdoc IDASigners
    function updateSocket(string calldata _socket) external {
        Signer storage s = _signers[msg.sender];
        if (!s.exists) revert SignerNotFound(msg.sender);
        s.socket = _socket;
        emit SocketUpdated(msg.sender, _socket);
    }

    /// @notice Add msg.value to msg.sender's stake (a registered signer).
    function addStake() external payable {
        if (!_signers[msg.sender].exists) revert SignerNotFound(msg.sender);
        _addStake(msg.sender);
    }

    /// @notice Withdraw `amount` of msg.sender's stake to `to`; allowed while msg.sender is registered for
    ///         neither the current nor the next epoch.
    function withdrawStake(uint256 amount, address payable to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        uint256 epoch = _epochNumber;
        if (_registrations[epoch][msg.sender].votes != 0) revert StakeLocked(msg.sender, epoch);
        if (_registrations[epoch + 1][msg.sender].votes != 0) revert StakeLocked(msg.sender, epoch + 1);
        uint256 stake = stakeOf[msg.sender];
        if (amount > stake) revert InsufficientStake(amount, stake);
        stakeOf[msg.sender] = stake - amount;
        emit StakeWithdrawn(msg.sender, to, amount, stake - amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    function _addStake(address account) private {
        uint256 stake = stakeOf[account] + msg.value;
        stakeOf[account] = stake;
        emit StakeAdded(account, msg.value, stake);
    }

    /// @inheritdoc IDASigners
    function isSigner(address _account) external view returns (bool) {
        return _signers[_account].exists;
    }

    /// @inheritdoc IDASigners
    function getSigner(address[] calldata _account) external view returns (SignerDetail[] memory details) {
        details = new SignerDetail[](_account.length);
        for (uint256 i = 0; i < _account.length; ++i) {
            Signer storage s = _signers[_account[i]];
            if (!s.exists) revert SignerNotFound(_account[i]);
            details[i] = SignerDetail(_account[i], s.socket, s.pkG1, s.pkG2);
        }
    }

    /// @notice The digest whose hash-to-G1 a signer signs as proof of possession (0G's message).
    function popDigest(address signer) public view returns (bytes32) {
        return keccak256(abi.encodePacked(signer, block.chainid, POP_DOMAIN));
    }

    /// @notice The digest whose hash-to-G1 a signer signs to register for `epoch` (0G's message).
    function epochDigest(address signer, uint256 epoch) public view returns (bytes32) {
        return keccak256(abi.encodePacked(signer, uint64(epoch), block.chainid));
    }

    /*=== epochs ===*/

    /// @inheritdoc IDASigners
    function epochNumber() external view returns (uint256) {
        return _epochNumber;
    }

    /// @notice The block at which the current epoch started.
    function epochStartBlock() external view returns (uint256) {
        return _epochStartBlock;
    }

    /// @inheritdoc IDASigners
    function registerNextEpoch(BN254.G1Point calldata _signature) external {
        Signer storage s = _signers[msg.sender];
        if (!s.exists) revert SignerNotFound(msg.sender);
        uint256 next = _epochNumber + 1;
        Registration storage reg = _registrations[next][msg.sender];
        if (reg.votes != 0) revert AlreadyRegistered(msg.sender, next);
        uint256 stake = stakeOf[msg.sender];
        uint256 votes = stake / _params.tokensPerVote;
        if (votes == 0) revert NotEligibleToVote(msg.sender, stake, _params.tokensPerVote);
        if (votes > _params.maxVotesPerSigner) votes = _params.maxVotesPerSigner;
        if (_registered[next].length >= MAX_SIGNERS_PER_EPOCH) revert EpochFull(next);
        _requireOnCurve(_signature);
        BN254.G1Point memory h = BN254.hashToG1(epochDigest(msg.sender, next));
        (bool valid, bool callOk) = BN254.verifyBLS(h, _signature, s.pkG1, _toEip197(s.pkG2));
        if (!valid || !callOk) revert InvalidEpochSignature(msg.sender, next);

        reg.votes = uint64(votes);
        reg.ballot = uint192(uint256(keccak256(abi.encode(_signature.X, _signature.Y))) >> 64);
        _registered[next].push(msg.sender);
        emit EpochRegistered(msg.sender, next, votes);
    }

    /// @inheritdoc IDASigners
    function registeredEpoch(address _account, uint256 _epoch) external view returns (bool) {
        return _registrations[_epoch][_account].votes != 0;
    }

    /// @notice Signers registered for `epoch` (registration order) and their votes.
    function registrations(uint256 epoch) external view returns (address[] memory signers, uint256[] memory votes) {
        signers = _registered[epoch];
        votes = new uint256[](signers.length);
        for (uint256 i = 0; i < signers.length; ++i) {
            votes[i] = _registrations[epoch][signers[i]].votes;
        }
    }

    /// @inheritdoc IDASigners
    function makeEpoch() external {
        if (block.number >= _epochStartBlock + _params.epochBlocks) _makeEpoch();
    }

    /// @notice Start the next epoch now (PARAMS_ADMIN_ROLE), e.g. on a local network after the signers
    ///         registered.
    function forceMakeEpoch() external onlyRole(PARAMS_ADMIN_ROLE) {
        _makeEpoch();
    }

    function _makeEpoch() private {
        uint256 next = _epochNumber + 1;
        uint256 count = _formQuorums(next);
        _epochNumber = next;
        _epochStartBlock = block.number;
        emit NewEpoch(next, block.number, count);
    }

    /// @dev Build the quorums of `epoch` from its registrations (see the contract's notes).
    function _formQuorums(uint256 epoch) private returns (uint256 count) {
        (address[] memory addrs, uint256[] memory cum) = _ballots(epoch);
        uint256 n = addrs.length;
        if (n == 0) return 0;
        uint256 total = cum[n - 1];
        uint256 rows = _params.encodedSlices;
        mapping(uint256 => Quorum) storage quorums = _quorums[epoch];
        if (total < rows) {
            uint256[] memory ends = new uint256[](n);
            for (uint256 j = 0; j < n; ++j) {
                ends[j] = cum[j] * rows / total;
            }
            _storeQuorum(quorums[count++], addrs, ends);
        } else {
            uint256 maxQuorums = _params.maxQuorums;
            uint256 full = total / rows;
            uint256 nFull = full < maxQuorums ? full : maxQuorums;
            for (uint256 k = 0; k < nFull; ++k) {
                _buildQuorum(quorums[count++], addrs, cum, k * rows, rows);
            }
            if (total % rows != 0 && nFull < maxQuorums) {
                _buildQuorum(quorums[count++], addrs, cum, total - rows, rows);
            }
        }
        _quorumCount[epoch] = count;
    }

    /// @dev The registrations of `epoch` sorted by (ballot, address), and their cumulative votes.
    function _ballots(uint256 epoch) private view returns (address[] memory addrs, uint256[] memory cum) {
        address[] storage regs = _registered[epoch];
        uint256 n = regs.length;
        addrs = new address[](n);
        cum = new uint256[](n);
        uint256[] memory keys = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            address a = regs[i];
            Registration storage r = _registrations[epoch][a];
            // insertion sort by (ballot, address)
            uint256 key = r.ballot;
            uint256 j = i;
            while (j > 0 && (keys[j - 1] > key || (keys[j - 1] == key && addrs[j - 1] > a))) {
                addrs[j] = addrs[j - 1];
                keys[j] = keys[j - 1];
                cum[j] = cum[j - 1];
                --j;
            }
            addrs[j] = a;
            keys[j] = key;
            cum[j] = r.votes;
        }
        for (uint256 i = 1; i < n; ++i) {
            cum[i] += cum[i - 1];
        }
    }

    /// @dev A quorum of the ballots [start, start + rows); cum[j] = cumulative votes of signers 0..j.
    function _buildQuorum(Quorum storage q, address[] memory addrs, uint256[] memory cum, uint256 start, uint256 rows)
        private
    {
        uint256 end = start + rows;
        address[] memory members = new address[](addrs.length);
        uint256[] memory ends = new uint256[](addrs.length);
        uint256 m = 0;
        for (uint256 j = 0; j < addrs.length; ++j) {
            if (j > 0 && cum[j - 1] >= end) break;
            uint256 to = cum[j];
            if (to > start) {
                members[m] = addrs[j];
                ends[m++] = (to < end ? to : end) - start;
            }
        }
        assembly ("memory-safe") {
            mstore(members, m)
            mstore(ends, m)
        }
        _storeQuorum(q, members, ends);
    }

    function _storeQuorum(Quorum storage q, address[] memory members, uint256[] memory ends) private {
        uint256 n = members.length;
        BN254.G1Point memory apk = BN254.G1Point(0, 0);
        uint256 word = n; // entry 0: the member count
        for (uint256 i = 0; i < n; ++i) {
            BN254.G1Point memory pk = _signers[members[i]].pkG1;
            q.members.push(members[i]);
            q.pks.push(pk);
            (apk,) = BN254.add(apk, pk);
            uint256 entry = i + 1;
            word |= ends[i] << ((entry & 15) * 16);
            if (entry & 15 == 15 || i == n - 1) {
                q.packed[entry >> 4] = word;
                word = 0;
            }
        }
        q.apkX = apk.X;
        q.apkY = apk.Y;
    }

    /*=== quorums ===*/

    /// @inheritdoc IDASigners
    function quorumCount(uint256 _epoch) external view returns (uint256) {
        return _quorumCount[_epoch];
    }

    /// @notice A quorum's members in row order, the end (exclusive) of each member's rows, and the
    ///         aggregate G1 key of all members. Member i holds rows [rowEnds[i-1], rowEnds[i]).
    function getQuorumMembers(uint256 _epoch, uint256 _quorumId)
        external
        view
        returns (address[] memory members, uint256[] memory rowEnds, BN254.G1Point memory aggPkG1)
    {
        Quorum storage q = _quorum(_epoch, _quorumId);
        members = q.members;
        rowEnds = new uint256[](members.length);
        for (uint256 i = 0; i < members.length; ++i) {
            rowEnds[i] = _end(q, i);
        }
        aggPkG1 = BN254.G1Point(q.apkX, q.apkY);
    }

    /// @notice Rows (slices) of a quorum.
    function quorumRows(uint256 _epoch, uint256 _quorumId) external view returns (uint256) {
        Quorum storage q = _quorum(_epoch, _quorumId);
        return _end(q, q.members.length - 1);
    }

    /// @inheritdoc IDASigners
    function getQuorum(uint256 _epoch, uint256 _quorumId) external view returns (address[] memory rows) {
        Quorum storage q = _quorum(_epoch, _quorumId);
        uint256 n = q.members.length;
        rows = new address[](_end(q, n - 1));
        uint256 row = 0;
        for (uint256 i = 0; i < n; ++i) {
            address member = q.members[i];
            for (uint256 end = _end(q, i); row < end; ++row) {
                rows[row] = member;
            }
        }
    }

    /// @inheritdoc IDASigners
    function getQuorumRow(uint256 _epoch, uint256 _quorumId, uint32 _rowIndex) external view returns (address) {
        Quorum storage q = _quorum(_epoch, _quorumId);
        uint256 n = q.members.length;
        uint256 rows = _end(q, n - 1);
        if (_rowIndex >= rows) revert RowOutOfRange(_rowIndex, rows);
        // the first member whose end is above the row
        uint256 lo = 0;
        uint256 hi = n - 1;
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            if (_end(q, mid) > _rowIndex) hi = mid;
            else lo = mid + 1;
        }
        return q.members[lo];
    }

    /// @inheritdoc IDASigners
    /// @dev Starts from the quorum's aggregate key and subtracts every member whose rows are all clear;
    ///      a member with some rows set and some clear reverts `InconsistentBitmap`. Reads 4 storage
    ///      words (epoch, aggregate key, packed row ends) for up to 15 members, plus 2 per non-signer.
    function getAggPkG1(uint256 _epoch, uint256 _quorumId, bytes calldata _quorumBitmap)
        external
        view
        returns (BN254.G1Point memory aggPkG1, uint256 total, uint256 hit)
    {
        Quorum storage q = _quorum(_epoch, _quorumId);
        uint256 packed = q.packed[0];
        uint256 n = packed & 0xffff;
        total = (n < 16 ? packed : q.packed[n >> 4]) >> ((n & 15) * 16) & 0xffff;
        uint256 len = _quorumBitmap.length;
        if (len != (total + 7) / 8) revert BadBitmapLength((total + 7) / 8, len);
        if (total & 7 != 0 && uint8(_quorumBitmap[len - 1]) >> (total & 7) != 0) revert BitmapPaddingNotZero();

        aggPkG1 = BN254.G1Point(q.apkX, q.apkY);
        uint256 start = 0;
        uint256 wordIndex = type(uint256).max; // the bitmap word (256 rows) in `word`, byte-reversed
        uint256 word = 0;
        for (uint256 i = 0; i < n; ++i) {
            uint256 end;
            unchecked {
                uint256 entry = i + 1;
                if (entry & 15 == 0) packed = q.packed[entry >> 4];
                end = (packed >> ((entry & 15) * 16)) & 0xffff;
            }
            uint256 state;
            (state, wordIndex, word) = _scanRows(_quorumBitmap, start, end, wordIndex, word);
            if (state == ALL_SET) {
                hit += end - start;
            } else if (state == ALL_CLEAR) {
                (aggPkG1,) = BN254.add(aggPkG1, BN254.negate(q.pks[i]));
            } else {
                revert InconsistentBitmap(i, start, end);
            }
            start = end;
        }
    }

    uint256 private constant ALL_CLEAR = 0;
    uint256 private constant ALL_SET = 1;
    uint256 private constant MIXED = 2;

    /// @dev Whether rows [start, end) are all set, all clear or mixed; (wordIndex, word) caches the last
    ///      bitmap word loaded (rows are scanned in increasing order).
    function _scanRows(bytes calldata bitmap, uint256 start, uint256 end, uint256 wordIndex, uint256 word)
        private
        pure
        returns (uint256 state, uint256, uint256)
    {
        bool anySet = false;
        bool anyClear = false;
        unchecked {
            for (uint256 w = start >> 8; (w << 8) < end; ++w) {
                if (w != wordIndex) {
                    wordIndex = w;
                    word = _loadWord(bitmap, w);
                }
                uint256 base = w << 8;
                uint256 lo = start > base ? start - base : 0;
                uint256 width = (end < base + 256 ? end - base : 256) - lo;
                uint256 mask = width == 256 ? type(uint256).max : ((uint256(1) << width) - 1) << lo;
                uint256 bits = word & mask;
                if (bits != 0) anySet = true;
                if (bits != mask) anyClear = true;
            }
        }
        state = anySet ? (anyClear ? MIXED : ALL_SET) : ALL_CLEAR;
        return (state, wordIndex, word);
    }

    /// @dev Bitmap word w (rows 256w .. 256w + 255) with row 256w + j at bit j: the calldata word
    ///      byte-reversed (row i is bit i mod 8 of byte i / 8), bytes past the bitmap cleared.
    function _loadWord(bytes calldata bitmap, uint256 w) private pure returns (uint256 v) {
        unchecked {
            uint256 offset = w * 32;
            assembly ("memory-safe") {
                v := calldataload(add(bitmap.offset, offset))
            }
            uint256 avail = bitmap.length - offset;
            if (avail < 32) v &= ~(type(uint256).max >> (avail * 8));
            v = ((v & 0xFF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00) >> 8)
                | ((v & 0x00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF00FF) << 8);
            v = ((v & 0xFFFF0000FFFF0000FFFF0000FFFF0000FFFF0000FFFF0000FFFF0000FFFF0000) >> 16)
                | ((v & 0x0000FFFF0000FFFF0000FFFF0000FFFF0000FFFF0000FFFF0000FFFF0000FFFF) << 16);
            v = ((v & 0xFFFFFFFF00000000FFFFFFFF00000000FFFFFFFF00000000FFFFFFFF00000000) >> 32)
                | ((v & 0x00000000FFFFFFFF00000000FFFFFFFF00000000FFFFFFFF00000000FFFFFFFF) << 32);
            v = ((v & 0xFFFFFFFFFFFFFFFF0000000000000000FFFFFFFFFFFFFFFF0000000000000000) >> 64)
                | ((v & 0x0000000000000000FFFFFFFFFFFFFFFF0000000000000000FFFFFFFFFFFFFFFF) << 64);
            v = (v >> 128) | (v << 128);
        }
    }

    /// @dev End (exclusive) of member i's rows.
    function _end(Quorum storage q, uint256 i) private view returns (uint256) {
        uint256 entry = i + 1;
        return (q.packed[entry >> 4] >> ((entry & 15) * 16)) & 0xffff;
    }

    function _quorum(uint256 epoch, uint256 quorumId) private view returns (Quorum storage q) {
        if (epoch > _epochNumber) revert UnknownEpoch(epoch, _epochNumber);
        q = _quorums[epoch][quorumId];
        if (q.packed[0] == 0) revert UnknownQuorum(epoch, quorumId);
    }

    /*=== helpers ===*/

    function _requireOnCurve(BN254.G1Point memory p) private pure {
        if (!BN254.isOnCurve(p)) revert PointNotOnCurve(p.X, p.Y);
    }

    /// @dev 0G's signer encoding (real, imaginary) to EIP-197 (imaginary, real).
    function _toEip197(BN254.G2Point memory p) private pure returns (BN254.G2Point memory) {
        return BN254.G2Point([p.X[1], p.X[0]], [p.Y[1], p.Y[0]]);
    }

    function _isZero(BN254.G2Point memory p) private pure returns (bool) {
        return p.X[0] == 0 && p.X[1] == 0 && p.Y[0] == 0 && p.Y[1] == 0;
    }
}
