"""What several test modules share: the repository's paths, the environment and command line of a
``python -m bench`` subprocess, tiny selections, synthetic result rows and run directories, and
small fake MNIST-style datasets written as IDX files (for tests that must not need the real ones).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.protocol import ENV_FAULT_PROCESS, FAULT_ENV
from bench.results import schema
from mnist_kernels.data import FILES, write_idx

ROOT = Path(__file__).resolve().parent.parent
#: set to 1 (by `nox -s tests` once the peers extra installed, or by CI) when PyTorch must be
#: importable: the PyTorch tests then fail instead of skipping
REQUIRE_PEERS_ENV = "MNIST_BENCH_REQUIRE_PEERS"


def require_torch() -> Any:
    """``torch``, or skip the test where PyTorch is not installed and not required."""
    if os.environ.get(REQUIRE_PEERS_ENV) == "1":
        import torch  # an ImportError fails the test: the peers were meant to be installed

        return torch
    import pytest

    return pytest.importorskip(
        "torch", reason=f"PyTorch is not installed (with {REQUIRE_PEERS_ENV}=1 this fails)"
    )


FIXTURES = Path(__file__).resolve().parent / "fixtures"

# --- bench in a subprocess ---------------------------------------------------------------------


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of a ``python -m bench`` subprocess: this tree first on the path, no
    device count of the test process's own, no injected fault unless asked."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", FAULT_ENV, ENV_FAULT_PROCESS)
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def run_bench(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 240
) -> subprocess.CompletedProcess:
    """``python -m bench ARGS...``, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=cwd,
        env=env or bench_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


#: the smallest sweep worth running: logistic regression at batch 32, no peaks.
TINY = ["--quick", "--quiet", "--layers", "784,10", "--batch-sizes", "32", "--no-peaks"]


# --- synthetic rows and run directories --------------------------------------------------------


def noise(seed: int, n: int = 30, scale: float = 1.0, sigma: float = 0.05) -> list[float]:
    """``n`` lognormal step times around ``scale`` ms (seconds)."""
    rng = np.random.default_rng(seed)
    return list(scale * 1e-3 * rng.lognormal(0.0, sigma, n))


def pass_medians(seed: int, n: int = 3, scale: float = 1.0, sigma: float = 0.01) -> list[float]:
    """``n`` pass medians around ``scale`` ms (seconds): processes that agree to about
    ``sigma``."""
    rng = np.random.default_rng(1000 + seed)
    return list(scale * 1e-3 * rng.lognormal(0.0, sigma, n))


def make_row(
    variant: str = "jit",
    kernel: str = "update",
    samples: list[float] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A finished ``ok`` row of ``results.jsonl`` with ``samples`` (default: 30 around 1 ms)."""
    samples = noise(0) if samples is None else samples
    row = {
        "schema_version": 1,
        "run_id": "r",
        "framework": "jax",
        "variant": variant,
        "kernel": kernel,
        "backend": "cpu",
        "device_kind": "cpu",
        "n_processes": 1,
        "n_devices": 1,
        "layer_sizes": "784,10",
        "batch_size": 128,
        "dtype": "float32",
        "steps_per_call": 1,
        "status": "ok",
        "error": None,
        "samples_s": samples,
        "step_median_s": float(np.median(samples)) if samples else None,
        "n_samples": len(samples),
        "trace_s": 0.01,
        "lower_s": 0.02,
        "compile_s": 0.1,
        "recompiles": 0,
        "xla_flops": 1_000_000.0,
        "bytes_accessed": 400_000.0,
        "peak_memory_bytes": 100_000,
        "hlo_ops": 40,
        "hlo_fusions": 5,
    }
    row.update(overrides)
    row["config_id"] = schema.config_id(row)
    return row


def write_run(
    path: Path,
    rows: list[dict[str, Any]],
    *,
    fingerprint: str = "fp-box-a",
    host: str = "box-a",
    schema_version: int = 1,
    meta: dict[str, Any] | None = None,
) -> Path:
    """A run directory holding ``rows`` and a small ``metadata.json`` (``meta`` replaces it)."""
    path.mkdir(parents=True)
    if meta is None:
        meta = {
            "schema_version": schema_version,
            "run_id": path.name,
            "host": host,
            "hardware_fingerprint": fingerprint,
            "cpu": {"model": f"{host} CPU", "cores": 4},
            "backends": {"cpu": {"device_kind": "cpu", "device_count": 4}},
        }
    (path / "metadata.json").write_text(json.dumps(meta))
    with (path / "results.jsonl").open("w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- fake datasets -----------------------------------------------------------------------------


def fake_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random uint8 images ``(n, 28, 28)`` and labels ``(n,)`` covering 0..9."""
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    rng.shuffle(labels)
    return images, labels


def write_fake_dataset(
    directory: Path, n_train: int = 50, n_test: int = 20, seed: int = 0, gz: bool = True
) -> dict[str, Path]:
    """Write the four files of :data:`FILES` (gzipped, or under the names without ``.gz``).

    Returns:
        Each canonical file name (``...-ubyte.gz``) -> the path written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    train, test = fake_split(n_train, seed), fake_split(n_test, seed + 1)
    arrays = [train[0], train[1], test[0], test[1]]
    paths = {}
    for name, array in zip(FILES, arrays, strict=True):
        path = directory / (name if gz else name.removesuffix(".gz"))
        write_idx(path, array)
        paths[name] = path
    return paths


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the model, independently ---------------------------------------------------------------


def numpy_forward(params, x):
    """The model written out independently in NumPy: every layer's activations (the input
    first) and the log-probabilities."""
    acts = [x]
    for w, b in params[:-1]:
        acts.append(np.tanh(acts[-1] @ w + b))
    z = acts[-1] @ params[-1][0] + params[-1][1]
    z = z - z.max(1, keepdims=True)
    return acts, z - np.log(np.exp(z).sum(1, keepdims=True))


def numpy_update(params, x, y, lr):
    """One SGD step of the model with the backward pass written by hand in NumPy."""
    acts, logp = numpy_forward(params, x)
    dz = (np.exp(logp) - y) / x.shape[0]
    grads = []
    for i in range(len(params) - 1, -1, -1):
        w, _ = params[i]
        grads.append((acts[i].T @ dz, dz.sum(0)))
        if i:
            dz = (dz @ w.T) * (1 - acts[i] ** 2)
    grads.reverse()
    return [(w - lr * dw, b - lr * db) for (w, b), (dw, db) in zip(params, grads, strict=True)]
