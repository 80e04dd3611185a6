"""The FIX edge under attack (issue 8), each figure beside a baseline from the same run.

- memory per session (server RSS delta, child process): idle unauthenticated sessions,
  authenticated ones (one signed order each), and slow readers (raw sockets with a 4 KiB
  receive buffer that never read while their requests keep being answered), beside a bare
  aiohttp echo server's idle session;
- an honest, authenticated client's quote round trips (send → ACK, from its own source
  address 127.0.0.2) while 1, 10 and 50 hostile sockets (another process, source 127.0.0.1)
  flood garbage, replay a captured signed frame, or hold sessions open; beside the same
  client on a quiet server (goal: p99 within 2× of quiet). Measured once every hostile
  socket connected and SETTLE seconds passed (the attack's steady state), and for 50 sockets
  also from the first connections on (onset); and once with the 50 garbage peers attacking a
  decoy that resets every connection (what the attackers cost through the shared cores
  alone);
- frames refused per second per core: a client floods unparseable frames and reads the
  NAKs; refused frames per second of the server's CPU time, beside the bare echo server's
  echoed frames per second of its CPU time.

Servers run in child processes (this file with `--serve`), hostile peers in another
(`--hostile`); everything is on loopback, bounded in count and time.

    .venv/bin/python tests/bench/bench_edge.py        # or `make bench`
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from bench_fix import Child, Client, RoundTrips, child_process

HERE = Path(__file__).resolve()
HONEST = "127.0.0.2"
HONEST_QUOTES = 800
HOSTILE_SECONDS = 8.0  # from the hostile process's start; the honest run fits well within
SETTLE = 1.0  # seconds of attack before the honest client starts
HOSTILE_COUNTS = (1, 10, 50)
ATTACKS = ("garbage", "replay", "hold")
MEMORY_SESSIONS = 300
SLOW_READERS = 50
FLOOD_SECONDS = 3.0
_DECODE = msgspec.json.Decoder()
_GARBAGE = [b"{not json", b'{"standard_header": 1}', b"[]" * 40, b"null", b"\x00\x01"]


# ---------------------------------------------------------------- servers (child processes)


def _edge_config(kind: str) -> Any:
    """`defended`: the shipped defences (strikes, unauthenticated windows, caps) with the
    authenticated rate limits raised so the honest client measures latency, not its quota.
    `roomy`: caps raised too (memory phases open hundreds of sessions from one address).
    `flood`: strikes and windows out of the way (the refusal path in steady state)."""
    from indexmaker.engine.throttle import RateLimit
    from indexmaker.server.guard import GuardConfig
    from indexmaker.server.session import SessionConfig
    from indexmaker.server.ws_server import ServerConfig

    huge = (RateLimit("bench", 10**12, timedelta(seconds=1)),)
    guard = GuardConfig()
    caps: dict[str, Any] = {}
    if kind in ("roomy", "flood"):
        caps = {
            "max_connections_per_source": 10**6,
            "max_unauthenticated_sessions": 10**6,
            "unauthenticated_idle": timedelta(hours=1),
        }
    if kind == "roomy":
        # The unauthenticated windows too: 50 slow readers pipelining 200 quotes each from
        # one address would be rate-limited, strike out on the sequence after, and have the
        # source refused (what used to make the slow-reader figure that of refused sockets).
        guard = GuardConfig(source_limits=huge, anonymous_limits=huge)
    if kind == "flood":
        guard = GuardConfig(
            source_limits=huge,
            anonymous_limits=huge,
            strike_limit=RateLimit("strikes", 10**12, timedelta(seconds=1)),
        )
    session = SessionConfig(
        session_limits=huge, client_limits=huge, global_limits=huge, unauthenticated=guard
    )
    return ServerConfig(port=0, session=session, max_sessions=10**6, **caps)


async def _serve_edge(kind: str) -> None:
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

    setup_logging("CRITICAL")
    loop = asyncio.get_running_loop()
    holder: list[FixServer] = []

    def engine(request: ClientRequest) -> None:
        if isinstance(request, NewIndexOrderRequest):
            reply: Any = NewIndexOrderResponse(request.client_order_id, RequestStatus.NEW)
        elif isinstance(request, NewQuoteRequest):
            reply = NewIndexQuoteResponse(request.client_quote_id, RequestStatus.NEW)
        else:
            return
        loop.call_soon(holder[0].deliver, request.client, reply)

    server = FixServer(_edge_config(kind), engine, SystemClock(), Signer(os.urandom(32)))
    holder.append(server)
    await server.start()
    print(f"URL {server.url}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)
    await server.stop()


async def _serve_echo() -> None:
    from aiohttp import web
    from ws_echo_compare import aiohttp_echo_app

    runner = web.AppRunner(aiohttp_echo_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(f"URL ws://127.0.0.1:{runner.addresses[0][1]}/ws", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


async def _serve_decoy() -> None:
    """A listener that resets every connection at accept: what hostile peers cost the
    machine by themselves (their own CPU on the shared cores), with no server work."""

    class Reset(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transport.abort()  # type: ignore[attr-defined]

    listener = await asyncio.get_running_loop().create_server(Reset, "127.0.0.1", 0)
    print(f"URL ws://127.0.0.1:{listener.sockets[0].getsockname()[1]}/ws", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    listener.close()


def child(*args: str) -> contextlib.AbstractContextManager[Child]:
    return child_process(HERE, *args)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- hostile peers (a child)


async def _hostile_socket(
    kind: str, url: str, deadline: float, replay: str, tried: asyncio.Event
) -> int:
    """One hostile peer for the phase: floods (garbage, replay) or holds a session, and
    reconnects whenever the server closes or refuses it. `tried` is set after its first
    connection attempt. Returns frames sent."""
    sent = 0
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        while time.monotonic() < deadline:
            try:
                ws = await http.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=1))
            except (aiohttp.ClientError, OSError):
                tried.set()
                await asyncio.sleep(0.05)
                continue
            tried.set()
            drain = asyncio.ensure_future(_discard(ws))
            try:
                if kind == "hold":  # idle until closed or the end: no wake-ups of ours
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            asyncio.shield(drain), max(0.0, deadline - time.monotonic())
                        )
                while not ws.closed and time.monotonic() < deadline and kind != "hold":
                    frame = replay if kind == "replay" else _GARBAGE[sent % len(_GARBAGE)]
                    await ws.send_bytes(frame.encode() if isinstance(frame, str) else frame)
                    sent += 1
                    if sent % 20 == 0:
                        await asyncio.sleep(0)
            except (aiohttp.ClientError, ConnectionError, RuntimeError):
                pass
            finally:
                drain.cancel()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 1)
    return sent


async def _discard(ws: aiohttp.ClientWebSocketResponse) -> None:
    with contextlib.suppress(Exception):
        async for _ in ws:
            pass


async def _hostiles(kind: str, count: int, url: str, seconds: float) -> None:
    victim = Client(999)
    replay = victim.orders(1)[0]  # captured once; every later copy is a replay
    deadline = time.monotonic() + seconds
    tried = [asyncio.Event() for _ in range(count)]
    sockets = asyncio.gather(*(_hostile_socket(kind, url, deadline, replay, t) for t in tried))
    await asyncio.gather(*(t.wait() for t in tried))
    print("READY", flush=True)  # every socket connected (or was refused) once
    sent = await sockets
    print(f"SENT {sum(sent)}", flush=True)


# ---------------------------------------------------------------- honest client


async def _honest(url: str, quotes: int) -> RoundTrips:
    """Authenticate with one signed order, then sequential quotes; round trip = → its ACK."""
    client = Client(1)
    order = client.orders(1)[0]
    frames = [
        client.frame(
            "NewQuoteRequest",
            seq,
            {"client_quote_id": f"h{seq}", "symbol": "SY100", "side": "1", "amount": "1000"},
            sign=False,
        )
        for seq in range(2, quotes + 2)
    ]
    out = RoundTrips(0, 0.0, [])
    connector = aiohttp.TCPConnector(limit=0, local_addr=(HONEST, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.ws_connect(url, compress=0) as ws,
    ):
        await ws.send_str(order)
        await _ack(ws, 1)
        start = time.perf_counter()
        for seq, frame in enumerate(frames, 2):
            t0 = time.perf_counter()
            await ws.send_str(frame)
            await _ack(ws, seq)
            out.latencies.append(time.perf_counter() - t0)
            out.count += 1
        out.seconds = time.perf_counter() - start
    return out


async def _ack(ws: aiohttp.ClientWebSocketResponse, seq: int) -> None:
    while True:
        message = await ws.receive(timeout=30)
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"honest session ended: {message.type} {message.extra}")
        reply = _DECODE.decode(message.data)
        kind = reply["standard_header"]["msg_type"]
        if kind == "NAK":
            raise RuntimeError(f"honest client refused: {reply['reason']}")
        if kind == "ACK" and reply["ref_seq_num"] == seq:
            return


# Attackers are other machines in real life: on a machine of 2+ cores the server and the honest
# client share the first core and the hostile process gets the others, so the attackers' own CPU
# is not what the honest client's latency measures (the decoy row checks it).
_CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def _pin_defender() -> None:
    if len(_CORES) >= 2:
        os.sched_setaffinity(0, {_CORES[0]})  # this process, and the servers it starts


def _attackers_cores() -> None:
    if len(_CORES) >= 2:
        os.sched_setaffinity(0, set(_CORES[1:]))


def honest_under(
    url: str, kind: str | None, count: int, settle: float = SETTLE, target: str | None = None
) -> RoundTrips:
    """The honest client's quotes on `url` while `count` hostile sockets attack `target`
    (default: the same server)."""
    if kind is None:
        return asyncio.run(_honest(url, HONEST_QUOTES))
    argv = ["--hostile", kind, str(count), target or url, str(HOSTILE_SECONDS)]
    with subprocess.Popen(
        [sys.executable, str(HERE), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=_attackers_cores,
    ) as attackers:
        # The attack is in its steady state before the honest client starts: every socket
        # connected once (the hostile process's own start and its first handshakes are not
        # what is measured), then `settle` more seconds (0: the onset, the first sessions
        # still flooding before they strike out).
        assert attackers.stdout is not None
        line = attackers.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"hostile peers did not start: {line!r}")
        time.sleep(settle)
        try:
            return asyncio.run(_honest(url, HONEST_QUOTES))
        finally:
            attackers.wait(timeout=HOSTILE_SECONDS + 30)


# ---------------------------------------------------------------- memory


async def _memory(server: Child, kind: str, count: int) -> float:
    """KiB of server RSS per session of this kind, held open together."""
    connector = aiohttp.TCPConnector(limit=0)
    raws: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.sleep(0.3)
        before = server.rss_kib()
        sockets = []
        try:
            if kind == "slow":
                raws = [await _slow_reader(server.url, n) for n in range(count)]
                await asyncio.sleep(1.5)  # answers pile up until each is paced or closed
            else:
                for n in range(count):
                    ws = await http.ws_connect(server.url, compress=0)
                    sockets.append(ws)
                    if kind == "auth":
                        await ws.send_str(Client(n).orders(1)[0])
                        await _ack(ws, 1)
                await asyncio.sleep(0.5)
            after = server.rss_kib()
        finally:
            for _, writer in raws:
                writer.transport.abort()
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return (after - before) / count


async def _slow_reader(url: str, n: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw WebSocket that sends 200 quotes (as fast as the server reads them) and never
    reads a byte: a 4 KiB receive buffer, reading paused."""
    import base64
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    head = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    writer.write(head.encode())
    answer = await reader.readuntil(b"\r\n\r\n")
    if not answer.startswith(b"HTTP/1.1 101"):  # a refused socket would measure nothing
        raise RuntimeError(f"slow reader {n} refused: {answer.splitlines()[0]!r}")
    writer.transport.pause_reading()  # type: ignore[attr-defined]
    client = Client(10_000 + n)
    for frame in client.quotes(200):
        payload = frame.encode()
        mask = os.urandom(4)
        head = bytes((0x81, 0x80 | 126)) + len(payload).to_bytes(2, "big")
        writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return reader, writer


