"""The arithmetic of `bench validate` on synthetic trial records: tallies, exact intervals, the
four targets, the summary and its renderings."""

from __future__ import annotations

import json

import pytest

from bench.regression import validation as validate


def test_tally_counts_only_compared_rows() -> None:
    rows = [{"verdict": v} for v in ("same", "slower", "faster", "same", "error", "missing")]
    assert validate.tally(rows) == (1, 4)
    r = validate.rate(1, 4, "<= 1%")
    assert r["rate"] == 0.25 and 0.0 < r["ci95"][0] < 0.25 < r["ci95"][1] < 1.0
    assert validate.rate(0, 0, "x")["rate"] is None


def test_clopper_pearson_known_values() -> None:
    assert validate.clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025 ** (1 / 10)))
    assert validate.clopper_pearson(10, 10) == (pytest.approx(0.025 ** (1 / 10)), 1.0)
    lo, hi = validate.clopper_pearson(5, 10)
    assert lo == pytest.approx(0.187, abs=1e-3) and hi == pytest.approx(0.813, abs=1e-3)
    assert validate.clopper_pearson(0, 0) == (None, None)


SETTINGS = {
    "preset": "quick",
    "configurations": 4,
    "repeats": 2,
    "confirm": 6,
    "max_suspects": 24,
    "factor": 1.1,
    "slowed": "jit:update",
    "slowdown": 1.2,
}


def record(trial: int, phase: str, slower: set[str], exit_code: int = 0) -> dict:
    labels = ["jit update a", "jit update b", "vmap update a", "vmap update b"]
    rows = [
        {
            "label": label,
            "variant": label.split()[0],
            "kernel": "update",
            "slowed": phase == "detection" and label.startswith("jit"),
            "verdict": "slower" if label in slower else "same",
            "ratio": 1.2 if label in slower else 1.0,
        }
        for label in labels
    ]
    return {
        "trial": trial,
        "phase": phase,
        "exit_code": exit_code,
        "rows": rows,
        "elapsed_s": 60.0,
        "measurements": 10,
        "measurements_redone": 1,
        "measurements_under_load": 0,
    }


def summary(records: list[dict]) -> dict:
    info = {"settings": SETTINGS, "alpha": 0.05, "command": "python -m bench validate"}
    info["date"] = "2026-01-01"
    return validate.summarize(records, info)


def test_four_rates_from_synthetic_runs() -> None:
    records = [record(t, "aa", set()) for t in range(9)]
    records.append(record(9, "aa", {"vmap update a"}, exit_code=1))  # one run cries wolf
    both = {"jit update a", "jit update b"}
    records += [record(t, "detection", both) for t in range(9)]
    records.append(record(9, "detection", {"jit update a", "vmap update b"}, exit_code=1))
    doc = summary(records)
    c = doc["checks"]
    assert (
        c["false_alarm_per_configuration"]["count"],
        c["false_alarm_per_configuration"]["of"],
    ) == (1, 40)
    assert (c["false_alarm_per_run"]["count"], c["false_alarm_per_run"]["of"]) == (1, 10)
    assert (c["detection"]["count"], c["detection"]["of"]) == (19, 20)
    assert (c["false_alarm_elsewhere"]["count"], c["false_alarm_elsewhere"]["of"]) == (1, 20)
    assert doc["passed"] == {
        "false_alarm_per_configuration": False,  # 2.5% > 0.1%
        "false_alarm_per_run": False,  # 10% > 5%
        "detection": True,  # 95%
        "false_alarm_elsewhere": False,
    }
    assert doc["pass"] is False and doc["runs"] == {"aa": 10, "detection": 10}
    assert doc["aa_flagged"] == [
        {"label": "vmap update a", "flagged": 1, "of": 10, "median_ratio": 1.0}
    ]
    text = validate.format_text(doc)
    assert "FAIL" in text and "missed: jit update b 1 of 10" in text
    md = validate.format_markdown(doc)
    assert md.startswith("## bench validate") and "`python -m bench validate`" in md
    json.dumps(doc)  # JSON-ready


def test_a_quiet_check_passes_and_nothing_measured_does_not() -> None:
    records = [record(t, "aa", set()) for t in range(3)]
    records += [record(t, "detection", {"jit update a", "jit update b"}) for t in range(3)]
    doc = summary(records)
    assert doc["pass"] is True and "PASS" in validate.format_text(doc)
    assert summary([])["pass"] is False
    busy = [{**r, "measurements_under_load": 5} for r in records]
    assert summary(busy)["pass"] is False  # no quiet run: nothing shows the machine at rest
    assert "6 loaded run(s)" in validate.format_text(summary(busy))


def test_a_loaded_run_is_listed_and_counted_apart_never_dropped() -> None:
    """A run measured while other jobs loaded the CPUs (the share is the tool's own figure,
    taken before any verdict) is not in the rates of the machine at rest, but is listed with
    its outcome and counted in the every-run rates."""
    both = {"jit update a", "jit update b"}
    records = [record(t, "aa", set()) for t in range(3)]
    records += [record(t, "detection", both) for t in range(3)]
    missed = {**record(3, "detection", set()), "measurements_under_load": 3}  # 30% > 10%
    just = {**record(4, "detection", both), "measurements_under_load": 1}  # 10%: quiet
    doc = summary([*records, missed, just])
    assert (doc["checks"]["detection"]["count"], doc["checks"]["detection"]["of"]) == (8, 8)
    every = doc["checks_all_runs"]["detection"]
    assert (every["count"], every["of"]) == (8, 10)
    assert doc["loaded_runs"] == [
        {"trial": 3, "phase": "detection", "under_load": 0.3, "exit_code": 0, "slower": []}
    ]
    text = validate.format_text(doc)
    assert "detection run 3: 30% of its measurements under load, exit 0, 0 slower" in text
    assert (
        "every run, loaded ones included: " in text
        and "detection of the slowed kernel 8/10" in text
    )
    assert "(and 1 loaded, below)" in validate.format_markdown(doc)
