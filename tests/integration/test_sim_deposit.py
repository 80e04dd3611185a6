"""POST /sim/deposit: validated field by field (400 naming the field), refused whole when the
operator has not enabled it (404 saying how), and crediting exactly what was asked."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from indexmaker.app.service import SOURCE_CHAIN_ID, Service
from indexmaker.core.events import DepositObserved

from .conftest import sdk_fast_config, sdk_start_service

ADDRESS = "0x" + "ab" * 20


async def _post(service: Service, body: Any, *, raw: bytes | None = None) -> tuple[int, Any]:
    base = service.server.url.rsplit("/", 1)[0].replace("ws://", "http://", 1)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
        async with http.post(base + "/sim/deposit", **kwargs) as response:
            return response.status, await response.json(content_type=None)


@pytest.fixture
async def enabled() -> AsyncIterator[Service]:
    service, _ = await sdk_start_service()
    deposits: list[DepositObserved] = []
    original = service.chain_port.deposit  # the simulated chain pushes it to the engine

    async def deposit(client: Any, amount: Decimal) -> DepositObserved:
        event = await original(client, amount)
        deposits.append(event)
        return event

    service.chain_port.deposit = deposit  # type: ignore[method-assign]
    service.deposits = deposits  # type: ignore[attr-defined]
    try:
        yield service
    finally:
        await service.stop()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([{"address": ADDRESS, "amount": "10"}], "body: expected a JSON object, got list"),
        ("10", "body: expected a JSON object, got str"),
        ({"address": ADDRESS, "amount": "10", "chain_id": 42161.5}, "chain_id: expected an int"),
        ({"address": ADDRESS, "amount": "10", "chain_id": 10**30}, "chain_id: the simulated"),
        ({"address": ADDRESS, "amount": "10", "chain_id": True}, "chain_id: expected an integer"),
        ({"address": ADDRESS, "amount": "10", "chain_id": "42161"}, "chain_id: expected an int"),
        ({"address": ADDRESS, "amount": "10", "chain_id": 99999}, "chain_id: the simulated"),
        ({"address": ADDRESS, "amount": "1e3"}, "amount: '1e3' is not a plain decimal"),
        ({"address": ADDRESS, "amount": 10}, "amount: expected a decimal string"),
        ({"address": ADDRESS, "amount": "0"}, "amount: must be greater than 0"),
        ({"address": ADDRESS, "amount": "0.0000001"}, "amount: more than 6 decimals"),
        ({"address": ADDRESS, "amount": "1000000.000001"}, "amount: more than the simulated"),
        ({"address": ADDRESS, "amount": "9" * 40}, "amount: too large"),
        ({"address": 12, "amount": "10"}, "address: expected a string"),
        ({"address": "0x12", "amount": "10"}, "address:"),
        ({"address": ADDRESS, "amount": "10", "memo": "x"}, "body: unknown fields ['memo']"),
    ],
)
async def test_bad_deposits_get_a_400_naming_the_field(
    enabled: Service, body: Any, message: str
) -> None:
    status, answer = await _post(enabled, body)
    assert status == 400, answer
    assert answer["error"].startswith(message)
    assert enabled.deposits == []  # type: ignore[attr-defined]


async def test_a_body_that_is_not_json_gets_a_400(enabled: Service) -> None:
    status, answer = await _post(enabled, None, raw=b"{not json")
    assert (status, answer["error"]) == (400, "body: expected a JSON object")


async def test_a_valid_deposit_credits_exactly_that_amount(enabled: Service) -> None:
    status, answer = await _post(
        enabled, {"address": ADDRESS, "amount": "1000000", "chain_id": SOURCE_CHAIN_ID}
    )
    assert status == 200, answer
    (deposit,) = enabled.deposits  # type: ignore[attr-defined]
    assert deposit.client == (SOURCE_CHAIN_ID, ADDRESS)
    assert deposit.amount == Decimal(1_000_000)
    assert answer == {"seq_num": deposit.seq_num, "address": ADDRESS, "amount": "1000000"}


async def test_off_unless_the_operator_enables_it() -> None:
    base = sdk_fast_config()
    config = dataclasses.replace(base, sim=dataclasses.replace(base.sim, deposit_endpoint=False))
    service, sent = await sdk_start_service(config)
    try:
        status, answer = await _post(service, {"address": ADDRESS, "amount": "10"})
        assert status == 404
        assert "sim.deposit_endpoint" in answer["error"] and "--sim-deposits" in answer["error"]
        await service.runtime.drain()
        assert sent.messages == []
    finally:
        await service.stop()
