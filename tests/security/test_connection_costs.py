"""Issue 8, "Bounded cost per connection": slow readers, garbage, idle squatters, per-source
caps, over real loopback sockets with bounded loops (at most a few hundred sockets)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp
import msgspec
import pytest

from indexmaker.core.events import NewIndexOrderResponse, RequestStatus
from indexmaker.core.ids import ClientOrderId, client_key
from indexmaker.engine.throttle import RateLimit
from indexmaker.server.guard import GuardConfig
from indexmaker.server.session import SessionConfig
from indexmaker.server.ws_server import FixServer, ServerConfig

from .edge import (
    CHAIN_ID,
    HONEST_SOURCE,
    RawPeer,
    Wallet,
    arena,
    peers,
    running_server,
    until,
)

NEW = RequestStatus.NEW

TEN_S = timedelta(seconds=10)
ROOMY = (RateLimit("roomy_10s", 10**9, TEN_S),)


def roomy_session(**kw: object) -> SessionConfig:
    """Rate limits out of the way: these tests are about connection costs."""
    guard = GuardConfig(source_limits=ROOMY, anonymous_limits=ROOMY, **kw)  # type: ignore[arg-type]
    return SessionConfig(
        session_limits=ROOMY, client_limits=ROOMY, global_limits=ROOMY, unauthenticated=guard
    )


def server_config(**kw: object) -> ServerConfig:
    kw.setdefault("session", roomy_session())
    return ServerConfig(port=0, **kw)  # type: ignore[arg-type]


def small_buffers(**kw: object) -> ServerConfig:
    """Kernel buffers small (4 KiB each way) so a peer that never reads backs up at once."""
    return server_config(socket_send_buffer=4096, close_grace=timedelta(seconds=10), **kw)


async def never_reader(server: FixServer, wallet: Wallet) -> RawPeer:
    """A raw session that authenticates with one signed order, then never reads again."""
    raw = await RawPeer.connect(server.url, rcvbuf=4096)
    raw.stop_reading()
    raw.send(wallet.order(1, "o-1"))
    await raw.drain()
    await until(lambda: server.unauthenticated_count() == 0)
    return raw


def engine_push(server: FixServer, wallet: Wallet, n: int) -> None:
    """What the engine sends a client with many orders in flight (responses, fills)."""
    cid = ClientOrderId(f"o-{n}")
    server.deliver(client_key(CHAIN_ID, wallet.address), NewIndexOrderResponse(cid, NEW))


async def test_a_reader_that_never_reads_is_closed_1008_and_nothing_numbered_is_lost() -> None:
    limit = 32 * 1024
    async with running_server(small_buffers(send_buffer_limit=limit)) as server:
        wallet = Wallet()
        raw = await never_reader(server, wallet)
        pushed = 0
        for n in range(2, 5_002):
            engine_push(server, wallet, n)
            pushed += 1
            assert server.unsent_bytes() <= limit
            if n % 50 == 0:
                await asyncio.sleep(0.002)  # the writer runs, the kernel buffers fill
            if server.hub.open_sessions() == 0:
                break
        assert pushed < 5_000  # closed long before the loop ran out
        assert server.unsent_bytes() == 0  # its queue was released at once
        for n in range(10):  # later responses are kept for a resend, never numbered for it
            engine_push(server, wallet, 10_000 + n)
        frames = await raw.frames()
        raw.close()
    texts = [msgspec.json.decode(payload) for opcode, payload in frames if opcode == 0x1]
    seqs = [frame["standard_header"]["seq_num"] for frame in texts]
    assert seqs == list(range(1, len(seqs) + 1))  # every number it was given, it received
    assert texts[0]["standard_header"]["msg_type"] == "ACK"
    opcode, payload = frames[-1]
    assert opcode == 0x8 and int.from_bytes(payload[:2], "big") == 1008
    assert b"too slow" in payload


async def test_a_pipelining_reader_is_paced_not_closed() -> None:
    # A client that sends 500 quotes at once and reads everything afterwards: the server
    # stops reading its requests while replies are queued, instead of closing it.
    async with running_server(small_buffers(send_buffer_limit=256 * 1024)) as server:
        wallet = Wallet()
        raw = await RawPeer.connect(server.url)
        for seq in range(1, 501):  # buffered on our side; it reads while they go out
            raw.send(wallet.quote(seq, f"q{seq}"))
        received = []
        while len(received) < 1_500:  # ACK, NewIndexQuote and IndexQuoteResponse per quote
            opcode, payload = (await raw.frames_until(1))[0]
            assert opcode == 0x1, payload
            received.append(msgspec.json.decode(payload))
        raw.close()
    acks = [f for f in received if f["standard_header"]["msg_type"] == "ACK"]
    assert [f["ref_seq_num"] for f in acks] == list(range(1, 501))


async def test_unsent_bytes_are_bounded_in_total_across_slow_readers() -> None:
    # Each connection alone could queue 1 MiB: only the total (96 KiB) can close them.
    config = small_buffers(
        send_buffer_limit=1024 * 1024, send_buffer_total=96 * 1024, send_buffer_floor=8 * 1024
    )
    async with running_server(config) as server:
        wallets = [Wallet() for _ in range(6)]
        raws = [await never_reader(server, wallet) for wallet in wallets]
        peak = 0
        for n in range(2, 3_002):
            for wallet in wallets:
                engine_push(server, wallet, n)
            peak = max(peak, server.unsent_bytes())
            if n % 20 == 0:
                await asyncio.sleep(0.002)
            if server.hub.open_sessions() == 0:
                break
        assert server.hub.open_sessions() == 0  # every slow reader was closed
        for raw in raws:
            raw.close()
    # The total cap (plus each session's floor) held throughout.
    assert peak <= 96 * 1024 + 6 * 8 * 1024


async def test_garbage_flood_is_closed_after_a_bounded_number_of_naks() -> None:
    strikes = 20
    session = SessionConfig(
        unauthenticated=GuardConfig(strike_limit=RateLimit("strikes", strikes, TEN_S))
    )
    async with running_server(server_config(session=session)) as server:
        raw = await RawPeer.connect(server.url)
        garbage = [b"{not json", b'{"standard_header": 1}', b"[]" * 40, b"null", b"\x00\x01"]
        for n in range(3_000):  # sent without waiting: a flood, text and binary frames
            raw.send(garbage[n % len(garbage)], opcode=0x2 if n % 7 == 0 else 0x1)
        await raw.drain()
        frames = await raw.frames()
        raw.close()
        naks = [p for op, p in frames if op == 0x1]
        assert frames, "the server sent nothing"
        assert len(naks) == strikes + 1, frames[:3]  # the one that struck out is answered too
        assert frames[-1][0] == 0x8 and int.from_bytes(frames[-1][1][:2], "big") == 1008
        assert b"too many refused frames" in frames[-1][1]
        # The server is fine and honest clients are served.
        async with peers(server.url, HONEST_SOURCE) as honest:
            client = await honest()
            reply = await client.request(lambda seq: client.wallet.order(seq, "o-1"))
            assert reply["standard_header"]["msg_type"] == "ACK"


async def test_a_struck_out_peer_is_cut_at_once_not_after_the_close_grace() -> None:
    """Waiting for its close handshake would keep reading (and parsing) its flood."""
    session = SessionConfig(
        unauthenticated=GuardConfig(strike_limit=RateLimit("strikes", 5, TEN_S))
    )
    config = server_config(session=session, close_grace=timedelta(seconds=10))
    async with running_server(config) as server:
        raw = await RawPeer.connect(server.url)
        for _ in range(6):
            raw.send(b"{not json")
        await raw.drain()
        frames = await raw.frames()
        assert frames[-1][0] == 0x8  # the close frame; the peer never answers it...
        for _ in range(200):  # ...and keeps flooding
            raw.send(b"{not json")
        async with asyncio.timeout(2):  # far below the 10 s grace: the server hung up
            assert await raw.reader.read() == b""
        raw.close()
        await until(lambda: server.session_count() == 0)


async def test_out_of_sequence_flood_strikes_out() -> None:
    session = SessionConfig(
        unauthenticated=GuardConfig(strike_limit=RateLimit("strikes", 10, TEN_S))
    )
    async with running_server(server_config(session=session)) as server, peers(server.url) as p:
        peer = await p()
        for seq in range(100, 111):  # never the expected 1
            await peer.send(peer.wallet.quote(seq, f"q{seq}"))
        assert await peer.close_code() == 1008


async def test_idle_unauthenticated_sockets_are_closed_authenticated_ones_stay() -> None:
    config = server_config(unauthenticated_idle=timedelta(milliseconds=300))
    async with arena(config) as (server, hostile, honest):
        idle = [await hostile() for _ in range(20)]
        quoting = await hostile()
        await quoting.request(lambda seq: quoting.wallet.quote(seq, "q"))  # unsigned only
        signed = await honest()
        reply = await signed.request(lambda seq: signed.wallet.order(seq, "o-1"))
        assert reply["standard_header"]["msg_type"] == "ACK"
        codes = await asyncio.gather(*(peer.close_code(timeout=3) for peer in idle))
        assert codes == [1008] * 20
        assert await quoting.close_code(timeout=3) == 1008
        await asyncio.sleep(0.5)  # past the deadline: the authenticated session stays
        reply = await signed.request(lambda seq: signed.wallet.quote(seq, "q"))
        assert reply["standard_header"]["msg_type"] == "ACK"
        assert server.session_count() == 1


async def test_per_source_cap_on_unauthenticated_connections() -> None:
    async with arena(server_config(max_connections_per_source=5)) as (_, hostile, honest):
        for _ in range(5):
            await hostile()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await hostile()
        assert refused.value.status == 429
        client = await honest()  # another source is not affected
        reply = await client.request(lambda seq: client.wallet.order(seq, "o-1"))
        assert reply["standard_header"]["msg_type"] == "ACK"


async def test_squatters_cannot_fill_max_sessions_for_real_clients() -> None:
    config = server_config(max_sessions=60, max_unauthenticated_sessions=40)
    async with arena(config) as (server, hostile, honest):
        squatters = [await hostile() for _ in range(150)]  # never send a thing
        # The least recently active were evicted as others came.
        assert server.unauthenticated_count() <= 40
        assert server.hub.open_sessions() <= 40
        clients = [await honest() for _ in range(10)]
        for n, client in enumerate(clients):
            reply = await client.request(lambda seq, n=n, c=client: c.wallet.order(seq, f"o{n}"))
            assert reply["standard_header"]["msg_type"] == "ACK"
        codes = await asyncio.gather(*(s.close_code(timeout=3) for s in squatters[:100]))
        assert codes == [1008] * 100


async def test_a_source_whose_sessions_keep_striking_out_is_refused_at_accept() -> None:
    limits = GuardConfig(
        strike_limit=RateLimit("strikes", 3, TEN_S),
        strike_out_limit=RateLimit("strike_outs", 2, TEN_S),
    )
    config = server_config(session=SessionConfig(unauthenticated=limits))
    async with arena(config) as (server, hostile, honest):
        for _ in range(2):  # two sessions struck out...
            peer = await hostile()
            for _ in range(4):
                await peer.send("{garbage")
            assert await peer.close_code() == 1008
        opened = server.hub.open_sessions()
        with pytest.raises(aiohttp.ClientConnectionError):
            await hostile()  # ...so the third is reset at accept: no HTTP answer at all
        assert server.hub.open_sessions() == opened
        client = await honest()  # another source is not affected
        reply = await client.request(lambda seq: client.wallet.order(seq, "o-1"))
        assert reply["standard_header"]["msg_type"] == "ACK"
