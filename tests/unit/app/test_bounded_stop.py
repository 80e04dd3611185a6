"""serve_run.bounded: a stopping step never holds serve's exit past its bound."""

from __future__ import annotations

import asyncio

import pytest

from indexmaker.app.serve_run import bounded


async def test_a_step_that_ignores_its_cancellation_is_left_after_the_bound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()
    cancels = 0

    async def stubborn() -> None:  # swallows cancellation, as a peer's stuck close may
        nonlocal cancels
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                cancels += 1

    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        assert await bounded(stubborn(), "chain_path", timeout_s=0.05) is False
        assert loop.time() - started < 1.0  # returned at the bound, not when the step ends
        await asyncio.sleep(0)
        assert cancels == 1  # it was asked to stop once
    finally:  # let it end, or the test's own loop could not close
        release.set()
        for _ in range(3):
            await asyncio.sleep(0)
    timed_out = [r.msg for r in caplog.records if "stop_timed_out" in str(r.msg)]
    assert len(timed_out) == 1 and "chain_path" in str(timed_out[0])


async def test_a_step_done_in_time_returns_true_and_its_error_is_raised() -> None:
    async def quick() -> None:
        await asyncio.sleep(0)

    async def failing() -> None:
        raise RuntimeError("store close failed")

    assert await bounded(quick(), "service", timeout_s=5) is True
    with pytest.raises(RuntimeError, match="store close failed"):
        await bounded(failing(), "service", timeout_s=5)
