"""What a running command shows: a line per measured row with the count and the time left (a
progress bar as well when the terminal is a TTY), and its notices."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from .. import catalog
from .. import format as fmt
from ..format import say
from ..results import schema


def line_for(row: dict[str, Any]) -> str:
    """One row in one line: the configuration, then its step time with the interval, compile
    time and peak fraction, or its status and error."""
    what = (
        f"{row['variant']:<13} {row['kernel']:<7} {row['layer_sizes']:<20} "
        f"b={row['batch_size']:<5} {row['dtype']:<8} x{row['n_devices']}"
    )
    # the named options that are not the defaults: a layout, a set of compile options
    named = [row.get("grad_layout")] if row.get("grad_layout") not in (None, "tuned") else []
    if row.get("framework", "jax") != "jax" or row.get("variant") == "notebook":
        named = []  # the peers and the notebook run their one layout
    if row.get("compile_options") not in (None, catalog.STANDARD_COMPILE):
        named.append(row["compile_options"])
    what += f" {','.join(named)}" if named else ""

    if row.get("status") != "ok":
        return f"{what}  {row.get('status', '?').upper()}: {str(row.get('error'))[:120]}"
    ms = row["step_median_s"] * 1e3
    lo = (row.get("step_ci_low_s") or math.nan) * 1e3
    hi = (row.get("step_ci_high_s") or math.nan) * 1e3
    phases = [row.get(k) for k in schema.COMPILE_COLUMNS]
    cold = row.get("cold_compile_s")
    if cold is None and any(phases):  # a row from an older worker: its one compile
        cold = sum(p or 0.0 for p in phases)
    comp = f"{cold:6.3f} s" if cold is not None else "     —  "
    extra = f"  recompiles {row['recompiles']}!" if row.get("recompiles") else ""
    pf = row.get("peak_fraction")
    if pf is None:
        peak = ""
    elif row.get("above_peak"):  # the peak is too low, not the kernel that fast
        peak = f"  {fmt.fmt_pct(pf):>6} of a peak measured too low (re-measured at the end)"
    else:
        peak = f"  {fmt.fmt_pct(pf):>6} of peak"
    return f"{what}  step {ms:9.4f} ms [{lo:.4f}, {hi:.4f}]  compile {comp}{peak}{extra}"


class Progress:
    """Counts measured rows against a total and prints a line for each (unless ``quiet``);
    with ``bar`` and a TTY on stderr, also a tqdm progress bar."""

    def __init__(self, *, quiet: bool = False, bar: bool = True) -> None:
        self.quiet, self.want_bar = quiet, bar
        self.total = self.done = 0
        self.t0 = time.monotonic()
        self.bar: Any = None

    def begin(self, total: int) -> None:
        """Start counting towards ``total`` measurements."""
        self.total, self.done, self.t0 = total, 0, time.monotonic()
        self.bar = _tqdm(total) if self.want_bar else None

    def tick(self, rows: dict[str, dict[str, Any]]) -> None:
        """One configuration measured (once): its row per arm (the arm's name prefixes the line
        when there are several arms)."""
        self.done += 1
        eta = (time.monotonic() - self.t0) / self.done * (self.total - self.done) / 60
        where = f"[{self.done:>{len(str(self.total))}}/{self.total} eta {eta:4.1f} min]"
        if self.bar is not None:
            self.bar.update(1)
        if self.quiet:
            return
        for name, row in rows.items():
            text = f"{where} {name:<4} {line_for(row)}" if name else f"{where} {line_for(row)}"
            self.bar.write(text) if self.bar is not None else say(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _tqdm(total: int) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    if not sys.stderr.isatty():
        return None  # a log file: one line per configuration, each with its ETA
    return tqdm(total=total, unit="config", desc="bench", dynamic_ncols=True)
