"""Command-line value types shared by every command of the project (``argparse`` ``type=``).

Each parses one flag's text and raises ``argparse.ArgumentTypeError`` with the value and what to
write instead, which argparse turns into a usage error (exit code 2). No JAX here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from . import catalog


def csv(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [s.strip() for s in text.split(",") if s.strip()]


def ints(text: str) -> list[int]:
    """``"1,32,128"`` -> ``[1, 32, 128]``."""
    try:
        return [int(s) for s in csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write integers separated by commas") from None


def positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """A type for a number of ``kind`` (int or float) greater than zero."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} must be positive")
        return value

    parse.__name__ = f"positive_{kind.__name__}"
    return parse


positive_int = positive(int)
positive_float = positive(float)


def count(text: str) -> int:
    """A whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def layers(text: str) -> list[int]:
    """``"784,1024,10"`` -> ``[784, 1024, 10]``, checked by :func:`catalog.parse_layers`."""
    try:
        return list(catalog.parse_layers(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
