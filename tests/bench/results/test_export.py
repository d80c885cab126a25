"""`python -m bench export`: a run directory as github-action-benchmark's custom JSON and as a
pytest-benchmark save file, checked against those tools' own readers where they are here
(pytest-benchmark's ``compare`` command and ``Stats``), against the action's documented schema
and range syntax, and round-tripped through this repo's own pytest-benchmark reader."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import cli
from bench.regression import sides, verdicts
from bench.results import export, rundir, schema
from bench.results import pytest_benchmark as pb_reader
from tests.helpers import FIXTURES, make_row, noise, run_bench, write_run

#: labels of some of synthetic_rows(): the arithmetic shown where it is not the usual one
LABELS = (
    "scan update 784,10 b128 float32 1dev cpu",
    "jit update 784,10 b4096 float32 stock 1dev cpu",
    "jit update 784,10 b128 float32 tf32 1dev gpu",
    "torch-eager update 784,10 b128 float32 1dev cpu",
    "sharded update 784,10 b128 float32 4dev cpu",
)
REAL_RUN = FIXTURES / "runs" / "before-layers"  # a real run: 3 passes, scan at 8 steps a call
GAB = export.GITHUB_ACTION_BENCHMARK
PB = export.PYTEST_BENCHMARK
#: github-action-benchmark's src/extractRangeInfo.ts: how it reads a range it can rescale.
ACTION_RANGE = re.compile(r"(?P<prefix>(\+-|±)\s*)(?P<value>\d.*)")


def _ok(variant: str = "jit", kernel: str = "update", seed: int = 0, **over) -> dict:
    samples = noise(seed, n=31, scale=1.0 + seed / 10)
    lo, hi = np.percentile(samples, [30, 75])  # an asymmetric interval around the median
    sync = [s * 1.3 for s in noise(seed + 100, n=9, scale=1.0 + seed / 10)]
    row = {
        "step_ci_low_s": float(lo),
        "step_ci_high_s": float(hi),
        "loops_per_sample": 4,
        "sync_samples_s": sync,
        "sync_step_median_s": float(np.median(sync)),
        "cold_compile_s": 0.25 + seed / 100,
        "cold_compile_ci_low_s": 0.24 + seed / 100,
        "cold_compile_ci_high_s": 0.27 + seed / 100,
        "n_compiles": 3,
        **over,
    }
    return make_row(variant, kernel, samples, **row)


def synthetic_rows() -> list[dict]:
    rows = [
        _ok("jit", "update", 0),
        _ok("jit", "predict", 1),
        _ok("scan", "update", 2, steps_per_call=8, loops_per_sample=2),
        _ok("jit", "update", 3, grad_layout="stock", batch_size=4096),
        _ok("jit", "update", 4, precision="tf32", backend="gpu", device_kind="H200"),
        # a run written before compiles were repeated: its phases, no cold_compile_s
        _ok("sharded", "update", 5, n_devices=4, cold_compile_s=None, n_compiles=None),
        # a peer: nothing compiled
        _ok(
            "torch-eager",
            "update",
            6,
            framework="torch",
            cold_compile_s=None,
            compile_s=None,
            trace_s=None,
            lower_s=None,
            grad_layout="stock",
        ),
        make_row(
            "vmap",
            "update",
            [],
            status="error",
            error="XlaRuntimeError: out of memory",
            step_median_s=None,
            n_samples=0,
            layer_sizes="784,1024,1024,10",
        ),
        make_row(
            "sharded_tp",
            "update",
            [],
            status="skipped",
            step_median_s=None,
            error="sharded_tp needs a hidden layer to shard; 784,10 has none",
            n_samples=0,
        ),
    ]
    return rows


def synthetic_run(path: Path, rows: list[dict] | None = None) -> Path:
    meta = {
        "schema_version": 1,
        "run_id": path.name,
        "host": "box-a",
        "hardware_fingerprint": "fp-box-a",
        "python": "3.11.7",
        "jax": "0.10.2",
        "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True},
        "cpu": {"model": "Test CPU 9000", "cores": 4, "memory_bytes": 8 << 30, "arch": "x86_64"},
        "start_time": "2026-01-01T00:00:00+00:00",
        "end_time": "2026-01-01T00:05:00+00:00",
    }
    return write_run(path, synthetic_rows() if rows is None else rows, meta=meta)


def _strict_json(text: str):
    def no_constant(name):
        raise AssertionError(f"{name} in the JSON: not standard JSON")

    return json.loads(text, parse_constant=no_constant)


def _config_id(entry: dict) -> str:
    return re.search(r"config_id: (\w+)", entry["extra"]).group(1)


# --- github-action-benchmark ----------------------------------------------------------------


def test_every_entry_has_the_actions_fields_with_their_types(tmp_path):
    """BenchmarkResult in github-action-benchmark's src/extract.ts: name, unit (str), value
    (number), range and extra (str, optional); nothing else; ranges it can parse and rescale."""
    out = export.export(synthetic_run(tmp_path / "r"), GAB, include=["compile"])
    doc = _strict_json(export.dumps(out.document))
    assert isinstance(doc, list) and doc
    for entry in doc:
        assert (
            {"name", "unit", "value"} <= set(entry) <= {"name", "unit", "value", "range", "extra"}
        )
        assert isinstance(entry["name"], str) and entry["name"]
        assert entry["unit"] == export.GAB_UNIT == "ms"
        assert type(entry["value"]) is float and math.isfinite(entry["value"])
        assert isinstance(entry["extra"], str)
        if "range" not in entry:  # only a compile time summed from its phases has none
            assert entry["name"].startswith("sharded update") and entry["name"].endswith("compile")
            continue
        m = ACTION_RANGE.match(entry["range"])
        assert m, entry["range"]
        assert math.isfinite(float(m.group("value")))  # JS Number() of it is not NaN


def test_values_are_the_step_medians_in_ms_names_unique_and_errors_left_out(tmp_path):
    run = synthetic_run(tmp_path / "r")
    rows = {r["config_id"]: r for r in synthetic_rows()}
    out = export.export(run, GAB)
    names = [e["name"] for e in out.document]
    assert len(names) == len(set(names)) == out.written == 7
    for entry in out.document:
        row = rows[_config_id(entry)]
        assert row["status"] == "ok"
        assert entry["value"] == pytest.approx(row["step_median_s"] * 1e3, rel=1e-12)
        half = max(
            row["step_median_s"] - row["step_ci_low_s"],
            row["step_ci_high_s"] - row["step_median_s"],
        )
        assert float(entry["range"].removeprefix("± ")) == pytest.approx(half * 1e3, rel=1e-5)
        assert "commit: 0123456789abcdef0123456789abcdef01234567 (dirty)" in entry["extra"]
        assert "fp-box-a" in entry["extra"]
    assert sorted(why.split(":")[0] for _, why in out.left_out) == ["error", "skipped"]
    assert any("out of memory" in why for _, why in out.left_out)
    assert set(LABELS) <= set(names)


def test_configurations_with_the_same_label_get_their_config_id(tmp_path):
    """Two rows that differ only in a column the label does not show (device_kind)."""
    a, b = _ok(seed=0), _ok(seed=1, device_kind="another cpu")
    out = export.export(synthetic_run(tmp_path / "r", [a, b]), GAB)
    names = sorted(e["name"] for e in out.document)
    base = "jit update 784,10 b128 float32 1dev cpu"
    assert names == sorted([f"{base} [{a['config_id']}]", f"{base} [{b['config_id']}]"])


def test_include_compile_adds_a_compile_entry_where_there_is_a_compile_time(tmp_path):
    rows = {r["config_id"]: r for r in synthetic_rows()}
    out = export.export(synthetic_run(tmp_path / "r"), GAB, include=["compile"])
    steps = {e["name"]: e for e in out.document if not e["name"].endswith(" compile")}
    compiles = {
        e["name"].removesuffix(" compile"): e
        for e in out.document
        if e["name"].endswith(" compile")
    }
    assert set(compiles) == set(steps) - {"torch-eager update 784,10 b128 float32 1dev cpu"}
    assert any("no compile time" in n for n in out.notes)
    for name, entry in compiles.items():
        row = rows[_config_id(entry)]
        assert _config_id(steps[name]) == row["config_id"]
        cold = row["cold_compile_s"]
        if cold is None:  # the sum of the phases; no interval
            cold = row["trace_s"] + row["lower_s"] + row["compile_s"]
            assert "range" not in entry
        else:
            assert ACTION_RANGE.match(entry["range"])
        assert entry["value"] == pytest.approx(cold * 1e3, rel=1e-12)
    names = [e["name"] for e in out.document]
    assert len(names) == len(set(names))


def test_a_real_run_exports_every_row(tmp_path):
    out = export.export(REAL_RUN, GAB)
    run = rundir.load(REAL_RUN)
    assert out.written == len(run) and not out.left_out
    got = {_config_id(e): e["value"] for e in out.document}
    for cid, median in zip(run.config_id, run.step_median_s, strict=True):
        assert got[cid] == pytest.approx(median * 1e3, rel=1e-12)


# --- pytest-benchmark ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 31])
def test_stats_are_pytest_benchmarks_own(n):
    """:func:`export.pytest_stats` against pytest-benchmark's ``Stats`` on the same rounds."""
    stats_mod = pytest.importorskip("pytest_benchmark.stats")
    data = [float(v) for v in np.random.default_rng(n).lognormal(0, 0.3, n) * 1e-4]
    data[n // 2] *= 5  # an outlier
    theirs = stats_mod.Stats()
    for v in data:
        theirs.update(v)
    ours = export.pytest_stats(data, iterations=7)
    assert set(ours) == {*stats_mod.Stats.fields, "data", "iterations"}
    for field in stats_mod.Stats.fields:
        expected = getattr(theirs, field)
        assert ours[field] == (
            pytest.approx(expected, rel=1e-12) if isinstance(expected, float) else expected
        ), field
    assert ours["data"] == data and ours["iterations"] == 7


def _export_pb(run: Path, out: Path, *extra: str) -> Path:
    code = cli.main(["export", str(run), "--format", PB, "--out", str(out), *extra])
    assert code == 0
    return out


@pytest.mark.parametrize("make_run", ["real", "synthetic"])
def test_round_trip_through_the_repos_reader_gives_the_runs_configurations(tmp_path, make_run):
    """bench.results.pytest_benchmark reads the export back: the same configurations (key
    columns, config_id, steps_per_call) and the same per-step medians and samples."""
    run = REAL_RUN if make_run == "real" else synthetic_run(tmp_path / "r")
    path = _export_pb(run, tmp_path / "out.json", "--timing", "pipelined")
    back, meta = pb_reader.load(path)
    src = rundir.load(run, samples=True)
    src = src[src.status == "ok"].set_index("config_id")
    back = back.set_index("config_id")
    assert sorted(back.index) == sorted(src.index)
    for cid, row in src.iterrows():
        got = back.loc[cid].to_dict()
        want = row.to_dict()
        for k in schema.KEY_COLUMNS:
            if k in schema.ARITHMETIC_COLUMNS:
                assert got[k] == schema.arithmetic(want)[k], k
            else:
                assert sides.norm(got[k]) == sides.norm(want[k]), k
        assert got["steps_per_call"] == want["steps_per_call"]
        assert got["step_median_s"] == pytest.approx(want["step_median_s"], rel=1e-9)
        np.testing.assert_allclose(got["samples_s"], want["samples_s"], rtol=1e-12)
        assert got["loops_per_sample"] == want["loops_per_sample"]
    doc = _strict_json(path.read_text())
    assert meta["git"]["commit"] == rundir.load_metadata(run)["git"]["commit"]
    assert doc["machine_info"]["node"] == rundir.load_metadata(run)["host"]


def test_times_are_per_call_with_steps_per_call_in_extra_info(tmp_path):
    run = synthetic_run(tmp_path / "r")
    doc = export.export(run, PB, timing="pipelined").document
    scan = next(b for b in doc["benchmarks"] if b["extra_info"]["variant"] == "scan")
    row = next(r for r in synthetic_rows() if r["variant"] == "scan")
    assert scan["extra_info"]["steps_per_call"] == 8
    assert scan["stats"]["iterations"] == 2
    np.testing.assert_allclose(scan["stats"]["data"], np.array(row["samples_s"]) * 8, rtol=1e-15)
    assert scan["fullname"] == "mnist-kernels-bench::scan update 784,10 b128 float32 1dev cpu"


def test_synced_timing_writes_the_synced_samples_and_leaves_out_rows_without(tmp_path):
    rows = synthetic_rows()
    rows[1]["sync_samples_s"] = None  # jit predict: no synced samples
    run = synthetic_run(tmp_path / "r", rows)
    out = export.export(run, PB, timing="synced")
    by_id = {b["extra_info"]["config_id"]: b for b in out.document["benchmarks"]}
    assert rows[1]["config_id"] not in by_id
    assert any("no raw synced samples" in why for _, why in out.left_out)
    for row in rows:
        if row["config_id"] in by_id:
            b = by_id[row["config_id"]]
            steps = row["steps_per_call"]
            np.testing.assert_allclose(b["stats"]["data"], np.array(row["sync_samples_s"]) * steps)
            assert b["stats"]["iterations"] == 1 and b["extra_info"]["timing"] == "synced"


def test_bench_compare_matches_a_synced_export_with_its_run(tmp_path):
    """`bench compare RUN EXPORTED`: every configuration matched (none new or missing), and
    against a pytest-benchmark side compare takes the run's synced samples, which a synced
    export holds: ratio 1."""
    rows = [r for r in synthetic_rows() if r["status"] == "ok"]
    run = synthetic_run(tmp_path / "r", rows)
    path = _export_pb(run, tmp_path / "synced.json", "--timing", "synced")
    rep = verdicts.compare(sides.load_input(str(run)), sides.load_input(str(path)))
    assert len(rep.rows) == len(rows)
    assert {r.verdict for r in rep.rows} == {"same"}
    for r in rep.rows:
        assert r.ratio == pytest.approx(1.0, rel=1e-9), r.label


def test_pytest_benchmarks_own_compare_lists_every_configuration(tmp_path):
    """pytest-benchmark's CLI (``python -m pytest_benchmark compare``; its console script is
    ``pytest-benchmark``) loads two exports: exit 0, no file it failed to load, every
    configuration's name in its table."""
    pytest.importorskip("pytest_benchmark")
    a = _export_pb(REAL_RUN, tmp_path / "a.json")
    b = _export_pb(synthetic_run(tmp_path / "r"), tmp_path / "b.json")
    r = subprocess.run(
        [sys.executable, "-m", "pytest_benchmark", "compare", str(a), str(b)],
        cwd=tmp_path,  # it reads a conftest.py and makes .benchmarks/ where it runs
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "Failed to load" not in r.stdout + r.stderr
    for path in (a, b):
        for bench in json.loads(path.read_text())["benchmarks"]:
            assert bench["name"] in r.stdout, bench["name"]


# --- the command --------------------------------------------------------------------------


def test_out_writes_the_file_and_stderr_counts_what_was_left_out(tmp_path, capsys):
    run = synthetic_run(tmp_path / "r")
    out = tmp_path / "sub" / "gab.json"
    assert cli.main(["export", str(run), "--format", GAB, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(_strict_json(out.read_text())) == 7
    assert "wrote 7 of 9 configurations" in captured.err
    assert "left out 2" in captured.err and "out of memory" in captured.err
    assert "sharded_tp needs a hidden layer" in captured.err


def test_without_out_the_document_goes_to_stdout(tmp_path, capsys):
    assert cli.main(["export", str(synthetic_run(tmp_path / "r")), "--format", PB]) == 0
    doc = _strict_json(capsys.readouterr().out)
    assert len(doc["benchmarks"]) == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing-dir", "--format", GAB], "is not a directory; pass a run directory"),
        (
            ["RUN", "--format", PB, "--include", "compile"],
            "applies to github-action-benchmark only",
        ),
        (["RUN", "--format", GAB, "--timing", "synced"], "applies to pytest-benchmark only"),
        (["EMPTY", "--format", GAB], "has no configuration to export"),
        (["NOT_A_RUN", "--format", GAB], "metadata.json does not exist"),
    ],
)
def test_bad_input_exits_2_saying_what_to_do(tmp_path, capsys, args, message):
    failed = [r for r in synthetic_rows() if r["status"] != "ok"]
    paths = {
        "RUN": synthetic_run(tmp_path / "r"),
        "EMPTY": synthetic_run(tmp_path / "e", failed),
        "NOT_A_RUN": tmp_path,
        "missing-dir": tmp_path / "missing-dir",
    }
    argv = ["export", str(paths[args[0]]), *args[1:], "--out", str(tmp_path / "x.json")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("export: error: ") and message in err, err
    assert not (tmp_path / "x.json").exists()


def test_an_unknown_format_exits_2_naming_the_formats(tmp_path):
    r = run_bench("export", str(synthetic_run(tmp_path / "r")), "--format", "asv", timeout=120)
    assert r.returncode == 2
    assert "invalid choice: 'asv'" in r.stderr
    assert GAB in r.stderr and PB in r.stderr


def test_pytest_benchmark_exports_synced_times_by_default_like_compare_reads_a_run(tmp_path):
    """A pytest-benchmark file and a run directory are compared on synced samples by `bench
    compare`; the export's default is the same, so that a run and its export compare like for
    like."""
    run = synthetic_run(tmp_path / "r")
    assert export.export(run, PB).document == export.export(run, PB, timing="synced").document
