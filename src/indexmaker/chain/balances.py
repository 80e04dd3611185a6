"""Wallet balances read through the chain ports, for the anti-bot gate (server/balance_gate.py).

`balance_reader(ports)` answers (chain id, address, token) with the address's balance in whole
token units: "usdc" is the chain's collateral token (`balanceOf`, 6 decimals), "native" its
ETH (`eth_getBalance`, 18 decimals); both exact (core.money's exact context). It raises
InvalidInputError for a chain no port serves and NetworkError when the node does not answer
within `timeout_s`, so one slow RPC holds one session's order, never the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from decimal import Decimal

from web3 import Web3

from indexmaker.chain.connector import Web3ChainPort
from indexmaker.chain.failover import TRANSPORT_ERRORS
from indexmaker.core.errors import InvalidInputError, NetworkError
from indexmaker.core.money import EXACT_CONTEXT, units_to_usdc
from indexmaker.server.balance_gate import BalanceReader

ETH_DECIMALS = 18


def web3_ports(chain: object) -> list[Web3ChainPort]:
    """The web3 ports behind a chain port (RoutedChainPort's, or the port itself); [] for
    the in-process simulated chain."""
    if isinstance(chain, Web3ChainPort):
        return [chain]
    ports = getattr(chain, "ports", None)
    if isinstance(ports, dict):
        return [p for p in ports.values() if isinstance(p, Web3ChainPort)]
    return []


def balance_reader(ports: Iterable[Web3ChainPort], timeout_s: float = 5.0) -> BalanceReader:
    """A BalanceReader over `ports` (one per chain id)."""
    by_chain = {port.settings.chain_id: port for port in ports}

    async def read(chain_id: int, address: str, token: str) -> Decimal:
        port = by_chain.get(chain_id)
        if port is None:
            raise InvalidInputError("chain_id", f"chain {chain_id} is not served")
        holder = Web3.to_checksum_address(address)
        try:
            async with asyncio.timeout(timeout_s):
                if token == "native":
                    wei = await port.w3.eth.get_balance(holder)
                    return Decimal(int(wei)).scaleb(-ETH_DECIMALS, context=EXACT_CONTEXT)
                units = await port.usdc_contract.functions.balanceOf(holder).call()
                return units_to_usdc(int(units))
        except TRANSPORT_ERRORS as exc:
            raise NetworkError(f"chain {chain_id}: balance read failed: {exc}") from exc

    return read
