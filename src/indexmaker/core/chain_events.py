"""Chain and bridge events and commands: deposits, collateral hops, mint, burn, withdraw.

Idempotency keys (docs/adapters.md): a deposit is (designation, tx_hash, log_index) — the
custody contract's `seq_num` names the same deposit; a hop is its `transfer_id` (a hop whose
outcome is unknown is asked about under it, and resent under it only when it provably did not
happen); a mint or a burn its `payment_id` (the contract refuses a repeat); a withdrawal its
`withdrawal_id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from indexmaker.core.ids import (
    Address,
    ClientKey,
    Designation,
    PaymentId,
    Symbol,
    TransferId,
    TxHash,
    WithdrawalId,
)


@dataclass(frozen=True, slots=True)
class DepositObserved:
    """A client's deposit into custody, as seen on chain. The chain adapter reports it once it
    has `confirmations` blocks on top (its finality rule); the core credits it once."""

    client: ClientKey
    seq_num: int  # the custody contract's deposit sequence number
    amount: Decimal
    designation: Designation
    tx_hash: TxHash
    log_index: int
    block_number: int
    confirmations: int


@dataclass(frozen=True, slots=True)
class RouteCollateral:
    """Command: move collateral one hop (a bridge) between designations.

    `hop_key` names the hop of one deposit ("<designation>#<seq_num>:<bridge>"): the same for
    every retry of that hop (each retry has a new `transfer_id`), so an adapter that keys its
    on-chain steps by it never moves the collateral twice (chain/hops.py).

    `from_block`: a block of the source's chain at or before every step of the hop (the lot's
    deposit block when the hop leaves the chain it was deposited on), where the adapter's log
    searches for earlier attempts start (issue 11: never a fixed look-back); 0 when not known
    (journals from before it: the adapter starts at its chain's first block)."""

    transfer_id: TransferId
    client: ClientKey
    bridge: str
    source: Designation
    destination: Designation
    amount: Decimal
    hop_key: str = ""
    from_block: int = 0


@dataclass(frozen=True, slots=True)
class RouteCostQuoted:
    """What the hop from `source` over `bridge` costs now (USDC, headroom included): the
    bridge's fee plus its transactions' estimated gas at the chain's gas price and the ETH
    price (chain/route_costs.py). The core routes a lot from `source` only while its amount
    (with the client's lots held there) is above the cost of the route from there on; the
    latest quote per source counts (docs/decisions.md "Lots below the route's cost")."""

    source: Designation
    bridge: str
    cost: Decimal
    detail: str = ""  # how it was worked out (gas units, gas price, ETH price): a note


@dataclass(frozen=True, slots=True)
class HopCompleted:
    transfer_id: TransferId
    amount_received: Decimal
    fee: Decimal


@dataclass(frozen=True, slots=True)
class HopFailed:
    """The hop definitely did not move anything (a definite refusal): the router retries
    under a new transfer id. A failure that leaves the outcome open is `HopStatusUnknown`."""

    transfer_id: TransferId
    reason: str


@dataclass(frozen=True, slots=True)
class HopStatusUnknown:
    """The chain or bridge call timed out or failed without a definite answer: the hop may
    have happened. The router asks (`QueryHop`) before anything is resent."""

    transfer_id: TransferId
    reason: str


@dataclass(frozen=True, slots=True)
class ResumeRoutes:
    """Route given-up collateral lots again (issue 11): `lot` names one, "ORIGIN#SEQ" (the
    designation it was deposited on and its deposit number, e.g. "EVM:ARBITRUM:USDC#1"), or
    None for every one. `why`: who asked ("operator", "restart"), for the log and alerts."""

    lot: str | None
    why: str


@dataclass(frozen=True, slots=True)
class QueryHop:
    """Command: ask the chain (or the named bridge) what became of one hop, by its
    transfer id (the key the hop was sent under); answered by a `HopReport`."""

    transfer_id: TransferId
    bridge: str
    amount: Decimal  # USDC sent on the hop (what a direct transfer delivers when done)


class HopState(Enum):
    DONE = "done"  # it happened: the amount arrived (HopCompleted at least once, by id)
    PENDING = "pending"  # it was taken and is on its way: its HopCompleted will come
    NOT_FOUND = "not_found"  # no trace under this transfer id: it provably did not happen


@dataclass(frozen=True, slots=True)
class HopReport:
    """The chain's or bridge's answer to a `QueryHop`. `amount_received` and `fee` are set
    when the state is DONE (USDC, the destination's side)."""

    transfer_id: TransferId
    state: HopState
    amount_received: Decimal | None = None
    fee: Decimal | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class MintIndex:
    """Command: mint index tokens to the client (the contract refuses a repeated payment_id).

    `invoice_hash`: 0x + hex of the hash of the invoice's terms (engine/invoices.py
    `invoice_hash`), recorded on chain with the mint."""

    payment_id: PaymentId
    client: ClientKey
    symbol: Symbol
    quantity: Decimal
    invoice_hash: str = ""


@dataclass(frozen=True, slots=True)
class MintConfirmed:
    payment_id: PaymentId
    tx_hash: TxHash | None = None  # the mint's transaction (None on the simulated chain)


@dataclass(frozen=True, slots=True)
class MintFailed:
    """The mint did not go through. `retryable`: the same `MintIndex` may be sent again (the
    contract refuses a repeated payment_id, so a retry never mints twice)."""

    payment_id: PaymentId
    reason: str
    retryable: bool = True


@dataclass(frozen=True, slots=True)
class BurnIndex:
    """Command: burn index tokens the client handed back (redemption; SPEC §3 sell side).

    `escrow_id`: the escrow (`EscrowIndex`) the units are burned from, in custody; None
    burns from the client's wallet with its allowance to custody."""

    payment_id: PaymentId
    client: ClientKey
    symbol: Symbol
    quantity: Decimal
    escrow_id: PaymentId | None = None


@dataclass(frozen=True, slots=True)
class BurnConfirmed:
    payment_id: PaymentId
    tx_hash: TxHash | None = None  # the burn's transaction, for the redemption invoice


@dataclass(frozen=True, slots=True)
class BurnFailed:
    payment_id: PaymentId
    reason: str
    retryable: bool = True


@dataclass(frozen=True, slots=True)
class WithdrawCollateral:
    """Command: pay collateral out of custody to the client's address on a chain."""

    withdrawal_id: WithdrawalId
    client: ClientKey
    source: Designation
    address: Address
    amount: Decimal


@dataclass(frozen=True, slots=True)
class WithdrawalCompleted:
    withdrawal_id: WithdrawalId
    tx_hash: TxHash
    fee: Decimal


@dataclass(frozen=True, slots=True)
class WithdrawalFailed:
    withdrawal_id: WithdrawalId
    reason: str
    retryable: bool = True


@dataclass(frozen=True, slots=True)
class EscrowIndex:
    """Command: move a redeeming client's index tokens into custody before anything is sold
    ("wait for index token collateral before selling"). Keyed by `escrow_id` (one per sell
    order): a repeat moves nothing. `IndexEscrowed` or `IndexEscrowFailed` answers."""

    escrow_id: PaymentId
    client: ClientKey
    symbol: Symbol
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class IndexEscrowed:
    """The tokens are in custody. `block_number`: the escrow's block on the trading chain, a
    lower bound for the redemption's later look-ups there (its return hop's
    `RouteCollateral.from_block`; 0 when not known)."""

    escrow_id: PaymentId
    tx_hash: TxHash | None = None
    block_number: int = 0


@dataclass(frozen=True, slots=True)
class IndexEscrowFailed:
    """The tokens did not move into custody (e.g. the client holds fewer): nothing is sold."""

    escrow_id: PaymentId
    reason: str


@dataclass(frozen=True, slots=True)
class ReleaseIndex:
    """Command: hand escrowed index tokens that were not sold back to the client (cancel or
    expiry of a redemption). Keyed by `escrow_id`: one release per escrow."""

    escrow_id: PaymentId
    client: ClientKey
    symbol: Symbol
    quantity: Decimal


ChainInput = (
    DepositObserved
    | RouteCostQuoted
    | HopCompleted
    | HopFailed
    | HopStatusUnknown
    | HopReport
    | ResumeRoutes
    | MintConfirmed
    | MintFailed
    | BurnConfirmed
    | BurnFailed
    | WithdrawalCompleted
    | WithdrawalFailed
    | IndexEscrowed
    | IndexEscrowFailed
)
ChainCommand = (
    RouteCollateral
    | QueryHop
    | MintIndex
    | BurnIndex
    | WithdrawCollateral
    | EscrowIndex
    | ReleaseIndex
)
