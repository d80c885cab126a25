"""`python -m mnist_kernels.train`: the notebook's training loop as a command.

Same data order as the notebook: one ``RandomState(seed)`` permutation per epoch, consecutive
``batch_size`` slices, the last batch short.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from . import argtypes, data, model
from .epoch import train_epoch


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mnist_kernels.train", description=__doc__)
    p.add_argument("--layers", type=argtypes.layers, default=[784, 1024, 1024, 10])
    p.add_argument("--epochs", type=argtypes.positive_int, default=10)
    p.add_argument("--batch-size", type=argtypes.positive_int, default=128)
    p.add_argument("--lr", type=argtypes.positive_float, default=0.001)
    p.add_argument("--dataset", default="fashion-mnist", help="mnist, fashion-mnist or synthetic")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", default="jit", choices=["jit", "scan"])
    p.add_argument("--json", action="store_true", help="one JSON object per epoch")
    p.add_argument("--save-params", metavar="FILE.npz")
    p.add_argument("--plot-weights", metavar="FILE.png")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    known = ("mnist", "fashion-mnist", "synthetic")
    if args.dataset not in known:
        parser.error(f"--dataset {args.dataset!r} is unknown; use one of {', '.join(known)}")
    for flag, path in (("--save-params", args.save_params), ("--plot-weights", args.plot_weights)):
        why = _unwritable(path)
        if why:  # said now, not after the training
            parser.error(f"{flag} {path}: {why}")
    try:
        train_x, train_y, test_x, test_y = data.load_dataset(args.dataset, args.data_dir)
    except (OSError, ValueError) as e:  # missing or damaged files: the loader says which
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = train_x.shape[0]
    if args.batch_size > n:
        parser.error(f"--batch-size {args.batch_size} is larger than the training set ({n})")
    params = model.init_params(args.layers, 0.1, args.seed)
    num_batches = -(-n // args.batch_size)
    perm_rng = np.random.RandomState(0)
    accuracy = jax.jit(model.accuracy)
    if args.variant == "scan":
        # the training set on the device as stored (uint8: a quarter of the bytes)
        dev_x, dev_y = (jax.device_put(a) for a in data.stored_form(train_x, train_y))

        params = jax.device_put(params)
    else:
        step = jax.jit(lambda p, b: model.update(p, b, args.lr), donate_argnums=0)
    for epoch in range(args.epochs):
        perm = perm_rng.permutation(n)
        start = time.perf_counter()
        if args.variant == "scan":
            params = train_epoch(params, dev_x, dev_y, perm, batch_size=args.batch_size, lr=args.lr)
        else:
            try:
                from tqdm import tqdm

                batches = tqdm(range(num_batches), leave=False, disable=args.json or None)
            except ImportError:  # pragma: no cover
                batches = range(num_batches)
            for i in batches:
                idx = perm[i * args.batch_size : (i + 1) * args.batch_size]
                params = step(params, (train_x[idx], train_y[idx]))
        jax.block_until_ready(params)
        epoch_s = time.perf_counter() - start
        train_acc = float(accuracy(params, (train_x, train_y)))
        test_acc = float(accuracy(params, (test_x, test_y)))
        if args.json:
            print(
                json.dumps(
                    {
                        "epoch": epoch,
                        "epoch_s": epoch_s,
                        "train_accuracy": train_acc,
                        "test_accuracy": test_acc,
                    }
                ),
                flush=True,
            )
        else:
            print(f"Epoch {epoch} in {epoch_s:0.2f} sec", flush=True)
            print(f"Training set accuracy {train_acc:.4f}")
            print(f"Test set accuracy {test_acc:.4f}")
    host = [(np.asarray(w), np.asarray(b)) for w, b in jax.device_get(params)]
    code = 0
    if args.save_params:
        arrays = {f"{k}{i}": a for i, (w, b) in enumerate(host) for k, a in (("w", w), ("b", b))}
        code |= _save(args.save_params, ".npz", lambda f: np.savez(f, **arrays))
    if args.plot_weights:
        code |= _save(args.plot_weights, ".png", lambda f: _plot_weights(host[0][0], f))
    return code


def _unwritable(path: str | None) -> str | None:
    """Why ``path`` cannot be written (None when it can, or no path was given)."""
    if not path:
        return None
    target = Path(path)
    if target.is_dir():
        return "is a directory; name a file"
    parent = target.parent
    for above in (parent, *parent.parents):
        if above.exists():
            if not above.is_dir():
                return f"{above} is a file, not a directory"
            break
    if not parent.exists():
        return f"the directory {parent} does not exist"
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        return "not writable by this user"
    return None


def _save(path: str, suffix: str, write) -> int:
    """``write(path)``; when that fails (a full disk, a directory gone during training), the
    same into a temporary file, and say where: a finished training is never lost. 1 then."""
    try:
        write(path)
        return 0
    except OSError as e:
        fd, fallback = tempfile.mkstemp(prefix="mnist-kernels-", suffix=suffix)
        os.close(fd)
        write(fallback)
        print(
            f"error: could not write {path} ({e.strerror or e}); wrote {fallback}", file=sys.stderr
        )
        return 1


def _plot_weights(w: np.ndarray, path: str) -> None:
    """One 28x28 image per class (or per first-layer unit, the first 10, for deeper nets)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 2.2))
    for i in range(min(10, w.shape[1])):
        ax = fig.add_subplot(1, 10, i + 1)
        ax.imshow(w[:, i].reshape(28, 28), cmap="RdBu")
        ax.set_title(str(i))
        ax.axis("off")
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
