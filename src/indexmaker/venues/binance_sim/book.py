"""One symbol's order book on integer ticks and steps, with price-time priority.

Each price level is a FIFO queue of entries: resting user orders and the market model's own
quotes (`order is None`). Every operation that changes levels is one book update: it gets the
next update id (`u`), and the changed levels are collected for the next `@depth@100ms` diff
(web-socket-streams.md: U = first id in the event, u = last). A bounded history of old level
totals lets a snapshot be served as it was some updates ago (the "lagging snapshot" fault).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sortedcontainers import SortedDict

HISTORY = 1_024  # level changes remembered per book for lagging snapshots


class Entry:
    __slots__ = ("is_bid", "order", "price", "qty")

    def __init__(self, is_bid: bool, price: int, qty: int, order: Any) -> None:
        self.is_bid = is_bid
        self.price = price
        self.qty = qty
        self.order = order  # the resting user order, or None for the market model's quote


class Level:
    __slots__ = ("entries", "price", "total")

    def __init__(self, price: int) -> None:
        self.price = price
        self.entries: list[Entry] = []
        self.total = 0


@dataclass(frozen=True, slots=True)
class Diff:
    first_id: int  # U
    last_id: int  # u
    bids: list[tuple[int, int]]  # (price ticks, total steps); 0 removes the level
    asks: list[tuple[int, int]]


class Book:
    def __init__(self, first_update_id: int = 1) -> None:
        # Bids keyed by -price so that both sides iterate best first.
        self._sides: tuple[SortedDict, SortedDict] = (SortedDict(), SortedDict())
        self.update_id = first_update_id - 1  # last committed update id
        self.streamed_id = self.update_id  # last id already sent in a diff
        self._changed = False
        self._dirty: dict[tuple[bool, int], None] = {}
        self._history: deque[tuple[int, bool, int, int]] = deque(maxlen=HISTORY)

    # ----------------------------------------------------------------- reading
    def levels(self, is_bid: bool) -> Iterator[Level]:
        """Levels of one side, best first (a live view: do not mutate while iterating)."""
        side = self._sides[0 if is_bid else 1]
        return iter(side.values())

    def best(self, is_bid: bool) -> Level | None:
        side = self._sides[0 if is_bid else 1]
        return side.peekitem(0)[1] if side else None

    def top(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((bid ticks, qty), (ask ticks, qty)); (0, 0) for an empty side."""
        bid, ask = self.best(True), self.best(False)
        return (
            (bid.price, bid.total) if bid else (0, 0),
            (ask.price, ask.total) if ask else (0, 0),
        )

    def depth(
        self, limit: int, lag: int = 0
    ) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
        """(lastUpdateId, bids, asks), best first, at most `limit` levels a side. With `lag` > 0
        the book as it was `lag` updates ago (as far as the history reaches)."""
        if lag <= 0:
            bids = [
                (lv.price, lv.total) for _, lv in zip(range(limit), self.levels(True), strict=False)
            ]
            asks = [
                (lv.price, lv.total)
                for _, lv in zip(range(limit), self.levels(False), strict=False)
            ]
            return self.update_id, bids, asks
        target = max(self.update_id - lag, 0)
        totals = (
            {lv.price: lv.total for lv in self.levels(True)},
            {lv.price: lv.total for lv in self.levels(False)},
        )
        oldest = self.update_id
        for update_id, is_bid, price, old in reversed(self._history):
            if update_id <= target:
                break
            oldest = update_id
            totals[0 if is_bid else 1][price] = old
        target = min(max(target, oldest - 1), self.update_id)
        bids = sorted(((p, q) for p, q in totals[0].items() if q), reverse=True)[:limit]
        asks = sorted((p, q) for p, q in totals[1].items() if q)[:limit]
        return target, bids, asks

    # ---------------------------------------------------------------- mutation
    def add(self, is_bid: bool, price: int, qty: int, order: Any) -> Entry:
        side = self._sides[0 if is_bid else 1]
        key = -price if is_bid else price
        level = side.get(key)
        if level is None:
            level = side[key] = Level(price)
        entry = Entry(is_bid, price, qty, order)
        level.entries.append(entry)
        self._touch(is_bid, price, level.total)
        level.total += qty
        return entry

    def reduce(self, entry: Entry, qty: int) -> None:
        """Take `qty` off an entry (a fill or a smaller quote); an emptied entry leaves."""
        side = self._sides[0 if entry.is_bid else 1]
        key = -entry.price if entry.is_bid else entry.price
        level = side[key]
        self._touch(entry.is_bid, entry.price, level.total)
        entry.qty -= qty
        level.total -= qty
        if entry.qty <= 0:
            level.entries.remove(entry)
            if not level.entries:
                del side[key]

    def remove(self, entry: Entry) -> None:
        if entry.qty > 0:
            self.reduce(entry, entry.qty)

    def grow(self, entry: Entry, qty: int) -> None:
        """A larger quote at the same price (the market model's requote; keeps its place)."""
        side = self._sides[0 if entry.is_bid else 1]
        level = side[-entry.price if entry.is_bid else entry.price]
        self._touch(entry.is_bid, entry.price, level.total)
        entry.qty += qty
        level.total += qty

    def _touch(self, is_bid: bool, price: int, old_total: int) -> None:
        self._changed = True
        self._dirty[(is_bid, price)] = None
        self._history.append((self.update_id + 1, is_bid, price, old_total))

    def commit(self) -> bool:
        """Close one operation: if it changed levels it becomes update `update_id + 1`."""
        if not self._changed:
            return False
        self._changed = False
        self.update_id += 1
        return True

    def take_diff(self) -> Diff | None:
        """The changes since the last diff (current totals of every touched level)."""
        if not self._dirty:
            self.streamed_id = self.update_id
            return None
        bids: list[tuple[int, int]] = []
        asks: list[tuple[int, int]] = []
        sides = self._sides
        for is_bid, price in self._dirty:
            level = sides[0 if is_bid else 1].get(-price if is_bid else price)
            (bids if is_bid else asks).append((price, level.total if level else 0))
        self._dirty = {}
        diff = Diff(self.streamed_id + 1, self.update_id, bids, asks)
        self.streamed_id = self.update_id
        return diff