# ---------------------------------------------------------------- refusals per core


async def _flood(url: str, seconds: float, echo: bool) -> int:
    """Send unparseable frames as fast as they are answered (reading every answer)."""
    answered = 0
    async with aiohttp.ClientSession() as http, http.ws_connect(url, compress=0) as ws:
        deadline = time.monotonic() + seconds
        window = 64  # frames in flight
        for n in range(window):
            await ws.send_str(_GARBAGE[n % 4].decode())
        while time.monotonic() < deadline:
            message = await ws.receive(timeout=10)
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                raise RuntimeError(f"flood ended: {message.type}")
            answered += 1
            await ws.send_str(_GARBAGE[answered % 4].decode())
    return answered


def refused_per_core(server: Child, echo: bool) -> float:
    asyncio.run(_flood(server.url, 0.5, echo))  # warm-up
    c0 = cpu_seconds(server.proc.pid)
    frames = asyncio.run(_flood(server.url, FLOOD_SECONDS, echo))
    return frames / max(1e-9, cpu_seconds(server.proc.pid) - c0)


# ---------------------------------------------------------------- run


def _row(name: str, rt: RoundTrips, quiet: RoundTrips) -> str:
    r = rt.pct(0.99) / max(1e-9, quiet.pct(0.99))
    return (
        f"honest quotes {name:<34} p50 {rt.pct(0.5):>6.0f} µs  p99 {rt.pct(0.99):>7.0f} µs"
        f"  (quiet just before: p50 {quiet.pct(0.5):>5.0f}, p99 {quiet.pct(0.99):>6.0f})"
        f"  p99 ×{r:.2f} {'✓' if r <= 2 else '✗'}"
    )


