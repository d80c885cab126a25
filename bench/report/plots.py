"""The report's plots: one function per plot, PNG files drawn with matplotlib's Agg canvas.

Every function takes the results DataFrame (the columns of :mod:`bench.results.schema` plus
``machine``; see :mod:`bench.report.tables`) and an output path, and returns ``(path, caption)`` when
it drew the plot or ``(None, reason)`` when it could not (``"scaling: only one device count (1)
in these runs"``). Only ``status == "ok"`` rows are drawn. Colours come from one
:class:`~.figure.Palette` of the frame's variants (:data:`VARIANT_COLOURS` for the known ones),
the same for a variant in every plot of a report; what is not a variant is black and white.
Figures are built with :class:`matplotlib.figure.Figure` and :class:`FigureCanvasAgg` (no
pyplot, no global state), no wider than the report shows unshrunk: panels wrap into rows,
categories run down the page (one row each) rather than across, and the legend sits below.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter

from ..results import schema
from . import tables, versus
from .figure import (
    MAX_WIDTH_IN,
    NEUTRAL,
    Palette,
    dominant_dtype,
    figure,
    is_stock,
    label,
    line_style,
    log2_batch_axis,
    log2_ticks,
    log_axis,
    machine_order,
    neutral_marker,
    panels,
    per_row,
    save,
    short_layers,
    variant_handles,
)
from .figure import (
    VARIANT_COLOURS as VARIANT_COLOURS,
)
from .figure import (
    colour as colour,
)

Result = tuple[Path | None, str]

PHASES = tuple(
    zip(schema.COMPILE_COLUMNS, ("trace", "lower", "compile"), ("", "//", ".."), strict=True)
)


def _sweep(df: pd.DataFrame, value: Callable[[pd.DataFrame], pd.Series]) -> pd.DataFrame:
    """Update rows of the main dtype with ``value`` as column ``y``, each variant at its
    largest device count, for layer sizes measured at two or more batch sizes."""
    ok = tables.ok_rows(df)
    ok = ok[ok["kernel"] == "update"]
    ok = ok[ok["dtype"] == dominant_dtype(ok)]
    if ok.empty:
        return ok
    ok = ok.assign(y=value(ok))
    ok = ok[np.isfinite(ok["y"]) & (ok["y"] > 0)]
    top = ok.groupby(["machine", "layer_sizes", "variant"])["n_devices"].transform("max")
    ok = ok[ok["n_devices"] == top]
    wide = ok.groupby(["machine", "layer_sizes"])["batch_size"].transform("nunique") >= 2
    return ok[wide]


#: a panel of the batch-size sweeps, inches
SWEEP_W, SWEEP_H = 4.2, 3.4


def _sweep_plot(
    data: pd.DataFrame,
    path: Path,
    paint: Palette,
    ylabel: str,
    title: str,
    unit: str | None,
    band: bool = False,
) -> Path:
    """A panel per machine and layer sizes: a machine's panels start a row, and wrap to more
    rows when its layer sizes do not fit the report's width."""
    order = tables.machines(data)
    layers = sorted(data["layer_sizes"].unique(), key=tables.layer_rank)
    ncols = min(len(layers), per_row(SWEEP_W))
    rows_each = math.ceil(len(layers) / ncols)
    fig, axes = figure(len(order) * rows_each, ncols, SWEEP_W, SWEEP_H)
    batches = sorted(int(b) for b in data["batch_size"].unique())
    labels: dict[str, str] = {}  # label -> its line style
    used = []
    for i, m in enumerate(order):
        for j, ls in enumerate(layers):
            ax = axes[i * rows_each + j // ncols, j % ncols]
            used.append(ax)
            part = data[(data["machine"] == m) & (data["layer_sizes"] == ls)]
            for lab in sorted(part["label"].unique(), key=tables.variant_rank):
                g = part[part["label"] == lab].sort_values("batch_size")
                style = line_style(lab, g["framework"].iloc[0])
                ax.plot(
                    g["batch_size"],
                    g["y"],
                    marker="o",
                    ms=4,
                    color=paint(lab),
                    ls=style,
                    label=lab,
                )
                if band:
                    lo = pd.to_numeric(g["step_ci_low_s"], errors="coerce")
                    hi = pd.to_numeric(g["step_ci_high_s"], errors="coerce")
                    ax.fill_between(g["batch_size"], lo, hi, color=paint(lab), alpha=0.2, lw=0)
                labels[lab] = style
            log_axis(ax, "y", unit)
            log2_batch_axis(ax, batches)
            ax.set_ylabel(ylabel)
            ax.set_title(f"{m}\nlayers {short_layers(ls)}", fontsize="medium")
            ax.grid(True, which="both", alpha=0.3)
            if part.empty:
                ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
    for ax in axes.flat:
        if not any(ax is u for u in used):
            ax.remove()
    fig.suptitle(title)
    handles = [
        Line2D([], [], color=paint(v), marker="o", ms=4, label=v, ls=labels[v])
        for v in sorted(labels, key=tables.variant_rank)
    ]
    return save(fig, path, handles)


def _no_sweep(what: str, df: pd.DataFrame) -> str:
    if tables.ok_rows(df).empty:
        return f"{what}: no rows with status ok"
    return f"{what}: no layer sizes measured at two or more batch sizes (kernel update)"


# --------------------------------------------------------------------------- the plots


def step_time(df: pd.DataFrame, path: str | Path) -> Result:
    """1. Step time (s, log) vs batch size (log₂), a line per variant with its 95% CI band,
    a panel per machine and layer sizes."""
    data = _sweep(df, lambda d: pd.to_numeric(d["step_median_s"], errors="coerce"))
    if data.empty:
        return None, _no_sweep("step time vs batch size", df)
    p = _sweep_plot(
        data,
        Path(path),
        Palette(df["variant"]),
        "step time (s, log)",
        "Step time per SGD step (median, 95% CI band)",
        "s",
        band=True,
    )
    return p, (
        "Step time (median of the samples, shaded: 95% confidence interval of the "
        "median) against batch size, kernel update, dtype "
        f"{data['dtype'].iloc[0]}; multi-device variants at their largest device count; "
        "peers dashed."
    )


def throughput(df: pd.DataFrame, path: str | Path) -> Result:
    """2. Throughput (examples/s, log) vs batch size (log₂)."""
    data = _sweep(df, lambda d: pd.to_numeric(d["examples_per_s"], errors="coerce"))
    if data.empty:
        return None, _no_sweep("throughput vs batch size", df)
    p = _sweep_plot(
        data,
        Path(path),
        Palette(df["variant"]),
        "throughput (examples/s, log)",
        "Training throughput",
        "",
    )
    return p, (
        "Examples per second (batch size / step median) against batch size, kernel "
        f"update, dtype {data['dtype'].iloc[0]}; higher is better."
    )


def dispatch_overhead(df: pd.DataFrame, path: str | Path) -> Result:
    """7. Dispatch overhead as a fraction of the step time (log) vs batch size (log₂)."""

    def frac(d: pd.DataFrame) -> pd.Series:
        over = pd.to_numeric(d["dispatch_overhead_s"], errors="coerce")
        return over / pd.to_numeric(d["step_median_s"], errors="coerce")

    data = _sweep(df, frac)
    if data.empty:
        return None, "dispatch overhead: no positive dispatch_overhead_s at two or more batch sizes"
    p = _sweep_plot(
        data,
        Path(path),
        Palette(df["variant"]),
        "dispatch overhead / step time (log)",
        "Dispatch overhead as a fraction of step time",
        None,
    )
    return p, (
        "dispatch_overhead_s (median step time with a sync after every call minus the "
        "pipelined median) divided by the pipelined step median; near or above 1 the "
        "step is dominated by the host. Rows without a positive overhead are left out."
    )


def compile_time(df: pd.DataFrame, path: str | Path) -> Result:
    """3. Compile time (ms) vs depth: trace, lower and compile stacked, a bar per variant."""
    ok = tables.ok_rows(df)
    ok = ok[
        (ok["kernel"] == "update")
        & (ok["n_devices"] == ok.groupby("variant")["n_devices"].transform("min"))
    ]
    for c, _, _ in PHASES:
        ok[c] = pd.to_numeric(ok[c], errors="coerce")
    ok = ok[ok[[c for c, _, _ in PHASES]].notna().all(axis=1)]
    ok = ok[ok["dtype"] == dominant_dtype(ok)]
    if ok.empty:
        return None, "compile time vs depth: no rows with trace, lower and compile times"
    # one family of widths: the hidden width measured at the most depths, plus depth 0
    ok["width"] = pd.to_numeric(ok["width"], errors="coerce").fillna(0).astype(int)
    ok["depth"] = pd.to_numeric(ok["depth"], errors="coerce").fillna(0).astype(int)
    hidden = ok[ok["depth"] > 0]
    width = int(hidden.groupby("width")["depth"].nunique().idxmax()) if len(hidden) else 0
    ok = ok[(ok["width"] == width) | (ok["depth"] == 0)]
    agg = ok.groupby(["machine", "label", "depth"])[[c for c, _, _ in PHASES]].median()
    agg = agg.reset_index()
    order = machine_order(df, agg)
    paint = Palette(df["variant"])
    variants = sorted(agg["label"].unique(), key=tables.variant_rank)
    # a bar per variant and depth: the panel widens with the bars, up to the report's width
    bars = max(agg[agg["machine"] == m].groupby("depth")["label"].nunique().sum() for m in order)
    fig, axes = panels([4.0] * len(order), min(max(4.2, 1.2 + 0.08 * bars), MAX_WIDTH_IN - 0.4))
    for ax, m in zip(axes, order, strict=True):
        part = agg[agg["machine"] == m]
        depths = sorted(part["depth"].unique())
        vs = [v for v in variants if v in set(part["label"])]
        width_bar = 0.8 / max(len(vs), 1)
        for k, v in enumerate(vs):
            g = part[part["label"] == v].set_index("depth")
            x = np.array([depths.index(d) for d in g.index]) + (k - (len(vs) - 1) / 2) * width_bar
            bottom = np.zeros(len(g))
            for c, _, hatch in PHASES:
                ms = g[c].to_numpy() * 1e3
                ax.bar(
                    x,
                    ms,
                    width_bar * 0.95,
                    bottom=bottom,
                    color=paint(v),
                    hatch=hatch,
                    **_bar_style(v),
                )
                bottom += ms
        ax.set_xticks(range(len(depths)), [str(d) for d in depths])
        ax.set_xlabel("depth (hidden layers)")
        ax.set_ylabel("compile time (ms)")
        ax.set_title(m, fontsize="medium")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"Compile time by depth (hidden width {width}; depth 0 = logistic regression)")
    handles: list[Any] = [Patch(facecolor=paint(v), label=v, **_bar_style(v)) for v in variants]
    handles += [Patch(facecolor="white", hatch=h, edgecolor=NEUTRAL, label=n) for _, n, h in PHASES]
    return save(fig, path, handles), (
        "Trace, lower and compile time (stacked, ms; median over batch sizes) against the "
        f"number of hidden layers of width {width}, kernel update, fewest devices per variant; "
        "edged and hatched in black: the variant with stock jax.grad; a dashed black outline: "
        "compiled with other XLA options than its own (like [fast-compile])."
    )


