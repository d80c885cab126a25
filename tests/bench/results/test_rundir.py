"""The run directory: appends flushed a line at a time, a torn last line cut before the next
append, metadata replaced whole, the CSV, the readers' errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import bench
from bench.results import rundir, schema
from bench.results.rundir import RunDir
from tests.helpers import make_row, write_run


def test_a_torn_last_line_is_cut_before_the_next_row(tmp_path):
    out = RunDir(tmp_path / "run")
    a, b = make_row("jit"), make_row("vmap")
    out.append(a)
    out.results.write_text(out.results.read_text() + json.dumps(b)[:40])  # a kill mid-write
    assert [r["variant"] for r in out.rows()] == ["jit"]  # the reader skips the torn line
    later = RunDir(out.path)  # a resumed run: a new writer
    later.append(b)
    lines = out.results.read_text().splitlines()
    assert [json.loads(ln)["variant"] for ln in lines] == ["jit", "vmap"]
    assert later.done() == {a["config_id"], b["config_id"]}


def test_rows_are_written_as_standard_json_and_the_last_one_wins(tmp_path):
    out = RunDir(tmp_path)
    row = make_row(step_median_s=np.float64(0.002), xla_flops=math.nan, n_samples=np.int64(3))
    out.append(row)
    out.append({**row, "status": "error"})
    text = out.results.read_text()
    assert "NaN" not in text and '"xla_flops": null' in text
    (only,) = out.rows()
    assert only["status"] == "error" and only["n_samples"] == 3
    assert out.done(ok_only=True) == set()


def test_a_bad_line_in_the_middle_is_an_error_with_its_place(tmp_path):
    run = write_run(tmp_path / "run", [make_row("jit"), make_row("vmap")])
    lines = (run / "results.jsonl").read_text().splitlines()
    (run / "results.jsonl").write_text("\n".join([lines[0], "garbage", lines[1]]) + "\n")
    with pytest.raises(schema.SchemaError, match=r"results.jsonl:2: not valid JSON"):
        bench.load(run)


def test_metadata_is_replaced_whole_and_read_back(tmp_path):
    out = RunDir(tmp_path).create()
    out.write_metadata({"schema_version": 1, "run_id": "x", "peak": math.inf, "n": np.int32(2)})
    assert not list(tmp_path.glob("*.tmp"))
    assert out.metadata() == {"schema_version": 1, "run_id": "x", "peak": None, "n": 2}
    (tmp_path / "metadata.json").write_text("{broken")
    with pytest.raises(schema.SchemaError, match="not valid JSON"):
        bench.load_metadata(tmp_path)
    (tmp_path / "metadata.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(schema.SchemaError, match="schema version 99"):
        out.metadata()
    with pytest.raises(FileNotFoundError, match=r"is .* a run directory"):
        bench.load_metadata(tmp_path / "nowhere")


def test_the_csv_has_every_column_and_no_samples(tmp_path):
    out = RunDir(tmp_path)
    out.append({**make_row(), "options": {"steps": 8}, "traceback": "long"})
    path = out.write_csv()
    header = path.read_text().splitlines()[0].split(",")
    assert header[: len(schema.COLUMNS)] == list(schema.COLUMNS)
    assert "samples_s" not in header and "traceback" not in header
    assert list(rundir.load(tmp_path, samples=True).columns)[-1] == "samples_s"
    assert "samples_s" not in rundir.load(tmp_path).columns


def test_metadata_without_a_run_id_or_not_an_object_is_refused(tmp_path):
    (tmp_path / "metadata.json").write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(schema.SchemaError, match="no run_id"):
        bench.load_metadata(tmp_path)
    (tmp_path / "metadata.json").write_text("[1, 2]")
    with pytest.raises(schema.SchemaError, match="not a metadata object"):
        bench.load_metadata(tmp_path)


def test_a_failed_metadata_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    out = RunDir(tmp_path).create()
    out.write_metadata({"schema_version": 1, "run_id": "old"})

    def full(self, data, *args, **kwargs):  # the disk fills halfway through the file
        with open(self, "w") as f:
            f.write(data[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError, match="No space"):
        out.write_metadata({"schema_version": 1, "run_id": "new"})
    monkeypatch.undo()
    assert out.metadata()["run_id"] == "old"
    assert not list(tmp_path.glob("*.tmp"))
