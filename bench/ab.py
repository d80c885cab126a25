"""`python -m bench ab --base REF [--head REF]`: A/B two commits, interleaved, on this machine.

The base commit is checked out into a temporary ``git worktree`` (removed afterwards, also on
an error, Ctrl-C or SIGTERM); the head is the working tree (uncommitted changes included) or,
with ``--head REF``, a second worktree. The configurations are planned once with this tree's
:mod:`bench.plan`; both sides measure each one back to back, each in its own worker process
importing its own tree, and the side that goes first alternates from one configuration (and
pass) to the next, so a drift of the machine hits both alike. ``OUT/base`` and ``OUT/head`` are
ordinary run directories; ``OUT/compare.md`` and ``OUT/compare.json`` hold ``bench compare``'s
verdict, whose exit code this returns (0 no regression, 1 a regression, 2 bad input: a bad ref,
not a git repository, a base older than ``bench/worker.py``, nothing measured on both sides).

``--repeats N`` makes N passes, each with a fresh pair of workers, and pools each side's
fastest passes per configuration (within 5% of its fastest; all are in ``repeats.jsonl``). On a
small shared machine a worker can run slow for its whole life and the machine has slow spells,
10-80% slower; interference only ever slows a measurement down, while a real slowdown slows
every pass (``bench validate`` measures what this buys). A measurement during which other jobs
used more than ``--max-foreign-load`` of the CPUs (Linux ``/proc/stat``) is redone, both sides.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from . import compare, machine, plan, rows, schema, sweep, timing, workers
from .timing import merge_repeats
from .workers import WorkerDied, WorkerProcess, WorkerTimeout

DEFAULT_MAX_FOREIGN_LOAD = 0.05  # of all CPUs: a measurement under more is done again
DEFAULT_RETRIES = 3
MARKER = "ab.json"  # written first into OUT: a directory holding it may be cleared by a rerun
Spec = Row = dict[str, Any]


class AbError(Exception):
    """Bad input for ``bench ab`` (exit code 2)."""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def command_line() -> str:
    return shlex.join(["python", "-m", "bench", *sys.argv[1:]])


def git(args: list[str], cwd: Path) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AbError(f"git {' '.join(args)}: {e}") from e
    if out.returncode != 0:
        raise AbError(f"git {' '.join(args)}: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout.strip()


def repo_root(cwd: Path) -> Path:
    try:
        return Path(git(["rev-parse", "--show-toplevel"], cwd))
    except AbError:
        why = "bench ab checks out commits of the repository it runs in"
        raise AbError(f"{cwd} is not inside a git repository: {why}") from None


def resolve(repo: Path, ref: str) -> str:
    """The commit ``ref`` names, or AbError saying it names none."""
    try:
        return git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], repo)
    except AbError:
        hint = "a branch, tag or sha; fetch a remote branch first, e.g. `git fetch origin main`"
        raise AbError(f"{ref!r} is not a commit in {repo} ({hint})") from None


@contextlib.contextmanager
def worktree(repo: Path, commit: str, label: str) -> Iterator[Path]:
    """``commit`` checked out (detached) in a temporary directory, removed on the way out."""
    path = Path(tempfile.mkdtemp(prefix=f"bench-ab-{label}-"))
    try:
        git(["worktree", "add", "--detach", str(path), commit], repo)
        yield path
    finally:
        with contextlib.suppress(AbError):
            git(["worktree", "remove", "--force", str(path)], repo)
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(AbError):
            git(["worktree", "prune"], repo)


def cpu_ticks(pids: list[int]) -> tuple[float, int, int] | None:
    """(now, busy ticks of all CPUs, ticks of ``pids``) from Linux ``/proc``; None elsewhere."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        ours = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ours += int(fields[11]) + int(fields[12])  # utime + stime, all threads
    except (OSError, ValueError, IndexError):
        return None
    return time.monotonic(), v[0] + v[1] + v[2] + v[5] + v[6] + v[7], ours


def foreign_load(before: tuple[float, int, int] | None, pids: list[int]) -> float | None:
    """Share of all CPUs that processes other than ``pids`` used since ``before``: another job
    (a test suite, a build, an other side's worker that does not sit idle) slows us that much."""
    after = cpu_ticks(pids)
    if before is None or after is None:
        return None
    capacity = (after[0] - before[0]) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
    foreign = (after[1] - before[1]) - (after[2] - before[2])
    return max(0.0, foreign / capacity) if capacity > 0 else None


