"""Argument parsing shared by the `indexmaker` subcommands: one-line usage errors (exit 2)
and checked numbers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (exit 2), not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (--help shows the usage)\n")


def whole_number(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None

    parse.__name__ = flag
    return parse


def seconds_arg(text: str) -> float:
    """A duration in seconds: finite, > 0, at most a day (NaN, inf and 1e300 are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 86_400:  # also false for NaN
        raise argparse.ArgumentTypeError(f"expected seconds in (0, 86400], got {text!r}")
    return value
