// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IServiceRegistry, ServiceType, ServiceParams, Service} from "./interfaces/IServiceRegistry.sol";

/// @title ServiceRegistry: compute services with stake, kept in price-sorted lists for matching
/// @notice A provider address registers one service (type, model, URL, GPU type and count, memory, prices,
///         verifiability, TEE signer) staking at least `minStake` wei, returned in full by `removeService`.
///
///         Matching data structure: the active services of each (service type, model) pair form a doubly
///         linked list sorted by ascending price key `inputPrice + outputPrice` (the price of one input plus
///         one output token; fine-tuning: the price per token), ties in insertion order. Only active services
///         are in a list, so a provider pausing its service costs matching nothing.
///         - `findMatch` walks a list from its cheapest node and returns the first service meeting the
///           request (both prices within the maxima, enough GPUs and memory, not excluded). It stops at the
///           first node whose price key exceeds `maxInputPrice + maxOutputPrice` (no later node can match)
///           and after at most MAX_SCAN nodes: two storage reads per node, so a match costs at most about
///           MAX_SCAN * 4.5k gas however long the list is. The result is the cheapest matching service among
///           the MAX_SCAN cheapest of its list.
///         - Inserting (register, price change, re-activation) walks from a caller-supplied `hint` (a node
///           of the same list with a price key <= the new one; zero = from the head) for at most
///           MAX_INSERT_SCAN nodes; `findInsertHint` computes an exact hint off-chain. Removal is O(1).
/// @dev Differences to 0G's InferenceServing / FineTuningServing: one registry for both service types; GPU,
///      memory and price fields are typed for matching; a stake top-up is not possible (as 0G); the TEE
///      signer here is informational for users: the ledger trusts only the signer each user acknowledged.
contract ServiceRegistry is IServiceRegistry, AccessControl, Pausable, ReentrancyGuard {
    using EnumerableSet for EnumerableSet.AddressSet;
    using SafeCast for uint256;

    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    /// @notice Most list nodes `findMatch` examines.
    uint256 public constant MAX_SCAN = 32;
    /// @notice Most list nodes an insertion walks past its hint.
    uint256 public constant MAX_INSERT_SCAN = 32;
    uint256 public constant MAX_MODEL_LENGTH = 256;
    uint256 public constant MAX_URL_LENGTH = 1024;
    uint256 public constant MAX_FIELD_LENGTH = 256;
    uint256 public constant MAX_ADDITIONAL_INFO_LENGTH = 4096;

    /// @dev Cold service metadata.
    struct Record {
        address provider;
        ServiceType serviceType;
        bool active;
        uint40 registeredAt;
        uint40 updatedAt;
        address signer;
        uint96 stake;
        string model;
        string url;
        string gpuType;
        string verifiability;
        string additionalInfo;
    }

    /// @dev A list node: what matching reads besides the prices (one slot).
    struct Node {
        address next;
        uint32 gpuCount;
        uint64 memoryMiB;
    }

    /// @dev Prices (one slot).
    struct Price {
        uint128 input;
        uint128 output;
    }

    /// @notice Stake required to register a service.
    uint256 public minStake;
    /// @notice Cheapest active service of each list (zero: empty list).
    mapping(bytes32 listKey => address) public listHead;
    /// @notice Active services in each list.
    mapping(bytes32 listKey => uint256) public listLength;

    mapping(address provider => Record) private _records;
    mapping(address provider => Node) private _nodes;
    mapping(address provider => Price) private _prices;
    mapping(address provider => address) private _prev;
    mapping(address provider => bytes32) private _keyOf;
    EnumerableSet.AddressSet private _providers;

    error ZeroAddress();
    error ServiceNotFound(address provider);
    error StakeTooLow(uint256 sent, uint256 required);
    /// @notice Updates carry no value (the stake is fixed at registration, as in 0G).
    error CannotAddStakeWhenUpdating();
    error EmptyModel();
    error EmptyUrl();
    error FieldTooLong(string field, uint256 length, uint256 max);
    /// @notice Fine-tuning services have one price per token (`inputPrice`); `outputPrice` must be 0.
    error FineTuningOutputPrice();
    error ServiceActiveUnchanged(bool active);
    /// @notice The insertion position is more than MAX_INSERT_SCAN nodes after the hint: pass
    ///         `findInsertHint(...)`.
    error HintTooFar(bytes32 listKey);
    error TransferFailed();

    /// @param admin receives DEFAULT_ADMIN_ROLE, PARAMS_ADMIN_ROLE and PAUSER_ROLE
    /// @param minStake_ stake required to register
    constructor(address admin, uint256 minStake_) {
        if (admin == address(0)) revert ZeroAddress();
        minStake = minStake_;
        emit MinStakeUpdated(0, minStake_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMS_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    /*=== providers ===*/

    /// @notice Register the caller's service (msg.value = stake >= minStake) or update it (no value).
    ///         A new service is active; an update keeps the active state and re-sorts the service.
    /// @param hint a service of the target list priced at or below this one (zero: the list head); see
    ///        `findInsertHint`
    function addOrUpdateService(ServiceParams calldata p, address hint) external payable whenNotPaused {
        _validate(p);
        Record storage r = _records[msg.sender];
        bool isNew = r.provider == address(0);
        if (isNew) {
            uint256 required = minStake;
            if (msg.value < required) revert StakeTooLow(msg.value, required);
            r.provider = msg.sender;
            r.active = true;
            r.registeredAt = uint40(block.timestamp);
            r.stake = msg.value.toUint96();
            _providers.add(msg.sender);
            emit ProviderStaked(msg.sender, msg.value);
        } else {
            if (msg.value != 0) revert CannotAddStakeWhenUpdating();
            if (r.active) _unlink(_keyOf[msg.sender], msg.sender);
        }
        r.serviceType = p.serviceType;
        r.updatedAt = uint40(block.timestamp);
        r.signer = p.signer;
        r.model = p.model;
        r.url = p.url;
        r.gpuType = p.gpuType;
        r.verifiability = p.verifiability;
        r.additionalInfo = p.additionalInfo;
        _nodes[msg.sender] = Node({next: address(0), gpuCount: p.gpuCount, memoryMiB: p.memoryMiB});
        _prices[msg.sender] = Price({input: p.inputPrice, output: p.outputPrice});
        bytes32 key = listKeyOf(p.serviceType, p.model);
        _keyOf[msg.sender] = key;
        if (r.active) _link(key, msg.sender, hint);
        emit ServiceUpdated(
            msg.sender,
            p.serviceType,
            p.model,
            p.url,
            p.inputPrice,
            p.outputPrice,
            p.gpuCount,
            p.memoryMiB,
            p.signer
        );
    }

    /// @notice Pause (false) or resume (true) matching of the caller's service.
    function setServiceActive(bool active, address hint) external {
        Record storage r = _records[msg.sender];
        if (r.provider == address(0)) revert ServiceNotFound(msg.sender);
        if (r.active == active) revert ServiceActiveUnchanged(active);
        if (active) {
            _requireNotPaused();
            _link(_keyOf[msg.sender], msg.sender, hint);
        } else {
            _unlink(_keyOf[msg.sender], msg.sender);
        }
        r.active = active;
        emit ServiceActiveChanged(msg.sender, active);
    }

    /// @notice Remove the caller's service and return its stake (works while paused).
    function removeService() external nonReentrant {
        Record storage r = _records[msg.sender];
        if (r.provider == address(0)) revert ServiceNotFound(msg.sender);
        if (r.active) _unlink(_keyOf[msg.sender], msg.sender);
        uint256 stake = r.stake;
        delete _records[msg.sender];
        delete _nodes[msg.sender];
        delete _prices[msg.sender];
        delete _keyOf[msg.sender];
        _providers.remove(msg.sender);
        emit ServiceRemoved(msg.sender);
        emit ProviderStakeReturned(msg.sender, stake);
        (bool ok,) = payable(msg.sender).call{value: stake}("");
        if (!ok) revert TransferFailed();
    }

    /*=== matching ===*/

    /// @notice The cheapest active service of list `listKey` meeting the constraints, among the MAX_SCAN
    ///         cheapest of the list; zero when none.
    /// @param exclude providers to skip (e.g. those that declined the request)
    function findMatch(
        bytes32 listKey,
        uint256 minGpuCount,
        uint256 minMemoryMiB,
        uint256 maxInputPrice,
        uint256 maxOutputPrice,
        address[] calldata exclude
    ) external view returns (address) {
        uint256 maxKey = maxInputPrice > type(uint256).max - maxOutputPrice
            ? type(uint256).max
            : maxInputPrice + maxOutputPrice;
        address cur = listHead[listKey];
        for (uint256 i; i < MAX_SCAN && cur != address(0); ++i) {
            Node memory node = _nodes[cur];
            Price memory price = _prices[cur];
            if (uint256(price.input) + price.output > maxKey) break;
            if (
                price.input <= maxInputPrice && price.output <= maxOutputPrice && node.gpuCount >= minGpuCount
                    && node.memoryMiB >= minMemoryMiB && !_contains(exclude, cur)
            ) return cur;
            cur = node.next;
        }
        return address(0);
    }

    /// @notice The list of a (service type, model) pair.
    function listKeyOf(ServiceType serviceType, string calldata model) public pure returns (bytes32) {
        return keccak256(abi.encode(serviceType, model));
    }

    /// @notice A valid insertion hint for a service priced (inputPrice, outputPrice) in list `listKey`
    ///         (unbounded walk: for eth_call). Pass `exclude` = the provider itself when it re-prices.
    function findInsertHint(bytes32 listKey, uint256 inputPrice, uint256 outputPrice, address exclude)
        external
        view
        returns (address prev)
    {
        uint256 key = inputPrice + outputPrice;
        address cur = listHead[listKey];
        while (cur != address(0) && _priceKey(cur) <= key) {
            if (cur != exclude) prev = cur;
            cur = _nodes[cur].next;
        }
    }

    /// @notice Up to `limit` active services of a list from position `offset`, cheapest first.
    function getList(bytes32 listKey, uint256 offset, uint256 limit) external view returns (address[] memory out) {
        uint256 len = listLength[listKey];
        if (offset >= len) return new address[](0);
        uint256 n = len - offset < limit ? len - offset : limit;
        out = new address[](n);
        address cur = listHead[listKey];
        for (uint256 i; i < offset; ++i) cur = _nodes[cur].next;
        for (uint256 i; i < n; ++i) {
            out[i] = cur;
            cur = _nodes[cur].next;
        }
    }

    /*=== views ===*/

    /// @notice Number of registered services.
    function serviceCount() external view returns (uint256) {
        return _providers.length();
    }

    /// @notice Up to `limit` registered providers from index `offset` (registration order, not stable across
    ///         removals).
    function getProviders(uint256 offset, uint256 limit) external view returns (address[] memory out) {
        uint256 len = _providers.length();
        if (offset >= len) return new address[](0);
        uint256 n = len - offset < limit ? len - offset : limit;
        out = new address[](n);
        for (uint256 i; i < n; ++i) out[i] = _providers.at(offset + i);
    }

    function serviceExists(address provider) external view returns (bool) {
        return _records[provider].provider != address(0);
    }

    function isActive(address provider) external view returns (bool) {
        return _records[provider].active;
    }

    function serviceTypeOf(address provider) external view returns (ServiceType) {
        Record storage r = _records[provider];
        if (r.provider == address(0)) revert ServiceNotFound(provider);
        return r.serviceType;
    }

    function signerOf(address provider) external view returns (address) {
        return _records[provider].signer;
    }

    function pricesOf(address provider) external view returns (uint256 inputPrice, uint256 outputPrice) {
        Price memory price = _prices[provider];
        return (price.input, price.output);
    }

    function getService(address provider) external view returns (Service memory s) {
        Record storage r = _records[provider];
        if (r.provider == address(0)) revert ServiceNotFound(provider);
        Node memory node = _nodes[provider];
        Price memory price = _prices[provider];
        s = Service({
            provider: provider,
            serviceType: r.serviceType,
            model: r.model,
            url: r.url,
            gpuType: r.gpuType,
            gpuCount: node.gpuCount,
            memoryMiB: node.memoryMiB,
            inputPrice: price.input,
            outputPrice: price.output,
            verifiability: r.verifiability,
            signer: r.signer,
            additionalInfo: r.additionalInfo,
            stake: r.stake,
            registeredAt: r.registeredAt,
            updatedAt: r.updatedAt,
            active: r.active
        });
    }

    /*=== admin ===*/

    function setMinStake(uint256 newMinStake) external onlyRole(PARAMS_ADMIN_ROLE) {
        emit MinStakeUpdated(minStake, newMinStake);
        minStake = newMinStake;
    }

    /// @notice Stop registrations, updates and re-activations (removal keeps working).
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /*=== internals ===*/

    function _validate(ServiceParams calldata p) private pure {
        if (bytes(p.model).length == 0) revert EmptyModel();
        if (bytes(p.url).length == 0) revert EmptyUrl();
        _checkLength("model", bytes(p.model).length, MAX_MODEL_LENGTH);
        _checkLength("url", bytes(p.url).length, MAX_URL_LENGTH);
        _checkLength("gpuType", bytes(p.gpuType).length, MAX_FIELD_LENGTH);
        _checkLength("verifiability", bytes(p.verifiability).length, MAX_FIELD_LENGTH);
        _checkLength("additionalInfo", bytes(p.additionalInfo).length, MAX_ADDITIONAL_INFO_LENGTH);
        if (p.serviceType == ServiceType.FineTuning && p.outputPrice != 0) revert FineTuningOutputPrice();
    }

    function _checkLength(string memory field, uint256 length, uint256 max) private pure {
        if (length > max) revert FieldTooLong(field, length, max);
    }

    function _priceKey(address provider) private view returns (uint256) {
        Price memory price = _prices[provider];
        return uint256(price.input) + price.output;
    }

    /// @dev Insert `provider` (not in any list) into list `key` after the last node priced <= its price.
    function _link(bytes32 key, address provider, address hint) private {
        uint256 price = _priceKey(provider);
        address prev;
        if (
            hint != address(0) && hint != provider && _records[hint].active && _keyOf[hint] == key
                && _priceKey(hint) <= price
        ) prev = hint;
        address next = prev == address(0) ? listHead[key] : _nodes[prev].next;
        uint256 steps;
        while (next != address(0) && _priceKey(next) <= price) {
            if (++steps > MAX_INSERT_SCAN) revert HintTooFar(key);
            prev = next;
            next = _nodes[next].next;
        }
        _nodes[provider].next = next;
        _prev[provider] = prev;
        if (prev == address(0)) listHead[key] = provider;
        else _nodes[prev].next = provider;
        if (next != address(0)) _prev[next] = provider;
        ++listLength[key];
    }

    function _unlink(bytes32 key, address provider) private {
        address prev = _prev[provider];
        address next = _nodes[provider].next;
        if (prev == address(0)) listHead[key] = next;
        else _nodes[prev].next = next;
        if (next != address(0)) _prev[next] = prev;
        _nodes[provider].next = address(0);
        delete _prev[provider];
        --listLength[key];
    }

    function _contains(address[] calldata list, address a) private pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == a) return true;
        }
        return false;
    }
}