@dataclasses.dataclass
class Arm:
    """One side of an A/B: the tree its worker imports and the run directory it fills;
    ``transform`` changes the spec the worker gets (``bench validate``), not the row's identity."""

    name: str
    tree: Path
    run_dir: Path
    run_id: str
    transform: Callable[[Spec], Spec] | None = None
    worker: WorkerProcess | None = None
    dataset: dict[str, Any] = dataclasses.field(default_factory=dict)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def results(self) -> Path:
        return self.run_dir / "results.jsonl"


def ok_configs(arm: Arm) -> set[str]:
    done = schema.read_rows(arm.results) if arm.results.exists() else []
    return {r.get("config_id") for r in done if r.get("status") == "ok"}


class Interleaved:
    """Both arms measure every spec back to back, the one going first alternating. Per pass, a
    worker per arm and (backend, devices) group; a crash or timeout: an error row, a new worker.
    ``init``: the workers' init request (dataset, data_dir, n_examples); ``options``: log_dir,
    timeout, peaks, repeats, offset (who goes first), quiet, max_foreign_load, retries."""

    def __init__(self, arms: list[Arm], settings: timing.Settings, init: dict, **options: Any):
        self.arms, self.redone, self.busy, self.done, self.total, self.t0 = arms, 0, 0, 0, 0, 0.0
        self.pairs = self.loaded = 0  # measured pairs; those left under other jobs' load
        self.log_dir = options.get("log_dir") or arms[0].run_dir.parent / "logs"
        self.init = {"op": "init", **init, "settings": sweep.vars_of(settings)}
        self.timeout = options.get("timeout") or sweep.DEFAULT_TIMEOUT_S
        self.peaks, self.quiet = options.get("peaks") or {}, options.get("quiet", False)
        self.repeats, self.offset = max(1, options.get("repeats", 1)), options.get("offset", 0)
        self.max_load = options.get("max_foreign_load", DEFAULT_MAX_FOREIGN_LOAD)
        self.retries = options.get("retries", DEFAULT_RETRIES)
        for arm in arms:
            arm.run_dir.mkdir(parents=True, exist_ok=True)

    def _spawn(self, arm: Arm, backend: str, n: int) -> WorkerProcess:
        log = self.log_dir / f"worker-{arm.name}-{backend}-{n}.log"
        w = WorkerProcess(workers.worker_env(backend, max(n, 1), root=arm.tree), log, cwd=arm.tree)
        w.send(self.init)
        return w

    def _ready(self, arm: Arm, w: WorkerProcess) -> str | None:
        """Wait for ``w``'s init; None when ready, else why it is not (and it is killed)."""
        try:
            ready = w.wait_for({"ready"}, workers.STARTUP_TIMEOUT_S)
        except (WorkerDied, WorkerTimeout, RuntimeError) as e:
            w.kill()
            return f"worker did not start: {e}"
        arm.worker, arm.dataset = w, ready.get("dataset") or arm.dataset
        return None

    def _measure(self, arm: Arm, spec: Spec, failed: dict[str, str | None]) -> Row:
        if arm.worker is None:
            why = failed.pop(arm.name, None)
            if why is None:  # crashed on the previous spec: a fresh worker
                why = self._ready(arm, self._spawn(arm, spec["backend"], spec["n_devices"]))
            if why:
                return rows.failed_row(spec, "error", why, arm.dataset)
        assert arm.worker is not None
        sent = arm.transform(dict(spec)) if arm.transform else spec
        request = {"op": "measure", "spec": sent, "config_id": spec["config_id"]}
        pids = [os.getpid(), arm.worker.proc.pid]
        before = cpu_ticks(pids)
        try:
            row = arm.worker.request(request, "row", self.timeout)["row"]
            return {**row, "foreign_load": foreign_load(before, pids)}
        except WorkerTimeout:
            why, status = f"no result within --timeout {self.timeout:.0f} s; killed", "timeout"
        except (WorkerDied, RuntimeError) as e:
            why, status = str(e), "error"
        arm.worker.kill()
        arm.worker = None
        return rows.failed_row(spec, status, why, arm.dataset)

    def _pair(self, spec: Spec, arms: list[Arm], failed: dict) -> dict[str, Row]:
        """Each arm measures ``spec`` in turn; again when other jobs loaded the machine (not
        while the last two pairs found it loaded all along: then the load is not passing)."""
        tries = self.retries if self.busy < 2 else 0
        for attempt in range(tries + 1):
            pair = {arm.name: self._measure(arm, spec, failed) for arm in arms}
            load = max(r.get("foreign_load") or 0.0 for r in pair.values())
            if load <= self.max_load or attempt == tries:
                break
            self.redone += 1
            if not self.quiet:
                say(f"  other jobs used {load:.0%} of the CPUs meanwhile: measuring again")
            time.sleep(0.5 * (attempt + 1))
        self.busy = self.busy + 1 if load > self.max_load else 0
        self.pairs, self.loaded = self.pairs + 1, self.loaded + (load > self.max_load)
        for row in pair.values():
            row["load_retries"] = attempt
        return pair

    def run(self, specs: list[Spec]) -> None:
        """``repeats`` passes over ``specs``, fresh workers each; then a row per arm and spec."""
        measured: dict[tuple[str, str], list[Row]] = {}
        order: dict[str, list[str]] = {}
        self.total, self.t0 = len(specs) * self.repeats, time.monotonic()
        try:
            for rep in range(self.repeats):
                turn = self.offset + rep  # who goes first alternates by config and by pass
                for (backend, n), group in plan.order_for_workers(specs):
                    spawned = {a.name: self._spawn(a, backend, n) for a in self.arms}
                    failed = {a.name: self._ready(a, spawned[a.name]) for a in self.arms}
                    for spec in group:
                        k, cid = turn % len(self.arms), spec["config_id"]
                        turn += 1
                        order.setdefault(cid, []).append(self.arms[k].name)
                        pair = self._pair(spec, self.arms[k:] + self.arms[:k], failed)
                        for arm in self.arms:
                            measured.setdefault((arm.name, cid), []).append(pair[arm.name])
                            if self.repeats > 1:  # every pass as measured
                                raw = {**pair[arm.name], "config_id": cid, "pass": rep}
                                rows.append_row(arm.run_dir / "repeats.jsonl", raw)
                        self._progress(pair)
                    self._close()
        finally:
            self._close(kill=True)
            for spec in specs:  # also after an interrupt: what was measured
                for arm in self.arms:
                    if got := measured.get((arm.name, spec["config_id"])):
                        self._record(arm, spec, merge_repeats(got), order[spec["config_id"]])

    def _record(self, arm: Arm, spec: Spec, row: Row, order: list[str]) -> None:
        row = rows.finish_row({**row, "ab_first": ",".join(order)}, spec, arm.run_id, self.peaks)
        rows.append_row(arm.results, row)
        status = row.get("status", "error")
        arm.counts[status] = arm.counts.get(status, 0) + 1

    def _progress(self, pair: dict[str, Row]) -> None:
        self.done += 1
        if not self.quiet:
            eta = (time.monotonic() - self.t0) / self.done * (self.total - self.done) / 60
            where = f"[{self.done:>{len(str(self.total))}}/{self.total} eta {eta:4.1f} min]"
            for name, row in pair.items():
                say(f"{where} {name:<4} {rows.line_for(row)}")

    def _close(self, kill: bool = False) -> None:
        for arm in self.arms:
            if arm.worker is not None:
                arm.worker.kill() if kill else arm.worker.close()
                arm.worker = None


