"""Small fake MNIST-style datasets written as IDX files, for tests that must not need the real ones."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from mnist_kernels.data import FILES, write_idx


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
