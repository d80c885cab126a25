"""The trials of ``bench validate``: the configurations ``nox -s regress`` checks, measured and
judged exactly as ``bench ab`` does (:func:`bench.runner.ab.measure`: screening passes, confirming
passes for the suspects, the comparison's rule), once with the same code on both sides (A/A)
and once with one kernel slowed down (detection). Each trial's verdicts go to
``OUT/trials/NNN-PHASE/trial.json``, so trials accumulate across sittings; they are tallied by
:mod:`bench.regression.validation`."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from ..format import say
from ..regression.sides import InputError, load_input
from ..regression.verdicts import CompareSettings, compare
from ..results import machine
from ..results.rundir import RunDir
from . import ab
from .loop import Arm, Spec

AA, DETECTION = "aa", "detection"
PHASES = (AA, DETECTION)
#: the slowdown injected in the detection trials: every step of the slowed kernel is called
#: this many times on average (protocol field ``slowdown``), x1.2 at any size
SLOWDOWN = 1.2
#: the kernel slowed by default: ``variant:kernel``
DEFAULT_SLOWED = "jit:update"


def slowed_kernel(text: str) -> tuple[str, str]:
    """``variant:kernel`` as a pair; ValueError otherwise."""
    variant, _, kernel = text.partition(":")
    if not variant or kernel not in ("update", "predict"):
        raise ValueError(f"{text!r}: give VARIANT:KERNEL, e.g. jit:update (update or predict)")
    return variant, kernel


def slows(spec: Spec, target: tuple[str, str]) -> bool:
    return (spec["variant"], spec["kernel"]) == target


def slowing(target: tuple[str, str], factor: float):
    """The transform of the detection trials' second arm: ``slowdown`` on the target's specs."""

    def transform(spec: Spec) -> Spec:
        return {**spec, "slowdown": factor} if slows(spec, target) else spec

    return transform


@dataclasses.dataclass
class Trials:
    """The A/A and detection runs of every trial, each with its own fresh workers.

    Attributes:
      out: ``OUT`` of ``bench validate``; trials go to ``OUT/trials``.
      specs: the configurations (planned by :mod:`bench.selection`, as ``bench ab`` plans them).
      init: the workers' init request (dataset, timing settings).
      common: ``metadata.json`` keys both sides share (:func:`bench.results.machine.metadata`).
      rule: the comparison's rule (paired).
      settings: how each run measures (``bench ab``'s passes, confirmation, retries).
      target: the ``(variant, kernel)`` slowed in the detection trials.
      slowdown: by how much.
    """

    out: Path
    specs: list[Spec]
    init: dict[str, Any]
    common: dict[str, Any]
    rule: CompareSettings
    settings: ab.AbSettings
    target: tuple[str, str]
    slowdown: float = SLOWDOWN

    def run(self, trial: int, phase: str) -> dict[str, Any]:
        """One A/B of the trial's phase; its record (also written to ``trial.json``)."""
        where = self.out / "trials" / f"{trial:03d}-{phase}"
        run_id = f"{machine.run_id()}-{trial:03d}-{phase}"
        transform = slowing(self.target, self.slowdown) if phase == DETECTION else None
        arms = [
            Arm("a", RunDir(where / "a"), f"{run_id}-a"),
            Arm("b", RunDir(where / "b"), f"{run_id}-b", transform=transform),
        ]
        settings = dataclasses.replace(self.settings, offset=trial)
        t0 = time.monotonic()
        runner = ab.interleaved(arms, self.init, settings, log_dir=where / "logs")
        confirmed = ab.measure(runner, self.specs, settings, self.rule.factor)
        for arm in arms:
            info = {"trial": trial, "phase": phase, "slowed": arm.name == "b" and bool(transform)}
            ab.write_arm(arm, self.common, validate=info)
        record = {
            "trial": trial,
            "phase": phase,
            "elapsed_s": round(time.monotonic() - t0, 1),
            "suspects_confirmed": confirmed,
            "measurements": runner.pairs,
            "measurements_redone": runner.redone,
            "measurements_under_load": runner.loaded,
        }
        (where / "trial.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
        return judge(where, record, self.rule, self.target)


def judge(
    where: Path, record: dict[str, Any], rule: CompareSettings, target: tuple[str, str]
) -> dict[str, Any]:
    """``record`` with the verdicts of the run in ``where`` (its ``a`` and ``b`` run
    directories) by ``rule``: judged when read, so every stored run is judged by today's rule."""
    a, b = load_input(where / "a"), load_input(where / "b")
    rep = compare(a, b, rule)
    phase = record["phase"]
    return {
        **record,
        "exit_code": rep.exit_code,
        "rows": [_row(phase == DETECTION, target, r) for r in rep.rows],
    }


def _row(detection: bool, target: tuple[str, str], r: Any) -> dict[str, Any]:
    slowed = detection and (r.config.get("variant"), r.config.get("kernel")) == target
    passes = r.passes
    return {
        "label": r.label,
        "variant": r.config.get("variant"),
        "kernel": r.config.get("kernel"),
        "slowed": slowed,
        "verdict": r.verdict,
        "ratio": r.ratio,
        "p": r.p,
        "family": r.family,
        "passes": passes.n_cur if passes is not None else None,
    }


def load_trials(out: Path, rule: CompareSettings, target: tuple[str, str]) -> list[dict[str, Any]]:
    """Every finished run under ``out/trials``, in order, judged by ``rule``."""
    found = []
    for path in sorted((out / "trials").glob("*/trial.json")):
        try:
            found.append(judge(path.parent, json.loads(path.read_text()), rule, target))
        except (OSError, ValueError, InputError) as e:
            say(f"warning: {path.parent} is unreadable ({e}); that run is left out")
    return found
