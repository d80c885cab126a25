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
from pathlib import Path
from typing import Any

from ..results import machine
from .loop import MAX_CANARY_RATIO, Arm, RetryPolicy, Runner
from .pool import DEFAULT_TIMEOUT_S, WorkerMeasurer
from .progress import Progress

DEFAULT_MAX_FOREIGN_LOAD = 0.05  # of all CPUs: a measurement under more is done again
DEFAULT_RETRIES = 3


@dataclasses.dataclass(frozen=True)
class AbSettings:
    """How an A/B measures (see the module docstring)."""

    passes: int = 1
    timeout: float = DEFAULT_TIMEOUT_S
    max_foreign_load: float = DEFAULT_MAX_FOREIGN_LOAD
    offset: int = 0
    quiet: bool = False


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
    )


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
