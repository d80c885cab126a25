"""How often does the regression check cry wolf, and how often does it catch a real slowdown?
The arithmetic of ``python -m bench validate``: the verdicts of its trial runs
(:mod:`bench.runner.trials`) tallied into rates with exact intervals, judged against the
targets, summarised and rendered.

Four rates, each a count over a count with its Clopper-Pearson 95% interval:

- **false alarms per configuration**: A/A rows called slower / A/A rows compared;
- **A/A runs that fail**: A/A runs whose check exits 1 / A/A runs (what a pull request sees;
  at most ``alpha`` by construction, :mod:`bench.regression.verdicts`);
- **detection**: rows of the slowed kernel called slower / those rows, in the detection runs;
- **false alarms elsewhere**: the detection runs' other rows called slower / those rows.

The targets are about this machine at rest. A run during which other jobs loaded the CPUs
through more than :data:`LOADED_SHARE` of its measurements (``bench ab`` warns of such a run:
its verdicts are noisy) is a *loaded* run: the rates are given over the quiet runs, and again
over every run beside them, with each loaded run listed; nothing is dropped silently. The share
is the tool's own measurement of other jobs' CPU time, made before any verdict.
"""

from __future__ import annotations

import collections
import json
import math
import os
from typing import Any

import numpy as np

from .. import format as fmt
from .. import stats
from ..results import machine

PER_CONFIG_TARGET = 0.001
PER_RUN_TARGET = 0.05
DETECTION_TARGET = 0.95
#: a run with more than this share of its measurements kept under other jobs' load is loaded
LOADED_SHARE = 0.10


def load_share(record: dict[str, Any]) -> float:
    """The share of a run's measurements kept while other jobs loaded the CPUs."""
    return record.get("measurements_under_load", 0) / max(1, record.get("measurements", 0))


def loaded(record: dict[str, Any]) -> bool:
    return load_share(record) > LOADED_SHARE


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Exact binomial interval of a rate ``k / n`` (None, None for n = 0)."""
    if n <= 0:
        return None, None
    from scipy.stats import beta

    a = (1 - confidence) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def rate(k: int, n: int, target: str) -> dict[str, Any]:
    lo, hi = clopper_pearson(k, n)
    return {"count": k, "of": n, "rate": k / n if n else None, "ci95": [lo, hi], "target": target}


def tally(rows: list[dict[str, Any]]) -> tuple[int, int]:
    """(rows called slower, rows compared: both sides ok)."""
    compared = [r for r in rows if r["verdict"] in (stats.SLOWER, stats.FASTER, stats.SAME)]
    return sum(r["verdict"] == stats.SLOWER for r in compared), len(compared)


def ratio_summary(ratios: list[float | None]) -> dict[str, Any]:
    x = np.asarray([r for r in ratios if r is not None and math.isfinite(r)], dtype=float)
    if not x.size:
        return {"n": 0}
    return {"n": int(x.size), "min": x.min(), "median": np.median(x), "max": x.max()}


def by_configuration(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration: times compared, times called slower, median ratio."""
    seen: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        seen[r["label"]].append(r)
    out = []
    for label, rs in sorted(seen.items()):
        flagged, n = tally(rs)
        ratios = [r["ratio"] for r in rs if r["ratio"] is not None]
        median = float(np.median(ratios)) if ratios else None
        out.append({"label": label, "flagged": flagged, "of": n, "median_ratio": median})
    return out