def _bar_style(label: str) -> dict[str, Any]:
    """A compile bar's edge: :func:`_bar_edge`, and a dashed black outline for a row compiled
    with other options than XLA's own (``jit [fast-compile]``), beside the same variant's bar
    in the same colour."""
    if str(label).endswith("]"):
        return {"edgecolor": NEUTRAL, "linestyle": "--", "lw": 1.0}
    return {"edgecolor": _bar_edge(label), "lw": 0.5}


def _bar_edge(label: str) -> str:
    """A bar's edge and hatch colour: black for stock jax.grad, which tells it from its
    variant's tuned bar in the same colour (a paler fill would pass for a spare colour)."""
    return NEUTRAL if is_stock(label) else "white"


def _outlined(part: pd.DataFrame) -> tuple[pd.DataFrame, str, int, str]:
    """The configuration the break-even view outlines: the one with most variants, then the
    largest model and batch; each variant at its largest device count."""
    keys = part.groupby(["layer_sizes", "batch_size", "dtype"]).size().reset_index(name="n")
    keys["rank"] = [
        (n, tables.layer_rank(ls)[1], b)
        for n, ls, b in zip(keys["n"], keys["layer_sizes"], keys["batch_size"], strict=True)
    ]
    ls, batch, dtype = keys.sort_values("rank").iloc[-1][["layer_sizes", "batch_size", "dtype"]]
    cfg = part[
        (part["layer_sizes"] == ls) & (part["batch_size"] == batch) & (part["dtype"] == dtype)
    ]
    base = cfg["variant"].str.split(" ×").str[0]
    cfg = cfg[cfg["n_devices"] == cfg.groupby(base)["n_devices"].transform("max")]
    return cfg, ls, batch, dtype


