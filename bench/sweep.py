"""`python -m bench run`: the sweep. Plans configurations, runs them in worker processes, writes
``results.jsonl`` (a row per configuration, flushed as each finishes), ``results.csv`` and
``metadata.json`` under ``reports/<run-id>/``.

The parent process never imports JAX: workers (``bench.worker``) probe the backends, measure
the machine's peaks and time the configurations; a crash, an out-of-memory kill or a hang in one
configuration becomes a row with ``status`` ``error`` or ``timeout``, and a fresh worker carries
on with the rest.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from . import machine, plan, rows, schema, timing, workers

DEFAULT_TIMEOUT_S = 300.0


# --- the sweep ---------------------------------------------------------------------------------


class Sweep:
    """Runs specs in worker processes, one per (backend, device count), appending rows."""

    def __init__(
        self,
        run_dir: Path,
        run_id: str,
        settings: timing.Settings,
        *,
        dataset: str,
        data_dir: str | None,
        n_examples: int,
        timeout: float,
        peaks: dict[str, Any],
        quiet: bool = False,
        repeats: int = 1,
    ) -> None:
        self.run_dir, self.run_id, self.settings = run_dir, run_id, settings
        self.repeats = max(1, int(repeats))
        self.dataset, self.data_dir, self.n_examples = dataset, data_dir, n_examples
        self.timeout, self.peaks, self.quiet = timeout, peaks, quiet
        self.results = run_dir / "results.jsonl"
        self.dataset_info: dict[str, Any] = {"name": dataset, "real": None}
        self.counts = {"ok": 0, "error": 0, "timeout": 0, "skipped": 0}

    def start(self, backend: str, n: int) -> workers.WorkerProcess:
        w = workers.WorkerProcess(
            workers.worker_env(backend, max(n, 1)),
            self.run_dir / "logs" / f"worker-{backend}-{n}.log",
        )
        ready = w.request(
            {
                "op": "init",
                "dataset": self.dataset,
                "data_dir": self.data_dir,
                "n_examples": self.n_examples,
                "settings": vars_of(self.settings),
            },
            "ready",
            workers.STARTUP_TIMEOUT_S,
        )
        self.dataset_info = ready.get("dataset") or self.dataset_info
        return w

    def run(self, specs: list[dict[str, Any]], progress: Any = None) -> None:
        """Measure ``specs``, one worker process per (backend, device count) and pass.

        With ``repeats`` > 1 every group of configurations is measured that many times, each
        pass in a fresh worker, and each configuration's row pools its fastest passes
        (:func:`timing.merge_repeats`); every pass as measured goes to ``repeats.jsonl``. A
        process can be slow as a whole on a shared machine; one pass cannot tell that from a
        slow kernel, several can. Rows are written when their last pass ends.
        """
        self.total, self.done, self.t0 = len(specs), 0, time.monotonic()
        for (backend, n), group in plan.order_for_workers(specs):
            earlier: dict[str, list[dict[str, Any]]] = {s["config_id"]: [] for s in group}
            for rep in range(self.repeats):
                for spec, row in self._pass(backend, n, group):
                    if self.repeats == 1:
                        self.record(spec, row, progress)
                        continue
                    rows.append_row(
                        self.run_dir / "repeats.jsonl",
                        rows.finish_row(dict(row, repeat=rep), spec, self.run_id, self.peaks),
                    )
                    passes = earlier[spec["config_id"]]
                    passes.append(row)
                    if rep == self.repeats - 1:
                        self.record(spec, timing.merge_repeats(passes), progress)

    def _pass(self, backend: str, n: int, group: list[dict[str, Any]]):
        """Measure ``group`` in one fresh worker; yield ``(spec, row)`` as each finishes."""
        worker: workers.WorkerProcess | None = None
        try:
            for spec in group:
                if worker is None:
                    try:
                        worker = self.start(backend, n)
                    except (workers.WorkerDied, workers.WorkerTimeout, RuntimeError) as e:
                        msg = f"worker did not start: {e}"
                        yield spec, rows.failed_row(spec, "error", msg, self.dataset_info)
                        worker = None
                        continue
                try:
                    event = worker.request(
                        {"op": "measure", "spec": spec, "config_id": spec["config_id"]},
                        "row",
                        self.timeout,
                    )
                    row = event["row"]
                except workers.WorkerTimeout:
                    worker.kill()
                    worker = None
                    row = rows.failed_row(
                        spec,
                        "timeout",
                        f"no result within --timeout {self.timeout:.0f} s; the worker was killed",
                        self.dataset_info,
                    )
                except (workers.WorkerDied, RuntimeError) as e:
                    worker.kill()
                    worker = None
                    row = rows.failed_row(spec, "error", str(e), self.dataset_info)
                yield spec, row
        finally:
            if worker is not None:
                worker.close()

    def record(self, spec: dict[str, Any], row: dict[str, Any], progress: Any) -> None:
        row = rows.finish_row(row, spec, self.run_id, self.peaks)
        rows.append_row(self.results, row)
        self.counts[row.get("status", "error")] = self.counts.get(row.get("status", "error"), 0) + 1
        self.done += 1
        elapsed = time.monotonic() - self.t0
        eta = elapsed / self.done * (self.total - self.done)
        text = (
            f"[{self.done:>{len(str(self.total))}}/{self.total} eta {eta / 60:4.1f} min] "
            + rows.line_for(row)
        )
        if progress is not None:
            progress.update(1)
            if not self.quiet:
                progress.write(text)
        elif not self.quiet:
            print(text, file=sys.stderr, flush=True)


def vars_of(settings: timing.Settings) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(settings)


# --- command line ------------------------------------------------------------------------------


def _csv(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def _ints(text: str) -> list[int]:
    try:
        return [int(s) for s in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write integers separated by commas") from None


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of passes, 1 or more")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--quick",
        dest="preset",
        action="store_const",
        const="quick",
        help="a small sweep (about a minute on 2 cores)",
    )
    g.add_argument(
        "--full",
        dest="preset",
        action="store_const",
        const="full",
        help="everything: more batch sizes, widths, depths and both dtypes",
    )
    p.add_argument("--preset", choices=plan.PRESETS, default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--variants",
        type=_csv,
        help=f"comma list from {', '.join(plan.JAX_VARIANTS + plan.PEER_VARIANTS)} "
        "(default: all, peers included when installed)",
    )
    p.add_argument("--kernels", type=_csv, help="update, predict or both (default both)")
    p.add_argument(
        "--layers", action="append", help="layer sizes like 784,1024,1024,10; repeat for several"
    )
    p.add_argument(
        "--depths", type=_ints, help="depth sweep: numbers of hidden layers (with --width)"
    )
    p.add_argument("--width", type=int, default=512, help="hidden width for --depths (512)")
    p.add_argument("--batch-sizes", type=_ints, help="comma list, like 1,32,128,1024,4096")
    p.add_argument("--dtypes", type=_csv, help="float32, bfloat16 or both")
    p.add_argument("--devices", type=_ints, help="device counts, like 1,2,4 (CPU: fake devices)")
    p.add_argument(
        "--backends", default=None, help="cpu,gpu,tpu or all: whatever is present (default all)"
    )
    p.add_argument(
        "--scan-steps",
        type=int,
        default=None,
        help="SGD steps per scan call (default: 8, fewer above batch 1024)",
    )
    p.add_argument("--members", type=int, default=None, help="ensemble members (4)")
    p.add_argument("--dataset", default=None, help="fashion-mnist (default), mnist or synthetic")
    p.add_argument("--data-dir", default=None, help="where the IDX files are (see README)")
    p.add_argument("--out", default=None, help="run directory (default reports/<run-id>)")
    p.add_argument(
        "--resume",
        metavar="DIR",
        default=None,
        help="finish an interrupted run in DIR without redoing its rows",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"seconds per configuration before it is killed ({DEFAULT_TIMEOUT_S:.0f})",
    )
    p.add_argument(
        "--repeats",
        type=_at_least_one,
        default=None,
        metavar="N",
        help="N passes over the configurations, a fresh worker process each; each row pools its "
        "fastest passes. One process can run slow as a whole on a shared machine: use 3 for "
        "runs you gate on with `bench compare` (default: 1)",
    )
    p.add_argument(
        "--config",
        metavar="FILE.toml",
        default=None,
        help="the same keys in a TOML file (flags given on the line win)",
    )
    p.add_argument("--no-peaks", action="store_true", help="skip measuring the machine's peaks")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list the configurations (and what is left out) without running them",
    )
    p.add_argument("--quiet", action="store_true", help="no line per configuration")
    p.add_argument("--write-run-dir", metavar="FILE", default=None, help=argparse.SUPPRESS)
    p.add_argument(
        "--distributed",
        action="store_true",
        help="this process is one of several (jax.distributed): run the multi-device "
        "variants over every process's devices; see `python -m bench launch`",
    )


TOML_KEYS = {
    "preset",
    "variants",
    "kernels",
    "layers",
    "depths",
    "width",
    "batch_sizes",
    "dtypes",
    "devices",
    "backends",
    "scan_steps",
    "members",
    "dataset",
    "data_dir",
    "out",
    "timeout",
    "repeats",
    "no_peaks",
    "quiet",
}


def merge_config(args: argparse.Namespace) -> argparse.Namespace:
    """Fill flags not given on the command line from ``--config FILE.toml``."""
    if not args.config:
        return args
    path = Path(args.config)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"--config {path}: {e}") from None
    doc = doc.get("bench", doc)
    unknown = set(doc) - TOML_KEYS
    if unknown:
        raise ValueError(
            f"--config {path}: unknown keys {sorted(unknown)}; known: {sorted(TOML_KEYS)}"
        )
    for key, value in doc.items():
        if getattr(args, key, None) in (None, False):
            if key in ("variants", "kernels", "dtypes", "backends") and isinstance(value, str):
                value = _csv(value)
            if key == "layers":
                value = [v if isinstance(v, str) else ",".join(map(str, v)) for v in value]
            if key == "backends" and isinstance(value, list):
                value = ",".join(value)
            setattr(args, key, value)
    return args


def grids_from(args: argparse.Namespace) -> list[plan.Grid]:
    grids = plan.preset(args.preset or "default")
    layers = None
    if args.layers or args.depths:
        layers = [plan.parse_layers(x) for x in (args.layers or [])]
        layers += [(784, *([args.width] * d), 10) for d in (args.depths or [])]
    for name, value in (
        ("variants", args.variants),
        ("kernels", args.kernels),
        ("dtypes", args.dtypes),
    ):
        known = {
            "variants": plan.JAX_VARIANTS + plan.PEER_VARIANTS,
            "kernels": plan.ALL_KERNELS,
            "dtypes": plan.DTYPES,
        }[name]
        bad = [v for v in value or [] if v not in known]
        if bad:
            raise ValueError(f"--{name} {','.join(bad)}: unknown; pick from {', '.join(known)}")
    if any(b < 1 for b in args.batch_sizes or []) or any(d < 1 for d in args.devices or []):
        raise ValueError("--batch-sizes and --devices must be positive integers")
    return plan.override(
        grids,
        variants=args.variants,
        kernels=args.kernels,
        layers=layers,
        batch_sizes=args.batch_sizes,
        dtypes=args.dtypes,
        devices=args.devices,
    )


def peers_missing_reason() -> str | None:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed: pip install -e '.[peers]' to add the torch peers"
    return None


def resumed_args(args: argparse.Namespace) -> argparse.Namespace:
    """``--resume DIR``: the interrupted run's own arguments (from its metadata), so it finishes
    the sweep it started; ``--timeout`` and ``--quiet`` given now still apply."""
    try:
        meta = schema.load_metadata(args.resume)
    except (FileNotFoundError, schema.SchemaError):
        return args  # main() reports it
    argv = meta.get("argv")
    if not isinstance(argv, list):
        return args
    parser = argparse.ArgumentParser(prog="python -m bench run")
    add_arguments(parser)
    old = parser.parse_args(argv)
    old.resume, old.out = args.resume, None
    old.timeout = args.timeout or old.timeout
    old.quiet = args.quiet or old.quiet
    old.write_run_dir = args.write_run_dir
    return old


def main(args: argparse.Namespace) -> int:
    if args.resume:
        args = resumed_args(args)
    try:
        args = merge_config(args)
        grids = grids_from(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    preset = args.preset or "default"
    settings = timing.Settings.preset(preset)
    if args.distributed:
        from . import distributed

        return distributed.main(args, grids, settings)
    started = machine.now()

    old_meta: dict[str, Any] = {}
    done: set[str] = set()
    if args.resume:
        run_dir = Path(args.resume)
        try:
            old_meta = schema.load_metadata(run_dir)
        except (FileNotFoundError, schema.SchemaError) as e:
            print(f"error: --resume {run_dir}: {e}", file=sys.stderr)
            return 2
        if (run_dir / "results.jsonl").exists():
            rows.drop_torn_tail(run_dir / "results.jsonl")
            done = {r.get("config_id") for r in schema.read_rows(run_dir / "results.jsonl")}
        run_id = old_meta["run_id"]
    else:
        run_id = machine.run_id()
        run_dir = Path(args.out) if args.out else Path("reports") / run_id
        if (run_dir / "results.jsonl").exists():
            print(
                f"error: {run_dir} already holds results; pick another --out or "
                f"finish it with --resume {run_dir}",
                file=sys.stderr,
            )
            return 2
    if args.dry_run:
        import tempfile

        run_dir = Path(tempfile.mkdtemp(prefix="bench-dry-run-"))
    run_dir.mkdir(parents=True, exist_ok=True)

    wanted = args.backends or old_meta.get("requested_backends") or "all"
    requested = ["cpu", "gpu", "tpu"] if wanted == "all" else _csv(wanted)
    dtypes = sorted({d for g in grids for d in g.dtypes})
    quick = preset == "quick"
    probe, present, peaks = workers.probe_and_peaks(
        requested,
        dtypes,
        run_dir,
        quick=quick,
        want_peaks=not (args.no_peaks or args.dry_run or old_meta.get("peaks")),
    )
    peaks = old_meta.get("peaks") or peaks
    skipped = [
        {"what": f"backend {b}", "reason": i["error"]}
        for b, i in probe["backends"].items()
        if "error" in i
    ]
    if not present:
        print(
            f"error: none of the backends {', '.join(requested)} is present here: "
            + "; ".join(f"{s['what']}: {s['reason']}" for s in skipped),
            file=sys.stderr,
        )
        return 2

    options: dict[str, dict[str, Any]] = {}
    if args.scan_steps:
        options["scan"] = {"steps": args.scan_steps}
    if args.members:
        options["ensemble"] = {"members": args.members}
    try:
        specs, plan_skipped = plan.expand(
            grids, backends=present, options=options, peers_missing=peers_missing_reason()
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    skipped += plan_skipped
    if args.dry_run:
        for s in specs:
            print(
                f"{s['grid']:<9} {s['variant']:<13} {s['kernel']:<7} "
                f"{','.join(map(str, s['layer_sizes'])):<22} b={s['batch_size']:<5} "
                f"{s['dtype']:<8} x{s['n_devices']} {s['backend']}"
            )
        for s in plan_skipped:
            print(f"left out: {s['what']}: {s['reason']}")
        print(f"{len(specs)} configurations, {len(plan_skipped)} left out", file=sys.stderr)
        return 0
    todo = [s for s in specs if s["config_id"] not in done]
    biggest = max(
        (
            s["batch_size"] * max(s["options"].get("steps", 8), 1)
            if s["variant"] == "scan"
            else s["batch_size"]
            for s in specs
        ),
        default=1,
    )
    if any(s["kernel"] == "epoch" for s in specs):
        biggest = 60000  # a whole training set

    meta = {
        **machine.base_metadata(run_id, probe, present),
        "start_time": old_meta.get("start_time", started),
        "end_time": None,
        "command": old_meta.get("command") or shlex.join(["python", "-m", "bench", *sys.argv[1:]]),
        "argv": old_meta.get("argv") or run_argv(),
        "preset": preset,
        "requested_backends": wanted,
        "peaks": peaks,
        "dataset": None,
        "skipped": skipped,
        "n_processes": 1,
        "global_devices": sum(int(i.get("device_count", 0)) for i in present.values()),
        "local_devices": sum(int(i.get("device_count", 0)) for i in present.values()),
        "settings": vars_of(settings),
        "configurations": len(specs),
    }
    if args.resume:
        meta["resumed"] = [*old_meta.get("resumed", []), started]
    _write_meta(run_dir, meta)
    if args.write_run_dir:
        Path(args.write_run_dir).write_text(str(run_dir.resolve()) + "\n")

    print(
        f"{len(todo)} configurations to run ({len(specs) - len(todo)} already done, "
        f"{len(plan_skipped)} left out) on {', '.join(present)}; writing {run_dir}",
        file=sys.stderr,
    )
    for s in skipped:
        if s["what"].startswith("backend") or "PyTorch" in s["reason"]:
            print(f"notice: {s['what']}: {s['reason']}", file=sys.stderr)
            break
    sweep = Sweep(
        run_dir,
        run_id,
        settings,
        dataset=args.dataset or "fashion-mnist",
        data_dir=args.data_dir,
        n_examples=biggest,
        timeout=args.timeout or DEFAULT_TIMEOUT_S,
        peaks=peaks,
        quiet=args.quiet,
        repeats=args.repeats or 1,
    )
    progress = _progress(len(todo), args.quiet)
    interrupted = False
    try:
        sweep.run(todo, progress)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if progress is not None:
            progress.close()
    meta["dataset"] = sweep.dataset_info if todo else old_meta.get("dataset")
    if peaks and todo and not interrupted:
        # once more at the end, in a fresh worker: the better of the two is the peak
        end = workers.measure_peaks(present, dtypes, run_dir, quick=quick, tag="-end")
        best = workers.best_peaks(peaks, end)
        meta["peaks_measured"] = [*old_meta.get("peaks_measured", [peaks]), end]
        if best != peaks:
            meta["peaks"] = best
            for name in ("results.jsonl", "repeats.jsonl"):
                rows.rederive(run_dir / name, best)
    meta["end_time"] = machine.now()
    _write_meta(run_dir, meta)
    if (run_dir / "results.jsonl").exists():
        rows.write_csv(run_dir)
    c = sweep.counts
    print(
        f"{c['ok']} ok, {c['error']} error, {c['timeout']} timeout, {c['skipped']} skipped; "
        f"results in {run_dir}",
        file=sys.stderr,
    )
    if interrupted:
        print(f"interrupted: finish with  python -m bench run --resume {run_dir}", file=sys.stderr)
        return 130
    return 0


def run_argv() -> list[str]:
    """This process's ``bench run`` arguments (after the subcommand), for ``--resume``."""
    argv = sys.argv[1:]
    return argv[argv.index("run") + 1 :] if "run" in argv else argv


def _write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    tmp = run_dir / "metadata.json.tmp"
    tmp.write_text(
        json.dumps(
            {k: schema.clean(v) if not isinstance(v, dict) else v for k, v in meta.items()},
            indent=1,
            default=str,
        )
    )
    tmp.replace(run_dir / "metadata.json")


def _progress(total: int, quiet: bool) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    if not sys.stderr.isatty():
        return None  # a log file: one line per configuration, each with its ETA
    return tqdm(total=total, unit="config", desc="bench", dynamic_ncols=True)
