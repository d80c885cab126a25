"""The compile tables of the report: the cold compile's interval where it was repeated, and
cold vs cached compile by variant and depth."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.report import tables
from tests.helpers import make_row


def depth_row(variant: str, depth: int, **cols) -> dict:
    sizes = ",".join(map(str, [784, *([512] * depth), 10]))
    return make_row(variant, layer_sizes=sizes, depth=depth, host="box", first_call_s=0.01, **cols)


def test_cold_vs_cached_compile_by_variant_and_depth():
    frame = pd.DataFrame(
        [
            depth_row(
                "jit",
                d,
                cold_compile_s=0.1 * d,
                fresh_compile_s=0.12 * d,
                cached_compile_s=0.03 * d,
                cached_first_call_s=0.002,
                cache_entry_bytes=2048 * d,
            )
            for d in (1, 2)
        ]
        + [depth_row("vmap", 1)]  # no cached compile asked: not in the table
    )
    table = tables.cached_compile(frame)
    assert list(table["variant"]) == ["jit", "jit"] and list(table["depth"]) == [1, 2]
    assert list(table["cold / cached"]) == [4.0, 4.0]
    assert list(table["cached, next process (ms)"]) == [30.0, 60.0]
    assert list(table["cache entry (KiB)"]) == [2.0, 4.0]
    assert tables.cached_compile(pd.DataFrame([depth_row("vmap", 1)])).empty


def test_compile_costs_show_the_cold_compiles_interval():
    repeated = depth_row(
        "jit",
        1,
        cold_compile_s=0.13,
        cold_compile_ci_low_s=0.12,
        cold_compile_ci_high_s=0.15,
        n_compiles=5,
    )
    once = depth_row("vmap", 1)  # a row of an older run: one compile, its phases' sum
    table = tables.compile_costs(pd.DataFrame([repeated, once])).set_index("variant")
    assert table.loc["jit", "cold compile 95% CI (ms)"] == "120.0–150.0"
    assert table.loc["jit", "cold compiles"] == 5
    assert table.loc["vmap", "cold compile (ms)"] == pytest.approx(130.0)  # 10 + 20 + 100 ms
    assert table.loc["vmap", "cold compile 95% CI (ms)"] == "—"
    assert table.loc["vmap", "cold compiles"] == 1


def test_compile_harder_or_faster_for_the_same_kernel():
    standard = depth_row("jit", 4, cold_compile_s=0.30, samples_s=[0.010] * 6)
    fast = depth_row(
        "jit", 4, compile_options="fast-compile", cold_compile_s=0.15, samples_s=[0.0103] * 6
    )
    fast["step_median_s"] = 0.0103
    standard["step_median_s"] = 0.010
    shallow = depth_row("jit", 1, cold_compile_s=0.1)  # one set only: not in the table
    slower = depth_row("scan", 4, cold_compile_s=0.3)
    slower_fast = depth_row("scan", 4, compile_options="fast-compile", cold_compile_s=0.2)
    slower_fast["step_median_s"] = slower["step_median_s"] * 0.9  # fast-compile steps faster
    table = tables.compile_tradeoff(pd.DataFrame([standard, fast, shallow, slower, slower_fast]))
    by = table.set_index("variant")
    assert list(table["variant"]) == ["jit", "scan"] and set(table["against"]) == {"fast-compile"}
    # 150 ms more compile, 0.3 ms a step less: 500 steps
    assert by.loc["jit", "break_even_steps"] == pytest.approx(500.0)
    assert by.loc["jit", "standard pays after"] == "500"
    assert by.loc["scan", "standard pays after"] == "never"
    assert tables.compile_tradeoff(pd.DataFrame([shallow])).empty
