"""Multi-process runs (``jax.distributed``): two local processes with 2 fake CPU devices each.

The processes are started with ``subprocess``; this test process (4 fake devices, see
conftest.py) never calls ``jax.distributed`` itself.
"""

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import bench
from bench import distributed, launch, plan, timing, worker
from mnist_kernels import model

ROOT = Path(__file__).resolve().parent.parent
RUN = ["run", "--quick", "--variants", "sharded", "--layers", "784,10", "--batch-sizes", "32"]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    for k in (worker.FAULT_ENV, distributed.ENV_FAULT_PROCESS):
        env.pop(k, None)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _launch(*args, env=None, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "bench", "launch", *args],
        cwd=ROOT,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- two processes -----------------------------------------------------------------------------


def test_global_updates_equal_the_single_process_reference(tmp_path):
    """sharded, shard_map, pmap and sharded_tp over 4 devices in 2 processes = jax.jit(update)."""
    out = tmp_path / "params.npz"
    coordinator = f"127.0.0.1:{launch.free_port()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.distributed", "--selftest", str(out), "--steps", "3"],
            cwd=ROOT,
            env=launch.child_env(i, 2, coordinator, 2, init_timeout=60, base=_env()),
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


def test_launch_runs_two_processes_and_process_0_writes(tmp_path):
    out = tmp_path / "run"
    r = _launch(
        "-n", "2", "--devices-per-process", "2", "--", *RUN, "--out", str(out), "--no-peaks"
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "[p0]" in r.stderr and "[p1]" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "metadata.json",
        "results.csv",
        "results.jsonl",
    ]
    lines = (out / "results.jsonl").read_text().splitlines()
    ids = [json.loads(ln)["config_id"] for ln in lines]
    assert len(ids) == len(set(ids)) == 2  # update and predict, once each
    df = bench.load(out)
    assert (df["status"] == "ok").all(), df["error"].tolist()
    assert set(df["variant"]) == {"sharded"} and set(df["kernel"]) == {"update", "predict"}
    assert (df["n_processes"] == 2).all() and (df["n_devices"] == 4).all()
    assert (df["recompiles"] == 0).all()
    assert (df["step_median_max_s"] >= df["step_median_s"] * 0.999).all()
    meta = bench.load_metadata(out)
    assert (meta["n_processes"], meta["global_devices"], meta["local_devices"]) == (2, 4, 2)
    assert meta["backends"]["cpu"]["device_count"] == 4
    assert meta["end_time"]


def test_a_process_that_dies_fails_the_launch_fast(tmp_path):
    env = _env(MNIST_BENCH_INJECT_FAULT="crash:sharded", MNIST_BENCH_INJECT_FAULT_PROCESS="1")
    t0 = time.monotonic()
    r = _launch(
        "-n",
        "2",
        "--devices-per-process",
        "2",
        "--timeout",
        "120",
        "--",
        *RUN,
        "--out",
        str(tmp_path / "run"),
        "--no-peaks",
        env=env,
    )
    elapsed = time.monotonic() - t0
    assert r.returncode == 1, r.stderr[-3000:]
    assert elapsed < 60, elapsed  # process 0, stuck waiting for process 1, was stopped
    assert "error: process 1 exited with code 3" in r.stderr
    assert "fault injected" in r.stderr.split("error: process 1")[1]


# --- pieces, in this process -------------------------------------------------------------------


def test_run_arguments_add_distributed_and_one_out():
    args, out = launch.run_arguments(["--", "run", "--quick"], "RID")
    assert args == ["run", "--distributed", "--quick", "--out", str(Path("reports") / "RID")]
    assert out == str(Path("reports") / "RID")
    args, out = launch.run_arguments(["run", "--out=/x", "--distributed"], "RID")
    assert out == "/x" and args.count("--distributed") == 1 and "--out" not in args
    with pytest.raises(ValueError, match="starting with `run`"):
        launch.run_arguments(["report", "x"], "RID")


def test_child_env_names_the_coordinator_and_fake_devices():
    env = launch.child_env(1, 3, "127.0.0.1:1234", 2, base={"XLA_FLAGS": "--foo"})
    assert env["JAX_COORDINATOR_ADDRESS"] == "127.0.0.1:1234"
    assert (env["JAX_NUM_PROCESSES"], env["JAX_PROCESS_ID"]) == ("3", "1")
    assert env["JAX_PLATFORMS"] == "cpu"
    assert env["XLA_FLAGS"] == "--foo --xla_force_host_platform_device_count=2"
    gpu = launch.child_env(1, 2, "h:1", 4, backend="gpu", base={})
    assert gpu["JAX_LOCAL_DEVICE_IDS"] == "4,5,6,7" and "JAX_PLATFORMS" not in gpu


def test_plan_spans_every_global_device_and_leaves_out_single_device_variants():
    info = {"device_kind": "cpu", "device_count": 4, "n_processes": 2}
    specs, skipped = distributed.plan_global(plan.preset("quick"), "cpu", info, {})
    assert specs and all(s["n_devices"] == 4 and s["n_processes"] == 2 for s in specs)
    assert {s["variant"] for s in specs} == plan.MULTI_DEVICE
    left_out = {s["what"] for s in skipped}
    assert {"variant jit", "variant scan", "variant numpy"} <= left_out


def test_lockstep_timing_makes_the_same_calls_whatever_the_clock(monkeypatch):
    """The number of calls may not depend on how long they take: collectives pair them up."""
    monkeypatch.setattr(timing, "SLOW_CALL_S", float("inf"))
    settings = distributed.lockstep_settings(timing.Settings.preset("quick"), "quick")
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
