"""`indexmaker exchange-sim`: options (the market model's among them) and the entry point."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

from indexmaker.observability.logging import register_secret
from indexmaker.venues.binance_sim.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    HOT_WALLET_KEY_ENV,
    TEST_ED25519_API_KEY,
    TEST_ED25519_SEED,
    TEST_HMAC_API_KEY,
    TEST_HMAC_SECRET,
    ChainWatchConfig,
    LimitConfig,
    MarketConfig,
    SimConfig,
)
from indexmaker.venues.binance_sim.order_store import RetentionConfig

EPILOG = f"""\
Default test keys (public: for this simulator only, see docs/exchange-sim.md):
  HMAC     api key {TEST_HMAC_API_KEY}
           secret  {TEST_HMAC_SECRET}
  Ed25519  api key {TEST_ED25519_API_KEY}
           private key seed (hex) {TEST_ED25519_SEED}
Endpoints: REST http://HOST:PORT/api/v3/..., WebSocket API ws://HOST:PORT/ws-api/v3,
streams ws://HOST:PORT/ws/<stream> and /stream?streams=a/b, faults POST /sim/faults.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"bind address (default {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port for REST and WebSocket (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    market = parser.add_argument_group("market model")
    market.add_argument(
        "--seed", type=int, default=7, help="random seed of the synthetic market (default 7)"
    )
    market.add_argument(
        "--indexes",
        default="SY100,SYAI,SYAZ,SYDF,SYL2,SYME",
        help="bundled indexes whose pairs are listed (default all six)",
    )
    market.add_argument(
        "--symbols",
        default="",
        help="only these pairs, comma separated (default: every pair of the indexes)",
    )
    market.add_argument(
        "--levels", type=int, default=20, help="synthetic price levels per side (default 20)"
    )
    market.add_argument(
        "--depth-usdc",
        default="2000:40000",
        help="quote value range of one level, LOW:HIGH (default 2000:40000)",
    )
    market.add_argument(
        "--level-spacing",
        default="0.0004",
        help="gap between levels as a share of the mid (default 0.0004)",
    )
    market.add_argument(
        "--volatility",
        default="0.0005",
        help="largest mid move per update as a share of the mid (default 0.0005)",
    )
    market.add_argument(
        "--updates-per-second",
        type=float,
        default=10.0,
        help="book updates per symbol per second, at most 10 (default 10)",
    )
    market.add_argument(
        "--changes-per-update",
        type=int,
        default=3,
        help="levels whose size changes per update (default 3)",
    )
    market.add_argument(
        "--replay",
        type=Path,
        help="replay recorded depth (JSON lines) instead of the synthetic market",
    )
    market.add_argument(
        "--replay-speed", type=float, default=1.0, help="replay speed factor (default 1)"
    )
    venue = parser.add_argument_group("venue rules")
    venue.add_argument("--maker-fee", default="0.001", help="maker commission rate (default 0.001)")
    venue.add_argument("--taker-fee", default="0.001", help="taker commission rate (default 0.001)")
    venue.add_argument(
        "--commission-asset",
        choices=("received", "quote"),
        default="received",
        help="buyers pay in base and sellers in quote (received), or all in quote",
    )
    venue.add_argument(
        "--min-notional-filter", choices=("NOTIONAL", "MIN_NOTIONAL"), default="NOTIONAL"
    )
    venue.add_argument(
        "--weight-limit", type=int, default=6000, help="REQUEST_WEIGHT per minute (default 6000)"
    )
    venue.add_argument("--orders-10s", type=int, default=50, help="ORDERS per 10 s (default 50)")
    venue.add_argument(
        "--orders-day", type=int, default=160_000, help="ORDERS per day (default 160000)"
    )
    venue.add_argument(
        "--ban-after",
        type=int,
        default=5,
        help="requests refused with 429 in a window before a 418 ban (default 5)",
    )
    venue.add_argument(
        "--ban-seconds",
        type=int,
        default=120,
        help="first ban length, doubling per ban (default 120)",
    )
    venue.add_argument(
        "--ping-seconds", type=float, default=20.0, help="server ping interval (default 20)"
    )
    venue.add_argument(
        "--pong-timeout",
        type=float,
        default=60.0,
        help="close a connection whose last pong is older than this (default 60)",
    )
    kept = parser.add_argument_group("order and trade retention (bounded memory)")
    kept.add_argument(
        "--archive-after-s",
        type=int,
        default=90 * 86400,
        help="archive closed unfilled orders after this (queries answer -2026; default 90 days)",
    )
    kept.add_argument(
        "--keep-closed-orders",
        type=int,
        default=10_000,
        help="closed orders kept for queries, oldest forgotten first (default 10000)",
    )
    kept.add_argument(
        "--keep-trades", type=int, default=10_000, help="myTrades history per account (10000)"
    )
    kept.add_argument(
        "--keep-transfers",
        type=int,
        default=10_000,
        help="finished deposits and withdrawals kept in their histories (default 10000)",
    )
    state = parser.add_argument_group("state across restarts")
    state.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="keep accounts, balances, orders and trades in this directory: a restart "
        "continues the same venue (default: a fresh venue on every start)",
    )
    state.add_argument(
        "--state-every-ms",
        type=int,
        default=1000,
        help="save a changed state at most this often, and at shutdown (default 1000)",
    )
    add_chain_arguments(parser)


