"""FIX/JSON protocol over real sockets (SPEC §5), checked from the wire side.

An independent client: raw aiohttp WebSockets, frames built here with `json`, requests signed
with eth-account's `sign_message`, every server frame's signature checked with eth-account's
`recover_message` against the key published at GET /info. Nothing here uses the SDK or the
server's own encoder or signer, so a bug shared by both halves of our code still shows.

Each test runs its own in-process `Service` on an ephemeral loopback port with fast simulated
peers (an order goes from deposit to MintInvoice in well under a second) and stops it; every
receive is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey

from indexmaker.app.config import ServiceConfig, SimConfig
from indexmaker.app.service import SOURCE_CHAIN_ID, Service
from indexmaker.core.ids import ClientOrderId, client_key
from indexmaker.engine.config import SolverConfig
from indexmaker.engine.throttle import RateLimit
from indexmaker.server.session import SessionConfig
from indexmaker.server.ws_server import ServerConfig

CHAIN = SOURCE_CHAIN_ID  # deposits on /sim/deposit credit this chain's client key
RECV_TIMEOUT = 5.0
QUIET = 0.3  # "nothing else arrives" is checked over this long
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ORDER = {"symbol": "SY100", "side": "buy", "amount": "1000"}
QUOTE = {"symbol": "SY100", "side": "bid", "amount": "100"}
MS = timedelta(milliseconds=1)


# ---------------------------------------------------------------- service


def fast_config(**server: Any) -> ServiceConfig:
    """Simulated peers in milliseconds, the venue's order-rate cap out of the way."""
    return ServiceConfig(
        server=ServerConfig(port=0, allowed_chain_ids=frozenset({CHAIN}), **server),
        solver=SolverConfig(
            mint_idle=300 * MS,
            order_rate_limits=(RateLimit("orders_10s", 100_000, timedelta(seconds=10)),),
        ),
        sim=SimConfig(
            book_refresh=timedelta(seconds=1),
            exchange_latency=5 * MS,
            bridge_delay=50 * MS,
            wallet_delay=30 * MS,
            mint_delay=20 * MS,
            deposit_endpoint=True,
        ),
    )


@dataclass
class Live:
    service: Service
    http: aiohttp.ClientSession
    url: str
    base: str
    server_address: str
    server_public_key: str
    stopped: bool = False

    async def connect(self, account: LocalAccount | None = None, url: str | None = None) -> Wire:
        ws = await self.http.ws_connect(url or self.url, timeout=aiohttp.ClientWSTimeout(5))
        return Wire(ws, account or Account.create(), self)

    async def deposit(self, address: str, amount: str) -> None:
        async with self.http.post(
            self.base + "/sim/deposit", json={"address": address, "amount": amount}
        ) as response:
            assert response.status == 200, await response.text()

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await self.service.stop()


async def start_live(config: ServiceConfig) -> Live:
    service = Service(config)
    await service.start()
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    url = service.server.url
    assert url.startswith("ws://127.0.0.1:")
    base = url.rsplit("/", 1)[0].replace("ws://", "http://", 1)
    async with http.get(base + "/info") as response:
        info = await response.json()
    return Live(service, http, url, base, info["server_address"], info["server_public_key"])


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    live = await start_live(fast_config())
    try:
        yield live
    finally:
        await live.http.close()
        await live.stop()


# ---------------------------------------------------------------- independent wire client


def now_rfc3339(offset: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + offset).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def public_key_of(account: LocalAccount) -> str:
    return "0x04" + PrivateKey(bytes(account.key)).public_key.to_bytes().hex()


def eth_sign(account: LocalAccount, msg_type: str, signed_id: str) -> str:
    text = '{"msg_type":"' + msg_type + '","id":"' + signed_id + '"}'
    return (
        "0x" + bytes(Account.sign_message(encode_defunct(text=text), account.key).signature).hex()
    )


def signed_id_of(msg_type: str, body: dict[str, Any]) -> str:
    if "client_order_id" in body:
        return str(body["client_order_id"])
    if "client_quote_id" in body:
        return str(body["client_quote_id"])
    if "challenge" in body:  # ResendRequest and the server's Challenge
        return str(body["challenge"])
    return str(body.get("ref_seq_num"))


