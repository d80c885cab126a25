"""Planning: the arithmetic axes (precision, weight-gradient layout) expand as each variant can
run them, and what cannot run here is left out with the reason."""

from __future__ import annotations

from bench import selection

CPU = {"cpu": {"device_kind": "cpu", "device_count": 4}}
GPU = {"gpu": {"device_kind": "NVIDIA H200", "device_count": 1}}


def plan(backends=CPU, **fields):
    grid = selection.Grid(
        "t", ("notebook", "jit", "torch-eager"), ("update",), ((784, 10),), (128,)
    )
    grid = selection.override([grid], **fields)[0]
    return selection.expand([grid], backends=backends)


def arith(specs):
    return sorted((s["variant"], s["dtype"], s["precision"], s["grad_layout"]) for s in specs)


def test_layouts_apply_to_the_variants_that_have_them():
    specs, _ = plan(layouts=("tuned", "stock"))
    assert arith(specs) == [
        ("jit", "float32", "highest", "stock"),
        ("jit", "float32", "highest", "tuned"),
        ("notebook", "float32", "highest", "stock"),  # stock by definition
        ("torch-eager", "float32", "highest", "stock"),  # its framework's own
    ]
    assert len({s["config_id"] for s in specs}) == 4


def test_packed_runs_on_the_one_device_variants_and_the_others_say_so():
    specs, skipped = plan(variants=("jit", "sharded", "torch-eager"), layouts=("tuned", "packed"))
    assert {(s["variant"], s["grad_layout"]) for s in specs} >= {("jit", "packed")}
    assert ("sharded", "packed") not in {(s["variant"], s["grad_layout"]) for s in specs}
    reasons = {s["what"]: s["reason"] for s in skipped}
    assert "runs the tuned or stock layout, not packed" in reasons["sharded packed"]
    assert not any(w.startswith(("jit", "torch-eager")) for w in reasons)  # theirs, or their one


def test_bfloat16_has_one_arithmetic_and_tf32_needs_an_nvidia_gpu():

    specs, skipped = plan(dtypes=("float32", "bfloat16"), precisions=("highest", "tf32"))
    assert {s["precision"] for s in specs if s["dtype"] == "bfloat16"} == {"bf16"}
    assert not [s for s in specs if s["precision"] == "tf32"]
    assert all("TF32 is an NVIDIA GPU precision" in s["reason"] for s in skipped)
    assert len(skipped) == 3  # notebook, jit and torch-eager at tf32
    specs, skipped = plan(GPU, precisions=("highest", "tf32"))
    assert {(s["variant"], s["precision"]) for s in specs} >= {("jit", "tf32"), ("jit", "highest")}


def test_peak_keys_name_each_arithmetic():
    specs, _ = plan(GPU, dtypes=("float32", "bfloat16"), precisions=("highest", "tf32"))
    assert selection.peak_keys(specs) == ["bfloat16", "float32", "float32:tf32"]


def test_kernels_a_variant_lacks_are_left_out_with_the_reason():
    """``--kernels epoch`` (or predict) over every variant measures the variants that have that
    kernel and lists the rest with why: no error rows."""
    every = selection.ALL_VARIANTS
    specs, skipped = plan(variants=every, kernels=("epoch", "predict"))
    assert sorted((s["variant"], s["kernel"]) for s in specs if s["kernel"] == "epoch") == [
        ("jit", "epoch"),
        ("notebook", "epoch"),
        ("scan", "epoch"),
    ]
    predicts = {s["variant"] for s in specs if s["kernel"] == "predict"}
    assert predicts == set(every) - {"scan"}
    why = {s["what"].split()[0] + " " + s["what"].split()[1]: s["reason"] for s in skipped}
    for variant in set(every) - {"notebook", "jit", "scan"}:
        assert "the epoch kernel is the notebook's loop (notebook, jit)" in why[f"{variant} epoch"]

    assert "its predict is the jit variant's" in why["scan predict"]