def _compile_vs_step(
    ax: Any, part: pd.DataFrame, cfg: pd.DataFrame, paint: Palette, title: str
) -> None:
    """Every configuration's compile cost against its step time, ``cfg`` outlined."""
    ax.scatter(
        part["compile_s"],
        part["step_median_s"],
        s=14,
        lw=0,
        alpha=0.45,
        c=[paint(v) for v in part["variant"]],
    )
    ax.scatter(
        cfg["compile_s"],
        cfg["step_median_s"],
        s=55,
        zorder=3,
        edgecolor=NEUTRAL,
        lw=0.8,
        c=[paint(v) for v in cfg["variant"]],
    )
    log_axis(ax, "x", "s")
    log_axis(ax, "y", "s")
    label(ax, "trace + lower + compile (s, log)", "step time (s, log)", title)


#: break-even entries a panel's legend holds in one column (beyond, two)
BREAK_EVEN_ROWS = 22


def _total_time(ax: Any, cfg: pd.DataFrame, paint: Palette, title: str) -> None:
    """Compile + N steps against N for each variant of ``cfg``, break-even points marked, the
    steps listed in a legend right of the panel (inside, it would cover lines or titles)."""
    finite = cfg["break_even_steps"][np.isfinite(cfg["break_even_steps"])]
    n = np.geomspace(1, min(max(100.0, 30 * float(finite.max() if len(finite) else 1)), 1e7), 200)
    for _, r in cfg.iterrows():
        ax.plot(
            n,
            r["compile_s"] + n * r["step_median_s"],
            color=paint(r["variant"]),
            ls=":" if is_stock(r["variant"]) else "-",
            label=f"{r['variant']}: {r['break_even']}",
        )
        steps = r["break_even_steps"]
        if np.isfinite(steps) and steps >= 1:
            y = r["compile_s"] + steps * r["step_median_s"]
            ax.plot(steps, y, "o", color=paint(r["variant"]), mec=NEUTRAL, ms=5)
    ax.legend(
        title="break-even steps",
        fontsize="x-small",
        title_fontsize="x-small",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0,
        frameon=False,
        ncols=1 if len(cfg) <= BREAK_EVEN_ROWS else 2,
    )
    log_axis(ax, "x", "")
    log_axis(ax, "y", "s")
    label(ax, "SGD steps N (log)", "compile + N × step time (s, log)", title)


