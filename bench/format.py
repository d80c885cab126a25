"""Formatting for people: times with units, intervals, ratios, percentages and tables (Markdown
and plain text), and :func:`say` for a message on stderr. Every command and report formats
through these, so a time reads the same in a progress line, a comparison and a report.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any

MISSING = "—"


def say(text: str) -> None:
    """A message for the person running the command: stderr, flushed."""
    print(text, file=sys.stderr, flush=True)


def _finite(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def time_unit(seconds: float) -> tuple[str, float]:
    """The unit that shows ``seconds`` with one to three digits before the point."""
    for name, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return name, scale
    return "ns", 1e-9


def fmt_time(seconds: Any, unit: tuple[str, float] | None = None) -> str:
    """``12.3 µs``, ``1.23 ms``, ``4.56 s``; ``—`` for missing. ``unit`` forces (name, scale)."""
    s = _finite(seconds)
    if s is None:
        return MISSING
    if s == 0:
        return "0 s"
    name, scale = unit or time_unit(s)
    return f"{s / scale:.3g} {name}"


def fmt_ci(median: Any, low: Any, high: Any) -> str:
    """``1.23 ms [1.20–1.26]``: the median and its confidence interval in one unit."""
    text = fmt_time(median)
    if text == MISSING:
        return text
    _name, scale = time_unit(float(median))
    lo, hi = _finite(low), _finite(high)
    if lo is None or hi is None:
        return text
    return f"{text} [{lo / scale:.3g}–{hi / scale:.3g}]"


def fmt_p(p: Any) -> str:
    """A p-value to two significant digits; ``—`` for missing."""
    x = _finite(p)
    return MISSING if x is None else f"{x:.2g}"


def fmt_ratio(ratio: Any, low: Any = None, high: Any = None) -> str:
    """``x1.234 [1.100, 1.400]`` (the interval when given); ``—`` for missing."""
    r = _finite(ratio)
    if r is None:
        return MISSING
    lo, hi = _finite(low), _finite(high)
    return f"x{r:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else "")


def fmt_num(value: Any) -> str:
    """An integer as an integer, anything else to 6 significant digits; ``—`` for missing."""
    x = _finite(value)
    if x is None:
        return MISSING
    return str(int(x)) if x.is_integer() else f"{x:.6g}"


def fmt_pct(value: Any) -> str:
    """``12.5%``; ``—`` for missing."""
    x = _finite(value)
    return MISSING if x is None else f"{x:.1%}"


def cell(value: Any) -> str:
    """A table cell's text: ``—`` for None and NaN, else ``str(value)``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return str(value)


def md_text(value: Any) -> str:
    """``value`` as one line of Markdown text: HTML and ``|`` escaped, ``—`` for missing."""
    text = cell(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; ``|``, newlines and HTML in cells are escaped, so a
    string from a results file cannot break the table or inject markup."""
    head = [md_text(h) for h in header]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(md_text(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], right: Iterable[int] = ()
) -> str:
    """Columns padded to their widest cell, a rule under the header; columns in ``right``
    aligned right."""
    body = [[cell(c) for c in row] for row in rows]
    table = [list(header), *body]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    right = set(right)

    def line(row: Sequence[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join([line(table[0]), "  ".join("-" * w for w in widths), *map(line, body)])
