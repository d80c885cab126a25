"""bench.measure.peaks: the machine's limits. A peak is a best case over synced repetitions (a
fake clock shows which repetition counts), each arithmetic key gets the matmul of its own
arithmetic (read from the compiled program), and a real quick probe returns every key asked for."""

import jax
import jax.numpy as jnp
import pytest

from bench.measure import peaks, timing


def test_a_rate_is_the_work_over_the_quickest_repetition(monkeypatch):
    durations = iter([0.0, 0.0, 0.004, 0.002, 0.003])  # warm-up (no clock), then 3 reps
    now = [0.0]
    ticks = iter([0, 1, 0, 1, 0, 1])  # t0 then t1 of each repetition

    def clock():
        if next(ticks) == 1:
            now[0] += next(durations)
        return now[0]

    next(durations), next(durations)  # the warm-up call reads no clock
    monkeypatch.setattr(timing, "clock", clock)
    ready = jnp.zeros(())
    assert peaks._best_rate(lambda: ready, work=1e9, reps=3) == pytest.approx(1e9 / 0.002)


def dot_of(fn, *args):
    """The one dot_general of ``fn``'s program (searched through nested jaxprs)."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                found.append(eqn)
            if "jaxpr" in eqn.params:
                inner = eqn.params["jaxpr"]
                walk(getattr(inner, "jaxpr", inner))

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("key", "operand", "precision"),
    [
        ("float32", "float32", "(Precision.HIGHEST, Precision.HIGHEST)"),
        ("float32:tf32", "float32", "TF32_TF32_F32"),
        ("float32:default", "float32", "(Precision.DEFAULT, Precision.DEFAULT)"),
        ("bfloat16", "bfloat16", "None"),
    ],
)
def test_each_key_times_the_matmul_of_its_arithmetic(key, operand, precision):
    """float32 at full precision is not timed at the backend's default (TF32 on NVIDIA GPUs),
    nor bfloat16 as float32: each key's peak is a peak of its own arithmetic."""
    mm, a = peaks._matmul(key, 64, jax.devices("cpu")[0])
    dot = dot_of(mm, a, a)
    assert [str(v.aval.dtype) for v in dot.invars] == [operand, operand]
    assert str(dot.params["precision"]) == precision
    assert dot.params["preferred_element_type"] == jnp.float32  # float32 sums


def test_a_quick_probe_returns_every_key_asked_for():
    got = peaks.measure_peaks("cpu", ["float32", "bfloat16"], quick=True)
    assert set(got) == {"float32", "bfloat16"}
    f32, bf16 = got["float32"], got["bfloat16"]
    assert f32["matmul_n"] == bf16["matmul_n"] == 1024
    assert f32["matmul_flops_per_s"] > 1e8 and bf16["matmul_flops_per_s"] > 1e7
    # one memory probe, shared by every key: the better of a copy and a reduction
    assert f32["bandwidth_bytes_per_s"] == bf16["bandwidth_bytes_per_s"]
    assert f32["bandwidth_bytes_per_s"] == max(f32["copy_bytes_per_s"], f32["read_bytes_per_s"])
    assert f32["copy_bytes"] == 64 * 2**20
    # the cost of a kernel launch, one measurement for every key
    assert f32["launch"] == bf16["launch"] and f32["launch"]["launch_s"] > 0