@dataclass
class Wire:
    """One raw session: builds, signs and sends frames; checks every frame it receives."""

    ws: aiohttp.ClientWebSocketResponse
    account: LocalAccount
    live: Live
    chain_id: int = CHAIN
    seq: int = 0  # last seq_num sent and ACKed
    server_seq_num: int = 0  # last per-session seq_num received
    received: list[dict[str, Any]] = field(default_factory=list)
    _backlog: list[dict[str, Any]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.account.address

    @property
    def key(self) -> Any:
        return client_key(self.chain_id, self.address)

    def build(
        self,
        msg_type: str,
        body: dict[str, Any],
        *,
        seq: int | None = None,
        sign: bool | None = None,
        timestamp: str | None = None,
        signer: LocalAccount | None = None,
    ) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "standard_header": {
                "msg_type": msg_type,
                "sender_comp_id": "CLIENT",
                "target_comp_id": "SERVER",
                "seq_num": self.seq + 1 if seq is None else seq,
                "timestamp": timestamp or now_rfc3339(),
            },
            "chain_id": self.chain_id,
            "address": self.address,
            **body,
        }
        if sign is None:
            sign = msg_type not in ("NewQuoteRequest", "CancelQuoteRequest")
        if sign:
            by = signer or self.account
            frame["standard_trailer"] = {
                "public_key": [public_key_of(by)],
                "signature": [eth_sign(by, msg_type, signed_id_of(msg_type, body))],
            }
        else:
            frame["standard_trailer"] = {"public_key": [], "signature": []}
        return frame

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        if isinstance(frame, dict):
            frame = json.dumps(frame, separators=(",", ":"))
        if isinstance(frame, bytes):
            frame = frame.decode()
        await self.ws.send_str(frame)

    async def _next(self, timeout: float) -> dict[str, Any]:
        message = await self.ws.receive(timeout=timeout)
        assert message.type is aiohttp.WSMsgType.TEXT, (message.type, message.data, message.extra)
        frame: dict[str, Any] = json.loads(message.data)
        self.check_server_frame(frame)
        self.received.append(frame)
        return frame

    def check_server_frame(self, frame: dict[str, Any]) -> None:
        header = frame["standard_header"]
        # Per-session outgoing seq: exactly +1 on every frame, whatever its kind.
        assert header["seq_num"] == self.server_seq_num + 1, (header, self.server_seq_num)
        self.server_seq_num = header["seq_num"]
        datetime.fromisoformat(header["timestamp"].replace("Z", "+00:00"))
        trailer = frame["standard_trailer"]
        assert trailer["public_key"] == [self.live.server_public_key]
        msg_type = header["msg_type"]
        text = '{"msg_type":"' + msg_type + '","id":"' + signed_id_of(msg_type, frame) + '"}'
        signature = bytes.fromhex(trailer["signature"][0].removeprefix("0x"))
        assert len(signature) == 64
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        assert s <= SECP256K1_N // 2, "server signature is not low-s"
        message = encode_defunct(text=text)
        signers = {Account.recover_message(message, vrs=(v, r, s)).lower() for v in (27, 28)}
        assert self.live.server_address.lower() in signers, f"bad server signature on {frame}"

    async def recv(self, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        if self._backlog:
            return self._backlog.pop(0)
        return await self._next(timeout)

    async def expect(
        self, msg_type: str, timeout: float = RECV_TIMEOUT, **fields: Any
    ) -> dict[str, Any]:
        """The next frame of that type with those fields; others are kept for later."""
        for i, frame in enumerate(self._backlog):
            if _matches(frame, msg_type, fields):
                return self._backlog.pop(i)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no {msg_type} {fields}; got {self.received[-5:]}")
            try:
                frame = await self._next(left)
            except TimeoutError:
                raise AssertionError(f"no {msg_type} {fields}; got {self.received[-5:]}") from None
            if _matches(frame, msg_type, fields):
                return frame
            self._backlog.append(frame)

    async def nothing_more(self, quiet: float = QUIET) -> None:
        assert not self._backlog, self._backlog
        try:
            frame = await self._next(quiet)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {frame}")

    async def request(self, msg_type: str, body: dict[str, Any], **build: Any) -> dict[str, Any]:
        """Send a valid request and return its ACK (the seq advances)."""
        await self.send(self.build(msg_type, body, **build))
        ack = await self.expect("ACK", ref_seq_num=self.seq + 1)
        self.seq += 1
        return ack

    async def refused(
        self,
        frame: dict[str, Any] | str,
        reason: str,
        ref: int | None = None,
        refused_seq: int | None = None,
    ) -> str:
        """Send a bad frame: a NAK whose reason contains `reason`, and nothing else. Every NAK
        names the last accepted seq_num as ref_seq_num (SPEC §5)."""
        await self.send(frame)
        nak = await self.expect("NAK")  # business replies to earlier requests may come first
        assert reason in nak["reason"], (reason, nak["reason"])
        assert nak["ref_seq_num"] == (self.seq if ref is None else ref), nak
        if refused_seq is not None:
            assert nak["refused_seq_num"] == refused_seq, nak
            assert f"{refused_seq}" in nak["reason"], nak
        return str(nak["reason"])

    async def challenge(self) -> str:
        """ChallengeRequest (unsigned) → the server's Challenge nonce for this session."""
        await self.request("ChallengeRequest", {})
        return str((await self.expect("Challenge"))["challenge"])

    async def authenticate(self, last_server_seq: int = 0) -> dict[str, Any]:
        """A ResendRequest signed over a fresh challenge: authenticates this session."""
        challenge = await self.challenge()
        body = {"last_server_seq": last_server_seq, "challenge": challenge}
        return await self.request("ResendRequest", body)

    async def close(self) -> None:
        await self.ws.close()


def _matches(frame: dict[str, Any], msg_type: str, fields: dict[str, Any]) -> bool:
    if frame["standard_header"]["msg_type"] != msg_type:
        return False
    return all(frame.get(k) == v for k, v in fields.items())


QUOTE_ANSWERS = ("NewIndexQuote", "IndexQuoteResponse", "CancelIndexQuote")


def business(frames: list[dict[str, Any]]) -> dict[int, tuple[str, str]]:
    """server_seq → (msg_type, body without header/trailer) of the stored responses seen
    (quote answers are numbered too but never stored for a resend: prices of the moment)."""
    out = {}
    for frame in frames:
        header = frame["standard_header"]
        if "server_seq" in header and header["msg_type"] not in QUOTE_ANSWERS:
            body = {k: v for k, v in frame.items() if k not in ("standard_header",)}
            out[header["server_seq"]] = (header["msg_type"], json.dumps(body, sort_keys=True))
    return out


# ---------------------------------------------------------------- every message type


async def test_order_lifecycle_every_order_message(live: Live) -> None:
    wire = await live.connect()
    await live.deposit(wire.address, "2000")
    ack = await wire.request("NewIndexOrder", {"client_order_id": "o-1", **ORDER})
    assert ack["ref_seq_num"] == 1 and ack["chain_id"] == CHAIN
    assert ack["address"] == wire.address.lower()
    new = await wire.expect("NewIndexOrder", client_order_id="o-1")
    assert new["status"] == "new"
    # While the deposit is still on its 80 ms of hops the acceptance says what the order waits
    # for; on a slow machine it may already be ready (then no reason).
    assert new.get("reason", "waiting for collateral: need 1000").startswith(
        "waiting for collateral: need 1000"
    )
    assert isinstance(new["standard_header"]["server_seq"], int)
    fill = await wire.expect("IndexOrderFill", client_order_id="o-1")
    assert fill["status"] in ("collateral ready", "in progress", "mintable", "fully mintable")
    for name in ("filled_quantity", "collateral_spent", "collateral_remaining", "fill_rate"):
        assert isinstance(fill[name], str) and "E" not in fill[name].upper()
    invoice = await wire.expect("MintInvoice", client_order_id="o-1", timeout=10)
    assert invoice["symbol"] == "SY100" and invoice["lots"]
    # The reference's `position`: the client's collateral after the mint (SPEC §5).
    position = invoice["position"]
    assert (position["chain_id"], position["address"]) == (CHAIN, wire.address.lower())
    credit = position["side_cr"]
    assert credit["spent_balance"] == invoice["amount_paid"]
    assert Decimal(credit["unconfirmed_balance"]) == 0 == Decimal(credit["preauth_balance"])
    # Deposited 2000 = spent + routing fees + what is ready again (the rest and the change).
    ready, spent = Decimal(credit["ready_balance"]), Decimal(credit["spent_balance"])
    fees = Decimal(invoice["management_fee"])
    assert ready + spent + fees == Decimal(2000), (ready, spent, fees)
    assert Decimal(position["side_dr"]["spent_balance"]) == 0 and credit["open_lots"] == []
    assert float(invoice["filled_quantity"]) > 0
    statuses = [
        f["status"] for f in wire.received if f["standard_header"]["msg_type"] == "IndexOrderFill"
    ]
    assert statuses[0] == "collateral ready" and statuses[-1] in ("mintable", "fully mintable")


async def test_cancel_index_order_canceled_and_rejected(live: Live) -> None:
    wire = await live.connect()  # no deposit: the order waits for collateral, all cancellable
    await wire.request("NewIndexOrder", {"client_order_id": "c-1", **ORDER})
    assert (await wire.expect("NewIndexOrder", client_order_id="c-1"))["status"] == "new"
    body = {"client_order_id": "c-1", "symbol": "SY100", "amount": "1000"}
    await wire.request("CancelIndexOrder", body)
    canceled = await wire.expect("CancelIndexOrder", client_order_id="c-1")
    assert canceled["status"] == "canceled" and "reason" not in canceled
    unknown = {"client_order_id": "nope", "symbol": "SY100", "amount": "1"}
    await wire.request("CancelIndexOrder", unknown)
    rejected = await wire.expect("CancelIndexOrder", client_order_id="nope")
    assert rejected["status"] == "rejected" and "nope" in rejected["reason"]


async def test_quote_request_response_and_cancel(live: Live) -> None:
    wire = await live.connect()
    await wire.request("NewQuoteRequest", {"client_quote_id": "q-1", **QUOTE})
    assert (await wire.expect("NewIndexQuote", client_quote_id="q-1"))["status"] == "new"
    answer = await wire.expect("IndexQuoteResponse", client_quote_id="q-1")
    assert float(answer["quantity_possible"]) > 0
    # Answered quotes are closed: cancelling one now is refused, with a reason.
    await wire.request("CancelQuoteRequest", {"client_quote_id": "q-1", "symbol": "SY100"})
    late = await wire.expect("CancelIndexQuote", client_quote_id="q-1")
    assert late["status"] == "rejected" and late["reason"]
    # An open quote (cancelled before the next 100 ms tick answers it) is cancelled. A tick
    # may slip in between the two frames; then the cancel is refused: retry with a new id.
    for attempt in range(5):
        qid = f"q-open-{attempt}"
        new = wire.build("NewQuoteRequest", {"client_quote_id": qid, **QUOTE})
        cancel = wire.build(
            "CancelQuoteRequest", {"client_quote_id": qid, "symbol": "SY100"}, seq=wire.seq + 2
        )
        await wire.send(new)
        await wire.send(cancel)
        await wire.expect("ACK", ref_seq_num=wire.seq + 1)
        await wire.expect("ACK", ref_seq_num=wire.seq + 2)
        wire.seq += 2
        reply = await wire.expect("CancelIndexQuote", client_quote_id=qid)
        if reply["status"] == "canceled":
            break
    else:
        raise AssertionError("no quote could be cancelled while open")
    with pytest.raises(AssertionError):  # a cancelled quote is never answered
        await wire.expect("IndexQuoteResponse", client_quote_id=qid, timeout=0.4)


async def test_a_sell_quote_is_answered_at_the_bids_with_its_expected_proceeds(live: Live) -> None:
    # Issue 12: a sell quote names index units (18 decimals) and is answered like a buy quote,
    # at the sell limits (bids), plus the USDC the units should pay.
    wire = await live.connect()
    units = Decimal("2.000000000000000001")
    sell = {"symbol": "SY100", "side": "sell", "amount": str(units)}
    await wire.request("NewQuoteRequest", {"client_quote_id": "sq", **sell})
    assert (await wire.expect("NewIndexQuote", client_quote_id="sq"))["status"] == "new"
    answer = await wire.expect("IndexQuoteResponse", client_quote_id="sq")
    await wire.request("NewQuoteRequest", {"client_quote_id": "bq", **QUOTE})
    buy = await wire.expect("IndexQuoteResponse", client_quote_id="bq")
    assert Decimal(answer["quantity_possible"]) == units
    assert 0 < Decimal(answer["quantity_fillable_now"]) <= units
    # Bids are below asks and the threshold moves each limit further: a unit sold brings
    # less than one bought costs; a buy quote carries no proceeds.
    price = Decimal(answer["index_price"])
    assert 0 < price < Decimal(buy["index_price"]) and "expected_proceeds" not in buy
    # The exchange keeps at most fee_factor − 1, 1 micro-USDC for the withdrawal's rounding;
    # no redemption paid yet, so no withdrawal fee is expected (engine/sell_proceeds.py). P in
    # the answer is rounded to 6 decimals, the proceeds (rounded down) come from the exact P.
    expected = units * price * (2 - SolverConfig().fee_factor) - Decimal("0.000001")
    assert abs(Decimal(answer["expected_proceeds"]) - expected) < Decimal("0.00001")
    # Finer than the token's 18 decimals: refused at the edge, with the field named.
    too_fine = {**sell, "amount": "1.0000000000000000001"}
    bad = wire.build("NewQuoteRequest", {"client_quote_id": "sq2", **too_fine})
    await wire.refused(bad, "amount: more than 18 decimals")


async def test_a_dust_sell_is_rejected_naming_the_minimum_and_nothing_is_escrowed(
    live: Live,
) -> None:
    # Issue 12: a 1e-18 SY100 sell was accepted, burned and invoiced a negative net. A sell
    # worth less than min_order (10 USDC) at the current bids is refused at acceptance with
    # the minimum in index units and USDC; a sell just above it is accepted.
    wire = await live.connect()
    quote = {"symbol": "SY100", "side": "sell", "amount": "1"}
    await wire.request("NewQuoteRequest", {"client_quote_id": "q", **quote})
    limit_price = Decimal((await wire.expect("IndexQuoteResponse"))["index_price"])  # books in
    dust = {"symbol": "SY100", "side": "sell", "amount": "0.000000000000000001"}
    await wire.request("NewIndexOrder", {"client_order_id": "d-1", **dust})
    rejected = await wire.expect("NewIndexOrder", client_order_id="d-1")
    assert rejected["status"] == "rejected"
    reason = rejected["reason"]
    assert reason.startswith(
        "amount 0.000000000000000001 index units is worth less than 0.000001 USDC at the "
        "current bids, below the minimum order of 10 USDC ("
    )
    units, price = (Decimal(w) for w in reason.split("(")[1].split()[0:5:4])
    # P at the bids is above P at the sell limits (bid x (1 - threshold)); 10 / P units.
    assert limit_price < price < limit_price * Decimal("1.02")
    assert abs(units * price - 10) < Decimal("0.000001") * units + Decimal("1e-12")
    engine = live.service.engine
    assert engine.redemptions.open_redemptions() == []
    assert engine.redemptions.get(wire.key, ClientOrderId("d-1")) is None
    # 1% above the minimum (the books may move a little meanwhile): accepted, then its
    # escrow is refused (the client holds no tokens).
    above = str((units * Decimal("1.01")).quantize(Decimal("1e-18")))
    await wire.request("NewIndexOrder", {"client_order_id": "d-2", **dust, "amount": above})
    accepted = await wire.expect("NewIndexOrder", client_order_id="d-2")
    assert accepted["status"] == "new", accepted


async def test_rejected_business_requests_carry_reasons(live: Live) -> None:
    wire = await live.connect()
    await wire.request("NewIndexOrder", {"client_order_id": "x-1", **ORDER, "symbol": "NOPE"})
    rejected = await wire.expect("NewIndexOrder", client_order_id="x-1")
    assert rejected["status"] == "rejected" and "NOPE" in rejected["reason"]
    await wire.request("NewQuoteRequest", {"client_quote_id": "x-q", **QUOTE, "symbol": "NOPE"})
    quote = await wire.expect("NewIndexQuote", client_quote_id="x-q")
    assert quote["status"] == "rejected" and "NOPE" in quote["reason"]


@pytest.mark.parametrize("side", ["1", "buy", "B", "Bid", "BUY"])
async def test_side_spellings(live: Live, side: str) -> None:
    wire = await live.connect()
    await wire.request("NewQuoteRequest", {"client_quote_id": "s", **QUOTE, "side": side})
    assert (await wire.expect("NewIndexQuote", client_quote_id="s"))["status"] == "new"


# ---------------------------------------------------------------- NAK paths


def _without(frame: dict[str, Any], *path: str) -> dict[str, Any]:
    target = frame
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return frame


BAD_FRAMES: list[tuple[str, Any, str]] = [
    # (case, frame builder on a wire with seq 0, reason substring)
    (
        "unknown msg_type",
        lambda w: w.build("NewFoo", {"client_order_id": "n-1"}),
        "unknown msg_type",
    ),
    (
        "missing header",
        lambda w: _without(
            w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER}), "standard_header"
        ),
        "standard_header",
    ),
    (
        "missing symbol",
        lambda w: _without(w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER}), "symbol"),
        "symbol: missing",
    ),
    (
        "missing client_order_id",
        lambda w: w.build("NewIndexOrder", dict(ORDER), sign=False),
        "client_order_id: missing",
    ),
    (
        "seq_num as string",
        lambda w: w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER}, seq="1"),
        "seq_num",
    ),
    (
        "amount as number",
        lambda w: w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER, "amount": 1000}),
        "amount: expected a decimal string, got number",
    ),
    (
        "id as number",
        lambda w: w.build("NewIndexOrder", {"client_order_id": 7, **ORDER}),
        "client_order_id: expected a string",
    ),
    (
        "bad side",
        lambda w: w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER, "side": "up"}),
        "side",
    ),
    (
        "too many decimals",
        lambda w: w.build(
            "NewIndexOrder", {"client_order_id": "n-1", **ORDER, "amount": "1.1234567"}
        ),
        "amount: more than 6 decimals",
    ),
    (
        "negative",
        lambda w: w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER, "amount": "-5"}),
        "not a plain decimal",
    ),
    (
        "zero",
        lambda w: w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER, "amount": "0.000"}),
        "must be greater than 0",
    ),
    (
        "NaN",
        lambda w: w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER, "amount": "NaN"}),
        "not a plain decimal",
    ),
    (
        "Infinity",
        lambda w: w.build(
            "NewIndexOrder", {"client_order_id": "n-1", **ORDER, "amount": "Infinity"}
        ),
        "not a plain decimal",
    ),
    (
        "exponent",
        lambda w: w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER, "amount": "1e3"}),
        "not a plain decimal",
    ),
    (
        "exponent with tiny mantissa",
        lambda w: w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER, "amount": "1E-7"}),
        "not a plain decimal",
    ),
    (
        "huge",
        lambda w: w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER, "amount": "9" * 30}),
        "amount: too large",
    ),
    (
        "wrong chain id",
        lambda w: {**w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER}), "chain_id": 1},
        "chain_id: 1 is not served here",
    ),
    (
        "malformed address",
        lambda w: {
            **w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER}),
            "address": "0x1234",
        },
        "address: expected 0x followed by 40 hex digits",
    ),
    ("not JSON", lambda w: '{"standard_header": ', "malformed JSON"),
    ("JSON array", lambda w: "[1, 2, 3]", "invalid message"),
    (
        "oversized frame",
        lambda w: w.build(
            "NewIndexOrder", {"client_order_id": "n-1", **ORDER, "pad": "x" * 20_000}
        ),
        "frame too large",
    ),
    (
        "seq gap",
        lambda w: w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER}, seq=2),
        "Invalid sequence number: 2; Last valid: 0",
    ),
    (
        "seq zero",
        lambda w: w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER}, seq=0),
        "Invalid sequence number: 0",
    ),
    (
        "stale timestamp",
        lambda w: w.build(
            "NewIndexOrder",
            {"client_order_id": "n-1", **ORDER},
            timestamp=now_rfc3339(-timedelta(seconds=90)),
        ),
        "Timestamp too far off",
    ),
    (
        "future timestamp",
        lambda w: w.build(
            "NewIndexOrder",
            {"client_order_id": "n-1", **ORDER},
            timestamp=now_rfc3339(timedelta(seconds=90)),
        ),
        "Timestamp too far off",
    ),
    (
        "timestamp without zone",
        lambda w: w.build(
            "NewIndexOrder", {"client_order_id": "n-1", **ORDER}, timestamp="2025-10-01T00:00:00"
        ),
        "timestamp",
    ),
    (
        "missing signature",
        lambda w: w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER}, sign=False),
        "Not authorised",
    ),
    (
        "no trailer at all",
        lambda w: _without(
            w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER}), "standard_trailer"
        ),
        "Not authorised",
    ),
    ("tampered signature", lambda w: _tamper_signature(w), "Not authorised"),
    ("tampered body id", lambda w: _tamper_id(w), "Not authorised"),
    ("high-s signature", lambda w: _high_s(w), "Not authorised"),
    ("someone else's key", lambda w: _other_key(w), "Not authorised"),
    ("signed for another msg_type", lambda w: _other_type(w), "Not authorised"),
    (
        "unsigned resend",
        lambda w: w.build(
            "ResendRequest", {"last_server_seq": 0, "challenge": "never-issued"}, sign=False
        ),
        "Not authorised",
    ),
    (
        "resend without a challenge",
        lambda w: w.build("ResendRequest", {"last_server_seq": 0}, signer=w.account),
        "challenge: missing",
    ),
    (
        "resend over a challenge never issued",
        lambda w: w.build("ResendRequest", {"last_server_seq": 0, "challenge": "never-issued"}),
        "challenge: not issued to this session",
    ),
    (
        "resend with a negative cursor",
        lambda w: w.build("ResendRequest", {"last_server_seq": -1, "challenge": "c-12345678"}),
        "last_server_seq",
    ),
]