def break_even(df: pd.DataFrame, path: str | Path) -> Result:
    """4. The break-even view, a row per machine: compile time (s) vs step time (s) of every
    variant and configuration, and for one configuration the total time (compile + N steps)
    against N, where the lines cross at the break-even step counts."""
    be = tables.break_even(df)
    if be.empty:
        return None, "break-even: no configuration with two or more variants with compile times"
    order = machine_order(df, be)
    paint = Palette(df["variant"])
    outlined = {m: _outlined(be[be["machine"] == m]) for m in order}
    # a row holds its panel legend: one line of x-small text is about 0.16 in
    entries = max(min(len(c[0]), BREAK_EVEN_ROWS) for c in outlined.values())
    h = max(3.9, 0.16 * entries + 1.3)
    fig, axes = figure(len(order), 2, figsize=(MAX_WIDTH_IN, h * len(order) + 0.8))
    notes = []
    for i, m in enumerate(order):
        part = be[be["machine"] == m]
        cfg, ls, batch, dtype = outlined[m]
        what = f"all configurations; outlined: layers {short_layers(ls)}, batch {batch}"
        _compile_vs_step(axes[i, 0], part, cfg, paint, f"{m}\n{what}")
        _total_time(
            axes[i, 1], cfg, paint, f"{m}\ntotal time, layers {short_layers(ls)}, batch {batch}"
        )
        notes.append(f"{m}: layers {ls}, batch {batch}, {dtype}")
    fig.suptitle("Compile time vs step time: the break-even view (kernel update)")
    variants = sorted({v.split(" ×")[0] for v in be["variant"]}, key=tables.variant_rank)
    handles: list[Any] = variant_handles(variants, paint, ls="")
    handles.append(neutral_marker("o", "break-even point"))
    return save(fig, path, handles), (
        "Left: every variant and configuration (kernel update), compile cost against step time; "
        "outlined, one configuration per machine (" + "; ".join(notes) + "), multi-device "
        "variants at their largest device count. Right: total time compile + N × step for that "
        "configuration; the dots mark the break-even steps (listed beside the panel) after "
        "which a variant's extra compile time is paid back against the cheapest-compile variant "
        "(— for that one, never when it is not faster)."
    )


