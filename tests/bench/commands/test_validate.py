"""`bench validate` end to end: tiny real runs, accumulating across sittings."""

from __future__ import annotations

import json
from pathlib import Path

from bench import cli

# one configuration; no redoing under other jobs' load (--max-foreign-load 1): plumbing
TINY = (  # noqa: SIM905 - a line per flag otherwise
    "--quick --variants jit --kernels update --layers 784,64,10 --batch-sizes 128 "
    "--dataset synthetic --quiet --max-foreign-load 1 --repeats 2 --confirm 2"
).split()


def test_validate_runs_accumulate_and_refuse_other_settings(tmp_path: Path, capsys) -> None:
    out = tmp_path / "validate"
    code = cli.main(["validate", *TINY, "--out", str(out)])
    assert code in (0, 1)  # one run on a shared machine may miss a target; the runs work
    doc = json.loads((out / "validate.json").read_text())
    assert doc["runs"] == {"aa": 1, "detection": 1} and doc["pass"] == (code == 0)
    assert doc["settings"]["slowed"] == "jit:update" and doc["settings"]["configurations"] == 1
    assert set(doc["checks"]) == {
        "false_alarm_per_configuration",
        "false_alarm_per_run",
        "detection",
        "false_alarm_elsewhere",
    }
    assert (
        doc["checks"]["detection"]["of"] == 1 and doc["checks"]["false_alarm_elsewhere"]["of"] == 0
    )
    assert (out / "validate.md").read_text().startswith("## bench validate")
    (configuration,) = doc["detection_by_configuration"]
    assert (
        configuration["label"].startswith("jit update 784,64,10 b128") and configuration["of"] == 1
    )
    for phase in ("000-aa", "000-detection"):
        trial = json.loads((out / "trials" / phase / "trial.json").read_text())
        assert trial["phase"] == phase[4:] and "rows" not in trial  # judged when read
        for side in ("a", "b"):
            row = json.loads((out / "trials" / phase / side / "results.jsonl").read_text())
            assert row["passes_screen"] == 2 and len(row["pass_medians_s"]) in (2, 4)
    # the detection run slowed the second side's kernel: same configuration, same flops
    b = json.loads((out / "trials" / "000-detection" / "b" / "results.jsonl").read_text())
    a = json.loads((out / "trials" / "000-detection" / "a" / "results.jsonl").read_text())
    assert a["config_id"] == b["config_id"] and a["xla_flops"] == b["xla_flops"]

    # a second sitting adds to the first
    assert cli.main(["validate", *TINY, "--phases", "aa", "--out", str(out)]) in (0, 1)
    doc = json.loads((out / "validate.json").read_text())
    assert doc["runs"] == {"aa": 2, "detection": 1}
    assert (out / "trials" / "001-aa" / "trial.json").exists()
    capsys.readouterr()
    # other settings are not pooled with them
    assert cli.main(["validate", *TINY, "--factor", "1.3", "--out", str(out)]) == 2
    assert "measured with other settings (factor)" in capsys.readouterr().err
    # another alpha is only another rule: every stored run is judged by it
    assert cli.main(
        ["validate", *TINY, "--phases", "aa", "--trials", "0", "--alpha", "0.01", "--out", str(out)]
    ) in (0, 1)
    doc = json.loads((out / "validate.json").read_text())
    assert doc["alpha"] == 0.01 and doc["runs"] == {"aa": 2, "detection": 1}
    code = cli.main(["validate", *TINY, "--phases", "aa", "--fresh", "--out", str(out)])
    assert code in (0, 1)
    assert json.loads((out / "validate.json").read_text())["runs"] == {"aa": 1, "detection": 0}
