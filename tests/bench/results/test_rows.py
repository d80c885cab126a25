"""Rows: the step columns from raw samples, one row from several passes, the identity of a
configuration, the derived columns."""

from __future__ import annotations

import numpy as np
import pytest

from bench.results import rows, schema
from bench.results import samples as sampling
from tests.helpers import make_row


def test_summarize_ci_contains_the_median():
    rng = np.random.RandomState(1)
    samples = list(0.01 + 0.002 * rng.rand(25))
    figures = sampling.summarize(samples, [0.02, 0.03, 0.025], loops=8)
    assert figures["call_median_s"] == pytest.approx(float(np.median(samples)))
    assert figures["call_ci_low_s"] <= figures["call_median_s"] <= figures["call_ci_high_s"]
    assert figures["call_ci_low_s"] < figures["call_ci_high_s"]
    assert figures["call_min_s"] == pytest.approx(min(samples))
    assert figures["call_mean_s"] == pytest.approx(float(np.mean(samples)))
    assert figures["n_samples"] == 25 and figures["loops_per_sample"] == 8
    assert figures["sync_call_median_s"] == pytest.approx(0.025)
    q1, q3 = np.percentile(samples, [25, 75])
    assert figures["call_iqr_s"] == pytest.approx(q3 - q1)


def test_per_step_divides_by_steps_per_call():
    figures = sampling.summarize([0.8, 0.4, 0.6, 1.0, 1.2], [1.6, 1.4, 1.8], loops=2)
    steps = sampling.per_step(figures, 4)
    for name in ("median", "min", "mean", "std", "iqr", "ci_low", "ci_high"):
        assert steps[f"step_{name}_s"] == pytest.approx(figures[f"call_{name}_s"] / 4), name
    assert steps["step_median_s"] == pytest.approx(0.2)
    assert steps["sync_step_median_s"] == pytest.approx(0.4)
    assert steps["dispatch_overhead_s"] == pytest.approx(
        steps["sync_step_median_s"] - steps["step_median_s"]
    )
    assert steps["dispatch_overhead_s"] == pytest.approx(0.2)
    assert steps["samples_s"] == pytest.approx([0.2, 0.1, 0.15, 0.25, 0.3])
    assert steps["sync_samples_s"] == pytest.approx([0.4, 0.35, 0.45])
    assert steps["n_samples"] == 5 and steps["loops_per_sample"] == 2
    # one step per call: the per-call figures unchanged
    assert sampling.per_step(figures, 1)["step_median_s"] == pytest.approx(figures["call_median_s"])


def test_merge_passes_pools_the_fastest_passes() -> None:
    slow = {
        "status": "ok",
        "samples_s": [2.0, 2.1],
        "step_median_s": 2.05,
        "compile_s": 0.1,
        "wall_s": 1.0,
        "foreign_load": 0.01,
        "load_retries": 1,
    }
    fast = {
        "status": "ok",
        "samples_s": [1.0, 1.1],
        "step_median_s": 1.05,
        "compile_s": 0.3,
        "wall_s": 2.0,
        "foreign_load": 0.0,
        "loops_per_sample": 1,
    }
    bad = {"status": "error", "error": "boom", "wall_s": 0.5}
    m = rows.merge_passes([slow, bad, fast])
    assert m["samples_s"] == [1.0, 1.1] and m["step_median_s"] == pytest.approx(1.05)
    assert m["compile_s"] == pytest.approx(0.2) and m["wall_s"] == 3.5
    assert (m["repeats"], m["repeats_ok"], m["passes_kept"], m["status"]) == (3, 2, [2], "ok")
    assert m["pass_medians_s"] == [2.05, None, 1.05]
    assert (m["foreign_load"], m["load_retries"]) == (0.01, 1)
    close = {**fast, "samples_s": [1.08, 1.12], "step_median_s": 1.1}  # within 5%: pooled
    m = rows.merge_passes([close, slow, fast])
    assert m["samples_s"] == [1.08, 1.12, 1.0, 1.1] and m["n_samples"] == 4
    assert m["step_median_s"] == pytest.approx(1.09) and m["passes_kept"] == [0, 2]
    assert rows.merge_passes([bad]) is bad
    assert rows.merge_passes([bad, dict(bad)])["status"] == "error"


