"""Kernel launches: how many a compiled call runs (read from its optimized HLO, loops counted
by their trip counts) and what one costs on the device (measured in a compiled loop of tiny
kernels)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from jax import lax

from bench.measure import hlo, launches, timing

HLO = """\
HloModule jit_epoch, is_scheduled=true

%fused_computation (param_0: f32[4]) -> f32[4] {
  %param_0 = f32[4]{0} parameter(0)
  ROOT %tanh.1 = f32[4]{0} tanh(%param_0)
}

%region_add (a: f32[], b: f32[]) -> f32[] {
  %a = f32[] parameter(0)
  %b = f32[] parameter(1)
  ROOT %add.0 = f32[] add(%a, %b)
}

%body (arg: (s32[], f32[4])) -> (s32[], f32[4]) {
  %arg = (s32[], f32[4]{0}) parameter(0)
  %i = s32[] get-tuple-element(%arg), index=0
  %x = f32[4]{0} get-tuple-element(%arg), index=1
  %tanh_fusion = f32[4]{0} fusion(%x), kind=kLoop, calls=%fused_computation
  %sum = f32[] reduce(%tanh_fusion, %i), dimensions={0}, to_apply=%region_add
  %b = f32[4]{0} bitcast(%tanh_fusion)
  %next = s32[] add(%i, %i)
  ROOT %t = (s32[], f32[4]{0}) tuple(%next, %b)
}

%cond (arg.1: (s32[], f32[4])) -> pred[] {
  %arg.1 = (s32[], f32[4]{0}) parameter(0)
  %j = s32[] get-tuple-element(%arg.1), index=0
  %c = s32[] constant(10)
  ROOT %lt = pred[] compare(%j, %c), direction=LT
}

%then (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  %n1 = f32[4]{0} negate(%p)
  ROOT %n2 = f32[4]{0} negate(%n1)
}

%else (q: f32[4]) -> f32[4] {
  ROOT %q = f32[4]{0} parameter(0)
}

ENTRY %main (x.1: f32[4], k: pred[]) -> f32[4] {
  %x.1 = f32[4]{0} parameter(0)
  %k = pred[] parameter(1)
  %zero = s32[] constant(0)
  %init = (s32[], f32[4]{0}) tuple(%zero, %x.1)
  %loop = (s32[], f32[4]{0}) while(%init), condition=%cond, body=%body, backend_config={"known_trip_count":{"n":"10"}}
  %out = f32[4]{0} get-tuple-element(%loop), index=1
  %ar-start = f32[4]{0} all-reduce-start(%out), to_apply=%region_add
  %ar-done = f32[4]{0} all-reduce-done(%ar-start)
  ROOT %pick = f32[4]{0} conditional(%k, %ar-done, %ar-done), branch_computations={%then, %else}
}
"""


def test_launches_count_loops_by_their_trip_count_on_handwritten_text():
    # the body runs 3 kernels (fusion, reduce, add; the bitcast and the tuple launch nothing)
    # and the condition 1, 10 times, and the condition once more to stop; then the all-reduce
    # (start and done, one launch) and the conditional (1 for its predicate, 2 for the dearer
    # branch): 10 * (3 + 1) + 1 + 1 + 3
    assert hlo.launches(HLO) == 45
    # a loop whose trip count XLA does not know: the count is unknown, not a guess
    assert hlo.launches(HLO.replace('backend_config={"known_trip_count":{"n":"10"}}', "")) is None
    assert hlo.launches("") is None


def _scan(links: int, steps: int):
    def run(x):
        def body(c, _):
            for _ in range(links):
                c = jnp.tanh(c) + jnp.sum(c) * 1e-3
            return c, None

        return lax.scan(body, x, None, length=steps)[0]

    return jax.jit(run).trace(jnp.ones(8)).lower().compile()


def test_launches_of_a_compiled_loop_grow_with_its_trip_count():
    """A compiled scan launches its body's kernels once a step: 9 more steps, 9 more bodies."""
    for links in (1, 4):
        short, long = (hlo.launches(_scan(links, n).as_text()) for n in (10, 19))
        assert short is not None and long is not None
        per_step = (long - short) / 9
        assert per_step == int(per_step) and per_step >= links  # whole kernels, one a link
        assert short >= 10 * per_step
    assert timing.compiled_facts(_scan(1, 10))["launches_per_call"] == hlo.launches(
        _scan(1, 10).as_text()
    )


def test_a_launch_costs_the_time_difference_over_the_launch_difference(monkeypatch):
    """The cost of one launch is the long chain's extra time over its extra launches: the
    loop's and the call's own costs cancel out (fake times, real compiled chains)."""
    times = {launches._SHORT: 0.001, launches._LONG: 0.001 + 0.004}
    real = launches._timed

    def timed(links, iterations, x, reps):
        _, count = real(links, iterations, x, 1)
        return times[links], count

    monkeypatch.setattr(launches, "_timed", timed)
    got = launches.measure_launch_cost("cpu", quick=True)
    short, long = got["launches"]
    assert long - short >= (launches._LONG - launches._SHORT) * got["iterations"]
    assert got["launch_s"] == pytest.approx(0.004 / (long - short))


def test_a_real_quick_measurement_gives_a_positive_cost():
    got = launches.measure_launch_cost("cpu", quick=True)
    assert got["launch_s"] > 0 and got["launches"][1] > got["launches"][0]
    assert got["seconds"][1] > got["seconds"][0]
