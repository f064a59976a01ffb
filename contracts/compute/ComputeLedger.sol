// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IComputeLedger, Receipt, SignerKind, SettlementStatus, AccountInfo} from "./interfaces/IComputeLedger.sol";

/// @title ComputeLedger: prepaid funds, per-(user, provider) sub-accounts, refund lock and settlement
/// @notice Every wei of the compute market lives here, in exactly one of these places:
///         - a user's ledger: `available` (free to withdraw or commit) and `reserved` (held for a pending
///           match by the matcher);
///         - a sub-account (user, provider): `free` plus `pendingRefund` (= its `balance`), spendable only by
///           that provider's receipts (or a fee service's charge), and by nothing else;
///         - a provider's `earnings`, withdrawn by pull payment.
///         Hence `address(this).balance == totalDeposited - totalWithdrawn == sum of all the above`.
///
///         Refund lock: funds committed to a provider come back only through `requestRefund` (they stay in
///         the sub-account as `pendingRefund`, still spendable by the provider's receipts) and, `lockTime`
///         seconds later, `collectRefund` (back to the ledger). Funding the sub-account again cancels the
///         pending refund first. Ledger funds (`available`) are not committed and withdraw at once.
///
///         Settlement: a provider submits cumulative receipts `(user, nonce, totalFee)` signed by the user
///         (EIP-712) or by the provider's TEE signer that the user acknowledged. A receipt with a nonce
///         strictly above the account's pays `totalFee - charged` (partially if the account holds less) into
///         the provider's earnings. Per-receipt cost is O(1): one storage slot per account on the common path.
/// @dev Differences to 0G's LedgerManager + InferenceServing: one contract holds ledgers and sub-accounts (no
///      cross-contract call per receipt); receipts are cumulative (0G: per-batch fee, shortfall forgotten);
///      user-signed receipts are accepted besides TEE ones; the TEE signer is acknowledged per account with its
///      address; one pending refund per account (a new request adds to it and restarts the lock); providers
///      are paid by pull payment; sub-accounts are never deleted (nonce and charged survive, against replay).
contract ComputeLedger is IComputeLedger, AccessControl, Pausable, ReentrancyGuard, EIP712 {
    using SafeCast for uint256;

    /// @notice Role allowed to change lock time and minimums.
    bytes32 public constant PARAMS_ADMIN_ROLE = keccak256("PARAMS_ADMIN_ROLE");
    /// @notice Role allowed to pause deposits, transfers and reservations.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// @notice Role of the matcher contract: reserves and releases ledger funds, funds sub-accounts from them.
    bytes32 public constant MATCHER_ROLE = keccak256("MATCHER_ROLE");
    /// @notice Role of fee services (fine-tuning): charge sub-accounts for signed task fees.
    bytes32 public constant SPENDER_ROLE = keccak256("SPENDER_ROLE");
    /// @notice Role of funders (the compute bundle market): pay a purchase straight into a sub-account.
    bytes32 public constant FUNDER_ROLE = keccak256("FUNDER_ROLE");

    /// @notice EIP-712 type of a settlement receipt (signed by the user or the provider's TEE signer).
    bytes32 public constant RECEIPT_TYPEHASH =
        keccak256("Receipt(address user,address provider,uint256 nonce,uint256 totalFee,bytes32 requestsHash)");

    /// @notice Most receipts per `settleFees` call (as 0G).
    uint256 public constant MAX_BATCH = 50;
    uint256 public constant MIN_LOCK_TIME = 1 minutes;
    uint256 public constant MAX_LOCK_TIME = 7 days;

    /// @dev A user's ledger (one slot).
    struct Ledger {
        uint128 available;
        uint128 reserved;
    }

    /// @dev The hot slot of a sub-account: everything a receipt reads and writes when `free` covers it.
    struct Account {
        uint96 free;
        uint96 charged;
        uint64 nonce;
    }

    /// @dev The refund slot of a sub-account (read by receipts only when `free` is short).
    struct PendingRefund {
        uint96 amount;
        uint64 unlockAt;
    }

    /// @inheritdoc IComputeLedger
    uint256 public lockTime;
    /// @inheritdoc IComputeLedger
    uint256 public minDeposit;
    /// @inheritdoc IComputeLedger
    uint256 public minTransfer;
    /// @notice Sum of all deposits ever made.
    uint256 public totalDeposited;
    /// @notice Sum of all payments ever made by the contract (ledger withdrawals + provider earnings).
    uint256 public totalWithdrawn;

    mapping(address user => Ledger) private _ledgers;
    mapping(address user => mapping(address provider => Account)) private _accounts;
    mapping(address user => mapping(address provider => PendingRefund)) private _refunds;
    mapping(address user => mapping(address provider => address)) private _teeSigners;
    /// @inheritdoc IComputeLedger
    mapping(address provider => uint256) public earnings;

    error ZeroAddress();
    error ZeroAmount();
    /// @notice Plain native-token transfers are refused: use `depositFund`.
    error DirectDepositsDisabled();
    error DepositBelowMinimum(uint256 amount, uint256 minimum);
    error TransferBelowMinimum(uint256 amount, uint256 minimum);
    error InsufficientAvailable(uint256 requested, uint256 available);
    error InsufficientReserved(uint256 requested, uint256 reserved);
    /// @notice The sub-account's free (not pending refund) balance is below the amount.
    error InsufficientFree(uint256 requested, uint256 free);
    /// @notice The sub-account's balance (free + pending refund) is below a charge.
    error InsufficientAccountBalance(uint256 requested, uint256 balance);
    error NoPendingRefund();
    /// @notice The pending refund unlocks at `unlockAt`.
    error RefundLocked(uint256 unlockAt);
    error LockTimeOutOfRange(uint256 lockTime, uint256 min, uint256 max);
    /// @notice The TEE signer of an account with funds cannot be changed or revoked (refund everything first).
    error SignerChangeWithBalance(address current, uint256 balance);
    error NoReceipts();
    error TooManyReceipts(uint256 count, uint256 max);
    error NoEarnings();
    error TransferFailed();
    /// @notice An amount does not fit the packed storage (uint96 / uint128).
    error AmountTooLarge(uint256 amount);

    /// @param admin receives DEFAULT_ADMIN_ROLE, PARAMS_ADMIN_ROLE and PAUSER_ROLE
    /// @param lockTime_ seconds a requested refund stays locked (MIN_LOCK_TIME..MAX_LOCK_TIME)
    /// @param minDeposit_ smallest deposit into a ledger
    /// @param minTransfer_ smallest amount moved into a sub-account (transfer or match deposit)
    constructor(address admin, uint256 lockTime_, uint256 minDeposit_, uint256 minTransfer_)
        EIP712("deaios Compute Ledger", "1")
    {
        if (admin == address(0)) revert ZeroAddress();
        _setLockTime(lockTime_);
        _setMinimums(minDeposit_, minTransfer_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PARAMS_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    receive() external payable {
        revert DirectDepositsDisabled();
    }

    fallback() external payable {
        revert DirectDepositsDisabled();
    }

    /*=== users: ledger ===*/

    /// @notice Add msg.value to the caller's ledger (at least `minDeposit`).
    function depositFund() external payable {
        _deposit(msg.sender);
    }

    /// @notice Add msg.value to `user`'s ledger (at least `minDeposit`).
    function depositFundFor(address user) external payable {
        if (user == address(0)) revert ZeroAddress();
        _deposit(user);
    }

    /// @notice Withdraw `amount` of the caller's available ledger funds to its wallet (no lock: ledger funds
    ///         are committed to no provider).
    function refund(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Ledger storage l = _ledgers[msg.sender];
        uint256 available = l.available;
        if (amount > available) revert InsufficientAvailable(amount, available);
        unchecked {
            l.available = uint128(available - amount);
        }
        totalWithdrawn += amount;
        emit FundWithdrawn(msg.sender, amount, available - amount);
        _send(payable(msg.sender), amount);
    }

    /*=== users: sub-accounts ===*/

    /// @notice Make `amount` more spendable by `provider`'s receipts. A pending refund of the account is
    ///         cancelled first (up to `amount`); only the rest comes from the ledger's available funds.
    function transferFund(address provider, uint256 amount) external whenNotPaused {
        if (provider == address(0)) revert ZeroAddress();
        uint256 minimum = minTransfer;
        if (amount == 0 || amount < minimum) revert TransferBelowMinimum(amount, minimum);
        PendingRefund storage r = _refunds[msg.sender][provider];
        uint256 cancelled = _min(amount, r.amount);
        uint256 fromLedger = amount - cancelled;
        Ledger storage l = _ledgers[msg.sender];
        uint256 available = l.available;
        if (fromLedger > available) revert InsufficientAvailable(fromLedger, available);
        unchecked {
            l.available = uint128(available - fromLedger);
        }
        _fund(msg.sender, provider, amount, fromLedger, cancelled, r);
    }

    /// @notice Start the refund of `amount` of the account's free funds: they become `pendingRefund`, still
    ///         spendable by the provider's receipts, and collectable `lockTime` seconds from now. A refund
    ///         already pending is merged into this one and its lock restarts.
    function requestRefund(address provider, uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender][provider];
        uint256 free = a.free;
        if (amount > free) revert InsufficientFree(amount, free);
        unchecked {
            a.free = uint96(free - amount);
        }
        PendingRefund storage r = _refunds[msg.sender][provider];
        uint256 pending = r.amount + amount; // <= free + pending, fits uint96
        uint256 unlockAt = block.timestamp + lockTime;
        r.amount = uint96(pending);
        r.unlockAt = uint64(unlockAt);
        emit RefundRequested(msg.sender, provider, amount, pending, unlockAt);
    }

    /// @notice Move the account's pending refund back to the caller's ledger, once unlocked.
    /// @return amount the refund collected
    function collectRefund(address provider) external returns (uint256 amount) {
        PendingRefund storage r = _refunds[msg.sender][provider];
        amount = r.amount;
        if (amount == 0) revert NoPendingRefund();
        uint256 unlockAt = r.unlockAt;
        if (block.timestamp < unlockAt) revert RefundLocked(unlockAt);
        delete _refunds[msg.sender][provider];
        Ledger storage l = _ledgers[msg.sender];
        l.available = (uint256(l.available) + amount).toUint128();
        emit RefundCollected(msg.sender, provider, amount, _accounts[msg.sender][provider].free);
    }

    /// @notice Accept TEE-signed receipts of `provider` from `signer` (zero address: accept none). Check the
    ///         signer's attestation off-chain first. An account holding funds keeps its signer (refund first).
    function acknowledgeSigner(address provider, address signer) external {
        address current = _teeSigners[msg.sender][provider];
        if (current == signer) return;
        if (current != address(0)) {
            uint256 balance = uint256(_accounts[msg.sender][provider].free) + _refunds[msg.sender][provider].amount;
            if (balance != 0) revert SignerChangeWithBalance(current, balance);
        }
        _teeSigners[msg.sender][provider] = signer;
        emit SignerAcknowledged(msg.sender, provider, signer);
    }

    /*=== providers ===*/

    /// @notice Settle up to MAX_BATCH cumulative receipts of users with the caller (the provider).
    ///         Each receipt is processed independently; rejected ones change nothing and get a status.
    ///         Tip: `eth_call` this function to preview the statuses.
    /// @return statuses one per receipt, in order
    function settleFees(Receipt[] calldata receipts)
        external
        nonReentrant
        returns (SettlementStatus[] memory statuses)
    {
        uint256 n = receipts.length;
        if (n == 0) revert NoReceipts();
        if (n > MAX_BATCH) revert TooManyReceipts(n, MAX_BATCH);
        statuses = new SettlementStatus[](n);
        uint256 earned;
        for (uint256 i; i < n; ++i) {
            uint256 paid;
            (statuses[i], paid) = _settle(receipts[i], msg.sender);
            earned += paid;
        }
        if (earned != 0) {
            uint256 total = earnings[msg.sender] + earned;
            earnings[msg.sender] = total;
            emit EarningsCredited(msg.sender, earned, total);
        }
    }

    /// @notice Withdraw all of the caller's earnings to `to`.
    function withdrawEarnings(address payable to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress();
        amount = earnings[msg.sender];
        if (amount == 0) revert NoEarnings();
        earnings[msg.sender] = 0;
        totalWithdrawn += amount;
        emit EarningsWithdrawn(msg.sender, to, amount);
        _send(to, amount);
    }

    /*=== matcher ===*/

    /// @notice Hold `amount` of `user`'s available funds for a pending match.
    function reserve(address user, uint256 amount) external onlyRole(MATCHER_ROLE) whenNotPaused {
        Ledger storage l = _ledgers[user];
        Ledger memory m = l;
        if (amount > m.available) revert InsufficientAvailable(amount, m.available);
        unchecked {
            m.available -= uint128(amount);
        }
        m.reserved = (uint256(m.reserved) + amount).toUint128();
        _ledgers[user] = m;
        emit FundReserved(user, amount, m.available, m.reserved);
    }

    /// @notice Return `amount` of `user`'s reserved funds to its available funds.
    function releaseReservation(address user, uint256 amount) external onlyRole(MATCHER_ROLE) {
        Ledger memory m = _takeReserved(user, amount);
        m.available += uint128(amount); // available + reserved fitted before
        _ledgers[user] = m;
        emit ReservationReleased(user, amount, m.available, m.reserved);
    }

    /// @notice Make `amount` of `user`'s reserved funds spendable by `provider` (an accepted match). As with
    ///         `transferFund`, a pending refund of the account is cancelled first; the part of the
    ///         reservation it replaces goes back to the user's available funds.
    function fundFromReservation(address user, address provider, uint256 amount) external onlyRole(MATCHER_ROLE) {
        if (provider == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        Ledger memory m = _takeReserved(user, amount);
        PendingRefund storage r = _refunds[user][provider];
        uint256 cancelled = _min(amount, r.amount);
        m.available += uint128(cancelled);
        _ledgers[user] = m;
        if (cancelled != 0) emit ReservationReleased(user, cancelled, m.available, m.reserved);
        _fund(user, provider, amount, amount - cancelled, cancelled, r);
    }

    /// @notice Credit msg.value to `user`'s available funds: stake taken from a provider that declined or
    ///         ignored the user's match (no minimum; works while paused, like every exit).
    function compensate(address user) external payable onlyRole(MATCHER_ROLE) {
        if (msg.value == 0) return;
        Ledger storage l = _ledgers[user];
        uint256 available = uint256(l.available) + msg.value;
        l.available = available.toUint128();
        totalDeposited += msg.value;
        emit FundDeposited(user, msg.sender, msg.value, available);
    }

    /*=== funders ===*/

    /// @notice Pay msg.value (at least `minTransfer`) straight into the sub-account (user, provider): funds
    ///         committed to that provider, which come back only through the refund lock. The bundle market
    ///         uses it, so a purchase of bundles cannot be taken back at once (audit low: listings emptied for
    ///         free). A pending refund is not cancelled.
    function depositToAccount(address user, address provider) external payable onlyRole(FUNDER_ROLE) whenNotPaused {
        if (user == address(0) || provider == address(0)) revert ZeroAddress();
        uint256 minimum = minTransfer;
        if (msg.value == 0 || msg.value < minimum) revert TransferBelowMinimum(msg.value, minimum);
        Account storage a = _accounts[user][provider];
        uint256 free = uint256(a.free) + msg.value;
        uint256 balance = free + _refunds[user][provider].amount;
        if (balance > type(uint96).max) revert AmountTooLarge(balance);
        a.free = uint96(free);
        totalDeposited += msg.value;
        emit AccountDeposited(user, provider, msg.sender, msg.value, balance);
    }

    /*=== fee services ===*/

    /// @notice Move `amount` from the (user, provider) account to the provider's earnings, taking free funds
    ///         first, then the pending refund. Reverts when the account holds less.
    function charge(address user, address provider, uint256 amount) external onlyRole(SPENDER_ROLE) {
        if (amount == 0) return;
        Account storage a = _accounts[user][provider];
        uint256 free = a.free;
        if (amount > free) {
            PendingRefund storage r = _refunds[user][provider];
            uint256 pending = r.amount;
            if (amount > free + pending) revert InsufficientAccountBalance(amount, free + pending);
            _cancelRefund(user, provider, r, pending, amount - free);
            a.free = 0;
        } else {
            unchecked {
                a.free = uint96(free - amount);
            }
        }
        uint256 total = earnings[provider] + amount;
        earnings[provider] = total;
        emit AccountCharged(user, provider, msg.sender, amount);
        emit EarningsCredited(provider, amount, total);
    }

    /*=== admin ===*/

    /// @notice Set the refund lock time (applies to refunds requested from now on).
    function setLockTime(uint256 newLockTime) external onlyRole(PARAMS_ADMIN_ROLE) {
        _setLockTime(newLockTime);
    }

    /// @notice Set the minimum deposit and minimum sub-account transfer.
    function setMinimums(uint256 minDeposit_, uint256 minTransfer_) external onlyRole(PARAMS_ADMIN_ROLE) {
        _setMinimums(minDeposit_, minTransfer_);
    }

    /// @notice Stop deposits, transfers and reservations (withdrawals, refunds and settlement keep working).
    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    /*=== views ===*/

    /// @inheritdoc IComputeLedger
    function getLedger(address user) external view returns (uint256 available, uint256 reserved) {
        Ledger memory l = _ledgers[user];
        return (l.available, l.reserved);
    }

    /// @inheritdoc IComputeLedger
    function getAccount(address user, address provider) external view returns (AccountInfo memory info) {
        Account memory a = _accounts[user][provider];
        PendingRefund memory r = _refunds[user][provider];
        info = AccountInfo({
            balance: uint256(a.free) + r.amount,
            pendingRefund: r.amount,
            refundUnlockAt: r.unlockAt,
            nonce: a.nonce,
            charged: a.charged,
            teeSigner: _teeSigners[user][provider]
        });
    }

    /// @inheritdoc IComputeLedger
    function teeSignerOf(address user, address provider) external view returns (address) {
        return _teeSigners[user][provider];
    }

    /// @notice The EIP-712 digest a receipt's signer signs.
    function receiptDigest(address user, address provider, uint256 nonce, uint256 totalFee, bytes32 requestsHash)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(RECEIPT_TYPEHASH, user, provider, nonce, totalFee, requestsHash)));
    }

    /*=== internals ===*/

    function _deposit(address user) private whenNotPaused {
        uint256 minimum = minDeposit;
        if (msg.value == 0 || msg.value < minimum) revert DepositBelowMinimum(msg.value, minimum);
        Ledger storage l = _ledgers[user];
        uint256 available = uint256(l.available) + msg.value;
        l.available = available.toUint128();
        totalDeposited += msg.value;
        emit FundDeposited(user, msg.sender, msg.value, available);
    }

    /// @dev Credit `amount` to the account's free funds: `cancelled` of it comes out of its pending refund,
    ///      `fromLedger` was already taken from the ledger by the caller.
    function _fund(
        address user,
        address provider,
        uint256 amount,
        uint256 fromLedger,
        uint256 cancelled,
        PendingRefund storage r
    ) private {
        uint256 pending = r.amount;
        if (cancelled != 0) {
            pending -= cancelled;
            r.amount = uint96(pending);
            if (pending == 0) r.unlockAt = 0;
        }
        Account storage a = _accounts[user][provider];
        uint256 free = uint256(a.free) + amount;
        if (free + pending > type(uint96).max) revert AmountTooLarge(free + pending);
        a.free = uint96(free);
        emit AccountFunded(user, provider, fromLedger, cancelled, free + pending, pending);
    }

    function _takeReserved(address user, uint256 amount) private view returns (Ledger memory m) {
        m = _ledgers[user];
        if (amount > m.reserved) revert InsufficientReserved(amount, m.reserved);
        unchecked {
            m.reserved -= uint128(amount);
        }
    }

    function _cancelRefund(address user, address provider, PendingRefund storage r, uint256 pending, uint256 amount)
        private
    {
        unchecked {
            pending -= amount; // amount <= pending (callers check)
        }
        r.amount = uint96(pending);
        if (pending == 0) r.unlockAt = 0;
        emit RefundCancelled(user, provider, amount, pending);
    }

    /// @dev Check and apply one receipt. Rejections leave storage untouched.
    function _settle(Receipt calldata rc, address provider) private returns (SettlementStatus status, uint256 paid) {
        address user = rc.user;
        Account memory a = _accounts[user][provider];
        uint256 nonce = rc.nonce;
        uint256 due;
        if (nonce <= a.nonce || nonce > type(uint64).max) {
            status = SettlementStatus.INVALID_NONCE;
        } else {
            address expected = rc.signerKind == SignerKind.USER ? user : _teeSigners[user][provider];
            if (expected == address(0)) {
                status = SettlementStatus.SIGNER_NOT_ACKNOWLEDGED;
            } else if (!_signedBy(rc, provider, expected)) {
                status = SettlementStatus.INVALID_SIGNATURE;
            } else if (rc.totalFee < a.charged) {
                status = SettlementStatus.FEE_BELOW_CHARGED;
            } else {
                due = rc.totalFee - a.charged;
                paid = due;
                if (paid > a.free) {
                    PendingRefund storage r = _refunds[user][provider];
                    uint256 pending = r.amount;
                    uint256 fromRefund = paid - a.free;
                    if (fromRefund > pending) {
                        fromRefund = pending;
                        paid = uint256(a.free) + pending;
                        status = SettlementStatus.PARTIAL;
                    }
                    if (fromRefund != 0) _cancelRefund(user, provider, r, pending, fromRefund);
                    a.free = 0;
                } else {
                    a.free -= uint96(paid);
                }
                a.charged = (uint256(a.charged) + paid).toUint96();
                a.nonce = uint64(nonce);
                _accounts[user][provider] = a;
            }
        }
        emit ReceiptSettled(user, provider, nonce, status, paid, due - paid);
    }

    function _signedBy(Receipt calldata rc, address provider, address signer) private view returns (bool) {
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(RECEIPT_TYPEHASH, rc.user, provider, rc.nonce, rc.totalFee, rc.requestsHash))
        );
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, rc.signature);
        return err == ECDSA.RecoverError.NoError && recovered == signer;
    }

    function _setLockTime(uint256 newLockTime) private {
        if (newLockTime < MIN_LOCK_TIME || newLockTime > MAX_LOCK_TIME) {
            revert LockTimeOutOfRange(newLockTime, MIN_LOCK_TIME, MAX_LOCK_TIME);
        }
        emit LockTimeUpdated(lockTime, newLockTime);
        lockTime = newLockTime;
    }

    function _setMinimums(uint256 minDeposit_, uint256 minTransfer_) private {
        minDeposit = minDeposit_;
        minTransfer = minTransfer_;
        emit MinimumsUpdated(minDeposit_, minTransfer_);
    }

    function _send(address payable to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    function _min(uint256 a, uint256 b) private pure returns (uint256) {
        return a < b ? a : b;
    }
}