def summarize(records: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    """validate.json: ``info`` (settings, command, date...), the four rates over the quiet runs
    and their verdicts, the same rates over every run (``checks_all_runs``) and the loaded
    runs."""
    quiet = [r for r in records if not loaded(r)]
    checks, verdict, (aa, det, aa_rows, slowed) = _rates(quiet)
    everything = _rates(records)[0]
    cpu = machine.cpu()
    host = {"host": os.uname().nodename, "cpu": cpu.get("model"), "cores": cpu.get("cores")}
    doc = {**info, "runs": {"aa": len(aa), "detection": len(det)}, "checks": checks}
    doc.update(
        passed=verdict,
        pass_=all(verdict.values()) and bool(aa),
        detection_by_configuration=by_configuration(slowed),
        aa_flagged=[c for c in by_configuration(aa_rows) if c["flagged"]],
        checks_all_runs=everything,
        loaded_runs=[
            {
                "trial": r["trial"],
                "phase": r["phase"],
                "under_load": load_share(r),
                "exit_code": r["exit_code"],
                "slower": sorted(row["label"] for row in r["rows"] if row["verdict"] == "slower"),
            }
            for r in records
            if loaded(r)
        ],
        measurements={
            k: sum(r.get(k, 0) for r in records)
            for k in ("measurements", "measurements_redone", "measurements_under_load")
        },
        elapsed_s=[r.get("elapsed_s") for r in records],
        machine=host,
    )
    doc["pass"] = doc.pop("pass_")
    return json.loads(json.dumps(doc, default=float))  # NumPy numbers as plain ones


def _rates(records: list[dict[str, Any]]) -> tuple[dict, dict, tuple]:
    """The four rates of ``records`` and their verdicts (and the runs and rows they count)."""
    aa = [r for r in records if r["phase"] == "aa"]
    det = [r for r in records if r["phase"] == "detection"]
    aa_rows = [row for r in aa for row in r["rows"]]
    slowed = [row for r in det for row in r["rows"] if row["slowed"]]
    others = [row for r in det for row in r["rows"] if not row["slowed"]]
    per_config = rate(*tally(aa_rows), f"<= {PER_CONFIG_TARGET:.1%}")
    per_config["ratios"] = ratio_summary([r["ratio"] for r in aa_rows])
    per_run = rate(sum(r["exit_code"] == 1 for r in aa), len(aa), f"<= {PER_RUN_TARGET:.0%}")
    detection = rate(*tally(slowed), f">= {DETECTION_TARGET:.0%}")
    detection["ratios"] = ratio_summary([r["ratio"] for r in slowed])
    elsewhere = rate(*tally(others), f"<= {PER_CONFIG_TARGET:.1%}")
    checks = {
        "false_alarm_per_configuration": per_config,
        "false_alarm_per_run": per_run,
        "detection": detection,
        "false_alarm_elsewhere": elsewhere,
    }
    verdict = {
        "false_alarm_per_configuration": _at_most(per_config, PER_CONFIG_TARGET),
        "false_alarm_per_run": _at_most(per_run, PER_RUN_TARGET),
        "detection": det != [] and (detection["rate"] or 0.0) >= DETECTION_TARGET,
        "false_alarm_elsewhere": det == [] or _at_most(elsewhere, PER_CONFIG_TARGET),
    }
    return checks, verdict, (aa, det, aa_rows, slowed)


def _at_most(r: dict[str, Any], target: float) -> bool:
    return r["of"] > 0 and r["rate"] <= target


NAMES = {
    "false_alarm_per_configuration": "false alarms per configuration (A/A)",
    "false_alarm_per_run": "A/A runs that exit 1",
    "detection": "detection of the slowed kernel",
    "false_alarm_elsewhere": "false alarms elsewhere (detection runs)",
}


def table(doc: dict[str, Any]) -> list[list[str]]:
    out = [["check", "flagged", "of", "rate", "95% CI", "target", "result"]]
    for key, name in NAMES.items():
        c = doc["checks"][key]
        ci = f"[{fmt.fmt_pct(c['ci95'][0])}, {fmt.fmt_pct(c['ci95'][1])}]"
        result = "pass" if doc["passed"][key] else ("-" if not c["of"] else "FAIL")
        out.append(
            [name, str(c["count"]), str(c["of"]), fmt.fmt_pct(c["rate"]), ci, c["target"], result]
        )
    return out


def _how(doc: dict[str, Any]) -> str:
    m, s = doc["machine"], doc["settings"]
    took = [t for t in doc["elapsed_s"] if t]
    per_run = f", {np.median(took) / 60:.1f} min a run" if took else ""
    loaded_runs = len(doc.get("loaded_runs") or [])
    aside = f" (and {loaded_runs} loaded, below)" if loaded_runs else ""
    return (
        f"{doc['runs']['aa']} A/A and {doc['runs']['detection']} detection run(s){aside} of "
        f"{s['configurations']} configurations ({s['preset']} preset), each as bench ab runs it: "
        f"{s['repeats']} screening pass(es), {s['confirm']} confirming passes for up to "
        f"{s['max_suspects']} suspects, factor {s['factor']:g}, family-wise alpha "
        f"{doc['alpha']:g}; "
        f"detection: {s['slowed']} x{s['slowdown']:g}; {m['host']} ({m['cpu']}, {m['cores']} "
        f"cores){per_run}"
    )


def _missed(doc: dict[str, Any]) -> list[str]:
    rows = [c for c in doc["detection_by_configuration"] if c["flagged"] < c["of"]]
    return [
        f"missed: {c['label']} {c['of'] - c['flagged']} of {c['of']} "
        f"(median ratio x{c['median_ratio']:.3f})"
        for c in rows
        if c["median_ratio"] is not None
    ]


def _busy(doc: dict[str, Any]) -> list[str]:
    """The loaded runs, left out of the rates above, and the rates with them."""
    runs = doc.get("loaded_runs") or []
    if not runs:
        return []
    every = doc["checks_all_runs"]
    listed = "; ".join(
        f"{r['phase']} run {r['trial']}: {r['under_load']:.0%} of its measurements under load, "
        f"exit {r['exit_code']}, {len(r['slower'])} slower"
        for r in runs
    )
    rates = ", ".join(
        f"{NAMES[k]} {every[k]['count']}/{every[k]['of']}" for k in NAMES if every[k]["of"]
    )
    return [
        f"{len(runs)} loaded run(s) (other jobs kept the CPUs busy through more than "
        f"{LOADED_SHARE:.0%} of the measurements; bench ab warned of each) are left out of the "
        f"rates above: {listed}",
        f"every run, loaded ones included: {rates}",
    ]


def format_text(doc: dict[str, Any]) -> str:
    head, *body = table(doc)
    lines = [fmt.text_table(head, body), "", f"{'PASS' if doc['pass'] else 'FAIL'}: {_how(doc)}"]
    lines += _busy(doc)
    lines += [f"A/A flagged: {c['label']} {c['flagged']} of {c['of']}" for c in doc["aa_flagged"]]
    return "\n".join([*lines, *_missed(doc)])


def format_markdown(doc: dict[str, Any]) -> str:
    head, *body = table(doc)
    lines = ["## bench validate", "", f"**{'PASS' if doc['pass'] else 'FAIL'}**: {_how(doc)}.", ""]
    lines.append(fmt.markdown_table(head, body))
    lines += [f"> {w}" for w in _busy(doc)]
    lines += ["", f"- command: `{doc['command']}`", f"- first run: {doc['date']}"]
    lines += [f"- {x}" for x in _missed(doc)]
    lines += [
        f"- A/A flagged: `{c['label']}` {c['flagged']} of {c['of']}" for c in doc["aa_flagged"]
    ]
    return "\n".join(lines) + "\n"
