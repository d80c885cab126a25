"""How often does the comparison cry wolf, and how often does it catch a real slowdown? The
arithmetic of ``python -m bench validate``: verdicts tallied into rates with exact intervals,
judged against the targets, summarised and rendered. (The trials themselves are run by
:mod:`bench.commands.validate` through :mod:`bench.runner.ab`.)
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from .. import format as fmt
from .. import stats
from ..results import machine

FALSE_ALARM_TARGET = 0.01
DETECTION_TARGET = 0.95
WORK_SCALE = 1.2


def tally(verdicts: list[str]) -> dict[str, Any]:
    """Counts of compare verdicts: rows compared (both sides ok), flagged ``slower``, the rate."""
    rows = sum(v in (stats.SLOWER, stats.FASTER, stats.SAME) for v in verdicts)
    flagged = sum(v == stats.SLOWER for v in verdicts)
    out = {"rows": rows, "flagged": flagged, "faster": verdicts.count(stats.FASTER)}
    out.update(errors=len(verdicts) - rows, rate=flagged / rows if rows else None)
    out["rate_ci95"] = list(clopper_pearson(flagged, rows))
    return out


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Exact binomial interval of a rate ``k / n`` (None, None for n = 0)."""
    if n <= 0:
        return None, None
    from scipy.stats import beta

    a = (1 - confidence) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def judge(false_alarm: dict[str, Any], detection: dict[str, Any]) -> dict[str, bool]:
    """Pass/fail of each target; a rate over no rows fails."""
    fa, det = false_alarm["rate"], detection["rate"]
    fa_ok = fa is not None and fa <= FALSE_ALARM_TARGET
    det_ok = det is not None and det >= DETECTION_TARGET
    return {"false_alarm_pass": fa_ok, "detection_pass": det_ok, "pass": fa_ok and det_ok}


def ratio_summary(ratios: list[float | None]) -> dict[str, Any]:
    x = np.asarray([r for r in ratios if r is not None and math.isfinite(r)], dtype=float)
    if not x.size:
        return {"n": 0}
    return {"n": int(x.size), "min": x.min(), "median": np.median(x), "max": x.max()}


def summarize(rows: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    """validate.json: ``info`` (trials, settings, command, date...), the rates and verdicts."""
    aa = [r for r in rows if r["phase"] == "aa"]
    det = [r for r in rows if r["phase"] == "detection"]
    fa, dt = tally([r["verdict"] for r in aa]), tally([r["verdict"] for r in det])
    fa["target"], dt["target"] = f"<= {FALSE_ALARM_TARGET:.0%}", f">= {DETECTION_TARGET:.0%}"
    fa["ratios"] = ratio_summary([r["ratio"] for r in aa])
    dt["ratios"] = ratio_summary([r["ratio"] for r in det])
    cpu = machine.cpu()
    host = {"host": os.uname().nodename, "cpu": cpu.get("model"), "cores": cpu.get("cores")}
    doc = {**info, "configurations": sorted({r["label"] for r in rows})}
    doc.update(false_alarm=fa, detection=dt, **judge(fa, dt), machine=host, rows=rows)
    return json.loads(json.dumps(doc, default=float))  # NumPy numbers as plain ones


def table(doc: dict[str, Any]) -> list[list[str]]:
    head = "check|trials|rows|flagged slower|rate|95% CI|target|ratios min/median/max|result"
    out = [head.split("|")]
    for key in ("false_alarm", "detection"):
        t, r = doc[key], doc[key]["ratios"]
        name = (
            "false alarms (A/A)"
            if key == "false_alarm"
            else f"detection (x{doc['work_scale']:g} work)"
        )
        ratios = f"{r['min']:.3f} / {r['median']:.3f} / {r['max']:.3f}" if r["n"] else "-"
        ci = f"[{fmt.fmt_pct(t['rate_ci95'][0])}, {fmt.fmt_pct(t['rate_ci95'][1])}]"
        counts = [str(doc["trials"]), str(t["rows"]), str(t["flagged"]), fmt.fmt_pct(t["rate"]), ci]
        out.append([name, *counts, t["target"], ratios, "pass" if doc[f"{key}_pass"] else "FAIL"])
    return out


def _how(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    return (
        f"factor {doc['factor']:g}, alpha {doc['alpha']:g}, {doc['repeats']} pass(es) a side, "
        f"the fastest pooled (bench ab --repeats {doc['repeats']}), timing {doc['timing']}, "
        f"{doc['measurements_redone']} measurement(s) redone and {doc['measurements_under_load']}"
        f" of {doc['measurements']} kept under other jobs' load; "
        f"{m['host']} ({m['cpu']}, {m['cores']} cores), {doc['date']}, {doc['elapsed_s']:.0f} s"
    )


def format_text(doc: dict[str, Any]) -> str:
    head, *body = table(doc)
    lines = [fmt.text_table(head, body)]
    return "\n".join([*lines, "", f"{'PASS' if doc['pass'] else 'FAIL'}: {_how(doc)}", *_busy(doc)])


def _busy(doc: dict[str, Any]) -> list[str]:
    """A warning when other jobs loaded the machine through much of the run."""
    if doc["measurements_under_load"] <= 0.1 * doc["measurements"]:
        return []
    return [
        "WARNING: other jobs kept the CPUs busy through much of this run: the rates describe "
        "a loaded machine, not this one at rest; run it again when the machine is quiet"
    ]


def format_markdown(doc: dict[str, Any]) -> str:
    head, *body = table(doc)
    lines = ["## bench validate", "", f"**{'PASS' if doc['pass'] else 'FAIL'}**: {_how(doc)}.", ""]
    lines.append(fmt.markdown_table(head, body))
    configs = "; ".join(f"`{c}`" for c in doc["configurations"])
    lines += ["", *(f"> {w}" for w in _busy(doc))]
    lines += ["", f"- command: `{doc['command']}`", f"- configurations: {configs}"]
    lines.append(
        f"- rule: slower = median ratio > {doc['factor']:g} and Mann-Whitney U p < {doc['alpha']:g}"
    )
    return "\n".join(lines) + "\n"
