"""The sweep behind ``python -m bench run``: probe the backends, plan the configurations of a
:class:`~bench.selection.Selection`, measure them in worker processes through the
:class:`~bench.runner.loop.Runner`, and write a run directory (``results.jsonl`` flushed as
each row finishes, ``results.csv`` and ``metadata.json``).

The parent process never imports JAX: workers probe the backends, measure the machine's peaks
and time the configurations; a crash, an out-of-memory kill or a hang in one configuration
becomes a row with ``status`` ``error`` or ``timeout``, and a fresh worker carries on with the
rest. The peaks are measured again at the end, in a fresh worker; the better of the two counts.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .. import protocol, selection
from ..format import say
from ..protocol import TimingSettings
from ..results import machine
from ..results.rundir import RunDir, RunDirBusy
from ..results.schema import SchemaError
from ..selection import Selection, Spec, n_examples, nothing_to_run, peak_keys, thin_batches
from . import doctor
from . import probe as probing
from .loop import SWEEP_RETRIES, Arm, Runner
from .pool import DEFAULT_TIMEOUT_S, WorkerMeasurer
from .progress import Progress


class SweepError(Exception):
    """Bad input for ``bench run`` (exit code 2); the message says what to do."""


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    """How ``bench run`` runs a selection (everything but what it measures).

    Attributes:
      out: the run directory (None: ``reports/<run-id>``).
      resume: an interrupted run's directory to finish (its rows are not redone).
      timeout: seconds one configuration may take before its worker is killed.
      repeats: passes over the configurations, a fresh worker each.
      peaks: measure the machine's peaks (at the start and the end).
      quiet: no line per configuration.
      argv: this run's arguments after ``run`` (recorded, for ``--resume``).
      write_run_dir: a file to write the run directory's path into (``nox -s bench``).
    """

    out: Path | None = None
    resume: Path | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    repeats: int = 1
    peaks: bool = True
    quiet: bool = False
    argv: tuple[str, ...] = ()
    write_run_dir: Path | None = None


def peers_missing_reason() -> str | None:
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed: pip install -e '.[peers]' to add the torch peers"
    return None


@dataclasses.dataclass
class Plan:
    """What a sweep will do: the probe, the backends present, the specs and what is left out."""

    probe: dict[str, Any]
    present: dict[str, Any]
    specs: list[Spec]
    skipped: list[dict[str, str]]  # absent backends, then left-out combinations
    left_out: list[dict[str, str]]  # left-out combinations only


def plan(selection: Selection, log_dir: Path) -> Plan:
    """Probe the backends asked for and expand the selection on those present.

    Raises:
      SweepError: none is present, or the selection names something unknown.
    """
    try:
        found, present, notes = doctor.checked_probe(list(selection.backends), log_dir)
    except doctor.MissingBackend as e:
        raise SweepError(str(e)) from None
    skipped = notes
    if not present:
        raise SweepError(
            f"none of the backends {', '.join(selection.backends)} is present here: "
            + "; ".join(f"{s['what']}: {s['reason']}" for s in skipped)
        )
    try:
        specs, left_out = selection.expand(present, peers_missing_reason())
    except ValueError as e:
        raise SweepError(str(e)) from None
    if not specs:
        raise SweepError(nothing_to_run(left_out))
    _check_dataset(selection)
    return Plan(found, present, specs, skipped + left_out, left_out)


def _check_dataset(chosen: Selection) -> None:
    """Read the dataset's files before anything is measured: a dataset the user named that
    cannot be read is an error; otherwise the workers' fallback to synthetic batches of the same
    shape is said now (the rows say ``dataset_real`` false).

    Raises:
      SweepError: the named dataset is missing or damaged.
    """
    from mnist_kernels import data

    try:
        data.load_dataset(chosen.dataset, chosen.data_dir, n_train=1, n_test=1, download=False)
    except (OSError, ValueError) as e:
        why = str(e).splitlines()[0]
        if chosen.dataset_named:
            where = f" --data-dir {chosen.data_dir}" if chosen.data_dir else ""
            raise SweepError(f"--dataset {chosen.dataset}{where}: {why}") from None
        say(
            f"notice: {chosen.dataset} is not here ({why}); measuring synthetic batches of "
            f"the same shape (--dataset synthetic says so, --data-dir points at the files)"
        )


def dry_run(selection: Selection) -> Plan:
    """The plan alone: probed in a temporary directory, nothing written where results go."""
    with tempfile.TemporaryDirectory(prefix="bench-dry-run-") as tmp:
        return plan(selection, Path(tmp))


def _open(settings: SweepSettings) -> tuple[RunDir, dict[str, Any], set[str]]:
    """The run directory, locked for this process (its one writer), the metadata of the run it
    resumes ({} for a new one) and the configurations already done."""
    if settings.resume is not None:
        out = RunDir(settings.resume)
        if not out.path.is_dir():
            raise SweepError(f"--resume {out}: no such run directory")
        _lock(out)
        try:
            old = out.metadata()
            out.drop_torn_tail()
            return out, old, out.done()
        except (FileNotFoundError, SchemaError) as e:
            raise SweepError(f"--resume {out}: {e}") from None
    run_id = machine.run_id()
    out = _lock(RunDir(settings.out or Path("reports") / run_id))
    if out.has_results():
        raise SweepError(
            f"{out} already holds results; pick another --out or finish it with --resume {out}"
        )
    return out, {"run_id": run_id}, set()


def _lock(out: RunDir) -> RunDir:
    try:
        return out.lock()
    except RunDirBusy as e:
        raise SweepError(str(e)) from None
    except OSError as e:  # --out names a file, or a place this user cannot write
        raise SweepError(f"cannot write the run directory {out}: {e.strerror or e}") from None


def run(selection: Selection, settings: SweepSettings) -> int:
    """The sweep (see the module docstring); the exit code: 0, 2 for bad input, 130 when
    interrupted (the run can be finished with ``--resume``)."""
    target = settings.resume or settings.out
    new = target is None or not Path(target).exists()
    out, old, done = _open(settings)
    try:
        return Sweep(selection, settings, out, old).run(done)
    except OSError as e:  # a full disk, a directory gone: what was written stays
        kept = out.has_results()
        what = (
            f"the rows written so far are kept: make room, then python -m bench run --resume {out}"
            if kept
            else "nothing was measured: make room and run again"
        )
        if not kept and new:
            _discard(out)
        raise SweepError(
            f"could not write {e.filename or out}: {e.strerror or e}; {what}"
        ) from None
    except SweepError:
        if new and not out.has_results():  # refused before measuring: leave nothing behind
            _discard(out)
        raise


def _discard(out: RunDir) -> None:
    """Remove a run directory this run created and wrote no result into."""
    out.unlock()
    shutil.rmtree(out.path, ignore_errors=True)


@dataclasses.dataclass
class Sweep:
    """One ``bench run``: its selection and settings, its run directory and, when it resumes
    one, the interrupted run's metadata (``old``)."""

    selection: Selection
    settings: SweepSettings
    out: RunDir
    old: dict[str, Any]

    @property
    def logs(self) -> Path:
        return self.out.path / "logs"

    @property
    def quick(self) -> bool:
        return self.selection.preset in selection.SHORT_PRESETS

    def run(self, done: set[str]) -> int:
        p = plan(self.selection, self.logs)
        peaks = self.old.get("peaks") or (
            probing.peaks(
                p.present,
                peak_keys(p.specs),
                self.logs,
                quick=self.quick,
                thin_batches=[] if self.quick else thin_batches(p.specs),
            )
            if self.settings.peaks
            else {}
        )
        todo = [s for s in p.specs if s["config_id"] not in done]
        meta = self.metadata(p, peaks)
        self.out.write_metadata(meta)
        if self.settings.write_run_dir:
            self.out.write_location(self.settings.write_run_dir)
        say(
            f"{len(todo)} configurations to run ({len(p.specs) - len(todo)} already done, "
            f"{len(p.left_out)} left out) on {', '.join(p.present)}; writing {self.out}"
        )
        _notices(p.skipped)
        arm = Arm(
            "", self.out, meta["run_id"], dataset={"name": self.selection.dataset, "real": None}
        )
        interrupted = self.measure(arm, todo, p.specs, peaks)
        meta["dataset"] = arm.dataset if todo else self.old.get("dataset")
        if peaks and todo and not interrupted:
            self.peaks_again(p, meta, peaks)
        meta["end_time"] = machine.now()
        self.out.write_metadata(meta)
        self.out.write_csv()
        c = arm.counts
        say(
            f"{c['ok']} ok, {c['error']} error, {c['timeout']} timeout, {c['skipped']} skipped; "
            f"results in {self.out}"
        )
        if interrupted:
            say(f"interrupted: finish with  python -m bench run --resume {self.out}")
            return 130
        return 0

    def metadata(self, p: Plan, peaks: dict[str, Any]) -> dict[str, Any]:
        old = self.old
        meta = machine.metadata(
            old["run_id"],
            p.probe,
            p.present,
            argv=old.get("argv") or list(self.settings.argv),
            preset=self.selection.preset,
            requested_backends=old.get("requested_backends") or self.selection.requested_backends,
            peaks=peaks,
            dataset=None,
            skipped=p.skipped,
            settings=TimingSettings.preset(self.selection.preset).to_json(),
            configurations=len(p.specs),
            arithmetic=selection.arithmetic(p.specs),
        )
        for key in ("start_time", "command", "peaks_measured"):
            if old.get(key):
                meta[key] = old[key]
        if self.settings.resume is not None:
            meta["resumed"] = [*old.get("resumed", []), machine.now()]
        return meta

    def measure(self, arm: Arm, todo: list[Spec], specs: list[Spec], peaks: dict) -> bool:
        """Measure ``todo`` (workers load enough examples for every one of ``specs``); True
        when interrupted."""
        chosen = self.selection
        data_dir = str(Path(chosen.data_dir).resolve()) if chosen.data_dir else None
        timing = TimingSettings.preset(chosen.preset)
        init = protocol.init(chosen.dataset, data_dir, n_examples(specs), timing)
        measurer = WorkerMeasurer(init, self.logs, timeout=self.settings.timeout)
        progress = Progress(quiet=self.settings.quiet)
        passes = self.settings.repeats
        runner = Runner(
            [arm], measurer, passes=passes, peaks=peaks, progress=progress, retry=SWEEP_RETRIES
        )
        if self.settings.resume is not None and passes > 1:  # passes measured before the stop
            wanted = {s["config_id"] for s in todo}
            runner.keep(arm, {c: p for c, p in self.out.passes().items() if c in wanted})
        try:
            runner.run(todo)
        except KeyboardInterrupt:
            return True
        return False

    def peaks_again(self, p: Plan, meta: dict[str, Any], peaks: dict[str, Any]) -> None:
        """Once more at the end, in a fresh worker: the better of the two is the peak."""
        keys = peak_keys(p.specs)
        end = probing.peaks(
            p.present,
            keys,
            self.logs,
            quick=self.quick,
            tag="-end",
            thin_batches=[] if self.quick else thin_batches(p.specs),
        )

        best = probing.best_peaks(peaks, end)
        meta["peaks_measured"] = [*self.old.get("peaks_measured", [peaks]), end]
        if best != peaks:
            meta["peaks"] = best
            self.out.rederive(best)


def _notices(skipped: list[dict[str, str]]) -> None:
    """Every backend left out and why; the PyTorch peers' reason once."""
    peers = False
    for s in skipped:
        if s["what"].startswith("backend"):
            say(f"notice: {s['what']}: {s['reason']}")
        elif "PyTorch" in s["reason"] and not peers:
            say(f"notice: {s['what']}: {s['reason']}")
            peers = True
