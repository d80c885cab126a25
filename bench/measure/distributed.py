"""`python -m bench run --distributed`: one process of a multi-process (``jax.distributed``) run.

Every process of the run executes this same program. It

1. initialises ``jax.distributed``: from ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
   ``JAX_PROCESS_ID`` where they are set (``python -m bench launch`` sets them), otherwise from
   what JAX detects itself (Cloud TPU pods, SLURM, Open MPI, Kubernetes);
2. plans the multi-device variants (``sharded``, ``shard_map``, ``pmap``, ``sharded_tp``) over
   *every* device of *every* process: one global mesh, ``n_devices`` = the global device count;
   single-device variants are left out (each process would repeat the same work);
3. runs the configurations in this process, in the same order everywhere (collectives need it),
   through the orchestration loop every command shares (:class:`bench.runner.loop.Runner`)
   with an in-process measurer (:class:`LockstepMeasurer`). Every process builds the same
   global batch and contributes its own slice of it
   (``jax.make_array_from_process_local_data``, in :mod:`mnist_kernels.variants`);
4. process 0 alone writes the run directory (``--out``, else ``reports/<run-id>`` with process
   0's run id broadcast to the others).

Timing is lock-step: both the number of calls and when they are made must agree across
processes, so the steady state is a fixed number of samples, each one step followed by
``block_until_ready`` (no time budget, no calibration: those decide the number of calls from
local clocks). The row is process 0's measurement; ``step_median_max_s`` is the slowest
process's median.

``python -m bench.measure.distributed --selftest OUT.npz`` runs a few SGD steps of each data-parallel
variant on global arrays and has process 0 save the resulting parameters (used by the tests to
compare against a single-process ``jax.jit(model.update)``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import catalog, selection
from ..format import say
from ..protocol import (
    ENV_COORDINATOR,
    ENV_FAULT_PROCESS,
    ENV_INIT_TIMEOUT,
    ENV_NUM_PROCESSES,
    ENV_PROCESS_ID,
    FAULT_ENV,
    TimingSettings,
)
from ..results import machine, rows
from ..results.rundir import RunDir
from ..runner.loop import Arm, Runner
from ..runner.pool import DEFAULT_TIMEOUT_S
from ..runner.progress import Progress
from ..selection import Selection, Spec
from . import timing

DEFAULT_INIT_TIMEOUT_S = 300
#: timed samples per configuration, per preset (each sample is one synced step).
SAMPLES = {"quick": 10, "regress": 10, "default": 30, "full": 60}


class DistributedError(RuntimeError):
    pass


# --- setting up --------------------------------------------------------------------------------


def initialize(timeout_s: float | None = None) -> None:
    """``jax.distributed.initialize`` from the environment; raise :class:`DistributedError`."""
    import jax

    if not os.environ.get("JAX_CPU_COLLECTIVES_IMPLEMENTATION"):
        # collectives between processes on CPU (JAX 0.10's default; older ones had none)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_enable_compilation_cache", False)
    timeout = int(timeout_s or os.environ.get(ENV_INIT_TIMEOUT) or DEFAULT_INIT_TIMEOUT_S)
    kwargs: dict[str, Any] = {"initialization_timeout": max(timeout, 1)}
    if os.environ.get(ENV_COORDINATOR):
        kwargs["coordinator_address"] = os.environ[ENV_COORDINATOR]
    try:
        if os.environ.get(ENV_NUM_PROCESSES):
            kwargs["num_processes"] = int(os.environ[ENV_NUM_PROCESSES])
        if os.environ.get(ENV_PROCESS_ID):
            kwargs["process_id"] = int(os.environ[ENV_PROCESS_ID])
    except ValueError as e:
        raise DistributedError(
            f"{ENV_NUM_PROCESSES} and {ENV_PROCESS_ID} must be integers: {e}"
        ) from None
    try:
        jax.distributed.initialize(**kwargs)
    except Exception as e:  # ValueError (nothing detected), RuntimeError / XlaRuntimeError
        given = {k: v for k, v in kwargs.items() if k != "initialization_timeout"}
        raise DistributedError(
            f"could not initialise jax.distributed ({type(e).__name__}: "
            f"{str(e).strip().splitlines()[0] if str(e).strip() else e!r}); settings "
            f"{given or 'none: JAX found no cluster to detect'}, timeout {timeout} s. "
            f"Set {ENV_COORDINATOR}=host:port, {ENV_NUM_PROCESSES} and {ENV_PROCESS_ID} in every "
            "process, run under SLURM, Open MPI or on a Cloud TPU pod (JAX detects those), or "
            "start local processes with `python -m bench launch -n N -- run ...`"
        ) from e


def broadcast_text(text: str, size: int = 256) -> str:
    """Process 0's ``text`` on every process."""
    from jax.experimental import multihost_utils

    raw = text.encode()[:size]
    buf = np.zeros(size + 1, np.int32)
    buf[0] = len(raw)
    buf[1 : len(raw) + 1] = np.frombuffer(raw, np.uint8)
    out = np.asarray(multihost_utils.broadcast_one_to_all(buf))
    return bytes(out[1 : int(out[0]) + 1].astype(np.uint8)).decode()


