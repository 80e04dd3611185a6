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
    args = parser.parse_args(argv)
    if args.command == "demo":
        from indexmaker.app.demo import run_demo

        if args.clients < 2:
            parser.error("--clients must be at least 2")
        run_demo(seed=args.seed, clients=args.clients, out_dir=args.out)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
