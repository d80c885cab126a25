"""`python -m bench run` end to end, in subprocesses: files and metadata, the TOML config,
failing configurations (raise, crash, hang), resuming a killed run, missing backends and bad
flags. Every sweep is tiny (784,10 at batch 32, no peaks) so the file runs in about a minute.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bench
from bench.results import rundir, schema
from tests.helpers import ROOT, TINY, bench_env, run_bench

CPU = ["--backends", "cpu"]


def bench_run(*args: str, env: dict[str, str] | None = None, timeout: float = 240):
    return run_bench("run", *args, env=env, timeout=timeout)


def jsonl_lines(run_dir: Path) -> list[str]:
    return [ln for ln in (run_dir / "results.jsonl").read_text().splitlines() if ln.strip()]


def by_variant(run_dir: Path) -> dict[str, dict]:
    rows = rundir.read_rows(run_dir / "results.jsonl")
    out = {r["variant"]: r for r in rows}
    assert len(out) == len(rows)
    return out


# --- a plain run ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """One jit sweep (update and predict), shared by the tests that only read it. It asks for
    a TPU too, which this machine lacks (the missing-backend test reads that)."""
    out = tmp_path_factory.mktemp("plain") / "run"
    r = bench_run(
        *TINY,
        *["--variants", "jit", "--kernels", "update,predict", "--backends", "cpu,tpu"],
        *["--out", str(out)],
        env=bench_env(NVIDIA_TF32_OVERRIDE="0", TORCH_LOGS="-dynamo"),
    )
    assert r.returncode == 0, r.stderr
    return out, r


def test_run_writes_results_csv_and_metadata(plain_run):
    out, _ = plain_run
    for name in ("results.jsonl", "results.csv", "metadata.json"):
        assert (out / name).is_file(), name
    df = bench.load(out)
    assert set(schema.COLUMNS) <= set(df.columns)
    assert len(df) == 2 and set(df["kernel"]) == {"update", "predict"}
    assert (df["status"] == "ok").all(), df[["kernel", "status", "error"]]
    assert (df["recompiles"] == 0).all()
    assert (df["step_median_s"] > 0).all()
    assert set(df["layer_sizes"]) == {"784,10"} and set(df["batch_size"]) == {32}
    assert (df["schema_version"] == schema.SCHEMA_VERSION).all()
    for row in rundir.read_rows(out / "results.jsonl"):
        assert row["config_id"] == schema.config_id(row)
        assert len(row["samples_s"]) == row["n_samples"]

    meta = bench.load_metadata(out)
    assert meta["schema_version"] == schema.SCHEMA_VERSION
    for key in ("python", "jax", "jaxlib", "numpy", "hardware_fingerprint", "command"):
        assert isinstance(meta[key], str) and meta[key], key
    assert meta["backends"]["cpu"]["device_count"] >= 1
    assert meta["backends"]["cpu"]["device_kind"]
    assert meta["cpu"]["cores"] >= 1
    assert set(meta["git"]) >= {"commit", "dirty"} and meta["git"]["commit"]
    assert meta["start_time"] and meta["end_time"] and meta["start_time"] <= meta["end_time"]
    assert "bench run" in meta["command"] and "--variants jit" in meta["command"]
    assert meta["dataset"]["name"] in ("fashion-mnist", "mnist", "synthetic")
    assert set(df["dataset"]) == {meta["dataset"]["name"]}
    assert set(df["run_id"]) == {meta["run_id"]}
    # what decides the arithmetic: the settings, the libraries and their builds, the variables
    assert meta["arithmetic"] == {"precisions": ["highest"], "grad_layouts": ["tuned"]}
    assert set(df["precision"]) == {"highest"} and set(df["grad_layout"]) == {"tuned"}
    software = meta["software"]
    assert software["packages"]["jax"] == meta["jax"] and "jaxlib" in software["packages"]
    assert "jax:" in software["jax_environment"]
    if software["torch"] is not None:
        assert software["torch"]["build"] in ("cpu", "cuda") and software["torch"]["version"]
    assert meta["env"]["NVIDIA_TF32_OVERRIDE"] == "0" and meta["env"]["TORCH_LOGS"] == "-dynamo"

    # results.csv: one line per configuration, layer sizes written like 784,10 in one field
    import csv

    with (out / "results.csv").open(newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert len(csv_rows) == 2
    assert {row["layer_sizes"] for row in csv_rows} == {"784,10"}
    assert list(csv_rows[0]) == list(df.columns)
    assert "samples_s" not in csv_rows[0]


def test_run_reports_progress_and_summary(plain_run):
    _, r = plain_run
    assert "2 configurations to run" in r.stderr
    assert "2 ok, 0 error, 0 timeout" in r.stderr


def test_config_file(tmp_path):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(
        'variants = ["jit"]\n'
        "batch_sizes = [32]\n"
        'layers = ["784,10"]\n'
        'kernels = ["update"]\n'
        'backends = "cpu"\n'
        "no_peaks = true\n"
        "quiet = true\n"
        'preset = "quick"\n'
    )
    out = tmp_path / "run"
    r = bench_run("--config", str(cfg), "--out", str(out))
    assert r.returncode == 0, r.stderr
    df = bench.load(out)
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["variant"], row["kernel"], row["layer_sizes"], row["batch_size"]) == (
        "jit",
        "update",
        "784,10",
        32,
    )
    assert row["status"] == "ok"
    meta = bench.load_metadata(out)
    assert meta["preset"] == "quick" and meta["peaks"] == {}


def test_config_file_with_an_unknown_key_is_refused(tmp_path):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text('variants = ["jit"]\nbatch_sizez = [32]\n')
    r = bench_run("--config", str(cfg), "--out", str(tmp_path / "run"))
    assert r.returncode == 2
    assert "batch_sizez" in r.stderr and "Traceback" not in r.stderr


# --- failing configurations -------------------------------------------------------------------


def faulty_sweep(tmp_path: Path, fault: str, *extra: str):
    """vmap (faulty) then jit (healthy), update only: the sweep must go on past vmap."""
    out = tmp_path / "run"
    r = bench_run(
        *TINY,
        *CPU,
        "--variants",
        "vmap,jit",
        "--kernels",
        "update",
        *extra,
        "--out",
        str(out),
        env=bench_env(MNIST_BENCH_INJECT_FAULT=f"{fault}:vmap"),
    )
    assert r.returncode == 0, r.stderr
    lines = [json.loads(ln) for ln in jsonl_lines(out)]
    assert [row["variant"] for row in lines] == ["vmap", "jit"]  # the fault came first
    rows = by_variant(out)
    assert rows["jit"]["status"] == "ok" and rows["jit"]["step_median_s"] > 0
    assert set(bench.load(out)["variant"]) == {"vmap", "jit"}  # the CSV has both
    return rows["vmap"], r


def test_a_configuration_that_raises_is_an_error_row(tmp_path):
    row, r = faulty_sweep(tmp_path, "raise")
    assert row["status"] == "error"
    assert "RuntimeError" in row["error"] and "fault injected" in row["error"]
    assert "inject_fault" in row["traceback"]
    assert "1 ok, 1 error" in r.stderr


def test_a_configuration_that_crashes_is_an_error_row(tmp_path):
    row, r = faulty_sweep(tmp_path, "crash")
    assert row["status"] == "error"
    assert "exited with code 3" in row["error"]
    assert "1 ok, 1 error" in r.stderr


def test_a_configuration_that_hangs_is_a_timeout_row(tmp_path):
    started = time.monotonic()
    row, r = faulty_sweep(tmp_path, "hang", "--timeout", "5")
    assert row["status"] == "timeout"
    assert "--timeout 5" in row["error"]
    assert "1 ok, 0 error, 1 timeout" in r.stderr
    assert time.monotonic() - started < 120  # the hang was cut short, not waited out


# --- resume -----------------------------------------------------------------------------------

RESUME_ARGS = [
    "--quick",
    "--quiet",
    "--variants",
    "jit",
    "--kernels",
    "update,predict",
    "--layers",
    "784,10",
    "--batch-sizes",
    "8,16,32",
    "--no-peaks",
    *CPU,
]


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(d.name))
    return found


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def kill_sweep(proc: subprocess.Popen) -> None:
    """SIGKILL the sweep and its workers (they run in sessions of their own)."""
    os.killpg(proc.pid, signal.SIGSTOP)  # no new worker can start while we look
    workers = child_pids(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for pid in workers:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    while not all(gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_killed_run_resumes_to_the_same_rows(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", *RESUME_ARGS, "--out", str(out)],
        cwd=ROOT,
        env=bench_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    results = out / "results.jsonl"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if results.exists() and len(jsonl_lines(out)) >= 2:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            kill_sweep(proc)
    before = jsonl_lines(out)
    assert 2 <= len(before) < 6, "the sweep was not interrupted half way"
    before_ids = [json.loads(ln)["config_id"] for ln in before]

    r = bench_run("--resume", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert f"{6 - len(before)} configurations to run ({len(before)} already done" in r.stderr

    meta = bench.load_metadata(out)
    kind = meta["backends"]["cpu"]["device_kind"]
    planned = {
        schema.config_id(
            {
                "framework": "jax",
                "variant": "jit",
                "kernel": kernel,
                "backend": "cpu",
                "device_kind": kind,
                "n_processes": 1,
                "n_devices": 1,
                "layer_sizes": "784,10",
                "batch_size": batch,
                "dtype": "float32",
            }
        )
        for kernel in ("update", "predict")
        for batch in (8, 16, 32)
    }
    assert meta["configurations"] == len(planned) == 6
    after = jsonl_lines(out)
    after_ids = [json.loads(ln)["config_id"] for ln in after]
    assert set(after_ids) == planned
    assert sorted(after_ids) == sorted(planned), "a configuration ran twice"
    assert after[: len(before)] == before  # the rows done before the kill are kept as they were
    for line, cid in zip(before, before_ids, strict=True):
        assert after.count(line) == 1 and after_ids.count(cid) == 1
    df = bench.load(out)
    assert len(df) == 6 and (df["status"] == "ok").all()
    assert set(df["run_id"]) == {meta["run_id"]}
    assert len(meta.get("resumed", [])) == 1


def test_resume_after_a_torn_last_line(plain_run, tmp_path):
    """A kill in the middle of a write leaves half a line: resuming must redo that row and
    leave a file every line of which is a row."""
    source, _ = plain_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    lines = jsonl_lines(out)
    assert len(lines) == 2
    (out / "results.jsonl").write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    r = bench_run("--resume", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "1 configurations to run (1 already done" in r.stderr
    after = jsonl_lines(out)
    assert after[0] == lines[0]
    rows = [json.loads(ln) for ln in after]  # every line is whole JSON
    assert sorted(row["kernel"] for row in rows) == ["predict", "update"]
    df = bench.load(out)
    assert sorted(df["kernel"]) == ["predict", "update"] and (df["status"] == "ok").all()


def test_resume_of_a_finished_run_runs_nothing(plain_run, tmp_path):
    source, _ = plain_run
    out = tmp_path / "run"
    shutil.copytree(source, out)
    before = (out / "results.jsonl").read_text()
    r = bench_run("--resume", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "0 configurations to run (2 already done" in r.stderr
    assert (out / "results.jsonl").read_text() == before


# --- backends and flags -----------------------------------------------------------------------


def test_a_missing_backend_is_skipped_with_a_reason(plain_run):
    out, r = plain_run  # --backends cpu,tpu; exit 0 checked by the fixture
    meta = bench.load_metadata(out)
    skipped = {s["what"]: s["reason"] for s in meta["skipped"]}
    assert skipped.get("backend tpu"), meta["skipped"]
    assert "backend cpu" not in skipped
    assert set(meta["backends"]) == {"cpu"}
    assert meta["requested_backends"] == "cpu,tpu"
    df = bench.load(out)
    assert set(df["backend"]) == {"cpu"} and (df["status"] == "ok").all()
    assert "notice: backend tpu" in r.stderr


def test_only_missing_backends_exit_2(tmp_path):
    out = tmp_path / "run"
    r = bench_run(*TINY, "--variants", "jit", "--backends", "tpu", "--out", str(out))
    assert r.returncode == 2
    assert "none of the backends tpu is present" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (out / "results.jsonl").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--variants", "jit,nope"], "--variants nope: unknown; pick from"),
        (["--layers", "100,10"], "must start with 784"),
        (["--layers", "784,x,10"], "write integers separated by commas"),
        (["--kernels", "backward"], "--kernels backward: unknown"),
        (["--depths", "1", "--width", "0"], "argument --width: 0 must be positive"),
        (["--scan-steps", "-3"], "argument --scan-steps: -3 must be positive"),
        (["--members", "-1"], "argument --members: -1 must be positive"),
        (["--timeout", "-5"], "argument --timeout: -5 must be positive"),
        (["--timeout", "0"], "argument --timeout: 0 must be positive"),
    ],
)
def test_bad_flags_exit_2_with_a_message(tmp_path, flags, message):
    out = tmp_path / "run"
    r = bench_run("--quick", "--no-peaks", *flags, "--out", str(out))
    assert r.returncode == 2
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (out / "results.jsonl").exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "metadata.json").write_text("{bad"), "metadata.json: not valid JSON"),
        (
            lambda d: (d / "metadata.json").write_text('{"schema_version": 1}'),
            "metadata.json: no run_id",
        ),
        (
            lambda d: (d / "results.jsonl").write_text(
                "garbage\n" + (d / "results.jsonl").read_text()
            ),
            "results.jsonl:1: not valid JSON",
        ),
    ],
)
def test_a_damaged_run_directory_is_refused_by_resume_and_report(
    plain_run, tmp_path, damage, message
):
    out, _ = plain_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns(".lock"))
    damage(copy)
    for args in (["run", "--resume", str(copy)], ["report", str(copy)]):
        r = run_bench(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_resume_refuses_flags_that_would_change_the_run(plain_run):
    out, _ = plain_run
    before = (out / "results.jsonl").read_text()
    r = bench_run("--resume", str(out), "--variants", "vmap", "--batch-sizes=64")
    assert r.returncode == 2, r.stderr
    assert "--variants --batch-sizes would change it" in r.stderr and "Traceback" not in r.stderr
    assert (out / "results.jsonl").read_text() == before


def test_an_out_dir_with_results_needs_resume(plain_run):
    out, _ = plain_run
    before = (out / "results.jsonl").read_text()
    r = bench_run(*TINY, *CPU, "--variants", "jit", "--out", str(out))
    assert r.returncode == 2
    assert "already holds results" in r.stderr and f"--resume {out}" in r.stderr
    assert (out / "results.jsonl").read_text() == before  # nothing touched


def test_dry_run_lists_without_running():
    r = bench_run("--quick", "--variants", "jit,scan", "--kernels", "update,predict", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "scan predict" in r.stdout and "left out" in r.stdout


def test_default_preset_covers_the_product_and_scan_steps_shrink_at_large_batches():
    from bench import catalog
    from bench import selection as plan

    backends = {"cpu": {"device_kind": "cpu", "device_count": 1}}
    specs, _ = plan.expand(plan.preset("default"), backends=backends)
    variants = {s["variant"] for s in specs}
    assert set(catalog.ALL_VARIANTS) <= variants
    assert {s["n_devices"] for s in specs} == {1, 2, 4}
    assert {s["batch_size"] for s in specs} >= {1, 32, 128, 1024, 4096}
    steps = {
        s["batch_size"]: s["options"]["steps"]
        for s in specs
        if s["variant"] == "scan" and s["kernel"] == "update"
    }
    assert steps[128] == 8 and steps[1024] == 8 and steps[4096] == 2
    # an explicit --scan-steps wins at every batch size
    specs, _ = plan.expand(
        plan.preset("default"), backends=backends, options={"scan": {"steps": 3}}
    )
    assert {
        s["options"]["steps"] for s in specs if s["variant"] == "scan" and s["kernel"] == "update"
    } == {3}


def test_repeats_pool_the_fastest_passes_and_keep_every_pass(tmp_path):
    out = tmp_path / "run"
    r = bench_run(
        *TINY, "--variants", "jit", "--kernels", "update", "--repeats", "3", "--out", str(out)
    )
    assert r.returncode == 0, r.stderr
    rows = rundir.read_rows(out / "results.jsonl")
    passes = [json.loads(ln) for ln in (out / "repeats.jsonl").read_text().splitlines()]
    assert len(passes) == 3 * len(rows)
    for row in rows:
        mine = [p for p in passes if p["config_id"] == row["config_id"]]
        assert sorted(p["pass"] for p in mine) == [0, 1, 2]
        assert all(p["schema_version"] == schema.SCHEMA_VERSION for p in mine)
        assert row["repeats"] == 3 and len(row["pass_medians_s"]) == 3
        fastest = min(row["pass_medians_s"])
        assert all(row["pass_medians_s"][i] <= 1.05 * fastest for i in row["passes_kept"])
        kept_samples = sum(len(mine[i]["samples_s"]) for i in row["passes_kept"])
        assert len(row["samples_s"]) == kept_samples
    bad = bench_run(*TINY, "--repeats", "0", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "1 or more" in bad.stderr


def test_the_better_of_two_peak_measurements_is_kept_and_rows_follow(tmp_path):
    from bench.results import rows
    from bench.runner import probe

    start = {"cpu": {"float32": {"matmul_flops_per_s": 1e11, "bandwidth_bytes_per_s": 3e10}}}
    end = {"cpu": {"float32": {"matmul_flops_per_s": 2e11, "bandwidth_bytes_per_s": 2e10}}}
    best = probe.best_peaks(start, end)
    assert best["cpu"]["float32"] == {"matmul_flops_per_s": 2e11, "bandwidth_bytes_per_s": 3e10}
    assert start["cpu"]["float32"]["matmul_flops_per_s"] == 1e11  # inputs untouched
    row = {
        "status": "ok",
        "backend": "cpu",
        "dtype": "float32",
        "n_devices": 1,
        "batch_size": 128,
        "step_median_s": 1e-3,
        "flops": 1.5e8,
        "bytes_accessed": 1e6,
        "layer_sizes": "784,10",
        "kernel": "update",
        "schema_version": schema.SCHEMA_VERSION,
    }
    out = bench.RunDir(tmp_path)
    out.append(rows.derive(dict(row), start))
    out.append_pass(rows.derive(dict(row), start), 0)
    assert out.rows()[0]["peak_fraction"] == pytest.approx(1.5)
    out.rederive(best)
    assert out.rows()[0]["peak_fraction"] == pytest.approx(0.75)
    assert json.loads(out.repeats.read_text())["peak_fraction"] == pytest.approx(0.75)
