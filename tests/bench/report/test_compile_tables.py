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
