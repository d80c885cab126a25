"""`bench compare`, `bench baseline` and the statistics behind them, on synthetic data.

Run directories are written into ``tmp_path`` (``results.jsonl`` + ``metadata.json``); the
pytest-benchmark file in ``tests/fixtures/compare/`` is a trimmed real one saved by
``pytest benchmarks/ --benchmark-save-data``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest

from bench import cli, stats
from bench.regression import sides, verdicts
from bench.results import baseline, pytest_benchmark, schema
from tests.helpers import FIXTURES, make_row, noise, pass_medians, write_run

FIXTURE = FIXTURES / "compare" / "pytest_benchmark.json"


def run_cli(*argv: Any) -> int:
    return cli.main(["compare", *map(str, argv)])


def test_identical_runs_exit_0(tmp_path, capsys):
    rows = [make_row("jit"), make_row("vmap", samples=noise(9))]
    a = write_run(tmp_path / "a", rows)
    b = write_run(tmp_path / "b", rows)
    assert run_cli(a, b) == 0
    out = capsys.readouterr().out
    assert "jit update 784,10 b128 float32 1dev" in out
    assert "2 same" in out


def row(variant: str = "jit", seed: int = 0, scale: float = 1.0, **kw: Any) -> dict[str, Any]:
    """A row of a run of 3 passes (processes that agree to 1%), its samples ``scale`` ms."""
    passes = pass_medians(seed, scale=scale)
    return make_row(variant, samples=noise(seed, scale=scale), pass_medians_s=passes, **kw)


def test_slowdown_exits_1_and_is_listed_first(tmp_path, capsys):
    a = write_run(tmp_path / "a", [row("jit", 1), row("vmap", 0)])
    b = write_run(tmp_path / "b", [row("jit", 2), row("vmap", 3, scale=1.5)])
    assert run_cli(a, b) == 1
    captured = capsys.readouterr()
    table = captured.out.splitlines()
    assert table[2].startswith("vmap update") and "slower" in table[2]
    assert "REGRESSION" in captured.err


def test_new_missing_and_error_rows(tmp_path):
    a = write_run(
        tmp_path / "a", [make_row("jit"), make_row("vmap"), make_row("scan")]
    )  # scan only here
    b = write_run(
        tmp_path / "b",
        [
            make_row("jit"),
            make_row("vmap", status="error", error="boom", samples=[]),
            make_row("pmap", n_devices=4),  # only here
        ],
    )
    out = tmp_path / "cmp.json"
    assert run_cli(a, b, "--json", out) == 0  # new, missing and error rows do not gate
    rows = {r["variant"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["jit"]["verdict"] == "same"
    assert rows["vmap"]["verdict"] == "error" and "boom" in rows["vmap"]["note"]
    assert rows["pmap"]["verdict"] == "new"
    assert rows["scan"]["verdict"] == "missing"


def test_too_few_samples_in_a_run_is_same_with_note(tmp_path, capsys):
    a = write_run(tmp_path / "a", [make_row(samples=noise(1, n=3))])
    b = write_run(tmp_path / "b", [make_row(samples=noise(2, n=3, scale=2.0))])
    assert run_cli(a, b) == 0
    assert "too few samples" in capsys.readouterr().out


def test_factor_and_alpha_flags(tmp_path):
    a = write_run(tmp_path / "a", [row(seed=1)])
    b = write_run(tmp_path / "b", [row(seed=2, scale=1.3)])
    assert run_cli(a, b) == 1
    assert run_cli(a, b, "--factor", "1.5") == 0
    assert run_cli(a, b, "--alpha", "1e-30") == 0
    assert run_cli(a, b, "--fail-on", "none") == 0


def compile_row(seed: int, ratio: float = 1.0, passes: int = 5, sigma: float = 0.1, **kw):
    """A row whose passes (processes) compiled in ``ratio`` x 0.13 s each, scattered by
    ``sigma`` between processes, and each pass's 5 cold compiles within 1% of one another: the
    samples of one process cannot show the spread between processes."""
    rng = np.random.default_rng(5000 + seed)
    offsets = 0.13 * ratio * rng.lognormal(0.0, sigma, passes)
    compiles = [float(o * x) for o in offsets for x in rng.lognormal(0.0, 0.01, 5)]
    return row(
        seed=seed,
        pass_cold_compile_s=[float(o) for o in offsets],
        cold_compile_s=float(np.median(compiles)),
        cold_compile_samples_s=compiles,
        n_compiles=len(compiles),
        **kw,
    )


def test_fail_on_compile_judges_passes(tmp_path, capsys):
    a = write_run(tmp_path / "a", [compile_row(1)])
    b = write_run(tmp_path / "b", [compile_row(2, ratio=3.0)])  # 0.13 -> 0.39 s
    c = write_run(tmp_path / "c", [compile_row(3, ratio=1.15)])
    assert run_cli(a, b) == 0  # step time only by default
    assert run_cli(a, b, "--fail-on", "compile") == 1
    assert "compile: jit update" in capsys.readouterr().err
    assert run_cli(a, b, "--fail-on", "step,compile") == 1
    assert run_cli(a, b, "--fail-on", "compile", "--compile-factor", "4") == 0
    assert run_cli(a, c, "--fail-on", "compile") == 0  # x1.15 < x1.5
    out = tmp_path / "cmp.json"
    run_cli(a, b, "--fail-on", "compile", "--json", out)
    judged = json.loads(out.read_text())["rows"][0]["compile"]
    assert judged["verdict"] == "slower" and judged["passes"]["n_base"] == 5
    assert judged["p_holm"] < 0.05


def test_compile_of_one_pass_a_side_is_not_judged(tmp_path, capsys):
    # one process a side: a x3 compile is shown, not failed (as step time)
    a = write_run(tmp_path / "a", [make_row(samples=noise(1))])
    b = write_run(tmp_path / "b", [make_row(samples=noise(2), compile_s=0.4)])
    assert run_cli(a, b, "--fail-on", "compile") == 0
    assert "(1 pass)" in capsys.readouterr().out


def test_compile_a_a_stays_quiet_where_samples_would_cry_wolf(tmp_path):
    """60 configurations of identical code, 20 comparisons, a factor of 1.05: the processes
    differ by ~10% and each one's compiles agree to 1%, so a test over compile samples would
    call several slower in every comparison; over passes with Holm about alpha of the comparisons fail (1 expected,
    here 2; a rule over compile samples fails all 20)."""
    failed = 0
    for trial in range(20):
        base = [compile_row(1000 * trial + i, batch_size=i + 1) for i in range(60)]
        cur = [compile_row(500 + 1000 * trial + i, batch_size=i + 1) for i in range(60)]
        a = write_run(tmp_path / f"a{trial}", base)
        b = write_run(tmp_path / f"b{trial}", cur)
        failed += run_cli(a, b, "--fail-on", "compile", "--compile-factor", "1.05")
    assert failed <= 3
    # the same passes' compile samples, tested as samples: wolf
    pooled = [
        stats.compare_samples(
            x["cold_compile_samples_s"], y["cold_compile_samples_s"], factor=1.05
        ).verdict
        for x, y in zip(base, cur, strict=True)
    ]
    assert pooled.count(stats.SLOWER) >= 5  # 9 of 60 in one comparison


def test_fail_on_hlo_reports_both_numbers(tmp_path, capsys):
    a = write_run(tmp_path / "a", [make_row(samples=noise(1))])
    b = write_run(
        tmp_path / "b",
        [make_row(samples=noise(2), hlo_fusions=7, xla_flops=1_000_000.0 * (1 + 1e-8))],
    )
    assert run_cli(a, b) == 0
    out = capsys.readouterr().out
    assert "hlo_fusions 5 -> 7 (+2, +40.00%)" in out
    assert "xla_flops" not in out.split("Deterministic changes")[1]  # within 1e-6 relative
    assert run_cli(a, b, "--fail-on", "hlo") == 1
    assert "hlo: jit update" in capsys.readouterr().err
    c = write_run(tmp_path / "c", [make_row(samples=noise(2), peak_memory_bytes=100_001)])
    assert run_cli(a, c, "--fail-on", "hlo") == 1  # 1e-5 relative: a change


def test_recompiles_in_current_always_reported(tmp_path, capsys):
    a = write_run(tmp_path / "a", [make_row(samples=noise(1), recompiles=2)])
    b = write_run(tmp_path / "b", [make_row(samples=noise(2), recompiles=2)])
    assert run_cli(a, b) == 0
    assert "recompiles 2 in steady state" in capsys.readouterr().out
    assert run_cli(a, b, "--fail-on", "hlo") == 1


def test_different_hardware_warns_and_does_not_gate(tmp_path, capsys):
    a = write_run(tmp_path / "a", [row(seed=1)], fingerprint="fp-a", host="alpha")
    b = write_run(tmp_path / "b", [row(seed=2, scale=2.0)], fingerprint="fp-b", host="beta")
    assert run_cli(a, b) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "DIFFERENT MACHINES" in err
    assert "alpha" in err and "beta" in err and "fp-a" in err and "fp-b" in err
    assert run_cli(a, b, "--allow-different-hardware") == 1


def test_wrong_schema_version_exits_2(tmp_path, capsys):
    a = write_run(tmp_path / "a", [make_row()])
    b = write_run(tmp_path / "b", [make_row()], schema_version=99)
    assert run_cli(a, b) == 2
    err = capsys.readouterr().err
    assert "schema version 99" in err and "compare: error" in err
    c = write_run(tmp_path / "c", [make_row(schema_version=42)])
    assert run_cli(a, c) == 2
    assert "schema version 42" in capsys.readouterr().err


def test_missing_and_unreadable_inputs_exit_2(tmp_path, capsys):
    a = write_run(tmp_path / "a", [make_row()])
    assert run_cli(a, tmp_path / "nope") == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run_cli(a, tmp_path / "empty") == 2
    assert "without results.jsonl" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert run_cli(a, bad) == 2
    assert "not valid JSON" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    assert run_cli(a, other) == 2
    assert "neither a baseline file nor a pytest-benchmark file" in capsys.readouterr().err
    assert run_cli(a) == 2
    assert "expected BASELINE and CURRENT" in capsys.readouterr().err


def test_no_configuration_in_common_exits_2(tmp_path, capsys):
    a = write_run(tmp_path / "a", [make_row("jit")])
    b = write_run(tmp_path / "b", [make_row("vmap")])
    assert run_cli(a, b) == 2
    assert "no configuration in common" in capsys.readouterr().err


def test_bad_flags_exit_2(tmp_path):
    a = write_run(tmp_path / "a", [make_row()])
    for flags in (["--fail-on", "speed"], ["--factor", "0.9"], ["--alpha", "2"]):
        with pytest.raises(SystemExit) as e:
            run_cli(a, a, *flags)
        assert e.value.code == 2


def test_markdown_and_json_outputs(tmp_path):
    a = write_run(tmp_path / "a", [row("jit", 1), row("vmap", 0)])
    b = write_run(tmp_path / "b", [row("jit", 2, scale=1.5, hlo_ops=41), row("vmap", 0)])
    md, js = tmp_path / "out" / "compare.md", tmp_path / "out" / "compare.json"
    assert run_cli(a, b, "--markdown", md, "--json", js) == 1
    doc = json.loads(js.read_text())
    assert doc["exit_code"] == 1 and doc["same_hardware"] is True
    assert doc["summary"]["slower"] == 1 and doc["summary"]["same"] == 1
    slow = doc["rows"][0]
    assert slow["verdict"] == "slower" and slow["ratio"] > 1.4 and slow["p"] < 0.01
    assert slow["ci_low"] < slow["ratio"] < slow["ci_high"]
    hlo_ops = next(f for f in slow["deterministic"] if f["metric"] == "hlo_ops")
    assert (hlo_ops["base"], hlo_ops["current"], hlo_ops["changed"]) == (40.0, 41.0, True)
    text = md.read_text()
    assert "## Benchmark comparison" in text
    assert "| config | baseline | current |" in text
    assert "**slower**" in text
    assert "hlo_ops 40 -> 41" in text


# --------------------------------------------------------------------------- pytest-benchmark


def _slowed(doc: dict[str, Any], factor: float) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    for b in out["benchmarks"]:
        st = b["stats"]
        for k in ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3", "total"):
            st[k] *= factor
        if "data" in st:
            st["data"] = [x * factor for x in st["data"]]
    return out


def test_read_pytest_benchmark_json():
    df, meta = pytest_benchmark.load(FIXTURE)
    assert len(df) == 4
    assert set(df["variant"]) == {"jit", "scan", "sharded"}
    assert set(df["kernel"]) == {"update", "predict"}
    assert (df["status"] == "ok").all()
    assert meta["hardware_fingerprint"] and meta["host"]
    doc = json.loads(FIXTURE.read_text())
    scan = next(b for b in doc["benchmarks"] if b["extra_info"]["variant"] == "scan")
    row = df[df["variant"] == "scan"].iloc[0]
    assert row["samples_s"][0] == pytest.approx(scan["stats"]["data"][0] / 8)  # per step
    assert row["step_median_s"] == pytest.approx(scan["stats"]["median"] / 8)
    assert row["config_id"] == scan["extra_info"]["config_id"]
    with pytest.raises(schema.SchemaError):
        pytest_benchmark.from_document({"benchmarks": 1})


def test_pytest_benchmark_files_are_one_process_a_side_and_get_no_verdict(tmp_path, capsys):
    """pytest-benchmark times each benchmark in one process: its samples cannot show the noise
    between processes, so even twice the time is shown, not judged."""
    assert run_cli(FIXTURE, FIXTURE) == 0
    assert "4 same" in capsys.readouterr().out
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps(_slowed(json.loads(FIXTURE.read_text()), 2.0)))
    assert run_cli(FIXTURE, slow, "--json", tmp_path / "c.json") == 0
    captured = capsys.readouterr()
    assert "measured each configuration in one process" in captured.err
    doc = json.loads((tmp_path / "c.json").read_text())
    for r in doc["rows"]:
        assert r["verdict"] == "same" and r["ratio"] == pytest.approx(2.0, rel=1e-6)
        assert "1 process a side" in r["note"] and r["p"] is None


def test_pytest_benchmark_without_raw_data_uses_ratio_only(tmp_path, capsys):
    doc = json.loads(FIXTURE.read_text())
    for b in doc["benchmarks"]:
        b["stats"].pop("data")
    plain, slow = tmp_path / "plain.json", tmp_path / "slow.json"
    plain.write_text(json.dumps(doc))
    slow.write_text(json.dumps(_slowed(doc, 1.2)))
    assert run_cli(plain, plain) == 0
    assert run_cli(plain, slow) == 0
    assert "no raw samples: ratio only, not judged" in capsys.readouterr().out


def test_pytest_benchmark_against_run_uses_extra_info_and_synced_samples(tmp_path, capsys):
    df, _ = pytest_benchmark.load(FIXTURE)
    rows = []
    for rec in df.to_dict(orient="records"):
        keys = {k: rec[k] for k in schema.KEY_COLUMNS}
        # pipelined samples as fast as pytest-benchmark's; synced ones half of them
        rows.append(
            make_row(
                samples=rec["samples_s"],
                sync_samples_s=[x / 2 for x in rec["samples_s"]],
                sync_step_median_s=rec["step_median_s"] / 2,
                **keys,
            )
        )
    run = write_run(tmp_path / "run", rows)
    assert run_cli(run, FIXTURE) == 0  # different fingerprints: warns, does not gate
    captured = capsys.readouterr()
    assert "DIFFERENT MACHINES" in captured.err
    assert run_cli(run, FIXTURE, "--json", tmp_path / "c.json") == 0
    for r in json.loads((tmp_path / "c.json").read_text())["rows"]:
        # against the synced samples (half of the pipelined ones): twice as slow
        assert r["ratio"] == pytest.approx(2.0, rel=1e-6) and r["verdict"] == "same"


# --------------------------------------------------------------------------- baselines


def test_baseline_save_show_and_auto(tmp_path, capsys):
    rows = [row("jit", 1), row("vmap", 2)]
    run = write_run(tmp_path / "run", rows, fingerprint="fp/box a")
    bdir = tmp_path / "baselines"
    assert cli.main(["baseline", "save", str(run), "--dir", str(bdir)]) == 0
    saved = bdir / "fp_box_a.json"
    assert saved.exists()
    doc = json.loads(saved.read_text())
    assert doc["fingerprint"] == "fp/box a" and len(doc["rows"]) == 2
    first = doc["rows"][0]
    assert first["samples_s"] and first["hlo_fusions"] == 5 and first["config_id"]
    assert first["pass_medians_s"] == pytest.approx(rows[0]["pass_medians_s"])
    assert cli.main(["baseline", "show", "--dir", str(bdir)]) == 0
    assert "fp/box a" in capsys.readouterr().out

    same = write_run(tmp_path / "same", rows, fingerprint="fp/box a")
    slow = write_run(
        tmp_path / "slow",
        [row("jit", 3, scale=1.5), row("vmap", 2)],
        fingerprint="fp/box a",
    )
    assert run_cli("--baseline", "auto", "--baseline-dir", bdir, same) == 0
    assert run_cli("--baseline", "auto", "--baseline-dir", bdir, slow) == 1
    assert run_cli(saved, slow) == 1  # a baseline file as BASELINE

    elsewhere = write_run(tmp_path / "other", rows, fingerprint="fp-other")
    capsys.readouterr()
    assert run_cli("--baseline", "auto", "--baseline-dir", bdir, elsewhere) == 2
    err = capsys.readouterr().err
    assert "no baseline for this machine" in err and "fp-other" in err and "fp/box a" in err
    assert run_cli("--baseline", "auto", "--baseline-dir", bdir, same, slow) == 2


def test_baseline_save_errors(tmp_path, capsys):
    assert cli.main(["baseline", "save", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    run = write_run(tmp_path / "run", [make_row()], fingerprint="")
    assert cli.main(["baseline", "save", str(run), "--dir", str(tmp_path / "b")]) == 2
    assert "hardware_fingerprint" in capsys.readouterr().err
    assert cli.main(["baseline", "show", "--dir", str(tmp_path / "none")]) == 0
    assert "no baselines" in capsys.readouterr().out


def test_compare_api_matches_on_key_columns(tmp_path):
    """Layer sizes given as a list and batch size as a float still match."""
    a = write_run(tmp_path / "a", [make_row(layer_sizes=[784, 10], batch_size=128.0)])
    b = write_run(tmp_path / "b", [make_row()])
    rep = verdicts.compare(sides.load_input(a), sides.load_input(b))
    assert [r.verdict for r in rep.rows] == ["same"]
    assert rep.exit_code == 0
    assert baseline.path_for("x y", tmp_path).name == "x_y.json"


def test_pytest_benchmark_without_extra_info_matches_by_fullname(tmp_path, capsys):
    doc = json.loads(FIXTURE.read_text())
    for b in doc["benchmarks"]:
        b["extra_info"] = {}
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(doc))
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps(_slowed(doc, 2.0)))
    assert run_cli(bare, slow, "--json", tmp_path / "c.json") == 0  # one process a side
    assert "test_update[jit-784,10-128-float32]" in capsys.readouterr().out
    ratios = [r["ratio"] for r in json.loads((tmp_path / "c.json").read_text())["rows"]]
    assert ratios == pytest.approx([2.0] * 4)
    run = write_run(tmp_path / "run", [make_row()])
    assert run_cli(run, bare) == 2
    assert "extra_info" in capsys.readouterr().err


# ------------------------------------------------------------- separate runs, several passes


def _passes(medians_ms: list[float]) -> list[float]:
    return [m * 1e-3 for m in medians_ms]


def test_separate_runs_need_their_process_medians_apart(tmp_path, capsys):
    """Samples say 20% slower, but the passes overlap: a slow process, not a slow kernel."""
    slow = [1.2 * x for x in noise(2)]
    a = write_run(tmp_path / "a", [make_row(pass_medians_s=_passes([1.0, 1.25, 1.1]))])
    b = write_run(
        tmp_path / "b",
        [make_row(samples=slow, pass_medians_s=_passes([1.2, 1.05, 1.3]))],
    )
    assert run_cli(a, b, "--json", tmp_path / "c.json") == 0
    row = json.loads((tmp_path / "c.json").read_text())["rows"][0]
    assert row["verdict"] == "same" and row["p"] > 0.05
    assert row["passes"]["n_base"] == 3 and row["passes"]["n_cur"] == 3
    assert "3+3 passes" in row["note"]


def test_five_passes_apart_a_side_gate(tmp_path):
    slow = [1.2 * x for x in noise(2)]
    a = write_run(tmp_path / "a", [make_row(pass_medians_s=_passes([1.0, 1.02, 0.98, 1.01, 1.03]))])
    b = write_run(
        tmp_path / "b",
        [make_row(samples=slow, pass_medians_s=_passes([1.2, 1.22, 1.19, 1.25, 1.21]))],
    )
    assert run_cli(a, b) == 1


def test_single_pass_runs_are_shown_not_judged(tmp_path, capsys):
    """Two single-pass runs of the same code differ by 10-25% here, with samples that agree to
    1% (p = 1e-11 by the samples): one process a side cannot tell code from process."""
    a = write_run(tmp_path / "a", [make_row()])
    b = write_run(tmp_path / "b", [make_row(samples=[1.3 * x for x in noise(2)])])
    assert run_cli(a, b, "--json", tmp_path / "c.json") == 0
    assert "measured each configuration in one process" in capsys.readouterr().err
    (r,) = json.loads((tmp_path / "c.json").read_text())["rows"]
    assert r["verdict"] == "same" and r["ratio"] == pytest.approx(1.3, rel=0.05)
    assert "1 process a side" in r["note"]


def _paired(base_ms: list[float], cur_ms: list[float], **extra: Any) -> verdicts.Report:
    base = make_row(pass_medians_s=_passes(base_ms), **extra)
    cur = make_row(samples=noise(2, scale=cur_ms[0]), pass_medians_s=_passes(cur_ms), **extra)
    return _report([base], [cur], verdicts.CompareSettings(paired=True))


def _report(base_rows, cur_rows, settings) -> verdicts.Report:
    import pandas as pd

    def side(name, rows):
        return sides.Side(name, sides.RUN, pd.DataFrame(rows), {"hardware_fingerprint": "fp"})

    return verdicts.compare(side("a", base_rows), side("b", cur_rows), settings)


def test_paired_passes_cancel_what_both_sides_of_a_pass_share():
    """Each pass x1.2 beside its partner, passes apart by 30%: paired, a clear slowdown; as
    separate runs, within the noise between processes."""
    base, cur = [1.0, 1.3, 1.1, 0.9], [1.2, 1.56, 1.32, 1.08]
    (r,) = _paired(base, cur).rows
    assert r.verdict == "slower" and r.ratio == pytest.approx(1.2) and r.family == "all"
    unpaired = _report(
        [make_row(pass_medians_s=_passes(base))],
        [make_row(samples=noise(2, scale=1.2), pass_medians_s=_passes(cur))],
        verdicts.CompareSettings(paired=False),
    )
    assert unpaired.rows[0].verdict == "same" and unpaired.rows[0].p > 0.05


def test_a_suspect_is_judged_on_its_confirming_passes_only():
    """Screening passes x1.3 (why it became a suspect), confirming passes x1.0: cleared."""
    base = [1.0, 1.0, 1.0, 1.01, 0.99, 1.0, 1.02]
    cur = [1.3, 1.3, 1.0, 1.02, 0.98, 1.01, 1.0]
    (r,) = _paired(base, cur, passes_screen=2, suspect=True).rows
    assert r.family == "confirmed" and r.passes.n_cur == 5
    assert r.verdict == "same" and r.ratio == pytest.approx(1.0, abs=0.02)
    assert "5 confirming passes after 2 screening" in r.note
    cur_slow = [1.0, 1.0, 1.21, 1.2, 1.19, 1.22, 1.2]  # the other way round: confirmed slower
    (r,) = _paired(base, cur_slow, passes_screen=2, suspect=True).rows
    assert r.verdict == "slower" and r.family == "confirmed"


def test_a_screened_configuration_is_never_slower():
    """Not a suspect: its passes were below the screening threshold, so below the factor."""
    (r,) = _paired([1.0, 1.0], [1.04, 1.04], passes_screen=2, suspect=False).rows
    assert r.family == "screened" and r.verdict == "same"
    (r,) = _paired([1.0, 1.0], [1.3, 1.3], passes_screen=2, suspect=True).rows
    assert r.verdict == "same" and "left unconfirmed" in r.note


def test_holm_makes_the_verdict_of_many_configurations_one_family():
    """Thirty configurations of two separate runs, each x1.22 with p = 0.03 on its own (slower,
    alone): judged together, none is."""
    base_rows, cur_rows = [], []
    for i in range(30):
        cur = list(np.exp([0.10, 0.20, 0.30]))
        base = _passes([0.97, 1.0, 1.03])
        base_rows.append(make_row(batch_size=8 + i, pass_medians_s=base))
        cur_rows.append(make_row(batch_size=8 + i, samples=noise(i), pass_medians_s=_passes(cur)))
    rep = _report(base_rows, cur_rows, verdicts.CompareSettings())
    assert all(0.02 < r.passes.p_slower < 0.04 and r.ratio > 1.2 for r in rep.rows)
    assert rep.counts()["slower"] == 0 and rep.exit_code == 0
    alone = _report(base_rows[:1], cur_rows[:1], verdicts.CompareSettings())
    assert alone.counts()["slower"] == 1


def test_paired_variances_borrow_from_each_other():
    """Twenty paired configurations with the same spread: each test borrows the others' evidence
    about it (a moderated variance with more degrees of freedom), so a shift that three passes
    alone cannot show is shown."""
    rng = np.random.default_rng(3)
    base_rows, cur_rows = [], []
    for i in range(20):
        d = 0.25 + 0.1 * rng.standard_normal(3)
        base_rows.append(make_row(batch_size=8 + i, pass_medians_s=_passes([1.0, 1.0, 1.0])))
        cur = _passes(list(np.exp(d)))
        cur_rows.append(make_row(batch_size=8 + i, samples=noise(i), pass_medians_s=cur))
    rep = _report(base_rows, cur_rows, verdicts.CompareSettings(paired=True))
    d0, s0sq = rep.rows[0].prior
    assert d0 > 5 and 0.05 < s0sq**0.5 < 0.2
    alone = [
        stats.compare_passes(b["pass_medians_s"], c["pass_medians_s"], paired=True)
        for b, c in zip(base_rows, cur_rows, strict=True)
    ]
    moderated = {r.label: r.passes.p_slower for r in rep.rows}
    assert sum(p < 0.01 for p in moderated.values()) > sum(a.p_slower < 0.01 for a in alone)
    holm_alone = stats.holm([a.p_slower for a in alone])
    assert sum(p < 0.05 for p in holm_alone) <= 2  # each on its own 2 degrees of freedom
    assert rep.counts()["slower"] >= 10  # with the family's spread
    # a configuration with one pass borrows nothing: still no verdict
    one = make_row(batch_size=99, samples=noise(1, scale=2.0), pass_medians_s=_passes([2.0]))
    base_one = make_row(batch_size=99, pass_medians_s=_passes([1.0]))
    rep = _report([*base_rows, base_one], [*cur_rows, one], verdicts.CompareSettings(paired=True))
    (lone,) = [r for r in rep.rows if r.config["batch_size"] == 99]
    assert lone.verdict == "same" and "1 process a side" in lone.note


def test_the_two_sides_of_one_ab_are_compared_paired():
    import pandas as pd

    from bench.commands import compare as compare_cmd

    def side(name: str, run_id: str) -> sides.Side:
        meta = {"ab": {"side": name}, "run_id": run_id}
        return sides.Side(name, sides.RUN, pd.DataFrame([make_row()]), meta)

    assert compare_cmd.interleaved(side("base", "r1-base"), side("head", "r1-head"))
    assert not compare_cmd.interleaved(side("base", "r1-base"), side("head", "r2-head"))
    assert not compare_cmd.interleaved(side("head", "r1-head"), side("base", "r1-base"))
    plain = sides.Side("a", sides.RUN, pd.DataFrame([make_row()]), {"run_id": "r1"})
    assert not compare_cmd.interleaved(plain, side("head", "r1-head"))
