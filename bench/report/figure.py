"""Drawing primitives every plot of the report shares: one colour per variant, figures on
matplotlib's Agg canvas (no pyplot, no global state), panels wrapped to the width the report
shows, legends below the panels, titles and axis labels wrapped to their panel, log axes with
readable labels that never run into each other."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import itertools
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.ticker import (
    EngFormatter,
    FixedLocator,
    Formatter,
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
#: the colours of variants the table does not know (see :class:`Palette`)
SPARE_COLOURS = (
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
)
#: what is not a variant (kernel markers, phases, ideal lines, roofs) is drawn in black and
#: white: a grey would read as torch-eager's
NEUTRAL = "black"
DPI = 100
#: the widest figure: the HTML report's body is 1300 px wide (render.CSS) and shrinks a wider
#: PNG to fit, its text with it
MAX_WIDTH_IN = 12.8
#: the tallest (12,000 px): a report is read by scrolling, but Agg and browsers have limits
MAX_HEIGHT_IN = 120.0
#: the legend's font: every entry label is measured in it to choose the number of columns
LEGEND_FONT = "small"
#: space kept between two tick labels, in units of their font size
TICK_GAP_EM = 0.6


# --------------------------------------------------------------------------- colours


def colour(variant: str) -> str:
    """The colour of ``variant`` (a label like ``pmap ×4`` takes its variant's colour); one
    the table does not know gets a spare picked by a hash of its name."""
    base = tables.base_variant(variant)
    if base in VARIANT_COLOURS:
        return VARIANT_COLOURS[base]
    return SPARE_COLOURS[_spare_index(base)]


def _spare_index(base: str) -> int:
    return int(hashlib.sha256(base.encode()).hexdigest(), 16) % len(SPARE_COLOURS)


class Palette:
    """The colours of one report's variants, for every plot of that report.

    A known variant has its own colour; an unknown one its spare (:func:`colour`) unless an
    unknown variant before it in name order took that one, then the next free spare (two
    unknown names can hash alike). With more unknown variants than spares, colours repeat.
    """

    def __init__(self, variants: Iterable[str]) -> None:
        unknown = sorted({tables.base_variant(v) for v in variants} - set(VARIANT_COLOURS))
        self._spare: dict[str, str] = {}
        free = list(SPARE_COLOURS)
        for base in unknown:
            want = SPARE_COLOURS[_spare_index(base)]
            if free and want not in free:
                start = SPARE_COLOURS.index(want)
                want = next(c for c in SPARE_COLOURS[start:] + SPARE_COLOURS[:start] if c in free)
            self._spare[base] = want
            if want in free:
                free.remove(want)

    def __call__(self, label: str) -> str:
        base = tables.base_variant(label)
        return self._spare.get(base) or colour(base)


def line_style(label: str, framework: str = "jax") -> str:
    """How a label's line is drawn: dashed for a peer, dotted for stock ``jax.grad`` (beside
    the tuned line of its variant, same colour), solid otherwise."""
    if framework != "jax":
        return "--"
    return ":" if is_stock(label) else "-"


def is_stock(label: str) -> bool:
    return str(label).endswith(tables.STOCK_SUFFIX)


def variant_handles(labels: Sequence[str], paint: Palette, **style: Any) -> list[Line2D]:
    return [Line2D([], [], color=paint(v), marker="o", label=v, **style) for v in labels]


def neutral_marker(marker: str, label: str) -> Line2D:
    """A legend entry for a marker shape (a kernel, a break-even point): hollow, black."""
    return Line2D([], [], color=NEUTRAL, mfc="white", marker=marker, ls="", label=label)


# --------------------------------------------------------------------------- figures


def figure(
    nrows: int,
    ncols: int,
    w: float = 4.6,
    h: float = 3.4,
    *,
    figsize: tuple[float, float] | None = None,
    height_ratios: Sequence[float] | None = None,
) -> tuple[Figure, np.ndarray]:
    """A figure of ``nrows`` x ``ncols`` axes, each about ``w`` x ``h`` inches (or ``figsize``
    in all), no wider than :data:`MAX_WIDTH_IN`, on the Agg canvas. :func:`save` adds the
    legend's height."""
    size = figsize or (w * ncols + 0.4, h * nrows + 0.8)
    size = (min(size[0], MAX_WIDTH_IN), min(size[1], MAX_HEIGHT_IN))
    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    kw = {"height_ratios": list(height_ratios)} if height_ratios is not None else None
    axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw=kw)
    return fig, axes


