"""`python -m bench launch -n N [--devices-per-process K] -- run ...`: a local multi-process run
(:mod:`bench.runner.launcher`)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from ..results import machine
from ..runner.launcher import (
    DEFAULT_INIT_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    FAIL_GRACE_S,
    Child,
    child_env,
    free_port,
    run_arguments,
    stop_all,
    supervise,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-n", "--processes", type=int, required=True, help="number of processes to start"
    )
    p.add_argument(
        "--devices-per-process",
        type=int,
        default=1,
        metavar="K",
        help="devices each process gets: fake CPU devices, or GPUs with --backend gpu (1)",
    )
    p.add_argument(
        "--backend",
        choices=("cpu", "gpu"),
        default="cpu",
        help="cpu (fake devices, the default) or gpu (K GPUs of this machine per process)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds the whole run may take before every process is stopped "
        f"({DEFAULT_TIMEOUT_S:.0f})",
    )
    p.add_argument(
        "--init-timeout",
        type=float,
        default=DEFAULT_INIT_TIMEOUT_S,
        help="seconds a process waits for the coordinator and the other processes "
        f"({DEFAULT_INIT_TIMEOUT_S})",
    )
    p.add_argument(
        "--port", type=int, default=None, help="coordinator port on 127.0.0.1 (a free one)"
    )
    p.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        help="after --: the run, like `run --quick --variants sharded`",
    )


def main(args: argparse.Namespace) -> int:
    n, k = args.processes, args.devices_per_process
    if n < 1 or k < 1:
        print("error: -n and --devices-per-process must be at least 1", file=sys.stderr)
        return 2
    try:
        run_args, out = run_arguments(args.command, machine.run_id())
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    coordinator = f"127.0.0.1:{args.port or free_port()}"
    print(
        f"launch: {n} processes × {k} {args.backend} device(s), coordinator {coordinator}, "
        f"writing {out}",
        file=sys.stderr,
        flush=True,
    )
    lock = threading.Lock()
    children: list[Child] = []
    interrupts = {"n": 0}

    def on_sigint(signum: int, frame: Any) -> None:
        interrupts["n"] += 1
        for c in children:
            c.signal(signal.SIGINT if interrupts["n"] == 1 else signal.SIGKILL)

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, on_sigint)
    try:
        for i in range(n):
            env = child_env(
                i, n, coordinator, k, backend=args.backend, init_timeout=args.init_timeout
            )
            children.append(Child(i, [sys.executable, "-m", "bench", *run_args], env, lock))
        return supervise(children, args.timeout, interrupts, out)
    finally:
        stop_all(children, grace=FAIL_GRACE_S)
        for s, h in previous.items():
            signal.signal(s, h)
