"""The simulator's settings and its documented, public test keys (docs/exchange-sim.md).

The HMAC pair is the example key of Binance's own documentation (rest-api.md "SIGNED Endpoint
Examples"), so the docs' published signature vectors verify against the default key store.
The Ed25519 pair is ours: its private key is published here and in the docs, so it is a test
key and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from indexmaker.venues.binance_sim.order_store import RetentionConfig

HOT_WALLET_KEY_ENV = "EXCHANGE_SIM_HOT_WALLET_KEY"  # chain_withdrawals.py's key, when set
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090

TEST_HMAC_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
TEST_HMAC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
TEST_ED25519_API_KEY = "imSimEd25519TestKey0000000000000000000000000000000000000000000001"
# Raw 32-byte seed (hex) of the Ed25519 test key; the same key as PKCS#8 PEM below.
TEST_ED25519_SEED = "3441a7f31536ccb3a6b46ef9c03072b88ecd9e6be2be6bd26b71a910f3e80bc3"
TEST_ED25519_PRIVATE_PEM = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIDRBp/MVNsyzprRu+cAwcriOzZ5r4r5r0mtxqRDz6AvD
-----END PRIVATE KEY-----
"""
TEST_ED25519_PUBLIC_PEM = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA7GpbPpjuYc6dJCdPMsMB57B/l4LGSsLeiFJhvlBH8HM=
-----END PUBLIC KEY-----
"""
# A second account (HMAC) so tests can trade between two users of the simulator.
TEST_HMAC_API_KEY_2 = "imSimHmacTestKeyOfTheSecondAccount000000000000000000000000000002"
TEST_HMAC_SECRET_2 = "imSimHmacTestSecretOfTheSecondAccount00000000000000000000000002"


@dataclass(frozen=True, slots=True)
class LimitConfig:
    """exchangeInfo `rateLimits` (the docs' example values) and the ban policy."""

    weight_per_minute: int = 6000
    orders_per_10s: int = 50
    orders_per_day: int = 160_000
    raw_requests_per_5m: int = 61_000
    # Requests refused with 429 inside one window before the IP is banned (418).
    refusals_before_ban: int = 5
    first_ban_seconds: int = 120  # Binance: bans grow from 2 minutes to 3 days
    max_ban_seconds: int = 3 * 24 * 3600


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """The market model: a seeded synthetic market, or a replay of recorded depth."""

    seed: int = 7
    indexes: tuple[str, ...] = ("SY100", "SYAI", "SYAZ", "SYDF", "SYL2", "SYME")
    symbols: tuple[str, ...] = ()  # restrict to these pairs (empty: every pair of the indexes)
    levels: int = 20  # synthetic price levels per side
    depth_usdc: tuple[int, int] = (2_000, 40_000)  # quote value of one synthetic level
    level_spacing: Decimal = Decimal("0.0004")  # distance between levels, share of the mid
    volatility: Decimal = Decimal("0.0005")  # largest mid move per update, share of the mid
    updates_per_second: float = 10.0  # book updates per symbol per second (<= 10)
    changes_per_update: int = 3  # levels whose quantity changes in one update
    replay: Path | None = None  # JSON-lines depth file (docs/exchange-sim.md) instead
    replay_speed: float = 1.0


@dataclass(frozen=True, slots=True)
class ChainWatchConfig:
    """Which chain and token to watch: `rpc_url` (JSON-RPC over HTTP), `token` (the collateral
        token's address), credited as `coin` on `network` after `confirmations` blocks; withdrawals
    on `network` paid from `hot_wallet_key` when set."""

    rpc_url: str
    token: str
    network: str = "BASE"
    coin: str = "USDC"
    confirmations: int = 1
    start_block: int = 0
    poll_s: float = 0.25
    # The hot wallet that pays withdrawals on this chain (chain_withdrawals.py); None: they
    # are simulated. A secret: kept out of the repr.
    hot_wallet_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class SimConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    market: MarketConfig = field(default_factory=MarketConfig)
    limits: LimitConfig = field(default_factory=LimitConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)  # orders, trades kept
    maker_commission: Decimal = Decimal("0.001")
    taker_commission: Decimal = Decimal("0.001")
    # "received": buyers pay in the base asset, sellers in the quote asset (Binance without
    # BNB); "quote": every commission in the quote asset.
    commission_asset: str = "received"
    min_notional_filter: str = "NOTIONAL"  # or "MIN_NOTIONAL" (older symbols)
    initial_quote: Decimal = Decimal("10000000")  # USDC of each test account
    initial_base_usdc: Decimal = Decimal("250000")  # worth of every base asset per account
    depth_interval_ms: int = 100  # the @depth@100ms cadence
    ws_ping_seconds: float = 20.0
    ws_pong_timeout_seconds: float = 60.0
    stream_msgs_per_second: int = 5
    max_streams: int = 1024
    user_event_delay_ms: int = 0
    chain: ChainWatchConfig | None = None  # watch the trading chain for deposits
    # Accounts, orders and trades kept in this directory across restarts (state_file.py);
    # None: a fresh venue on every start.
    state_dir: Path | None = None
    state_every_ms: int = 1000  # while something changed, saved at most this often
