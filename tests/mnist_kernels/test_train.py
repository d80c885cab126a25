"""The training command: held epoch by epoch against the notebook's loop written out here in
NumPy, reference figures, synthetic learning, clear errors."""

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest

from mnist_kernels import train
from tests.helpers import numpy_forward, numpy_update, write_fake_dataset

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def _epochs(capsys, argv):
    assert train.main([*argv, "--json"]) == 0
    return [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]


def notebook_loop(layers, train, test, epochs, batch_size, lr):
    """The seed notebook's training, independently: its init, its data order (one permutation
    per epoch from one ``RandomState(0)``, consecutive slices, the last one short), the model and
    its SGD step by hand in float64 NumPy (:func:`tests.helpers.numpy_update`). Yields each
    epoch's (train, test) accuracy and the parameters."""
    rng = np.random.RandomState(0)
    params = [(0.1 * rng.randn(m, n), 0.1 * rng.randn(n)) for m, n in itertools.pairwise(layers)]
    perm_rng = np.random.RandomState(0)
    (x, y), n = train, len(train[0])

    def accuracy(params, xs, ys):
        return float(np.mean(numpy_forward(params, xs)[1].argmax(1) == ys.argmax(1)))

    for _ in range(epochs):
        perm = perm_rng.permutation(n)
        for i in range(-(-n // batch_size)):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            params = numpy_update(params, x[idx].astype(np.float64), y[idx], lr)
        yield accuracy(params, *train), accuracy(params, *test), params


@pytest.mark.parametrize("variant", ["jit", "scan"])
def test_the_command_is_the_notebook_loop_epoch_by_epoch(capsys, tmp_path, variant):
    from mnist_kernels import data

    write_fake_dataset(tmp_path / "data", n_train=1000, n_test=200)
    layers, epochs, lr = [784, 32, 10], 3, 0.05
    saved = tmp_path / "params.npz"
    argv = ["--dataset", "mnist", "--data-dir", str(tmp_path / "data"), "--layers", "784,32,10"]
    argv += ["--epochs", str(epochs), "--lr", str(lr), "--variant", variant]
    got = _epochs(capsys, [*argv, "--save-params", str(saved)])
    train_x, train_y, test_x, test_y = data.load_dataset("mnist", tmp_path / "data")
    want = list(notebook_loop(layers, (train_x, train_y), (test_x, test_y), epochs, 128, lr))
    assert len(got) == epochs
    assert got[-1]["train_accuracy"] > got[0]["train_accuracy"]  # it learns: a real check
    for epoch, (g, (train_acc, test_acc, _)) in enumerate(zip(got, want, strict=True)):
        # float32 against float64: a near-tie may flip one example
        assert abs(g["train_accuracy"] - train_acc) <= 1 / 1000, epoch
        assert abs(g["test_accuracy"] - test_acc) <= 1 / 200, epoch
    final = np.load(saved)
    for i, (w, b) in enumerate(want[-1][2]):
        np.testing.assert_allclose(final[f"w{i}"], w, rtol=0, atol=2e-5)
        np.testing.assert_allclose(final[f"b{i}"], b, rtol=0, atol=2e-5)


def test_synthetic_is_learned(capsys):
    out = _epochs(
        capsys, ["--dataset", "synthetic", "--layers", "784,10", "--epochs", "2", "--lr", "0.05"]
    )
    assert out[-1]["test_accuracy"] >= 0.95


@pytest.mark.dataset
@pytest.mark.skipif(
    not FASHION.exists(), reason="Fashion-MNIST absent: apt-get install dataset-fashion-mnist"
)
@pytest.mark.parametrize("variant", ["jit", "scan"])
def test_fashion_mnist_reference_accuracy(capsys, variant):
    out = _epochs(capsys, ["--layers", "784,10", "--epochs", "1", "--variant", variant])
    assert out[0]["test_accuracy"] == pytest.approx(0.4321, abs=0.01)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--layers", "100,10"], "must start with 784"),
        (["--layers", "784,9"], "end with 10"),
        (["--epochs", "0"], "must be positive"),
        (["--batch-size", "-1"], "must be positive"),
        (["--lr", "0"], "must be positive"),
        (["--dataset", "cifar"], "unknown; use one of mnist, fashion-mnist, synthetic"),
        (["--dataset", "synthetic", "--batch-size", "1000000"], "larger than the training set"),
    ],
)
def test_bad_input_is_a_clear_error(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        train.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "where", "message"),
    [
        ("--save-params", "a-file/p.npz", "a-file is a file, not a directory"),
        ("--plot-weights", "a-file/sub/w.png", "a-file is a file, not a directory"),
        ("--save-params", "missing/p.npz", "the directory missing does not exist"),
        ("--plot-weights", ".", "is a directory; name a file"),
    ],
)
def test_an_output_that_cannot_be_written_is_refused_before_training(
    capsys, tmp_path, monkeypatch, flag, where, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("x")
    trained = []
    monkeypatch.setattr(train, "train_epoch", lambda *a, **k: trained.append(1))
    with pytest.raises(SystemExit) as exc:
        train.main(["--dataset", "synthetic", "--epochs", "1", "--variant", "scan", flag, where])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not trained


def test_a_failed_save_after_training_writes_elsewhere_and_says_where(capsys, tmp_path):
    target = tmp_path / "p.npz"

    def write(path):
        if str(path) == str(target):
            raise OSError(28, "No space left on device")
        np.savez(path, w0=np.ones(3))

    assert train._save(str(target), ".npz", write) == 1
    err = capsys.readouterr().err
    assert f"could not write {target} (No space left on device); wrote " in err
    fallback = err.strip().rsplit("wrote ", 1)[1]
    assert np.load(fallback)["w0"].tolist() == [1.0, 1.0, 1.0]
    os.unlink(fallback)


def test_damaged_dataset_files_are_one_clear_error(capsys, tmp_path):
    paths = write_fake_dataset(tmp_path / "data")
    first = next(iter(paths.values()))
    first.write_bytes(b"\x1f\x8b not really gzip")
    code = train.main(["--dataset", "mnist", "--data-dir", str(tmp_path / "data"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) <= 2, err
    assert "Traceback" not in err