def run() -> list[str]:
    _pin_defender()
    pinned = f"server and honest client on core {_CORES[0]}, attackers on {_CORES[1:]}"
    lines = [
        "servers in child processes; hostile peers in another; honest client here; "
        + (pinned if len(_CORES) >= 2 else "one core: nothing pinned")
    ]
    with child("--serve", "echo") as echo:
        echo_idle = asyncio.run(_memory(echo, "idle", MEMORY_SESSIONS))
        echo_rate = refused_per_core(echo, echo=True)
    with child("--serve", "roomy") as roomy:
        idle = asyncio.run(_memory(roomy, "idle", MEMORY_SESSIONS))
        auth = asyncio.run(_memory(roomy, "auth", MEMORY_SESSIONS))
        slow = asyncio.run(_memory(roomy, "slow", SLOW_READERS))
    lines += [
        f"memory per session (server RSS delta): bare echo idle {echo_idle:.1f} KiB;"
        f" ours idle {idle:.1f}, authenticated {auth:.1f}, slow reader {slow:.1f} KiB"
        f" ({MEMORY_SESSIONS} / {MEMORY_SESSIONS} / {SLOW_READERS} sessions)",
    ]
    quiet_p99: list[float] = []
    phases = [(kind, count, SETTLE) for kind in ATTACKS for count in HOSTILE_COUNTS]
    phases += [(kind, HOSTILE_COUNTS[-1], 0.0) for kind in ATTACKS[:2]]  # onsets
    for kind, count, settle in phases:
        # A fresh server each time: the strikes one attack leaves on its source would
        # otherwise shape the next one.
        with child("--serve", "defended") as server:
            asyncio.run(_honest(server.url, 100))  # warm-up (ACK signature cache)
            # The machine is shared and noisy: each attack is compared with a quiet run
            # right before it, not with one figure from the start.
            quiet = honest_under(server.url, None, 0)
            quiet_p99.append(quiet.pct(0.99))
            rt = honest_under(server.url, kind, count, settle)
            onset = "" if settle else " (onset)"
            lines.append(_row(f"while {count:>2} sockets {kind}{onset}", rt, quiet))
    with child("--serve", "defended") as server, child("--serve", "decoy") as decoy:
        # The same 50 reconnecting peers reset by another listener: the p99 they cause
        # through the shared cores alone, none of it work of our server's.
        asyncio.run(_honest(server.url, 100))
        quiet = honest_under(server.url, None, 0)
        rt = honest_under(server.url, "garbage", HOSTILE_COUNTS[-1], target=decoy.url)
        lines.append(_row(f"while {HOSTILE_COUNTS[-1]} sockets garbage a decoy", rt, quiet))
    ordered = sorted(quiet_p99)
    lines.append(
        f"quiet p99 across those runs: {ordered[0]:.0f}-{ordered[-1]:.0f} µs"
        f" (median {ordered[len(ordered) // 2]:.0f} µs), {HONEST_QUOTES} quotes each"
    )
    with child("--serve", "flood") as flood:
        refused = refused_per_core(flood, echo=False)
    lines.append(
        f"frames refused per CPU-second of the server {refused:>9,.0f}/s;"
        f" bare echo: frames echoed per CPU-second {echo_rate:>9,.0f}/s"
        f"  (×{refused / echo_rate:.2f})"
    )
    return lines


def main() -> int:
    # Hostile and slow peers write into sockets the server closed: asyncio's warnings about
    # it are the expected outcome, not news.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        kind = sys.argv[2]
        serve = {"echo": _serve_echo, "decoy": _serve_decoy}.get(kind)
        asyncio.run(serve() if serve is not None else _serve_edge(kind))
        return 0
    if len(sys.argv) == 6 and sys.argv[1] == "--hostile":
        _, _, kind, count, url, seconds = sys.argv
        asyncio.run(_hostiles(kind, int(count), url, float(seconds)))
        return 0
    for line in run():
        print(line)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main())