def allgather(values: list[float]) -> np.ndarray:
    """``values`` of every process: shape ``(n_processes, len(values))``."""
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(np.asarray(values, np.float32)))


def agree(code: int) -> int:
    """The largest of every process's ``code``: all processes take the same branch."""
    return int(allgather([float(code)])[:, 0].max())


def lockstep_settings(settings: TimingSettings, preset: str) -> TimingSettings:
    """Settings under which :func:`bench.measure.timing.steady_state` makes the same calls
    everywhere.

    Two warm-up calls, none ending the warm-up early for being slow (``slow_call_s`` infinite: a
    call's duration differs between processes), ``min_sample_s`` 0 (one call is a sample: no
    calibration) and a fixed sample count with no time budget.
    """
    n = max(SAMPLES.get(preset, SAMPLES["default"]), settings.min_samples)
    return dataclasses.replace(
        settings,
        warmup_calls=2,
        min_sample_s=0.0,
        budget_s=0.0,
        min_samples=n,
        max_samples=n,
        sync_budget_s=0.0,
        min_sync_samples=0,
        max_sync_samples=0,
        slow_call_s=float("inf"),
    )


def plan_global(
    chosen: Selection, backend: str, info: dict[str, Any]
) -> tuple[list[Spec], list[dict[str, str]]]:
    """Specs of the multi-device variants over every global device, and what is left out."""
    n = int(info["device_count"])
    single: dict[str, None] = {}  # ordered set
    keep: list[selection.Grid] = []
    for g in chosen.grids:
        single.update(dict.fromkeys(v for v in g.variants if v not in catalog.MULTI_DEVICE))
        multi = tuple(v for v in g.variants if v in catalog.MULTI_DEVICE)
        if multi:
            keep.append(dataclasses.replace(g, variants=multi, devices=(n,)))
    options = {k: dict(v) for k, v in chosen.options.items()}
    specs, left_out = selection.expand(keep, backends={backend: info}, options=options)
    skipped = [
        {
            "what": f"variant {v}",
            "reason": "runs on one device: with --distributed every process would repeat the "
            "same work; measure it with a plain `python -m bench run`",
        }
        for v in single
    ]
    return specs, skipped + left_out


def specs_digest(specs: list[Spec]) -> float:
    key = json.dumps([s["config_id"] for s in specs]).encode()
    return float(int.from_bytes(hashlib.sha256(key).digest()[:3], "big"))  # exact in float32


class Watchdog:
    """Ends the process when one configuration runs past its timeout.

    In lock-step a process that stops (a crash elsewhere, a stuck collective) stalls the rest;
    exiting lets the launcher (or the cluster's) see it and stop the run instead of hanging.
    """

    def __init__(self, timeout_s: float, on_fire: Any) -> None:
        self.timeout_s, self.on_fire = timeout_s, on_fire
        self._timer: threading.Timer | None = None

    def start(self, what: str) -> None:
        self.cancel()
        self._timer = threading.Timer(self.timeout_s, self.on_fire, args=(what,))
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def describe(spec: Spec) -> str:
    return (
        f"{spec['variant']} {spec['kernel']} {','.join(map(str, spec['layer_sizes']))} "
        f"b={spec['batch_size']} {spec['dtype']} x{spec['n_devices']}"
    )


@dataclasses.dataclass(frozen=True)
class DistributedSettings:
    """How this process runs (everything but what it measures): see ``bench run --help``."""

    out: Path | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    quiet: bool = False
    peaks: bool = True
    dry_run: bool = False
    resume: bool = False
    devices: tuple[int, ...] = ()
    write_run_dir: Path | None = None


