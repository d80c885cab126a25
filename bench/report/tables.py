"""The report's tables: pure functions from the results DataFrame to a DataFrame.

Input is the tidy frame of :func:`bench.load` (several runs concatenated), with a
``machine`` column (``backend:device_kind@host``, see :func:`add_machine`; added on the fly when
missing) and, for :func:`run_summary` and :func:`errors`, a ``run`` column naming the run
directory. Times in the input are seconds. Tables meant for reading format their cells
(``"1.23 ms [1.20–1.26]"``); the ``*_data`` helpers return the numbers behind the plots.
Only ``status == "ok"`` rows feed timing tables; :func:`errors` lists the rest.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..catalog import DISPLAY_ORDER, MULTI_DEVICE
from ..format import fmt_ci, fmt_time
from ..results import rows, schema

COMPILE_PARTS = schema.COMPILE_COLUMNS
FASTEST = "★"
#: marks a row measured while the machine ran slow (its row in "Errors and skips" says more)
UNSTABLE = "⚠"


# --------------------------------------------------------------------------- helpers


def machine_label(backend: Any, device_kind: Any, host: Any) -> str:
    """``backend:device_kind@host``, the name of a machine in tables and plots."""
    return f"{backend}:{device_kind}@{host}"


def add_machine(df: pd.DataFrame, host: str | None = None) -> pd.DataFrame:
    """A copy of ``df`` with a ``machine`` column; ``host`` fills rows without one."""
    out = df.copy()
    hosts = out["host"] if "host" in out else pd.Series([None] * len(out), index=out.index)
    if host is not None:
        hosts = hosts.where(hosts.notna(), host)
    out["machine"] = [
        machine_label(b, k, h)
        for b, k, h in zip(out["backend"], out["device_kind"], hosts, strict=True)
    ]
    return out


def _prepared(df: pd.DataFrame) -> pd.DataFrame:
    out = df if "machine" in df.columns else add_machine(df)
    out = out.copy()
    for col, default in (("n_processes", 1), ("n_devices", 1), ("work_multiplier", 1)):
        given = out[col] if col in out else pd.Series(default, index=out.index)
        out[col] = pd.to_numeric(given, errors="coerce").fillna(default).astype(int)
    out["framework"] = out["framework"].fillna("jax") if "framework" in out else "jax"
    # the arithmetic of every row (rows written before it was recorded: what they ran)
    arith = pd.DataFrame([schema.arithmetic(r) for r in out.to_dict(orient="records")])
    for col in schema.ARITHMETIC_COLUMNS:
        out[col] = arith[col].to_numpy() if len(out) else []
    out["label"] = [
        variant_label(v, p, n, lay if f == "jax" else "", c)
        for v, p, n, lay, f, c in zip(
            out["variant"],
            out["n_processes"],
            out["n_devices"],
            out["grad_layout"],
            out["framework"],
            out["compile_options"],
            strict=True,
        )
    ]
    return out


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with ``status == "ok"`` and a finite step median, with ``machine`` and ``label``."""
    out = _prepared(df)
    med = pd.to_numeric(out["step_median_s"], errors="coerce")
    return out[(out["status"] == "ok") & np.isfinite(med)].copy()


def one_device_one_model(ok: pd.DataFrame) -> pd.DataFrame:
    """The rows that may be held against one another as "the fastest": one device in one
    process, training one model (an ``ensemble`` row trains ``work_multiplier`` models)."""
    return ok[(ok["n_devices"] == 1) & (ok["n_processes"] == 1) & (ok["work_multiplier"] == 1)]


def device_label(n_processes: int, n_devices: int) -> str:
    """Devices of a row: ``"4"``, or processes × devices per process (``"2×2"``)."""
    n_processes, n_devices = int(n_processes), int(n_devices)
    if n_processes > 1:
        return f"{n_processes}×{n_devices // n_processes}"
    return str(n_devices)


#: the label suffix of a JAX row with stock ``jax.grad``
STOCK_SUFFIX = " (stock)"


