"""FIX/JSON server benchmarks (issue 3), each beside a baseline measured in the same run.

- unsigned quote round trips (send NewQuoteRequest → its ACK), one client, against a bare
  aiohttp echo server's request/response (goal: ≥ 50% of the echo's throughput);
- signed NewIndexOrder round trips (send → ACK) for 1 and 100 concurrent clients, beside the
  echo with the same client counts, and the server's signed-order admission path (frame parse,
  checks, EIP-191 verification) against raw coincurve recovery (goal: ≥ 80%);
- 1,000 idle sessions held open: server RSS delta per session, ours and the echo's.

Both servers run in a child process each (this file with `--serve echo|fix`), so the clients
(this process) and the server do not share an event loop; everything is on loopback, bounded
in count and time (each phase has a wall-clock cap) and stops by itself. Client frames are
built and signed (coincurve) before each timed phase, so only the wire and the server are timed.
The FIX server runs the whole service (engine, simulated venue and chain); its rate limits are
raised so that a benchmark measures throughput, not the limiter.

    .venv/bin/python tests/bench/bench_fix.py        # or `make bench`
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from coincurve import PrivateKey, PublicKey

from indexmaker.server.messages import ParsedRequest, parse_request
from indexmaker.server.signing import address_of, check_request_signature, eip191_digest

HERE = Path(__file__).resolve()
PHASE_CAP_S = 15.0  # no timed phase runs longer than this, whatever the machine
ONE_CLIENT_MESSAGES = 3_000
MANY_CLIENTS = 100
PER_CLIENT_MESSAGES = 40
IDLE_SESSIONS = 1_000
SERVICE_MESSAGES = 1_000  # kept small: unfunded orders pile up in the engine's waiting list
CHAIN_ID = 42161
_DECODE = msgspec.json.Decoder()


# ---------------------------------------------------------------- servers (child processes)


async def _serve_echo() -> None:
    """The bare baseline: the very echo server of ws_echo_compare.py (this child runs as a
    script from tests/bench, so that module is importable)."""
    from aiohttp import web
    from ws_echo_compare import aiohttp_echo_app

    runner = web.AppRunner(aiohttp_echo_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(f"URL ws://127.0.0.1:{runner.addresses[0][1]}/ws", flush=True)
    await _until_stdin_closes()
    await runner.cleanup()


async def _serve_fix() -> None:
    from indexmaker.app.config import ServiceConfig
    from indexmaker.app.service import Service
    from indexmaker.observability.logging import setup_logging

    setup_logging("ERROR")
    service = Service(ServiceConfig(server=_bench_server()))
    await service.start()
    print(f"URL {service.server.url}", flush=True)
    await _until_stdin_closes()
    await service.stop()


async def _serve_adapter() -> None:
    """The FIX server alone, as the service wires it, with a stand-in for the engine that
    answers each request at once (NewIndexOrder/NewIndexQuote "new", signed and fanned out
    like the engine's): the protocol adapter's own cost, without the solver's."""
    from indexmaker.app.runtime import SystemClock
    from indexmaker.core.events import (
        ClientRequest,
        NewIndexOrderRequest,
        NewIndexOrderResponse,
        NewIndexQuoteResponse,
        NewQuoteRequest,
        RequestStatus,
    )
    from indexmaker.observability.logging import setup_logging
    from indexmaker.server.signing import Signer
    from indexmaker.server.ws_server import FixServer

    setup_logging("ERROR")
    loop = asyncio.get_running_loop()
    server: FixServer | None = None

    def engine(request: ClientRequest) -> None:
        assert server is not None
        if isinstance(request, NewIndexOrderRequest):
            reply: Any = NewIndexOrderResponse(request.client_order_id, RequestStatus.NEW)
        elif isinstance(request, NewQuoteRequest):
            reply = NewIndexQuoteResponse(request.client_quote_id, RequestStatus.NEW)
        else:
            return
        loop.call_soon(server.deliver, request.client, reply)

    server = FixServer(_bench_server(), engine, SystemClock(), Signer(os.urandom(32)))
    await server.start()
    print(f"URL {server.url}", flush=True)
    await _until_stdin_closes()
    await server.stop()


def _unlimited() -> Any:
    from indexmaker.engine.throttle import RateLimit
    from indexmaker.server.guard import GuardConfig
    from indexmaker.server.session import SessionConfig

    unlimited = (RateLimit("bench", 10**12, timedelta(seconds=1)),)
    return SessionConfig(
        session_limits=unlimited,
        client_limits=unlimited,
        global_limits=unlimited,
        unauthenticated=GuardConfig(source_limits=unlimited, anonymous_limits=unlimited),
    )


def _bench_server() -> Any:
    """Every limit out of the way: one source (loopback) opens all the bench's sessions."""
    from indexmaker.server.ws_server import ServerConfig

    return ServerConfig(
        port=0,
        session=_unlimited(),
        max_connections_per_source=10**6,
        max_unauthenticated_sessions=10**6,
        max_sessions=10**6,
        unauthenticated_idle=timedelta(hours=1),
    )


async def _until_stdin_closes() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


@dataclass
class Child:
    proc: subprocess.Popen[str]
    url: str

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def child_process(script: Path, *args: str) -> Iterator[Child]:
    """`python script *args` as a child that prints `URL <url>` once it serves and stops
    cleanly when its stdin closes (killed after 15 s if not)."""
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        url = ""
        while not url and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{script.name} {' '.join(args)} exited early")
            if line.startswith("URL "):
                url = line.split()[1]
        yield Child(proc, url)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # the child stops cleanly on EOF
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def child_server(kind: str) -> contextlib.AbstractContextManager[Child]:
    return child_process(HERE, "--serve", kind)


# ---------------------------------------------------------------- frames


class Client:
    """A wallet: pre-builds and signs its frames (coincurve; only the wire is timed)."""

    def __init__(self, n: int) -> None:
        self.key = PrivateKey(os.urandom(32))
        uncompressed = self.key.public_key.format(compressed=False)
        self.public_key = "0x" + uncompressed.hex()
        self.address = address_of(uncompressed)
        self.n = n

    def frame(self, msg_type: str, seq: int, body: dict[str, Any], sign: bool) -> str:
        trailer: dict[str, list[str]] = {"public_key": [], "signature": []}
        if sign:
            sid = body.get("client_order_id") or body["client_quote_id"]
            text = '{"msg_type":"' + msg_type + '","id":"' + sid + '"}'
            sig = self.key.sign_recoverable(eip191_digest(text), hasher=None)
            trailer = {"public_key": [self.public_key], "signature": ["0x" + sig.hex()]}
        return msgspec.json.encode(
            {
                "standard_header": {
                    "msg_type": msg_type,
                    "sender_comp_id": "CLIENT",
                    "target_comp_id": "SERVER",
                    "seq_num": seq,
                    "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                },
                "chain_id": CHAIN_ID,
                "address": self.address,
                **body,
                "standard_trailer": trailer,
            }
        ).decode()

    def orders(self, count: int) -> list[str]:
        return [
            self.frame(
                "NewIndexOrder",
                i,
                {
                    "client_order_id": f"c{self.n}-o{i}",
                    "symbol": "SY100",
                    "side": "1",
                    "amount": "1000",
                },
                sign=True,
            )
            for i in range(1, count + 1)
        ]

    def quotes(self, count: int) -> list[str]:
        return [
            self.frame(
                "NewQuoteRequest",
                i,
                {
                    "client_quote_id": f"c{self.n}-q{i}",
                    "symbol": "SY100",
                    "side": "1",
                    "amount": "1000",
                },
                sign=False,
            )
            for i in range(1, count + 1)
        ]


# ---------------------------------------------------------------- clients (this process)


@dataclass
class RoundTrips:
    count: int
    seconds: float
    latencies: list[float]
    other_frames: int = 0
    naks: int = 0

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e6 if ordered else 0.0


async def _one_stream(
    http: aiohttp.ClientSession, url: str, frames: list[str], fix: bool, deadline: float
) -> RoundTrips:
    """Sequential request/response on one connection; for FIX, waits for the frame's ACK."""
    out = RoundTrips(0, 0.0, [])
    async with http.ws_connect(url, compress=0, max_msg_size=2**20) as ws:
        start = time.perf_counter()
        for seq, frame in enumerate(frames, 1):
            t0 = time.perf_counter()
            if t0 > deadline:
                break
            await ws.send_str(frame)
            while True:
                message = await ws.receive(timeout=PHASE_CAP_S)
                if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    raise RuntimeError(f"connection ended: {message.type} {message.extra}")
                if not fix:
                    break
                reply = _DECODE.decode(message.data)
                header = reply["standard_header"]
                if header["msg_type"] == "ACK" and reply["ref_seq_num"] == seq:
                    break
                if header["msg_type"] == "NAK":
                    out.naks += 1
                    raise RuntimeError(f"NAK in benchmark: {reply['reason']}")
                out.other_frames += 1
            out.latencies.append(time.perf_counter() - t0)
            out.count += 1
        out.seconds = time.perf_counter() - start
    return out


async def _streams(url: str, per_client: list[list[str]], fix: bool) -> RoundTrips:
    deadline = time.perf_counter() + PHASE_CAP_S
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        start = time.perf_counter()
        results = await asyncio.gather(
            *(_one_stream(http, url, frames, fix, deadline) for frames in per_client)
        )
        elapsed = time.perf_counter() - start
    merged = RoundTrips(sum(r.count for r in results), elapsed, [])
    for r in results:
        merged.latencies.extend(r.latencies)
        merged.other_frames += r.other_frames
        merged.naks += r.naks
    return merged


async def _hold_idle(child: Child, count: int) -> tuple[float, int]:
    """Open `count` sessions, hold them, and return (KiB per session, sessions held)."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.sleep(0.2)
        before = child.rss_kib()
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        deadline = time.monotonic() + PHASE_CAP_S
        try:
            while len(sockets) < count and time.monotonic() < deadline:
                batch = min(50, count - len(sockets))
                sockets += await asyncio.gather(
                    *(http.ws_connect(child.url, compress=0) for _ in range(batch))
                )
            await asyncio.sleep(0.5)
            after = child.rss_kib()
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return (after - before) / max(1, len(sockets)), len(sockets)


# ---------------------------------------------------------------- in-process baselines


def _rate(fn: Callable[[int], None], n: int) -> float:
    """Calls per second of fn(i) for i in range(n); best of 3 to damp scheduler noise."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, time.perf_counter() - start)
    return n / best


def recovery_per_s(n: int = 3_000) -> float:
    """Raw coincurve: public key recovery from a 65-byte signature over an EIP-191 digest."""
    key = PrivateKey(os.urandom(32))
    digest = eip191_digest('{"msg_type":"NewIndexOrder","id":"o-1"}')
    signature = key.sign_recoverable(digest, hasher=None)
    return _rate(lambda _: PublicKey.from_signature_and_message(signature, digest, hasher=None), n)


def admission_per_s(n: int = 3_000) -> float:
    """The server's signed-order path before the socket: parse + checks + verify (our code)."""
    client = Client(0)
    frames = client.orders(n)

    def admit(i: int) -> None:
        parsed = parse_request(frames[i])
        assert isinstance(parsed, ParsedRequest)
        assert check_request_signature(parsed) is None

    return _rate(admit, n)


def signature_check_per_s(n: int = 3_000) -> float:
    """The signature check of a signed order alone (EIP-191 digest of the signed text, key
    and address match, verify): what PERFORMANCE.md compares with raw recovery."""
    parsed = [parse_request(frame) for frame in Client(0).orders(n)]

    def check(i: int) -> None:
        request = parsed[i]
        assert isinstance(request, ParsedRequest)
        assert check_request_signature(request) is None

    return _rate(check, n)


# ---------------------------------------------------------------- run


def _row(name: str, rt: RoundTrips, base: RoundTrips | None = None) -> str:
    ratio = f"  ×{rt.per_s / base.per_s:.2f} of echo" if base and base.per_s else ""
    return (
        f"{name:<40}{rt.per_s:>9,.0f}/s  p50 {rt.pct(0.5):>6.0f} µs  p99 {rt.pct(0.99):>6.0f} µs"
        f"{ratio}"
    )


def run() -> list[str]:
    recover = recovery_per_s()
    sigcheck = signature_check_per_s()
    admit = admission_per_s()
    one = Client(1)
    many = [Client(100 + i) for i in range(MANY_CLIENTS)]

    with child_server("echo") as echo:
        echo_1 = asyncio.run(_streams(echo.url, [one.orders(ONE_CLIENT_MESSAGES)], fix=False))
        echo_many = asyncio.run(
            _streams(echo.url, [c.orders(PER_CLIENT_MESSAGES) for c in many], fix=False)
        )
        echo_kib, echo_held = asyncio.run(_hold_idle(echo, IDLE_SESSIONS))

    with child_server("fix") as fix:
        # Warm-up, untimed: ACK signatures depend only on the acknowledged seq_num, so a
        # running server signs each seq once and serves it from its cache after that.
        asyncio.run(_streams(fix.url, [Client(5).quotes(ONE_CLIENT_MESSAGES)], fix=True))
        quotes = asyncio.run(_streams(fix.url, [Client(2).quotes(ONE_CLIENT_MESSAGES)], fix=True))
        orders_1 = asyncio.run(_streams(fix.url, [one.orders(ONE_CLIENT_MESSAGES)], fix=True))
        orders_many = asyncio.run(
            _streams(fix.url, [c.orders(PER_CLIENT_MESSAGES) for c in many], fix=True)
        )
        fix_kib, fix_held = asyncio.run(_hold_idle(fix, IDLE_SESSIONS))

    with child_server("service") as service:
        svc_quotes = asyncio.run(
            _streams(service.url, [Client(3).quotes(SERVICE_MESSAGES)], fix=True)
        )
        svc_orders = asyncio.run(
            _streams(service.url, [Client(4).orders(SERVICE_MESSAGES)], fix=True)
        )

    quote_ratio = quotes.per_s / echo_1.per_s
    e2e_ratio = orders_1.per_s / recover
    return [
        "server in a child process, clients here; round trip = send → ACK (echo: → echo)",
        _row("bare aiohttp echo, 1 client", echo_1),
        _row(f"bare aiohttp echo, {MANY_CLIENTS} clients", echo_many),
        "FIX adapter (engine stand-in answers each request at once):",
        _row("  unsigned quote, 1 client", quotes, echo_1),
        _row("  signed order, 1 client", orders_1, echo_1),
        _row(f"  signed order, {MANY_CLIENTS} clients", orders_many, echo_many),
        "whole service (engine, simulated venue and chain in the same process):",
        _row("  unsigned quote, 1 client", svc_quotes, echo_1),
        _row("  signed order, 1 client", svc_orders, echo_1),
        f"  (frames drained besides ACKs: adapter {quotes.other_frames + orders_1.other_frames}"
        f" + {orders_many.other_frames}, service {svc_quotes.other_frames}"
        f" + {svc_orders.other_frames}; NAKs: none)",
        f"raw coincurve recovery (this process)    {recover:>9,.0f}/s",
        f"signed-order signature check             {sigcheck:>9,.0f}/s  ×{sigcheck / recover:.2f}"
        " of recovery",
        f"signed-order admission: parse + verify   {admit:>9,.0f}/s  ×{admit / recover:.2f}"
        " of recovery",
        f"signed orders end to end, 1 client       {orders_1.per_s:>9,.0f}/s  ×{e2e_ratio:.2f}"
        " of recovery",
        f"idle sessions: ours {fix_held} held, {fix_kib:.1f} KiB each (RSS delta); "
        f"echo {echo_held} held, {echo_kib:.1f} KiB each",
        f"goal: quotes ≥ 0.50 of echo: ×{quote_ratio:.2f} {_mark(quote_ratio >= 0.5)}; "
        f"signed-order signature check ≥ 0.80 of recovery: ×{sigcheck / recover:.2f} "
        f"{_mark(sigcheck / recover >= 0.8)} (admission with parsing ×{admit / recover:.2f}, "
        f"end to end with two signatures out ×{e2e_ratio:.2f})",
    ]


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve = {"echo": _serve_echo, "fix": _serve_adapter, "service": _serve_fix}[sys.argv[2]]
        profile_to = os.environ.get("BENCH_FIX_PROFILE")  # cProfile the servers into this dir
        if profile_to:
            import cProfile

            cProfile.runctx(
                "asyncio.run(serve())",
                globals(),
                {"serve": serve},
                f"{profile_to}/{sys.argv[2]}.prof",
            )
        else:
            asyncio.run(serve())
        return 0
    for line in run():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
