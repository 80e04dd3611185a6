// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IndexToken} from "./IndexToken.sol";

/// @title Client collateral custody and index issuance (SPEC §7).
/// @notice Clients deposit collateral (event Deposit with a sequence number starting at 1);
/// collateral leaves only on ISSUER_ROLE's authorisation, once per release id; index tokens are
/// minted and burned through IndexToken once per order id, each mint recording the invoice hash.
/// Redemptions (issue 12): the issuer pulls a client's index tokens into escrow once per escrow
/// id (the client approved custody), burns escrowed units once per burn id (one per sell batch)
/// recording a hash of the burn's terms, and returns what was not burned once per escrow.
/// Every move emits an event; PAUSER_ROLE stops deposits, releases, mints, burns and escrows.
contract Custody is AccessControl, Pausable, ReentrancyGuard {
    using SafeERC20 for IERC20;

    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    IERC20 public immutable collateral;
    uint256 public depositCount;
    mapping(bytes32 releaseId => bool) public released;
    mapping(bytes32 orderId => bytes32) public invoiceHashOf;
    mapping(bytes32 orderId => bool) public minted;
    mapping(bytes32 orderId => bool) public burned;

    /// One redemption's index tokens held by custody: pulled in once, burned in parts, the
    /// rest returned once. Units of the token (18 decimals).
    struct Escrow {
        IndexToken token;
        address client;
        uint256 amount;
        uint256 burned;
        bool released;
    }

    mapping(bytes32 escrowId => Escrow) public escrows;
    mapping(bytes32 burnId => bytes32) public burnHashOf;

    event Deposit(address indexed client, uint256 amount, uint256 indexed sequence);
    event CollateralReleased(bytes32 indexed releaseId, address indexed to, uint256 amount);
    event IndexMinted(
        bytes32 indexed orderId, address indexed token, address indexed to, uint256 amount, bytes32 invoiceHash
    );
    event IndexBurned(bytes32 indexed orderId, address indexed token, address indexed from, uint256 amount);

    event IndexEscrowed(bytes32 indexed escrowId, address indexed token, address indexed client, uint256 amount);
    event IndexEscrowBurned(bytes32 indexed escrowId, bytes32 indexed burnId, uint256 amount, bytes32 burnHash);
    event IndexEscrowReleased(
        bytes32 indexed escrowId, address indexed token, address indexed client, uint256 amount
    );

    error ZeroAmount();
    error ZeroAddress();
    error EmptyInvoiceHash();
    error AlreadyReleased(bytes32 releaseId);
    error AlreadyMinted(bytes32 orderId);
    error AlreadyBurned(bytes32 orderId);
    error AlreadyEscrowed(bytes32 escrowId);
    error UnknownEscrow(bytes32 escrowId);
    error EscrowClosed(bytes32 escrowId);
    error EscrowExceeded(bytes32 escrowId, uint256 left, uint256 amount);

    constructor(IERC20 collateral_, address admin, address issuer) {
        if (address(collateral_) == address(0) || admin == address(0) || issuer == address(0)) {
            revert ZeroAddress();
        }
        collateral = collateral_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
        _grantRole(ISSUER_ROLE, issuer);
    }

    /// @notice Takes `amount` collateral units (6 decimals) from the caller, who approved it.
    function deposit(uint256 amount) external whenNotPaused nonReentrant returns (uint256 sequence) {
        if (amount == 0) revert ZeroAmount();
        sequence = ++depositCount;
        collateral.safeTransferFrom(msg.sender, address(this), amount);
        emit Deposit(msg.sender, amount, sequence);
    }

    /// @notice Sends collateral out (to the trading wallet or the bridge); a release id is used once,
    /// so a retried transaction after a restart never moves the collateral twice.
    function release(bytes32 releaseId, address to, uint256 amount)
        external
        onlyRole(ISSUER_ROLE)
        whenNotPaused
        nonReentrant
    {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (released[releaseId]) revert AlreadyReleased(releaseId);
        released[releaseId] = true;
        collateral.safeTransfer(to, amount);
        emit CollateralReleased(releaseId, to, amount);
    }

    /// @notice Mints `amount` (18 decimals) of `token` to `to` for `orderId`, once; records `invoiceHash`.
    function mint(IndexToken token, bytes32 orderId, address to, uint256 amount, bytes32 invoiceHash)
        external
        onlyRole(ISSUER_ROLE)
        whenNotPaused
        nonReentrant
    {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (invoiceHash == bytes32(0)) revert EmptyInvoiceHash();
        if (minted[orderId]) revert AlreadyMinted(orderId);
        minted[orderId] = true;
        invoiceHashOf[orderId] = invoiceHash;
        token.mint(to, amount);
        emit IndexMinted(orderId, address(token), to, amount, invoiceHash);
    }

    /// @notice Burns `amount` of `token` from `from` (who approved this contract) for `orderId`, once.
    function burn(IndexToken token, bytes32 orderId, address from, uint256 amount)
        external
        onlyRole(ISSUER_ROLE)
        whenNotPaused
        nonReentrant
    {
        if (amount == 0) revert ZeroAmount();
        if (burned[orderId]) revert AlreadyBurned(orderId);
        burned[orderId] = true;
        token.burn(from, amount);
        emit IndexBurned(orderId, address(token), from, amount);
    }

    /// @notice Pulls `amount` of `token` from `client` (who approved this contract) into escrow
    /// under `escrowId`, once: a resend after a restart moves nothing (AlreadyEscrowed).
    function escrowIndex(IndexToken token, bytes32 escrowId, address client, uint256 amount)
        external
        onlyRole(ISSUER_ROLE)
        whenNotPaused
        nonReentrant
    {
        if (address(token) == address(0) || client == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (escrows[escrowId].amount != 0) revert AlreadyEscrowed(escrowId);
        escrows[escrowId] = Escrow(token, client, amount, 0, false);
        IERC20(address(token)).safeTransferFrom(client, address(this), amount);
        emit IndexEscrowed(escrowId, address(token), client, amount);
    }

    /// @notice Burns `amount` of escrow `escrowId`'s tokens (custody's own balance) under
    /// `burnId`, once per burn id, recording `burnHash` (the hash of the burn's terms).
    function burnEscrowed(bytes32 escrowId, bytes32 burnId, uint256 amount, bytes32 burnHash)
        external
        onlyRole(ISSUER_ROLE)
        whenNotPaused
        nonReentrant
    {
        if (burnHash == bytes32(0)) revert EmptyInvoiceHash();
        if (burned[burnId]) revert AlreadyBurned(burnId);
        Escrow storage escrow = _take(escrowId, amount);
        burned[burnId] = true;
        burnHashOf[burnId] = burnHash;
        escrow.burned += amount;
        escrow.token.burn(address(this), amount);
        emit IndexBurned(burnId, address(escrow.token), address(this), amount);
        emit IndexEscrowBurned(escrowId, burnId, amount, burnHash);
    }

    /// @notice Returns `amount` of escrow `escrowId`'s unburned tokens to its client and
    /// closes it, once (a cancelled or expired redemption's unsold units).
    function releaseIndex(bytes32 escrowId, uint256 amount)
        external
        onlyRole(ISSUER_ROLE)
        whenNotPaused
        nonReentrant
    {
        Escrow storage escrow = _take(escrowId, amount);
        escrow.released = true;
        IERC20(address(escrow.token)).safeTransfer(escrow.client, amount);
        emit IndexEscrowReleased(escrowId, address(escrow.token), escrow.client, amount);
    }

    /// @dev The open escrow `escrowId`, checked to hold `amount` (> 0) not yet burned.
    function _take(bytes32 escrowId, uint256 amount) private view returns (Escrow storage escrow) {
        escrow = escrows[escrowId];
        if (escrow.amount == 0) revert UnknownEscrow(escrowId);
        if (escrow.released) revert EscrowClosed(escrowId);
        if (amount == 0) revert ZeroAmount();
        uint256 left = escrow.amount - escrow.burned;
        if (amount > left) revert EscrowExceeded(escrowId, left, amount);
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }
}
