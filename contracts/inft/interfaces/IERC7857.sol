// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// deaios: interface final (2026-11-25). 0G's IERC7857 shapes; the changes are in IERC7857DataVerifier.sol
// (ownership proofs carry and sign `newDataHash`; a transfer or clone stores it as the token's data hash; proofs
// are EIP-712 and name the transfer, audit H1) and, for markets, IERC7857SaleSupport.sol.
// AgentNFT disables plain ERC-721 transferFrom/safeTransferFrom (they revert): move tokens with
// iTransferFrom (owner or approved operator), which re-keys the data for the receiver. See docs/inft.md.

import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC7857DataVerifier, TransferValidityProof} from "./IERC7857DataVerifier.sol";

/// @notice One piece of an agent's encrypted metadata: what it is and the hash of its ciphertext.
struct IntelligentData {
    string dataDescription;
    bytes32 dataHash;
}

/// @title ERC-7857 intelligent NFT (0G's interface: ERC-721 + encrypted metadata moved with proofs)
interface IERC7857 is IERC721 {
    event Updated(uint256 indexed _tokenId, IntelligentData[] _oldDatas, IntelligentData[] _newDatas);
    event PublishedSealedKey(address indexed _to, uint256 indexed _tokenId, bytes[] _sealedKeys);
    event DelegateAccess(address indexed _user, address indexed _assistant);

    error ERC7857InvalidAssistant(address assistant);
    error ERC7857EmptyProof();
    error ERC7857ProofCountMismatch();
    error ERC7857DataHashMismatch();
    error ERC7857AccessAssistantMismatch();
    error ERC7857WantedReceiverMismatch();
    error ERC7857TargetPubkeyMismatch();

    /// @notice The contract that checks transfer-validity proofs.
    function verifier() external view returns (IERC7857DataVerifier);

    /// @notice The token's encrypted metadata entries; reverts for a token that does not exist.
    function intelligentDatasOf(uint256 tokenId) external view returns (IntelligentData[] memory);

    /// @notice Transfer `tokenId` from `from` to `to` with its metadata re-encrypted for `to`.
    function iTransferFrom(address from, address to, uint256 tokenId, TransferValidityProof[] calldata proofs)
        external;

    /// @notice Let `assistant` sign access proofs on the caller's behalf.
    function delegateAccess(address assistant) external;

    /// @notice The access assistant of `user` (zero when none).
    function getDelegateAccess(address user) external view returns (address);
}

/// @title ERC-7857 cloning: a new token carrying a re-encrypted copy of the metadata
interface IERC7857Cloneable {
    event Cloned(uint256 indexed _tokenId, uint256 indexed _newTokenId, address _from, address _to);

    function iCloneFrom(address from, address to, uint256 tokenId, TransferValidityProof[] calldata proofs)
        external
        returns (uint256 newTokenId);
}

/// @title ERC-7857 usage authorization (use through a sealed executor without seeing the data)
interface IERC7857Authorize {
    event Authorization(address indexed _from, address indexed _to, uint256 indexed _tokenId);
    event AuthorizationRevoked(address indexed _from, address indexed _to, uint256 indexed _tokenId);

    error ERC7857InvalidAuthorizedUser(address user);
    error ERC7857TooManyAuthorizedUsers();
    error ERC7857AlreadyAuthorized();
    error ERC7857NotAuthorized();

    function authorizeUsage(uint256 tokenId, address user) external;
    function revokeAuthorization(uint256 tokenId, address user) external;
    function authorizedUsersOf(uint256 tokenId) external view returns (address[] memory);
}
