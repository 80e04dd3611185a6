"""Operator requests to a running `serve` through files in its data directory (issue 11;
docs/decisions.md, "Operator requests as files in the data directory").

`indexmaker routes` writes `<data dir>/operator/<id>.request.json` (the directory made 0700
by the CLI when missing; written to a temporary name, then renamed: never read half-written);
the service looks there every POLL_SECONDS, answers each request in `<id>.answer.json`
(renamed into place too) and deletes the request. No socket is opened: only who may write
the data directory can ask (a request file of another owner than the service's is refused),
which is who can already change the store. A FIX client or any network peer cannot. The
service itself creates nothing there (with PostgreSQL the data directory may stay unused).

Requests (JSON objects):
- `{"command": "list"}`: the given-up collateral lots and those held below their route's cost
  (engine/route_resume.py's views);
- `{"command": "resume", "lot": "ORIGIN#SEQ" | null}`: route one given-up lot again, or every
  one, by a journalled `ResumeRoutes` input (so a restart replays it).
Answers: `{"ok": true, "resumed": [names], "given_up": [lots], "held": [lots] (list only)}` or
`{"ok": false, "error": "lot: …"}` (nothing changed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import stat
from pathlib import Path
from typing import Any

from indexmaker.app.runtime import Runtime
from indexmaker.core.events import ResumeRoutes
from indexmaker.engine.route_resume import given_up_view, held_view
from indexmaker.observability.logging import log_event

OPERATOR_DIR = "operator"  # under the data directory
REQUEST, ANSWER = ".request.json", ".answer.json"
POLL_SECONDS = 0.5
MAX_REQUEST_BYTES = 4096
MAX_PER_ROUND = 16  # requests answered per look: a flood waits its turn, the loop stays short
# "EVM:ARBITRUM:USDC#1", or a merged lot's "EVM:ARBITRUM:USDC#1+EVM:ARBITRUM:USDC#2" (over
# four lots: "first+38 more+last", engine/route_holds.py merged_name)
_ONE_LOT = r"[A-Za-z0-9:_.-]{1,64}#[0-9]{1,20}"
LOT_NAME = re.compile(rf"^{_ONE_LOT}(?:\+(?:{_ONE_LOT}|[0-9]{{1,9}} more)){{0,15}}$")
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


class BadRequest(ValueError):
    """A request the service refuses (`field: reason`), nothing done."""


class NotARequest(OSError):
    """A name in the directory that is no regular file (a FIFO, a directory, a device)."""


def read_request_file(path: Path) -> bytes:
    """The request's bytes (at most MAX_REQUEST_BYTES + 1: `parse_request` refuses more) from a
    regular file of the service's own user. Opened without following a symlink and without
    blocking: a FIFO left there would otherwise stall the event loop, and the service's stop
    with it. NotARequest for anything but a regular file; BadRequest for another owner's."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotARequest(f"{path.name}: not a regular file")
        if info.st_uid != os.getuid():
            raise BadRequest("request: written by another user")
        return os.read(fd, MAX_REQUEST_BYTES + 1)
    finally:
        os.close(fd)


def check_lot(lot: object) -> str | None:
    """`lot` as a lot name ("ORIGIN#SEQ") or None; BadRequest for anything else."""
    if lot is None:
        return None
    if not isinstance(lot, str) or not LOT_NAME.match(lot):
        raise BadRequest(f"lot: {lot!r} is not ORIGIN#SEQ (e.g. EVM:ARBITRUM:USDC#1)")
    return lot


def parse_request(data: bytes) -> tuple[str, str | None]:
    """(command, lot) of a request file's bytes; BadRequest naming what is wrong."""
    if len(data) > MAX_REQUEST_BYTES:
        raise BadRequest(f"request: longer than {MAX_REQUEST_BYTES} bytes")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("request: not a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("request: not a JSON object")
    command = body.get("command")
    if command not in ("list", "resume"):
        raise BadRequest(f"command: {command!r} is not list or resume")
    if command == "list" and body.get("lot") is not None:
        raise BadRequest("lot: only with resume")
    return command, check_lot(body.get("lot"))


def write_atomically(path: Path, body: dict[str, Any]) -> None:
    """`body` as JSON in `path`, which a reader sees whole or not at all."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(body, indent=1))
    os.replace(partial, path)


class OperatorRequests:
    """Answers the request files of `directory` for the service of `runtime` (a service task:
    `run` until cancelled at stop)."""

    def __init__(self, runtime: Runtime, directory: Path) -> None:
        self.runtime, self.directory = runtime, directory
        self._skipped: set[str] = set()  # names that cannot be removed (a directory): logged once

    async def run(self) -> None:
        while True:  # a service task: cancelled at stop
            # No directory (no request ever made): glob finds nothing.
            names = sorted(self.directory.glob(f"*{REQUEST}"))
            for path in [p for p in names if p.name not in self._skipped][:MAX_PER_ROUND]:
                try:
                    await self.answer(path)
                except OSError as error:  # one bad file never stops the service
                    log_event("operator_request_failed", logging.WARNING, reason=str(error))
                    try:
                        path.unlink()
                    except OSError:
                        self._skipped.add(path.name)
            await asyncio.sleep(POLL_SECONDS)

    async def answer(self, path: Path) -> None:
        """Carry out the request of `path` and answer it beside it; the request is deleted."""
        request_id = path.name.removesuffix(REQUEST)
        if not REQUEST_ID.match(request_id) or path.is_symlink():
            path.unlink()  # not one of ours: no answer under a name we did not choose
            return
        try:
            command, lot = parse_request(read_request_file(path))
            body = await self._carry_out(command, lot)
        except BadRequest as error:
            body = {"ok": False, "error": str(error)}
        write_atomically(path.with_name(request_id + ANSWER), body)
        path.unlink()
        log_event(
            "operator_request",
            request=request_id,
            ok=body["ok"],
            error=body.get("error"),
            resumed=",".join(body.get("resumed", ())),
        )

    async def _carry_out(self, command: str, lot: str | None) -> dict[str, Any]:
        await self.runtime.quiet()
        before = given_up_view(self.runtime.engine)
        if command == "list":
            held = held_view(self.runtime.engine)
            return {"ok": True, "resumed": [], "given_up": before, "held": held}
        names = [str(view["lot"]) for view in before]
        if lot is not None and lot not in names:
            given = ", ".join(names) or "none"
            raise BadRequest(f"lot: {lot} is not a given-up lot (given up: {given})")
        if not names:
            return {"ok": True, "resumed": [], "given_up": []}
        await self.runtime.put(ResumeRoutes(lot, "operator"))
        if not await self.runtime.handled_through(self.runtime.inputs_put):
            raise BadRequest("service: stopping; the request may not have been handled")
        await self.runtime.quiet()
        after = given_up_view(self.runtime.engine)
        left = {str(view["lot"]) for view in after}
        return {"ok": True, "resumed": [n for n in names if n not in left], "given_up": after}
