"""The `indexmaker` command: the service (`serve`, `demo`, `exchange-sim`) and a client of it
(quote, order, cancel, watch, deposit: app/cli_client.py, which documents them), and the
chain tools (`deposit --chain`, `verify-invoice`: app/cli_chain.py).

Exit status: 0 done, 1 refused or failed, 2 bad input or start-up values.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from indexmaker.app.cli_args import Parser, whole_number
from indexmaker.app.cli_chain import add_chain_commands, run_chain_command, wants_chain
from indexmaker.app.cli_client import ANVIL_TEST_KEYS as ANVIL_TEST_KEYS
from indexmaker.app.cli_client import add_client_commands, run_client_command
from indexmaker.app.cli_routes import add_routes_commands, run_routes


def main(argv: list[str] | None = None) -> int:
    """The exit status of one `indexmaker` command. A reader that leaves early
    (`indexmaker … | head`) ends the command quietly, exit 1, instead of a BrokenPipeError
    traceback (the recipe of Python's `signal` docs, "Note on SIGPIPE")."""
    try:
        try:
            return _command(argv)
        finally:
            # Flushed here, so that a reader gone shows inside this try, not at exit.
            sys.stdout.flush()
    except BrokenPipeError:
        # Whatever is still buffered goes nowhere: the interpreter's own flush at exit
        # would raise again ("Exception ignored … BrokenPipeError").
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _command(argv: list[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "exchange-sim":
        from indexmaker.venues.binance_sim.cli import run as run_exchange_sim

        return run_exchange_sim(args)
    if args.command == "demo":
        if not 2 <= args.clients <= 200:
            parser.error(f"--clients must be 2-200, got {args.clients}")
        return _demo(args)
    if args.command == "routes":
        return run_routes(args)
    if wants_chain(args):
        return run_chain_command(args)
    return run_client_command(args)


VENUE_OPTION = ("--venue",)
VENUE_OPTION_KW: dict[str, Any] = {
    "choices": ("binance", "sim"),
    "default": "binance",
    "help": "binance (default): the Binance connector, on `exchange-sim` started as a child "
    "process (stopped with the service) unless BINANCE_REST_URL is set; sim: the in-process "
    "simulated venue",
}


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="indexmaker", description="Index Maker solver service")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    demo = commands.add_parser("demo", help="run a trading session end to end")
    demo.add_argument(
        "--seed", type=whole_number("--seed"), default=7, help="random seed (default 7)"
    )
    demo.add_argument(
        "--clients",
        type=whole_number("--clients"),
        default=12,
        help="number of clients (default 12)",
    )
    demo.add_argument("--out", type=Path, default=Path("out"), help="where invoices go")
    demo.add_argument(*VENUE_OPTION, **VENUE_OPTION_KW)
    demo.add_argument(
        "--chains",
        action="store_true",
        help="the collateral path on two local anvil chains, the exchange simulator and our "
        "Across relayer (app/demo_chain.py)",
    )
    demo.add_argument(
        "--in-process",
        action="store_true",
        help="no sockets: drive the engine directly in simulated time (the original demo)",
    )
    serve = commands.add_parser("serve", help="run the whole service on embedded defaults")
    serve.add_argument("--config", type=Path, help="TOML file overriding the defaults")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=whole_number("--port"), help="FIX port (default 3000)")
    serve.add_argument(
        "--api-port", type=whole_number("--api-port"), help="query API port (default 3001)"
    )
    serve.add_argument(
        "--sim-deposits",
        action="store_true",
        help="serve POST /sim/deposit (credits simulated USDC; loopback clients only)",
    )
    serve.add_argument(*VENUE_OPTION, **VENUE_OPTION_KW)
    serve.add_argument(
        "--chain",
        choices=("anvil", "external", "sim"),
        default=None,
        help="sets [chain] mode (default anvil): two local chains started and deployed, "
        "deposits, Across and minting on chain (implies the Binance venue on the exchange "
        "simulator, which watches the trading chain); external: the chains of [chain] "
        "rpc_urls and deployment; sim: the in-process simulated chain",
    )
    from indexmaker.venues.binance_sim.cli import add_arguments as exchange_sim_arguments

    exchange_sim_arguments(
        commands.add_parser("exchange-sim", help="run the Binance-wire exchange simulator")
    )

    add_client_commands(commands)
    add_chain_commands(commands)  # after the client's: adds --chain to its `deposit`
    add_routes_commands(commands)
    return parser


# ---------------------------------------------------------------- service commands


def _demo(args: argparse.Namespace) -> int:
    if args.chains:
        from indexmaker.app.demo_chain import run_chain_demo

        return 0 if run_chain_demo(out_dir=args.out)["ok"] else 1
    if args.in_process:
        from indexmaker.app.demo import run_demo

        run_demo(seed=args.seed, clients=args.clients, out_dir=args.out)
        return 0
    from indexmaker.app.demo_sockets import run_socket_demo

    summary = run_socket_demo(
        seed=args.seed, clients=args.clients, out_dir=args.out, venue=args.venue
    )
    return 0 if summary.get("ok", True) else 1


def _serve(args: argparse.Namespace) -> int:
    from indexmaker.app.config import ConfigError, load_config
    from indexmaker.app.service import serve
    from indexmaker.observability.logging import setup_logging

    # Command-line values go through the same typed settings as the file, named as given.
    server: dict[str, Any] = {}
    if args.host is not None:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    overrides: dict[str, dict[str, Any]] = {"server": server}
    if args.sim_deposits:
        overrides["sim"] = {"deposit_endpoint": True}
    if args.api_port is not None:
        overrides["api"] = {"port": args.api_port}
    if args.chain is not None:
        overrides["chain"] = {"mode": args.chain}
    try:
        load_config(args.config)  # the file alone first: its errors name its settings
        config = load_config(
            args.config,
            overrides,
            {
                "server.host": "--host",
                "server.port": "--port",
                "api.port": "--api-port",
                "chain.mode": "--chain",
            },
        )
        setup_logging(config.log_level)
        _raise_descriptor_limit()
        asyncio.run(serve(config, args.venue))
    except ConfigError as error:
        print(f"indexmaker serve: {error}", file=sys.stderr)
        return 2
    return 0


def _raise_descriptor_limit() -> None:
    """Every socket costs a descriptor: take the soft limit up to the hard one. Python 3.11's
    accept loop logs one traceback per retry once descriptors run out (a review saw 176 MB in a
    minute), so the caps per source (FIX edge, query API) must bind well before the limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = max(soft, 65536) if hard == resource.RLIM_INFINITY else hard
    with contextlib.suppress(ValueError, OSError):  # kept as it was: the caps still apply
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


if __name__ == "__main__":
    sys.exit(main())