def test_merge_passes_pools_every_passs_cold_compiles() -> None:
    """Each pass timed its cold compiles; the row pools them all (the interval is over all the
    compiles), and keeps each pass's median for the test across passes."""

    def one_pass(step: float, compiles: list[float]) -> dict:
        phases = [{"trace_s": 0.01, "lower_s": 0.02, "compile_s": c - 0.03} for c in compiles]
        return {
            "status": "ok",
            "samples_s": [step],
            "step_median_s": step,
            **sampling.summarize_compiles(phases),
        }

    first, second = one_pass(1.0, [0.2, 0.21, 0.19]), one_pass(2.0, [0.3, 0.31, 0.32])
    assert first["cold_compile_s"] == pytest.approx(0.2) and first["n_compiles"] == 3
    assert first["compile_s"] == pytest.approx(0.17) and first["trace_samples_s"] == [0.01] * 3
    m = rows.merge_passes([first, {"status": "error"}, second])
    assert m["passes_kept"] == [0]  # step time: the slow pass is left out...
    assert m["n_compiles"] == 6  # ...its compiles are not
    assert m["cold_compile_samples_s"] == pytest.approx([0.2, 0.21, 0.19, 0.3, 0.31, 0.32])
    assert m["cold_compile_s"] == pytest.approx(0.255)
    assert m["cold_compile_ci_low_s"] <= 0.255 <= m["cold_compile_ci_high_s"]
    assert m["pass_cold_compile_s"] == pytest.approx([0.2, None, 0.31])
    # a pass from a worker that compiled once (protocol 2 or older): its one compile
    old = {
        "status": "ok",
        "samples_s": [1.0],
        "step_median_s": 1.0,
        "trace_s": 0.01,
        "lower_s": 0.02,
        "compile_s": 0.1,
    }
    m = rows.merge_passes([old, first])
    assert m["n_compiles"] == 4 and m["pass_cold_compile_s"] == pytest.approx([0.13, 0.2])


def test_the_arithmetic_is_part_of_a_configurations_identity():
    # a row written before the arithmetic columns existed
    old = {k: v for k, v in make_row().items() if k in schema.BASE_KEY_COLUMNS}
    assert not set(schema.ARITHMETIC_COLUMNS) & set(old)
    usual = {**old, "precision": "highest", "grad_layout": "tuned"}  # what it was measured with
    assert schema.config_id(usual) == schema.config_id(old)
    assert schema.arithmetic(old) == {
        "precision": "highest",
        "grad_layout": "tuned",
        "compile_options": "standard",
    }
    ids = {
        schema.config_id({**usual, **change})
        for change in (
            {},
            {"grad_layout": "stock"},
            {"precision": "tf32"},
            {"precision": "default"},
        )
    }
    assert len(ids) == 4  # each arithmetic its own configuration
    # old bfloat16 rows ran float32 backward matmuls: they are not today's bfloat16
    old_bf16 = {**old, "dtype": "bfloat16"}
    assert schema.arithmetic(old_bf16)["precision"] == "bf16-forward"
    new_bf16 = {**old_bf16, "precision": "bf16", "grad_layout": "tuned"}
    assert schema.config_id(new_bf16) != schema.config_id(old_bf16)
    # a peer's bfloat16 step was bfloat16 all along; a GPU's old float32 ran the default (TF32)
    torch = {**old_bf16, "framework": "torch", "variant": "torch-eager"}
    assert schema.config_id({**torch, "precision": "bf16", "grad_layout": "stock"}) == (
        schema.config_id(torch)
    )
    gpu = {**old, "backend": "gpu"}
    assert schema.arithmetic(gpu)["precision"] == "default"
    assert schema.config_id({**gpu, "precision": "highest"}) != schema.config_id(gpu)
    spec = {**usual, "layer_sizes": [784, 10], "grad_layout": "stock"}
    assert rows.identity(spec)["grad_layout"] == "stock"
    assert rows.config_id(spec) == schema.config_id(rows.identity(spec))