def _order_frame(w: Wire) -> dict[str, Any]:
    return w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER})


def _tamper_signature(w: Wire) -> dict[str, Any]:
    frame = _order_frame(w)
    sig = frame["standard_trailer"]["signature"][0]
    flipped = "0" if sig[20] != "0" else "1"
    frame["standard_trailer"]["signature"][0] = sig[:20] + flipped + sig[21:]
    return frame


def _tamper_id(w: Wire) -> dict[str, Any]:
    frame = _order_frame(w)
    frame["client_order_id"] = "n-2"  # signature still over n-1
    return frame


def _high_s(w: Wire) -> dict[str, Any]:
    frame = _order_frame(w)
    sig = bytes.fromhex(frame["standard_trailer"]["signature"][0][2:])
    s = int.from_bytes(sig[32:64], "big")
    frame["standard_trailer"]["signature"][0] = (
        "0x" + (sig[:32] + (SECP256K1_N - s).to_bytes(32, "big")).hex()
    )  # (r, n-s) is a valid but malleated signature
    return frame


def _other_key(w: Wire) -> dict[str, Any]:
    return w.build("NewIndexOrder", {"client_order_id": "n-1", **ORDER}, signer=Account.create())


def _other_type(w: Wire) -> dict[str, Any]:
    frame = _order_frame(w)
    frame["standard_trailer"]["signature"] = [eth_sign(w.account, "CancelIndexOrder", "n-1")]
    return frame