def settings_from(args: argparse.Namespace) -> DistributedSettings:
    return DistributedSettings(
        out=Path(args.out) if args.out else None,
        timeout=args.timeout or DEFAULT_TIMEOUT_S,
        quiet=bool(args.quiet),
        peaks=not args.no_peaks,
        dry_run=bool(args.dry_run),
        resume=bool(args.resume),
        devices=tuple(args.devices or ()),
        write_run_dir=Path(args.write_run_dir) if args.write_run_dir else None,
    )


@dataclasses.dataclass
class Context:
    """This process's place in the run."""

    pid: int
    n_proc: int
    devices: list[Any]
    local: int

    @property
    def lead(self) -> bool:
        return self.pid == 0

    @property
    def backend(self) -> str:
        return self.devices[0].platform

    def info(self) -> dict[str, Any]:
        return {
            "device_kind": self.devices[0].device_kind,
            "device_count": len(self.devices),
            "n_processes": self.n_proc,
            "local_device_count": self.local,
        }


class LockstepMeasurer:
    """Measures specs in this process, in step with every other process of the run.

    After each spec every process's status and median are gathered: the row (process 0's
    measurement) gets the slowest median as ``step_median_max_s``, and is an error when any
    process failed. A spec running past ``timeout`` has its row recorded as a timeout (through
    ``on_timeout``) and ends this process: in lock-step a stuck process stalls the others.
    """

    def __init__(self, worker: Any, ctx: Context, timeout: float) -> None:
        self.worker, self.ctx = worker, ctx
        self.on_timeout: Callable[[Arm, Spec, str], None] = lambda arm, spec, msg: None
        self.watchdog = Watchdog(timeout, self._timed_out)
        self.current: tuple[Arm, Spec] | None = None
        fault = os.environ.get(ENV_FAULT_PROCESS)
        if fault not in (None, "") and fault != str(ctx.pid):
            os.environ.pop(FAULT_ENV, None)  # the fault is another process's
        self.fault = os.environ.get(FAULT_ENV, "").partition(":")

    def start(self, arm: Arm, backend: str, n_devices: int) -> None:
        pass

    def prepare(self, arm: Arm) -> None:
        pass

    def stop(self, arm: Arm, kill: bool = False) -> None:
        self.watchdog.cancel()

    def _timed_out(self, what: str) -> None:
        say(
            f"error: process {self.ctx.pid}: {what} ran past --timeout "
            f"{self.watchdog.timeout_s:.0f} s (in {timing.phase()}: a stuck collective, or a "
            f"process gone?); exiting"
        )
        if self.current is not None:
            why = f"no result within --timeout {self.watchdog.timeout_s:.0f} s; the run was stopped"
            self.on_timeout(*self.current, why)
        os._exit(124)

    def measure(self, arm: Arm, spec: Spec) -> dict[str, Any]:
        what = describe(spec)
        kind, _, variant = self.fault
        if kind and variant == spec["variant"]:
            say(f"process {self.ctx.pid}: fault injected by {FAULT_ENV}={kind}:{variant} in {what}")
        self.current = (arm, spec)
        self.watchdog.start(what)
        row = self.worker.measure(spec, devices=self.ctx.devices)
        ok = row.get("status") == "ok"
        gathered = allgather([1.0 if ok else 0.0, float(row.get("step_median_s") or np.nan)])
        self.watchdog.cancel()
        self.current = None
        if ok:
            row["step_median_max_s"] = float(np.nanmax(gathered[:, 1]))
            failed = [p for p in range(self.ctx.n_proc) if gathered[p, 0] == 0]
            if failed:
                row["status"] = "error"
                row["error"] = f"failed in process(es) {failed}; see their output"
        elif not self.ctx.lead:
            say(f"process {self.ctx.pid}: {what}: {row.get('error')}")
        return row


# --- the run -----------------------------------------------------------------------------------


def _start(settings: DistributedSettings) -> Context | int:
    """Join the run; the context, or an exit code."""
    if settings.resume:
        say("error: --resume is not supported with --distributed")
        return 2
    if os.environ.get(ENV_COORDINATOR):
        say(
            f"jax.distributed: process {os.environ.get(ENV_PROCESS_ID, '?')} of "
            f"{os.environ.get(ENV_NUM_PROCESSES, '?')}, coordinator "
            f"{os.environ[ENV_COORDINATOR]}"
        )
    try:
        initialize()
    except DistributedError as e:
        say(f"error: {e}")
        return 1
    import jax

    return Context(
        jax.process_index(), jax.process_count(), jax.devices(), jax.local_device_count()
    )