def variant_label(
    variant: str,
    n_processes: int = 1,
    n_devices: int = 1,
    layout: str = "",
    compiled: str = schema.legacy_arithmetic({})["compile_options"],
) -> str:
    """``jit``, or ``pmap ×4`` for a multi-device variant or a row spread over devices, with
    ``(stock)`` for a JAX variant run with jax.grad's own weight-gradient layout (the notebook's
    is stock by definition) and ``[fast-compile]`` for compile options other than XLA's own."""
    label = str(variant)
    if variant in MULTI_DEVICE or int(n_devices) > 1:
        label = f"{variant} ×{device_label(n_processes, n_devices)}"
    if layout == "stock" and variant != "notebook":
        label += STOCK_SUFFIX
    if compiled != schema.legacy_arithmetic({})["compile_options"]:
        label += f" [{compiled}]"
    return label


def base_variant(label: str) -> str:
    """The variant of a label: ``pmap`` for ``pmap ×4 (stock)``."""
    return str(label).split(" ×")[0].split(" (")[0].split(" [")[0]


def variant_rank(variant: str) -> tuple[int, str]:
    """Sort key: the catalogue's display order, unknown variants after."""
    base = base_variant(variant)
    idx = DISPLAY_ORDER.index(base) if base in DISPLAY_ORDER else len(DISPLAY_ORDER)
    return idx, str(variant)


def layer_rank(layer_sizes: str) -> tuple[int, int]:
    """Sort key of a layer-sizes string: (depth, number of weights)."""
    sizes = [int(s) for s in str(layer_sizes).split(",") if s.strip().isdigit()]
    return len(sizes), sum(a * b for a, b in itertools.pairwise(sizes))