@pytest.mark.parametrize(("case", "make", "reason"), BAD_FRAMES, ids=[c[0] for c in BAD_FRAMES])
async def test_nak_with_reason_session_open_no_state_change(
    live: Live, case: str, make: Any, reason: str
) -> None:
    wire = await live.connect()
    await live.deposit(wire.address, "5000")
    await wire.refused(make(wire), reason)
    # Nothing reached the engine, nothing advanced: the same seq 1 and the same order id
    # are still free, and the session is still open.
    assert live.service.engine.orders.update(wire.key, ClientOrderId("n-1")) is None
    await wire.nothing_more(0.15)
    await wire.request("NewIndexOrder", {"client_order_id": "n-1", **ORDER})
    assert (await wire.expect("NewIndexOrder", client_order_id="n-1"))["status"] == "new"


async def test_nak_ref_seq_num_is_the_last_accepted(live: Live) -> None:
    """SPEC §5: reference clients continue at ref_seq_num + 1 after every NAK, so the NAK
    names the last accepted seq_num (0 before any); the refused one is in the reason and in
    `refused_seq_num`."""
    wire = await live.connect()
    await wire.refused(
        wire.build("NewQuoteRequest", {"client_quote_id": "r-0", **QUOTE, "amount": "x"}),
        "amount",
        ref=0,
        refused_seq=1,
    )
    await wire.request("NewQuoteRequest", {"client_quote_id": "r-1", **QUOTE})
    bad = wire.build("NewQuoteRequest", {"client_quote_id": "r-2", **QUOTE, "amount": "1e3"})
    await wire.refused(bad, "amount", ref=1, refused_seq=2)
    await wire.refused(
        wire.build("NewQuoteRequest", {"client_quote_id": "r-2", **QUOTE}, seq=5),
        "Invalid sequence number: 5; Last valid: 1",
        ref=1,
        refused_seq=5,
    )
    ill = wire.build("NewQuoteRequest", {"client_quote_id": "r-2", **QUOTE})
    ill["standard_header"]["target_comp_id"] = 12  # typed decode fails; the seq is still read
    await wire.refused(ill, "invalid message", ref=1, refused_seq=2)
    # A body that is not even JSON: the header's seq_num is still read from the text.
    text = json.dumps(wire.build("NewQuoteRequest", {"client_quote_id": "r-2", **QUOTE}))
    broken = text[: text.index('"symbol"')] + '"symbol": SY100}'
    await wire.refused(broken, "malformed JSON", ref=1, refused_seq=2)
    # And the reference client's way on: ref_seq_num + 1 is accepted.
    await wire.request("NewQuoteRequest", {"client_quote_id": "r-2", **QUOTE})