#: the roof of each dtype, in the order the dtypes are met (float32 first): black, its style
ROOF_STYLES = ("-", "--", "-.", ":")
KERNEL_MARKERS = {"update": "o", "predict": "^", "epoch": "s"}
#: kernels share a variant's row of the machine plot, a little apart
KERNEL_DODGE = {"update": 0.0, "predict": 0.2, "epoch": -0.2}
#: the kernels the roofline places (an epoch is many steps: its intensity is a step's)
ROOF_KERNELS = ("update", "predict")
_FLOPS = EngFormatter(unit="FLOP/s", places=0, sep=" ")
_BYTES = EngFormatter(unit="B/s", places=0, sep=" ")


def roofline(
    df: pd.DataFrame, path: str | Path, peaks: dict[str, dict[str, dict[str, float]]] | None = None
) -> Result:
    """5. Achieved FLOP/s vs arithmetic intensity (FLOP/byte), log-log, with the roof
    ``min(peak FLOP/s, bandwidth × intensity)`` per dtype.

    Args:
      peaks: ``{machine: {dtype: {"matmul_flops_per_s", "bandwidth_bytes_per_s"}}}`` from the
        runs' metadata; missing ones are taken from the rows' ``peak_*`` columns.
    """
    ok = tables.roofline_data(df)
    if ok.empty:
        return None, "roofline: no rows with arithmetic_intensity and flops_per_s"
    order = machine_order(df, ok)
    paint = Palette(df["variant"])
    roofs = {m: _machine_peaks(ok[ok["machine"] == m], m, peaks) for m in order}
    dtypes = sorted({d for r in roofs.values() for d in r}, key=lambda d: (d != "float32", d))
    styles = {d: ROOF_STYLES[k % len(ROOF_STYLES)] for k, d in enumerate(dtypes)}
    fig, axes = panels([4.0 + 0.2 * len(dtypes)] * len(order), 4.1)
    drawn: set[str] = set()
    for ax, m in zip(axes, order, strict=True):
        part = ok[ok["machine"] == m]
        for kernel in ROOF_KERNELS:
            g, marker = part[part["kernel"] == kernel], KERNEL_MARKERS[kernel]
            ax.scatter(
                g["arithmetic_intensity"],
                g["per_device"],
                marker=marker,
                s=28,
                c=[paint(v) for v in g["label"]],
                edgecolor=NEUTRAL,
                lw=0.3,
                zorder=3,
            )
        lines = _roofs(ax, part, roofs[m], styles)
        drawn |= set(lines)
        log_axis(ax, "x", None)
        log_axis(ax, "y", "")
        xlabel = "arithmetic intensity (FLOP/byte, log)"
        label(ax, xlabel, "achieved FLOP/s per device (log)", "\n".join([m, *lines.values()]))
    fig.suptitle("Roofline: achieved FLOP/s against arithmetic intensity")
    handles: list[Any] = variant_handles(
        sorted(ok["label"].map(tables.base_variant).unique(), key=tables.variant_rank), paint, ls=""
    )
    kernels = [k for k in ROOF_KERNELS if k in set(ok["kernel"])]
    handles += [neutral_marker(KERNEL_MARKERS[k], f"kernel {k}") for k in kernels]
    handles += [
        Line2D([], [], color=NEUTRAL, ls=styles[d], label=f"roof {d}: min(peak, bandwidth × AI)")
        for d in dtypes
        if d in drawn
    ]
    note = "" if drawn else " No measured peaks in these runs: the roof is not drawn."
    return save(fig, path, handles), (
        "Each point is one configuration: flops_per_s per device (all fake CPU devices share "
        "the host's one roof), against arithmetic intensity (flops / min_bytes: the batch read "
        "once and the parameters read and written, the same count for every framework). "
        "Black: the roof min(peak, bandwidth × intensity) of each dtype (its line style in "
        "the legend, its peak and bandwidth under the panel's name) from the peak matmul "
        "FLOP/s and bandwidth measured in the same run (one device)." + note
    )


