"""The trials of ``bench validate``: fixed configurations measured the way ``bench ab`` does
(:mod:`bench.runner.ab`), once with the same code on both sides (A/A) and once with one side
doing more work (detection), each compared by the regression rule; the verdicts are tallied by
:mod:`bench.regression.validation`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from .. import catalog, protocol, selection
from ..format import say
from ..protocol import TimingSettings
from ..regression.sides import load_input
from ..regression.verdicts import CompareSettings, compare
from ..results import machine
from ..results.rundir import RunDir
from . import ab
from .loop import Arm

WORK_SCALE = 1.2

#: named sets of (layer sizes, batch size), jit update: steps of 1-60 ms on 2 cores whose time
#: grows in proportion to the batch (1.2x the examples: 1.15-1.25x the time).
CONFIG_SETS: dict[str, tuple[tuple[tuple[int, ...], int], ...]] = {
    "default": (
        ((784, 256, 256, 10), 1024),
        ((784, 512, 512, 10), 1024),
        (catalog.DEEP, 1024),
        (catalog.LOGREG, 2048),
    ),
    "quick": (((784, 256, 256, 10), 1024), ((784, 512, 512, 10), 1024), (catalog.LOGREG, 2048)),
    "small": (((784, 256, 256, 10), 256),),  # for tests: one cheap configuration
}
DEFAULT_TRIALS = 4
QUICK_TRIALS = 1
#: passes per side, as `bench ab --repeats`: each side pools its fastest passes.
DEFAULT_REPEATS = 3


def specs_for(configs: str, backend: str, info: dict[str, Any]) -> list[dict[str, Any]]:
    """The jit update specs of a named configuration set on ``backend``."""
    sets = CONFIG_SETS[configs]
    grids = [selection.Grid("validate", ("jit",), ("update",), (s,), (b,)) for s, b in sets]
    return selection.expand(grids, backends={backend: info})[0]


def with_work_scale(scale: float):
    def transform(spec: dict[str, Any]) -> dict[str, Any]:
        return {**spec, "work_scale": scale}

    return transform


@dataclasses.dataclass
class Trials:
    """The A/A and detection runs of every trial, each with its own fresh workers."""

    out: Path
    specs: list[dict[str, Any]]
    timing: TimingSettings
    common: dict[str, Any]  # metadata.json keys both sides share (machine.metadata)
    rule: CompareSettings
    scale: float = WORK_SCALE
    repeats: int = DEFAULT_REPEATS
    dataset: str = "fashion-mnist"
    quiet: bool = False
    max_foreign_load: float = ab.DEFAULT_MAX_FOREIGN_LOAD
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    redone: int = 0  # measurement pairs done again because other jobs loaded the machine
    loaded: int = 0  # pairs kept under such load (the retries did not find it quiet)
    pairs: int = 0

    def phase(self, trial: int, phase: str) -> list[dict[str, Any]]:
        where = self.out / "trials" / f"{trial:02d}-{phase}"
        run_id = f"{machine.run_id()}-{trial:02d}-{phase}"
        scale = self.scale if phase == "detection" else 1.0
        transform = with_work_scale(scale) if phase == "detection" else None
        arms = [
            Arm("a", RunDir(where / "a"), f"{run_id}-a"),
            Arm("b", RunDir(where / "b"), f"{run_id}-b", transform=transform),
        ]
        n = selection.n_examples(self.specs, self.scale)
        init = protocol.init(self.dataset, None, n, self.timing)
        settings = ab.AbSettings(
            passes=self.repeats, max_foreign_load=self.max_foreign_load, offset=trial, quiet=True
        )
        runner = ab.interleaved(arms, init, settings, log_dir=where / "logs")
        runner.run(self.specs)
        self.redone, self.loaded = self.redone + runner.redone, self.loaded + runner.loaded
        self.pairs += runner.pairs
        for arm in arms:
            info = {"trial": trial, "phase": phase, "work_scale": 1.0 if arm.name == "a" else scale}
            ab.write_arm(arm, self.common, validate=info)
        a, b = (load_input(arm.out.path) for arm in arms)
        rows = [self._row(trial, phase, r) for r in compare(a, b, self.rule).rows]
        self.rows += rows
        return rows

    def _row(self, trial: int, phase: str, r: Any) -> dict[str, Any]:
        if not self.quiet:
            ratio = f"x{r.ratio:.3f}" if r.ratio is not None else "-"
            p = f"{r.p:.2g}" if r.p is not None else "-"
            say(f"trial {trial + 1} {phase:<9} {r.label:<40} {ratio:>7} p={p:<7} {r.verdict}")
        return {
            "trial": trial,
            "phase": phase,
            "label": r.label,
            "verdict": r.verdict,
            "ratio": r.ratio,
            "p": r.p,
            "n_a": r.n_base,
            "n_b": r.n_cur,
            "note": r.note,
        }
