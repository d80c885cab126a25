"""Runs written before the layered layout (``tests/fixtures/runs/before-layers``: a real
``bench run --repeats 2`` of commit 77879d1, the last one with ``bench/worker.py``) still load,
plan to the same configurations, compare and report: the schema did not change."""

from __future__ import annotations

import json
import shutil

import bench
from bench import cli, selection
from bench.results import schema
from tests.helpers import FIXTURES

OLD = FIXTURES / "runs" / "before-layers"


def test_an_old_run_loads_with_every_column():
    df = bench.load(OLD, samples=True)
    assert list(df.columns[: len(schema.COLUMNS)]) == list(schema.COLUMNS)
    assert len(df) == 3 and (df["status"] == "ok").all()
    assert bench.load_metadata(OLD)["schema_version"] == schema.SCHEMA_VERSION
    for row in bench.RunDir(OLD).rows():
        assert row["config_id"] == schema.config_id(row)
    # its passes were keyed `repeat` then; the rows say which passes they pooled
    old_passes = [json.loads(ln) for ln in (OLD / "repeats.jsonl").read_text().splitlines()]
    assert sorted(p["repeat"] for p in old_passes) == [0, 0, 0, 1, 1, 1]


def test_todays_planner_gives_the_old_rows_their_configuration_ids():
    meta = bench.load_metadata(OLD)
    grid = selection.Grid("batch", ("jit", "scan"), ("update", "predict"), ((784, 10),), (32,))
    specs, _ = selection.expand([grid], backends=meta["backends"])
    assert {s["config_id"] for s in specs} == bench.RunDir(OLD).done()


def test_an_old_run_compares_and_reports(tmp_path, capsys):
    copy = tmp_path / "again"
    shutil.copytree(OLD, copy)
    assert cli.main(["compare", str(OLD), str(copy), "--json", str(tmp_path / "c.json")]) == 0
    verdicts = [r["verdict"] for r in json.loads((tmp_path / "c.json").read_text())["rows"]]
    assert verdicts == ["same"] * 3
    assert cli.main(["report", str(OLD), "--out", str(tmp_path / "report")]) == 0
    assert "jit" in (tmp_path / "report" / "report.md").read_text()