async def test_seq_repeat_is_refused_and_does_not_advance(live: Live) -> None:
    wire = await live.connect()
    await wire.request("NewQuoteRequest", {"client_quote_id": "a", **QUOTE})
    repeat = wire.build("NewQuoteRequest", {"client_quote_id": "b", **QUOTE}, seq=1)
    await wire.refused(repeat, "Invalid sequence number: 1; Last valid: 1", ref=1)
    gap = wire.build("NewQuoteRequest", {"client_quote_id": "b", **QUOTE}, seq=3)
    await wire.refused(gap, "Invalid sequence number: 3; Last valid: 1", ref=1, refused_seq=3)
    await wire.expect("NewIndexQuote", client_quote_id="a")
    await wire.expect("IndexQuoteResponse", client_quote_id="a")
    await wire.nothing_more(0.25)  # b never reached the engine
    await wire.request("NewQuoteRequest", {"client_quote_id": "b", **QUOTE})
    assert (await wire.expect("NewIndexQuote", client_quote_id="b"))["status"] == "new"


async def test_frame_beyond_the_hard_cap_closes_the_session(live: Live) -> None:
    """Frames up to a hard cap get a NAK; beyond it the connection itself is refused (1009)."""
    wire = await live.connect()
    await wire.send("x" * (live.service.config.server.max_frame_bytes * 8))
    message = await wire.ws.receive(timeout=RECV_TIMEOUT)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert wire.ws.close_code == 1009


