"""Crash points for the crash harness: the process kills itself with SIGKILL at a chosen spot.

`INDEXMAKER_CRASH_AT` names one spot; reaching it ends the process at once, exactly as a
`kill -9` or a power cut would: no handler, no flush. Unset (production), `hit` is one
attribute test. Two forms:

- `<point>:<n>`: the n-th hit of `point` in this life of the process (e.g. `commit:7`).
- `<point>:<Kind>#<n>`: a place in the lifecycle, counted durably across restarts: the
  n-th journal input or outbox effect of that kind ever recorded (e.g. `effect:MintIndex#2`
  is right after the second mint left the process, `commit:ExchangeFill#5` right after the
  commit that holds the fifth fill, `before_commit:NewIndexOrderRequest#3` with the third
  order buffered but not yet durable).

Points: `commit` (right after a durable commit), `before_commit` (a group buffered, not yet
durable), `effect` (right after an effect left the process, before it is marked done).

A third form names a step of an on-chain collateral hop (issue 11), counted in this life of
the process: `chain:<step>#<n>`, the n-th time a hop reaches `<step>` (CHAIN_STEPS, hit by
the chain adapters through `step`), e.g. `chain:across_deposited#2` right after the second
Across deposit this process made is mined, before any fill. Its steps:
`across_released` (custody's release to the issuer mined on the source chain),
`across_deposit_recorded` (the deposit written to the pending-transaction store, not yet
broadcast), `across_deposited` (the deposit mined), `across_filled` (the relayer's fill
seen, the hop not yet reported) and `wallet_released` (custody's release to the exchange's
deposit address mined, its credit not yet awaited).
"""

from __future__ import annotations

import os
import signal
from typing import Protocol

ENV = "INDEXMAKER_CRASH_AT"
POINTS = ("commit", "before_commit", "effect")
CHAIN = "chain"
CHAIN_STEPS = (
    "across_released",
    "across_deposit_recorded",
    "across_deposited",
    "across_filled",
    "wallet_released",
)


class _Counted(Protocol):
    def entries(self, after: int = 0) -> object: ...

    def effect_kinds(self) -> list[str]: ...


class CrashPoints:
    def __init__(self, spec: str | None) -> None:
        """Raises ValueError naming ENV for a spec of neither form."""
        self._point: str | None = None
        self._at = 0
        self._count = 0
        self._kind: str | None = None  # the durable form's kind
        self._seen = 0  # inputs/effects of that kind recorded so far (buffered included)
        self._taken = 0  # ... of which a commit has taken (in flight or durable)
        self._effect_key: str | None = None  # the outbox key of the n-th effect of the kind
        self.chain_step: str | None = None  # the chain form's step (None: no chain point)
        if spec and spec.startswith(CHAIN + ":"):
            self._chain_form(spec)
        elif spec:
            point, _, target = spec.partition(":")
            kind, hash_, n = target.rpartition("#")
            if not hash_:
                kind, n = "", target
            if point not in POINTS or not n.isdigit() or int(n) < 1:
                raise ValueError(
                    f"{ENV}: expected <point>:<n> or <point>:<Kind>#<n> with a point of "
                    f"{', '.join(POINTS)} and n >= 1, got {spec!r}"
                )
            self._point, self._at, self._kind = point, int(n), kind or None

    def _chain_form(self, spec: str) -> None:
        step, hash_, n = spec.removeprefix(CHAIN + ":").rpartition("#")
        if step not in CHAIN_STEPS or not hash_ or not n.isdigit() or int(n) < 1:
            raise ValueError(
                f"{ENV}: expected {CHAIN}:<step>#<n> with a step of {', '.join(CHAIN_STEPS)} "
                f"and n >= 1, got {spec!r}"
            )
        self.chain_step, self._at = step, int(n)

    @classmethod
    def from_env(cls) -> CrashPoints:
        return cls(os.environ.get(ENV))

    @property
    def durable(self) -> bool:
        return self._kind is not None

    def count_existing(self, store: _Counted) -> None:
        """Start the durable count from what the store already holds (at open)."""
        if self._kind is None:
            return
        # Only what compaction kept (the harness's runs stay below snapshot_every).
        after = getattr(store, "compacted_through", 0)
        kinds = [type(e.event).__name__ for e in store.entries(after)]  # type: ignore[attr-defined]
        kinds += store.effect_kinds()
        self._seen = self._taken = kinds.count(self._kind)

    def counted(self, what: str, kind: str, key: str | None = None) -> None:
        """The store recorded one input or effect of `kind` (buffered)."""
        if kind != self._kind:
            return
        self._seen += 1
        if self._seen == self._at and what == "effect":
            self._effect_key = key

    def take(self) -> tuple[int, int]:
        """A commit takes what is buffered: the durable count's span (after, upto] that
        its group holds. What is recorded after this belongs to the next group (commits
        run in the store's writer thread while the engine goes on: store/sql.py)."""
        span = (self._taken, self._seen)
        self._taken = self._seen
        return span

    def hit(self, point: str, key: str | None = None, span: tuple[int, int] | None = None) -> None:
        """The process is at `point` (`key`: the effect that just left, for `effect`;
        `span`: the group's span from `take`, for `commit` and `before_commit`)."""
        if self._point is None:
            return
        if self._kind is None:
            if point == self._point:
                self._count += 1
                if self._count == self._at:
                    _die()
            return
        if point == "effect":
            if self._point == "effect" and key is not None and key == self._effect_key:
                _die()
            return
        after, upto = span if span is not None else (self._taken, self._seen)
        if point == self._point and after < self._at <= upto:
            _die()  # this group holds the n-th of the kind

    def step(self, name: str) -> None:
        """A collateral hop is at chain step `name` (one of CHAIN_STEPS): the process dies
        when it is the step and the count of the `chain:<step>#<n>` spec. Unset, one
        attribute test (the adapters call it on every hop)."""
        if self.chain_step is None or name != self.chain_step:
            return
        self._count += 1
        if self._count == self._at:
            _die()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


NO_CRASH = CrashPoints(None)