def common_metadata(probe: dict[str, Any], present: dict[str, Any], **fields: Any) -> dict:
    """The keys of ``metadata.json`` both arms share (``bench run``'s), plus ``fields``."""
    devices = sum(int(i.get("device_count", 0)) for i in present.values())
    meta = {"schema_version": schema.SCHEMA_VERSION, "tool_version": machine.tool_version()}
    meta.update({k: probe.get(k) for k in ("python", "jax", "jaxlib", "numpy")})
    meta.update(backends=present, cpu=machine.cpu(), env=machine.env(), host=os.uname().nodename)
    meta.update(command=command_line(), requested_backends=",".join(present), n_processes=1)
    meta.update(global_devices=devices, local_devices=devices, start_time=machine.now())
    meta["hardware_fingerprint"] = machine.fingerprint(meta["cpu"], present)
    return {**meta, **fields}


def write_run_dir(arm: Arm, common: dict[str, Any], **extra: Any) -> None:
    """``metadata.json`` (``common`` plus this arm's run id, commit and dataset) and the CSV."""
    meta = {**common, "run_id": arm.run_id, "git": machine.git(arm.tree), **extra}
    meta.update(dataset=arm.dataset or None, end_time=machine.now())
    arm.run_dir.mkdir(parents=True, exist_ok=True)
    (arm.run_dir / "metadata.json").write_text(json.dumps(meta, indent=1, default=str))
    if arm.results.exists():
        rows.write_csv(arm.run_dir)


