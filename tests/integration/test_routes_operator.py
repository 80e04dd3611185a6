"""`indexmaker routes` on a running service, and a restart resuming a given-up lot (issue 11):
the service in process on loopback with a durable store in a temporary data directory, the
CLI run as the operator runs it (its own thread, through the data directory's request files);
every wait bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from indexmaker.app.cli import main
from indexmaker.app.config import StoreConfig
from indexmaker.app.operator_requests import REQUEST
from indexmaker.app.service import Service
from indexmaker.core.events import Alert, Command, HopFailed, RouteCollateral
from indexmaker.server import client as sdk

from .conftest import TEST_KEYS, sdk_fast_config

LOT = "EVM:ARBITRUM:USDC#1"


class Seen(list[Command]):
    def __call__(self, command: Command) -> None:
        if isinstance(command, RouteCollateral | Alert):
            self.append(command)

    def routes(self) -> list[RouteCollateral]:
        return [c for c in self if isinstance(c, RouteCollateral)]

    async def until(self, test: Callable[[Seen], bool], seconds: float = 10) -> None:
        async with asyncio.timeout(seconds):
            while not test(self):
                await asyncio.sleep(0.02)


def service_in(data: Path) -> tuple[Service, Seen]:
    # The bridge takes a minute: the hop is still in flight when the test refuses it.
    config = sdk_fast_config(bridge_delay=timedelta(seconds=60))
    service = Service(replace(config, store=StoreConfig(data), operator_dir=data / "operator"))
    seen = Seen()
    service.runtime.observers.append(seen)
    return service, seen


async def give_up_a_lot(service: Service, seen: Seen) -> RouteCollateral:
    """Deposit on the source chain and refuse its Across hop until the router gives it up."""
    async with sdk.IndexMakerClient(service.server.url, TEST_KEYS[0]) as client:
        await sdk.sim_deposit(client.url, client.address, Decimal(500))
    await seen.until(lambda s: len(s.routes()) == 1)
    first = seen.routes()[0]
    for attempt in range(3):
        await service.runtime.put(HopFailed(seen.routes()[-1].transfer_id, "pool paused"))
        await seen.until(lambda s, n=attempt: len(s.routes()) == min(n + 2, 3))
    await seen.until(lambda s: any(isinstance(c, Alert) and c.code == "route_failed" for c in s))
    return first


async def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = await asyncio.to_thread(main, ["routes", *args, "--timeout", "5"])
    out, err = capsys.readouterr()
    return status, out, err


async def test_routes_lists_and_resumes_a_given_up_lot_on_a_running_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INDEXMAKER_DATA_DIR", str(tmp_path))
    service, seen = service_in(tmp_path)
    await service.start()
    try:
        first = await give_up_a_lot(service, seen)
        status, out, _ = await cli(capsys)
        assert status == 0, out
        assert out.startswith(f"{LOT}  client 42161:") and "500 USDC  waits at EVM:ARBITRUM" in out
        assert "why: pool paused; given up 20" in out
        # Only this user may ask: the CLI made the directory its own.
        assert (tmp_path / "operator").stat().st_mode & 0o777 == 0o700
        status, _, err = await cli(capsys, "resume", "--lot", "EVM:ARBITRUM:USDC#9")
        assert status == 1
        assert f"lot: EVM:ARBITRUM:USDC#9 is not a given-up lot (given up: {LOT})" in err
        routed = len(seen.routes())
        status, out, _ = await cli(capsys, "resume", "--lot", LOT)
        assert (status, out) == (0, f"resumed {LOT}\nno given-up lots\n")
        resumed = seen.routes()[routed:]
        assert [r.hop_key for r in resumed] == [first.hop_key]  # same hop key, once
        status, _, err = await cli(capsys, "resume", "--lot", LOT)
        assert status == 1 and "(given up: none)" in err
        assert list((tmp_path / "operator").iterdir()) == []  # every request answered, taken
    finally:
        await service.stop()
    # No service: no answer within the wait, and the request is taken back.
    status = await asyncio.to_thread(main, ["routes", "--timeout", "0.3"])
    assert status == 1 and "no answer within 0.3 s" in capsys.readouterr().err
    assert not list((tmp_path / "operator").glob(f"*{REQUEST}"))


async def test_a_restart_resumes_a_given_up_lot_once(tmp_path: Path) -> None:
    service, seen = service_in(tmp_path)
    await service.start()
    try:
        first = await give_up_a_lot(service, seen)
    finally:
        await service.stop()
    restarted, seen = service_in(tmp_path)
    assert restarted.engine.router.given_up() != []  # still given up after replay
    await restarted.start()
    try:
        await seen.until(lambda s: bool(s.routes()))
        (resumed,) = seen.routes()
        assert resumed.hop_key == first.hop_key
        assert restarted.engine.router.given_up() == []
        assert any(isinstance(c, Alert) and "(restart)" in c.message for c in seen)
    finally:
        await restarted.stop()
    # A second restart carries the resumed hop on (in flight), never resumes it again.
    again, seen = service_in(tmp_path)
    assert again.engine.router.given_up() == [] and again.engine.router.in_flight() == 1
    await again.start()
    try:
        await asyncio.sleep(0.3)
        assert not any(isinstance(c, Alert) and c.code == "route_resumed" for c in seen)
    finally:
        await again.stop()
    assert not (tmp_path / "operator").exists()  # serve makes nothing there itself
