"""A FIX server under attack, over real loopback sockets: the server, honest and hostile peers.

`FixServer` runs in this process on an ephemeral port of 127.0.0.1 with a stand-in engine that
answers at once (NewIndexOrder / NewIndexQuote "new", and an IndexQuoteResponse for quotes),
so these tests measure the protocol edge only. Hostile peers connect from 127.0.0.1; honest
clients bind 127.0.0.2 as their source address (all of 127/8 is loopback on Linux), so
per-source caps on the attackers never apply to them. Frames are built here with msgspec and
signed with coincurve over the reference's signed text, independent of the server's encoder.
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec
from coincurve import PrivateKey

from indexmaker.core.clock import Clock
from indexmaker.core.events import (
    ClientRequest,
    IndexQuoteResponse,
    NewIndexOrderRequest,
    NewIndexOrderResponse,
    NewIndexQuoteResponse,
    NewQuoteRequest,
    RequestStatus,
)
from indexmaker.server.signing import Signer, address_of, eip191_digest
from indexmaker.server.ws_server import FixServer, ServerConfig

CHAIN_ID = 42161
HONEST_SOURCE = "127.0.0.2"
RECV_TIMEOUT = 5.0
QUOTE_BODY = {"symbol": "SY100", "side": "1", "amount": "1000"}
ORDER_BODY = {"symbol": "SY100", "side": "1", "amount": "1000"}


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Wallet:
    """A client key: builds and signs frames (the reference's signed text)."""

    def __init__(self) -> None:
        self.key = PrivateKey(os.urandom(32))
        uncompressed = self.key.public_key.format(compressed=False)
        self.public_key = "0x" + uncompressed.hex()
        self.address = address_of(uncompressed)

    def frame(
        self,
        msg_type: str,
        seq: int,
        body: dict[str, Any],
        *,
        sign: bool | None = None,
        address: str | None = None,
    ) -> bytes:
        if sign is None:
            sign = msg_type not in ("NewQuoteRequest", "CancelQuoteRequest")
        trailer: dict[str, list[str]] = {"public_key": [], "signature": []}
        if sign:
            sid = str(body.get("client_order_id") or body.get("client_quote_id"))
            text = '{"msg_type":"' + msg_type + '","id":"' + sid + '"}'
            sig = self.key.sign_recoverable(eip191_digest(text), hasher=None)
            trailer = {"public_key": [self.public_key], "signature": ["0x" + sig[:64].hex()]}
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
                "address": address or self.address,
                **body,
                "standard_trailer": trailer,
            }
        )

    def quote(self, seq: int, qid: str, address: str | None = None) -> bytes:
        return self.frame(
            "NewQuoteRequest", seq, {"client_quote_id": qid, **QUOTE_BODY}, address=address
        )

    def order(self, seq: int, cid: str, address: str | None = None) -> bytes:
        return self.frame(
            "NewIndexOrder", seq, {"client_order_id": cid, **ORDER_BODY}, address=address
        )


def stand_in_engine(holder: list[FixServer]) -> Any:
    """Answers like the engine would, on the next loop turn."""

    def engine(request: ClientRequest) -> None:
        server = holder[0]
        loop = asyncio.get_running_loop()
        if isinstance(request, NewIndexOrderRequest):
            reply: Any = NewIndexOrderResponse(request.client_order_id, RequestStatus.NEW)
            loop.call_soon(server.deliver, request.client, reply)
        elif isinstance(request, NewQuoteRequest):
            new = NewIndexQuoteResponse(request.client_quote_id, RequestStatus.NEW)
            priced = IndexQuoteResponse(
                request.client_quote_id, Decimal("0.5"), Decimal("0.5"), Decimal("2000")
            )
            loop.call_soon(server.deliver, request.client, new)
            loop.call_soon(server.deliver, request.client, priced)

    return engine