def _roofs(
    ax: Any, part: pd.DataFrame, peaks: dict[str, dict[str, float]], styles: dict[str, str]
) -> dict[str, str]:
    """Draw ``min(peak, bandwidth × intensity)`` for each dtype with both figures; for each
    roof drawn, a line for the panel's title (``float32 roof: 221 GFLOP/s, 27 GB/s``), where
    the figures of two dtypes cannot print over each other as labels on the lines did."""
    lo, hi = part["arithmetic_intensity"].min() / 4, part["arithmetic_intensity"].max() * 4
    lines: dict[str, str] = {}
    for dtype in sorted(peaks, key=lambda d: list(styles).index(d)):
        f, b = peaks[dtype].get("matmul_flops_per_s"), peaks[dtype].get("bandwidth_bytes_per_s")
        if not (f and b):
            continue
        ridge = f / b
        xs = np.geomspace(min(lo, ridge / 4), max(hi, ridge * 4), 200)
        ax.plot(xs, np.minimum(f, b * xs), color=NEUTRAL, lw=1.2, ls=styles[dtype])
        lines[dtype] = f"{dtype} roof: {_FLOPS(f)}, {_BYTES(b)}"
    return lines


def _machine_peaks(
    part: pd.DataFrame, machine: str, peaks: dict[str, dict[str, dict[str, float]]] | None
) -> dict[str, dict[str, float]]:
    if peaks and peaks.get(machine):
        return peaks[machine]
    out: dict[str, dict[str, float]] = {}
    for dtype, g in part.groupby("dtype"):
        f = pd.to_numeric(g["peak_flops_per_s"], errors="coerce").max()
        b = pd.to_numeric(g["peak_bandwidth_bytes_per_s"], errors="coerce").max()
        if np.isfinite(f) and np.isfinite(b):
            out[str(dtype)] = {"matmul_flops_per_s": f, "bandwidth_bytes_per_s": b}
    return out


