"""What a run learns of the machine before (and after) it measures, each in a fresh worker: which
backends are present (the probe) and their peaks (matmul FLOP/s per dtype, bandwidth)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import protocol
from ..format import say
from ..results.machine import ROOT
from .pool import WORKER_ERRORS, one_request

#: peak figures where the best of two measurements is the machine's limit
PEAK_RATES = ("matmul_flops_per_s", "bandwidth_bytes_per_s", "copy_bytes_per_s", "read_bytes_per_s")


def probe(backends: list[str], log_dir: Path, tree: Path = ROOT) -> tuple[dict, dict]:
    """``(probe, present)``: the worker's probe of ``backends`` (versions, each backend's facts
    or why it is absent) and the present ones."""
    found = one_request(tree, log_dir / "probe.log", protocol.probe(backends), "probe")
    present = {b: i for b, i in found["backends"].items() if "error" not in i}
    return found, present


def peaks(
    present: dict[str, Any],
    keys: list[str],
    log_dir: Path,
    *,
    quick: bool,
    tag: str = "",
    thin_batches: list[int] = (),
) -> dict[str, Any]:
    """Each present backend's peaks of the arithmetic ``keys`` (and the ``[784, 10]`` dot
    ceilings at ``thin_batches``), measured in a fresh worker (a warning, and none, for a
    backend where that fails)."""
    out: dict[str, Any] = {}
    for b in present:
        log = log_dir / f"peaks-{b}{tag}.log"
        request = protocol.peaks(b, keys, quick, thin_batches)
        try:
            answer = one_request(ROOT, log, request, "peaks", backend=b)
        except WORKER_ERRORS as e:
            say(f"warning: could not measure the {b} peaks ({e}); peak_fraction will be empty")
            continue
        out[b] = answer["peaks"]
    return out


def best_peaks(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """The higher of two peak measurements, per backend, dtype and figure: a peak measured
    during a slow spell of a shared machine is too low, and would put rows above 100%."""
    out = json.loads(json.dumps(first))
    for backend, by_dtype in second.items():
        for dtype, figures in by_dtype.items():
            mine = out.setdefault(backend, {}).setdefault(dtype, dict(figures))
            for key in PEAK_RATES:
                if isinstance(figures.get(key), (int, float)):
                    mine[key] = max(mine.get(key) or 0.0, figures[key])
            launch = figures.get("launch") or {}
            if (launch.get("launch_s") or float("inf")) < (
                (mine.get("launch") or {}).get("launch_s") or float("inf")
            ):
                mine["launch"] = dict(launch)  # the cheaper launch: a slow spell adds to it
            for batch, ceiling in (figures.get("thin_dots") or {}).items():
                have = mine.setdefault("thin_dots", {}).get(batch)
                rate = ceiling.get("ceiling_flops_per_s") or 0.0
                if have is None or rate > (have.get("ceiling_flops_per_s") or 0.0):
                    mine["thin_dots"][batch] = dict(ceiling)
    return out
