"""`python -m bench run` end to end: files, metadata, errors, timeouts, resume, backends, flags."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bench
from bench import schema

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--layers", "784,10", "--batch-sizes", "32", "--kernels", "update", "--no-peaks"]


def _env(**extra):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run(*args, env=None, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "bench", "run", "--quick", "--quiet", *args],
        cwd=ROOT,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_writes_results_and_metadata(tmp_path):
    out = tmp_path / "run"
    r = run("--variants", "jit,sharded", "--devices", "1,2", *SMALL, "--out", str(out))
    assert r.returncode == 0, r.stderr
    for name in ("results.jsonl", "results.csv", "metadata.json"):
        assert (out / name).exists()
    df = bench.load(out)
    assert set(schema.COLUMNS) <= set(df.columns)
    assert (df["status"] == "ok").all()
    assert {(v, n) for v, n in zip(df["variant"], df["n_devices"], strict=True)} >= {
        ("jit", 1),
        ("sharded", 1),
        ("sharded", 2),
    }
    assert (df["recompiles"] == 0).all()
    meta = bench.load_metadata(out)
    for key in ("python", "jax", "jaxlib", "numpy", "cpu", "git", "hardware_fingerprint"):
        assert meta[key], key
    assert meta["schema_version"] == schema.SCHEMA_VERSION
    assert meta["backends"]["cpu"]["device_count"] >= 1
    assert meta["start_time"] and meta["end_time"] and "bench run" in meta["command"]
    assert meta["dataset"]["name"] in ("fashion-mnist", "mnist", "synthetic")
    csv = (out / "results.csv").read_text()
    assert '"784,10"' in csv or ",784,10," not in csv  # layer_sizes is one quoted field
    rows = schema.read_rows(out / "results.jsonl")
    assert all(len(r["samples_s"]) == r["n_samples"] for r in rows)


def test_config_file(tmp_path):
    cfg = tmp_path / "bench.toml"
    cfg.write_text(
        'variants = ["jit"]\nbatch_sizes = [16]\nlayers = ["784,10"]\nkernels = "update"\n'
    )
    out = tmp_path / "run"
    r = run("--config", str(cfg), "--no-peaks", "--out", str(out))
    assert r.returncode == 0, r.stderr
    df = bench.load(out)
    assert set(df["variant"]) == {"jit"} and set(df["batch_size"]) == {16}


@pytest.mark.parametrize(
    ("fault", "status", "message"),
    [("raise", "error", "fault injected"), ("crash", "error", "exited with code 3")],
)
def test_failing_configuration_is_a_row_and_the_sweep_goes_on(tmp_path, fault, status, message):
    out = tmp_path / "run"
    env = _env(MNIST_BENCH_INJECT_FAULT=f"{fault}:vmap")
    r = run("--variants", "vmap,jit", *SMALL, "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    df = bench.load(out).set_index("variant")
    assert df.loc["vmap", "status"] == status
    assert message in df.loc["vmap", "error"]
    assert df.loc["jit", "status"] == "ok"


def test_hang_is_a_timeout_row(tmp_path):
    out = tmp_path / "run"
    env = _env(MNIST_BENCH_INJECT_FAULT="hang:vmap")
    r = run("--variants", "vmap,jit", *SMALL, "--timeout", "20", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    df = bench.load(out).set_index("variant")
    assert df.loc["vmap", "status"] == "timeout"
    assert df.loc["jit", "status"] == "ok"


def test_killed_run_resumes_to_the_same_rows(tmp_path):
    out = tmp_path / "run"
    args = ["--variants", "jit", "--layers", "784,10", "--batch-sizes", "8,16,32,64,128,256"]
    args += ["--kernels", "update", "--no-peaks", "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--quick", "--quiet", *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    results = out / "results.jsonl"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if results.exists() and len(results.read_text().splitlines()) >= 2:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent; its worker ends when its stdin closes
    proc.wait()
    before = [json.loads(line)["config_id"] for line in results.read_text().splitlines()]
    assert 2 <= len(before) < 6
    r = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--quiet", "--resume", str(out), *args[:-2]],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    ids = [row["config_id"] for row in lines]
    assert len(set(ids)) == 6 == len(ids)  # every configuration once: none redone
    assert ids[: len(before)] == before
    assert sorted(bench.load(out)["batch_size"]) == [8, 16, 32, 64, 128, 256]


def test_missing_backend_is_skipped_with_a_reason(tmp_path):
    out = tmp_path / "run"
    r = run("--variants", "jit", *SMALL, "--backends", "cpu,tpu", "--out", str(out))
    assert r.returncode == 0, r.stderr
    skipped = {s["what"]: s["reason"] for s in bench.load_metadata(out)["skipped"]}
    assert skipped.get("backend tpu")
    assert set(bench.load(out)["backend"]) == {"cpu"}
    r = run("--variants", "jit", *SMALL, "--backends", "tpu", "--out", str(tmp_path / "none"))
    assert r.returncode == 2 and "none of the backends" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variants", "nope"], "unknown"),
        (["--layers", "100,10"], "must start with 784"),
        (["--batch-sizes", "0"], "positive"),
    ],
)
def test_bad_flags_exit_2(tmp_path, args, message):
    r = run(*args, "--out", str(tmp_path / "x"))
    assert r.returncode == 2
    assert message in r.stderr


def test_existing_results_need_resume(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.jsonl").write_text("")
    r = run("--variants", "jit", *SMALL, "--out", str(out))
    assert r.returncode == 2 and "--resume" in r.stderr


def test_dry_run_lists_without_running(tmp_path):
    r = run("--variants", "jit,scan", "--kernels", "update,predict", "--dry-run")
    assert r.returncode == 0
    assert "scan predict" in r.stdout and "left out" in r.stdout