def n_examples_for(specs: list[Spec], scale: float = 1.0) -> int:
    """Examples the workers load: enough for the biggest call (as ``bench run``)."""
    if any(s["kernel"] == "epoch" for s in specs):
        return 60000  # a whole training set
    steps = [max(s["options"].get("steps", 8), 1) if s["variant"] == "scan" else 1 for s in specs]
    sizes = [int(s["batch_size"] * scale) * k for s, k in zip(specs, steps, strict=True)]
    return max(sizes, default=1)


#: flags of `bench run` that select what to measure, and of `bench compare` that judge it.
RUN_FLAGS = (  # noqa: SIM905 - a list literal would take a line per flag
    "--quick --full --variants --kernels --layers --depths --width --batch-sizes --dtypes "
    "--devices --backends --scan-steps --members --dataset --data-dir --timeout --config --quiet"
).split()
COMPARE_FLAGS = (  # noqa: SIM905
    "--factor --alpha --compile-factor --min-samples --fail-on --allow-different-hardware"
).split()


def _borrow(p: argparse.ArgumentParser, add: Callable[..., None], flags: list[str]) -> None:
    """Give ``p`` the flags ``flags`` of another command, as that command defines them."""
    other = argparse.ArgumentParser(add_help=False)
    add(other)
    for action in other._actions:
        if set(action.option_strings) & set(flags):
            p._add_action(action)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "A/B two commits interleaved on this machine; exit 0: no regression, 1: a regression "
        "(bench compare's verdict), 2: bad input."
    )
    head = "the commit to test (default: the working tree, uncommitted changes included)"
    out = "writes OUT/base, OUT/head, OUT/compare.md and OUT/compare.json (default: %(default)s)"
    repeats = "N passes over the configurations, fresh workers each; each side keeps its fastest "
    repeats += "passes, pooled; 3 makes a noisy machine's verdicts far steadier (default: 1)"
    load = f"measure both sides again (up to {DEFAULT_RETRIES} times) when other jobs used more "
    load += "than this share of the CPUs meanwhile (default: %(default)s)"
    p.add_argument("--base", required=True, metavar="REF", help="the commit to compare against")
    p.add_argument("--head", metavar="REF", help=head)
    p.add_argument("--out", default=str(Path("reports") / "ab"), help=out)
    p.add_argument("--repeats", type=compare._positive_int, default=1, metavar="N", help=repeats)
    p.add_argument("--max-foreign-load", type=float, default=DEFAULT_MAX_FOREIGN_LOAD, help=load)
    p.add_argument("--peaks", action="store_true", help="also measure the machine's peaks")
    _borrow(p, sweep.add_arguments, RUN_FLAGS)
    _borrow(p, compare.add_arguments, COMPARE_FLAGS)
    p.set_defaults(preset=None, no_peaks=False)


