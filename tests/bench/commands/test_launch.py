"""`python -m bench launch`: two local processes with 2 fake CPU devices each, process 0 writes,
a process that dies stops the run; the launcher's pieces (arguments, environment).

The processes are started with ``subprocess``; this test process (4 fake devices, see
conftest.py) never calls ``jax.distributed`` itself.
"""

import json
import time
from pathlib import Path

import pytest

import bench
from bench.runner import launcher as launch
from tests.helpers import bench_env, run_bench

RUN = ["run", "--quick", "--variants", "sharded", "--layers", "784,10", "--batch-sizes", "32"]


def _launch(*args, env=None, timeout=180):
    return run_bench("launch", *args, env=env or bench_env(), timeout=timeout)


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
    env = bench_env(MNIST_BENCH_INJECT_FAULT="crash:sharded", MNIST_BENCH_INJECT_FAULT_PROCESS="1")
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


def test_a_run_that_refuses_its_arguments_is_a_usage_error(tmp_path):
    r = _launch("-n", "2", "--", "run", "--variants", "nope", "--out", str(tmp_path / "run"))
    assert r.returncode == 2, r.stderr[-3000:]
    assert "refused its arguments" in r.stderr and "--variants nope: unknown" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_process_that_hangs_is_blamed_not_the_one_waiting_for_it(tmp_path):
    """Process 1 hangs before its first step; process 0 waits for it in a collective. Both
    watchdogs fire at --timeout: the launcher names process 1 and where it stopped."""
    env = bench_env(MNIST_BENCH_INJECT_FAULT="hang:sharded", MNIST_BENCH_INJECT_FAULT_PROCESS="1")
    r = _launch(
        "-n", "2", "--devices-per-process", "2", "--timeout", "170", "--",
        *RUN, "--out", str(tmp_path / "run"), "--no-peaks", "--timeout", "20",
        env=env,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr[-3000:]
    assert "error: process 1 exited with code 124" in r.stderr, r.stderr[-3000:]
    assert "it stopped in preparing; the others waited for it in a collective" in r.stderr


def test_the_process_that_stopped_earliest_is_found_from_the_watchdog_lines():
    import collections
    import threading
    import types

    from bench.runner.launcher import stopped_first

    def child(index, line):
        tail = collections.deque([f"[p{index}] x", line])
        return types.SimpleNamespace(index=index, lock=threading.Lock(), tail=tail)

    def fired(i, phase):
        return f"error: process {i}: sharded update ran past --timeout 20 s (in {phase}: a stuck"

    waiting = child(0, fired(0, "first call"))
    stuck = child(1, fired(1, "preparing"))
    assert stopped_first([waiting, stuck]) == (stuck, "preparing")
    assert stopped_first([waiting, child(1, fired(1, "first call"))]) == (None, "")
    assert stopped_first([waiting, child(1, "[p1] killed")]) == (None, "")
