"""What a user can get wrong before a run measures anything, end to end: `--config` values
its flags would refuse, a selection that leaves nothing to run, data that was named but cannot
be read. Each is an exit 2 with a message, nothing created, no traceback."""

import pytest

from bench import selection
from bench.runner import sweep
from tests.helpers import TINY, run_bench

CPU = ["--backends", "cpu"]


def bench_run(*args: str):
    return run_bench("run", *args)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("layers = 784\n", 'layers = 784: 784: write layer sizes like "784,10"'),
        ('layers = ["784,x"]\n', "write integers separated by commas"),
        ('timeout = "abc"\n', "timeout = 'abc': 'abc' is not a float"),
        ("timeout = -5\n", "timeout = -5: -5 must be positive"),
        ("repeats = 0\n", "repeats = 0: '0': give a whole number of passes, 1 or more"),
        ("width = 0\n", "width = 0: 0 must be positive"),
        ("members = -1\n", "members = -1: -1 must be positive"),
        ('batch_sizes = "x"\n', "batch_sizes = 'x': 'x': write integers"),
        ("quiet = 1\n", "quiet = 1: 1: write true or false"),
        ('preset = "fast"\n', "preset = 'fast': 'fast': one of"),
        ("variants = [{a = 1}]\n", "write a list of names or numbers"),
    ],
)
def test_a_config_value_its_flag_refuses_exits_2_before_anything_is_made(tmp_path, text, message):
    """Each key is read with its flag's rules (the same messages), before the probe or the run
    directory: a TOML value of the wrong type is not a traceback halfway through."""
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(text)
    out = tmp_path / "run"
    r = bench_run("--config", str(cfg), "--out", str(out), "--quick")
    assert r.returncode == 2, r.stderr
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_a_config_value_is_read_as_its_flag_would_read_it(tmp_path):
    cfg = tmp_path / "sweep.toml"
    cfg.write_text('batch_sizes = "32,64"\nlayers = [[784, 10]]\ndevices = [1]\n')
    r = bench_run("--config", str(cfg), "--quick", "--variants", "jit", "--dry-run", *CPU)
    assert r.returncode == 0, r.stderr
    assert "784,10" in r.stdout and "b=32" in r.stdout and "b=64" in r.stdout


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--variants", "jit", "--devices", "2"], "jit runs on one device; --devices 2 applies"),
        (
            ["--variants", "sharded", "--devices", "3", "--batch-sizes", "32"],
            "batch_size 32 is not divisible by 3 data-parallel groups",
        ),
    ],
)
def test_a_selection_that_leaves_nothing_exits_2_saying_why_and_makes_nothing(
    tmp_path, flags, reason
):
    out = tmp_path / "run"
    r = bench_run("--quick", "--no-peaks", *CPU, *flags, "--out", str(out))
    assert r.returncode == 2, r.stderr
    assert "the selection leaves no configuration to run" in r.stderr
    assert reason in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()


def test_data_the_user_named_that_cannot_be_read_is_an_error(tmp_path):
    from tests.helpers import write_fake_dataset

    paths = write_fake_dataset(tmp_path / "data")
    next(iter(paths.values())).write_bytes(b"\x1f\x8b damaged")
    out = tmp_path / "run"
    r = bench_run(*TINY, *CPU, "--dataset", "mnist", "--data-dir", str(tmp_path / "data"),
                  "--out", str(out))  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "--dataset mnist --data-dir" in r.stderr and "corrupt gzip stream" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_a_dataset_nobody_named_falls_back_to_synthetic_and_says_so(monkeypatch, capsys):
    from mnist_kernels import data

    def missing(*args, **kwargs):
        raise data.DatasetNotFoundError("fashion-mnist: looked in /nowhere")

    monkeypatch.setattr(data, "load_dataset", missing)
    sweep._check_dataset(selection.Selection(grids=()))
    assert (
        "notice: fashion-mnist is not here (fashion-mnist: looked in /nowhere); measuring "
        "synthetic batches" in capsys.readouterr().err
    )
    named = selection.Selection(grids=(), dataset="mnist", dataset_named=True)
    with pytest.raises(sweep.SweepError, match="--dataset mnist: fashion-mnist: looked in"):
        sweep._check_dataset(named)
