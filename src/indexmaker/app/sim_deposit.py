"""`POST /sim/deposit` (operator/dev, app/service.py): a client's deposit on the in-process
simulated source chain, served only when enabled and only to loopback peers."""

from __future__ import annotations

import ipaddress
import json
from decimal import Decimal
from typing import Any

from aiohttp import web

from indexmaker.app.config import SimConfig
from indexmaker.core.ids import client_key
from indexmaker.observability.logging import log_event
from indexmaker.server.wire_values import check_address, check_amount
from indexmaker.sim.adapters import SimChainPort

SOURCE_CHAIN_ID = 42161
DEPOSIT_CHAIN_IDS = (SOURCE_CHAIN_ID,)  # the chains the simulated chain takes deposits on


async def handle_sim_deposit(
    request: web.Request, sim: SimConfig, chain_port: SimChainPort
) -> web.Response:
    """Operator/dev endpoint: a client's deposit on the simulated source chain.

    Served only when the operator enabled it (`sim.deposit_endpoint`, `serve
    --sim-deposits`) and only to loopback peers: it credits USDC out of thin air."""
    if not sim.deposit_endpoint:
        return _error(
            404,
            "POST /sim/deposit is off: enable sim.deposit_endpoint "
            "(or start `indexmaker serve --sim-deposits`)",
        )
    if not _is_loopback(request.remote):
        return _error(403, "POST /sim/deposit is served to loopback clients only")
    try:
        body = await request.json(loads=json.loads)
    except ValueError:
        return _error(400, "body: expected a JSON object")
    try:
        chain_id, address, amount = parse_sim_deposit(body, sim.max_deposit)
    except ValueError as error:
        return _error(400, str(error))
    deposit = await chain_port.deposit(client_key(chain_id, address), amount)
    log_event("sim_deposit", address=address, amount=amount, seq=deposit.seq_num)
    return web.json_response(
        {"seq_num": deposit.seq_num, "address": address, "amount": str(amount)}
    )


def parse_sim_deposit(body: Any, max_deposit: Decimal) -> tuple[int, str, Decimal]:
    """(chain_id, address, amount) of a /sim/deposit body, or ValueError naming the field.

    {"address": "0x…", "amount": "1000" (USDC, ≤ 6 decimals, ≤ max_deposit), "chain_id":
    42161 (optional; a JSON integer naming a chain the simulated chain takes deposits on)}."""
    if not isinstance(body, dict):
        raise ValueError(f"body: expected a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - {"address", "amount", "chain_id"})
    if unknown:
        raise ValueError(f"body: unknown fields {unknown}")
    address = body.get("address")
    if not isinstance(address, str):
        raise ValueError("address: expected a string 0x followed by 40 hex digits")
    address = check_address(address)
    amount = check_amount("amount", body.get("amount"))
    if amount > max_deposit:
        raise ValueError(f"amount: more than the simulated chain's limit of {max_deposit} USDC")
    chain_id = body.get("chain_id", SOURCE_CHAIN_ID)
    if type(chain_id) is not int:  # not a bool, not 42161.5, not "42161"
        raise ValueError(f"chain_id: expected an integer, got {json.dumps(chain_id)}")
    if chain_id not in DEPOSIT_CHAIN_IDS:
        raise ValueError(
            f"chain_id: the simulated chain takes deposits on {list(DEPOSIT_CHAIN_IDS)} only"
        )
    return chain_id, address, amount


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


def _error(status: int, reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=status)
