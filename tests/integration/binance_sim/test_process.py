"""The simulator as a process: options refused with exit 2, replay of recorded depth,
server pings that need pongs, serverShutdown then close on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from .conftest import INDEXMAKER, best, started


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--depth-usdc", "9"], "--depth-usdc"),
        (["--volatility", "x"], "--volatility: not a decimal"),
        (["--updates-per-second", "50"], "--updates-per-second"),
        (["--replay", "/nonexistent.jsonl"], "--replay: no such file"),
    ],
)
def test_bad_options_exit_2_naming_the_option(args: list[str], message: str) -> None:
    result = subprocess.run(
        [INDEXMAKER, "exchange-sim", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and message in result.stderr


def test_help_lists_market_options_and_test_keys() -> None:
    result = subprocess.run(
        [INDEXMAKER, "exchange-sim", "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    for text in (
        "--seed",
        "--levels",
        "--volatility",
        "--replay",
        "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2z",
        "Ed25519",
    ):
        assert text in result.stdout


def test_replay_of_recorded_depth(tmp_path: Path) -> None:
    recording = tmp_path / "depth.jsonl"
    lines = [
        {
            "symbol": "ABCUSDT",
            "lastUpdateId": 10,
            "bids": [["1.2300", "10"], ["1.2200", "5"]],
            "asks": [["1.2400", "7"]],
        },
        {
            "stream": "abcusdt@depth@100ms",
            "data": {
                "e": "depthUpdate",
                "E": 1000,
                "s": "ABCUSDT",
                "U": 11,
                "u": 11,
                "b": [["1.2300", "0"]],
                "a": [["1.2500", "3.5"]],
            },
        },
        {
            "e": "depthUpdate",
            "E": 1200,
            "s": "ABCUSDT",
            "U": 12,
            "u": 12,
            "b": [["1.2250", "2"]],
            "a": [],
        },
    ]
    recording.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    with started("--replay", str(recording)) as sim:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            bids, asks = best(sim, "ABCUSDT")
            if bids and bids[0][0] == "1.22500000":
                break
            time.sleep(0.05)
        assert bids == [["1.22500000", "2.00000000"], ["1.22000000", "5.00000000"]]
        assert asks == [["1.24000000", "7.00000000"], ["1.25000000", "3.50000000"]]


async def test_pings_need_pongs_and_sigterm_sends_server_shutdown() -> None:
    with started("--symbols", "BTCUSDC", "--ping-seconds", "0.3", "--pong-timeout", "2") as sim:
        async with aiohttp.ClientSession() as session:
            polite = await session.ws_connect(f"{sim.ws}/ws/btcusdc@bookTicker", autoping=True)
            silent = await session.ws_connect(f"{sim.ws}/ws/btcusdc@bookTicker", autoping=False)
            events: list[dict[str, object]] = []

            async def read_polite() -> None:  # reading is what answers the pings
                with contextlib.suppress(aiohttp.ClientConnectionResetError):
                    async for message in polite:
                        if message.type == aiohttp.WSMsgType.TEXT:
                            events.append(json.loads(message.data))

            reader = asyncio.create_task(read_polite())
            closed = False
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not closed:
                try:
                    message = await silent.receive(timeout=1)
                except TimeoutError:
                    continue
                closed = message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                )
            assert closed  # never answered a ping: dropped
            await asyncio.sleep(1)
            assert not polite.closed and not reader.done()  # answered every ping: still there
            sim.process.terminate()
            await asyncio.wait_for(reader, 10)
            assert events and events[-1].get("e") == "serverShutdown"
            assert sim.process.wait(10) == 0
