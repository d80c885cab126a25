"""Interleaved A/B measurement, shared by ``bench ab`` (two commits) and ``bench validate`` (the
same code twice, or one side doing more work): two arms in the
:class:`~bench.runner.loop.Runner`, each spec measured by both back to back, the one going first
alternating, each side in a worker process importing its own tree; ``passes`` passes with fresh
workers, each side's fastest passes pooled. A measurement during which other jobs used more
than ``max_foreign_load`` of the CPUs, or around which a worker's canary ran slow (a worker of
a commit from before the canary reports none), is redone, both sides.

On a small shared machine a worker can run slow for its whole life and the machine has slow
spells, 10-80% slower; interference only ever slows a measurement down, while a real slowdown
slows every pass (``bench validate`` measures what this buys).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from .. import selection, stats
from ..format import say
from ..protocol import TimingSettings
from ..results import machine
from ..selection import Selection
from . import doctor, probe
from .loop import MAX_CANARY_RATIO, Arm, RetryPolicy, Runner, Spec
from .pool import DEFAULT_TIMEOUT_S, WorkerMeasurer
from .progress import Progress

DEFAULT_MAX_FOREIGN_LOAD = 0.05  # of all CPUs: a measurement under more is done again
DEFAULT_RETRIES = 3
#: fresh interleaved passes for each configuration that looks slower after the planned ones
DEFAULT_CONFIRM_PASSES = 16
#: at most this many suspects are confirmed, the most suspect first (a change that slows
#: everything needs no more to fail, and the time stays bounded)
MAX_SUSPECTS = 20


@dataclasses.dataclass(frozen=True)
class AbSettings:
    """How an A/B measures (see the module docstring)."""

    passes: int = 1
    timeout: float = DEFAULT_TIMEOUT_S
    max_foreign_load: float = DEFAULT_MAX_FOREIGN_LOAD
    offset: int = 0
    quiet: bool = False
    #: passes that confirm a suspect (0: no screening, every configuration judged on all passes)
    confirm: int = DEFAULT_CONFIRM_PASSES
    max_suspects: int = MAX_SUSPECTS


def plan(
    chosen: Selection, out: Path, *, with_peaks: bool = False
) -> tuple[dict[str, Any], dict[str, Any], list[Spec], list[dict[str, Any]]]:
    """The backends probed (and the peaks measured, ``with_peaks``) into ``out``, and the specs
    of ``chosen``: ``(metadata both sides share, peaks, specs, skipped)``. ValueError when
    nothing can run."""
    from .sweep import peers_missing_reason

    found, present, notes = doctor.checked_probe(list(chosen.backends), out)
    if not present:
        raise ValueError(f"none of the backends {', '.join(chosen.backends)} is present here")
    specs, skipped = chosen.expand(present, peers_missing_reason())
    skipped = skipped + notes
    if not specs:
        raise ValueError(selection.nothing_to_run(skipped))
    quick = chosen.preset in selection.SHORT_PRESETS
    keys = selection.peak_keys(specs)
    peaks = probe.peaks(present, keys, out, quick=quick) if with_peaks else {}
    common = machine.metadata(
        "",
        found,
        present,
        requested_backends=",".join(present),
        preset=chosen.preset,
        peaks=peaks,
        skipped=skipped,
        configurations=len(specs),
        arithmetic=selection.arithmetic(specs),
        settings=TimingSettings.preset(chosen.preset).to_json(),
    )
    return common, peaks, specs, skipped


def interleaved(
    arms: list[Arm],
    init: dict[str, Any],
    settings: AbSettings,
    *,
    log_dir: Path,
    peaks: dict[str, Any] | None = None,
) -> Runner:
    """The runner that measures specs with ``arms`` interleaved; its ``redone``, ``loaded`` and
    ``pairs`` count the measurements redone, left under load and made. When interrupted, it has
    recorded the rows measured so far."""
    for arm in arms:
        if arm.out is not None:
            arm.out.create()
    measurer = WorkerMeasurer(init, log_dir, timeout=settings.timeout, track_load=True)
    return Runner(
        arms,
        measurer,
        passes=settings.passes,
        offset=settings.offset,
        peaks=peaks,
        retry=RetryPolicy(settings.max_foreign_load, MAX_CANARY_RATIO, DEFAULT_RETRIES),
        progress=Progress(quiet=settings.quiet, bar=False),
        keep_partial=True,
        screen=settings.confirm > 0,
    )


def screen_threshold(factor: float) -> float:
    """A configuration whose planned passes give a ratio above this is a suspect: the square
    root of the factor, halfway to it on a log scale, so a real slowdown of the factor's size
    is rarely screened out, and what is screened out (below it) cannot be called slower."""
    return math.sqrt(factor)


def suspects(runner: Runner, specs: list[Spec], factor: float) -> list[tuple[float, Spec]]:
    """The specs whose passes so far put head above :func:`screen_threshold` against base (by
    :func:`bench.stats.compare_passes`, as the comparison will), the most suspect first."""
    base, head = runner.arms

    def medians(arm: Arm, spec: Spec) -> list[float | None]:
        return [
            r.get("step_median_s") if r.get("status") == "ok" else None
            for r in runner.measured_passes(arm, spec)
        ]

    out = []
    for spec in specs:
        cmp = stats.compare_passes(medians(base, spec), medians(head, spec), paired=True)
        if math.isfinite(cmp.ratio) and cmp.ratio > screen_threshold(factor):
            out.append((cmp.ratio, spec))
    return sorted(out, key=lambda x: -x[0])


def measure(runner: Runner, specs: list[Spec], settings: AbSettings, factor: float) -> int:
    """The planned passes of ``specs``, then ``settings.confirm`` fresh passes of the suspects
    (at most ``settings.max_suspects``), then every row recorded; the number confirmed.

    Every row says whether its configuration was a suspect (``suspect``) and how many passes
    came before the confirmation (``passes_screen``): a suspect is judged on its confirming
    passes alone, which the screening did not see, so picking the suspects does not bias the
    test (:mod:`bench.regression.verdicts`).
    """
    runner.run(specs)
    if settings.confirm <= 0:
        return 0
    found = suspects(runner, specs, factor)
    chosen = [spec for _, spec in found[: settings.max_suspects]]
    for spec in specs:
        runner.extra[spec["config_id"]] = {"suspect": False}
    for ratio, spec in found:
        runner.extra[spec["config_id"]] = {"suspect": True, "screen_ratio": ratio}
    if chosen:
        if not settings.quiet:
            more = (
                f" (the {len(chosen)} most suspect of {len(found)})" if found[len(chosen) :] else ""
            )
            say(
                f"{len(chosen)} configuration(s) above x{screen_threshold(factor):.3f}{more}: "
                f"{settings.confirm} more interleaved passes each to confirm or clear them"
            )
        runner.extend(chosen, settings.confirm)
    runner.finish(specs)
    return len(chosen)


def write_arm(arm: Arm, common: dict[str, Any], **extra: Any) -> None:
    """The arm's ``metadata.json`` (``common``, from :func:`bench.results.machine.metadata`,
    with this arm's run id, commit and dataset) and its ``results.csv``."""
    assert arm.out is not None
    meta = {**common, "run_id": arm.run_id, "git": machine.git(arm.tree), **extra}
    meta.update(dataset=arm.dataset or None, end_time=machine.now())
    arm.out.create().write_metadata(meta)
    arm.out.write_csv()


def ok_on_every_side(arms: list[Arm]) -> set[str]:
    """The configurations every arm measured ``ok``."""
    return set.intersection(*(arm.out.done(ok_only=True) for arm in arms if arm.out is not None))
