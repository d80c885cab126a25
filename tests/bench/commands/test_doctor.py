"""`bench doctor` and `bench run` on this machine as it is, and with a fake ``nvidia-smi`` on
``PATH`` (a GPU the installed JAX cannot use: the doctor fails with the install command, the run
exits 2 unless it is told to measure the CPU alone)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import bench
from bench.runner import sweep
from tests.helpers import TINY, bench_env, run_bench

FAKE_SMI = """#!/bin/sh
# NVIDIA's tool as an H200 node with a CUDA 13 driver answers it
case "$1" in
  --query-gpu=name,driver_version) echo "NVIDIA H200, 580.65.06";;
  --query-gpu=*) echo "143771";;
  *) echo "| NVIDIA-SMI 580.65.06   Driver Version: 580.65.06   CUDA Version: 13.0 |";;
esac
"""


@pytest.fixture
def fake_gpu_env(tmp_path: Path) -> dict[str, str]:
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    env = bench_env()
    env["PATH"] = f"{smi.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def doctor_json(env: dict[str, str]) -> tuple[int, dict]:
    r = run_bench("doctor", "--json", env=env)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout)


def skip_if_jax_has_a_gpu(found: dict) -> None:
    if "error" not in found["backends"].get("gpu", {"error": ""}):
        pytest.skip("the installed JAX has a GPU backend here: no GPU it cannot use")


def test_doctor_reports_this_machine_and_exits_by_its_problems():
    code, found = doctor_json(bench_env())
    assert code == (1 if any(p["severity"] == "error" for p in found["problems"]) else 0)
    assert found["versions"]["jax"] and found["versions"]["jaxlib"] and found["versions"]["python"]
    assert "error" not in found["backends"]["cpu"]
    assert set(found["backends"]) == {"cpu", "gpu", "tpu"}
    assert found["accelerator"]["install"].startswith("pip install -e")
    text = run_bench("doctor").stdout
    assert text.startswith("hardware:") and "backend cpu:" in text and "versions:" in text


def test_doctor_with_a_gpu_jax_cannot_use_says_how_to_install_its_build(fake_gpu_env):
    code, found = doctor_json(fake_gpu_env)
    skip_if_jax_has_a_gpu(found)
    assert code == 1
    assert found["hardware"]["nvidia"]["names"] == ["NVIDIA H200"]
    assert found["accelerator"]["choice"] == "cuda13"
    fixes = [p["fix"] for p in found["problems"] if p["severity"] == "error"]
    assert any(f.startswith("pip install -e '.[cuda13]'") for f in fixes), found["problems"]
    text = run_bench("doctor", env=fake_gpu_env).stdout
    assert "error: this machine has 1 NVIDIA GPU(s) (NVIDIA H200)" in text
    assert "fix: pip install -e '.[cuda13]'" in text


def test_run_on_a_gpu_jax_cannot_use_exits_2_with_the_install_command(fake_gpu_env, tmp_path):
    out = tmp_path / "run"
    r = run_bench("run", *TINY, "--variants", "jit", "--out", str(out), env=fake_gpu_env)
    if r.returncode == 0:
        found = bench.load_metadata(out)["doctor"]
        skip_if_jax_has_a_gpu(found)
    assert r.returncode == 2, r.stderr
    assert "no gpu backend" in r.stderr and "pip install -e '.[cuda13]'" in r.stderr
    assert "--backends cpu" in r.stderr and "Traceback" not in r.stderr
    assert not (out / "results.jsonl").exists()


def test_run_told_to_measure_the_cpu_says_the_gpu_is_left_out(fake_gpu_env, tmp_path):
    out = tmp_path / "run"
    r = run_bench(
        "run", *TINY, "--variants", "jit", "--kernels", "update", "--backends", "cpu",
        "--out", str(out), env=fake_gpu_env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "notice: backend gpu: not asked for: this machine has 1 NVIDIA GPU(s)" in r.stderr
    meta = bench.load_metadata(out)
    assert meta["doctor"]["hardware"]["backend"] == "gpu"
    assert meta["doctor"]["accelerator"]["choice"] == "cuda13"
    assert set(meta["backends"]) == {"cpu"}
    assert any(s["what"] == "backend gpu" for s in meta["skipped"])


def test_every_missing_backend_is_said(capsys):
    sweep._notices(
        [
            {"what": "backend gpu", "reason": "no gpu"},
            {"what": "backend tpu", "reason": "no tpu"},
            {"what": "torch-eager", "reason": "PyTorch is not installed"},
            {"what": "torch-compile", "reason": "PyTorch is not installed"},
        ]
    )
    err = capsys.readouterr().err
    assert "backend gpu: no gpu" in err and "backend tpu: no tpu" in err
    assert err.count("PyTorch is not installed") == 1
