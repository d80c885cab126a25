"""The runs committed under ``reports/examples/`` (the README's figures come from them): each
loads under today's schema, keeps its configuration ids, rebuilds its report from the clone, and
the README names it with figures that are its own."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

import bench
from bench import cli
from bench.results import schema
from tests.helpers import ROOT

EXAMPLES = sorted(p for p in (ROOT / "reports" / "examples").iterdir() if p.is_dir())


def test_there_is_an_example_run():
    assert EXAMPLES, "reports/examples/ holds no run: the README's figures must come from one"


@pytest.mark.parametrize("run", EXAMPLES, ids=lambda p: p.name)
def test_an_example_run_loads_and_rebuilds_its_report(run, tmp_path):
    assert {"results.jsonl", "results.csv", "metadata.json"} <= {p.name for p in run.iterdir()}
    df = bench.load(run)
    assert bench.load_metadata(run)["schema_version"] == schema.SCHEMA_VERSION
    for row in bench.RunDir(run).rows():
        assert row["config_id"] == schema.config_id(row)
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert f"| rows | {len(df)} |" in md


@pytest.mark.parametrize("run", EXAMPLES, ids=lambda p: p.name)
def test_the_readme_quotes_the_example_runs_own_figures(run):
    readme = (ROOT / "README.md").read_text()
    df = bench.load(run)
    meta = json.loads((run / "metadata.json").read_text())
    assert f"reports/examples/{run.name}" in readme
    ok = int((df["status"] == "ok").sum())
    assert f"{len(df)} configurations, all ok" in readme or f"{ok} of {len(df)}" in readme
    assert f"`{meta['git']['commit'][:7]}`" in readme  # the commit that measured it
    for backend, by_key in meta["peaks"].items():
        for key, peak in by_key.items():
            gflops = f"{peak['matmul_flops_per_s'] / 1e9:.0f} GFLOP/s {key}"
            assert gflops in readme, (backend, gflops)