@asynccontextmanager
async def running_server(
    config: ServerConfig, clock: Clock | None = None
) -> AsyncIterator[FixServer]:
    holder: list[FixServer] = []
    server = FixServer(
        config, stand_in_engine(holder), clock or WallClock(), Signer(os.urandom(32))
    )
    holder.append(server)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class Peer:
    """One WebSocket session from a chosen source address."""

    http: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    wallet: Wallet = field(default_factory=Wallet)
    seq: int = 0  # last seq_num ACKed

    async def send(self, frame: bytes | str) -> None:
        await self.ws.send_str(frame.decode() if isinstance(frame, bytes) else frame)

    async def recv(self, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        message = await self.ws.receive(timeout=timeout)
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"{message.type.name} {message.data} {message.extra}")
        frame: dict[str, Any] = msgspec.json.decode(message.data)
        return frame

    async def reply_to(self, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        """The next ACK or NAK (business frames in between are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            if frame["standard_header"]["msg_type"] in ("ACK", "NAK"):
                return frame

    async def request(self, frame_for_seq: Any, timeout: float = RECV_TIMEOUT) -> dict[str, Any]:
        """Send the frame built for the next seq; the reply (ACK advances `seq`)."""
        seq = self.seq + 1
        await self.send(frame_for_seq(seq))
        reply = await self.reply_to(timeout)
        if reply["standard_header"]["msg_type"] == "ACK":
            self.seq = seq
        return reply

    async def close_code(self, timeout: float = RECV_TIMEOUT) -> int | None:
        """Read until the server closes; the close code it sent (None: the socket just ended)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            message = await self.ws.receive(timeout=max(0.01, deadline - loop.time()))
            if message.type is aiohttp.WSMsgType.CLOSE:
                return int(message.data)
            if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return self.ws.close_code
        raise TimeoutError("the server did not close the session")


@asynccontextmanager
async def peers(url: str, source: str = "127.0.0.1") -> AsyncIterator[Any]:
    """A factory of sessions from one source address, all closed at the end."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0), limit=0, force_close=True)
    http = aiohttp.ClientSession(connector=connector)
    opened: list[Peer] = []

    async def connect(wallet: Wallet | None = None) -> Peer:
        ws = await http.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=1.0))
        peer = Peer(http, ws, wallet or Wallet())
        opened.append(peer)
        return peer

    try:
        yield connect
    finally:
        for peer in opened:
            if not peer.ws.closed:
                await peer.ws.close()
        await http.close()


async def until(predicate: Any, timeout: float = RECV_TIMEOUT, step: float = 0.02) -> None:
    """Poll a condition on the server (bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(step)


class RawPeer:
    """A WebSocket client on a bare socket, for peers no library would model: one that never
    reads (a tiny receive buffer), or that floods frames without waiting for anything."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, url: str, source: str = "127.0.0.1", rcvbuf: int | None = None
    ) -> RawPeer:
        import base64
        import socket
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # set before connect so the window is small from the start
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind((source, 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**16)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), RECV_TIMEOUT)
        if not head.startswith(b"HTTP/1.1 101"):
            writer.close()
            raise ConnectionRefusedError(head.split(b"\r\n", 1)[0].decode())
        return cls(reader, writer)

    @staticmethod
    def encode(payload: bytes, opcode: int = 0x1) -> bytes:
        """One masked client frame (RFC 6455 §5.2)."""
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = bytes([0x80 | opcode, 0x80 | n])
        elif n < 65536:
            head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + masked

    def stop_reading(self) -> None:
        """Read nothing more from the socket (until `frames`): the kernel buffers fill up."""
        self.writer.transport.pause_reading()  # type: ignore[attr-defined]

    def send(self, payload: bytes, opcode: int = 0x1) -> None:
        self.writer.write(self.encode(payload, opcode))

    async def drain(self) -> None:
        await self.writer.drain()

    async def frames(self, timeout: float = RECV_TIMEOUT) -> list[tuple[int, bytes]]:
        """Every frame until the server closes: (opcode, payload); the close frame last."""
        return await self.frames_until(None, timeout)

    async def frames_until(
        self, count: int | None, timeout: float = RECV_TIMEOUT
    ) -> list[tuple[int, bytes]]:
        """Frames until `count` were read (None: until the close frame or the end)."""
        self.writer.transport.resume_reading()  # type: ignore[attr-defined]
        out: list[tuple[int, bytes]] = []
        while count is None or len(out) < count:
            try:
                head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            except (asyncio.IncompleteReadError, ConnectionError):
                return out
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(n)
            out.append((opcode, payload))
            if opcode == 0x8:
                return out
        return out

    def close(self) -> None:
        self.writer.close()


@asynccontextmanager
async def arena(config: ServerConfig) -> AsyncIterator[tuple[FixServer, Any, Any]]:
    """A running server, a factory of hostile sessions (127.0.0.1) and of honest ones
    (HONEST_SOURCE)."""
    async with (
        running_server(config) as server,
        peers(server.url) as hostile,
        peers(server.url, HONEST_SOURCE) as honest,
    ):
        yield server, hostile, honest
