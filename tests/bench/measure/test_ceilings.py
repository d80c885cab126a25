"""bench.measure.ceilings: the ceiling of the [784, 10] step's own dots. Every form the model
runs them in computes the same product (so the fastest is a fair ceiling for all), the loop
subtracts its own cost, and a real quick measurement returns each batch size asked for."""

import jax.numpy as jnp
import numpy as np
import pytest

from bench import catalog
from bench.measure import ceilings


def test_every_form_of_a_dot_computes_the_same_product():
    rng = np.random.RandomState(0)
    x = rng.rand(32, 784).astype(np.float32)
    w = rng.rand(784, 10).astype(np.float32)
    g = rng.rand(32, 10).astype(np.float32)
    want = {"forward": x @ w, "weight_grad": x.T @ g}
    second = {"forward": w, "weight_grad": g}
    forms = ceilings._forms()
    assert len(forms["weight_grad"]) == 3  # stock, tuned, packed: the model's layouts
    for name, by_form in forms.items():
        for form, dot in by_form.items():
            got = np.asarray(dot(jnp.asarray(x), jnp.asarray(second[name])))
            np.testing.assert_allclose(got, want[name], rtol=1e-5, err_msg=form)


def test_the_loop_carries_a_dependence_and_runs_every_iteration():
    """Each dot feeds the next iteration's operand (nothing to hoist); the empty loop has the
    same carry, so its time is the loop's own."""
    x = jnp.ones((8, 784))
    w = jnp.full((784, 10), 0.5)
    dot = ceilings._forms()["forward"]["x @ w"]
    out = ceilings._loop(dot, 3, {})(x, w)
    # w[0, 0] grows by 1e-30 * (x @ w)[0, 0] each time: tiny, but every iteration ran
    assert out.shape == (784, 10) and float(out[0, 0]) >= 0.5
    assert ceilings._loop(None, 3, {})(x, w).shape == (784, 10)


def test_a_quick_measurement_returns_each_batch_size_with_its_fastest_forms():
    got = ceilings.measure_thin_ceilings("cpu", [8, 16, 8], quick=True)
    assert sorted(got) == ["16", "8"]
    sets = catalog.STEP_TIME_OPTIONS
    for batch, entry in got.items():
        assert entry["forward_s"] > 0 and entry["weight_grad_s"] > 0
        total = entry["forward_s"] + entry["weight_grad_s"]
        want = 2 * ceilings.thin_flops(int(batch)) / total
        assert entry["ceiling_flops_per_s"] == pytest.approx(want)
        form, _, compiled = entry["weight_grad_form"].partition(", ")
        assert form in ceilings._forms()["weight_grad"] and compiled in sets


def test_a_program_two_sets_compile_alike_is_timed_once(monkeypatch):
    """``ynnpack-dots`` compiles a dot alone exactly as XLA's own options do: the ceiling times
    that program once (and keeps the first set's name for it), while ``no-ynnpack``'s different
    programs are timed on their own."""
    calls = []

    def fake_best(fn, a, b, reps):
        calls.append(fn.as_text())
        return 1.0 + 0.01 * len(calls)  # every distinct program a different time

    monkeypatch.setattr(ceilings, "_best_seconds", fake_best)
    got = ceilings.measure_thin_ceilings("cpu", [8], quick=True)["8"]
    assert len(calls) == len(set(calls))  # no program timed twice
    per_set = 2 + 4  # per set: two empty loops, the forward and the three weight-gradient forms
    assert len(calls) < per_set * len(catalog.STEP_TIME_OPTIONS)
    assert "ynnpack-dots" in catalog.STEP_TIME_OPTIONS
    assert "ynnpack-dots" not in got["forward_form"] + got["weight_grad_form"]
