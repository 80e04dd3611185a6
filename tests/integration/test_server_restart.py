"""A long-lived SDK client across a restart of the service (SPEC §5): the client hears the
server's close reason, notices the restart and says so, and keeps every new message (none
is taken for a repeat of what the earlier run sent)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from indexmaker.app.service import Service
from indexmaker.server import client as sdk
from indexmaker.server.session import SessionHub

from .conftest import TEST_KEYS, TcpProxy, sdk_start_service


async def _until(condition: object, what: str, limit: float = 10) -> None:
    async with asyncio.timeout(limit):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def _restart_behind(
    proxy: TcpProxy, running: Service, *, numbering_from_zero: bool = False
) -> Service:
    await running.stop()  # closes every session with 1001 "server shutting down"
    service, _ = await sdk_start_service()
    if numbering_from_zero:
        # A server that restarts its numbering at 1 (a build before the epoch, or a peer
        # that is not ours): the SDK must still see it.
        service.server.hub = SessionHub(service.config.server.session, full_signer=service.signer)
    proxy.target_port = service.server.bound_port
    return service


async def test_a_restart_is_noticed_and_new_messages_are_kept() -> None:
    first, _ = await sdk_start_service()
    proxy = TcpProxy(first.server.bound_port)
    await proxy.start()
    events: list[sdk.Event] = []
    second = None
    try:
        async with sdk.IndexMakerClient(
            proxy.url(), TEST_KEYS[1], server_address=first.signer.address
        ) as client:
            client.on_event = events.append
            await client.quote("SY100", "buy", Decimal(100))
            before = client.last_server_seq
            assert before is not None
            second = await _restart_behind(proxy, first)
            await _until(lambda: client.server_restarts == 1 and client.connected, "restart")
            quote = await client.quote("SY100", "buy", Decimal(100))
            assert quote.quantity_possible > 0
            # The new run numbers above everything the first run gave.
            assert client.last_server_seq is not None and client.last_server_seq > before
            assert client.duplicates_dropped == 0
    finally:
        await proxy.stop()
        if second is not None:
            await second.stop()
    closed = [e.reason for e in events if isinstance(e, sdk.Disconnected)]
    assert closed[0] == "closed by the server (1001: server shutting down)"
    (restarted,) = [e for e in events if isinstance(e, sdk.ServerRestarted)]
    assert "the server restarted" in restarted.reason and restarted.last_server_seq == before
    # Noticed before the new session was reported connected, so a watcher reads it in order.
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ServerRestarted") < len(kinds) - 1 - kinds[::-1].index("Connected")


async def test_a_server_whose_numbering_restarts_at_one_is_noticed_too() -> None:
    first, _ = await sdk_start_service()
    # Numbers 1, 2, … as well.
    first.server.hub = SessionHub(first.config.server.session, full_signer=first.signer)
    proxy = TcpProxy(first.server.bound_port)
    await proxy.start()
    events: list[sdk.Event] = []
    second = None
    try:
        async with sdk.IndexMakerClient(
            proxy.url(), TEST_KEYS[2], server_address=first.signer.address
        ) as client:
            client.on_event = events.append
            await client.quote("SY100", "buy", Decimal(100))
            second = await _restart_behind(proxy, first, numbering_from_zero=True)
            await _until(lambda: client.connected, "reconnect")
            # Its answers carry server_seq 1, 2, … below the cursor: kept, not dropped.
            quote = await asyncio.wait_for(client.quote("SY100", "buy", Decimal(100)), 10)
            assert quote.quantity_possible > 0
            assert client.duplicates_dropped == 0
    finally:
        await proxy.stop()
        if second is not None:
            await second.stop()
    restarts = [e for e in events if isinstance(e, sdk.ServerRestarted)]
    assert len(restarts) == 1 and "restarted its numbering" in restarts[0].reason
