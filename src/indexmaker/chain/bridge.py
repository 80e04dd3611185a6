"""`BridgePort` over Across (issue 11): collateral crosses from custody on the source chain to
the trading chain's custody (the issuer's trading wallet on Base) through Across's spoke pools.

One hop, each step keyed by the hop key (chain/hops.py) so a retry or a restart never moves
twice:
1. custody releases the amount to the issuer's account on the source chain
   (release id keccak("transfer:<key>"): a second release is refused by the contract);
2. the issuer deposits it into the source spoke pool with `unsafeDeposit`, whose deposit id is
   fixed by (sender, depositor, nonce = keccak("across:<key>")): before sending, the pool's
   `FundsDeposited` logs are searched for that id, so an earlier attempt's deposit is reused;
   output = input − the relayer's fee (`fee`, USDC), fill deadline `fill_deadline_s` after the
   source chain's latest block;
3. a relayer (ours: chain/relayer.py) fills on the destination; the hop completes when the
   destination pool's `FilledRelay` for (origin chain, deposit id) is seen.
The lot receives the output amount less the gas of this hop's transactions in USDC; its fee is
the rest (bridge fee + gas). A hop without a fill within `timeout_s` is reported unknown; the
router asks (`hop_status`) and resends it, and the resend waits again for the same deposit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from web3 import AsyncWeb3, Web3

from indexmaker.chain import artifacts
from indexmaker.chain.across import event_topic, to_bytes32
from indexmaker.chain.connector import Web3ChainPort
from indexmaker.chain.eth_price import FixedEthPrice, PriceSource
from indexmaker.chain.hops import HopRunner, gas_cost_usdc
from indexmaker.chain.relayer import MAX_UINT256
from indexmaker.core.chain_events import HopReport, QueryHop, RouteCollateral
from indexmaker.core.errors import InvalidInputError, RetryableError
from indexmaker.core.money import units_to_usdc, usdc_to_units
from indexmaker.core.ports import EventSink

ZERO32 = b"\x00" * 32


class FillNotSeen(RetryableError):
    """No fill of the deposit on the destination yet."""


@dataclass(frozen=True)
class AcrossRoute:
    """Where a crossing goes: pools (address, Across contract name) on both chains, the USDC
    token on each, the recipient on the destination (the trading chain's custody), the
    relayer's fee in USDC, and timings (s)."""

    dest_chain_id: int
    origin_pool: str
    origin_pool_contract: str
    dest_pool: str
    dest_pool_contract: str
    output_token: str
    recipient: str
    fee: Decimal = Decimal("0.10")
    fill_deadline_s: int = 3600
    timeout_s: float = 120.0
    poll_s: float = 0.25
    eth_usdc: Decimal = Decimal(3000)
    lookback_blocks: int = 100_000  # how far back a fill or a deposit is searched
    name: str = "across"  # the bridge's name in RouteCollateral.bridge


class AcrossBridge:
    """The `across` bridge port; `origin` is the source chain's port (custody, issuer account)."""

    def __init__(
        self,
        origin: Web3ChainPort,
        dest_w3: AsyncWeb3[Any],
        route: AcrossRoute,
        price: PriceSource | None = None,
    ) -> None:
        """`price`: USDC per ETH for the hop's gas (chain/eth_price.py; default: the fixed
        `route.eth_usdc`)."""
        self.origin, self.route = origin, route
        self.price = price or FixedEthPrice(route.eth_usdc)
        self._dest_w3 = dest_w3
        origin_abi = artifacts.across(route.origin_pool_contract)["abi"]
        dest_abi = artifacts.across(route.dest_pool_contract)["abi"]
        self._pool = origin.w3.eth.contract(
            address=Web3.to_checksum_address(route.origin_pool), abi=origin_abi
        )
        self._dest_pool = dest_w3.eth.contract(
            address=Web3.to_checksum_address(route.dest_pool), abi=dest_abi
        )
        self._deposited_topic = event_topic(origin_abi, "FundsDeposited")
        self._filled_topic = event_topic(dest_abi, "FilledRelay")
        self.runner = HopRunner("across", route.timeout_s)
        self._approved = False

    @property
    def name(self) -> str:
        return self.route.name

    async def start(self, sink: EventSink) -> None:
        self.runner.start(sink)

    async def stop(self) -> None:
        await self.runner.stop()

    async def hop_status(self, query: QueryHop) -> HopReport:
        """As `HopRunner.status` (chain/hops.py)."""
        return self.runner.status(query)

    async def relay(self, command: RouteCollateral) -> None:
        if command.source != self.origin.settings.designation:
            raise InvalidInputError(
                "source", f"across starts at {self.origin.settings.designation}"
            )
        if command.amount <= self.route.fee:
            raise InvalidInputError("amount", f"{command.amount} does not cover the bridge fee")
        self.runner.submit(command, self._cross)

    async def deposit_id(self, key: str) -> int:
        me = self.origin.tx.address
        nonce = int.from_bytes(Web3.keccak(text=f"across:{key}"), "big")
        call = self._pool.functions.getUnsafeDepositId(me, to_bytes32(me), nonce)
        return int(await call.call())

    async def _cross(self, key: str, command: RouteCollateral) -> tuple[Decimal, Decimal]:
        receipts: list[Any] = []
        deposit_id = await self.deposit_id(key)
        # FundsDeposited's indexed values: destinationChainId, depositId, depositor
        deposit = await self._find(self._pool, self._deposited_topic, [None, deposit_id])
        if deposit is None:
            output = await self._deposit(key, command, receipts)
        else:
            output = int(
                self._pool.events.FundsDeposited().process_log(deposit)["args"]["outputAmount"]
            )
        await self._wait_fill(deposit_id)
        gas = gas_cost_usdc(receipts, await self.price.eth_usdc()) if receipts else Decimal(0)
        received = max(units_to_usdc(output) - gas, Decimal(0))
        return received, command.amount - received

    async def _deposit(self, key: str, command: RouteCollateral, receipts: list[Any]) -> int:
        origin, route = self.origin, self.route
        me = origin.tx.address
        units = usdc_to_units(command.amount)
        output = units - usdc_to_units(route.fee)
        released = await origin.release(f"transfer:{key}", me, command.amount)
        if released is not None:
            receipts.append(released)
        if not self._approved:
            usdc = origin.usdc_contract
            allowance = await usdc.functions.allowance(me, self._pool.address).call()
            if int(allowance) < units:
                call = usdc.functions.approve(self._pool.address, MAX_UINT256)
                receipts.append(await origin.send(usdc.address, call))
            self._approved = True
        block = await origin.w3.eth.get_block("latest")
        now = int(block["timestamp"])
        call = self._pool.functions.unsafeDeposit(
            to_bytes32(me),
            to_bytes32(route.recipient),
            to_bytes32(origin.settings.usdc),
            to_bytes32(route.output_token),
            units,
            output,
            route.dest_chain_id,
            ZERO32,
            int.from_bytes(Web3.keccak(text=f"across:{key}"), "big"),
            now,
            now + route.fill_deadline_s,
            0,
            b"",
        )
        receipts.append(await origin.send(self._pool.address, call))
        return output

    async def _wait_fill(self, deposit_id: int) -> None:
        origin_chain = self.origin.settings.chain_id
        while True:  # bounded by the hop's timeout (HopRunner)
            fill = await self._find(self._dest_pool, self._filled_topic, [origin_chain, deposit_id])
            if fill is not None:
                return
            await asyncio.sleep(self.route.poll_s)

    async def _find(self, pool: Any, topic: bytes, indexed: list[int | None]) -> Any:
        """The first log of `pool` with `topic` and these indexed uint256 values (None: any)."""
        w3 = pool.w3
        head = await w3.eth.block_number
        topics: list[Any] = [topic]
        topics += [None if v is None else v.to_bytes(32, "big") for v in indexed]
        logs = await w3.eth.get_logs(
            {
                "address": pool.address,
                "fromBlock": max(0, head - self.route.lookback_blocks),
                "toBlock": head,
                "topics": topics,
            }
        )
        return logs[0] if logs else None
