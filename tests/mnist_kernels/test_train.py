"""The training command: reference figures, synthetic learning, clear errors."""

import json
from pathlib import Path

import pytest

from mnist_kernels import train

FASHION = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def _epochs(capsys, argv):
    assert train.main([*argv, "--json"]) == 0
    return [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]


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
