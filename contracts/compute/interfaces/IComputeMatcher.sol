// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ServiceType} from "./IServiceRegistry.sol";

/// @notice What a user asks for (`requestService`). Prices are maxima in wei per token.
struct ServiceRequest {
    ServiceType serviceType;
    string model;
    uint32 minGpuCount;
    uint64 minMemoryMiB;
    uint128 maxInputPrice;
    uint128 maxOutputPrice;
    /// funds committed to the matched provider once the match is accepted (taken from the ledger)
    uint256 deposit;
    /// where the scan of the price-sorted list begins (zero: its cheapest service); pass
    /// `ServiceRegistry.findFirstMatch(...)` so that services that never qualify cannot hide the ones that do
    address start;
}

/// @notice Life of a request.
enum RequestStatus {
    None,
    /// matched with `provider`, which must accept before `declineDeadline` (silence counts as a decline)
    Matched,
    /// accepted by the provider: the deposit is in the sub-account
    Accepted,
    /// cancelled by the user before acceptance: the deposit is back in the ledger
    Cancelled,
    /// no (further) matching service: the deposit is back in the ledger
    Unmatched
}

/// @notice A request, as returned by `getRequest`.
struct RequestInfo {
    address user;
    address provider;
    RequestStatus status;
    uint256 deposit;
    uint256 declineDeadline;
    uint256 declines;
    ServiceType serviceType;
    bytes32 listKey;
    uint256 minGpuCount;
    uint256 minMemoryMiB;
    uint256 maxInputPrice;
    uint256 maxOutputPrice;
    /// the listed prices of `provider` when it was matched: it may accept only at these or lower (audit M3)
    uint256 matchedInputPrice;
    uint256 matchedOutputPrice;
    address start;
}

/// @title On-chain matching of user requests to the cheapest suitable service
interface IComputeMatcher {
    event ServiceRequested(
        uint256 indexed requestId,
        address indexed user,
        ServiceType serviceType,
        string model,
        uint256 deposit,
        uint256 maxInputPrice,
        uint256 maxOutputPrice
    );
    /// @notice The request was matched (again, after a decline) with `provider`.
    event ServiceMatched(
        uint256 indexed requestId,
        address indexed user,
        address indexed provider,
        uint256 deposit,
        uint256 inputPrice,
        uint256 outputPrice,
        uint256 declineDeadline
    );
    /// @notice `provider` declined the match (or ignored it: see MatchTimedOut).
    event MatchDeclined(uint256 indexed requestId, address indexed provider);
    /// @notice `provider` ignored the match until the window closed (followed by MatchDeclined).
    event MatchTimedOut(uint256 indexed requestId, address indexed provider);
    /// @notice The stake taken from `provider` for declining or ignoring the match was credited to the user.
    event UserCompensated(uint256 indexed requestId, address indexed user, address indexed provider, uint256 amount);
    event MatchAccepted(uint256 indexed requestId, address indexed user, address indexed provider, uint256 deposit);
    event MatchFailed(uint256 indexed requestId, address indexed user);
    event RequestCancelled(uint256 indexed requestId, address indexed user);
    event DeclineWindowUpdated(uint256 oldWindow, uint256 newWindow);

    function requestService(ServiceRequest calldata request)
        external
        payable
        returns (uint256 requestId, address provider);
    function acceptMatch(uint256 requestId) external;
    function declineMatch(uint256 requestId) external returns (address newProvider);
    function finalizeMatch(uint256 requestId) external returns (address provider);
    function cancelRequest(uint256 requestId) external;
    function getRequest(uint256 requestId) external view returns (RequestInfo memory);
}
