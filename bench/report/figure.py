"""Drawing primitives every plot of the report shares: one colour per variant, figures on
matplotlib's Agg canvas (no pyplot, no global state), legends outside the axes, log axes with
readable labels."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import (
    EngFormatter,
    FixedLocator,
    FuncFormatter,
    MaxNLocator,
    NullFormatter,
    NullLocator,
)

from . import tables

#: one colour per variant, in every plot of every report (peers included).
VARIANT_COLOURS: dict[str, str] = {
    "jit": "#1f77b4",
    "vmap": "#ff7f0e",
    "scan": "#8c564b",
    "pmap": "#2ca02c",
    "sharded": "#d62728",
    "shard_map": "#9467bd",
    "sharded_tp": "#e377c2",
    "ensemble": "#17becf",
    "notebook": "#393b79",
    "torch-eager": "#7f7f7f",
    "torch-compile": "#bcbd22",
    "numpy": "#111111",
}
_SPARE = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d")
DPI = 100


def colour(variant: str) -> str:
    """The colour of ``variant`` (a label like ``pmap ×4`` takes its variant's colour)."""
    base = tables.base_variant(variant)
    if base in VARIANT_COLOURS:
        return VARIANT_COLOURS[base]
    return _SPARE[int(hashlib.sha256(base.encode()).hexdigest(), 16) % len(_SPARE)]


def line_style(label: str, framework: str = "jax") -> str:
    """How a label's line is drawn: dashed for a peer, dotted for stock ``jax.grad`` (beside
    the tuned line of its variant, same colour), solid otherwise."""
    if framework != "jax":
        return "--"
    return ":" if str(label).endswith(tables.STOCK_SUFFIX) else "-"


def figure(
    nrows: int,
    ncols: int,
    w: float = 4.6,
    h: float = 3.4,
    *,
    figsize: tuple[float, float] | None = None,
) -> tuple[Figure, np.ndarray]:
    """A figure of ``nrows`` x ``ncols`` axes, each about ``w`` x ``h`` inches (or ``figsize``
    in all), on the Agg canvas."""
    size = figsize or (min(w * ncols + 2.2, 22), h * nrows + 0.8)
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save(fig: Figure, path: str | Path, handles: list[Any] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if handles:
        fig.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)
    fig.savefig(path, dpi=DPI)
    return path


def label(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    """Axis labels, a title and the grid of a log-log panel."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="medium")
    ax.grid(True, which="both", alpha=0.3)


def variant_handles(labels: list[str], **style: Any) -> list[Line2D]:
    return [Line2D([], [], color=colour(v), marker="o", label=v, **style) for v in labels]


def machine_order(df: pd.DataFrame, part: pd.DataFrame) -> list[str]:
    """Machines of ``part`` in the order of ``df`` (the first run's first)."""
    present = set(part["machine"])
    return [m for m in tables.machines(df) if m in present]


def dominant_dtype(ok: pd.DataFrame) -> str | None:
    if ok.empty:
        return None
    counts = ok["dtype"].value_counts()
    return "float32" if "float32" in counts.index else str(counts.index[0])


def log_axis(ax: Any, which: str, unit: str | None) -> None:
    """Log scale on ``which`` ("x" or "y") with engineering labels (``100 µs``, ``2 G``);
    ``unit=None`` labels plain ratios (``0.5``, ``2``). Minor ticks at 2 and 5 get labels
    when the axis spans less than two decades; under one decade, evenly spaced ticks."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    fmt = EngFormatter(unit=unit, sep=" ") if unit is not None else _RATIO
    axis.set_major_formatter(fmt)
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    if lo > 0 and hi / lo < 10:  # under a decade: evenly spaced ticks read better
        axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
        axis.set_minor_formatter(NullFormatter())
    elif lo > 0 and hi / lo < 100:

        def minor(x: float, _pos: int | None = None) -> str:
            mant = round(x / 10 ** math.floor(math.log10(x) + 1e-9), 3)
            return fmt(x) if mant in (2.0, 5.0) else ""

        axis.set_minor_formatter(FuncFormatter(minor))
    else:
        axis.set_minor_formatter(NullFormatter())


_RATIO = FuncFormatter(lambda x, _pos=None: f"{x:g}")


def log2_batch_axis(ax: Any, batches: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(batches))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(b) for b in batches])
    ax.set_xlabel("batch size (examples per step, log₂)")
