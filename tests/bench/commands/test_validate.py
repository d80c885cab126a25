"""`bench validate` end to end: one tiny real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import cli


def test_tiny_validate_run_writes_its_reports(tmp_path: Path) -> None:
    out = tmp_path / "validate"
    flags = "--trials 1 --repeats 1 --configs small --timing quick --dataset synthetic --quiet"
    flags += " --max-foreign-load 1"  # no redoing under other jobs' load: this checks plumbing
    code = cli.main(["validate", *flags.split(), "--out", str(out)])
    assert code in (0, 1)  # one trial on a shared machine may miss a target; the run works
    doc = json.loads((out / "validate.json").read_text())
    for key in (
        "measurements_under_load",
        "trials",
        "false_alarm",
        "detection",
        "false_alarm_pass",
        "detection_pass",
        "pass",
        "machine",
        "date",
        "command",
        "rows",
    ):
        assert key in doc
    assert doc["pass"] == (code == 0)
    for check in ("false_alarm", "detection"):
        t = doc[check]
        assert t["rows"] == 1 and t["errors"] == 0 and t["flagged"] in (0, 1)
        assert {"rate", "target", "rate_ci95", "ratios"} <= set(t)
    assert doc["machine"]["host"] and doc["machine"]["cpu"]
    assert (out / "validate.md").read_text().startswith("## bench validate")
    for phase in ("00-aa", "00-detection"):
        for side in ("a", "b"):
            assert (out / "trials" / phase / side / "results.jsonl").exists()
    # the detection side really did 20% more work under the same configuration (XLA's count)
    b = json.loads((out / "trials" / "00-detection" / "b" / "results.jsonl").read_text())
    a = json.loads((out / "trials" / "00-detection" / "a" / "results.jsonl").read_text())
    assert a["config_id"] == b["config_id"]
    assert b["xla_flops"] / a["xla_flops"] == pytest.approx(1.2, rel=0.02)
