"""The steady-state call's hooks, without JAX."""

from __future__ import annotations

from bench.measure import kernels


def test_a_slowed_step_is_called_that_many_times_on_average():
    calls: list[int] = []

    def step(state: int) -> int:
        calls.append(state)
        return state + 1

    slowed = kernels.slowed(step, 1.2)
    state = 0
    for _ in range(10):
        state = slowed(state)
    assert len(calls) == 12 and state == 12  # the state threads through the extra calls
    for _ in range(90):
        state = slowed(state)
    assert len(calls) == 120
    assert kernels.slowed(step, None) is step and kernels.slowed(step, 1.0) is step
    twice = kernels.slowed(step, 2.0)
    twice(0)
    assert len(calls) == 122
