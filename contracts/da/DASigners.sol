// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Blockhash} from "@openzeppelin/contracts/utils/Blockhash.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IDASigners} from "./interfaces/IDASigners.sol";
import {BN254} from "./libraries/BN254.sol";
import {QuorumMath} from "./libraries/QuorumMath.sol";

/// @title DASigners: the DA signer registry, epochs and quorums (0G's `IDASigners` precompile as a contract)
/// @notice Life of a signer:
///         1. `registerSigner` once, with BN254 keys in G1 and G2 and a proof of possession (PoP) of the
///            secret key: a BLS signature over the signer's address and the chain id. Without the PoP,
///            a rogue key `x*G - pk_victim` would let one signer forge "aggregate" signatures.
///            msg.value is added to the signer's stake.
///         2. `registerNextEpoch` during each epoch, with a BLS signature over the next epoch number;
///            votes = min(stake / tokensPerVote, maxVotesPerSigner). Registration for the next epoch closes
///            `epochBlocks / 8` blocks before the epoch may end (`registrationClosesAt`). At most
///            `maxSignersPerEpoch` signers register for an epoch; when it is full, a newcomer with more votes
///            takes the place of the registration with the fewest (ties: the earlier one stays).
///         3. `makeEpoch` (anyone, e.g. DAEntrance on every upload) starts the next epoch once
///            `epochBlocks` blocks have passed. Its seed is the hash of the first block after registration
///            closed, so nobody registering knew it; the seed orders the signers and rounds their rows.
///         4. A signer that signs two different erasure commitments for one (dataRoot, epoch, quorum) loses
///            its whole stake to anyone who shows both signatures (`slashEquivocation`); slashed stake goes to
///            the admin's pool, never back to the signer. Stake can be withdrawn `stakeLockEpochs` epochs after
///            the last epoch the signer registered for (so that it stays slashable while its signatures can
///            still be used on chain).
/// @dev Quorums (see QuorumMath): every quorum of an epoch is the same stake-proportional sample of all its
///      registered signers, so a party's rows follow its stake whatever the keys, addresses or registration
///      order it chooses; the number of quorums follows 0G's rule (ceil(votes / rows), at most `maxQuorums`).
///      Each signer holds one contiguous range of rows ("member"), so the quorum is stored once per epoch as
///      members (address, row end, G1 key) plus the aggregate G1 key of all members. `getAggPkG1` starts from
///      that aggregate and subtracts the members whose rows are clear in the bitmap (EigenDA-style): its cost
///      grows with the non-signers, not with the quorum's 3072 rows. 0G instead shuffles ballots per vote and
///      cuts them into quorums of different signers.
contract DASigners is IDASigners, AccessControl, ReentrancyGuard {
    /// @notice Role allowed to change the parameters and to start an epoch early (`forceMakeEpoch`).
    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");
    /// @notice Most registrations `maxSignersPerEpoch` may allow per epoch (bounds the gas of `makeEpoch`).
    uint256 public constant MAX_SIGNERS_PER_EPOCH = 128;
    /// @notice Registration for the next epoch closes epochBlocks / REGISTRATION_CLOSE_DIVISOR blocks before
    ///         the current epoch may end.
    uint256 public constant REGISTRATION_CLOSE_DIVISOR = 8;
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
        /// @dev position in the epoch's registration list
        uint32 index;
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

    /// @notice Registrations accepted per epoch (<= MAX_SIGNERS_PER_EPOCH).
    uint256 public maxSignersPerEpoch;
    /// @notice Epochs after the last one a signer registered for during which its stake stays locked.
    uint256 public stakeLockEpochs;
    /// @notice Slashed stake not yet withdrawn by the admin.
    uint256 public slashedPool;
    /// @notice The last epoch each signer registered for (0: never).
    mapping(address => uint256) public lastRegisteredEpoch;

    mapping(uint256 => bytes32) private _seeds;
    mapping(uint256 => address[]) private _registered;
    mapping(uint256 => mapping(address => Registration)) private _registrations;
    mapping(uint256 => uint256) private _quorumCount;
    mapping(uint256 => mapping(uint256 => Quorum)) private _quorums;

    event ParamsUpdated(Params params);
    event StakeAdded(address indexed signer, uint256 amount, uint256 stake);
    event StakeWithdrawn(address indexed signer, address indexed to, uint256 amount, uint256 stake);
    /// @notice `signer` registered for `epoch` with `votes` votes.
    event EpochRegistered(address indexed signer, uint256 indexed epoch, uint256 votes);
    /// @notice `signer`'s registration for `epoch` was dropped: a signer with more votes took its place, or it
    ///         was slashed.
    event RegistrationRemoved(address indexed signer, uint256 indexed epoch, uint256 votes);
    /// @notice The seed of `epoch` (signer order and row rounding).
    event EpochSeeded(uint256 indexed epoch, bytes32 seed);
    /// @notice `signer` signed two commitments for (dataRoot, epoch, quorumId): its `amount` of stake was slashed.
    event SignerSlashed(address indexed signer, uint256 amount, bytes32 dataRoot, uint256 epoch, uint256 quorumId,
        address reporter);
    event SlashedWithdrawn(address indexed to, uint256 amount);
    event LimitsUpdated(uint256 maxSignersPerEpoch, uint256 stakeLockEpochs);
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
    /// @notice Registration for `epoch` closed at block `closedAt` (its seed may be known).
    error RegistrationClosed(uint256 epoch, uint256 closedAt);
    /// @notice stake / tokensPerVote is zero.
    error NotEligibleToVote(address signer, uint256 stake, uint256 tokensPerVote);
    /// @notice `epoch` is full and every registration has at least `lowestVotes` votes (a newcomer needs more).
    error EpochFull(uint256 epoch, uint256 lowestVotes);
    /// @notice Stake can be withdrawn from epoch `untilEpoch` on.
    error StakeLocked(address signer, uint256 untilEpoch);
    /// @notice Equivocation evidence must show two different commitments.
    error NotEquivocation();
    /// @notice A signature of the evidence is not the signer's on that commitment.
    error InvalidEvidence(address signer);
    error NothingToSlash(address signer);
    /// @notice A precompile call failed (only out of gas can cause it for points checked on registration).
    error PrecompileFailed();
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
    /// @param maxSignersPerEpoch_ registrations per epoch (1..MAX_SIGNERS_PER_EPOCH)
    /// @param stakeLockEpochs_ epochs a signer's stake stays locked after the last epoch it registered for
    ///        (deploy with the DA window + 1: a signature for an epoch can be used until the epoch expires)
    /// @param admin receives DEFAULT_ADMIN_ROLE and PARAMS_ADMIN_ROLE
    constructor(Params memory params_, uint256 maxSignersPerEpoch_, uint256 stakeLockEpochs_, address admin) {
        if (admin == address(0)) revert ZeroAddress();
        _setParams(params_);
        _setLimits(maxSignersPerEpoch_, stakeLockEpochs_);
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

    /// @notice Change the registrations per epoch and the stake lock (PARAMS_ADMIN_ROLE).
    function setLimits(uint256 maxSignersPerEpoch_, uint256 stakeLockEpochs_) external onlyRole(PARAMS_ADMIN_ROLE) {
        _setLimits(maxSignersPerEpoch_, stakeLockEpochs_);
    }

    function _setLimits(uint256 maxSigners, uint256 lockEpochs) private {
        if (maxSigners == 0 || maxSigners > MAX_SIGNERS_PER_EPOCH || lockEpochs > type(uint64).max) {
            revert InvalidParams();
        }
        maxSignersPerEpoch = maxSigners;
        stakeLockEpochs = lockEpochs;
        emit LimitsUpdated(maxSigners, lockEpochs);
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

    /// @notice Withdraw `amount` of msg.sender's stake to `to`; allowed from `stakeUnlockEpoch(msg.sender)` on.
    function withdrawStake(uint256 amount, address payable to) external nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        uint256 unlock = stakeUnlockEpoch(msg.sender);
        if (_epochNumber < unlock) revert StakeLocked(msg.sender, unlock);
        uint256 stake = stakeOf[msg.sender];
        if (amount > stake) revert InsufficientStake(amount, stake);
        stakeOf[msg.sender] = stake - amount;
        emit StakeWithdrawn(msg.sender, to, amount, stake - amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @notice The first epoch in which `signer` may withdraw stake: `stakeLockEpochs` + 1 epochs after the last
    ///         epoch it registered for (0 if it never registered).
    function stakeUnlockEpoch(address signer) public view returns (uint256) {
        uint256 last = lastRegisteredEpoch[signer];
        return last == 0 ? 0 : last + stakeLockEpochs + 1;
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

    /// @notice The block from which registration for the next epoch is closed: epochBlocks / 8 blocks before
    ///         the current epoch may end. The hash of that block seeds the next epoch.
    function registrationClosesAt() public view returns (uint256) {
        uint256 epochBlocks = _params.epochBlocks;
        return _epochStartBlock + epochBlocks - epochBlocks / REGISTRATION_CLOSE_DIVISOR;
    }

    /// @inheritdoc IDASigners
    /// @dev When the epoch is full, the registration with the fewest votes (the earliest of equals) is dropped
    ///      for this one if it has more votes (`RegistrationRemoved`), else `EpochFull`.
    function registerNextEpoch(BN254.G1Point calldata _signature) external {
        Signer storage s = _signers[msg.sender];
        if (!s.exists) revert SignerNotFound(msg.sender);
        uint256 next = _epochNumber + 1;
        uint256 closes = registrationClosesAt();
        if (block.number >= closes) revert RegistrationClosed(next, closes);
        Registration storage reg = _registrations[next][msg.sender];
        if (reg.votes != 0) revert AlreadyRegistered(msg.sender, next);
        uint256 stake = stakeOf[msg.sender];
        uint256 votes = stake / _params.tokensPerVote;
        if (votes == 0) revert NotEligibleToVote(msg.sender, stake, _params.tokensPerVote);
        if (votes > _params.maxVotesPerSigner) votes = _params.maxVotesPerSigner;
        _requireOnCurve(_signature);
        BN254.G1Point memory h = BN254.hashToG1(epochDigest(msg.sender, next));
        (bool valid, bool callOk) = BN254.verifyBLS(h, _signature, s.pkG1, _toEip197(s.pkG2));
        if (!valid || !callOk) revert InvalidEpochSignature(msg.sender, next);

        address[] storage list = _registered[next];
        if (list.length >= maxSignersPerEpoch) {
            (uint256 lowest, uint256 at) = _lowest(next, list);
            if (votes <= lowest) revert EpochFull(next, lowest);
            _unregister(next, list, at);
        }
        reg.votes = uint64(votes);
        reg.index = uint32(list.length);
        list.push(msg.sender);
        lastRegisteredEpoch[msg.sender] = next;
        emit EpochRegistered(msg.sender, next, votes);
    }

    /// @dev The fewest votes among `epoch`'s registrations and the first position holding them.
    function _lowest(uint256 epoch, address[] storage list) private view returns (uint256 lowest, uint256 at) {
        lowest = type(uint256).max;
        for (uint256 i = 0; i < list.length; ++i) {
            uint256 v = _registrations[epoch][list[i]].votes;
            if (v < lowest) (lowest, at) = (v, i);
        }
    }

    /// @dev Drop the registration at position `at` of `epoch` (the last one takes its place).
    function _unregister(uint256 epoch, address[] storage list, uint256 at) private {
        address signer = list[at];
        uint256 votes = _registrations[epoch][signer].votes;
        address moved = list[list.length - 1];
        list[at] = moved;
        _registrations[epoch][moved].index = uint32(at);
        list.pop();
        delete _registrations[epoch][signer];
        emit RegistrationRemoved(signer, epoch, votes);
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
        bytes32 seed = _seed(next);
        _seeds[next] = seed;
        emit EpochSeeded(next, seed);
        uint256 count = _formQuorums(next, seed);
        _epochNumber = next;
        _epochStartBlock = block.number;
        emit NewEpoch(next, block.number, count);
    }

    /// @dev The hash of the block at which registration closed, when it is in the past and still available
    ///      (EIP-2935: 8191 blocks), else (a forced epoch, or one made very late) of the previous block.
    function _seed(uint256 epoch) private view returns (bytes32) {
        uint256 closed = registrationClosesAt();
        bytes32 h = closed < block.number ? Blockhash.blockHash(closed) : bytes32(0);
        if (h == bytes32(0)) h = blockhash(block.number - 1);
        return keccak256(abi.encode(h, epoch, address(this)));
    }

    /// @notice The seed of `epoch` (zero before it is made).
    function epochSeed(uint256 epoch) external view returns (bytes32) {
        return _seeds[epoch];
    }

    /// @dev The quorum of `epoch` from its registrations (see QuorumMath), stored once; returns the number of
    ///      quorums: ceil(votes / rows), at least 1 and at most maxQuorums.
    function _formQuorums(uint256 epoch, bytes32 seed) private returns (uint256 count) {
        address[] storage regs = _registered[epoch];
        uint256 n = regs.length;
        if (n == 0) return 0;
        address[] memory addrs = new address[](n);
        uint256[] memory votes = new uint256[](n);
        uint256 total = 0;
        for (uint256 i = 0; i < n; ++i) {
            addrs[i] = regs[i];
            votes[i] = _registrations[epoch][addrs[i]].votes;
            total += votes[i];
        }
        QuorumMath.sortBySeed(seed, addrs, votes);
        uint256 rows = _params.encodedSlices;
        uint256[] memory ends = QuorumMath.rowEnds(votes, rows, QuorumMath.offset(seed, total));
        uint256 m = 0;
        uint256 prev = 0;
        for (uint256 i = 0; i < n; ++i) {
            if (ends[i] == prev) continue; // no row: not a member
            addrs[m] = addrs[i];
            ends[m++] = prev = ends[i];
        }
        assembly ("memory-safe") {
            mstore(addrs, m)
            mstore(ends, m)
        }
        _storeQuorum(_quorums[epoch][0], addrs, ends);
        count = (total + rows - 1) / rows;
        if (count > _params.maxQuorums) count = _params.maxQuorums;
        _quorumCount[epoch] = count;
    }

    function _storeQuorum(Quorum storage q, address[] memory members, uint256[] memory ends) private {
        uint256 n = members.length;
        BN254.G1Point memory apk = BN254.G1Point(0, 0);
        uint256 word = n; // entry 0: the member count
        for (uint256 i = 0; i < n; ++i) {
            BN254.G1Point memory pk = _signers[members[i]].pkG1;
            q.members.push(members[i]);
            q.pks.push(pk);
            bool ok;
            (apk, ok) = BN254.add(apk, pk);
            if (!ok) revert PrecompileFailed();
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

    /*=== slashing ===*/

    /// @notice Slash `signer`'s whole stake: it signed two different erasure commitments for one (dataRoot,
    ///         epoch, quorumId), the digest DAEntrance checks (`keccak256(dataRoot ‖ epoch ‖ quorumId ‖ C.x ‖
    ///         C.y)` hashed to G1). Anyone may report; the stake goes to `slashedPool` (the admin's), and the
    ///         signer's registration for the next epoch is dropped.
    function slashEquivocation(
        address signer,
        bytes32 dataRoot,
        uint256 epoch,
        uint256 quorumId,
        BN254.G1Point calldata commitment1,
        BN254.G1Point calldata signature1,
        BN254.G1Point calldata commitment2,
        BN254.G1Point calldata signature2
    ) external nonReentrant {
        Signer storage s = _signers[signer];
        if (!s.exists) revert SignerNotFound(signer);
        if (commitment1.X == commitment2.X && commitment1.Y == commitment2.Y) revert NotEquivocation();
        _checkCommitSignature(s, signer, dataRoot, epoch, quorumId, commitment1, signature1);
        _checkCommitSignature(s, signer, dataRoot, epoch, quorumId, commitment2, signature2);
        uint256 amount = stakeOf[signer];
        if (amount == 0) revert NothingToSlash(signer);
        stakeOf[signer] = 0;
        slashedPool += amount;
        uint256 next = _epochNumber + 1;
        Registration storage reg = _registrations[next][signer];
        if (reg.votes != 0) _unregister(next, _registered[next], reg.index);
        emit SignerSlashed(signer, amount, dataRoot, epoch, quorumId, msg.sender);
    }

    /// @notice Send `amount` of slashed stake to `to` (DEFAULT_ADMIN_ROLE).
    function withdrawSlashed(address payable to, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        uint256 pool = slashedPool;
        if (amount > pool) revert InsufficientStake(amount, pool);
        slashedPool = pool - amount;
        emit SlashedWithdrawn(to, amount);
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    function _checkCommitSignature(
        Signer storage s,
        address signer,
        bytes32 dataRoot,
        uint256 epoch,
        uint256 quorumId,
        BN254.G1Point calldata commitment,
        BN254.G1Point calldata signature
    ) private view {
        _requireOnCurve(commitment);
        _requireOnCurve(signature);
        BN254.G1Point memory h = BN254.hashToG1(
            keccak256(abi.encodePacked(dataRoot, epoch, quorumId, commitment.X, commitment.Y))
        );
        (bool valid, bool callOk) = BN254.verifyBLS(h, signature, s.pkG1, _toEip197(s.pkG2));
        if (!valid || !callOk) revert InvalidEvidence(signer);
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
                bool ok;
                (aggPkG1, ok) = BN254.add(aggPkG1, BN254.negate(q.pks[i]));
                if (!ok) revert PrecompileFailed();
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

    /// @dev Every quorum of an epoch has the same members (stored under id 0).
    function _quorum(uint256 epoch, uint256 quorumId) private view returns (Quorum storage q) {
        if (epoch > _epochNumber) revert UnknownEpoch(epoch, _epochNumber);
        if (quorumId >= _quorumCount[epoch]) revert UnknownQuorum(epoch, quorumId);
        q = _quorums[epoch][0];
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