def sorted_by(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    def key(s: pd.Series) -> pd.Series:
        if s.name == "layer_sizes":
            return s.map(layer_rank)
        if s.name in ("variant", "label"):
            return s.map(variant_rank)
        if s.name == "machine" and "machine_order" in df.attrs:
            order = df.attrs["machine_order"]
            return s.map(lambda m: order.index(m) if m in order else len(order))
        if s.name == "kernel":
            return s.map(lambda k: (k != "update", str(k)))
        return s

    return df.sort_values(list(cols), key=key, kind="stable").reset_index(drop=True)


def machines(df: pd.DataFrame) -> list[str]:
    """Machine labels in the order they first appear (the first run's first)."""
    if "machine" not in df.columns:
        df = add_machine(df)
    return list(dict.fromkeys(df["machine"]))


def readable(frame: pd.DataFrame, drop: Sequence[str] = ()) -> pd.DataFrame:
    """``frame`` for reading: float columns named ``*_s`` as times (``1.2 ms``, renamed
    without the suffix), other floats to 4 significant digits, ``drop`` left out."""
    out = frame.drop(columns=[c for c in drop if c in frame.columns])
    for col in out.columns:
        if not pd.api.types.is_float_dtype(out[col]):
            continue
        if str(col).endswith("_s"):
            out[col] = out[col].map(fmt_time)
            out = out.rename(columns={col: str(col)[:-2]})
        else:
            out[col] = out[col].map(lambda x: "—" if pd.isna(x) else f"{x:.4g}")
    return out


# --------------------------------------------------------------------------- tables


def run_summary(df: pd.DataFrame, metas: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One column per run: machine, versions, peaks, dataset and row counts by status.

    ``metas[i]`` is the metadata of the run whose rows have ``run == metas[i]["_run"]`` (or
    ``run_id``); the index names the fields.
    """
    out: dict[str, dict[str, Any]] = {}
    for meta in metas:
        run = meta.get("_run") or meta.get("run_id") or "?"
        rows = df[df["run"] == run] if "run" in df else df
        cpu = meta.get("cpu") if isinstance(meta.get("cpu"), dict) else {}
        backends = meta.get("backends") if isinstance(meta.get("backends"), dict) else {}
        git = meta.get("git") if isinstance(meta.get("git"), dict) else {}
        data = meta.get("dataset") if isinstance(meta.get("dataset"), dict) else {}
        status = rows["status"].value_counts() if "status" in rows else pd.Series(dtype=int)
        col = {
            "run id": meta.get("run_id"),
            "host": meta.get("host"),
            "machines": ", ".join(machines(rows)) if len(rows) else "—",
            "cpu": _cpu(cpu),
            "devices": "; ".join(
                f"{b}: {i.get('device_count', '?')}× {i.get('device_kind', '?')} "
                f"({i.get('platform_version', '?')})"
                for b, i in backends.items()
                if isinstance(i, dict)
            ),
            "processes × devices": f"{meta.get('n_processes', 1)} × "
            f"{meta.get('global_devices', '?')}",
            "python / jax / jaxlib / numpy": " / ".join(
                str(meta.get(k, "?")) for k in ("python", "jax", "jaxlib", "numpy")
            ),
            "git": f"{git.get('commit', '?')}{' (dirty)' if git.get('dirty') else ''}",
            "peaks": _peaks(meta.get("peaks")),
            "dataset": f"{data.get('name', '?')} ({'real' if data.get('real') else 'synthetic'}"
            f", {data.get('source', '?')})",
            "start → end": f"{meta.get('start_time', '?')} → {meta.get('end_time', '?')}",
            "command": meta.get("command"),
            "schema version": meta.get("schema_version"),
            "rows": len(rows),
        }
        for s in ("ok", "error", "timeout", "skipped"):
            col[s] = int(status.get(s, 0))
        col["skipped (not run)"] = len(meta.get("skipped") or [])
        out[str(run)] = col
    table = pd.DataFrame(out)
    table.index.name = "field"
    return table.reset_index()


def _cpu(cpu: dict[str, Any]) -> str:
    mem = cpu.get("memory_bytes")
    mem_text = f", {mem / 2**30:.0f} GiB" if isinstance(mem, (int, float)) else ""
    return f"{cpu.get('model', '?')} ({cpu.get('cores', '?')} cores{mem_text})"


def _peaks(peaks: Any) -> str:
    if not isinstance(peaks, dict):
        return "—"
    parts = []
    for backend, by_dtype in peaks.items():
        for dtype, p in (by_dtype or {}).items():
            if not isinstance(p, dict):
                continue
            f, b = p.get("matmul_flops_per_s"), p.get("bandwidth_bytes_per_s")
            f_text = f"{f / 1e9:,.0f} GFLOP/s" if isinstance(f, (int, float)) else "?"
            b_text = f"{b / 1e9:,.0f} GB/s" if isinstance(b, (int, float)) else "?"
            parts.append(f"{backend} {dtype}: {f_text}, {b_text}")
    return "; ".join(parts) or "—"


def step_times(df: pd.DataFrame) -> pd.DataFrame:
    """Step median [95% CI] by variant (rows) × batch size (columns), per machine, layer
    sizes, kernel, dtype and precision; the fastest one-device, one-model variant of each column
    within a group gets ★ (several devices or an ensemble's models are not the same work)."""
    ok = ok_rows(df)
    if ok.empty:
        return pd.DataFrame()
    group = ["machine", "layer_sizes", "kernel", "dtype", "precision"]
    ok["cell"] = [
        fmt_ci(m, lo, hi)
        for m, lo, hi in zip(
            ok["step_median_s"], ok["step_ci_low_s"], ok["step_ci_high_s"], strict=True
        )
    ]
    single = one_device_one_model(ok)
    best = single.groupby([*group, "batch_size"])["step_median_s"].transform("min")
    ok.loc[best[single["step_median_s"] == best].index, "cell"] += f" {FASTEST}"
    ok.loc[_unstable(ok), "cell"] += f" {UNSTABLE}"
    wide = ok.pivot_table(
        index=[*group, "label"], columns="batch_size", values="cell", aggfunc="first"
    )
    wide.columns = [f"batch {int(b)}" for b in wide.columns]
    wide = wide.reset_index().rename(columns={"label": "variant"})
    wide.attrs["machine_order"] = machines(df)
    return sorted_by(wide, [*group, "variant"]).fillna("—")


def compile_costs(df: pd.DataFrame) -> pd.DataFrame:
    """Trace, lower, compile and first-call times (ms) by variant × depth, per machine and
    kernel: the median over the batch sizes and dtypes measured."""
    ok = ok_rows(df)
    for c in (*COMPILE_PARTS, "first_call_s"):
        ok[c] = pd.to_numeric(ok[c], errors="coerce")
    ok = ok[ok[list(COMPILE_PARTS)].notna().all(axis=1)]
    if ok.empty:
        return pd.DataFrame()
    keys = ["machine", "kernel", "label", "depth", "layer_sizes"]
    agg = ok.groupby(keys, dropna=False)[[*COMPILE_PARTS, "first_call_s"]].median()
    agg["total_s"] = agg[list(COMPILE_PARTS)].sum(axis=1)
    agg["configs"] = ok.groupby(keys, dropna=False).size()
    # the cold compile's own median and interval where the compiles were repeated (a row of
    # an older run has one compile: its phases' sum, no interval)
    cold = ok.assign(
        cold=_numeric(ok, "cold_compile_s").fillna(ok[list(COMPILE_PARTS)].sum(axis=1)),
        lo=_numeric(ok, "cold_compile_ci_low_s"),
        hi=_numeric(ok, "cold_compile_ci_high_s"),
        n=_numeric(ok, "n_compiles").fillna(1),
    ).groupby(keys, dropna=False)
    agg["cold_s"], agg["lo_s"], agg["hi_s"] = (
        cold["cold"].median(),
        cold["lo"].median(),
        cold["hi"].median(),
    )
    agg["compiles"] = cold["n"].sum()
    agg = agg.reset_index()
    out = agg[["machine", "kernel", "label", "depth", "layer_sizes", "configs"]].rename(
        columns={"label": "variant"}
    )
    for col, name in (
        ("trace_s", "trace (ms)"),
        ("lower_s", "lower (ms)"),
        ("compile_s", "compile (ms)"),
        ("cold_s", "cold compile (ms)"),
        ("first_call_s", "first call (ms)"),
    ):
        out[name] = (agg[col] * 1e3).round(2)
    out["cold compile 95% CI (ms)"] = [
        "—" if not (np.isfinite(lo) and np.isfinite(hi)) else f"{lo * 1e3:.1f}–{hi * 1e3:.1f}"
        for lo, hi in zip(agg["lo_s"], agg["hi_s"], strict=True)
    ]
    out["cold compiles"] = agg["compiles"].astype(int)
    out.attrs["machine_order"] = machines(df)
    return sorted_by(out, ["machine", "kernel", "variant", "depth", "layer_sizes"])


def _numeric(df: pd.DataFrame, col: str) -> pd.Series:
    """``df[col]`` as numbers (NaN where missing; a column of NaN when absent)."""
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index)
    return pd.to_numeric(df[col], errors="coerce")


def _cold_compile(df: pd.DataFrame) -> pd.Series:
    """Each row's cold compile (s): its median where compiles were repeated, else the sum of
    its phases."""
    phases = df[list(COMPILE_PARTS)].apply(pd.to_numeric, errors="coerce")
    summed = phases.sum(axis=1, min_count=1)
    return _numeric(df, "cold_compile_s").fillna(summed)


def compile_tradeoff(df: pd.DataFrame) -> pd.DataFrame:
    """Compile harder or compile faster, the same kernel: for each configuration measured with
    XLA's own options and with another set (``compile_options``), both cold compiles, both step
    times, and the steps after which the harder compile has paid for itself (``never`` when its
    steps are not faster; ``—`` when it compiles no longer)."""
    ok = ok_rows(df)
    ok = ok.assign(cold=_cold_compile(ok), step=_numeric(ok, "step_median_s"))
    standard = schema.legacy_arithmetic({})["compile_options"]
    keys = [
        "machine",
        "kernel",
        "variant",
        "layer_sizes",
        "batch_size",
        "dtype",
        "precision",
        "grad_layout",
        "n_devices",
    ]
    base = ok[ok["compile_options"] == standard].set_index(keys)
    rows = []
    for _, r in ok[ok["compile_options"] != standard].iterrows():
        k = tuple(r[c] for c in keys)
        if k not in base.index:
            continue
        b = base.loc[k]
        b = b.iloc[0] if isinstance(b, pd.DataFrame) else b
        extra = b["cold"] - r["cold"]  # what compiling harder costs
        saved = r["step"] - b["step"]  # what it saves a step
        if not extra > 0:
            steps, text = math.nan, "—"
        elif not saved > 0:
            steps, text = math.inf, "never"
        else:
            steps = extra / saved
            text = f"{math.ceil(round(steps, 6)):,}"  # 500.0000001 steps are 500
        rows.append(
            [*k, r["compile_options"], b["cold"], r["cold"], b["step"], r["step"], steps, text]
        )
    cols = [
        *keys,
        "against",
        "standard_compile_s",
        "other_compile_s",
        "standard_step_s",
        "other_step_s",
        "break_even_steps",
        "standard pays after",
    ]
    out = pd.DataFrame(rows, columns=cols)
    out.attrs["machine_order"] = machines(df)
    return (
        sorted_by(out, ["machine", "kernel", "variant", "layer_sizes", "batch_size"])
        if rows
        else out
    )


def cached_compile(df: pd.DataFrame) -> pd.DataFrame:
    """Cold vs cached compile by variant and depth, per machine and kernel (the median over the
    batch sizes and dtypes measured): the cold compile in a warm worker (its median), the same
    in a fresh process that fills the persistent cache, the load from that cache in the next
    fresh process, and that process's first call; ms, with the cold / cached ratio."""
    ok = ok_rows(df)
    ok = ok.assign(
        cached=_numeric(ok, "cached_compile_s"),
        fresh=_numeric(ok, "fresh_compile_s"),
        first=_numeric(ok, "cached_first_call_s"),
        entry=_numeric(ok, "cache_entry_bytes"),
        cold=_numeric(ok, "cold_compile_s").fillna(
            ok[list(COMPILE_PARTS)].apply(pd.to_numeric, errors="coerce").sum(axis=1)
        ),
    )
    ok = ok[ok["cached"].notna()]
    if ok.empty:
        return pd.DataFrame()
    keys = ["machine", "kernel", "label", "depth", "layer_sizes"]
    agg = ok.groupby(keys, dropna=False)[["cold", "fresh", "cached", "first", "entry"]].median()
    agg["configs"] = ok.groupby(keys, dropna=False).size()
    agg = agg.reset_index()
    out = agg[["machine", "kernel", "label", "depth", "layer_sizes", "configs"]].rename(
        columns={"label": "variant"}
    )
    for col, name in (
        ("cold", "cold compile, worker (ms)"),
        ("fresh", "cold compile, fresh process (ms)"),
        ("cached", "cached, next process (ms)"),
        ("first", "first call after the hit (ms)"),
    ):
        out[name] = (agg[col] * 1e3).round(2)
    out["cold / cached"] = (agg["fresh"] / agg["cached"]).round(2)
    out["cache entry (KiB)"] = (agg["entry"] / 1024).round(1)
    out.attrs["machine_order"] = machines(df)
    return sorted_by(out, ["machine", "kernel", "variant", "depth", "layer_sizes"])


def break_even(df: pd.DataFrame) -> pd.DataFrame:
    """Steps after which a variant's extra compile time is paid back by its faster steps.

    Per machine, layer sizes, batch size and dtype (kernel ``update``), every variant with
    compile times is compared with the one of the cheapest trace+lower+compile:
    ``break_even_steps = extra compile (s) / step time saved (s/step)``; ``inf`` (shown
    ``never``) when it is not faster, NaN (shown ``—``) for the cheapest-compile one.
    """
    ok = ok_rows(df)
    ok = ok[ok["kernel"] == "update"]
    for c in COMPILE_PARTS:
        ok[c] = pd.to_numeric(ok[c], errors="coerce")
    ok = ok[ok[list(COMPILE_PARTS)].notna().all(axis=1)].copy()
    cols = [
        "machine",
        "layer_sizes",
        "batch_size",
        "dtype",
        "variant",
        "n_devices",
        "reference",
        "compile_s",
        "step_median_s",
        "extra_compile_s",
        "saved_per_step_s",
        "break_even_steps",
        "break_even",
    ]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    ok["compile_total_s"] = ok[list(COMPILE_PARTS)].sum(axis=1)
    rows = []
    for _, g in ok.groupby(
        ["machine", "layer_sizes", "batch_size", "dtype", "precision"], sort=False
    ):
        if len(g) < 2:
            continue
        ref = g.loc[g["compile_total_s"].idxmin()]
        for _, r in g.iterrows():
            extra = r["compile_total_s"] - ref["compile_total_s"]
            saved = ref["step_median_s"] - r["step_median_s"]
            if r.name == ref.name:
                steps, text = math.nan, "—"
            elif saved <= 0:
                steps, text = math.inf, "never"
            else:
                steps = extra / saved
                text = f"{math.ceil(steps):,}"
            rows.append(
                [
                    r["machine"],
                    r["layer_sizes"],
                    int(r["batch_size"]),
                    r["dtype"],
                    r["label"],
                    int(r["n_devices"]),
                    ref["label"],
                    r["compile_total_s"],
                    r["step_median_s"],
                    extra,
                    saved,
                    steps,
                    text,
                ]
            )
    out = pd.DataFrame(rows, columns=cols)
    out.attrs["machine_order"] = machines(df)
    return sorted_by(out, ["machine", "layer_sizes", "batch_size", "dtype", "variant"])


def roofline_data(df: pd.DataFrame) -> pd.DataFrame:
    """The roofline's points: ok rows with ``arithmetic_intensity`` (FLOP per min_byte) and
    ``per_device``, achieved FLOP/s per device as the rows' ceilings count devices
    (:func:`bench.results.rows.device_scale`: fake CPU devices share the host's one roof)."""
    ok = ok_rows(df)
    for c in ("arithmetic_intensity", "flops_per_s"):
        ok[c] = pd.to_numeric(ok[c], errors="coerce")
    ok = ok[(ok["arithmetic_intensity"] > 0) & (ok["flops_per_s"] > 0)].copy()
    scale = [rows.device_scale(r) for r in ok[["backend", "n_devices"]].to_dict(orient="records")]
    ok["per_device"] = ok["flops_per_s"] / np.maximum(np.asarray(scale, dtype=float), 1.0)
    return ok


def _unstable(df: pd.DataFrame) -> pd.Series:
    """Rows kept although their measurement was disturbed (see bench.runner.loop.RetryPolicy)."""
    if "unstable" not in df:
        return pd.Series(False, index=df.index)
    return df["unstable"].map(lambda v: v is True or v == 1 or str(v).lower() == "true")


def errors(df: pd.DataFrame, metas: Sequence[dict[str, Any]] = ()) -> pd.DataFrame:
    """Rows that did not finish (error, timeout, skipped), rows measured while the machine was
    slow (``unstable``), and the run's skip list, with the message or reason."""
    prepared = _prepared(df) if len(df) else df
    bad = prepared[(prepared["status"] != "ok") | _unstable(prepared)] if len(df) else df
    rows = []
    for _, r in bad.iterrows():
        what = (
            f"{r['framework']} {r['label']} {r['kernel']} {r['layer_sizes']} "
            f"batch {r['batch_size']} {r['dtype']}"
        )
        status, why = r["status"], r.get("error")
        if status == "ok":
            status = "unstable"
            why = (
                f"measured while the machine ran slow (canary ×{float(r.get('canary_ratio') or 0):.2f} "
                f"after {int(r.get('load_retries') or 0)} retries): its figures may hold the spell"
            )
        rows.append([r.get("run", ""), r["machine"], status, what, why])
    for meta in metas:
        for item in meta.get("skipped") or []:
            if isinstance(item, dict):
                rows.append(
                    [
                        meta.get("_run") or meta.get("run_id"),
                        meta.get("host"),
                        "not run",
                        item.get("what"),
                        item.get("reason"),
                    ]
                )
    out = pd.DataFrame(rows, columns=["run", "machine", "status", "what", "error or reason"])
    return out.fillna("—")


# --------------------------------------------------------------------------- comparisons


def scaling_data(df: pd.DataFrame) -> pd.DataFrame:
    """Speed-up ``T1 / Tn`` and efficiency ``T1 / (n · Tn)`` of the multi-device variants.

    Per machine and variant (kernel ``update``), the configuration (layer sizes, batch, dtype)
    with a single-device row and the most device counts is used (ties: largest batch, then
    largest model). Empty when no variant has a 1-device row and another device count.
    """
    ok = ok_rows(df)
    ok = ok[ok["variant"].isin(list(MULTI_DEVICE)) & (ok["kernel"] == "update")]
    parts = []
    for _, g in ok.groupby(["machine", "variant"], sort=False):
        best = None
        for cfg, c in g.groupby(["layer_sizes", "batch_size", "dtype", "precision", "grad_layout"]):
            single = c[(c["n_devices"] == 1) & (c["n_processes"] == 1)]
            if single.empty or c["n_devices"].nunique() < 2:
                continue
            rank = (c["n_devices"].nunique(), cfg[1], layer_rank(cfg[0]))
            if best is None or rank > best[0]:
                best = (rank, c.copy(), float(single["step_median_s"].iloc[0]))
        if best is None:
            continue
        _, c, t1 = best
        c["t1_s"] = t1
        c["speedup"] = t1 / c["step_median_s"]
        c["efficiency"] = c["speedup"] / c["n_devices"]
        c["devices"] = [
            device_label(p, n) for p, n in zip(c["n_processes"], c["n_devices"], strict=True)
        ]
        parts.append(c)
    cols = ["machine", "variant", "layer_sizes", "batch_size", "dtype", "n_processes"]
    cols += ["n_devices", "devices", "step_median_s", "t1_s", "speedup", "efficiency"]
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts)[cols]
    out.attrs["machine_order"] = machines(df)
    return sorted_by(out, ["machine", "variant", "n_devices"])


def why_no_scaling(df: pd.DataFrame) -> str:
    """Why :func:`scaling_data` is empty, in one line starting ``scaling:``."""
    ok = ok_rows(df)
    counts = sorted(ok["n_devices"].unique()) if len(ok) else []
    if len(counts) < 2:
        shown = ", ".join(str(c) for c in counts) or "none"
        return f"scaling: only one device count ({shown}) in these runs"
    return (
        "scaling: no multi-device variant measured at 1 device and at another device count "
        "with the same layer sizes, batch and dtype"
    )


def scaling(df: pd.DataFrame) -> pd.DataFrame:
    """:func:`scaling_data` for reading: step time, speed-up and efficiency per device count."""
    data = scaling_data(df)
    if data.empty:
        return pd.DataFrame()
    out = data[["machine", "variant", "layer_sizes", "batch_size", "dtype", "devices"]].copy()
    out["step"] = data["step_median_s"].map(fmt_time)
    out["speed-up T1/Tn"] = data["speedup"].round(2)
    out["efficiency T1/(n·Tn)"] = data["efficiency"].round(2)
    return out