def per_row(w: float) -> int:
    """How many panels ``w`` inches wide fit side by side."""
    return max(1, int((MAX_WIDTH_IN - 0.4) // w))


def panels(heights: Sequence[float], w: float) -> tuple[Figure, list[Any]]:
    """One panel per entry of ``heights`` (inches), about ``w`` inches wide, as many to a row
    as fit the report's width and more rows below (a row as tall as its tallest panel)."""
    n = len(heights)
    ncols = min(n, per_row(w))
    rows = [max(heights[i : i + ncols]) for i in range(0, n, ncols)]
    fig, axes = figure(
        len(rows), ncols, figsize=(w * ncols + 0.4, sum(rows) + 0.8), height_ratios=rows
    )
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.remove()
    return fig, flat[:n]


def short_layers(layer_sizes: str) -> str:
    """``784,512×8,10`` for ``784,512,512,512,512,512,512,512,512,10``: runs of three or more
    equal widths counted, so deep models fit a title or a tick label."""
    parts = []
    for width, run in itertools.groupby(str(layer_sizes).split(",")):
        n = len(list(run))
        parts.append(f"{width}×{n}" if n >= 3 else ",".join([width] * n))
    return ",".join(parts)


#: the list :func:`kept_figures` collects saved figures into (none outside its ``with``)
_KEPT: contextvars.ContextVar[list[Figure] | None] = contextvars.ContextVar("kept", default=None)


@contextlib.contextmanager
def kept_figures() -> Iterator[list[Figure]]:
    """Within the ``with``, every figure :func:`save` writes is also appended to the list
    yielded, finished as written (legend, layout), so a test can inspect what the report shows
    without a second code path."""
    kept: list[Figure] = []
    token = _KEPT.set(kept)
    try:
        yield kept
    finally:
        _KEPT.reset(token)


def save(fig: Figure, path: str | Path, handles: list[Any] | None = None) -> Path:
    """Write ``fig`` as a PNG: ``handles`` as a legend below the panels, then every title and
    axis label wrapped to the room it has."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if handles:
        legend_below(fig, handles)
    fit_texts(fig)
    fig.savefig(path, dpi=DPI)
    kept = _KEPT.get()
    if kept is not None:
        kept.append(fig)
    return path


def legend_below(fig: Figure, handles: list[Any]) -> None:
    """The figure's legend under its panels, in as many columns as the figure's width holds
    (every entry is measured), the figure grown by the legend's height so the panels keep
    theirs. Below, it cannot cover a title, whatever their lengths."""
    renderer = fig.canvas.get_renderer()
    font = FontProperties(size=LEGEND_FONT)
    em = font.get_size_in_points() * DPI / 72
    # an entry: handle (2 em), pad (0.8 em), label, column spacing (2 em)
    widest = max(_width(str(h.get_label()), font, renderer) for h in handles) + 4.8 * em
    ncols = max(1, min(len(handles), int((fig.bbox.width - 2 * em) // widest)))
    rows = math.ceil(len(handles) / ncols)
    fig.set_figheight(min(fig.get_figheight() + (rows * 1.5 * em + 2 * em) / DPI, MAX_HEIGHT_IN))
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=ncols,
        fontsize=LEGEND_FONT,
        frameon=False,
    )


def fit_texts(fig: Figure) -> None:
    """Wrap each panel's title and x label to the panel's width, its y label to its height,
    and the figure's title to the figure: constrained layout makes room for a title's height
    but lets a long one run across its neighbours'."""
    renderer = fig.canvas.get_renderer()
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
    for ax in fig.axes:
        box = ax.get_window_extent(renderer)
        wrap(ax.title, box.width, renderer)
        wrap(ax.xaxis.label, box.width, renderer)
        wrap(ax.yaxis.label, box.height, renderer)
    if fig.get_suptitle():
        # suptitle(its own text) hands back the title's Text, unchanged
        wrap(fig.suptitle(fig.get_suptitle()), fig.bbox.width * 0.96, renderer)


#: where a long line may break: after a space, ``@`` (``cpu:cpu@host``), a comma, ``/``, ``·``
_BREAK = re.compile(r"(?<=[\s@,/·])")


def wrap(text: Text, width_px: float, renderer: RendererAgg) -> None:
    """Break each line of ``text`` that is wider than ``width_px`` at :data:`_BREAK` points
    (within a word only where no break point is left)."""
    font = text.get_fontproperties()
    lines: list[str] = []
    for line in text.get_text().split("\n"):
        if _width(line, font, renderer) <= width_px:
            lines.append(line)
            continue
        current = ""
        for token in (t for t in _BREAK.split(line) if t):
            if current and _width(current + token.rstrip(), font, renderer) > width_px:
                lines.append(current.rstrip())
                current = ""
            current += token
            while _width(current.rstrip(), font, renderer) > width_px and len(current) > 1:
                cut = _fitting(current, width_px, font, renderer)
                lines.append(current[:cut])
                current = current[cut:]
        lines.append(current.rstrip())
    text.set_text("\n".join(lines))


def _fitting(s: str, width_px: float, font: FontProperties, renderer: RendererAgg) -> int:
    """The longest prefix of ``s`` (at least one character) no wider than ``width_px``."""
    n = len(s) - 1
    while n > 1 and _width(s[:n], font, renderer) > width_px:
        n -= 1
    return n


def _width(s: str, font: FontProperties, renderer: RendererAgg) -> float:
    return renderer.get_text_width_height_descent(s, font, ismath=False)[0]


def label(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    """Axis labels, a title and the grid of a log-log panel."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize="medium")
    ax.grid(True, which="both", alpha=0.3)


def machine_order(df: pd.DataFrame, part: pd.DataFrame) -> list[str]:
    """Machines of ``part`` in the order of ``df`` (the first run's first)."""
    present = set(part["machine"])
    return [m for m in tables.machines(df) if m in present]


def dominant_dtype(ok: pd.DataFrame) -> str | None:
    if ok.empty:
        return None
    counts = ok["dtype"].value_counts()
    return "float32" if "float32" in counts.index else str(counts.index[0])


# --------------------------------------------------------------------------- axes


class Spaced(Formatter):
    """The labels of ``inner`` less those that would run into a neighbour: along the axis, a
    label is kept when it clears the last one kept by :data:`TICK_GAP_EM` (a minor label must
    also clear every major one). Labels are measured when the axis is drawn, at the panel's
    final size, so crowded ticks (1024 beside 2048 on a narrow panel) lose every other label
    rather than overprint."""

    def __init__(self, inner: Formatter, minor: bool = False) -> None:
        self.inner, self.minor = inner, minor

    def set_axis(self, axis: Axis | None) -> None:
        super().set_axis(axis)
        self.inner.set_axis(axis)

    def __call__(self, x: float, pos: int | None = None) -> str:
        return self.inner(x, pos)

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        labels = list(self.inner.format_ticks(values))
        axis = self.axis
        if axis is None or not labels:
            return labels
        taken: list[tuple[float, float]] = []
        if self.minor:
            major = list(axis.get_majorticklocs())
            taken = [s for s in _spans(axis, major, axis.major.formatter.format_ticks(major)) if s]
        kept = list(labels)
        last = -math.inf
        spans = _spans(axis, list(values), labels)
        for i in sorted(range(len(labels)), key=lambda k: spans[k][0] if spans[k] else math.inf):
            span = spans[i]
            if span is None:
                continue
            lo, hi = span
            if lo < last or any(lo < b and a < hi for a, b in taken):
                kept[i] = ""
                continue
            last = hi
        return kept


def _spans(axis: Axis, values: Sequence[float], labels: Sequence[str]) -> list[Any]:
    """Where each label lies along ``axis`` (px, padded by half the gap each side); ``None``
    for an empty label or a tick outside the view."""
    fig = axis.get_figure(root=True)
    renderer = fig.canvas.get_renderer()
    font = axis.majorTicks[0].label1.get_fontproperties()
    gap = TICK_GAP_EM * font.get_size_in_points() * DPI / 72
    lo, hi = sorted(axis.get_view_interval())
    horizontal = axis.axis_name == "x"
    out: list[Any] = []
    for v, s in zip(values, labels, strict=True):
        if not s or not (lo <= v <= hi):
            out.append(None)
            continue
        point = (v, 1.0) if horizontal else (1.0, v)
        at = axis.axes.transData.transform(point)[0 if horizontal else 1]
        w, h, _ = renderer.get_text_width_height_descent(s, font, ismath=False)
        half = (w if horizontal else h) / 2 + gap / 2
        out.append((at - half, at + half))
    return out


def log_axis(ax: Any, which: str, unit: str | None) -> None:
    """Log scale on ``which`` ("x" or "y") with engineering labels (``100 µs``, ``2 G``);
    ``unit=None`` labels plain ratios (``0.5``, ``2``). Minor ticks at 2 and 5 get labels
    when the axis spans less than two decades; under one decade, evenly spaced ticks. Labels
    that would touch are thinned (:class:`Spaced`)."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    fmt = EngFormatter(unit=unit, sep=" ") if unit is not None else _RATIO
    axis.set_major_formatter(Spaced(fmt))
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    if lo > 0 and hi / lo < 10:  # under a decade: evenly spaced ticks read better
        axis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
        axis.set_minor_formatter(NullFormatter())
    elif lo > 0 and hi / lo < 100:

        def minor(x: float, _pos: int | None = None) -> str:
            mant = round(x / 10 ** math.floor(math.log10(x) + 1e-9), 3)
            return fmt(x) if mant in (2.0, 5.0) else ""

        axis.set_minor_formatter(Spaced(FuncFormatter(minor), minor=True))
    else:
        axis.set_minor_formatter(NullFormatter())


_RATIO = FuncFormatter(lambda x, _pos=None: f"{x:g}")


def log2_ticks(ax: Any, values: Sequence[int], labels: Sequence[str] | None = None) -> None:
    """A log₂ x axis with a tick at each of ``values``, labelled ``labels`` (default: the
    numbers), thinned where they would touch."""
    names = dict(zip(values, labels or [str(v) for v in values], strict=True))
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(list(values)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(Spaced(FuncFormatter(lambda x, _p=None: names.get(round(x), ""))))


def log2_batch_axis(ax: Any, batches: list[int]) -> None:
    log2_ticks(ax, batches)
    ax.set_xlabel("batch size (examples per step, log₂)")