def test_a_row_is_held_against_the_peak_of_its_own_arithmetic():
    peaks = {
        "gpu": {
            "float32": {"matmul_flops_per_s": 1e12, "bandwidth_bytes_per_s": 1e12},
            "float32:tf32": {"matmul_flops_per_s": 4e12, "bandwidth_bytes_per_s": 1e12},
        }
    }
    row = {
        "status": "ok",
        "backend": "gpu",
        "dtype": "float32",
        "n_devices": 1,
        "batch_size": 128,
        "step_median_s": 1e-3,
        "flops": 1e9,
        "layer_sizes": "784,10",
        "kernel": "update",
    }
    assert rows.derive({**row, "precision": "highest"}, peaks)["peak_fraction"] == 1.0
    assert rows.derive({**row, "precision": "tf32"}, peaks)["peak_fraction"] == 0.25
    # no peak of that arithmetic measured: none, never another arithmetic's
    assert rows.derive({**row, "precision": "default"}, peaks).get("peak_fraction") is None
    assert rows.peak_key("bfloat16", "bf16") == "bfloat16"
    assert rows.peak_key("float32", "tf32") == "float32:tf32"


def test_the_roofline_counts_the_same_bytes_and_devices_for_every_row():
    import pandas as pd

    from bench.report import tables

    peaks = {
        b: {"float32": {"matmul_flops_per_s": 1e11, "bandwidth_bytes_per_s": 1e10}}
        for b in ("cpu", "gpu")
    }
    base = {
        "status": "ok",
        "dtype": "float32",
        "precision": "highest",
        "batch_size": 4096,
        "step_median_s": 1e-3,
        "layer_sizes": "784,10",
        "kernel": "update",
        "framework": "jax",
        "variant": "sharded",
        "device_kind": "x",
        "host": "h",
    }
    flops = 2.0 * 4096 * 7840 * 2
    cpu = rows.derive(
        {**base, "backend": "cpu", "n_devices": 4, "flops": flops, "bytes_accessed": 9e9}, peaks
    )
    gpu = rows.derive({**base, "backend": "gpu", "n_devices": 4, "flops": flops}, peaks)
    peer = rows.derive(
        {**base, "backend": "cpu", "n_devices": 1, "flops": flops, "framework": "torch"}, peaks
    )
    want = flops / rows.min_bytes(cpu)  # XLA's bytes_accessed is not what the roofline counts
    assert (
        cpu["arithmetic_intensity"]
        == gpu["arithmetic_intensity"]
        == peer["arithmetic_intensity"]
        == want
    )
    bound = max(flops / 1e11, rows.min_bytes(cpu) / 1e10)
    assert cpu["roofline_fraction"] == pytest.approx(bound / 1e-3)  # fake devices: one host
    assert gpu["roofline_fraction"] == pytest.approx(bound / 4 / 1e-3)  # four real ones
    points = tables.roofline_data(pd.DataFrame([cpu, gpu])).set_index("backend")
    # the plot holds each point against one device's roof, as derive holds the row
    for name, row in (("cpu", cpu), ("gpu", gpu)):
        device_roof = min(1e11, 1e10 * points.loc[name, "arithmetic_intensity"])
        assert points.loc[name, "per_device"] / device_roof == pytest.approx(
            row["roofline_fraction"]
        )


