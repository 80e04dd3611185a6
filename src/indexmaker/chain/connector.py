"""`ChainPort` over one EVM chain with web3.py (SPEC §7, core/ports.py): custody deposits
followed as logs, collateral released from custody, index tokens minted and burned through it.

- Deposits: custody's `Deposit(client, amount, sequence)` logs, once each, after
  `confirmations` blocks (LogFollower), pushed as `DepositObserved` on `designation`;
  `cursor` is the last fully handled block (persist it to resume: issue 10's store).
- `transfer` (a hop with no bridge) and `withdraw`: `Custody.release`, keyed on chain by
  keccak256(transfer id / withdrawal id), so a resend after a restart moves nothing twice.
- `escrow` / `release_index` / a `burn` with an escrow id: `Custody.escrowIndex` /
  `releaseIndex` / `burnEscrowed` (chain/escrow.py).
- `mint` / `burn`: `Custody.mint` / `burn`, order id = keccak256(payment id); the contract
  refuses a repeat (`AlreadyMinted`/`AlreadyBurned`), which this adapter reports as confirmed:
  the earlier transaction did it. A mint records the command's `invoice_hash` (the core's hash
  of the invoice's terms, engine/invoices.py) on chain, or `invoice_hash(command)` when the
  command has none (keccak256 of the command's terms); `MintConfirmed` carries the mint's
  transaction hash (the earlier one's, found by its `IndexMinted` log, after a repeat).
- Units: USDC 6 decimals, index tokens 18 (core.money's exact conversions; an index
  quantity is rounded down, never over-minted). Every failure raises (the runtime turns it
  into HopFailed / MintFailed...); RetryableError when trying again may work.

`transfer` here is the plain one-chain hop (fee 0); the collateral path over two chains, with
gas in USDC and the exchange's credit awaited, is chain/routing.py. With
`fallback_rpc_urls`, every request (reads, logs, sends) fails over across the URLs
(chain/failover.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import AsyncHTTPProvider, AsyncWeb3, Web3

from indexmaker.chain import artifacts
from indexmaker.chain.across import event_topic
from indexmaker.chain.escrow import IndexEscrow
from indexmaker.chain.failover import rpc_provider
from indexmaker.chain.logs import (
    DEFAULT_CHUNK_BLOCKS,
    CursorHook,
    LogFollower,
    LogScan,
    check_chunk_blocks,
)
from indexmaker.chain.tx import TxJournal, TxPolicy, TxRevertedError, TxSender
from indexmaker.core.chain_events import (
    BurnConfirmed,
    DepositObserved,
    HopCompleted,
    HopReport,
    HopState,
    MintConfirmed,
    WithdrawalCompleted,
)
from indexmaker.core.errors import InvalidInputError, NonRetryableError
from indexmaker.core.events import (
    BurnIndex,
    EscrowIndex,
    MintIndex,
    QueryHop,
    ReleaseIndex,
    RouteCollateral,
    WithdrawCollateral,
)
from indexmaker.core.ids import Designation, TxHash, client_key
from indexmaker.core.money import index_to_units, units_to_usdc, usdc_to_units
from indexmaker.core.ports import EventSink
from indexmaker.observability.logging import log_event

DEPOSIT_TOPIC = Web3.keccak(text="Deposit(address,uint256,uint256)")


async def disconnect(w3: AsyncWeb3[Any]) -> None:
    """Close the aiohttp sessions web3's HTTP provider caches per event loop (web3 never
    closes them by itself: each one left open is an "Unclosed client session" at exit)."""
    provider = w3.provider
    if isinstance(provider, AsyncHTTPProvider):
        await provider.disconnect()


class PaymentIdReused(NonRetryableError):
    """Custody already minted under this payment id, for something else."""


def mint_terms_hash(command: MintIndex) -> bytes:
    """keccak256 of "payment_id|chain_id|address|symbol|quantity" (the default invoice hash)."""
    chain_id, address = command.client
    text = f"{command.payment_id}|{chain_id}|{address}|{command.symbol}|{command.quantity}"
    return bytes(Web3.keccak(text=text))


@dataclass(frozen=True)
class ChainSettings:
    """One chain: RPC URLs, deployed addresses (.chains/deployment.json), finality rule.

    `addresses` maps a designation this chain can pay to (the trading wallet, the exchange
    deposit address) to its EVM address.
    """

    chain_id: int
    rpc_url: str
    custody: str
    usdc: str
    designation: Designation
    index_tokens: Mapping[str, str] = field(default_factory=dict)
    addresses: Mapping[str, str] = field(default_factory=dict)
    ws_url: str | None = None
    confirmations: int = 1
    start_block: int = 0
    poll_s: float = 1.0
    fallback_rpc_urls: tuple[str, ...] = ()  # other nodes of the same chain, tried in order
    log_chunk_blocks: int = DEFAULT_CHUNK_BLOCKS  # blocks per eth_getLogs (chain/logs.py)


class Web3ChainPort:
    """The chain port for one chain; see the module docstring."""

    def __init__(
        self,
        settings: ChainSettings,
        issuer: LocalAccount,
        *,
        policy: TxPolicy | None = None,
        invoice_hash: Callable[[MintIndex], bytes] = mint_terms_hash,
    ) -> None:
        self.settings = settings
        provider = rpc_provider((settings.rpc_url, *settings.fallback_rpc_urls))
        self._w3: AsyncWeb3[Any] = AsyncWeb3(provider)
        self._tx = TxSender(self._w3, issuer, policy)
        self._invoice_hash = invoice_hash
        abi = artifacts.ours("Custody")["abi"]
        self._custody = self._w3.eth.contract(
            address=Web3.to_checksum_address(settings.custody), abi=abi
        )
        self._usdc = self._w3.eth.contract(
            address=Web3.to_checksum_address(settings.usdc),
            abi=artifacts.ours("LocalUSDC")["abi"],
        )
        self.follower = LogFollower(
            self._w3,
            [settings.custody],
            start_block=settings.start_block,
            confirmations=settings.confirmations,
            topics=[DEPOSIT_TOPIC],
            ws_url=settings.ws_url,
            poll_s=settings.poll_s,
            max_range=check_chunk_blocks(settings.log_chunk_blocks),
        )
        self._minted_topic = event_topic(abi, "IndexMinted")
        self._released_topic = event_topic(abi, "CollateralReleased")
        self._escrow = IndexEscrow(self)
        self._sink: EventSink | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._on_cursor: CursorHook | None = None

    @property
    def cursor_name(self) -> str:
        """The store's name of this port's block cursor (chain and custody contract)."""
        return f"chain_cursor:{self.settings.chain_id}:{self.settings.custody.lower()}"

    def make_durable(
        self, journal: TxJournal | None, cursor: int | None, on_cursor: CursorHook | None
    ) -> None:
        """Before `start`: keep sent, unmined transactions in `journal` (settled first on
        start), follow deposits from the block after the stored `cursor` (None: from
        `start_block`), and hand every new cursor to `on_cursor` to persist."""
        self._tx.journal = journal
        if cursor is not None:
            self.follower.cursor = max(self.follower.cursor, cursor)
        self._on_cursor = on_cursor

    @property
    def w3(self) -> AsyncWeb3[Any]:
        return self._w3

    @property
    def custody_contract(self) -> Any:
        return self._custody

    @property
    def token_abi(self) -> list[Any]:
        abi: list[Any] = artifacts.ours("IndexToken")["abi"]
        return abi

    @property
    def tx(self) -> TxSender:
        """The issuer's sender on this chain (one nonce manager: share it, never make another)."""
        return self._tx

    @property
    def usdc_contract(self) -> Any:
        return self._usdc

    @property
    def cursor(self) -> int:
        """The last block whose deposits were all pushed."""
        return self.follower.cursor

    async def start(self, sink: EventSink) -> None:
        """Settle the transactions a previous run left pending (chain/tx.py `recover`), so
        nothing redone after a restart is sent twice, then follow deposits."""
        self._sink = sink
        self._stop.clear()
        try:
            settled = await self._tx.recover()
            if settled:
                log_event("chain_pending_settled", chain_id=self.settings.chain_id, txs=settled)
        except Exception as error:  # the next send settles them first (recover again)
            log_event(
                "chain_pending_unsettled",
                logging.WARNING,
                chain_id=self.settings.chain_id,
                error=str(error),
            )
        self._task = asyncio.create_task(
            self.follower.run(self._on_deposit, self._stop, self._on_cursor)
        )

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await disconnect(self._w3)  # its cached aiohttp sessions ("Unclosed client session")

    async def _on_deposit(self, log: Any) -> None:
        args = self._custody.events.Deposit().process_log(log)["args"]
        event = DepositObserved(
            client=client_key(self.settings.chain_id, args["client"]),
            seq_num=int(args["sequence"]),
            amount=units_to_usdc(int(args["amount"])),
            designation=self.settings.designation,
            tx_hash=TxHash("0x" + bytes(log["transactionHash"]).hex()),
            log_index=int(log["logIndex"]),
            block_number=int(log["blockNumber"]),
            confirmations=self.settings.confirmations,
        )
        assert self._sink is not None
        await self._sink(event)

    def _address_of(self, designation: str) -> str:
        try:
            return self.settings.addresses[designation]
        except KeyError:
            raise InvalidInputError("destination", f"no address for {designation}") from None

    async def send(self, to: str, call: Any, recorded_step: str = "") -> Any:
        """Send a contract `call` to `to` from the issuer; its receipt (tx.py's errors;
        `recorded_step`: TxSender.send's)."""
        data = call._encode_transaction_data()
        return await self._tx.send({"to": to, "data": data}, recorded_step)

    async def release(self, key: str, to: str, amount: Decimal) -> Any:
        """Custody pays `amount` USDC to `to` under release id keccak256(`key`): the receipt, or
        None when that id was released before (the contract refuses a second release)."""
        units = usdc_to_units(amount)
        to = Web3.to_checksum_address(to)  # a client key holds the address in lower case
        call = self._custody.functions.release(Web3.keccak(text=key), to, units)
        try:
            return await self.send(self.settings.custody, call)
        except TxRevertedError as exc:
            if exc.is_error("AlreadyReleased(bytes32)"):
                return None
            raise

    async def released_tx(self, key: str, from_block: int = 0) -> str:
        """The hash of the transaction that released `key` (its CollateralReleased log, made at
        or after block `from_block`: e.g. the lot's deposit block)."""
        return await self.log_tx(self._released_topic, bytes(Web3.keccak(text=key)), from_block)

    async def log_tx(self, topic: bytes, key: bytes, from_block: int = 0) -> str:
        log = await self.custody_log(topic, key, from_block)
        return "0x" + bytes(log["transactionHash"]).hex()

    async def custody_log(self, topic: bytes, key: bytes, from_block: int = 0) -> Any:
        """Custody's log of `topic` for `key` (one per key: the contract refuses a repeat),
        known to exist: read from the head back (it is usually recent), in chunks, down to
        `from_block` or the port's first block (chain/logs.py LogScan). InvalidInputError
        when there is none."""
        low = max(from_block, self.settings.start_block)
        custody = Web3.to_checksum_address(self.settings.custody)
        topics = [HexBytes(topic), HexBytes(key)]
        log = await LogScan(self._w3, custody, topics, low, self.settings.log_chunk_blocks).newest()
        if log is None:
            raise InvalidInputError("key", f"no custody log for {key.hex()}")
        return log

    async def transfer(self, command: RouteCollateral) -> None:
        if command.bridge:
            raise InvalidInputError("bridge", f"{command.bridge} is a BridgePort's hop")
        await self.release(
            f"transfer:{command.transfer_id}", self._address_of(command.destination), command.amount
        )
        await self.push(HopCompleted(command.transfer_id, command.amount, Decimal(0)))

    async def hop_status(self, query: QueryHop) -> HopReport:
        """Custody's `released(key)` for the hop's key: DONE (a direct release delivers the
        whole amount) or NOT_FOUND. A transaction still waiting in the mempool reads as not
        found, which is safe: the resend is under the same key, so only one of the two can
        release (the other reverts `AlreadyReleased`)."""
        key = Web3.keccak(text=f"transfer:{query.transfer_id}")
        if await self._custody.functions.released(key).call():
            return HopReport(query.transfer_id, HopState.DONE, query.amount, Decimal(0))
        return HopReport(
            query.transfer_id, HopState.NOT_FOUND, reason="custody has not released it"
        )

    async def withdraw(self, command: WithdrawCollateral) -> None:
        receipt = await self.release(
            f"withdrawal:{command.withdrawal_id}", command.address, command.amount
        )
        tx = "" if receipt is None else "0x" + bytes(receipt["transactionHash"]).hex()
        await self.push(WithdrawalCompleted(command.withdrawal_id, TxHash(tx), Decimal(0)))

    def token_address(self, symbol: str) -> str:
        try:
            return self.settings.index_tokens[symbol]
        except KeyError:
            raise InvalidInputError("symbol", f"no index token for {symbol}") from None

    async def mint(self, command: MintIndex) -> None:
        units = index_to_units(command.quantity)
        invoice_hash = (
            bytes.fromhex(command.invoice_hash.removeprefix("0x"))
            if command.invoice_hash
            else self._invoice_hash(command)
        )
        call = self._custody.functions.mint(
            self.token_address(command.symbol),
            Web3.keccak(text=command.payment_id),
            Web3.to_checksum_address(command.client[1]),
            units,
            invoice_hash,
        )
        receipt = await self.send_once(call, "AlreadyMinted(bytes32)")
        if receipt is None:
            tx = await self._earlier_mint(command, units, invoice_hash)
        else:
            tx = "0x" + bytes(receipt["transactionHash"]).hex()
        await self.push(MintConfirmed(command.payment_id, TxHash(tx)))

    async def _earlier_mint(self, command: MintIndex, units: int, invoice_hash: bytes) -> str:
        """The transaction of the earlier mint of this payment id, if it minted exactly this
        (recipient, amount, invoice hash): a resend after a restart. Anything else means the
        payment id was used for another mint (e.g. a fresh store against old custody): a
        final error, never reported as minted."""
        log = await self.custody_log(
            self._minted_topic, bytes(Web3.keccak(text=command.payment_id))
        )
        args = self._custody.events.IndexMinted().process_log(log)["args"]
        same = (
            str(args["to"]).lower() == command.client[1].lower()
            and int(args["amount"]) == units
            and bytes(args["invoiceHash"]) == invoice_hash
        )
        if not same:
            raise PaymentIdReused(
                f"payment id {command.payment_id} was minted before for another invoice "
                f"(to {args['to']}, {args['amount']} units)"
            )
        return "0x" + bytes(log["transactionHash"]).hex()

    async def escrow(self, command: EscrowIndex) -> None:
        await self.push(await self._escrow.escrow(command))

    async def release_index(self, command: ReleaseIndex) -> None:
        await self._escrow.release(command)

    async def burn(self, command: BurnIndex) -> None:
        if command.escrow_id is not None:
            await self.push(await self._escrow.burn(command))
            return
        call = self._custody.functions.burn(
            self.token_address(command.symbol),
            Web3.keccak(text=command.payment_id),
            Web3.to_checksum_address(command.client[1]),
            index_to_units(command.quantity),
        )
        await self.send_once(call, "AlreadyBurned(bytes32)")
        await self.push(BurnConfirmed(command.payment_id))

    async def balance(self, designation: str) -> Decimal:
        holder = (
            self.settings.custody
            if designation == self.settings.designation
            else self._address_of(designation)
        )
        units = await self._usdc.functions.balanceOf(holder).call()
        return units_to_usdc(int(units))

    async def send_once(self, call: Any, repeat_error: str) -> Any:
        """Send `call`: its receipt, or None when it reverts with `repeat_error` (an earlier
        send did it: fine)."""
        try:
            return await self.send(self.settings.custody, call)
        except TxRevertedError as exc:
            if not exc.is_error(repeat_error):
                raise
            return None

    async def push(self, event: Any) -> None:
        if self._sink is not None:
            await self._sink(event)
