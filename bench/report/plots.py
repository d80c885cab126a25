"""The report's plots: one function per plot, PNG files drawn with matplotlib's Agg canvas.

Every function takes the results DataFrame (the columns of :mod:`bench.results.schema` plus
``machine``; see :mod:`bench.report.tables`) and an output path, and returns ``(path, caption)`` when
it drew the plot or ``(None, reason)`` when it could not (``"scaling: only one device count (1)
in these runs"``). Only ``status == "ok"`` rows are drawn. Colours come from
:data:`VARIANT_COLOURS`, the same for a variant in every plot and every report. Figures are
built with :class:`matplotlib.figure.Figure` and :class:`FigureCanvasAgg` (no pyplot, no global
state); legends sit outside the axes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..results import schema
from . import tables, versus
from .figure import (
    VARIANT_COLOURS as VARIANT_COLOURS,
)
from .figure import (
    colour,
    dominant_dtype,
    figure,
    label,
    line_style,
    log2_batch_axis,
    log_axis,
    machine_order,
    save,
    variant_handles,
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


def _sweep_plot(
    data: pd.DataFrame, path: Path, ylabel: str, title: str, unit: str | None, band: bool = False
) -> Path:
    order = tables.machines(data)
    layers = sorted(data["layer_sizes"].unique(), key=tables.layer_rank)
    fig, axes = figure(len(order), len(layers))
    batches = sorted(int(b) for b in data["batch_size"].unique())
    labels: dict[str, str] = {}  # label -> its line style
    for i, m in enumerate(order):
        for j, ls in enumerate(layers):
            ax = axes[i, j]
            part = data[(data["machine"] == m) & (data["layer_sizes"] == ls)]
            for lab in sorted(part["label"].unique(), key=tables.variant_rank):
                g = part[part["label"] == lab].sort_values("batch_size")
                style = line_style(lab, g["framework"].iloc[0])
                ax.plot(
                    g["batch_size"],
                    g["y"],
                    marker="o",
                    ms=4,
                    color=colour(lab),
                    ls=style,
                    label=lab,
                )
                if band:
                    lo = pd.to_numeric(g["step_ci_low_s"], errors="coerce")
                    hi = pd.to_numeric(g["step_ci_high_s"], errors="coerce")
                    ax.fill_between(g["batch_size"], lo, hi, color=colour(lab), alpha=0.2, lw=0)
                labels[lab] = style
            log_axis(ax, "y", unit)
            log2_batch_axis(ax, batches)
            ax.set_ylabel(ylabel)
            ax.set_title(f"{m}\nlayers {ls}", fontsize="medium")
            ax.grid(True, which="both", alpha=0.3)
            if part.empty:
                ax.text(0.5, 0.5, "no data", ha="center", transform=ax.transAxes)
    fig.suptitle(title)
    handles = [
        Line2D([], [], color=colour(v), marker="o", ms=4, label=v, ls=labels[v])
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
    p = _sweep_plot(data, Path(path), "throughput (examples/s, log)", "Training throughput", "")
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
    fig, axes = figure(1, len(order), w=5.5, h=4.0)
    variants = sorted(agg["label"].unique(), key=tables.variant_rank)
    for j, m in enumerate(order):
        ax = axes[0, j]
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
                    color=colour(v),
                    hatch=hatch,
                    edgecolor="white",
                    lw=0.5,
                )
                bottom += ms
        ax.set_xticks(range(len(depths)), [str(d) for d in depths])
        ax.set_xlabel("depth (hidden layers)")
        ax.set_ylabel("compile time (ms)")
        ax.set_title(m, fontsize="medium")
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(f"Compile time by depth (hidden width {width}; depth 0 = logistic regression)")
    handles: list[Any] = [Patch(color=colour(v), label=v) for v in variants]
    handles += [
        Patch(facecolor="#cccccc", hatch=h, edgecolor="white", label=n) for _, n, h in PHASES
    ]
    return save(fig, path, handles), (
        "Trace, lower and compile time (stacked, ms; median over batch sizes) against the "
        f"number of hidden layers of width {width}, kernel update, fewest devices per variant."
    )


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


def _compile_vs_step(ax: Any, part: pd.DataFrame, cfg: pd.DataFrame, title: str) -> None:
    """Every configuration's compile cost against its step time, ``cfg`` outlined."""
    ax.scatter(
        part["compile_s"],
        part["step_median_s"],
        s=14,
        lw=0,
        alpha=0.45,
        c=[colour(v) for v in part["variant"]],
    )
    ax.scatter(
        cfg["compile_s"],
        cfg["step_median_s"],
        s=55,
        zorder=3,
        edgecolor="black",
        lw=0.8,
        c=[colour(v) for v in cfg["variant"]],
    )
    log_axis(ax, "x", "s")
    log_axis(ax, "y", "s")
    label(ax, "trace + lower + compile (s, log)", "step time (s, log)", title)


