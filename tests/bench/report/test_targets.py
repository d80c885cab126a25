"""bench.report.targets: each target's verdict and the figure it is held against, from hand-made
rows (a report section, never a timed unit test)."""

from __future__ import annotations

from bench.report import targets
from tests.bench.report.test_report import frame


def test_targets_on_a_hand_made_frame() -> None:
    """Each target's verdict from rows made for it: met, not met, not measured; the rows it
    must not use (other device counts, other precision, the other dtype) change nothing; each
    line shows the figure it is held against."""
    deep, logreg = targets.DEEP, targets.LOGREG
    torch = {"variant": "torch-eager", "framework": "torch", "grad_layout": "stock"}
    bf16 = {"dtype": "bfloat16", "precision": "bf16"}
    df = frame(
        [
            # vs torch, 784,10 b32: jit beats torch -> met
            {"variant": "jit", "batch_size": 32, "step_median_s": 0.010},
            {**torch, "batch_size": 32, "step_median_s": 0.012},
            # b128: torch wins against one device; a 4-device, a TF32-like "default" precision
            # and a bfloat16 row are quicker but are not like for like -> NOT met
            {"variant": "jit", "step_median_s": 0.020},
            {"variant": "shard_map", "n_devices": 4, "step_median_s": 0.005},
            {"variant": "jit", "precision": "default", "step_median_s": 0.001},
            {"variant": "jit", **bf16, "step_median_s": 0.002},
            {**torch, "step_median_s": 0.015},
            # bfloat16 b128: the packed layout (1.5 ms) beats torch's bfloat16 (3 ms) -> met;
            # torch's float32 row (0.015) is not the bfloat16 cell's
            {"variant": "jit", **bf16, "grad_layout": "packed", "step_median_s": 0.0015},
            {**torch, **bf16, "step_median_s": 0.003},
            # deep net peak: 90% at b1024 (met), 50% at b4096 (not)
            {
                "variant": "jit",
                "layer_sizes": deep,
                "batch_size": 1024,
                "step_median_s": 0.05,
                "peak_fraction": 0.90,
                "peak_flops_per_s": 2e11,
            },
            {
                "variant": "jit",
                "layer_sizes": deep,
                "batch_size": 4096,
                "step_median_s": 0.2,
                "peak_fraction": 0.50,
                "peak_flops_per_s": 2e11,
            },
            # bandwidth: 1 MB at 1 GB/s is 1 ms; 1.5 ms is within 2x
            {
                "variant": "jit",
                "batch_size": 4096,
                "step_median_s": 0.0015,
                "min_bytes": 1e6,
                "peak_bandwidth_bytes_per_s": 1e9,
            },
            # predict at 4096: 1.2x its bound (met) for 784,10; 2x for the deep net (not)
            {
                "variant": "jit",
                "kernel": "predict",
                "batch_size": 4096,
                "step_median_s": 1.2e-3,
                "bound_s": 1e-3,
            },
            {
                "variant": "jit",
                "kernel": "predict",
                "batch_size": 4096,
                "layer_sizes": deep,
                "step_median_s": 2e-2,
                "bound_s": 1e-2,
            },
            # the epoch: the notebook's loop of 100 steps at 1 ms against a fused one at 0.1 ms
            # -> 10x; the fused one 1.25x its bound (met); jit's loop is not the notebook's
            {
                "variant": "notebook",
                "kernel": "epoch",
                "step_median_s": 1e-3,
                "steps_per_call": 100,
                "grad_layout": "stock",
            },
            {"variant": "jit", "kernel": "epoch", "step_median_s": 1e-5, "steps_per_call": 100},
            {
                "variant": "scan",
                "kernel": "epoch",
                "step_median_s": 1e-4,
                "steps_per_call": 100,
                "bound_s": 8e-5,
                "compile_options": "no-ynnpack",
            },
            # the deep epoch: 1.5x its compute bound (flops / peak) -> NOT met
            {
                "variant": "scan",
                "kernel": "epoch",
                "layer_sizes": deep,
                "step_median_s": 1.5e-3,
                "steps_per_call": 10,
                "flops": 2e8,
                "peak_flops_per_s": 2e11,
            },
        ]
    )
    got = targets.evaluate(df)
    verdict = {(r.target, r.configuration): r.verdict for r in got.itertuples()}
    assert verdict["vs torch-eager", f"{logreg} batch 32"] == "met"
    assert verdict["vs torch-eager", f"{logreg} batch 128"] == "NOT met"
    assert verdict["vs torch-eager", f"{logreg} batch 1024"] == "not measured"
    assert verdict["bf16 vs torch-eager", f"{logreg} batch 128"] == "met"
    assert verdict["bf16 vs torch-eager", f"{logreg} batch 32"] == "not measured"
    assert verdict["deep net peak", f"{deep} batch 1024"] == "met"
    assert verdict["deep net peak", f"{deep} batch 4096"] == "NOT met"
    assert verdict["bandwidth bound", f"{logreg} batch 4096"] == "met"
    assert verdict["predict bound", f"{logreg} batch 4096"] == "met"
    assert verdict["predict bound", f"{deep} batch 4096"] == "NOT met"
    assert verdict["fused epoch", f"{logreg} batch 128"] == "met"
    assert verdict["fused vs notebook", f"{logreg} batch 128"] == "met"
    assert verdict["deep epoch", f"{deep} batch 128"] == "NOT met"
    measured = got.set_index(["target", "configuration"])["measured"]
    bound = got.set_index(["target", "configuration"])["bound"]
    assert (
        measured["vs torch-eager", f"{logreg} batch 128"] == "jit 20.000 ms (torch-eager/jax 0.75×)"
    )
    assert bound["vs torch-eager", f"{logreg} batch 128"] == "torch-eager 15.000 ms"
    assert measured["bf16 vs torch-eager", f"{logreg} batch 128"].startswith(
        "jit (packed) 1.500 ms"
    )
    assert measured["bandwidth bound", f"{logreg} batch 4096"].endswith("(1.50×)")
    assert bound["bandwidth bound", f"{logreg} batch 4096"].startswith(
        "1.000 ms = 1.0 MB at 1.0 GB/s"
    )
    assert measured["fused epoch", f"{logreg} batch 128"] == "scan (no-ynnpack) 10.000 ms (1.25×)"
    assert bound["fused epoch", f"{logreg} batch 128"].startswith("8.000 ms")
    assert measured["fused vs notebook", f"{logreg} batch 128"].endswith("(10.00× the loop)")
    assert bound["fused vs notebook", f"{logreg} batch 128"].startswith("notebook loop 100.0 ms")
    assert measured["deep epoch", f"{deep} batch 128"] == "scan 0.015 s (1.50×)"
    # torch.compile was not measured: no lines for it rather than lines "not measured"
    assert not any(t.endswith("torch-compile") for t in got["target"])
    assert got["machine"].nunique() == 1 and set(got["backend"]) == {"cpu"}
    assert len(got) == 8 + 8 + 2 + 1 + 2 + 2 + 1


