// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ERC2981} from "@openzeppelin/contracts/token/common/ERC2981.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

import {IERC7857, IERC7857Cloneable, IERC7857Authorize, IntelligentData} from "./interfaces/IERC7857.sol";
import {IERC7857SaleSupport} from "./interfaces/IERC7857SaleSupport.sol";
import {
    IERC7857DataVerifier,
    TransferValidityProof,
    TransferValidityProofOutput
} from "./interfaces/IERC7857DataVerifier.sol";

/// @title AgentNFT: an ERC-7857 intelligent NFT (an AI agent whose metadata is encrypted off chain)
/// @notice Each token carries `IntelligentData{dataDescription, dataHash}[]`; `dataHash` is the 0G storage root
///         of an AES-256-GCM ciphertext whose key is sealed (ECIES) to the owner and published in
///         `PublishedSealedKey`. `iTransferFrom` / `iCloneFrom` move the data with transfer-validity proofs
///         (receiver's access proof + the re-encryption oracle's ownership proof, checked by `verifier()`)
///         and store each proof's `newDataHash`. Plain ERC-721 transfers are disabled. Royalties (ERC-2981) go
///         to the token's creator. Usage authorizations are cleared on every transfer.
///
///         Sales (audit H1): proofs are EIP-712 typed data naming this contract, the token id, `from` and `to`
///         (checked by the verifier); a transfer or clone calls no receiver hook (`onERC721Received`), since the
///         receiver's signed access proof already is its consent, and a hook would let a buyer contract make a
///         market's settlement revert after reading the sealed key in its calldata; a trusted market
///         (DELEGATION_LOCKER_ROLE) freezes a buyer's access delegation until its purchase's deadline.
contract AgentNFT is
    ERC721,
    ERC2981,
    AccessControl,
    Pausable,
    ReentrancyGuard,
    IERC7857,
    IERC7857Cloneable,
    IERC7857Authorize,
    IERC7857SaleSupport
{
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice Role of trusted markets: may freeze a buyer's access delegation for a pending purchase.
    bytes32 public constant DELEGATION_LOCKER_ROLE = keccak256("DELEGATION_LOCKER_ROLE");
    /// @notice Most users one token can authorize at a time (0G's limit).
    uint256 public constant MAX_AUTHORIZED_USERS = 100;
    /// @notice Most IntelligentData entries per token (bounds every per-token loop).
    uint256 public constant MAX_DATAS = 16;
    /// @notice Highest royalty the admin may set, in basis points.
    uint96 public constant MAX_ROYALTY_BPS = 2_500;

    IERC7857DataVerifier private _verifier;
    /// @notice Royalty (basis points of the sale price) recorded for tokens minted from now on.
    uint96 public royaltyBps;
    /// @notice The id the next minted or cloned token gets (ids start at 1).
    uint256 public nextTokenId = 1;

    mapping(uint256 tokenId => IntelligentData[]) private _datas;
    mapping(uint256 tokenId => address) private _creators;
    mapping(address user => address assistant) private _assistants;
    mapping(address user => uint64 until) private _delegationLocks;
    mapping(uint256 tokenId => uint32) private _dataVersions;
    /// @dev Authorizations live under a per-token epoch; a transfer bumps the epoch, which clears them in O(1).
    mapping(uint256 tokenId => uint256) private _authEpoch;
    mapping(uint256 tokenId => mapping(uint256 epoch => address[])) private _authUsers;
    mapping(uint256 tokenId => mapping(uint256 epoch => mapping(address => uint256 indexPlusOne))) private _authIndex;

    /// @notice `creator` minted `tokenId` (and receives its royalties).
    event CreatorSet(uint256 indexed tokenId, address indexed creator);
    /// @notice The proof verifier changed.
    event VerifierUpdated(address indexed oldVerifier, address indexed newVerifier);
    /// @notice The royalty for new tokens changed.
    event RoyaltyBpsUpdated(uint96 oldBps, uint96 newBps);
    /// @notice Every usage authorization of `tokenId` was dropped (it changed hands).
    event AuthorizationsCleared(uint256 indexed tokenId);

    /// @notice transferFrom/safeTransferFrom are disabled: use iTransferFrom with proofs.
    error ERC7857PlainTransferDisabled();
    /// @notice The verifier cannot be the zero address.
    error ERC7857InvalidVerifier(address verifier);
    /// @notice A token needs 1..MAX_DATAS data entries.
    error ERC7857InvalidDataCount(uint256 count);
    /// @notice One sealed key per data entry is required.
    error ERC7857SealedKeyCountMismatch(uint256 keys, uint256 datas);
    /// @notice The royalty exceeds MAX_ROYALTY_BPS.
    error ERC7857RoyaltyTooHigh(uint96 bps);
    /// @notice The caller may not manage this token (not its owner or an approved operator).
    error ERC7857Unauthorized(address caller, uint256 tokenId);

    /// @param admin receives DEFAULT_ADMIN_ROLE (verifier, royalty) and PAUSER_ROLE
    /// @param verifier_ the transfer-validity proof verifier
    /// @param royaltyBps_ royalty for the creator of each new token, basis points
    constructor(address admin, IERC7857DataVerifier verifier_, uint96 royaltyBps_) ERC721("deaios Agent", "AGENT") {
        if (address(verifier_) == address(0)) revert ERC7857InvalidVerifier(address(0));
        if (royaltyBps_ > MAX_ROYALTY_BPS) revert ERC7857RoyaltyTooHigh(royaltyBps_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _verifier = verifier_;
        royaltyBps = royaltyBps_;
        emit VerifierUpdated(address(0), address(verifier_));
        emit RoyaltyBpsUpdated(0, royaltyBps_);
    }

    /*=== minting and metadata ===*/

    /// @notice Mint a token carrying `datas` to `to`; the caller becomes its creator.
    /// @return tokenId the new token's id
    function mint(IntelligentData[] calldata datas, address to) external whenNotPaused returns (uint256 tokenId) {
        tokenId = _mintWith(datas, to, msg.sender);
    }

    /// @notice Mint like `mint` and publish the data keys sealed to `to` (one per entry, in order), so the
    ///         owner can always recover them from the chain.
    /// @return tokenId the new token's id
    function mintWithSealedKeys(IntelligentData[] calldata datas, address to, bytes[] calldata sealedKeys)
        external
        whenNotPaused
        returns (uint256 tokenId)
    {
        if (sealedKeys.length != datas.length) revert ERC7857SealedKeyCountMismatch(sealedKeys.length, datas.length);
        tokenId = _mintWith(datas, to, msg.sender);
        emit PublishedSealedKey(to, tokenId, sealedKeys);
    }

    /// @notice Replace the token's data entries (owner only), e.g. after re-encrypting updated metadata.
    function update(uint256 tokenId, IntelligentData[] calldata newDatas) external whenNotPaused {
        address owner = _requireOwned(tokenId);
        if (owner != msg.sender) revert ERC721IncorrectOwner(msg.sender, tokenId, owner);
        _checkDataCount(newDatas.length);
        IntelligentData[] memory old = _datas[tokenId];
        _storeDatas(tokenId, newDatas);
        ++_dataVersions[tokenId];
        emit Updated(tokenId, old, newDatas);
    }

    /// @inheritdoc IERC7857SaleSupport
    function dataVersionOf(uint256 tokenId) external view returns (uint32) {
        return _dataVersions[tokenId];
    }

    /// @inheritdoc IERC7857
    function intelligentDatasOf(uint256 tokenId) external view returns (IntelligentData[] memory) {
        _requireOwned(tokenId);
        return _datas[tokenId];
    }

    /// @notice The account that minted `tokenId` (clones keep the original's creator).
    function creatorOf(uint256 tokenId) external view returns (address) {
        _requireOwned(tokenId);
        return _creators[tokenId];
    }

    /// @inheritdoc IERC7857
    function verifier() external view returns (IERC7857DataVerifier) {
        return _verifier;
    }

    /*=== transfers with proofs ===*/

    /// @inheritdoc IERC7857
    /// @dev Caller: the owner or an approved operator. Each entry's dataHash becomes the proof's newDataHash.
    ///      No `onERC721Received` call: the receiver consented by signing the access proofs (see the contract's
    ///      notice), and nothing the receiver controls can make a transfer with valid proofs revert.
    function iTransferFrom(address from, address to, uint256 tokenId, TransferValidityProof[] calldata proofs)
        external
        whenNotPaused
        nonReentrant
    {
        if (to == address(0)) revert ERC721InvalidReceiver(address(0));
        _checkFrom(from, tokenId);
        (IntelligentData[] memory newDatas, bytes[] memory sealedKeys) = _proofCheck(from, to, tokenId, proofs);
        IntelligentData[] memory old = _datas[tokenId];
        _storeDatas(tokenId, newDatas);
        emit Updated(tokenId, old, newDatas);
        emit PublishedSealedKey(to, tokenId, sealedKeys);
        _transfer(from, to, tokenId);
    }

    /// @inheritdoc IERC7857Cloneable
    /// @dev Caller: the owner or an approved operator. The original keeps its data; the clone gets the new hashes.
    ///      The proofs name the original token id. No `onERC721Received` call (as iTransferFrom).
    function iCloneFrom(address from, address to, uint256 tokenId, TransferValidityProof[] calldata proofs)
        external
        whenNotPaused
        nonReentrant
        returns (uint256 newTokenId)
    {
        if (to == address(0)) revert ERC721InvalidReceiver(address(0));
        _checkFrom(from, tokenId);
        (IntelligentData[] memory newDatas, bytes[] memory sealedKeys) = _proofCheck(from, to, tokenId, proofs);
        newTokenId = nextTokenId++;
        address creator = _creators[tokenId];
        _creators[newTokenId] = creator;
        _storeDatas(newTokenId, newDatas);
        _setTokenRoyalty(newTokenId, creator, royaltyBps);
        emit CreatorSet(newTokenId, creator);
        emit Cloned(tokenId, newTokenId, from, to);
        emit PublishedSealedKey(to, newTokenId, sealedKeys);
        _mint(to, newTokenId);
    }

    /// @notice Disabled: a plain transfer would leave the data sealed for the old owner. Use iTransferFrom.
    function transferFrom(address, address, uint256) public pure override(ERC721, IERC721) {
        revert ERC7857PlainTransferDisabled();
    }

    /*=== access delegation and usage authorization ===*/

    /// @inheritdoc IERC7857
    /// @dev `address(0)` removes the delegation; delegating to oneself is rejected; a delegation locked by a
    ///      market for a pending purchase (see lockDelegation) cannot change until the lock ends.
    function delegateAccess(address assistant) external {
        if (assistant == msg.sender) revert ERC7857InvalidAssistant(assistant);
        uint64 until = _delegationLocks[msg.sender];
        if (block.timestamp <= until) revert ERC7857DelegationLocked(msg.sender, until);
        _assistants[msg.sender] = assistant;
        emit DelegateAccess(msg.sender, assistant);
    }

    /// @inheritdoc IERC7857
    function getDelegateAccess(address user) external view returns (address) {
        return _assistants[user];
    }

    /// @inheritdoc IERC7857SaleSupport
    function lockDelegation(address user, uint64 until) external onlyRole(DELEGATION_LOCKER_ROLE) {
        if (until <= _delegationLocks[user]) return;
        _delegationLocks[user] = until;
        emit DelegationLocked(user, until);
    }

    /// @inheritdoc IERC7857SaleSupport
    function delegationLockedUntil(address user) external view returns (uint64) {
        return _delegationLocks[user];
    }

    /// @inheritdoc IERC7857Authorize
    /// @dev Caller: the owner or an approved operator (so a rental market can authorize renters).
    function authorizeUsage(uint256 tokenId, address user) external whenNotPaused {
        address owner = _checkManager(tokenId);
        if (user == address(0)) revert ERC7857InvalidAuthorizedUser(user);
        uint256 epoch = _authEpoch[tokenId];
        if (_authIndex[tokenId][epoch][user] != 0) revert ERC7857AlreadyAuthorized();
        address[] storage users = _authUsers[tokenId][epoch];
        if (users.length >= MAX_AUTHORIZED_USERS) revert ERC7857TooManyAuthorizedUsers();
        users.push(user);
        _authIndex[tokenId][epoch][user] = users.length;
        emit Authorization(owner, user, tokenId);
    }

    /// @inheritdoc IERC7857Authorize
    /// @dev Caller: the owner or an approved operator.
    function revokeAuthorization(uint256 tokenId, address user) external {
        address owner = _checkManager(tokenId);
        uint256 epoch = _authEpoch[tokenId];
        mapping(address => uint256) storage index = _authIndex[tokenId][epoch];
        uint256 position = index[user];
        if (position == 0) revert ERC7857NotAuthorized();
        address[] storage users = _authUsers[tokenId][epoch];
        address last = users[users.length - 1];
        users[position - 1] = last;
        index[last] = position;
        users.pop();
        delete index[user];
        emit AuthorizationRevoked(owner, user, tokenId);
    }

    /// @inheritdoc IERC7857Authorize
    function authorizedUsersOf(uint256 tokenId) external view returns (address[] memory) {
        _requireOwned(tokenId);
        return _authUsers[tokenId][_authEpoch[tokenId]];
    }

    /// @notice Whether `user` is currently authorized to use `tokenId`.
    function isAuthorizedUser(uint256 tokenId, address user) external view returns (bool) {
        return _authIndex[tokenId][_authEpoch[tokenId]][user] != 0;
    }

    /*=== admin ===*/

    /// @notice Replace the proof verifier.
    function setVerifier(IERC7857DataVerifier newVerifier) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (address(newVerifier) == address(0)) revert ERC7857InvalidVerifier(address(0));
        emit VerifierUpdated(address(_verifier), address(newVerifier));
        _verifier = newVerifier;
    }

    /// @notice Set the royalty recorded for tokens minted or cloned from now on (existing tokens keep theirs).
    function setRoyaltyBps(uint96 bps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (bps > MAX_ROYALTY_BPS) revert ERC7857RoyaltyTooHigh(bps);
        emit RoyaltyBpsUpdated(royaltyBps, bps);
        royaltyBps = bps;
    }

    /// @notice Stop minting, transfers, clones, updates and new authorizations.
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    /// @notice Resume.
    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721, ERC2981, AccessControl, IERC165)
        returns (bool)
    {
        return interfaceId == type(IERC7857).interfaceId || interfaceId == type(IERC7857Cloneable).interfaceId
            || interfaceId == type(IERC7857Authorize).interfaceId
            || interfaceId == type(IERC7857SaleSupport).interfaceId || ERC721.supportsInterface(interfaceId)
            || ERC2981.supportsInterface(interfaceId) || AccessControl.supportsInterface(interfaceId);
    }

    /*=== internals ===*/

    /// @dev Clears usage authorizations whenever an existing token changes hands.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        from = super._update(to, tokenId, auth);
        if (from != address(0) && _authUsers[tokenId][_authEpoch[tokenId]].length != 0) {
            ++_authEpoch[tokenId];
            emit AuthorizationsCleared(tokenId);
        }
    }

    function _mintWith(IntelligentData[] calldata datas, address to, address creator) private returns (uint256 tokenId) {
        _checkDataCount(datas.length);
        tokenId = nextTokenId++;
        _creators[tokenId] = creator;
        _storeDatas(tokenId, datas);
        _setTokenRoyalty(tokenId, creator, royaltyBps);
        emit CreatorSet(tokenId, creator);
        _safeMint(to, tokenId);
    }

    function _storeDatas(uint256 tokenId, IntelligentData[] memory datas) private {
        IntelligentData[] storage stored = _datas[tokenId];
        uint256 oldLength = stored.length;
        for (uint256 i = 0; i < datas.length; ++i) {
            if (i < oldLength) stored[i] = datas[i];
            else stored.push(datas[i]);
        }
        for (uint256 i = datas.length; i < oldLength; ++i) {
            stored.pop();
        }
    }

    function _checkDataCount(uint256 count) private pure {
        if (count == 0 || count > MAX_DATAS) revert ERC7857InvalidDataCount(count);
    }

    function _checkFrom(address from, uint256 tokenId) private view {
        address owner = _requireOwned(tokenId);
        if (owner != from) revert ERC721IncorrectOwner(from, tokenId, owner);
        _checkAuthorized(owner, msg.sender, tokenId);
    }

    function _checkManager(uint256 tokenId) private view returns (address owner) {
        owner = _requireOwned(tokenId);
        if (!_isAuthorized(owner, msg.sender, tokenId)) revert ERC7857Unauthorized(msg.sender, tokenId);
    }

    /// @dev Verify `proofs` for moving `tokenId`'s data from `from` to `to`; the new data entries and the sealed keys.
    function _proofCheck(address from, address to, uint256 tokenId, TransferValidityProof[] calldata proofs)
        private
        returns (IntelligentData[] memory newDatas, bytes[] memory sealedKeys)
    {
        if (proofs.length == 0) revert ERC7857EmptyProof();
        IntelligentData[] storage datas = _datas[tokenId];
        uint256 count = datas.length;
        if (proofs.length != count) revert ERC7857ProofCountMismatch();
        TransferValidityProofOutput[] memory outputs = _verifier.verifyTransferValidity(tokenId, from, to, proofs);
        if (outputs.length != count) revert ERC7857ProofCountMismatch();
        address assistant = _assistants[to];
        newDatas = new IntelligentData[](count);
        sealedKeys = new bytes[](count);
        for (uint256 i = 0; i < count; ++i) {
            TransferValidityProofOutput memory out = outputs[i];
            if (out.dataHash != datas[i].dataHash) revert ERC7857DataHashMismatch();
            if (out.accessAssistant != to && (assistant == address(0) || out.accessAssistant != assistant)) {
                revert ERC7857AccessAssistantMismatch();
            }
            if (out.wantedKey.length == 0) {
                if (_pubkeyToAddress(out.targetPubkey) != to) revert ERC7857WantedReceiverMismatch();
            } else if (keccak256(out.targetPubkey) != keccak256(out.wantedKey)) {
                revert ERC7857TargetPubkeyMismatch();
            }
            newDatas[i] = IntelligentData(datas[i].dataDescription, out.newDataHash);
            sealedKeys[i] = out.sealedKey;
        }
    }

    /// @dev The Ethereum address of a 64-byte uncompressed secp256k1 public key; zero for any other length.
    function _pubkeyToAddress(bytes memory pubkey) private pure returns (address) {
        if (pubkey.length != 64) return address(0);
        return address(uint160(uint256(keccak256(pubkey))));
    }
}