# ---------------------------------------------------------------- signatures


async def test_eth_account_signatures_65_and_64_bytes_accepted(live: Live) -> None:
    wire = await live.connect()
    signed = wire.build("NewIndexOrder", {"client_order_id": "e-65", **ORDER})
    assert len(signed["standard_trailer"]["signature"][0]) == 2 + 130  # r‖s‖v from eth-account
    await wire.send(signed)
    await wire.expect("ACK", ref_seq_num=1)
    wire.seq = 1
    short = wire.build(
        "CancelIndexOrder", {"client_order_id": "e-65", "symbol": "SY100", "amount": "1"}
    )
    short["standard_trailer"]["signature"][0] = short["standard_trailer"]["signature"][0][:130]
    mixed_case_key = short["standard_trailer"]["public_key"][0].upper().replace("0X", "0x")
    short["standard_trailer"]["public_key"][0] = mixed_case_key
    await wire.send(short)
    await wire.expect("ACK", ref_seq_num=2)
    assert (await wire.expect("CancelIndexOrder", client_order_id="e-65"))["status"] == "canceled"


async def test_every_server_frame_is_signed_by_the_info_key(live: Live) -> None:
    wire = await live.connect()
    await live.deposit(wire.address, "2000")
    await wire.request("NewIndexOrder", {"client_order_id": "v-1", **ORDER})
    await wire.request("NewQuoteRequest", {"client_quote_id": "v-q", **QUOTE})
    await wire.refused(wire.build("NewQuoteRequest", {**QUOTE}), "client_quote_id: missing")
    await wire.expect("MintInvoice", client_order_id="v-1", timeout=10)
    await wire.expect("IndexQuoteResponse", client_quote_id="v-q")
    kinds = {f["standard_header"]["msg_type"] for f in wire.received}
    assert {
        "ACK",
        "NAK",
        "NewIndexOrder",
        "IndexOrderFill",
        "MintInvoice",
        "NewIndexQuote",
        "IndexQuoteResponse",
    } <= kinds
    # check_server_frame verified each on receipt; also: a forged one would be caught.
    forged = json.loads(json.dumps(wire.received[0]))
    forged["ref_seq_num"] = 99
    wire.server_seq_num = forged["standard_header"]["seq_num"] - 1
    with pytest.raises(AssertionError, match="bad server signature"):
        wire.check_server_frame(forged)