def test_accelerator_targets_are_held_per_backend() -> None:
    """A GPU's rows get their own lines (never against the CPU's): the deep net's bfloat16
    update at batch >= 4096 against half the bfloat16 peak, and torch.compile where measured."""
    deep = targets.DEEP
    gpu = {"backend": "gpu", "device_kind": "NVIDIA H200"}
    df = frame(
        [
            {
                **gpu,
                "variant": "jit",
                "layer_sizes": deep,
                "batch_size": 4096,
                "dtype": "bfloat16",
                "precision": "bf16",
                "step_median_s": 0.01,
                "peak_fraction": 0.62,
                "peak_flops_per_s": 9e14,
            },
            {**gpu, "variant": "jit", "batch_size": 128, "step_median_s": 1e-4},
            {
                **gpu,
                "variant": "torch-compile",
                "framework": "torch",
                "batch_size": 128,
                "step_median_s": 0.5e-4,
            },
            {"variant": "jit", "batch_size": 128, "step_median_s": 1e-3},  # the CPU's
        ]
    )
    got = targets.evaluate(df).set_index(["backend", "target", "configuration"])
    line = got.loc[("gpu", "deep net bf16 peak", f"{deep} bfloat16 batch ≥ 4096")]
    assert line["verdict"] == "met" and "62.0% of peak" in line["measured"]
    assert line["bound"] == "bfloat16 matmul peak 900.0 TFLOP/s"
    assert got.loc[("gpu", "vs torch-compile", f"{targets.LOGREG} batch 128"), "verdict"] == (
        "NOT met"
    )
    assert ("cpu", "deep net bf16 peak") not in {k[:2] for k in got.index}
    assert ("cpu", "vs torch-compile") not in {k[:2] for k in got.index}


def test_the_launch_floor_holds_the_fused_steps_of_an_accelerator() -> None:
    """On a GPU, at batch 32 and 128, the fastest fused step (``scan``'s update, the fused
    epoch; never a Python loop of steps) against its launch floor: 1.5x met, beyond not, a
    missing figure not measured; a CPU gets no such line."""
    gpu = {"backend": "gpu", "device_kind": "NVIDIA H200"}
    launch = {"launch_s": 4e-6, "launches_per_step": 10.0}
    df = frame(
        [
            # [784, 10] b128: the scan update, 48 us a step against a 40 us floor -> met; the
            # notebook's loop of steps is quicker here but is not a fused step
            {
                **gpu,
                **launch,
                "variant": "scan",
                "steps_per_call": 8,
                "step_median_s": 48e-6,
                "launch_floor_s": 40e-6,
            },
            {
                **gpu,
                **launch,
                "variant": "notebook",
                "kernel": "epoch",
                "steps_per_call": 469,
                "step_median_s": 10e-6,
                "launch_floor_s": 40e-6,
            },
            # b32: the fused epoch, 100 us a step against 40 -> NOT met
            {
                **gpu,
                **launch,
                "variant": "scan",
                "kernel": "epoch",
                "batch_size": 32,
                "steps_per_call": 1875,
                "step_median_s": 100e-6,
                "launch_floor_s": 40e-6,
            },
            # the deep net at 128 has no launch figure -> not measured
            {
                **gpu,
                "variant": "scan",
                "layer_sizes": targets.DEEP,
                "steps_per_call": 8,
                "step_median_s": 1e-3,
            },
            # the CPU's fused step: no launch line for it
            {
                **launch,
                "variant": "scan",
                "steps_per_call": 8,
                "step_median_s": 48e-6,
                "launch_floor_s": 4e-7,
            },
        ]
    )
    got = targets.evaluate(df).set_index(["backend", "target", "configuration"])
    logreg, deep = targets.LOGREG, targets.DEEP
    line = got.loc[("gpu", "launch floor", f"{logreg} batch 128")]
    assert line["verdict"] == "met"
    assert line["measured"] == "scan update 0.048 ms a step (1.20×)"
    assert line["bound"] == "0.040 ms = 10.0 launches × 4.00 µs"
    line = got.loc[("gpu", "launch floor", f"{logreg} batch 32")]
    assert line["verdict"] == "NOT met" and "scan epoch 0.100 ms a step (2.50×)" in line["measured"]
    assert got.loc[("gpu", "launch floor", f"{deep} batch 128"), "verdict"] == "not measured"
    assert ("cpu", "launch floor") not in {k[:2] for k in got.index}
