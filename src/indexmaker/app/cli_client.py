"""The `indexmaker` client commands: talk FIX/JSON to a running service through the SDK
(server/client.py):

    indexmaker quote SY100 1000
    indexmaker deposit 0x70997970c51812dc3a010c7d01b50e0d17dc79c8 1000
    indexmaker order SY100 buy 1000 --wait
    indexmaker cancel SY100 CLIENT_ORDER_ID 50
    indexmaker watch

The wallet key comes from `--key-file PATH`, `--test-key N` (anvil's public test accounts,
for local use only) or the environment variable INDEXMAKER_KEY, in that order; `quote` needs
none (quotes are unsigned: a throw-away address asks). Output is plain lines, whole, on a
terminal or not. Exit status: 0 done, 1 refused or failed, 2 bad input.

This module registers the commands, checks their input and runs them; what each does once
connected is `cli_orders.py`, how it prints `cli_output.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexmaker.app.cli_args import Parser, seconds_arg, whole_number
from indexmaker.core.money import INDEX_TOKEN_DECIMALS

# The SDK's defaults without the SDK itself (aiohttp, signing): every command starts faster.
from indexmaker.server.client_requests import (
    DEFAULT_CHAIN_ID,
    DEFAULT_URL,
    amount_decimals,
)

if TYPE_CHECKING:
    from indexmaker.server.client import IndexMakerClient

KEY_ENV = "INDEXMAKER_KEY"
URL_ENV = "INDEXMAKER_URL"
# anvil/hardhat's accounts 0-9 of the public "test … junk" mnemonic: known to everyone, so
# only for local chains and simulators. Account 0 is also the service's own local test key.
ANVIL_TEST_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)


class CliError(Exception):
    """A message for the user; `code` is the exit status (2: bad input, 1: refused/failed)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def add_client_commands(commands: Any) -> None:
    """Register the client subcommands on the `indexmaker` subparsers."""
    common = Parser(add_help=False)
    common.add_argument(
        "--url",
        help=f"the service's FIX endpoint (default ${URL_ENV} or {DEFAULT_URL})",
    )
    common.add_argument(
        "--timeout", type=seconds_arg, default=10.0, help="seconds per request (default 10)"
    )
    signing = Parser(add_help=False, parents=[common])
    keys = signing.add_mutually_exclusive_group()
    keys.add_argument("--key-file", type=Path, help="file holding the hex private key")
    keys.add_argument(
        "--test-key",
        type=int,
        metavar="N",
        choices=range(10),
        help="anvil's well-known test account N (0-9; local use only)",
    )
    signing.add_argument(
        "--chain-id",
        type=_chain_id,
        default=DEFAULT_CHAIN_ID,
        help=f"chain id (default {DEFAULT_CHAIN_ID})",
    )
    signing.add_argument(
        "--server-address", help="expected server address (default: the one GET /info names)"
    )

    quote = commands.add_parser(
        "quote", parents=[signing], help="index units an amount buys, or what a sale pays"
    )
    quote.add_argument("symbol")
    quote.add_argument(
        "amount", help="a buy: USDC, e.g. 1000 or 250.5; a sell: index units, e.g. 0.5"
    )
    quote.add_argument(
        "--side", default="buy", help="buy (default) or sell (a redemption: expected proceeds)"
    )
    order = commands.add_parser("order", parents=[signing], help="send a signed index order")
    order.add_argument("symbol")
    order.add_argument("side", help="buy/b/bid/1 or sell/s/ask/a/2")
    order.add_argument(
        "amount", help="a buy: USDC collateral, e.g. 1000; a sell: index units, e.g. 0.5"
    )
    order.add_argument("--id", dest="client_order_id", help="client_order_id (default: random)")
    order.add_argument(
        "--wait",
        action="store_true",
        help="print fills until the invoice (a sell's: the redemption invoice); exit 1 with the "
        "server's reason if the order is rejected after its acceptance",
    )
    order.add_argument(
        "--wait-timeout",
        type=seconds_arg,
        default=300.0,
        help="seconds --wait waits (default 300)",
    )
    order.add_argument(
        "--invoice-out",
        type=Path,
        metavar="FILE",
        help="with --wait: save the invoice as received (JSON; `indexmaker verify-invoice "
        "FILE` checks a mint invoice against the chain)",
    )
    from indexmaker.app.cli_redeem import add_sell_options

    add_sell_options(order)  # a sell's floor and approval (app/cli_redeem.py)
    cancel = commands.add_parser("cancel", parents=[signing], help="reduce or cancel an order")
    cancel.add_argument("symbol")
    cancel.add_argument("client_order_id")
    cancel.add_argument(
        "amount", help="what to take off the order: USDC of a buy, index units of a sell"
    )
    watch = commands.add_parser("watch", parents=[signing], help="live fills and invoices")
    watch.add_argument(
        "--history", action="store_true", help="also print what the server still holds"
    )
    watch.add_argument("--duration", type=seconds_arg, help="stop after this many seconds")
    watch.add_argument(
        "--invoice-out",
        type=Path,
        metavar="FILE",
        help="save every mint invoice shown, as received (a JSON list once there are two)",
    )
    deposit = commands.add_parser(
        "deposit",
        parents=[common],
        help="deposit USDC into custody from a local test key (the simulated chain: credit it)",
    )
    deposit.add_argument("address")
    deposit.add_argument("amount", help="USDC, e.g. 1000")