async def test_replayed_signed_order_is_refused(live: Live) -> None:
    wire = await live.connect()
    original = wire.build("NewIndexOrder", {"client_order_id": "r-1", **ORDER})
    await wire.send(original)
    await wire.expect("ACK", ref_seq_num=1)
    wire.seq = 1
    assert (await wire.expect("NewIndexOrder", client_order_id="r-1"))["status"] == "new"
    # The same signed body again, with a fresh header (as a replaying attacker would): one
    # signature authorises one request (SPEC §5 Replay), so it is refused before the engine.
    replay = json.loads(json.dumps(original))
    replay["standard_header"].update(seq_num=2, timestamp=now_rfc3339())
    await wire.refused(replay, "Replayed signature", ref=1, refused_seq=2)
    # And from another connection, too.
    other = await live.connect(wire.account)
    replay["standard_header"].update(seq_num=1, timestamp=now_rfc3339())
    await other.refused(replay, "Replayed signature", ref=0, refused_seq=1)
    update = live.service.engine.orders.update(wire.key, ClientOrderId("r-1"))
    assert update is not None and update.amount == 1000  # one order, not two


# ---------------------------------------------------------------- limits


async def test_rate_limit_nak_with_retry_hint_then_admitted() -> None:
    session = SessionConfig(session_limits=(RateLimit("session_1s", 20, timedelta(seconds=1)),))
    live = await start_live(fast_config(session=session))
    try:
        wire = await live.connect()
        for i in range(4):  # quotes weigh 5: four fill the window of 20
            await wire.request("NewQuoteRequest", {"client_quote_id": f"q{i}", **QUOTE})
        extra = wire.build("NewQuoteRequest", {"client_quote_id": "q4", **QUOTE})
        reason = await wire.refused(
            extra, "Rate limit exceeded (session): retry after", ref=4, refused_seq=5
        )
        retry_ms = int(reason.rsplit("retry after ", 1)[1].split(" ms")[0])
        assert 0 < retry_ms <= 1000
        # Still open, nothing taken: another session of the same client is not limited...
        other = await live.connect(wire.account)
        await other.request("NewQuoteRequest", {"client_quote_id": "o0", **QUOTE})
        # ...and after the hint, the very same seq is admitted.
        await asyncio.sleep(retry_ms / 1000 + 0.05)
        await wire.send(wire.build("NewQuoteRequest", {"client_quote_id": "q4", **QUOTE}))
        await wire.expect("ACK", ref_seq_num=5)
        assert (await wire.expect("NewIndexQuote", client_quote_id="q4"))["status"] == "new"
    finally:
        await live.http.close()
        await live.stop()


async def test_orders_weigh_more_than_quotes() -> None:
    session = SessionConfig(session_limits=(RateLimit("session_10s", 20, timedelta(seconds=10)),))
    live = await start_live(fast_config(session=session))
    try:
        wire = await live.connect()
        for i in range(2):  # orders weigh 10
            await wire.request("NewIndexOrder", {"client_order_id": f"w{i}", **ORDER})
        await wire.refused(
            wire.build("NewQuoteRequest", {"client_quote_id": "w", **QUOTE}), "Rate limit", ref=2
        )
    finally:
        await live.http.close()
        await live.stop()


async def test_max_sessions_per_client_counts_authenticated_sessions(live: Live) -> None:
    account = Account.create()
    limit = live.service.config.server.session.max_sessions_per_client
    wires = [await live.connect(account) for _ in range(limit + 1)]
    for wire in wires[:limit]:
        await wire.authenticate()
    last = wires[-1]
    challenge = await last.challenge()
    resend = {"last_server_seq": 0, "challenge": challenge}
    await last.refused(last.build("ResendRequest", resend), "too many sessions")
    # Unsigned quotes claim nothing, so they are never counted or refused for it.
    await last.request("NewQuoteRequest", {"client_quote_id": "mx", **QUOTE})
    await wires[0].close()
    await asyncio.sleep(0.1)
    await last.request("ResendRequest", resend)  # the challenge was not spent by the refusal


async def test_one_session_carries_several_clients(live: Live) -> None:
    """A front end asks for quotes for several (chain id, address) pairs on one socket."""
    wire = await live.connect()
    await wire.request("NewQuoteRequest", {"client_quote_id": "b-1", **QUOTE})
    other = Account.create()
    pairs = [(1, wire.address), (8453, other.address), (8453, "0x" + "12" * 20)]
    for n, (chain_id, address) in enumerate(pairs):
        frame = wire.build("NewQuoteRequest", {"client_quote_id": f"b-{n + 2}", **QUOTE})
        frame.update(chain_id=chain_id, address=address)
        await wire.send(frame)
        await wire.expect("ACK", ref_seq_num=wire.seq + 1)
        wire.seq += 1
        answer = await wire.expect("IndexQuoteResponse", client_quote_id=f"b-{n + 2}")
        assert (answer["chain_id"], answer["address"]) == (chain_id, address.lower())
    # An order signed by another key for its own address is taken on the same socket too.
    frame = wire.build("NewIndexOrder", {"client_order_id": "b-o", **ORDER}, signer=other)
    frame["address"] = other.address
    await wire.send(frame)
    await wire.expect("ACK", ref_seq_num=wire.seq + 1)
    wire.seq += 1
    accepted = await wire.expect("NewIndexOrder", client_order_id="b-o")
    assert accepted["address"] == other.address.lower()