def _plan(chosen: Selection, settings: DistributedSettings, ctx: Context, out: RunDir):
    """The specs every process agrees on, and what is left out; an exit code when they do not."""
    code = 0
    if ctx.lead and not settings.dry_run and out.has_results():
        say(f"error: {out} already holds results; pick another --out")
        code = 2
    if agree(code):
        return 2
    try:
        specs, skipped = plan_global(chosen, ctx.backend, ctx.info())
    except ValueError as e:
        if ctx.lead:
            say(f"error: {e}")
        specs, skipped, code = [], [], 2
    if agree(code):
        return 2
    digests = allgather([specs_digest(specs)])[:, 0]
    if len(set(digests.tolist())) != 1:
        say(
            f"error: process {ctx.pid}: the processes planned different configurations "
            "(different arguments, versions or devices?)"
        )
        return 2
    return specs, skipped


def _metadata(chosen, settings, ctx, run_id, specs, skipped, worker) -> tuple[dict, dict]:
    """Process 0's metadata and the peaks it measured."""
    from .peaks import measure_peaks
    from .probe import probe

    found = probe([ctx.backend])
    peaks: dict[str, Any] = {}
    if settings.peaks:
        try:
            keys = selection.peak_keys(specs) or ["float32"]
            peaks[ctx.backend] = measure_peaks(
                ctx.backend, keys, quick=chosen.preset in selection.SHORT_PRESETS
            )
        except Exception as e:
            say(f"warning: could not measure the {ctx.backend} peaks ({e})")
    present = {ctx.backend: {**found["backends"].get(ctx.backend, {}), **ctx.info()}}
    meta = machine.metadata(
        run_id,
        found,
        present,
        preset=chosen.preset,
        requested_backends=chosen.requested_backends,
        peaks=peaks,
        dataset=worker.dataset,
        skipped=skipped,
        n_processes=ctx.n_proc,
        global_devices=len(ctx.devices),
        local_devices=ctx.local,
        settings=worker.settings.to_json(),
        configurations=len(specs),
        arithmetic=selection.arithmetic(specs),
        distributed={
            "coordinator": os.environ.get(ENV_COORDINATOR),
            "process_count": ctx.n_proc,
            "devices_per_process": ctx.local,
        },
    )
    return meta, peaks


def main(chosen: Selection, settings: DistributedSettings) -> int:
    """``python -m bench run --distributed``: see the module docstring."""
    ctx = _start(settings)
    if isinstance(ctx, int):
        return ctx
    if chosen.backends != selection.ALL_BACKENDS and ctx.backend not in chosen.backends:
        if ctx.lead:
            say(
                f"error: --backends {','.join(chosen.backends)}: the distributed devices are "
                f"{ctx.backend} ones; pick the platform with JAX_PLATFORMS in every process"
            )
        return 2
    run_id = broadcast_text(machine.run_id() if ctx.lead else "")
    out = RunDir(settings.out or Path("reports") / run_id)
    planned = _plan(chosen, settings, ctx, out)
    if isinstance(planned, int):
        return planned
    specs, skipped = planned
    tell = say if ctx.lead and not settings.quiet else (lambda text: None)
    if settings.devices and list(settings.devices) != [len(ctx.devices)]:
        tell(
            f"notice: --devices {','.join(map(str, settings.devices))} is ignored with "
            f"--distributed: every configuration spans all {len(ctx.devices)} devices"
        )
    if settings.dry_run:
        if ctx.lead:
            for s in specs:
                print(f"{s['grid']:<9} {describe(s)} {s['backend']} ({ctx.n_proc} processes)")
            for s in skipped:
                print(f"left out: {s['what']}: {s['reason']}")
            say(f"{len(specs)} configurations, {len(skipped)} left out")
        return 0
    return _run(chosen, settings, ctx, run_id, out, specs, skipped, tell)


