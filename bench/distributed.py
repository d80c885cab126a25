"""`python -m bench run --distributed`: one process of a multi-process (``jax.distributed``) run.

Every process of the run executes this same program. It

1. initialises ``jax.distributed``: from ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
   ``JAX_PROCESS_ID`` where they are set (``python -m bench launch`` sets them), otherwise from
   what JAX detects itself (Cloud TPU pods, SLURM, Open MPI, Kubernetes);
2. plans the multi-device variants (``sharded``, ``shard_map``, ``pmap``, ``sharded_tp``) over
   *every* device of *every* process: one global mesh, ``n_devices`` = the global device count;
   single-device variants are left out (each process would repeat the same work);
3. runs the configurations in this process, in the same order everywhere (collectives need it).
   Every process builds the same global batch and contributes its own slice of it
   (``jax.make_array_from_process_local_data``, in :mod:`mnist_kernels.variants`);
4. process 0 alone writes the run directory (``--out``, else ``reports/<run-id>`` with process
   0's run id broadcast to the others).

Timing is lock-step: both the number of calls and when they are made must agree across
processes, so the steady state is a fixed number of samples, each one step followed by
``block_until_ready`` (no time budget, no calibration: those decide the number of calls from
local clocks). The row is process 0's measurement; ``step_median_max_s`` is the slowest
process's median.

``python -m bench.distributed --selftest OUT.npz`` runs a few SGD steps of each data-parallel
variant on global arrays and has process 0 save the resulting parameters (used by the tests to
compare against a single-process ``jax.jit(model.update)``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import machine, plan, timing

#: JAX reads this one itself; the two below are this tool's (JAX has no variable for them).
ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"
#: seconds ``jax.distributed.initialize`` waits for the coordinator and the other processes.
ENV_INIT_TIMEOUT = "MNIST_BENCH_INIT_TIMEOUT"
DEFAULT_INIT_TIMEOUT_S = 300
#: test hook: with MNIST_BENCH_INJECT_FAULT, only this process id injects the fault.
ENV_FAULT_PROCESS = "MNIST_BENCH_INJECT_FAULT_PROCESS"
#: timed samples per configuration, per preset (each sample is one synced step).
SAMPLES = {"quick": 10, "default": 30, "full": 60}


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


def lockstep_settings(settings: timing.Settings, preset: str) -> timing.Settings:
    """Settings under which :func:`bench.timing.steady_state` makes the same calls everywhere.

    Two warm-up calls (the caller sets ``timing.SLOW_CALL_S`` to infinity so that a slow one
    cannot end the warm-up early on one process only), ``min_sample_s`` 0 (one call is a
    sample: no calibration) and a fixed sample count with no time budget.
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
    )


