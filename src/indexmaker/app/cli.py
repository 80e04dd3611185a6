"""The `indexmaker` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="indexmaker", description="Index Maker solver service")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a simulated trading session end to end")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--clients", type=int, default=12, help="number of clients (default 12)")
    demo.add_argument("--out", type=Path, default=Path("out"), help="where invoices go")
    serve = commands.add_parser("serve", help="run the whole service on embedded defaults")
    serve.add_argument("--config", type=Path, help="TOML file overriding the defaults")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="FIX port (default 3000)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "demo":
        from indexmaker.app.demo import run_demo

        if args.clients < 2:
            parser.error("--clients must be at least 2")
        run_demo(seed=args.seed, clients=args.clients, out_dir=args.out)
        return 0
    return 2


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    from dataclasses import replace

    from indexmaker.app.config import ConfigError, load_config
    from indexmaker.app.service import serve
    from indexmaker.observability.logging import setup_logging

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"indexmaker serve: {error}", file=sys.stderr)
        return 2
    server = config.server
    if args.host:
        server = replace(server, host=args.host)
    if args.port is not None:
        server = replace(server, port=args.port)
    setup_logging(config.log_level)
    asyncio.run(serve(replace(config, server=server)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