def _run(chosen, settings, ctx, run_id, out, specs, skipped, tell) -> int:
    from .kernels import warm_compile
    from .worker import Worker, load_examples

    worker = Worker()
    worker.settings = lockstep_settings(TimingSettings.preset(chosen.preset), chosen.preset)
    biggest = max((s["batch_size"] for s in specs), default=1)
    worker.images, worker.labels, worker.dataset = load_examples(
        chosen.dataset, chosen.data_dir, biggest
    )
    warm_compile(ctx.backend)  # one-time compiler costs paid before the first measurement
    meta: dict[str, Any] = {}
    peaks: dict[str, Any] = {}
    if ctx.lead:
        out.create()
        meta, peaks = _metadata(chosen, settings, ctx, run_id, specs, skipped, worker)
        out.write_metadata(meta)
        if settings.write_run_dir:
            out.write_location(settings.write_run_dir)
        tell(
            f"{len(specs)} configurations over {ctx.n_proc} processes × {ctx.local} "
            f"{ctx.backend} devices ({len(ctx.devices)} in all), {len(skipped)} left out; "
            f"writing {out}"
        )
    agree(0)  # start together: process 0 may have spent a while on the peaks

    arm = Arm("", out if ctx.lead else None, run_id, dataset=worker.dataset)
    measurer = LockstepMeasurer(worker, ctx, settings.timeout)
    progress = Progress(quiet=settings.quiet or not ctx.lead, bar=False)
    runner = Runner([arm], measurer, peaks=peaks, progress=progress)
    measurer.on_timeout = lambda a, spec, why: runner.record(
        a, spec, rows.failed(spec, "timeout", why, worker.dataset)
    )
    interrupted = False
    try:
        runner.run(specs)
    except KeyboardInterrupt:
        interrupted = True
    if ctx.lead:
        meta["end_time"] = machine.now()
        out.write_metadata(meta)
        out.write_csv()
        c = arm.counts
        say(
            f"{c['ok']} ok, {c['error']} error, {c['timeout']} timeout; "
            f"{ctx.n_proc} processes, {len(ctx.devices)} devices; results in {out}"
        )
    if interrupted:
        return 130
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices("bench run --distributed: done")
    return 0


# --- self-test ---------------------------------------------------------------------------------

SELFTEST_VARIANTS = ("sharded", "shard_map", "pmap", "sharded_tp")


def selftest_data(layers: list[int], batch: int, steps: int, seed: int = 1):
    """The global batches every process builds: ``(steps, batch, 784)`` and one-hot labels."""
    rng = np.random.RandomState(seed)
    x = rng.rand(steps, batch, layers[0]).astype(np.float32)
    y = np.eye(layers[-1], dtype=np.float32)[rng.randint(0, layers[-1], (steps, batch))]
    return x, y


def selftest(
    out: str, *, variants: list[str], layers: list[int], batch: int, steps: int, lr: float
) -> int:
    """``steps`` SGD steps of each variant over every global device; process 0 saves params."""
    initialize()
    import jax

    from mnist_kernels import model
    from mnist_kernels import variants as kernels

    devices = jax.devices()
    x, y = selftest_data(layers, batch, steps)
    saved: dict[str, np.ndarray] = {"x": x, "y": y, "layers": np.asarray(layers), "lr": lr}
    for name in variants:
        kernel = kernels.get(name, lr=lr, devices=devices)
        params, _ = kernel.place(model.init_params(layers), (x[0], y[0]))
        for s in range(steps):
            _, placed = kernel.place(None, (x[s], y[s]))
            params = kernel.update(params, placed)
        for i, (w, b) in enumerate(kernel.to_host(params)):  # a collective for sharded_tp
            saved[f"{name}/{i}/w"], saved[f"{name}/{i}/b"] = w, b
        leaves = jax.tree.leaves(params)
        print(
            f"process {jax.process_index()}: {name} over {len(devices)} devices "
            f"({jax.local_device_count()} here), fully addressable: "
            f"{all(a.is_fully_addressable for a in leaves)}",
            file=sys.stderr,
            flush=True,
        )
    if jax.process_index() == 0:
        np.savez(out, **saved)
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices("bench.distributed selftest: done")
    return 0


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.measure.distributed", description=__doc__)
    p.add_argument("--selftest", metavar="OUT.npz", required=True)
    p.add_argument("--variants", default=",".join(SELFTEST_VARIANTS))
    p.add_argument("--layers", default="784,32,10")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.1)
    a = p.parse_args(argv)
    try:
        return selftest(
            a.selftest,
            variants=[v for v in a.variants.split(",") if v],
            layers=list(catalog.parse_layers(a.layers)),
            batch=a.batch,
            steps=a.steps,
            lr=a.lr,
        )
    except DistributedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_main())