def add_chain_arguments(parser: argparse.ArgumentParser) -> None:
    chain = parser.add_argument_group(
        "trading chain (deposits credited from chain logs; withdrawals on its network paid "
        f"from the hot wallet whose key is in ${HOT_WALLET_KEY_ENV}, when set)"
    )
    chain.add_argument(
        "--chain-rpc", help="JSON-RPC URL of the trading chain to watch (e.g. the 8453 anvil)"
    )
    chain.add_argument("--chain-usdc", help="address of the USDC token on that chain")
    chain.add_argument(
        "--chain-network", default="BASE", help="network name of that chain (default BASE)"
    )
    chain.add_argument(
        "--chain-confirmations",
        type=int,
        default=1,
        help="confirmations before a deposit is credited (default 1: its own block)",
    )
    chain.add_argument(
        "--chain-start-block", type=int, default=0, help="first block to read (default 0)"
    )


def chain_config_from(args: argparse.Namespace) -> ChainWatchConfig | None:
    """The chain watch, or None without --chain-rpc; ValueError naming the option."""
    if not args.chain_rpc and not args.chain_usdc:
        return None
    if not args.chain_rpc or not args.chain_usdc:
        raise ValueError("--chain-rpc, --chain-usdc: give both or neither")
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", args.chain_usdc):
        raise ValueError("--chain-usdc: expected 0x followed by 40 hex digits")
    if not args.chain_rpc.startswith(("http://", "https://")):
        raise ValueError("--chain-rpc: expected an http:// or https:// URL")
    if args.chain_confirmations < 1:
        raise ValueError("--chain-confirmations: must be at least 1 (the deposit's own block)")
    if args.chain_start_block < 0:
        raise ValueError("--chain-start-block: must be >= 0")
    if args.chain_network not in ("BASE", "ARBITRUM", "ETH"):
        raise ValueError("--chain-network: one of BASE, ARBITRUM, ETH")
    return ChainWatchConfig(
        rpc_url=args.chain_rpc,
        token=args.chain_usdc,
        network=args.chain_network,
        confirmations=args.chain_confirmations,
        start_block=args.chain_start_block,
        hot_wallet_key=_hot_wallet_key(),
    )


def _hot_wallet_key() -> str | None:
    """The hot wallet's key from the environment (never an option: it would show in `ps`)."""
    key = os.environ.get(HOT_WALLET_KEY_ENV) or None
    if key is not None:
        if not re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", key):
            raise ValueError(f"{HOT_WALLET_KEY_ENV}: expected 32 bytes of hex")
        register_secret(key)  # masked in any log line that quotes it
    return key


