"""Synthetic histories: run directories of made-up commits with controlled noise and steps."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from bench.history import store
from tests.helpers import make_row, write_run

#: the configurations of a synthetic run: (variant, kernel, batch size, step time in ms)
CONFIGS = [
    (variant, kernel, batch, base)
    for variant, base0 in (("jit", 0.5), ("vmap", 0.6), ("scan", 0.45), ("shard_map", 0.7))
    for kernel, k in (("update", 1.0), ("predict", 0.4))
    for batch, base in ((32, base0 * k), (256, base0 * k * 5))
]
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def commit_id(i: int) -> str:
    return hashlib.sha1(f"commit {i}".encode()).hexdigest()


def run_rows(
    rng: np.random.Generator, slow: dict[tuple[str, str], float], noise: float
) -> list[dict[str, Any]]:
    """One run's rows: each configuration's median moved by process-level noise (lognormal,
    ``noise``) and by ``slow[(variant, kernel)]``; its interval a few percent wide."""
    rows = []
    for variant, kernel, batch, base_ms in CONFIGS:
        factor = slow.get((variant, kernel), 1.0) * float(np.exp(rng.normal(0.0, noise)))
        median = base_ms * 1e-3 * factor
        half = float(rng.uniform(0.01, 0.03))
        compile_s = 0.2 * float(np.exp(rng.normal(0.0, noise)))
        rows.append(
            make_row(
                variant,
                kernel,
                samples=[median] * 5,
                batch_size=batch,
                step_median_s=median,
                step_ci_low_s=median * np.exp(-half),
                step_ci_high_s=median * np.exp(half),
                cold_compile_s=compile_s,
                cold_compile_ci_low_s=compile_s * 0.97,
                cold_compile_ci_high_s=compile_s * 1.03,
            )
        )
    return rows


def write_commit_run(
    root: Path,
    i: int,
    machine: str,
    rows: list[dict[str, Any]],
    *,
    branch: str = "main",
    run: int = 0,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Run directory ``root/<machine>-c<i>-r<run>`` of commit ``i`` (one hour apart)."""
    run_id = f"{machine}-c{i:03d}-r{run}"
    when = T0 + dt.timedelta(hours=i)
    info = {
        "schema_version": 1,
        "run_id": run_id,
        "host": machine,
        "hardware_fingerprint": f"fp-{machine}",
        "cpu": {"model": f"{machine} CPU", "cores": 2},
        "start_time": (when + dt.timedelta(minutes=5 + run)).isoformat(),
        "git": {
            "commit": commit_id(i),
            "commit_time": when.isoformat(),
            "branch": branch,
            "dirty": False,
        },
    }
    info.update(meta or {})
    for r in rows:
        r["run_id"] = run_id
    return write_run(root / run_id, rows, meta=info)


def build_history(
    tmp: Path,
    *,
    commits: int = 12,
    machines: tuple[str, ...] = ("box-a", "gha-2core"),
    slow_at: int | None = 8,
    slowed: tuple[tuple[str, str], ...] = (("jit", "update"),),
    factor: float = 1.2,
    noise: float = 0.02,
    seed: int = 0,
) -> Path:
    """A store of ``commits`` commits on each machine; from commit ``slow_at`` on, the
    configurations of ``slowed`` (variant, kernel) take ``factor`` times as long."""
    rng = np.random.default_rng(seed)
    hist = tmp / "history"
    for machine in machines:
        for i in range(commits):
            slow = {k: factor for k in slowed} if slow_at is not None and i >= slow_at else {}
            run = write_commit_run(tmp / "runs", i, machine, run_rows(rng, slow, noise))
            store.add(hist, run, machine=machine)
    return hist
