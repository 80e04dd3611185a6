"""Set-ups shared by the sell-side tests. Test code only.

On the simulated world (test_redemptions.py, test_opposite_side.py, test_sell_size.py, ...):
`world()` where alice and bob each hold 25 IDX, `order()` a request of theirs, `sent()` what
the clients were told, `floor_held()` a sell of 25 units stopped by its 1000 USDC floor.
On the bare ledgers (test_sell_allocation.py, test_allocation_grouping.py): a redemption as a
sell order opens it, and a lot bought for a buyer and assigned to it, the backing a sell
batch disposes of."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from indexmaker.core.events import ClientResponse, NewIndexOrderRequest
from indexmaker.core.holds import HoldCode
from indexmaker.core.ids import ClientOrderId, InstrumentId, PaymentId, Symbol, TradeId, client_key
from indexmaker.core.redemption_events import RedemptionStatus
from indexmaker.engine.inventory import InventoryManager
from indexmaker.model.lot import Lot
from indexmaker.model.redemption import Redemption, RedemptionState
from indexmaker.model.side import Side
from indexmaker.sim.scenario import Scenario, ScenarioRun, build

D = Decimal
IDX = Symbol("IDX")


def world(withdraw_delay: str = "2s", **config: str) -> ScenarioRun:
    """Scenario 10's market: alice and bob each hold 25 IDX bought at 10 and 20 in one batch
    (lots 1: 100 AAA, 2: 50 BBB)."""
    data: dict[str, Any] = {
        "config": {"price_threshold": "0", "fee_factor": "1.001", **config},
        "exchange": {"fee_rate": "0.001", "latency": "20ms"},
        "indexes": {"IDX": {"AAAUSDC": "2", "BBBUSDC": "1"}},
        "books": {
            "AAAUSDC": {"bids": [["9.9", "1000"]], "asks": [["10", "1000"]]},
            "BBBUSDC": {"bids": [["19.9", "1000"]], "asks": [["20", "1000"]]},
        },
        "bridges": {
            "across": {"fixed_fee": "1.5", "delay": "2s"},
            "wallet": {"delay": "2s"},
            "withdraw": {"delay": withdraw_delay},
        },
    }
    state = build(Scenario("redemptions", Path("redemptions"), data))
    for name in ("alice", "bob"):
        state.world.deposit(state.client(name), D("1002.5"))
        state.world.submit(order(name, state, "A1", Side.BUY, "1002.5"))
    state.world.advance(timedelta(seconds=5.1))
    for name in ("alice", "bob"):
        assert state.world.chain.minted[(state.client(name), IDX)] == D(25)
    return state


def order(
    name: str, state: ScenarioRun, cid: str, side: Side, amount: str, floor: str | None = None
) -> NewIndexOrderRequest:
    return NewIndexOrderRequest(
        state.client(name),
        ClientOrderId(cid),
        IDX,
        side,
        D(amount),
        D(floor) if floor is not None else None,
    )


def sent(state: ScenarioRun, since: int = 0) -> list[ClientResponse]:
    return [m for _, m in state.world.log.messages[since:]]


def floor_held(state: ScenarioRun, name: str = "alice") -> Redemption:
    """`name` sells all 25 IDX (sell S1) with a floor of 1000 USDC: escrowed, then stopped at
    the bids (25 x 39.7 net of fees is 991.507499 < 1000), waiting in Ready."""
    state.world.submit(order(name, state, "S1", Side.SELL, "25", floor="1000"))
    state.world.advance(timedelta(seconds=1.05))
    redemption = state.world.engine.redemptions.get(state.client(name), ClientOrderId("S1"))
    assert redemption is not None and redemption.state is RedemptionState.READY
    assert redemption.notice == (RedemptionStatus.STOPPED, HoldCode.BELOW_FLOOR)
    return redemption


def redemption(n: int, symbol: Symbol, quantity: Decimal, now: datetime, client: str) -> Redemption:
    """Redemption `R{n}` of `quantity` index units (all escrowed, no floor), client order id
    `s{n}` of `client` (an address on chain 1), arrival `n`."""
    return Redemption(
        PaymentId(f"R{n}"),
        client_key(1, client),
        ClientOrderId(f"s{n}"),
        symbol,
        quantity,
        quantity,
        None,
        now,
        n,
    )


def assigned_lot(
    inventory: InventoryManager,
    asset: InstrumentId,
    trade_id: str,
    price: Decimal,
    quantity: Decimal,
    fee: Decimal,
    now: datetime,
    buyer: str,
    assigned: Decimal,
) -> Lot:
    """A lot of `quantity` bought at `price` (USDC) with `fee` (USDC), `assigned` of it to
    the buy order `buyer` (client order id): backing a sell batch can dispose of."""
    lot = inventory.open_lot(asset, TradeId(trade_id), price, quantity, fee, now, None)
    inventory.assign(lot, ClientOrderId(buyer), assigned, now)
    return lot