# ---------------------------------------------------------------- fan-out, resend, shutdown


async def test_fan_out_to_every_session_of_the_client(live: Live) -> None:
    account = Account.create()
    one, two = await live.connect(account), await live.connect(account)
    quote_only = await live.connect(account)
    await one.authenticate()
    await two.authenticate()
    await quote_only.request("NewQuoteRequest", {"client_quote_id": "f-q", **QUOTE})
    await one.request("NewIndexOrder", {"client_order_id": "f-1", **ORDER})
    a = await one.expect("NewIndexOrder", client_order_id="f-1")
    b = await two.expect("NewIndexOrder", client_order_id="f-1")
    assert a["standard_header"]["server_seq"] == b["standard_header"]["server_seq"]
    assert {k: v for k, v in a.items() if k != "standard_header"} == {
        k: v for k, v in b.items() if k != "standard_header"
    }
    # Order responses go to every authenticated session; quote responses only to the asker.
    await quote_only.expect("NewIndexQuote", client_quote_id="f-q")
    await quote_only.expect("IndexQuoteResponse", client_quote_id="f-q")
    await quote_only.nothing_more()
    assert not any(f["standard_header"]["msg_type"] == "NewIndexOrder" for f in quote_only.received)
    for wire in (one, two):
        await wire.nothing_more()
        assert not any("client_quote_id" in f for f in wire.received)


async def test_reconnect_with_resend_loses_nothing(live: Live) -> None:
    account = Account.create()
    watcher = await live.connect(account)  # stays connected: the reference of what was sent
    await watcher.authenticate()
    first = await live.connect(account)
    await first.request("NewIndexOrder", {"client_order_id": "z-1", **ORDER})
    new = await first.expect("NewIndexOrder", client_order_id="z-1")
    last_seen = new["standard_header"]["server_seq"]
    await first.close()
    # While away: the deposit arrives, the order fills and is minted; a quote is answered.
    await live.deposit(account.address, "1500")
    await watcher.expect("MintInvoice", client_order_id="z-1", timeout=10)
    await watcher.request("NewQuoteRequest", {"client_quote_id": "z-q", **QUOTE})
    await watcher.expect("IndexQuoteResponse", client_quote_id="z-q")
    await asyncio.sleep(0.1)
    second = await live.connect(account)
    await second.authenticate(last_seen)
    expected = {s: v for s, v in business(watcher.received).items() if s > last_seen}
    assert len(expected) >= 2  # fills, invoice
    resent: list[dict[str, Any]] = []
    while len(resent) < len(expected):
        resent.append(await second.recv())
    assert all(f["standard_header"].get("poss_dup") is True for f in resent)
    assert business(resent) == expected  # same messages, same order ids, same server_seqs
    seqs = [f["standard_header"]["server_seq"] for f in resent]
    assert seqs == sorted(seqs)
    assert business(first.received).keys() | expected.keys() >= business(watcher.received).keys()
    await second.nothing_more()
    # The resend acknowledged what came before: asking again from there repeats only the rest.
    await second.authenticate(seqs[-1])
    await second.nothing_more()


async def test_an_incomplete_resend_is_told_after_its_ack(live: Live) -> None:
    """A cursor from before this run (server_seq numbering starts at a per-start epoch): the
    ResendRequest is accepted, then a NAK says the resend is incomplete. It refuses nothing,
    so it names the accepted seq_num as ref_seq_num and no refused_seq_num."""
    wire = await live.connect()
    await wire.authenticate(last_server_seq=1)
    nak = await wire.expect("NAK")
    assert "resend incomplete" in nak["reason"] and nak["ref_seq_num"] == wire.seq == 2
    assert "refused_seq_num" not in nak and "refused" not in nak["reason"]


async def test_resend_unauthenticated_gets_no_private_messages(live: Live) -> None:
    account = Account.create()
    wire = await live.connect(account)
    await wire.request("NewIndexOrder", {"client_order_id": "p-1", **ORDER})
    await wire.expect("NewIndexOrder", client_order_id="p-1")
    await wire.close()
    # A session that only sent an unsigned quote cannot read the order stream via resend.
    snoop = await live.connect(account)
    await snoop.request("NewQuoteRequest", {"client_quote_id": "p-q", **QUOTE})
    challenge = await snoop.challenge()
    unsigned = snoop.build(
        "ResendRequest", {"last_server_seq": 0, "challenge": challenge}, sign=False
    )
    await snoop.refused(unsigned, "Not authorised", ref=2, refused_seq=3)


async def test_clean_shutdown_closes_sessions_with_a_reason() -> None:
    live = await start_live(fast_config())
    try:
        wires = [await live.connect() for _ in range(3)]
        for n, wire in enumerate(wires):
            await wire.request("NewQuoteRequest", {"client_quote_id": f"sd{n}", **QUOTE})
        # In flight at shutdown: sent, not yet answered; its ACK still comes before the close.
        await wires[0].send(wires[0].build("NewQuoteRequest", {"client_quote_id": "late", **QUOTE}))
        await asyncio.sleep(0.02)
        await asyncio.wait_for(live.stop(), timeout=10)
        for n, wire in enumerate(wires):
            frames: list[Any] = []
            while True:
                message = await wire.ws.receive(timeout=RECV_TIMEOUT)
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                frames.append(json.loads(message.data))
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            # The close frame's own code and reason (the client's close_code property may
            # read 1006 when the server drops TCP right after its close handshake reply).
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert (message.data, message.extra) == (1001, "server shutting down")
            if n == 0:
                assert any(
                    f.get("ref_seq_num") == 2 and f["standard_header"]["msg_type"] == "ACK"
                    for f in frames
                )
        with pytest.raises(aiohttp.ClientError):
            await live.connect()
    finally:
        await live.http.close()
        await live.stop()