def plan_global(
    grids: list[plan.Grid],
    backend: str,
    info: dict[str, Any],
    options: dict[str, dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Specs of the multi-device variants over every global device, and what is left out."""
    n = int(info["device_count"])
    single: dict[str, None] = {}  # ordered set
    keep: list[plan.Grid] = []
    for g in grids:
        single.update(dict.fromkeys(v for v in g.variants if v not in plan.MULTI_DEVICE))
        multi = tuple(v for v in g.variants if v in plan.MULTI_DEVICE)
        if multi:
            keep.append(dataclasses.replace(g, variants=multi, devices=(n,)))
    specs, plan_skipped = plan.expand(keep, backends={backend: info}, options=options)
    skipped = [
        {
            "what": f"variant {v}",
            "reason": "runs on one device: with --distributed every process would repeat the "
            "same work; measure it with a plain `python -m bench run`",
        }
        for v in single
    ]
    return specs, skipped + plan_skipped


def specs_digest(specs: list[dict[str, Any]]) -> float:
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


def describe(spec: dict[str, Any]) -> str:
    return (
        f"{spec['variant']} {spec['kernel']} {','.join(map(str, spec['layer_sizes']))} "
        f"b={spec['batch_size']} {spec['dtype']} x{spec['n_devices']}"
    )


# --- the run -----------------------------------------------------------------------------------


def main(args: argparse.Namespace, grids: list[plan.Grid], settings: timing.Settings) -> int:
    """``python -m bench run --distributed``: see the module docstring."""
    if args.resume:
        print("error: --resume is not supported with --distributed", file=sys.stderr)
        return 2
    started = machine.now()
    if os.environ.get(ENV_COORDINATOR):
        print(
            f"jax.distributed: process {os.environ.get(ENV_PROCESS_ID, '?')} of "
            f"{os.environ.get(ENV_NUM_PROCESSES, '?')}, coordinator "
            f"{os.environ[ENV_COORDINATOR]}",
            file=sys.stderr,
            flush=True,
        )
    try:
        initialize()
    except DistributedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    import jax

    from . import rows, sweep
    from .worker import FAULT_ENV, Worker, load_examples
    from .worker import probe as worker_probe

    pid, n_proc = jax.process_index(), jax.process_count()
    devices = jax.devices()
    backend = devices[0].platform
    local = jax.local_device_count()
    lead = pid == 0

    def say(text: str) -> None:
        if lead and not args.quiet:
            print(text, file=sys.stderr, flush=True)

    wanted = args.backends or "all"
    if wanted != "all" and backend not in sweep._csv(wanted):
        if lead:
            print(
                f"error: --backends {wanted}: the distributed devices are {backend} ones; "
                "pick the platform with JAX_PLATFORMS in every process",
                file=sys.stderr,
            )
        return 2

    run_id = broadcast_text(machine.run_id() if lead else "")
    run_dir = Path(args.out) if args.out else Path("reports") / run_id
    code = 0
    if lead and not args.dry_run and (run_dir / "results.jsonl").exists():
        print(f"error: {run_dir} already holds results; pick another --out", file=sys.stderr)
        code = 2
    if agree(code):
        return 2

    preset = args.preset or "default"
    info = {
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "n_processes": n_proc,
        "local_device_count": local,
    }
    options: dict[str, dict[str, Any]] = {}
    if args.scan_steps:
        options["scan"] = {"steps": args.scan_steps}
    if args.members:
        options["ensemble"] = {"members": args.members}
    try:
        specs, skipped = plan_global(grids, backend, info, options)
        code = 0
    except ValueError as e:
        if lead:
            print(f"error: {e}", file=sys.stderr)
        specs, skipped, code = [], [], 2
    if agree(code):
        return 2
    if args.devices and list(args.devices) != [len(devices)]:
        say(
            f"notice: --devices {','.join(map(str, args.devices))} is ignored with "
            f"--distributed: every configuration spans all {len(devices)} devices"
        )
    digests = allgather([specs_digest(specs)])[:, 0]
    if len(set(digests.tolist())) != 1:
        print(
            f"error: process {pid}: the processes planned different configurations "
            "(different arguments, versions or devices?)",
            file=sys.stderr,
        )
        return 2
    if args.dry_run:
        if lead:
            for s in specs:
                print(f"{s['grid']:<9} {describe(s)} {s['backend']} ({n_proc} processes)")
            for s in skipped:
                print(f"left out: {s['what']}: {s['reason']}")
            print(f"{len(specs)} configurations, {len(skipped)} left out", file=sys.stderr)
        return 0

    biggest = max((s["batch_size"] for s in specs), default=1)
    dataset = args.dataset or "fashion-mnist"
    worker = Worker()
    worker.settings = lockstep_settings(settings, preset)
    # a call's duration differs between processes: a slow warm-up must not end it early on one
    timing.SLOW_CALL_S = float("inf")
    worker.images, worker.labels, worker.dataset = load_examples(dataset, args.data_dir, biggest)

    fault_pid = os.environ.get(ENV_FAULT_PROCESS)
    if fault_pid not in (None, "") and fault_pid != str(pid):
        os.environ.pop(FAULT_ENV, None)  # the fault is another process's
    fault_kind, _, fault_variant = os.environ.get(FAULT_ENV, "").partition(":")

    meta: dict[str, Any] = {}
    peaks: dict[str, Any] = {}
    results = run_dir / "results.jsonl"
    if lead:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = worker_probe([backend])
        if not args.no_peaks:
            try:
                from .measure import measure_peaks

                dtypes = sorted({s["dtype"] for s in specs}) or ["float32"]
                peaks[backend] = measure_peaks(backend, dtypes, quick=preset == "quick")
            except Exception as e:
                print(f"warning: could not measure the {backend} peaks ({e})", file=sys.stderr)
        present = {backend: {**probe["backends"].get(backend, {}), **info}}
        meta = {
            **machine.base_metadata(run_id, probe, present),
            "start_time": started,
            "end_time": None,
            "command": shlex.join(["python", "-m", "bench", *sys.argv[1:]]),
            "preset": preset,
            "requested_backends": wanted,
            "peaks": peaks,
            "dataset": worker.dataset,
            "skipped": skipped,
            "n_processes": n_proc,
            "global_devices": len(devices),
            "local_devices": local,
            "settings": sweep.vars_of(worker.settings),
            "configurations": len(specs),
            "distributed": {
                "coordinator": os.environ.get(ENV_COORDINATOR),
                "process_count": n_proc,
                "devices_per_process": local,
            },
        }
        sweep._write_meta(run_dir, meta)
        if args.write_run_dir:
            Path(args.write_run_dir).write_text(str(run_dir.resolve()) + "\n")
        say(
            f"{len(specs)} configurations over {n_proc} processes × {local} {backend} devices "
            f"({len(devices)} in all), {len(skipped)} left out; writing {run_dir}"
        )

    agree(0)  # start together: process 0 may have spent a while on the peaks

    current: dict[str, Any] = {}

    def timed_out(what: str) -> None:
        print(
            f"error: process {pid}: {what} ran past --timeout "
            f"{watchdog.timeout_s:.0f} s (a stuck collective, or a process gone?); exiting",
            file=sys.stderr,
            flush=True,
        )
        if lead and current.get("spec"):
            row = rows.failed_row(
                current["spec"],
                "timeout",
                f"no result within --timeout {watchdog.timeout_s:.0f} s; the run was stopped",
                worker.dataset,
            )
            rows.append_row(results, rows.finish_row(row, current["spec"], run_id, peaks))
        os._exit(124)

    watchdog = Watchdog(args.timeout or sweep.DEFAULT_TIMEOUT_S, timed_out)
    counts = {"ok": 0, "error": 0, "timeout": 0, "skipped": 0}
    t0 = time.monotonic()
    interrupted = False
    try:
        for i, spec in enumerate(specs, 1):
            what = describe(spec)
            current["spec"] = spec
            if fault_kind and fault_variant == spec["variant"]:
                print(
                    f"process {pid}: fault injected by {FAULT_ENV}={fault_kind}:{fault_variant} "
                    f"in {what}",
                    file=sys.stderr,
                    flush=True,
                )
            watchdog.start(what)
            row = worker.measure(spec, devices=devices)
            # every process's status and median: the slowest process bounds the step
            ok = row.get("status") == "ok"
            gathered = allgather([1.0 if ok else 0.0, float(row.get("step_median_s") or np.nan)])
            watchdog.cancel()
            current.clear()
            if ok:
                row["step_median_max_s"] = float(np.nanmax(gathered[:, 1]))
                failed = [p for p in range(n_proc) if gathered[p, 0] == 0]
                if failed:
                    row["status"] = "error"
                    row["error"] = f"failed in process(es) {failed}; see their output"
            elif pid != 0:
                print(f"process {pid}: {what}: {row.get('error')}", file=sys.stderr, flush=True)
            if lead:
                row = rows.finish_row(row, spec, run_id, peaks)
                rows.append_row(results, row)
                counts[row.get("status", "error")] = counts.get(row.get("status", "error"), 0) + 1
                eta = (time.monotonic() - t0) / i * (len(specs) - i)
                say(
                    f"[{i:>{len(str(len(specs)))}}/{len(specs)} eta {eta / 60:4.1f} min] "
                    + rows.line_for(row)
                )
    except KeyboardInterrupt:
        interrupted = True
    finally:
        watchdog.cancel()
    if lead:
        meta["end_time"] = machine.now()
        sweep._write_meta(run_dir, meta)
        if results.exists():
            rows.write_csv(run_dir)
        print(
            f"{counts['ok']} ok, {counts['error']} error, {counts['timeout']} timeout; "
            f"{n_proc} processes, {len(devices)} devices; results in {run_dir}",
            file=sys.stderr,
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
    p = argparse.ArgumentParser(prog="python -m bench.distributed", description=__doc__)
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
            layers=list(plan.parse_layers(a.layers)),
            batch=a.batch,
            steps=a.steps,
            lr=a.lr,
        )
    except DistributedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_main())
