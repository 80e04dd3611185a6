"""What both demos share: the indexes, order sizing, the minted line, invoice JSON, summary table.

The in-process demo (demo.py) sees the core's MintInvoice, the socket demo (demo_sockets.py) the
SDK's Invoice; both carry the same figures under the same names (`InvoiceFigures`), and only
their lots and timestamps differ in shape, so the callers hand those over already unpacked.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol

from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table

from indexmaker.core.money import round_usdc
from indexmaker.engine.economics import IssuerPosition

DEMO_INDEXES = ("SY100", "SYAI", "SYL2")
ZERO = Decimal(0)
SUMMARY_TITLE = "Session summary (USDC, 2 decimals shown; exact figures in the files)"

# One lot of an invoice as the JSON file shows it: (asset, lot_id, price, quantity, fee).
LotFigures = tuple[str, Any, Decimal, Decimal, Decimal]


class InvoiceFigures(Protocol):
    """The figures of a mint invoice, core (MintInvoice) or SDK (Invoice) alike."""

    @property
    def client_order_id(self) -> str: ...
    @property
    def payment_id(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def filled_quantity(self) -> Decimal: ...
    @property
    def total_amount(self) -> Decimal: ...
    @property
    def amount_paid(self) -> Decimal: ...
    @property
    def amount_remaining(self) -> Decimal: ...
    @property
    def management_fee(self) -> Decimal: ...
    @property
    def assets_value(self) -> Decimal: ...
    @property
    def exchange_fee(self) -> Decimal: ...
    @property
    def fill_rate(self) -> Decimal: ...


def order_sizes(rng: random.Random, budget: Decimal) -> Iterator[Decimal]:
    """2 to 5 order sizes that spend 20-70% of what is left each, while 100 USDC or more is.

    A generator, so the caller's own draws from `rng` interleave with these exactly as if the
    loop were written inline (the same seed gives the same session).
    """
    for _ in range(rng.randint(2, 5)):
        if budget < 100:
            return
        size = min(budget, Decimal(int(budget * Decimal(rng.uniform(0.2, 0.7)))) + 50)
        budget -= size
        yield size


def minted_line(invoice: InvoiceFigures, who: str) -> str:
    return (
        f"[green]minted[/] {invoice.filled_quantity:.8f} {invoice.symbol} to {who}… "
        f"({invoice.client_order_id}): paid {invoice.amount_paid:,.2f}, "
        f"fees {invoice.management_fee + invoice.exchange_fee:,.2f}, "
        f"fill rate {invoice.fill_rate * 100:.4f}%"
    )


def invoice_json(
    invoice: InvoiceFigures, lots: Iterable[LotFigures], timestamp: str
) -> dict[str, Any]:
    return {
        "client_order_id": invoice.client_order_id,
        "payment_id": invoice.payment_id,
        "symbol": invoice.symbol,
        "filled_quantity": str(invoice.filled_quantity),
        "total_amount": str(invoice.total_amount),
        "amount_paid": str(invoice.amount_paid),
        "amount_remaining": str(invoice.amount_remaining),
        "management_fee": str(invoice.management_fee),
        "assets_value": str(invoice.assets_value),
        "exchange_fee": str(invoice.exchange_fee),
        "fill_rate": str(invoice.fill_rate),
        "lots": [
            {
                "asset": asset,
                "lot_id": lot_id,
                "price": str(price),
                "quantity": str(quantity),
                "fee": str(fee),
            }
            for asset, lot_id, price, quantity, fee in lots
        ],
        "timestamp": timestamp,
    }


def summary_table(columns: Iterable[str]) -> Table:
    """The end-of-session table: client and index units left-aligned, figures right-aligned."""
    table = Table(title=SUMMARY_TITLE)
    for column in columns:
        table.add_column(column, justify="left" if column in ("client", "index units") else "right")
    return table


# ---------------------------------------------------------------- terminal or plain output

# Wide enough that no line or table of ours is ever cut when the output is a pipe or a file.
_PLAIN_WIDTH = 1_000


def demo_console() -> Console:
    """rich's console on a terminal; into a pipe or a file, plain complete lines instead:
    no 80-column wrapping, no colour codes (rich's own default there is 80 columns)."""
    console = Console()
    if console.is_terminal:
        return console
    return Console(width=_PLAIN_WIDTH, soft_wrap=True, no_color=True, highlight=False)


def heading(console: Console, text: str) -> None:
    """A rule with the text on a terminal; the text alone on its line otherwise."""
    if console.is_terminal:
        console.rule(text)
    else:
        console.print(text)


def show_table(console: Console, table: Table) -> None:
    """A boxed table on a terminal; otherwise its title on its own line above aligned columns
    without box characters, so the output reads (and greps) as plain text."""
    if not console.is_terminal:
        console.print()
        if table.title:
            console.print(table.title)
        table.title = None
        table.box = None
    console.print(table)


class LiveView:
    """rich's Live on a terminal (redrawn in place); otherwise nothing is redrawn: lines are
    printed as they come and the last state once, at the end, as a plain table."""

    def __init__(self, console: Console, renderable: Table) -> None:
        self.console = console
        self._last = renderable
        self._live = (
            Live(renderable, console=console, refresh_per_second=8) if console.is_terminal else None
        )

    def __enter__(self) -> LiveView:
        if self._live is not None:
            self._live.__enter__()
        return self

    def update(self, renderable: Table) -> None:
        self._last = renderable
        if self._live is not None:
            self._live.update(renderable)

    def print(self, line: RenderableType) -> None:
        self.console.print(line)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(kind, error, trace)
            self.console.print()  # the next table starts on a line of its own
        else:
            show_table(self.console, self._last)


# SPEC §3 / issue 7: over a session, the exchange notional bought stays within 1% of the
# notional delivered to clients; the rest is issuer inventory, bounded by the venue minimums.
BOUGHT_TO_DELIVERED_GOAL = Decimal("1.01")


def issuer_summary(position: IssuerPosition, delivered: Decimal) -> dict[str, Any]:
    """The issuer's side of a session: notional bought on the venue vs delivered to clients
    (Σ invoices' assets_value), and the inventory no order was given (USDC)."""
    ratio = position.bought_notional / delivered if delivered > 0 else None
    return {
        "bought_notional": str(round_usdc(position.bought_notional)),
        "delivered_notional": str(round_usdc(delivered)),
        "bought_to_delivered": None if ratio is None else str(ratio.quantize(Decimal("1e-6"))),
        "bought_to_delivered_goal": str(BOUGHT_TO_DELIVERED_GOAL),
        "unassigned_inventory_cost": str(round_usdc(position.unassigned_cost)),
        "unassigned_inventory_value": str(round_usdc(position.unassigned_value)),
        "unassigned_inventory_assets": position.unassigned_assets,
    }


def issuer_line(issuer: dict[str, Any]) -> str:
    ratio = issuer["bought_to_delivered"]
    shown = "-" if ratio is None else f"{Decimal(ratio):.4f}"
    return (
        f"issuer: bought {Decimal(issuer['bought_notional']):,.2f} USDC on the venue for "
        f"{Decimal(issuer['delivered_notional']):,.2f} delivered to clients (ratio {shown}, "
        f"goal <= {issuer['bought_to_delivered_goal']}); unassigned inventory "
        f"{Decimal(issuer['unassigned_inventory_value']):,.2f} USDC across "
        f"{issuer['unassigned_inventory_assets']} assets"
    )
