"""The arithmetic of `bench validate` on synthetic verdicts: tallies, exact intervals, the
targets, the summary and its renderings."""

from __future__ import annotations

import json

import pytest

from bench.regression import validation as validate


def test_tally_counts_only_compared_rows() -> None:
    t = validate.tally(["same", "slower", "faster", "same", "error", "missing"])
    assert (t["rows"], t["flagged"], t["faster"], t["errors"]) == (4, 1, 1, 2)
    assert t["rate"] == 0.25
    lo, hi = t["rate_ci95"]
    assert 0.0 < lo < 0.25 < hi < 1.0
    empty = validate.tally(["error"])
    assert empty["rows"] == 0 and empty["rate"] is None and empty["rate_ci95"] == [None, None]


def test_clopper_pearson_known_values() -> None:
    assert validate.clopper_pearson(0, 10) == (0.0, pytest.approx(1 - 0.025 ** (1 / 10)))
    assert validate.clopper_pearson(10, 10) == (pytest.approx(0.025 ** (1 / 10)), 1.0)
    lo, hi = validate.clopper_pearson(5, 10)
    assert lo == pytest.approx(0.187, abs=1e-3) and hi == pytest.approx(0.813, abs=1e-3)
    assert validate.clopper_pearson(0, 0) == (None, None)


@pytest.mark.parametrize(
    ("fa", "det", "expected"),
    [
        ((0, 100), (96, 100), (True, True, True)),
        ((1, 100), (95, 100), (True, True, True)),  # exactly on both targets
        ((2, 100), (100, 100), (False, True, False)),
        ((0, 50), (47, 50), (True, False, False)),  # 94%
        ((0, 0), (10, 10), (False, True, False)),  # nothing compared: not a pass
    ],
)
def test_judge(fa: tuple[int, int], det: tuple[int, int], expected: tuple[bool, ...]) -> None:
    def verdicts(k: int, n: int) -> list[str]:
        return ["slower"] * k + ["same"] * (n - k)

    j = validate.judge(validate.tally(verdicts(*fa)), validate.tally(verdicts(*det)))
    assert (j["false_alarm_pass"], j["detection_pass"], j["pass"]) == expected


def synthetic_rows() -> list[dict]:
    rows = []
    for trial in range(3):
        for n, label in enumerate(("cfg-a", "cfg-b")):
            aa = "slower" if (trial, n) == (0, 0) else "same"
            rows.append(
                {
                    "trial": trial,
                    "phase": "aa",
                    "label": label,
                    "verdict": aa,
                    "ratio": 1.0 + 0.01 * n,
                }
            )
            rows.append(
                {
                    "trial": trial,
                    "phase": "detection",
                    "label": label,
                    "verdict": "slower",
                    "ratio": 1.2,
                }
            )
    return rows


def test_summary_and_reports_from_synthetic_rows() -> None:
    info = {
        "trials": 3,
        "configs": "small",
        "work_scale": 1.2,
        "repeats": 2,
        "factor": 1.1,
        "alpha": 0.01,
        "timing": "default",
        "measurements_redone": 1,
        "measurements": 40,
        "measurements_under_load": 3,
        "command": "python -m bench validate",
        "date": "2024-01-01T00:00:00+00:00",
        "elapsed_s": 12.0,
    }
    doc = validate.summarize(synthetic_rows(), info)
    fa, det = doc["false_alarm"], doc["detection"]
    assert (fa["rows"], fa["flagged"], fa["rate"]) == (6, 1, pytest.approx(1 / 6))
    assert (det["rows"], det["flagged"], det["rate"]) == (6, 6, 1.0)
    assert doc["false_alarm_pass"] is False and doc["detection_pass"] is True
    assert doc["pass"] is False
    assert det["ratios"] == {"n": 6, "min": 1.2, "median": 1.2, "max": 1.2}
    text = validate.format_text(doc)
    assert "FAIL" in text and "16.7%" in text and "100.0%" in text
    assert "3 of 40 kept under other jobs' load" in text and "WARNING" not in text
    busy = validate.format_text({**doc, "measurements_under_load": 20})
    assert "WARNING: other jobs kept the CPUs busy" in busy
    md = validate.format_markdown(doc)
    assert md.startswith("## bench validate") and "`python -m bench validate`" in md
    json.dumps(doc)  # JSON-ready
