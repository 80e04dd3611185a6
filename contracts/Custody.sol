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
/// Every move emits an event; PAUSER_ROLE stops deposits, releases, mints and burns.
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

    event Deposit(address indexed client, uint256 amount, uint256 indexed sequence);
    event CollateralReleased(bytes32 indexed releaseId, address indexed to, uint256 amount);
    event IndexMinted(
        bytes32 indexed orderId, address indexed token, address indexed to, uint256 amount, bytes32 invoiceHash
    );
    event IndexBurned(bytes32 indexed orderId, address indexed token, address indexed from, uint256 amount);

    error ZeroAmount();
    error ZeroAddress();
    error EmptyInvoiceHash();
    error AlreadyReleased(bytes32 releaseId);
    error AlreadyMinted(bytes32 orderId);
    error AlreadyBurned(bytes32 orderId);

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

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }
}