def test_a_fraction_above_the_peak_is_marked_and_never_shown_as_true():
    """A peak measured in a slow spell is too low: the rows above it say so (stored and
    printed), and the deep-net target gives no verdict on such a row."""
    from bench.report import targets
    from bench.runner.progress import line_for

    low = {"cpu": {"float32": {"matmul_flops_per_s": 1e11, "bandwidth_bytes_per_s": 1e12}}}
    row = make_row(flops=1.7e8, step_median_s=1e-3, samples=[1e-3] * 6, precision="highest")
    row = rows.derive(dict(row), low)
    assert row["peak_fraction"] == pytest.approx(1.7) and row["above_peak"] is True
    assert "of a peak measured too low" in line_for(row)
    fine = rows.derive(dict(row), {"cpu": {"float32": {"matmul_flops_per_s": 1e12}}})
    assert fine["above_peak"] is False and "of peak" in line_for(fine)
    assert "above_peak" in schema.COLUMNS
    # a roofline fraction over 1 is cache beating the DRAM bandwidth, not a peak too low
    cached = rows.derive(
        dict(row), {"cpu": {"float32": {"matmul_flops_per_s": 1e12, "bandwidth_bytes_per_s": 1e6}}}
    )
    assert cached["roofline_fraction"] > 1 and cached["above_peak"] is False

    import pandas as pd

    deep = {**row, "layer_sizes": targets.DEEP, "batch_size": 1024, "framework": "jax"}
    found = targets._deep_peak(pd.DataFrame([deep]))
    (line,) = [t for t in found if t["configuration"].endswith("batch 1024")]
    assert line["verdict"] == "not measured" and "measured too low" in line["measured"]


def test_a_thin_row_is_held_against_its_own_dots_ceiling_and_every_row_gets_a_bound():
    """[784, 10] in float32 on one device is held against the ceiling its own dot shapes reach
    at its batch size (both dots for an update or an epoch step, the forward one for a
    predict), measured in the run; every other row against the matmul peak. bound_s is the
    larger of the compute and the bandwidth bound; an epoch step counts the stored bytes."""
    from bench.measure.ceilings import thin_flops

    thin = {"128": {"forward_s": 2e-5, "weight_grad_s": 3e-5, "ceiling_flops_per_s": 0}}
    thin["128"]["ceiling_flops_per_s"] = 2 * thin_flops(128) / 5e-5
    peaks = {
        "cpu": {
            "float32": {
                "matmul_flops_per_s": 2e11,
                "bandwidth_bytes_per_s": 1e11,
                "thin_dots": thin,
            },
            "bfloat16": {"matmul_flops_per_s": 4e11, "bandwidth_bytes_per_s": 1e11},
        }
    }
    base = {
        "status": "ok",
        "backend": "cpu",
        "dtype": "float32",
        "precision": "highest",
        "n_devices": 1,
        "batch_size": 128,
        "layer_sizes": "784,10",
        "kernel": "update",
        "step_median_s": 1e-4,
        "flops": 2.0 * thin_flops(128),
    }
    update = rows.derive(dict(base), peaks)
    assert update["ceiling"] == "thin-dots"
    assert update["bound_s"] == pytest.approx(5e-5)  # the two dots alone; bytes take 5 us
    assert update["bound_ratio"] == pytest.approx(2.0)
    predict = rows.derive({**base, "kernel": "predict", "flops": thin_flops(128)}, peaks)
    assert predict["bound_s"] == pytest.approx(2e-5)  # the forward dot alone
    epoch = rows.derive({**base, "kernel": "epoch"}, peaks)
    assert epoch["min_bytes"] == 128 * 785 + 4.0 * 7850 * 2  # a byte a pixel and a label
    assert epoch["bound_s"] == pytest.approx(5e-5)
    # the matmul peak where the thin ceiling does not apply or was not measured
    for other in (
        {"batch_size": 256},  # no ceiling at this batch size
        {"n_devices": 2},
        {"precision": "default"},
        {"layer_sizes": "784,1024,1024,10"},
    ):
        row = rows.derive({**base, **other}, peaks)
        assert row["ceiling"] != "thin-dots", other
    deep = rows.derive({**base, "layer_sizes": "784,1024,1024,10", "flops": 2e9}, peaks)
    assert deep["ceiling"] == "matmul-peak" and deep["ceiling_flops_per_s"] == 2e11
    assert deep["bound_s"] == pytest.approx(max(2e9 / 2e11, rows.min_bytes(deep) / 1e11))
    bf16 = rows.derive({**base, "dtype": "bfloat16", "precision": "bf16"}, peaks)
    assert bf16["ceiling"] == "matmul-peak" and bf16["ceiling_flops_per_s"] == 4e11
    bandwidth_bound = rows.derive({**base, "flops": 1.0}, peaks)  # no compute to speak of
    assert bandwidth_bound["bound_s"] == pytest.approx(rows.min_bytes(base) / 1e11)


