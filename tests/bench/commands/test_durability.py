"""What a run directory guarantees under concurrency and signals, end to end: one writer at a
time (a second `bench run` or `--resume` on a live run is refused with its PID, the first one's
rows intact), SIGTERM and SIGHUP end the workers and leave the run resumable, and an `--out` that
is a file is refused without a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.results import rundir
from tests.bench.commands.test_run import RESUME_ARGS, child_pids, gone, kill_sweep
from tests.helpers import ROOT, TINY, bench_env, run_bench

pytestmark = pytest.mark.slow

CPU = ["--backends", "cpu"]


def start_run(out: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench", "run", *TINY, *CPU, "--out", str(out), *extra],
        cwd=ROOT,
        env=env or bench_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


def lock_holder(out: Path) -> str:
    try:
        return (out / rundir.LOCK).read_text().strip()
    except OSError:
        return ""


def test_a_second_writer_is_refused_and_the_first_runs_intact(tmp_path):
    out = tmp_path / "run"
    first = start_run(out, "--variants", "jit,vmap", "--kernels", "update,predict")
    try:
        wait_for(lambda: lock_holder(out) == str(first.pid) or first.poll() is not None)
        assert first.poll() is None, first.communicate()
        again = run_bench("run", *TINY, *CPU, "--out", str(out))
        resumed = run_bench("run", "--resume", str(out))
        for r in (again, resumed):
            assert r.returncode == 2, r.stderr
            assert f"being written by another run (PID {first.pid})" in r.stderr
            assert "Traceback" not in r.stderr
        _, err = first.communicate(timeout=240)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert first.returncode == 0, err
    rows = rundir.read_rows(out / "results.jsonl")
    lines = [ln for ln in (out / "results.jsonl").read_text().splitlines() if ln.strip()]
    meta = rundir.load_metadata(out)
    assert len(rows) == len(lines) == meta["configurations"] == 4  # each configuration once
    assert {r["run_id"] for r in rows} == {meta["run_id"]}
    # the lock went with the process: the finished run resumes (to nothing) without a refusal
    assert run_bench("run", "--resume", str(out)).returncode == 0


def test_the_lock_is_released_when_its_holder_is_killed(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from bench.results.rundir import RunDir; "
            f"d = RunDir({str(tmp_path / 'd')!r}).lock(); print('locked', flush=True); time.sleep(600)",
        ],
        cwd=ROOT,
        env=bench_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(rundir.RunDirBusy, match=f"PID {holder.pid}"):
        rundir.RunDir(tmp_path / "d").lock()
    holder.kill()
    holder.wait()
    rundir.RunDir(tmp_path / "d").lock().unlock()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stopping_signal_ends_the_workers_and_the_run_resumes(tmp_path, sig):
    out = tmp_path / "run"
    env = bench_env(MNIST_BENCH_INJECT_FAULT="hang:vmap")
    run = start_run(out, "--variants", "jit,vmap", "--kernels", "update", env=env)
    try:
        # jit measured first, then the worker hangs in vmap
        wait_for(lambda: (out / "results.jsonl").exists() or run.poll() is not None)
        workers = child_pids(run.pid)
        assert run.poll() is None and workers
        run.send_signal(sig)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 130, err
    assert f"stopped by {signal.Signals(sig).name}" in err
    assert f"python -m bench run --resume {out}" in err and "Traceback" not in err
    wait_for(lambda: all(gone(pid) for pid in workers), timeout=30)
    r = run_bench("run", "--resume", str(out), "--timeout", "5")
    assert r.returncode == 0, r.stderr
    statuses = {row["variant"]: row["status"] for row in rundir.read_rows(out / "results.jsonl")}
    assert statuses == {"jit": "ok", "vmap": "ok"}


def test_an_out_that_is_a_file_is_refused(tmp_path):
    file = tmp_path / "file"
    file.write_text("not a directory")
    for out in (file, file / "run"):
        r = run_bench("run", *TINY, *CPU, "--variants", "jit", "--out", str(out))
        assert r.returncode == 2, r.stderr
        assert "cannot write the run directory" in r.stderr and "Traceback" not in r.stderr
    assert file.read_text() == "not a directory"


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of 32 KiB (root only; skipped where mounting is not allowed), unmounted after."""
    mount = tmp_path / "disk"
    mount.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_stops_the_run_with_a_resume_hint_and_resume_finishes_it(small_disk):
    out = small_disk / "run"
    flags = ["--variants", "jit,vmap", "--kernels", "update", "--batch-sizes", "8,16,32,64"]
    r = run_bench(
        "run",
        "--quick",
        "--quiet",
        "--layers",
        "784,10",
        *flags,
        "--no-peaks",
        *CPU,
        "--out",
        str(out),
    )
    assert r.returncode == 2, r.stderr
    assert "No space left on device" in r.stderr and "Traceback" not in r.stderr
    assert f"python -m bench run --resume {out}" in r.stderr
    assert not list(out.glob("*.tmp"))
    kept = rundir.read_rows(out / "results.jsonl")  # every whole line is a good row
    assert 0 < len(kept) < 8
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    r = run_bench("run", "--resume", str(out))
    assert r.returncode == 0, r.stderr
    rows = rundir.read_rows(out / "results.jsonl")
    assert len(rows) == 8 and all(row["status"] == "ok" for row in rows)
    assert {row["config_id"] for row in kept} <= {row["config_id"] for row in rows}


def test_a_disk_too_full_to_start_leaves_nothing_behind(small_disk):
    (small_disk / "filler").write_bytes(b"x" * 28 * 1024)
    out = small_disk / "run"
    r = run_bench("run", *TINY, "--variants", "jit", *CPU, "--out", str(out))
    assert r.returncode == 2, r.stderr
    assert "No space left on device" in r.stderr and "nothing was measured" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_a_resumed_run_of_several_passes_keeps_the_passes_it_measured(tmp_path):
    """--repeats 2, killed during pass 2: the resume measures only what is missing (no pass
    twice in repeats.jsonl), and every row pools both passes."""
    out = tmp_path / "run"
    flags = ["--variants", "jit", "--kernels", "update,predict", *RESUME_ARGS[8:10]]
    run = start_run(out, *flags, "--repeats", "2")
    repeats = out / "repeats.jsonl"

    def lines() -> list[str]:
        return [ln for ln in repeats.read_text().splitlines() if ln.strip()]

    try:  # 6 configurations: pass 1 is 6 lines; stop in the middle of pass 2
        wait_for(lambda: (repeats.exists() and len(lines()) >= 8) or run.poll() is not None)
    finally:
        if run.poll() is None:
            kill_sweep(run)
    before = len(lines())
    assert 8 <= before < 12, "the run was not stopped during its second pass"
    r = run_bench("run", "--resume", str(out))
    assert r.returncode == 0, r.stderr
    seen = [(json.loads(ln)["config_id"], json.loads(ln)["pass"]) for ln in lines()]
    assert len(seen) == len(set(seen)) == 12  # 6 configurations x 2 passes, none twice
    rows = rundir.read_rows(out / "results.jsonl")
    assert len(rows) == 6 and all(row["repeats"] == 2 for row in rows)
