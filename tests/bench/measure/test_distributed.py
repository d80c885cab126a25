"""One process of a ``jax.distributed`` run: the data-parallel variants over 4 devices in two
processes equal a single-process ``jax.jit(model.update)``; the global plan; lock-step timing.
"""

import dataclasses
import functools
import subprocess
import sys
import time

import jax
import numpy as np

from bench import catalog, selection
from bench.measure import distributed, timing
from bench.protocol import TimingSettings
from bench.runner import launcher as launch
from mnist_kernels import model
from tests.helpers import ROOT, bench_env


def test_global_updates_equal_the_single_process_reference(tmp_path):
    """sharded, shard_map, pmap and sharded_tp over 4 devices in 2 processes = jax.jit(update)."""
    out = tmp_path / "params.npz"
    coordinator = f"127.0.0.1:{launch.free_port()}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.measure.distributed",
                "--selftest",
                str(out),
                "--steps",
                "3",
            ],
            cwd=ROOT,
            env=launch.child_env(i, 2, coordinator, 2, init_timeout=60, base=bench_env()),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    try:
        logs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(logs)
    assert "sharded over 4 devices (2 here), fully addressable: False" in logs[1]

    saved = np.load(out)
    x, y, lr = saved["x"], saved["y"], float(saved["lr"])
    layers = [int(v) for v in saved["layers"]]
    params = model.init_params(layers)
    step = jax.jit(functools.partial(model.update, lr=lr))
    for s in range(x.shape[0]):
        params = step(params, (x[s], y[s]))
    moved = np.abs(np.asarray(params[0][0]) - model.init_params(layers)[0][0]).max()
    assert moved > 1e-3  # the steps did something worth comparing
    for name in distributed.SELFTEST_VARIANTS:
        for i, (w, b) in enumerate(params):
            np.testing.assert_allclose(saved[f"{name}/{i}/w"], w, atol=1e-5, err_msg=name)
            np.testing.assert_allclose(saved[f"{name}/{i}/b"], b, atol=1e-5, err_msg=name)


def test_plan_spans_every_global_device_and_leaves_out_single_device_variants():
    info = {"device_kind": "cpu", "device_count": 4, "n_processes": 2}
    chosen = selection.Selection(tuple(selection.preset("quick")))
    specs, skipped = distributed.plan_global(chosen, "cpu", info)
    assert specs and all(s["n_devices"] == 4 and s["n_processes"] == 2 for s in specs)
    assert {s["variant"] for s in specs} == catalog.MULTI_DEVICE
    left_out = {s["what"] for s in skipped}
    assert {"variant jit", "variant scan", "variant numpy"} <= left_out


def test_lockstep_timing_makes_the_same_calls_whatever_the_clock():
    """The number of calls may not depend on how long they take: collectives pair them up."""
    settings = distributed.lockstep_settings(TimingSettings.preset("quick"), "quick")
    assert settings.slow_call_s == float("inf")
    counts = []
    for delay in (0.0, 0.002, 0.06):
        calls = []

        def call(state, delay=delay, calls=calls):
            calls.append(1)
            time.sleep(delay)
            return state

        timing.steady_state(call, lambda s: s, 0, settings)
        counts.append(len(calls))
    assert counts[0] == counts[1] == counts[2] == settings.warmup_calls + settings.min_samples
    # with a finite slow_call_s a slow warm-up call ends the warm-up: fewer calls
    three = dataclasses.replace(settings, warmup_calls=3)

    def calls_made(settings):
        calls = []
        timing.steady_state(lambda s: calls.append(time.sleep(0.06)) or s, lambda s: s, 0, settings)
        return len(calls)

    assert calls_made(dataclasses.replace(three, slow_call_s=0.05)) == calls_made(three) - 1