def run_client_command(args: argparse.Namespace) -> int:
    """Run one client command; its exit status (errors printed to stderr, one line)."""
    if args.command == "watch":
        import signal

        # Ctrl-C (SIGINT) is how `watch` ends, also when started from a shell or a make
        # recipe that left SIGINT ignored (Python keeps an inherited SIG_IGN).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return _client_command(args)
    except CliError as error:
        print(f"indexmaker {args.command}: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return 0 if args.command == "watch" else 130  # Ctrl-C is how `watch` ends


def _chain_id(text: str) -> int:
    value = whole_number("--chain-id")(text)
    if not 0 < value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a chain id in 1..4294967295, got {text!r}")
    return value


def service_url(args: argparse.Namespace) -> str:
    """--url, else $INDEXMAKER_URL, else the local default; CliError (exit 2) naming the
    source when it is not a ws:// or wss:// URL with a host."""
    from urllib.parse import urlsplit

    url, source = args.url, "--url"
    if url is None:
        url, source = os.environ.get(URL_ENV) or DEFAULT_URL, URL_ENV
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("ws", "wss") or not parts.hostname or not port_ok:
        raise CliError(
            f"{source}: expected ws://HOST:PORT/PATH (or wss://), e.g. {DEFAULT_URL}; got {url!r}",
            code=2,
        )
    return str(url)


def _client_command(args: argparse.Namespace) -> int:
    from indexmaker.server import client as sdk
    from indexmaker.server.wire_values import check_address, check_id, check_symbol

    # Bad input is refused before anything is sent, naming the field.
    try:
        args.url = service_url(args)
        key = "" if args.command == "deposit" else _private_key(args)
        if hasattr(args, "symbol"):
            check_symbol(args.symbol)
        if hasattr(args, "side"):
            sdk.parse_side(args.side)
        if hasattr(args, "amount"):
            # A cancel has no side: a sell's index units may have 18 decimals (the server
            # holds a buy's cancel to USDC's 6, with a reason).
            decimals = (
                INDEX_TOKEN_DECIMALS
                if args.command == "cancel"
                else amount_decimals(getattr(args, "side", None))
            )
            sdk.amount_text(args.amount, decimals=decimals)
        if getattr(args, "min_proceeds", None) is not None:
            sdk.amount_text(args.min_proceeds, "min_proceeds")
        if getattr(args, "client_order_id", None) is not None:
            check_id("client_order_id", args.client_order_id)
        if args.command == "deposit":
            check_address(args.address)
    except ValueError as error:
        raise CliError(str(error), code=2) from None
    from indexmaker.app import cli_orders

    if args.command == "deposit":
        return _run(cli_orders.deposit(args))
    if args.command == "order":
        from indexmaker.app.cli_redeem import approve_custody, check_sell_options

        selling = sdk.parse_side(args.side).value == "sell"
        check_sell_options(args, selling)
        if args.invoice_out is not None and not args.wait:
            raise CliError("--invoice-out: only with --wait (the invoice it saves)", code=2)
        if args.approve:
            print(approve_custody(key, args.symbol, args.amount, args), flush=True)
    runner: Callable[[IndexMakerClient, argparse.Namespace], Awaitable[int]] = {
        "quote": cli_orders.quote,
        "order": cli_orders.order,
        "cancel": cli_orders.cancel,
        "watch": cli_orders.watch,
    }[args.command]
    client = sdk.IndexMakerClient(
        args.url,
        key,
        chain_id=args.chain_id,
        server_address=args.server_address,
        request_timeout=args.timeout,
        resume_from=0 if args.command == "watch" else None,
    )
    return _run(_with_client(client, args, runner))


def _private_key(args: argparse.Namespace) -> str:
    if args.key_file is not None:
        try:
            key: str = args.key_file.read_text().strip()
        except OSError as error:
            raise CliError(f"--key-file: {error.strerror}: {args.key_file}", code=2) from None
        source = f"--key-file {args.key_file}"
    elif args.test_key is not None:
        return str(ANVIL_TEST_KEYS[args.test_key])
    elif os.environ.get(KEY_ENV):
        key, source = os.environ[KEY_ENV].strip(), KEY_ENV
    elif args.command == "quote":
        # Quotes are unsigned (SPEC §5): a throw-away wallet only names an address to answer.
        import secrets

        return "0x" + secrets.token_hex(32)  # below the curve order but with ~2^-128 odds
    else:
        raise CliError(
            f"no wallet key: set {KEY_ENV}=0x…, or pass --key-file PATH "
            "(or --test-key N for anvil's public test account N, local use only)",
            code=2,
        )
    text = key[2:] if key[:2] in ("0x", "0X") else key
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise CliError(f"{source}: expected a 32-byte hex private key (64 hex digits)", code=2)
    return key


def _run(coroutine: Awaitable[int]) -> int:
    async def guarded() -> int:
        import aiohttp

        from indexmaker.server.client import (
            ClientError,
            NakError,
            RequestRejected,
            ServerSignatureError,
        )

        try:
            return await coroutine
        except NakError as error:
            raise CliError(f"refused by the server (NAK): {error.reason}") from None
        except RequestRejected as error:
            raise CliError(str(error)) from None
        except ServerSignatureError as error:
            raise CliError(f"not trusted: {error}") from None
        except aiohttp.ClientConnectorError as error:
            raise CliError(f"cannot reach the service ({error.os_error}); is it running?") from None
        except (aiohttp.ClientError, ClientError, TimeoutError) as error:
            raise CliError(str(error) or type(error).__name__) from None

    return asyncio.run(guarded())


async def _with_client(
    client: IndexMakerClient,
    args: argparse.Namespace,
    runner: Callable[[IndexMakerClient, argparse.Namespace], Awaitable[int]],
) -> int:
    await client.connect()
    try:
        return await runner(client, args)
    finally:
        await client.close()