def main(args: argparse.Namespace) -> int:
    old = None
    with contextlib.suppress(ValueError):  # SIGTERM as Ctrl-C: worktrees and workers cleaned up
        old = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        args = sweep.merge_config(args)
        grids = sweep.grids_from(args)
        repo = repo_root(Path.cwd())
        commits = {k: resolve(repo, getattr(args, k)) for k in ("base", "head") if getattr(args, k)}
        out = prepare_out(Path(args.out))
        with contextlib.ExitStack() as stack:
            trees = {k: stack.enter_context(worktree(repo, c, k)) for k, c in commits.items()}
            trees.setdefault("head", repo)
            for name, tree in trees.items():
                if not (tree / "bench" / "worker.py").exists():
                    ref = getattr(args, name) or "working tree"
                    why = "predates the worker protocol and is too old for A/B; pick a later one"
                    raise AbError(f"the {name} ({ref}) has no bench/worker.py: it {why}")
            return run_ab(args, grids, out, trees)
    except (AbError, ValueError) as e:
        say(f"ab: error: {e}")
        return 2
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def prepare_out(out: Path) -> Path:
    """``out`` emptied of a previous A/B's results; refuses a directory that is not one."""
    parts = [out / p for p in ("base", "head", "logs", "compare.md", "compare.json")]
    if any(p.exists() for p in parts):
        if not (out / MARKER).exists():
            raise AbError(f"{out} holds results that are not bench ab's; pick another --out")
        for p in parts:
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_ab(args: argparse.Namespace, grids: list, out: Path, trees: dict[str, Path]) -> int:
    preset = args.preset or "default"
    settings = timing.Settings.preset(preset)
    info: dict[str, Any] = {"command": command_line(), "repeats": args.repeats}
    for name, tree in trees.items():
        info[name] = {"ref": getattr(args, name) or "working tree", **machine.git(tree)}
    (out / MARKER).write_text(json.dumps(info, indent=1))
    wanted = args.backends or "all"
    requested = ["cpu", "gpu", "tpu"] if wanted == "all" else sweep._csv(wanted)
    dtypes = sorted({d for g in grids for d in g.dtypes})
    kw = {"quick": preset == "quick", "want_peaks": args.peaks}
    probe, present, peaks = workers.probe_and_peaks(requested, dtypes, out, **kw)
    if not present:
        raise AbError(f"none of the backends {', '.join(requested)} is present here")
    options = {"scan": {"steps": args.scan_steps}, "ensemble": {"members": args.members}}
    options = {k: v for k, v in options.items() if all(v.values())}
    missing = sweep.peers_missing_reason()
    specs, skipped = plan.expand(grids, backends=present, options=options, peers_missing=missing)
    if not specs:
        raise AbError("the selection leaves no configuration to run")
    for b, i in probe["backends"].items():
        if "error" in i:
            skipped.append({"what": f"backend {b}", "reason": i["error"]})
    run_id = machine.run_id()
    arms = [Arm(k, trees[k], out / k, f"{run_id}-{k}") for k in ("base", "head")]
    said = {k: f"{info[k]['ref']} {(info[k]['commit'] or '?')[:10]}" for k in trees}
    said["head"] += " (dirty)" if info["head"].get("dirty") else ""
    what = f"{len(specs)} configurations x {args.repeats} pass(es), interleaved"
    say(f"A/B: base {said['base']} vs head {said['head']}: {what}; writing {out}")
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else None
    init = {"dataset": args.dataset or "fashion-mnist", "data_dir": data_dir}
    init["n_examples"] = n_examples_for(specs)
    opts = {"timeout": args.timeout, "peaks": peaks, "repeats": args.repeats, "quiet": args.quiet}
    runner = Interleaved(arms, settings, init, max_foreign_load=args.max_foreign_load, **opts)
    fields = {"preset": preset, "peaks": peaks, "skipped": skipped, "configurations": len(specs)}
    common = common_metadata(probe, present, settings=sweep.vars_of(settings), **fields)
    code = None
    try:
        runner.run(specs)
    except KeyboardInterrupt:
        code = 130
    for arm in arms:
        ab = {"side": arm.name, **{k: info[arm.name][k] for k in ("ref", "commit", "dirty")}}
        write_run_dir(arm, common, ab=ab, measurements_redone=runner.redone, busy=runner.loaded)
        bad = ", ".join(f"{v} {k}" for k, v in arm.counts.items() if k != "ok" and v)
        if bad:
            say(f"warning: {arm.name}: {bad} (see {out / 'logs'})")
    busy = f"{runner.loaded} of {runner.pairs} measurements"
    if runner.loaded:
        say(f"warning: other jobs loaded the CPUs during {busy}: noisy verdicts; rerun when quiet")
    if code == 130:
        say(f"interrupted; partial results in {out}")
    elif not set.intersection(*(ok_configs(arm) for arm in arms)):
        code = 2
        say(f"ab: error: no configuration ran on both sides; see the logs in {out / 'logs'}")
    else:
        code = run_compare(args, out)
    info.update(exit_code=code, end_time=machine.now(), counts={a.name: a.counts for a in arms})
    (out / MARKER).write_text(json.dumps(info, indent=1))
    return code


def run_compare(args: argparse.Namespace, out: Path) -> int:
    """``bench compare OUT/base OUT/head`` with this command's thresholds; its exit code."""
    p = argparse.ArgumentParser(prog="python -m bench compare")
    compare.add_arguments(p)
    paths = [str(out / "base"), str(out / "head")]
    files = ["--markdown", str(out / "compare.md"), "--json", str(out / "compare.json")]
    cargs = p.parse_args(paths + files)
    cargs.paired = True  # interleaved: both sides saw the same machine at the same time
    for action in p._actions:
        if set(action.option_strings) & set(COMPARE_FLAGS):
            setattr(cargs, action.dest, getattr(args, action.dest))
    return compare.main(cargs)