def test_the_better_of_two_ceiling_measurements_is_kept():
    """The peaks are measured at the start and the end of a run; a slow spell only ever lowers
    a ceiling, so each batch size keeps the higher of the two."""
    from bench.runner.probe import best_peaks

    def peaks(rate_128, rate_4096):
        dots = {
            "128": {"ceiling_flops_per_s": rate_128, "forward_form": f"a{rate_128}"},
            "4096": {"ceiling_flops_per_s": rate_4096, "forward_form": f"b{rate_4096}"},
        }
        return {"cpu": {"float32": {"matmul_flops_per_s": 1.0, "thin_dots": dots}}}

    best = best_peaks(peaks(5.0, 9.0), peaks(7.0, 3.0))["cpu"]["float32"]["thin_dots"]
    assert best["128"] == {"ceiling_flops_per_s": 7.0, "forward_form": "a7.0"}
    assert best["4096"] == {"ceiling_flops_per_s": 9.0, "forward_form": "b9.0"}


def test_a_rows_launch_floor_is_its_launches_a_step_times_the_cost_of_one():
    """launch_floor_s = launches_per_call / steps_per_call x the run's cost of one launch (of
    the row's backend); missing figures leave the columns empty, never a guess."""
    peaks = {"gpu": {"float32": {"matmul_flops_per_s": 1e14, "launch": {"launch_s": 2e-6}}}}
    base = {
        "status": "ok",
        "backend": "gpu",
        "dtype": "float32",
        "precision": "highest",
        "n_devices": 1,
        "batch_size": 128,
        "layer_sizes": "784,10",
        "kernel": "update",
        "flops": 1e6,
        "steps_per_call": 8,
        "launches_per_call": 8 * 12 + 1,
        "step_median_s": 5e-5,
    }
    row = rows.derive(dict(base), peaks)
    assert row["launches_per_step"] == pytest.approx(97 / 8)
    assert row["launch_floor_s"] == pytest.approx(2e-6 * 97 / 8)
    assert row["launch_ratio"] == pytest.approx(5e-5 / (2e-6 * 97 / 8))
    assert row["launch_s"] == 2e-6
    for missing in ({"launches_per_call": None}, {"backend": "cpu"}):
        row = rows.derive({**base, **missing}, peaks)
        assert row["launch_floor_s"] is None and row["launch_ratio"] is None, missing
    failed = rows.derive({**base, "status": "error"}, peaks)
    assert failed["launch_ratio"] is None


def test_the_cheaper_of_two_launch_measurements_is_kept():
    """A slow spell only ever adds to a launch's cost: of the run's two measurements the
    cheaper one is the machine's."""
    from bench.runner.probe import best_peaks

    def peaks(cost):
        return {"gpu": {"float32": {"matmul_flops_per_s": 1.0, "launch": {"launch_s": cost}}}}

    assert best_peaks(peaks(3e-6), peaks(2e-6))["gpu"]["float32"]["launch"]["launch_s"] == 2e-6
    assert best_peaks(peaks(2e-6), peaks(3e-6))["gpu"]["float32"]["launch"]["launch_s"] == 2e-6
