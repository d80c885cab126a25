"""The orchestration loop every command shares (as pyperf's runner and asv's
``run_benchmarks`` serve all of theirs): specs measured by one or more *arms*, in passes,
recorded in each arm's run directory.

- An :class:`Arm` is one side of a measurement: the source tree its workers import, the run
  directory its rows go to, its run id. ``bench run`` has one arm; ``bench ab`` and ``bench
  validate`` two, measured back to back on every spec, the one going first alternating from one
  spec and pass to the next, so a drift of the machine hits both alike.
- A *measurer* turns a spec into a row for an arm: :class:`bench.runner.pool.WorkerMeasurer`
  (worker processes, with timeouts and failure rows) or, for a ``jax.distributed`` run, an
  in-process one (:mod:`bench.measure.distributed`).
- *Passes*: each group of specs (those one worker process can measure: same backend and device
  count) is measured ``passes`` times, each pass with fresh workers; every pass as measured goes
  to ``repeats.jsonl`` and the row of a spec pools its fastest passes
  (:func:`bench.results.rows.merge_passes`) once its last pass is done.
- A :class:`RetryPolicy` redoes the measurement of a spec (every arm) while other processes
  keep the CPUs busy or the worker's canary runs slow, and marks what stays disturbed.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .. import selection
from ..format import say
from ..results import rows, schema
from ..results.machine import ROOT
from ..results.rundir import RunDir
from .progress import Progress

Spec = Row = dict[str, Any]


@dataclasses.dataclass
class Arm:
    """One side of a measurement.

    Attributes:
      name: ``""`` for the one arm of a sweep; ``base``/``head`` (``bench ab``), ``a``/``b``.
      out: where its rows go (None: not recorded, e.g. every process but the first of a
        distributed run).
      run_id: the run id its rows carry.
      tree: the source tree its workers import.
      transform: changes the spec its worker gets (``bench validate``), not the row's identity.
      dataset: what its workers loaded (filled in by the measurer).
      counts: rows recorded, by status.
    """

    name: str
    out: RunDir | None
    run_id: str
    tree: Path = ROOT
    transform: Callable[[Spec], Spec] | None = None
    dataset: dict[str, Any] = dataclasses.field(default_factory=dict)
    counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)


class Measurer(Protocol):
    def start(self, arm: Arm, backend: str, n_devices: int) -> None: ...
    def measure(self, arm: Arm, spec: Spec) -> Row: ...
    def stop(self, arm: Arm, kill: bool = False) -> None: ...
    def prepare(self, arm: Arm) -> None: ...


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """When a measurement was disturbed, and how often to take it again (every arm).

    A measurement is disturbed when other processes used more than ``max_foreign_load`` of the
    CPUs meanwhile (``foreign_load``, ``bench ab``), or when the worker's canary ran more than
    ``max_canary_ratio`` times its best around it (``canary_ratio``); ``None`` disables either
    test. It is taken again up to ``retries`` times, ``backoff_s`` times the attempt apart
    (the spell may pass); a measurement still disturbed is kept and marked ``unstable``. Retries
    stop being spent while the last two specs found the machine disturbed all along.
    """

    max_foreign_load: float | None = 0.05
    max_canary_ratio: float | None = None
    retries: int = 3
    backoff_s: float = 0.5

    def disturbance(self, row: Row) -> str | None:
        """Why ``row``'s measurement was disturbed, or None."""
        load, canary = row.get("foreign_load"), row.get("canary_ratio")
        if self.max_foreign_load is not None and (load or 0.0) > self.max_foreign_load:
            return f"other jobs used {load:.0%} of the CPUs meanwhile"
        if self.max_canary_ratio is not None and (canary or 0.0) > self.max_canary_ratio:
            return f"the canary ran ×{canary:.2f} its best"
        return None


#: a measurement around which the worker's canary ran this much slower than its best is redone:
#: a quiet check is within 1.15 of the best (see :mod:`bench.measure.canary`), two busy processes
#: on two cores make 1.2-3, and the slow spells worth catching are x2 and more
MAX_CANARY_RATIO = 1.5
#: the sweep's policy: the worker's canary, two retries
SWEEP_RETRIES = RetryPolicy(max_foreign_load=None, max_canary_ratio=MAX_CANARY_RATIO, retries=2)