def config_from(args: argparse.Namespace) -> SimConfig:
    """The settings, or ValueError naming the option."""
    low, _, high = args.depth_usdc.partition(":")
    try:
        depth = (int(low), int(high))
    except ValueError:
        raise ValueError("--depth-usdc: expected LOW:HIGH integers") from None
    if not 0 < depth[0] <= depth[1]:
        raise ValueError("--depth-usdc: need 0 < LOW <= HIGH")
    if args.levels < 1 or args.changes_per_update < 0:
        raise ValueError("--levels, --changes-per-update: must be at least 1 and 0")
    if args.ping_seconds <= 0 or args.pong_timeout <= 0:
        raise ValueError("--ping-seconds, --pong-timeout: must be > 0")
    if not 0 < args.updates_per_second <= 10:
        raise ValueError("--updates-per-second: must be in (0, 10]")
    if not 0 <= args.port <= 65535:
        raise ValueError("--port: must be 0-65535")
    if args.archive_after_s < 0:
        raise ValueError("--archive-after-s: must be >= 0")
    for option, value in (
        ("--keep-closed-orders", args.keep_closed_orders),
        ("--keep-trades", args.keep_trades),
        ("--keep-transfers", args.keep_transfers),
    ):
        if value < 1:
            raise ValueError(f"{option}: must be at least 1")
    if args.state_every_ms < 1:
        raise ValueError("--state-every-ms: must be at least 1")
    if args.state_dir is not None and args.state_dir.exists() and not args.state_dir.is_dir():
        raise ValueError(f"--state-dir: not a directory: {args.state_dir}")
    if args.replay is not None and not args.replay.is_file():
        raise ValueError(f"--replay: no such file {args.replay}")
    return SimConfig(
        host=args.host,
        port=args.port,
        market=MarketConfig(
            seed=args.seed,
            indexes=tuple(s.strip() for s in args.indexes.split(",") if s.strip()),
            symbols=tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip()),
            levels=args.levels,
            depth_usdc=depth,
            level_spacing=_decimal("--level-spacing", args.level_spacing),
            volatility=_decimal("--volatility", args.volatility),
            updates_per_second=args.updates_per_second,
            changes_per_update=args.changes_per_update,
            replay=args.replay,
            replay_speed=args.replay_speed,
        ),
        limits=LimitConfig(
            weight_per_minute=args.weight_limit,
            orders_per_10s=args.orders_10s,
            orders_per_day=args.orders_day,
            refusals_before_ban=args.ban_after,
            first_ban_seconds=args.ban_seconds,
        ),
        maker_commission=_decimal("--maker-fee", args.maker_fee),
        taker_commission=_decimal("--taker-fee", args.taker_fee),
        commission_asset=args.commission_asset,
        min_notional_filter=args.min_notional_filter,
        ws_ping_seconds=args.ping_seconds,
        ws_pong_timeout_seconds=args.pong_timeout,
        retention=RetentionConfig(
            archive_after_ms=args.archive_after_s * 1000,
            max_closed_orders=args.keep_closed_orders,
            max_trades=args.keep_trades,
            max_transfers=args.keep_transfers,
        ),
        chain=chain_config_from(args),
        state_dir=args.state_dir,
        state_every_ms=args.state_every_ms,
    )


def _decimal(option: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{option}: not a decimal number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{option}: must be a finite number >= 0")
    return value


def run(args: argparse.Namespace) -> int:
    import sys

    from indexmaker.observability.logging import setup_logging
    from indexmaker.venues.binance_sim.server import serve
    from indexmaker.venues.binance_sim.state_file import StateError

    try:
        config = config_from(args)
    except ValueError as error:
        print(f"indexmaker exchange-sim: {error}", file=sys.stderr)
        return 2
    setup_logging("INFO")
    try:
        asyncio.run(serve(config))
    except StateError as error:  # the state directory's file cannot be used: nothing started
        print(f"indexmaker exchange-sim: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"indexmaker exchange-sim: {error}", file=sys.stderr)
        return 1
    return 0