def scaling(df: pd.DataFrame, path: str | Path) -> Result:
    """6. Speed-up ``T1/Tn`` and efficiency ``T1/(n·Tn)`` vs device count, per variant."""
    data = tables.scaling_data(df)
    if data.empty:
        return None, tables.why_no_scaling(df)
    order = machine_order(df, data)
    paint = Palette(df["variant"])
    fig, axes = figure(len(order), 2, w=4.6, h=3.4)
    notes = []
    for i, m in enumerate(order):
        part = data[data["machine"] == m]
        ns = sorted(int(n) for n in part["n_devices"].unique())
        ticks = part.drop_duplicates("n_devices").set_index("n_devices")["devices"]
        for v, g in part.groupby("variant", sort=False):
            g = g.sort_values("n_devices")
            axes[i, 0].plot(g["n_devices"], g["speedup"], marker="o", color=paint(v), label=v)
            axes[i, 1].plot(g["n_devices"], g["efficiency"], marker="o", color=paint(v))
            r = g.iloc[0]
            notes.append(
                f"{m} {v}: layers {r['layer_sizes']}, batch {r['batch_size']}, {r['dtype']}"
            )
        axes[i, 0].plot(ns, ns, color=NEUTRAL, ls=":", lw=1, label="ideal")
        axes[i, 1].axhline(1.0, color=NEUTRAL, ls=":", lw=1)
        for ax, ylabel in (
            (axes[i, 0], "speed-up T1/Tn (×)"),
            (axes[i, 1], "efficiency T1/(n·Tn)"),
        ):
            log2_ticks(ax, ns, [str(ticks[n]) for n in ns])
            ax.set_xlabel("devices (processes×devices where several processes)")
            ax.set_ylabel(ylabel)
            ax.set_title(m, fontsize="medium")
            ax.grid(True, alpha=0.3)
        axes[i, 1].set_ylim(0, max(1.1, float(part["efficiency"].max()) * 1.1))
    cfg = data.iloc[0]
    fig.suptitle(
        f"Multi-device scaling (layers {short_layers(cfg['layer_sizes'])}, "
        f"batch {cfg['batch_size']})"
    )
    variants = sorted(data["variant"].unique(), key=tables.variant_rank)
    handles: list[Any] = variant_handles(variants, paint)
    handles.append(Line2D([], [], color=NEUTRAL, ls=":", label="ideal"))
    return save(fig, path, handles), (
        "Speed-up over the same variant on one device, and efficiency T1/(n·Tn), kernel update. "
        "The batch is global (split over the devices). Configurations: " + "; ".join(notes) + "."
    )


#: a category row of the dot plots (peers, machines), and the room for a panel's title and
#: axis, in inches
ROW_IN, FRAME_IN = 0.3, 1.6
#: a panel of the machine plot (its rows: short variant labels); a peers panel takes the whole
#: width, its rows' labels name a configuration
MACHINE_W, PEERS_W = 6.2, MAX_WIDTH_IN - 0.4


def _ratio_axis(ax: Any, ratios: pd.Series, xlabel: str) -> None:
    """A log x axis of ratios around the line at 1, which is always in view."""
    lo, hi = min(float(ratios.min()), 1.0), max(float(ratios.max()), 1.0)
    ax.set_xlim(lo / 1.3, hi * 1.3)
    ax.axvline(1.0, color=NEUTRAL, lw=1)
    log_axis(ax, "x", None)
    ax.set_xlabel(xlabel)
    ax.grid(True, axis="x", which="both", alpha=0.3)


def _rows(ax: Any, names: list[str]) -> dict[str, int]:
    """One row per name, the first at the top, labelled on the y axis; name -> its y."""
    ys = {n: len(names) - 1 - i for i, n in enumerate(names)}
    ax.set_yticks(list(ys.values()), list(ys), fontsize="small")
    ax.set_ylim(-0.7, len(names) - 0.3)
    return ys