class Runner:
    """Measures specs with every arm in passes, records the rows (see the module docstring).

    Args:
      arms: the arms; with several, each spec is measured by all of them back to back.
      measurer: makes the rows.
      passes: measurements of each spec per arm, each pass with fresh workers.
      offset: which arm goes first on the first spec (then it alternates).
      peaks: the machine's peaks, for the derived columns.
      retry: redo disturbed measurements (None: never).
      progress: the display (None: nothing shown).
      keep_partial: on an interrupt, still record a row for every spec some pass measured.
      screen: the passes are a screening (``bench ab``): every row records ``passes_screen``,
        their number, and :meth:`extend` may add passes to some specs before :meth:`finish`
        records the rows; every pass goes to ``repeats.jsonl``.
    """

    def __init__(
        self,
        arms: list[Arm],
        measurer: Measurer,
        *,
        passes: int = 1,
        offset: int = 0,
        peaks: dict[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        progress: Progress | None = None,
        keep_partial: bool = False,
        screen: bool = False,
    ) -> None:
        self.arms, self.measurer, self.passes = arms, measurer, max(1, int(passes))
        self.offset, self.peaks, self.retry = offset, peaks or {}, retry
        self.progress, self.keep_partial, self.screen = progress, keep_partial, screen
        self.passes_done = 0  # the passes measured so far: extra ones are numbered after them
        self.extra: dict[str, dict[str, Any]] = {}  # config_id -> columns its rows also get
        self.pairs = self.loaded = self.redone = 0  # measurements; kept disturbed; redone
        self._busy = 0
        self._measured: dict[tuple[str, str], list[Row]] = {}
        self._first: dict[str, list[str]] = {}
        self._recorded: set[str] = set()
        self._kept: set[tuple[str, int]] = set()  # (config_id, pass) measured before a resume

    def keep(self, arm: Arm, passes: dict[str, dict[int, Row]]) -> None:
        """Passes of a resumed run measured before it stopped (``config_id -> {pass: row}``,
        from ``repeats.jsonl``): merged into their rows, not measured again."""
        for cid, by_pass in passes.items():
            for p, row in sorted(by_pass.items()):
                kept = {k: v for k, v in row.items() if k != schema.PASS_COLUMN}
                self._measured.setdefault((arm.name, cid), []).append(kept)
                self._kept.add((cid, p))

    def run(self, specs: list[Spec]) -> None:
        """Measure ``specs``: per group, ``passes`` passes, each with fresh workers; the rows
        are recorded after the last pass (with ``screen``, by :meth:`finish`)."""
        self._passes(specs, range(self.passes), record=not self.screen)
        self.passes_done = self.passes

    def extend(self, specs: list[Spec], passes: int) -> None:
        """``passes`` more passes of ``specs`` (fresh workers each), numbered after those done;
        the rows wait for :meth:`finish`."""
        start = self.passes_done
        self._passes(specs, range(start, start + passes), record=False)
        self.passes_done = start + passes

    def finish(self, specs: list[Spec]) -> None:
        """Record the row of every spec of ``specs`` not recorded yet: all its passes merged."""
        for spec in specs:
            if spec["config_id"] not in self._recorded:
                self._finish(spec)

    def measured_passes(self, arm: Arm, spec: Spec) -> list[Row]:
        """Every pass of ``spec`` that ``arm`` measured, in order (raw rows)."""
        return list(self._measured.get((arm.name, spec["config_id"]), []))

    def _passes(self, specs: list[Spec], passes: range, *, record: bool) -> None:
        if self.progress is not None:
            self.progress.begin(len(specs) * len(passes))
        done = False
        try:
            for (backend, n), group in selection.groups(specs):
                for p in passes:
                    todo = [s for s in group if (s["config_id"], p) not in self._kept]
                    if todo:
                        self._pass(backend, n, todo, p, record and p == passes[-1])
            if record:  # a spec whose last pass was kept from before a resume
                self.finish(specs)
            done = True
        finally:
            if self.progress is not None:
                self.progress.close()
            if self.keep_partial and not done:  # after an interrupt: what was measured
                self.finish(specs)

    def _pass(self, backend: str, n: int, group: list[Spec], p: int, last: bool) -> None:
        for arm in self.arms:
            self.measurer.start(arm, backend, n)
        for arm in self.arms:  # every worker up before the first measurement
            self.measurer.prepare(arm)
        kill = True
        try:
            for i, spec in enumerate(group):
                k = (self.offset + p + i) % len(self.arms)
                order = self.arms[k:] + self.arms[:k]
                self._first.setdefault(spec["config_id"], []).append(order[0].name)
                measured = self._together(spec, order)
                shown = {}
                for arm in self.arms:
                    row = rows.finish(measured[arm.name], spec, arm.run_id, self.peaks)
                    self._measured.setdefault((arm.name, spec["config_id"]), []).append(
                        measured[arm.name]
                    )
                    if (self.passes > 1 or self.screen) and arm.out is not None:
                        arm.out.append_pass(row, p)
                    shown[arm.name] = row
                if self.progress is not None:
                    self.progress.tick(shown)
                if last:
                    self._finish(spec)
            kill = False
        finally:
            for arm in self.arms:
                self.measurer.stop(arm, kill=kill)

    def _together(self, spec: Spec, order: list[Arm]) -> dict[str, Row]:
        """Each arm measures ``spec`` in turn; again while the measurement was disturbed."""
        policy = self.retry
        tries = policy.retries if policy is not None and self._busy < 2 else 0
        for attempt in range(tries + 1):
            measured = {arm.name: self.measurer.measure(arm, spec) for arm in order}
            if policy is None:
                return measured
            why = next(filter(None, map(policy.disturbance, measured.values())), None)
            if why is None or attempt == tries:
                break
            self.redone += 1
            if self.progress is not None and not self.progress.quiet:
                say(f"  {why}: measuring again")
            time.sleep(policy.backoff_s * (attempt + 1))
        self._busy = self._busy + 1 if why else 0
        self.pairs, self.loaded = self.pairs + 1, self.loaded + bool(why)
        for row in measured.values():
            row["load_retries"] = attempt
            row["unstable"] = bool(why)
        return measured

    def _finish(self, spec: Spec) -> None:
        """Record the row of ``spec`` for every arm that measured it: its passes merged."""
        cid = spec["config_id"]
        for arm in self.arms:
            passes = self._measured.get((arm.name, cid))
            if not passes:
                continue
            row = rows.merge_passes(passes)
            if self.screen:
                row["passes_screen"] = self.passes
            row.update(self.extra.get(cid, {}))
            if len(self.arms) > 1:
                row["ab_first"] = ",".join(self._first[cid])
            self.record(arm, spec, row)
        self._recorded.add(cid)

    def record(self, arm: Arm, spec: Spec, row: Row) -> Row:
        """Finish ``row`` (schema, run id, derived columns), append it to the arm's results and
        count it."""
        row = rows.finish(row, spec, arm.run_id, self.peaks)
        if arm.out is not None:
            arm.out.append(row)
        arm.counts[row.get("status", "error")] += 1
        return row
