"""Selling (redeeming) index tokens from the command line (issue 12):

    indexmaker order SYMBOL sell UNITS [--min-proceeds USDC] [--approve [--deployment FILE]]
                     [--wait] (--test-key N | --key-file PATH | $INDEXMAKER_KEY)

A sell names index units; the service pulls them into custody before selling, so the wallet
must first approve custody for them on the trading chain (8453): `--approve` sends that
`IndexToken.approve(custody, units)` from the order's own key, with the addresses of the
deployment file (`make deploy`: .chains/deployment.json). `--min-proceeds` is the least USDC
to be paid: nothing is sold while the units would pay less at the sell limit prices, net of
the exchange, redemption and expected withdrawal fees (SDK `new_order`; engine/sell_proceeds.py).
`--wait` prints the redemption's progress and its invoice (units burned with their
transactions, proceeds, fees, the payout transaction).
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from indexmaker.app.cli_client import CliError, service_url
from indexmaker.app.cli_output import print_fields

TRADING_CHAIN_ID = 8453
# A RedemptionInvoice's figures, in the order they are shown (CLI and demo).
INVOICE_FIELDS = (
    "quantity",
    "redeemed_quantity",
    "returned_quantity",
    "arrival_mid",
    "vwap",
    "slippage_bps",
    "gross_proceeds",
    "exchange_fee",
    "redemption_fee",
    "withdrawal_fee",
    "net_paid",
    "realised_pnl",
    "payout_tx",
    "basket_version",
)


def add_sell_options(order: argparse.ArgumentParser) -> None:
    """`--min-proceeds`, `--approve` and `--deployment` on `order` (sells only)."""
    order.add_argument(
        "--min-proceeds",
        help="sell: the least USDC to be paid; before each batch, nothing is sold while the "
        "units would pay less at the sell limit prices net of the exchange fee (fee_factor), "
        "the redemption fee and the expected withdrawal fee (a sell quote's "
        "expected_proceeds is that figure)",
    )
    order.add_argument(
        "--approve",
        action="store_true",
        help="sell: first approve custody on chain 8453 for the units (a transaction)",
    )
    order.add_argument(
        "--deployment",
        type=Path,
        help="with --approve: the deployment file (default: the chains the service at --url "
        "names in GET /info, else make deploy's .chains/deployment.json)",
    )


def check_sell_options(args: argparse.Namespace, selling: bool) -> None:
    """CliError (exit 2) for a sell option on a buy."""
    if selling:
        return
    for name, given in (("--min-proceeds", args.min_proceeds), ("--approve", args.approve)):
        if given:
            raise CliError(f"{name}: only a sell (redemption) takes it", code=2)


def trading_section(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Chain 8453's deployment section for `--approve` and where it came from: `--deployment`,
    else GET /info of the service at --url (a serve on local chains publishes them), else
    make deploy's `.chains/deployment.json`. CliError 2 when none has the chain."""
    from indexmaker.app.cli_chain import load_section, usable_section
    from indexmaker.app.cli_deposit import server_info
    from indexmaker.chain.anvil import RUN_DIR

    if args.deployment is not None:
        return load_section(args.deployment, TRADING_CHAIN_ID), str(args.deployment)
    info = server_info(args)
    if info is not None and "chains" in info:
        source = f"GET /info of {args.url}"
        return usable_section(info, TRADING_CHAIN_ID, source), source
    path = RUN_DIR / "deployment.json"
    if not path.exists():
        raise CliError(
            f"deployment: the service at {service_url(args)} names no chains in GET /info "
            f"(not running, or on the simulated chain) and {path} does not exist: start "
            "`indexmaker serve`, pass --url or --deployment FILE, or make deploy",
            2,
        )
    return load_section(path, TRADING_CHAIN_ID), str(path)


def approve_custody(key: str, symbol: str, amount: str, args: argparse.Namespace) -> str:
    """Approve custody for `amount` index units of `symbol` from `key`'s wallet on 8453 (the
    units' allowance is set to exactly that), on the chain `trading_section` finds; the summary
    line. CliError 2 on bad input."""
    from eth_account import Account

    from indexmaker.app.cli_chain import _contract, _web3
    from indexmaker.chain.deploy import DeployError, transact
    from indexmaker.core.money import index_to_units, units_to_index

    try:
        units = index_to_units(Decimal(amount))
    except (InvalidOperation, ValueError):
        raise CliError(f"amount: not an index quantity: {amount!r}", code=2) from None
    section, source = trading_section(args)
    token_address = section.get("index_tokens", {}).get(symbol)
    if not isinstance(token_address, str):
        raise CliError(f"symbol: {source} has no index token for {symbol}", code=2)
    account = Account.from_key(key)
    w3 = _web3(section, account)
    token = _contract(w3, token_address, "IndexToken")
    held = int(token.functions.balanceOf(account.address).call())
    if held < units:
        raise CliError(f"{account.address} holds {units_to_index(held)} {symbol}, not {amount}")
    try:
        receipt = transact(w3, token.functions.approve(section["custody"], units), "approve")
    except DeployError as exc:
        raise CliError(str(exc)) from None
    return (
        f"approved custody {section['custody']} for {amount} {symbol} on chain 8453 "
        f"(tx {receipt['transactionHash'].to_0x_hex()})"
    )


def redemption_line(event: Any) -> str:
    """One RedemptionFill as a line."""
    code = f"{event.reason_code}: " if getattr(event, "reason_code", None) else ""
    why = f" ({code}{event.reason})" if event.reason else ""
    return (
        f"redemption {event.client_order_id}: {event.status}{why}, sold "
        f"{event.sold_quantity:f} of {event.quantity:f}, proceeds {event.proceeds:f} USDC"
    )


def print_redemption(invoice: Any, tag: str = "") -> None:
    """The RedemptionInvoice, field by field, with its burns and lots (`tag`: after the
    first line, e.g. " (resent)")."""
    print(
        f"redeemed {invoice.redeemed_quantity:f} {invoice.symbol} for {invoice.client_order_id}"
        f"{tag}"
    )
    print_fields(invoice, INVOICE_FIELDS)
    for burn in invoice.burns:
        print(f"  burn {burn.payment_id}: {burn.quantity:f} tx {burn.tx_hash}")
    print(f"  lots sold: {len(invoice.lots)}")
    for lot in invoice.lots:
        how = " (crossed)" if lot.crossed else ""
        print(
            f"  lot {lot.asset} #{lot.lot_id}: {lot.quantity:f} at {lot.sale_price:f} "
            f"(cost {lot.cost_price:f}), fee {lot.fee:f}, pnl {lot.pnl:f} USDC{how}"
        )
    sys.stdout.flush()


def show_redemption_event(event: Any, tag: str = "") -> bool:
    """Print a RedemptionFill (a line with status and reason) or a RedemptionInvoice (in
    full) as `indexmaker watch` shows them; False for any other event."""
    from indexmaker.server.client_redemption import RedemptionFill, RedemptionInvoice

    if isinstance(event, RedemptionFill):
        print(redemption_line(event) + tag, flush=True)
    elif isinstance(event, RedemptionInvoice):
        print_redemption(event, tag)
    else:
        return False
    return True
