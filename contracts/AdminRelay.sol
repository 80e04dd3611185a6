// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Stand-in for the cross-domain messenger of a local chain (issue 11).
/// @notice Across's spoke pools take admin calls (relayRootBundle...) only from the hub's
/// cross-domain path: on Arbitrum from the L2 alias of the admin (msg.sender ==
/// applyL1ToL2Alias(admin)), on OP from the messenger predeploy 0x4200…0007 whose
/// xDomainMessageSender() is the admin. The local chains run no L1, so this code is placed at
/// that address (anvil_setCode, chain/deploy.py) and forwards the admin's own signed calls:
/// the pool sees the sender it trusts, the admin pays the gas, nobody is impersonated.
/// @dev Only `xDomainMessageSender` (immutable: it lives in the copied code) may relay; a
/// target's revert data is passed up unchanged so its custom error stays readable.
contract AdminRelay {
    /// The admin whose calls are relayed (what OP's pool asks the messenger for).
    address public immutable xDomainMessageSender;

    error NotAdmin();

    constructor(address admin) {
        xDomainMessageSender = admin;
    }

    /// @notice Call `target` with `data` as this address; only the admin may.
    function relay(address target, bytes calldata data) external returns (bytes memory) {
        if (msg.sender != xDomainMessageSender) revert NotAdmin();
        (bool ok, bytes memory result) = target.call(data);
        if (!ok) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
        return result;
    }
}
