"""Tables that hold one set of rows against another: each variant against the seed notebook's
step, JAX against its peers (PyTorch, NumPy), and one machine against another. Every comparison
keeps its sides like for like: the same arithmetic (dtype and precision) and, against the
notebook and the peers, one device and one model on each side.

Pure functions from the results DataFrame (see :mod:`.tables`) to a DataFrame.
"""

from __future__ import annotations

import pandas as pd

from ..format import fmt_time
from .tables import machines, ok_rows, one_device_one_model, sorted_by, variant_rank

PEER_FRAMEWORKS = ("torch", "numpy")
NO_PEERS = "no peer rows (install the `peers` extra)"


CONFIG_COLUMNS = (
    "framework",
    "label",
    "kernel",
    "layer_sizes",
    "batch_size",
    "dtype",
    "precision",
)


def machine_ratio_data(df: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Configurations measured on two or more machines: step time on each machine and the
    speed ratio ``T(reference) / T(machine)`` (>1: that machine is faster). ``reference``
    defaults to the first machine (the first run's)."""
    ok = ok_rows(df)
    order = machines(df)
    cols = [*CONFIG_COLUMNS, "machine", "step_median_s", "reference_s", "speed_ratio"]
    if len(order) < 2:
        return pd.DataFrame(columns=cols)
    reference = reference or order[0]
    keys = list(CONFIG_COLUMNS)
    ok = ok.drop_duplicates([*keys, "machine"], keep="last")
    ref = ok[ok["machine"] == reference][[*keys, "step_median_s"]]
    ref = ref.rename(columns={"step_median_s": "reference_s"})
    other = ok[ok["machine"] != reference]
    merged = other.merge(ref, on=keys, how="inner")
    merged["speed_ratio"] = merged["reference_s"] / merged["step_median_s"]
    out = merged[cols]
    out.attrs["machine_order"] = order
    out.attrs["reference"] = reference
    return sorted_by(out, ["machine", "kernel", "layer_sizes", "batch_size", "label"])


def machine_comparison(df: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """The merged table across machines: each configuration's step time per machine (a column
    each) and its speed ratio to the reference machine (>1: faster than the reference)."""
    data = machine_ratio_data(df, reference)
    if data.empty:
        return pd.DataFrame()
    reference = data.attrs["reference"]
    keys = list(CONFIG_COLUMNS)
    out = data[keys].drop_duplicates().reset_index(drop=True)
    ref = data.drop_duplicates(keys)[[*keys, "reference_s"]]
    out = out.merge(ref, on=keys).rename(columns={"reference_s": f"{reference} step"})
    out[f"{reference} step"] = out[f"{reference} step"].map(fmt_time)
    for m in dict.fromkeys(data["machine"]):
        part = data[data["machine"] == m][[*keys, "step_median_s", "speed_ratio"]]
        part = part.rename(
            columns={"step_median_s": f"{m} step", "speed_ratio": f"{m} speed ratio"}
        )
        out = out.merge(part, on=keys, how="left")
        out[f"{m} step"] = out[f"{m} step"].map(fmt_time)
        out[f"{m} speed ratio"] = out[f"{m} speed ratio"].round(3)
    return out.rename(columns={"label": "variant"}).fillna("—")


#: a peer cell: one host and backend, one model, batch and arithmetic, one device
PEER_KEYS = ["host", "backend", "layer_sizes", "batch_size", "dtype", "precision"]
#: precisions whose arithmetic is the same in every framework (``default`` is each
#: framework's own, ``bf16-forward`` JAX's old bfloat16): only these are compared with peers
COMPARABLE = ("highest", "tf32", "bf16")


def peer_data(df: pd.DataFrame) -> pd.DataFrame:
    """Like-for-like peer comparisons (kernel ``update``): per host and backend, layer sizes,
    batch size, dtype and precision, on one device, the fastest JAX variant with each weight-
    gradient layout (``tuned``, ``stock``: jax.grad's own, the notebook's included), each
    peer's step time, and ``ratio = peer / jax`` (>1: JAX is faster)."""
    ok = one_device_one_model(ok_rows(df))
    ok = ok[(ok["kernel"] == "update") & ok["precision"].isin(COMPARABLE)]
    cols = [*PEER_KEYS, "jax_layout", "jax_variant", "jax_step_s", "peer", "peer_step_s", "ratio"]
    peers = ok[ok["framework"].isin(PEER_FRAMEWORKS)]
    jax_rows = ok[ok["framework"] == "jax"]
    if peers.empty or jax_rows.empty:
        return pd.DataFrame(columns=cols)
    keys = [*PEER_KEYS, "grad_layout"]
    best = jax_rows.loc[jax_rows.groupby(keys)["step_median_s"].idxmin()]
    best = best[[*keys, "label", "step_median_s"]].rename(
        columns={
            "grad_layout": "jax_layout",
            "label": "jax_variant",
            "step_median_s": "jax_step_s",
        }
    )
    p = peers[[*PEER_KEYS, "variant", "step_median_s"]].rename(
        columns={"variant": "peer", "step_median_s": "peer_step_s"}
    )
    out = p.merge(best, on=PEER_KEYS, how="inner")
    out["ratio"] = out["peer_step_s"] / out["jax_step_s"]
    return sorted_by(out[cols], [*PEER_KEYS, "jax_layout", "peer"])


def peers(df: pd.DataFrame) -> pd.DataFrame:
    """The versus-peers table, one row per cell (host, backend, model, batch, dtype, precision,
    one device): the fastest JAX variant with the tuned and with the stock layout, each peer's
    step time and its ratio to each (peer / jax, ✓ where JAX is faster, ✗ where the peer is),
    and whether tuned JAX wins."""
    data = peer_data(df)
    if data.empty:
        return pd.DataFrame()
    out = data.drop_duplicates(PEER_KEYS)[PEER_KEYS].copy()
    out.insert(len(PEER_KEYS), "devices", 1)
    for layout in ("tuned", "stock"):
        part = data[data["jax_layout"] == layout].drop_duplicates(PEER_KEYS)
        part = part[[*PEER_KEYS, "jax_variant", "jax_step_s"]].copy()
        part["jax_step_s"] = part["jax_step_s"].map(fmt_time)
        names = {"jax_variant": f"jax {layout}", "jax_step_s": f"jax {layout} step"}
        out = out.merge(part.rename(columns=names), on=PEER_KEYS, how="left")
    for peer in sorted(dict.fromkeys(data["peer"]), key=variant_rank):
        mine = data[data["peer"] == peer]
        step = mine.drop_duplicates(PEER_KEYS)[[*PEER_KEYS, "peer_step_s"]].copy()
        step["peer_step_s"] = step["peer_step_s"].map(fmt_time)
        out = out.merge(
            step.rename(columns={"peer_step_s": f"{peer} step"}), on=PEER_KEYS, how="left"
        )
        for layout in ("tuned", "stock"):
            part = mine[mine["jax_layout"] == layout][[*PEER_KEYS, "ratio"]].copy()
            part["ratio"] = [f"{r:.2f} {'✓' if r > 1 else '✗'}" for r in part["ratio"]]
            name = f"{peer} / jax {layout}"
            out = out.merge(part.rename(columns={"ratio": name}), on=PEER_KEYS, how="left")
    tuned = data[data["jax_layout"] == "tuned"]
    wins = tuned.assign(win=tuned["ratio"] > 1).groupby(PEER_KEYS)["win"].agg(["sum", "count"])
    wins["tuned jax wins"] = [
        f"{'✓ all' if s == c else ('✗ none' if s == 0 else 'some')} ({s}/{c})"
        for s, c in zip(wins["sum"], wins["count"], strict=True)
    ]
    out = out.merge(wins[["tuned jax wins"]].reset_index(), on=PEER_KEYS, how="left")
    return out.astype(object).fillna("—").reset_index(drop=True)


def notebook_speedup(df: pd.DataFrame) -> pd.DataFrame:
    """Each variant's speed-up over the seed notebook's step, ``T(notebook) / T(variant)``,
    by batch size (columns), per machine, layer sizes, kernel, dtype and precision (>1: faster
    than the notebook); one device and one model, like the notebook's step."""
    ok = one_device_one_model(ok_rows(df))
    group = ["machine", "layer_sizes", "kernel", "dtype", "precision", "batch_size"]
    nb = ok[ok["variant"] == "notebook"][[*group, "step_median_s"]]
    nb = nb.rename(columns={"step_median_s": "notebook_s"})
    merged = ok[ok["variant"] != "notebook"].merge(nb, on=group, how="inner")
    if merged.empty:
        return pd.DataFrame()
    merged["cell"] = [
        f"×{t / v:.2f}" for t, v in zip(merged["notebook_s"], merged["step_median_s"], strict=True)
    ]
    wide = merged.pivot_table(
        index=[*group[:-1], "label"], columns="batch_size", values="cell", aggfunc="first"
    )
    wide.columns = [f"batch {int(b)}" for b in wide.columns]
    wide = wide.reset_index().rename(columns={"label": "variant"})
    wide.attrs["machine_order"] = machines(df)
    return sorted_by(wide, [*group[:-1], "variant"]).fillna("—")