def peers(df: pd.DataFrame, path: str | Path) -> Result:
    """Versus peers: ratio peer step / fastest jax step (log), a row per configuration and a
    dot per peer, a panel per host and backend."""
    data = versus.peer_data(df)
    data = data[data["jax_layout"] == "tuned"]
    if data.empty:
        return None, f"versus peers: {versus.NO_PEERS}"
    paint = Palette(df["variant"])
    cell = ["layer_sizes", "batch_size", "dtype", "precision"]
    hosts = list(data.groupby(["host", "backend"], sort=False))
    heights = [ROW_IN * len(part.drop_duplicates(cell)) + FRAME_IN for _, part in hosts]
    fig, axes = panels(heights, PEERS_W)
    names = sorted(data["peer"].unique(), key=tables.variant_rank)
    for ax, ((host, backend), part) in zip(axes, hosts, strict=True):
        here = [p for p in names if p in set(part["peer"])]
        part = part.assign(
            row=[
                f"{short_layers(r.layer_sizes)} · batch {r.batch_size} · {r.dtype} "
                f"{r.precision} · vs {r.jax_variant}"
                for r in part.itertuples()
            ]
        )
        ys = _rows(ax, list(dict.fromkeys(part["row"])))
        for k, peer in enumerate(here):
            g = part[part["peer"] == peer]
            dodge = (k - (len(here) - 1) / 2) * 0.5 / len(here)
            y = np.array([ys[r] for r in g["row"]]) + dodge
            ax.plot(g["ratio"], y, "o", ms=6, color=paint(peer), mec=NEUTRAL, mew=0.4, ls="")
        _ratio_axis(ax, part["ratio"], "peer step / fastest jax step (×, log)")
        ax.set_title(f"{host} ({backend})\nright of 1: jax is faster", fontsize="medium")
    fig.suptitle("JAX versus peers (kernel update)")
    handles = variant_handles(names, paint, ls="", mec=NEUTRAL, mew=0.4)
    return save(fig, path, handles), (
        "Each dot: a peer's step median divided by the fastest jax variant's (tuned layout, "
        "named at the end of the row) on the same host and backend, layer sizes, batch size, "
        "dtype and precision, one device each (kernel update). Right of 1 jax is faster; left "
        "of it the peer is. The table lists the ratios, and stock jax.grad's."
    )


def machines(df: pd.DataFrame, path: str | Path, reference: str | None = None) -> Result:
    """Speed ratio ``T(reference) / T(machine)`` (log) of every configuration measured on both:
    a row per variant, a dot per configuration (its shape: the kernel), a panel per machine."""
    data = versus.machine_ratio_data(df, reference)
    if data.empty:
        found = tables.machines(df) if len(df) else []
        if len(found) < 2:
            return None, f"machine comparison: only one machine ({', '.join(found)}) in these runs"
        return None, "machine comparison: no configuration measured on two or more machines"
    ref = data.attrs["reference"]
    paint = Palette(df["variant"])
    others = list(dict.fromkeys(data["machine"]))
    parts = [data[data["machine"] == m] for m in others]
    heights = [ROW_IN * part["label"].nunique() + FRAME_IN for part in parts]
    fig, axes = panels(heights, MACHINE_W)
    for ax, m, part in zip(axes, others, parts, strict=True):
        ys = _rows(ax, sorted(part["label"].unique(), key=tables.variant_rank))
        for (lab, kernel), g in part.groupby(["label", "kernel"], sort=False):
            ax.plot(
                g["speed_ratio"],
                np.full(len(g), ys[lab] + KERNEL_DODGE.get(kernel, 0.0)),
                ls="",
                marker=KERNEL_MARKERS.get(kernel, "D"),
                ms=6,
                color=paint(lab),
                mec=NEUTRAL,
                mew=0.4,
                alpha=0.8,
            )
        _ratio_axis(ax, part["speed_ratio"], f"speed ratio T({ref}) / T({m}) (×, log)")
        ax.set_title(f"{m} vs {ref}\nright of 1: {m} is faster", fontsize="medium")
    fig.suptitle("Same configuration across machines")
    variants = sorted(data["label"].map(tables.base_variant).unique(), key=tables.variant_rank)
    handles: list[Any] = variant_handles(variants, paint, ls="", mec=NEUTRAL, mew=0.4)
    known = list(KERNEL_MARKERS)
    kernels = sorted(set(data["kernel"]), key=lambda k: (known.index(k) if k in known else 9, k))
    handles += [neutral_marker(KERNEL_MARKERS.get(k, "D"), f"kernel {k}") for k in kernels]
    return save(fig, path, handles), (
        f"Each dot: a configuration (kernel, layer sizes, batch size, dtype, precision) measured "
        f"on {ref} and on the panel's machine, the step time on {ref} divided by the step time "
        "on that machine (>1: that machine is faster); a row per variant, the dot's shape its "
        "kernel. The machine comparison table lists each configuration."
    )
