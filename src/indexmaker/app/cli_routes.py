"""`indexmaker routes`: the collateral lots whose route was given up, and resuming them, on a
running `serve` (issue 11):

    indexmaker routes                      # given-up (and held) lots: where they wait and why
    indexmaker routes resume               # route every given-up lot again now
    indexmaker routes resume --lot EVM:ARBITRUM:USDC#1

The request goes through the data directory the service's settings name (`--config`, the same
file as `serve`'s, and INDEXMAKER_DATA_DIR): app/operator_requests.py. Exit status: 0 done,
1 refused or no service answered, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from indexmaker.app.cli_args import seconds_arg
from indexmaker.app.operator_requests import (
    ANSWER,
    REQUEST,
    BadRequest,
    check_lot,
    write_atomically,
)

POLL_SECONDS = 0.1


def add_routes_commands(commands: Any) -> None:
    """Register `routes` on the `indexmaker` subparsers."""
    routes = commands.add_parser(
        "routes", help="collateral lots whose route was given up; resume them on a running serve"
    )
    routes.add_argument(
        "action", nargs="?", choices=("list", "resume"), default="list", help="(default list)"
    )
    routes.add_argument("--lot", help="resume only this lot, ORIGIN#SEQ (as listed)")
    routes.add_argument("--config", type=Path, help="the settings file serve runs with")
    routes.add_argument(
        "--timeout", type=seconds_arg, default=10.0, help="seconds to wait for serve (default 10)"
    )


def run_routes(args: argparse.Namespace) -> int:
    from indexmaker.app.config import ConfigError, load_config

    try:
        if args.lot is not None and args.action != "resume":
            raise BadRequest("--lot: only with resume")
        lot = check_lot(args.lot)
        directory = load_config(args.config).operator_dir
    except (BadRequest, ConfigError) as error:
        print(f"indexmaker routes: {error}", file=sys.stderr)
        return 2
    assert directory is not None  # from settings, always named
    if not directory.parent.is_dir():
        print(
            f"indexmaker routes: no service uses {directory.parent} (no such directory): "
            "is `indexmaker serve` running with these settings?",
            file=sys.stderr,
        )
        return 1
    directory.mkdir(mode=0o700, exist_ok=True)  # this user's only: who may ask serve
    body: dict[str, Any] = {"command": args.action}
    if args.action == "resume":
        body["lot"] = lot
    answer = ask(directory, body, args.timeout)
    if answer is None:
        print(
            f"indexmaker routes: no answer within {args.timeout:g} s from a service using "
            f"{directory.parent}: is `indexmaker serve` running?",
            file=sys.stderr,
        )
        return 1
    if not answer.get("ok"):
        print(f"indexmaker routes: {answer.get('error')}", file=sys.stderr)
        return 1
    print_answer(answer)
    return 0


def ask(directory: Path, body: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    """Leave request `body` in `directory` and wait up to `timeout` s for its answer (None:
    none came; the request is taken back unless the service took it meanwhile)."""

    request_id = uuid.uuid4().hex
    request = directory / f"{request_id}{REQUEST}"
    answer = directory / f"{request_id}{ANSWER}"
    write_atomically(request, body)
    give_up_at = time.monotonic() + timeout
    while time.monotonic() < give_up_at:  # bounded by the timeout
        if answer.exists():
            data: dict[str, Any] = json.loads(answer.read_text())
            answer.unlink()
            return data
        time.sleep(POLL_SECONDS)
    request.unlink(missing_ok=True)
    return None


def print_answer(answer: dict[str, Any]) -> None:
    for name in answer.get("resumed", ()):
        print(f"resumed {name}")
    lots = answer.get("given_up", ())
    for lot in answer.get("held", ()):  # moved by the client's next deposit, not a resume
        print(f"{lot['lot']}  client {lot['client']}  {lot['amount']} USDC  {lot['waits']}")
    if not lots:
        print("no given-up lots")
    for lot in lots:
        print(f"{lot['lot']}  client {lot['client']}  {lot['amount']} USDC  waits {lot['waits']}")
        print(
            f"  why: {lot['reason'] or 'not known'}; given up {lot['given_up_at'] or '?'}; "
            f"routed again at {lot['retry_at'] or '?'} (or `indexmaker routes resume`)"
        )
