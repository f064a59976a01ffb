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
///         - A request may start the scan at a service of its choice (`start`, e.g. `findFirstMatch`'s answer,
///           an unbounded view): services that never qualify for it cannot hide the ones that do (audit M2).
///           When nothing qualifies from `start` on, the scan starts again at the head.
///
///         Prices (audit M3): a price increase takes effect `priceIncreaseDelay` seconds after it is announced
///         (set it >= the ledger's refund lock, so a funded user can leave at the old price); decreases apply at
///         once. Matching and sorting use the announced (listed) prices, billing (`pricesOf`) the prices in
///         effect. Strikes (audit M2): the matcher reports a provider that declines or ignores a match; each
///         strike takes `strikePenalty` of its stake (sent to the matcher, which credits the user) and
///         MAX_STRIKES strikes in a row, or a stake that cannot pay another strike, take the service out of
///         matching: a service that keeps failing users loses its whole stake.
/// @dev Differences to 0G's InferenceServing / FineTuningServing: one registry for both service types; GPU,
///      memory and price fields are typed for matching; a stake top-up is not possible (as 0G); the TEE
///      signer here is informational for users: the ledger trusts only the signer each user acknowledged;
///      price increases are delayed and stakes can be struck (0G: neither).
contract ServiceRegistry is IServiceRegistry, AccessControl, Pausable, ReentrancyGuard {
    using EnumerableSet for EnumerableSet.AddressSet;
    using SafeCast for uint256;

    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice Role of the matcher: reports strikes and acceptances.
    bytes32 public constant MATCHER_ROLE = keccak256("MATCHER_ROLE");

    /// @notice Strikes in a row (declines or ignored matches, no acceptance between) that take a service out
    ///         of matching.
    uint256 public constant MAX_STRIKES = 3;
    /// @notice Longest price-increase delay the admin may set.
    uint256 public constant MAX_PRICE_INCREASE_DELAY = 30 days;

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

    /// @dev What a match must meet.
    struct Query {
        uint256 minGpuCount;
        uint256 minMemoryMiB;
        uint256 maxInputPrice;
        uint256 maxOutputPrice;
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

    /// @dev What changes rarely besides the record: the price change in progress and the strike count.
    struct Standing {
        uint64 priceEffectiveAt;
        uint8 strikes;
        bool known;
    }

    /// @notice Stake required to register a service.
    uint256 public minStake;
    /// @notice Seconds between announcing a price increase and billing it.
    uint256 public priceIncreaseDelay;
    /// @notice Stake taken per strike (declined or ignored match).
    uint256 public strikePenalty;
    /// @notice Cheapest active service of each list (zero: empty list).
    mapping(bytes32 listKey => address) public listHead;
    /// @notice Active services in each list.
    mapping(bytes32 listKey => uint256) public listLength;

    mapping(address provider => Record) private _records;
    mapping(address provider => Node) private _nodes;
    /// @dev Listed prices: matching, sorting and match terms; billed from `_standing.priceEffectiveAt` on.
    mapping(address provider => Price) private _prices;
    /// @dev Prices billed until a pending increase takes effect.
    mapping(address provider => Price) private _previousPrices;
    mapping(address provider => Standing) private _standing;
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
    error PriceIncreaseDelayOutOfRange(uint256 delay, uint256 max);

    /// @param admin receives DEFAULT_ADMIN_ROLE, PARAMS_ADMIN_ROLE and PAUSER_ROLE
    /// @param minStake_ stake required to register
    /// @param priceIncreaseDelay_ seconds before an announced price increase is billed (<= 30 days)
    /// @param strikePenalty_ stake taken per declined or ignored match
    constructor(address admin, uint256 minStake_, uint256 priceIncreaseDelay_, uint256 strikePenalty_) {
        if (admin == address(0)) revert ZeroAddress();
        minStake = minStake_;
        emit MinStakeUpdated(0, minStake_);
        _setPriceIncreaseDelay(priceIncreaseDelay_);
        strikePenalty = strikePenalty_;
        emit StrikePenaltyUpdated(0, strikePenalty_);
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
        _schedulePrices(msg.sender, p.inputPrice, p.outputPrice);
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

    /// @notice Pause (false) or resume (true) matching of the caller's service. Resuming needs a stake that can
    ///         pay a strike (else: remove the service and register again with a full stake) and clears the
    ///         strikes.
    function setServiceActive(bool active, address hint) external {
        Record storage r = _records[msg.sender];
        if (r.provider == address(0)) revert ServiceNotFound(msg.sender);
        if (r.active == active) revert ServiceActiveUnchanged(active);
        if (active) {
            _requireNotPaused();
            if (r.stake < strikePenalty) revert StakeTooLow(r.stake, strikePenalty);
            _standing[msg.sender].strikes = 0;
            _link(_keyOf[msg.sender], msg.sender, hint);
        } else {
            _unlink(_keyOf[msg.sender], msg.sender);
        }
        r.active = active;
        emit ServiceActiveChanged(msg.sender, active);
    }

    /// @notice Remove the caller's service and return what is left of its stake (works while paused). The
    ///         prices are remembered: registering again at a higher price is an increase like any other.
    function removeService() external nonReentrant {
        Record storage r = _records[msg.sender];
        if (r.provider == address(0)) revert ServiceNotFound(msg.sender);
        if (r.active) _unlink(_keyOf[msg.sender], msg.sender);
        uint256 stake = r.stake;
        delete _records[msg.sender];
        delete _nodes[msg.sender];
        delete _keyOf[msg.sender];
        _standing[msg.sender].strikes = 0;
        _providers.remove(msg.sender);
        emit ServiceRemoved(msg.sender);
        emit ProviderStakeReturned(msg.sender, stake);
        (bool ok,) = payable(msg.sender).call{value: stake}("");
        if (!ok) revert TransferFailed();
    }

    /*=== matching ===*/

    /// @notice The first active service of list `listKey` meeting the constraints among the MAX_SCAN services
    ///         from `start` on (a service of this list; zero or any other address: from the cheapest), else among
    ///         the MAX_SCAN cheapest (services re-priced since the request may have moved before `start`); zero
    ///         when none. Prices are the listed ones (a pending increase counts).
    /// @param exclude providers to skip (e.g. those that declined the request)
    /// @param start where the scan begins (see `findFirstMatch`)
    /// @return provider the match (zero: none)
    /// @return inputPrice its listed input price
    /// @return outputPrice its listed output price
    function findMatch(
        bytes32 listKey,
        uint256 minGpuCount,
        uint256 minMemoryMiB,
        uint256 maxInputPrice,
        uint256 maxOutputPrice,
        address[] calldata exclude,
        address start
    ) external view returns (address provider, uint256 inputPrice, uint256 outputPrice) {
        Query memory q = Query(minGpuCount, minMemoryMiB, maxInputPrice, maxOutputPrice);
        address head = listHead[listKey];
        bool fromStart = start != address(0) && start != head && _records[start].active && _keyOf[start] == listKey;
        if (fromStart) {
            (provider, inputPrice, outputPrice) = _scan(q, exclude, start);
            if (provider != address(0)) return (provider, inputPrice, outputPrice);
        }
        return _scan(q, exclude, head);
    }

    /// @notice The cheapest active service of list `listKey` meeting the constraints, however far down the list
    ///         (unbounded walk: for eth_call; pass the answer as a request's `start`); zero when none.
    function findFirstMatch(
        bytes32 listKey,
        uint256 minGpuCount,
        uint256 minMemoryMiB,
        uint256 maxInputPrice,
        uint256 maxOutputPrice
    ) external view returns (address) {
        for (address cur = listHead[listKey]; cur != address(0); cur = _nodes[cur].next) {
            Node memory node = _nodes[cur];
            Price memory price = _prices[cur];
            if (
                price.input <= maxInputPrice && price.output <= maxOutputPrice && node.gpuCount >= minGpuCount
                    && node.memoryMiB >= minMemoryMiB
            ) return cur;
        }
        return address(0);
    }

    /// @notice What a match with `provider` was made on, as of now: its list, GPUs, memory, listed prices and
    ///         whether it is in matching (the matcher re-checks them at acceptance, audit M3).
    function matchTermsOf(address provider)
        external
        view
        returns (bytes32 listKey, uint256 gpuCount, uint256 memoryMiB, uint256 inputPrice, uint256 outputPrice, bool active)
    {
        Node memory node = _nodes[provider];
        Price memory price = _prices[provider];
        return (_keyOf[provider], node.gpuCount, node.memoryMiB, price.input, price.output, _records[provider].active);
    }

    /*=== strikes (matcher) ===*/

    /// @notice `provider` declined or ignored a match: take `strikePenalty` of its stake (what is left, if less)
    ///         and send it to the matcher (which credits the user); after MAX_STRIKES strikes in a row, or when
    ///         the stake left cannot pay another strike, the service leaves matching.
    /// @return penalty the stake taken (sent to the caller)
    function recordStrike(address provider) external onlyRole(MATCHER_ROLE) nonReentrant returns (uint256 penalty) {
        Record storage r = _records[provider];
        if (r.provider == address(0)) return 0;
        Standing storage st = _standing[provider];
        uint8 strikes = st.strikes < type(uint8).max ? st.strikes + 1 : st.strikes;
        st.strikes = strikes;
        uint256 stake = r.stake;
        penalty = strikePenalty < stake ? strikePenalty : stake;
        stake -= penalty;
        r.stake = uint96(stake);
        emit ServiceStruck(provider, strikes, penalty, stake);
        if (r.active && (strikes >= MAX_STRIKES || stake < strikePenalty)) {
            _unlink(_keyOf[provider], provider);
            r.active = false;
            emit ServiceActiveChanged(provider, false);
        }
        if (penalty != 0) {
            (bool ok,) = payable(msg.sender).call{value: penalty}("");
            if (!ok) revert TransferFailed();
        }
    }

    /// @notice `provider` accepted a match: its strikes are forgiven.
    function recordAcceptance(address provider) external onlyRole(MATCHER_ROLE) {
        if (_standing[provider].strikes != 0) _standing[provider].strikes = 0;
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

    /// @notice The prices billed now: the previous ones while an announced increase is pending.
    function pricesOf(address provider) external view returns (uint256 inputPrice, uint256 outputPrice) {
        Price memory price = _effectivePrices(provider);
        return (price.input, price.output);
    }

    /// @notice Strikes in a row of `provider` (declined or ignored matches since its last acceptance).
    function strikesOf(address provider) external view returns (uint256) {
        return _standing[provider].strikes;
    }

    function getService(address provider) external view returns (Service memory s) {
        Record storage r = _records[provider];
        if (r.provider == address(0)) revert ServiceNotFound(provider);
        Node memory node = _nodes[provider];
        Price memory price = _effectivePrices(provider);
        Price memory listed = _prices[provider];
        uint64 at = _standing[provider].priceEffectiveAt;
        bool pending = block.timestamp < at;
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
            active: r.active,
            nextInputPrice: pending ? listed.input : 0,
            nextOutputPrice: pending ? listed.output : 0,
            nextPriceAt: pending ? at : 0
        });
    }

    /*=== admin ===*/

    function setMinStake(uint256 newMinStake) external onlyRole(PARAMS_ADMIN_ROLE) {
        emit MinStakeUpdated(minStake, newMinStake);
        minStake = newMinStake;
    }

    /// @notice Set the delay of price increases announced from now on (keep it >= the ledger's lock time).
    function setPriceIncreaseDelay(uint256 newDelay) external onlyRole(PARAMS_ADMIN_ROLE) {
        _setPriceIncreaseDelay(newDelay);
    }

    /// @notice Set the stake taken per strike.
    function setStrikePenalty(uint256 newPenalty) external onlyRole(PARAMS_ADMIN_ROLE) {
        emit StrikePenaltyUpdated(strikePenalty, newPenalty);
        strikePenalty = newPenalty;
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

    /// @dev Set the listed prices; an increase of either price is billed only `priceIncreaseDelay` from now
    ///      (until then each price is billed at the lower of the old and the new), a decrease at once. A
    ///      provider registering for the first time has no old prices.
    function _schedulePrices(address provider, uint128 inputPrice, uint128 outputPrice) private {
        Standing storage st = _standing[provider];
        Price memory next = Price({input: inputPrice, output: outputPrice});
        if (!st.known) {
            st.known = true;
        } else {
            Price memory current = _effectivePrices(provider);
            if (inputPrice > current.input || outputPrice > current.output) {
                uint256 at = block.timestamp + priceIncreaseDelay;
                _previousPrices[provider] = Price({
                    input: inputPrice < current.input ? inputPrice : current.input,
                    output: outputPrice < current.output ? outputPrice : current.output
                });
                st.priceEffectiveAt = uint64(at);
                emit PriceIncreaseScheduled(provider, inputPrice, outputPrice, at);
            } else if (st.priceEffectiveAt > block.timestamp) {
                st.priceEffectiveAt = 0; // every price at or below what is billed now: no pending increase
            }
        }
        _prices[provider] = next;
    }

    function _effectivePrices(address provider) private view returns (Price memory) {
        return block.timestamp < _standing[provider].priceEffectiveAt ? _previousPrices[provider] : _prices[provider];
    }

    function _setPriceIncreaseDelay(uint256 newDelay) private {
        if (newDelay > MAX_PRICE_INCREASE_DELAY) revert PriceIncreaseDelayOutOfRange(newDelay, MAX_PRICE_INCREASE_DELAY);
        emit PriceIncreaseDelayUpdated(priceIncreaseDelay, newDelay);
        priceIncreaseDelay = newDelay;
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

    /// @dev The first service from `cur` on, within MAX_SCAN nodes, meeting `q` and not excluded; stops at the first
    ///      price key above the maxima's sum (no later node can qualify).
    function _scan(Query memory q, address[] calldata exclude, address cur)
        private
        view
        returns (address, uint256, uint256)
    {
        uint256 maxKey = q.maxInputPrice > type(uint256).max - q.maxOutputPrice
            ? type(uint256).max
            : q.maxInputPrice + q.maxOutputPrice;
        for (uint256 i; i < MAX_SCAN && cur != address(0); ++i) {
            Node memory node = _nodes[cur];
            Price memory price = _prices[cur];
            if (uint256(price.input) + price.output > maxKey) break;
            if (
                price.input <= q.maxInputPrice && price.output <= q.maxOutputPrice && node.gpuCount >= q.minGpuCount
                    && node.memoryMiB >= q.minMemoryMiB && !_contains(exclude, cur)
            ) return (cur, price.input, price.output);
            cur = node.next;
        }
        return (address(0), 0, 0);
    }

    function _contains(address[] calldata list, address a) private pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == a) return true;
        }
        return false;
    }
}