def _total_time(ax: Any, cfg: pd.DataFrame, title: str) -> None:
    """Compile + N steps against N for each variant of ``cfg``, break-even points marked."""
    finite = cfg["break_even_steps"][np.isfinite(cfg["break_even_steps"])]
    n = np.geomspace(1, min(max(100.0, 30 * float(finite.max() if len(finite) else 1)), 1e7), 200)
    for _, r in cfg.iterrows():
        ax.plot(
            n,
            r["compile_s"] + n * r["step_median_s"],
            color=colour(r["variant"]),
            label=f"{r['variant']}: {r['break_even']}",
        )
        steps = r["break_even_steps"]
        if np.isfinite(steps) and steps >= 1:
            y = r["compile_s"] + steps * r["step_median_s"]
            ax.plot(steps, y, "o", color=colour(r["variant"]), mec="black", ms=5)
    ax.legend(
        title="break-even steps",
        fontsize="x-small",
        title_fontsize="x-small",
        loc="upper left",
        framealpha=0.9,
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
    fig, axes = figure(len(order), 2, w=5.2, h=3.9)
    notes = []
    for i, m in enumerate(order):
        part = be[be["machine"] == m]
        cfg, ls, batch, dtype = _outlined(part)
        what = f"all configurations; outlined: layers {ls}, batch {batch}"
        _compile_vs_step(axes[i, 0], part, cfg, f"{m}\n{what}")
        _total_time(axes[i, 1], cfg, f"{m}\ntotal time, layers {ls}, batch {batch}")
        notes.append(f"{m}: layers {ls}, batch {batch}, {dtype}")
    fig.suptitle("Compile time vs step time: the break-even view (kernel update)")
    variants = sorted({v.split(" ×")[0] for v in be["variant"]}, key=tables.variant_rank)
    handles: list[Any] = variant_handles(variants, ls="")
    handles.append(
        Line2D([], [], color="gray", marker="o", mec="black", ls="", label="break-even point")
    )
    return save(fig, path, handles), (
        "Left: every variant and configuration (kernel update), compile cost against step time; "
        "outlined, one configuration per machine (" + "; ".join(notes) + "), multi-device "
        "variants at their largest device count. Right: total time compile + N × step for that "
        "configuration; the dots mark the break-even steps (listed in the panel's legend) after "
        "which a variant's extra compile time is paid back against the cheapest-compile variant "
        "(— for that one, never when it is not faster)."
    )


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
    fig, axes = figure(1, len(order), w=5.2, h=4.2)
    drew_roof = False
    for j, m in enumerate(order):
        ax = axes[0, j]
        part = ok[ok["machine"] == m]
        for kernel, marker in (("update", "o"), ("predict", "^")):
            g = part[part["kernel"] == kernel]
            ax.scatter(
                g["arithmetic_intensity"],
                g["per_device"],
                marker=marker,
                s=28,
                c=[colour(v) for v in g["label"]],
                edgecolor="black",
                lw=0.3,
                zorder=3,
            )
        drew_roof = _roofs(ax, part, _machine_peaks(part, m, peaks)) or drew_roof
        log_axis(ax, "x", None)
        log_axis(ax, "y", "")
        label(ax, "arithmetic intensity (FLOP/byte, log)", "achieved FLOP/s per device (log)", m)
    fig.suptitle("Roofline: achieved FLOP/s against arithmetic intensity")
    handles: list[Any] = variant_handles(
        sorted(ok["label"].map(lambda s: s.split(" ×")[0]).unique(), key=tables.variant_rank), ls=""
    )
    handles += [
        Line2D([], [], color="gray", marker=m, ls="", label=f"kernel {k}")
        for k, m in (("update", "o"), ("predict", "^"))
    ]
    handles.append(Line2D([], [], color="black", label="roof: min(peak, bandwidth × AI)"))
    note = "" if drew_roof else " No measured peaks in these runs: the roof is not drawn."
    return save(fig, path, handles), (
        "Each point is one configuration: flops_per_s per device (all fake CPU devices share "
        "the host's one roof), against arithmetic intensity (flops / min_bytes: the batch read "
        "once and the parameters read and written, the same count for every framework). "
        "Black: the roof min(peak, bandwidth × intensity) from the peak matmul FLOP/s and "
        "bandwidth measured in the same run (one device)." + note
    )


def _roofs(ax: Any, part: pd.DataFrame, peaks: dict[str, dict[str, float]]) -> bool:
    """Draw ``min(peak, bandwidth × intensity)`` for each dtype with both figures; whether any
    roof was drawn."""
    lo, hi = part["arithmetic_intensity"].min() / 4, part["arithmetic_intensity"].max() * 4
    drew = False
    for dtype, p in peaks.items():
        f, b = p.get("matmul_flops_per_s"), p.get("bandwidth_bytes_per_s")
        if not (f and b):
            continue
        ridge = f / b
        xs = np.geomspace(min(lo, ridge / 4), max(hi, ridge * 4), 200)
        ax.plot(xs, np.minimum(f, b * xs), color="black", lw=1.2)
        label = f"{dtype} peak {f / 1e9:,.0f} GFLOP/s"
        ax.annotate(label, (xs[-1], f), ha="right", va="bottom", fontsize="x-small")
        ax.annotate(
            f"{b / 1e9:,.0f} GB/s",
            (xs[0], b * xs[0]),
            ha="left",
            va="bottom",
            fontsize="x-small",
            rotation=25,
        )
        drew = True
    return drew


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
    fig, axes = figure(len(order), 2, w=4.6, h=3.4)
    notes = []
    for i, m in enumerate(order):
        part = data[data["machine"] == m]
        ns = sorted(part["n_devices"].unique())
        ticks = part.drop_duplicates("n_devices").set_index("n_devices")["devices"]
        for v, g in part.groupby("variant", sort=False):
            g = g.sort_values("n_devices")
            axes[i, 0].plot(g["n_devices"], g["speedup"], marker="o", color=colour(v), label=v)
            axes[i, 1].plot(g["n_devices"], g["efficiency"], marker="o", color=colour(v))
            r = g.iloc[0]
            notes.append(
                f"{m} {v}: layers {r['layer_sizes']}, batch {r['batch_size']}, {r['dtype']}"
            )
        axes[i, 0].plot(ns, ns, color="gray", ls=":", label="ideal")
        axes[i, 1].axhline(1.0, color="gray", ls=":")
        for ax, ylabel in (
            (axes[i, 0], "speed-up T1/Tn (×)"),
            (axes[i, 1], "efficiency T1/(n·Tn)"),
        ):
            log2_batch_axis(ax, [int(n) for n in ns])
            ax.set_xticklabels([ticks[n] for n in ns])
            ax.set_xlabel("devices (processes×devices where several processes)")
            ax.set_ylabel(ylabel)
            ax.set_title(m, fontsize="medium")
            ax.grid(True, alpha=0.3)
        axes[i, 1].set_ylim(0, max(1.1, float(part["efficiency"].max()) * 1.1))
    cfg = data.iloc[0]
    fig.suptitle(f"Multi-device scaling (layers {cfg['layer_sizes']}, batch {cfg['batch_size']})")
    variants = sorted(data["variant"].unique(), key=tables.variant_rank)
    handles: list[Any] = variant_handles(variants)
    handles.append(Line2D([], [], color="gray", ls=":", label="ideal"))
    return save(fig, path, handles), (
        "Speed-up over the same variant on one device, and efficiency T1/(n·Tn), kernel update. "
        "The batch is global (split over the devices). Configurations: " + "; ".join(notes) + "."
    )


def peers(df: pd.DataFrame, path: str | Path) -> Result:
    """Versus peers: ratio peer step / fastest jax step (log) per configuration, per host."""
    data = versus.peer_data(df)
    data = data[data["jax_layout"] == "tuned"]
    if data.empty:
        return None, f"versus peers: {versus.NO_PEERS}"
    hosts = list(dict.fromkeys(data["host"]))
    fig, axes = figure(1, len(hosts), w=5.0, h=4.0)
    names = sorted(data["peer"].unique(), key=tables.variant_rank)
    for j, h in enumerate(hosts):
        ax = axes[0, j]
        part = data[data["host"] == h]
        here = [p for p in names if p in set(part["peer"])]
        cfgs = part.drop_duplicates(["layer_sizes", "batch_size", "dtype", "precision"])
        labels = [
            f"{r.layer_sizes}\nbatch {r.batch_size} {r.dtype} {r.precision}\nvs {r.jax_variant}"
            for r in cfgs.itertuples()
        ]
        w = 0.8 / len(here)
        for i, r in enumerate(cfgs.itertuples()):
            same = part[
                (part["layer_sizes"] == r.layer_sizes)
                & (part["batch_size"] == r.batch_size)
                & (part["dtype"] == r.dtype)
                & (part["precision"] == r.precision)
            ]
            for k, peer in enumerate(here):
                g = same[same["peer"] == peer]
                if g.empty:
                    continue
                ratio = float(g["ratio"].iloc[0])
                x = i + (k - (len(here) - 1) / 2) * w
                ax.bar(x, ratio, w * 0.9, color=colour(peer))
                mark = "✓" if ratio > 1 else "✗"
                ax.annotate(
                    f"{ratio:.2f} {mark}", (x, ratio), ha="center", va="bottom", fontsize="x-small"
                )
        ax.axhline(1.0, color="black", lw=1)
        ax.margins(y=0.15)
        log_axis(ax, "y", None)
        ax.set_xticks(range(len(labels)), labels, fontsize="small")
        ax.set_ylabel("peer step / fastest jax step (log)")
        ax.set_title(f"{h}\nabove 1: jax is faster", fontsize="medium")
        ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.suptitle("JAX versus peers (kernel update)")
    return save(fig, path, [Patch(color=colour(p), label=p) for p in names]), (
        "Each bar: a peer's step median divided by the fastest jax variant's (tuned layout) on "
        "the same host and backend, layer sizes, batch size, dtype and precision, one device "
        "each (kernel update). Above 1 (✓) jax is faster; below 1 (✗) the peer is. The table "
        "also holds stock jax.grad's."
    )


def machines(df: pd.DataFrame, path: str | Path, reference: str | None = None) -> Result:
    """Speed ratio ``T(reference) / T(machine)`` (log) per configuration on several machines."""
    data = versus.machine_ratio_data(df, reference)
    if data.empty:
        found = tables.machines(df) if len(df) else []
        if len(found) < 2:
            return None, f"machine comparison: only one machine ({', '.join(found)}) in these runs"
        return None, "machine comparison: no configuration measured on two or more machines"
    ref = data.attrs["reference"]
    others = list(dict.fromkeys(data["machine"]))
    n = max(data.groupby("machine").size())
    fig, axes = figure(1, len(others), figsize=(min(6.5 * len(others) + 2.5, 22), 0.26 * n + 1.8))
    for j, m in enumerate(others):
        ax = axes[0, j]
        part = data[data["machine"] == m].reset_index(drop=True)
        ys = np.arange(len(part))[::-1]
        ax.barh(ys, part["speed_ratio"], color=[colour(v) for v in part["label"]], height=0.75)
        ax.set_yticks(
            ys,
            [
                f"{r.label} {r.kernel} · {r.layer_sizes} · b{r.batch_size}"
                for r in part.itertuples()
            ],
            fontsize="x-small",
        )
        ax.axvline(1.0, color="black", lw=1)
        log_axis(ax, "x", None)
        ax.set_xlabel(f"speed ratio T({ref}) / T({m}) (×, log)")
        ax.set_title(f"{m} vs {ref}\nright of 1: {m} is faster", fontsize="medium")
        ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.suptitle("Same configuration across machines")
    variants = sorted(
        data["label"].map(lambda s: s.split(" ×")[0]).unique(), key=tables.variant_rank
    )
    handles = [Patch(color=colour(v), label=v) for v in variants]
    return save(fig, path, handles), (
        f"For each configuration measured on {ref} and another machine: the step time on "
        f"{ref} divided by the step time on the other machine (>1: the other machine is faster)."
    )
