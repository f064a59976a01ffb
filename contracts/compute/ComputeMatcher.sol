// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IComputeLedger} from "./interfaces/IComputeLedger.sol";
import {IServiceRegistry, ServiceType} from "./interfaces/IServiceRegistry.sol";
import {IComputeMatcher, ServiceRequest, RequestStatus, RequestInfo} from "./interfaces/IComputeMatcher.sol";

/// @title ComputeMatcher: match a user's request to the cheapest suitable service and reserve its deposit
/// @notice `requestService` asks the registry for the cheapest active service of the requested (type, model)
///         with enough GPUs and memory within the price maxima (bounded scan from the request's `start`, see
///         ServiceRegistry), reserves the deposit in the user's ledger, records the matched (listed) prices and
///         emits `ServiceMatched`. The provider then has `declineWindow` seconds to accept, which it may only do
///         on the matched terms (same model, enough GPUs and memory, prices not above the matched ones: audit
///         M3); the deposit then moves into the (user, provider) sub-account. A decline, or silence until the
///         window closes (anyone may then `finalizeMatch`), is a strike against the provider (audit M2): part of
///         its stake goes to the user's ledger, and the request is matched again, skipping every provider that
///         declined, at most MAX_DECLINES times. Only an acceptance commits the deposit; until then the user may
///         cancel and get it back at once.
/// @dev Needs MATCHER_ROLE on the ledger and on the registry. msg.value sent with a request is deposited to the
///      user's ledger first, so one transaction can fund and match.
contract ComputeMatcher is IComputeMatcher, AccessControl, Pausable, ReentrancyGuard {
    using SafeCast for uint256;

    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice Declines after which a request fails (bounds the exclusion list of a re-match).
    uint256 public constant MAX_DECLINES = 4;
    uint256 public constant MIN_DECLINE_WINDOW = 10 seconds;
    uint256 public constant MAX_DECLINE_WINDOW = 1 days;

    IComputeLedger public immutable ledger;
    IServiceRegistry public immutable registry;
    /// @notice Seconds a matched provider has to decline.
    uint256 public declineWindow;
    /// @notice Id of the next request (ids start at 1).
    uint256 public nextRequestId = 1;

    struct Request {
        address user;
        uint64 declineDeadline;
        RequestStatus status;
        ServiceType serviceType;
        uint8 declines;
        address provider;
        uint96 deposit;
        bytes32 listKey;
        uint128 maxInputPrice;
        uint128 maxOutputPrice;
        uint32 minGpuCount;
        uint64 minMemoryMiB;
        address start;
        uint128 matchedInputPrice;
        uint128 matchedOutputPrice;
    }

    mapping(uint256 => Request) private _requests;
    mapping(uint256 => address[]) private _declined;

    error ZeroAddress();
    error ZeroDeposit();
    error DepositBelowMinimum(uint256 deposit, uint256 minimum);
    error NoMatchingService();
    error UnknownRequest(uint256 requestId);
    error NotMatched(uint256 requestId, RequestStatus status);
    error NotMatchedProvider(uint256 requestId, address caller);
    error NotRequestUser(uint256 requestId, address caller);
    error DeclineWindowClosed(uint256 requestId, uint256 deadline);
    error DeclineWindowOpen(uint256 requestId, uint256 deadline);
    error ServiceNotActive(address provider);
    error DeclineWindowOutOfRange(uint256 window, uint256 min, uint256 max);
    /// @notice The provider's service no longer offers what it was matched on (model, GPUs, memory, prices).
    error MatchTermsChanged(uint256 requestId, address provider);
    error DirectPaymentsDisabled();

    /// @param ledger_ the compute ledger (grant this contract its MATCHER_ROLE)
    /// @param registry_ the service registry
    /// @param admin receives DEFAULT_ADMIN_ROLE, PARAMS_ADMIN_ROLE and PAUSER_ROLE
    /// @param declineWindow_ seconds a matched provider has to decline
    constructor(address ledger_, address registry_, address admin, uint256 declineWindow_) {
        if (ledger_ == address(0) || registry_ == address(0) || admin == address(0)) revert ZeroAddress();
        ledger = IComputeLedger(ledger_);
        registry = IServiceRegistry(registry_);
        _setDeclineWindow(declineWindow_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMS_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    /// @notice Only the registry pays in (stake taken for a strike, passed on to the user's ledger).
    receive() external payable {
        if (msg.sender != address(registry)) revert DirectPaymentsDisabled();
    }

    /// @notice Match `req` with the cheapest suitable active service and reserve `req.deposit` of the caller's
    ///         ledger (msg.value, if any, is deposited first). Reverts NoMatchingService when none matches.
    /// @return requestId the new request's id
    /// @return provider the matched provider
    function requestService(ServiceRequest calldata req)
        external
        payable
        whenNotPaused
        nonReentrant
        returns (uint256 requestId, address provider)
    {
        if (req.deposit == 0) revert ZeroDeposit();
        uint256 minimum = ledger.minTransfer();
        if (req.deposit < minimum) revert DepositBelowMinimum(req.deposit, minimum);
        if (msg.value != 0) ledger.depositFundFor{value: msg.value}(msg.sender);
        bytes32 key = registry.listKeyOf(req.serviceType, req.model);
        uint256 inputPrice;
        uint256 outputPrice;
        (provider, inputPrice, outputPrice) = registry.findMatch(
            key, req.minGpuCount, req.minMemoryMiB, req.maxInputPrice, req.maxOutputPrice, new address[](0), req.start
        );
        if (provider == address(0)) revert NoMatchingService();
        ledger.reserve(msg.sender, req.deposit);
        requestId = nextRequestId++;
        uint64 deadline = uint64(block.timestamp + declineWindow);
        _requests[requestId] = Request({
            user: msg.sender,
            declineDeadline: deadline,
            status: RequestStatus.Matched,
            serviceType: req.serviceType,
            declines: 0,
            provider: provider,
            deposit: req.deposit.toUint96(),
            listKey: key,
            maxInputPrice: req.maxInputPrice,
            maxOutputPrice: req.maxOutputPrice,
            minGpuCount: req.minGpuCount,
            minMemoryMiB: req.minMemoryMiB,
            start: req.start,
            matchedInputPrice: uint128(inputPrice),
            matchedOutputPrice: uint128(outputPrice)
        });
        emit ServiceRequested(
            requestId, msg.sender, req.serviceType, req.model, req.deposit, req.maxInputPrice, req.maxOutputPrice
        );
        emit ServiceMatched(requestId, msg.sender, provider, req.deposit, inputPrice, outputPrice, deadline);
    }

    /// @notice The matched provider accepts within the window, on the terms it was matched on: the deposit
    ///         moves into the (user, provider) sub-account and the provider's strikes are forgiven.
    function acceptMatch(uint256 requestId) external nonReentrant {
        Request storage r = _matched(requestId);
        if (msg.sender != r.provider) revert NotMatchedProvider(requestId, msg.sender);
        if (block.timestamp > r.declineDeadline) revert DeclineWindowClosed(requestId, r.declineDeadline);
        (bytes32 listKey, uint256 gpuCount, uint256 memoryMiB, uint256 inputPrice, uint256 outputPrice, bool active) =
            registry.matchTermsOf(msg.sender);
        if (!active) revert ServiceNotActive(msg.sender);
        if (
            listKey != r.listKey || gpuCount < r.minGpuCount || memoryMiB < r.minMemoryMiB
                || inputPrice > r.matchedInputPrice || outputPrice > r.matchedOutputPrice
        ) revert MatchTermsChanged(requestId, msg.sender);
        r.status = RequestStatus.Accepted;
        ledger.fundFromReservation(r.user, msg.sender, r.deposit);
        registry.recordAcceptance(msg.sender);
        emit MatchAccepted(requestId, r.user, msg.sender, r.deposit);
    }

    /// @notice The matched provider declines within the window: a strike (part of its stake goes to the
    ///         user), and the request is matched again, excluding every provider that declined it, or fails
    ///         (deposit released) if none is left.
    /// @return newProvider the next match (zero: the request failed)
    function declineMatch(uint256 requestId) external nonReentrant returns (address newProvider) {
        Request storage r = _matched(requestId);
        if (msg.sender != r.provider) revert NotMatchedProvider(requestId, msg.sender);
        if (block.timestamp > r.declineDeadline) revert DeclineWindowClosed(requestId, r.declineDeadline);
        return _rematch(requestId, r);
    }

    /// @notice After the window, anyone may move on from a provider that did not answer: silence is a decline
    ///         (a strike, and the request is matched again or fails). The deposit is never committed to a
    ///         provider that did not accept.
    /// @return provider the provider now holding the request (zero: the request failed)
    function finalizeMatch(uint256 requestId) external nonReentrant returns (address provider) {
        Request storage r = _matched(requestId);
        if (block.timestamp <= r.declineDeadline) revert DeclineWindowOpen(requestId, r.declineDeadline);
        emit MatchTimedOut(requestId, r.provider);
        provider = _rematch(requestId, r);
    }

    /// @notice The user withdraws a request not yet accepted; the deposit returns to its ledger.
    function cancelRequest(uint256 requestId) external nonReentrant {
        Request storage r = _matched(requestId);
        if (msg.sender != r.user) revert NotRequestUser(requestId, msg.sender);
        r.status = RequestStatus.Cancelled;
        ledger.releaseReservation(r.user, r.deposit);
        emit RequestCancelled(requestId, r.user);
    }

    /// @notice A request's state.
    function getRequest(uint256 requestId) external view returns (RequestInfo memory info) {
        Request memory r = _requests[requestId];
        if (r.status == RequestStatus.None) revert UnknownRequest(requestId);
        info = RequestInfo({
            user: r.user,
            provider: r.provider,
            status: r.status,
            deposit: r.deposit,
            declineDeadline: r.declineDeadline,
            declines: r.declines,
            serviceType: r.serviceType,
            listKey: r.listKey,
            minGpuCount: r.minGpuCount,
            minMemoryMiB: r.minMemoryMiB,
            maxInputPrice: r.maxInputPrice,
            maxOutputPrice: r.maxOutputPrice,
            matchedInputPrice: r.matchedInputPrice,
            matchedOutputPrice: r.matchedOutputPrice,
            start: r.start
        });
    }

    /// @notice Providers that declined a request, in order.
    function declinedBy(uint256 requestId) external view returns (address[] memory) {
        return _declined[requestId];
    }

    function setDeclineWindow(uint256 newWindow) external onlyRole(PARAMS_ADMIN_ROLE) {
        _setDeclineWindow(newWindow);
    }

    /// @notice Stop new requests (pending ones can still be accepted, declined, finalized, cancelled).
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /*=== internals ===*/

    function _matched(uint256 requestId) private view returns (Request storage r) {
        r = _requests[requestId];
        if (r.status == RequestStatus.None) revert UnknownRequest(requestId);
        if (r.status != RequestStatus.Matched) revert NotMatched(requestId, r.status);
    }

    /// @dev The matched provider declined or ignored the request: strike it (its penalty credited to the user),
    ///      then match the request again or fail it.
    function _rematch(uint256 requestId, Request storage r) private returns (address provider) {
        address declined = r.provider;
        _declined[requestId].push(declined);
        uint8 declines = r.declines + 1;
        r.declines = declines;
        emit MatchDeclined(requestId, declined);
        uint256 penalty = registry.recordStrike(declined);
        if (penalty != 0) {
            ledger.compensate{value: penalty}(r.user);
            emit UserCompensated(requestId, r.user, declined, penalty);
        }
        uint256 inputPrice;
        uint256 outputPrice;
        if (declines < MAX_DECLINES) (provider, inputPrice, outputPrice) = _findNext(r, _declined[requestId]);
        if (provider == address(0)) {
            r.status = RequestStatus.Unmatched;
            ledger.releaseReservation(r.user, r.deposit);
            emit MatchFailed(requestId, r.user);
        } else {
            uint64 deadline = uint64(block.timestamp + declineWindow);
            r.provider = provider;
            r.declineDeadline = deadline;
            r.matchedInputPrice = uint128(inputPrice);
            r.matchedOutputPrice = uint128(outputPrice);
            emit ServiceMatched(requestId, r.user, provider, r.deposit, inputPrice, outputPrice, deadline);
        }
    }

    function _findNext(Request storage r, address[] storage exclude)
        private
        view
        returns (address provider, uint256 inputPrice, uint256 outputPrice)
    {
        return registry.findMatch(
            r.listKey, r.minGpuCount, r.minMemoryMiB, r.maxInputPrice, r.maxOutputPrice, exclude, r.start
        );
    }

    function _setDeclineWindow(uint256 newWindow) private {
        if (newWindow < MIN_DECLINE_WINDOW || newWindow > MAX_DECLINE_WINDOW) {
            revert DeclineWindowOutOfRange(newWindow, MIN_DECLINE_WINDOW, MAX_DECLINE_WINDOW);
        }
        emit DeclineWindowUpdated(declineWindow, newWindow);
        declineWindow = newWindow;
    }
}
