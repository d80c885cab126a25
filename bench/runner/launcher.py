"""A local multi-process run (``python -m bench launch``): start N processes of ``python -m bench
run --distributed ...`` on this machine, echo their output, stop them all when one fails.

Starts N processes ``python -m bench run --distributed ...`` on this machine, process 0 serving
as the ``jax.distributed`` coordinator on ``127.0.0.1`` and a free port. On CPU each process gets
K fake devices (``XLA_FLAGS=--xla_force_host_platform_device_count=K``, ``JAX_PLATFORMS=cpu``);
with ``--backend gpu`` each gets K GPUs (``JAX_LOCAL_DEVICE_IDS``). Every process gets
``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``, and the same ``--out``
(``reports/<run-id>`` unless the run arguments name one).

Each child's output lines are echoed with a ``[p0]``, ``[p1]``... prefix. Ctrl-C is forwarded to
the children. When a child fails (a non-zero exit: a crash, an error, a coordinator it cannot
reach within ``--init-timeout``), the others are stopped and the launcher exits non-zero with the
failed process's last lines; ``--timeout`` bounds the whole run.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..protocol import ENV_COORDINATOR, ENV_INIT_TIMEOUT, ENV_NUM_PROCESSES, ENV_PROCESS_ID
from .pool import worker_env

DEFAULT_TIMEOUT_S = 7200.0
DEFAULT_INIT_TIMEOUT_S = 60
#: seconds the children get to stop after a Ctrl-C before they are killed.
GRACE_S = 5.0
#: the same after another process failed (JAX's preemption service catches SIGTERM).
FAIL_GRACE_S = 2.0
TAIL_LINES = 15
#: chatter of the CPU collectives library (sometimes cut in two by other output): not echoed.
NOISE = re.compile(r"\[Gloo\]|connected peer ranks")
#: lines kept out of a child's last lines: frames of a native stack trace.
FRAME = re.compile(r"^\s*(@\s+0x[0-9a-f]+|\*\*\* Check failure stack trace)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(
    process_id: int,
    n_processes: int,
    coordinator: str,
    devices_per_process: int,
    *,
    backend: str = "cpu",
    init_timeout: float = DEFAULT_INIT_TIMEOUT_S,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of process ``process_id`` of a local ``jax.distributed`` run."""
    env = worker_env(backend, devices_per_process, base)  # cpu: K fake devices, JAX_PLATFORMS
    if backend == "gpu":
        first = process_id * devices_per_process
        env["JAX_LOCAL_DEVICE_IDS"] = ",".join(
            str(i) for i in range(first, first + devices_per_process)
        )
    env[ENV_COORDINATOR] = coordinator
    env[ENV_NUM_PROCESSES] = str(n_processes)
    env[ENV_PROCESS_ID] = str(process_id)
    env[ENV_INIT_TIMEOUT] = str(int(init_timeout))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_arguments(command: list[str], run_id: str) -> tuple[list[str], str]:
    """``run ...`` with ``--distributed`` and an ``--out`` (the one given, else reports/<run-id>)."""
    args = list(command)
    if args and args[0] == "--":
        args = args[1:]
    if not args or args[0] != "run":
        raise ValueError(
            "give the run's arguments after --, starting with `run`: "
            "python -m bench launch -n 2 -- run --quick"
        )
    out = None
    for i, a in enumerate(args):
        if a == "--out" and i + 1 < len(args):
            out = args[i + 1]
        elif a.startswith("--out="):
            out = a.split("=", 1)[1]
    if out is None:
        out = str(Path("reports") / run_id)
        args += ["--out", out]
    if "--distributed" not in args:
        args.insert(1, "--distributed")
    return args, out


class Child:
    """One process of the run, with threads echoing its output under a ``[pN]`` prefix."""

    def __init__(self, index: int, argv: list[str], env: dict[str, str], lock: threading.Lock):
        self.index, self.lock = index, lock
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=env,
            start_new_session=True,  # signals reach it only through the launcher
        )
        self.readers = [
            threading.Thread(target=self._echo, args=(self.proc.stdout, sys.stdout), daemon=True),
            threading.Thread(target=self._echo, args=(self.proc.stderr, sys.stderr), daemon=True),
        ]
        for t in self.readers:
            t.start()

    @property
    def prefix(self) -> str:
        return f"[p{self.index}]"

    def _echo(self, stream: Any, out: Any) -> None:
        for line in stream:
            line = line.rstrip("\n")
            if NOISE.search(line):
                continue
            with self.lock:
                if not FRAME.match(line):
                    self.tail.append(line)
                print(f"{self.prefix} {line}", file=out, flush=True)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def finish_output(self, timeout: float = 2.0) -> None:
        for t in self.readers:
            t.join(timeout)

    def last_lines(self) -> str:
        with self.lock:
            lines = list(self.tail)
        return "\n".join(f"  {self.prefix} {ln}" for ln in lines) or f"  {self.prefix} (no output)"


def exit_text(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


#: a distributed process's exit code when a configuration ran past --timeout (its watchdog)
WATCHDOG_EXIT = 124
#: the watchdog's line, with the phase the process was in (bench.measure.timing.PHASES)
WATCHDOG_LINE = re.compile(r"ran past --timeout \S+ s \(in (?P<phase>[a-z ]+):")
PHASES = ("preparing", "compiling", "first call", "steps")


def wait_for_exits(children: list[Child], grace: float) -> None:
    deadline = time.monotonic() + grace
    while any(c.proc.poll() is None for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)


def stopped_first(children: list[Child]) -> tuple[Child | None, str]:
    """When several processes' watchdogs fired, the one that stopped earliest in its
    configuration (the others were waiting for it in a collective) and that phase; None when
    that is not clear."""
    phases = {}
    for c in children:
        with c.lock:
            lines = list(c.tail)
        for line in lines:
            found = WATCHDOG_LINE.search(line)
            if found and found["phase"] in PHASES:
                phases[c.index] = PHASES.index(found["phase"])
    if len(phases) < 2:
        return None, ""
    earliest = min(phases.values())
    stuck = [i for i, rank in phases.items() if rank == earliest]
    if len(stuck) != 1 or earliest == max(phases.values()):
        return None, ""
    return next(c for c in children if c.index == stuck[0]), PHASES[earliest]


def stop_all(children: list[Child], sig: int = signal.SIGTERM, grace: float = GRACE_S) -> None:
    """``sig`` to every running child, then SIGKILL to those still there after ``grace``."""
    for c in children:
        c.signal(sig)
    deadline = time.monotonic() + grace
    for c in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            c.proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
    for c in children:
        if c.proc.poll() is None:
            c.signal(signal.SIGKILL)
            c.proc.wait()
    for c in children:
        c.finish_output()


def supervise(children: list[Child], timeout: float, interrupts: dict[str, int], out: str) -> int:
    start = time.monotonic()
    interrupted_at: float | None = None
    exited_at: dict[int, float] = {}  # when each child was first seen gone
    while True:
        codes = [c.proc.poll() for c in children]
        for c, code in zip(children, codes, strict=True):
            if code is not None:
                exited_at.setdefault(c.index, time.monotonic())
        failed = [c for c, code in zip(children, codes, strict=True) if code not in (None, 0)]
        if interrupts["n"] and interrupted_at is None:
            interrupted_at = time.monotonic()
        if interrupted_at is not None:
            if all(code is not None for code in codes) or (
                time.monotonic() - interrupted_at > GRACE_S
            ):
                stop_all(children, signal.SIGKILL, 0.0)
                print("launch: interrupted; stopped every process", file=sys.stderr)
                return 130
        elif failed:
            # the first to go is the cause: the others often fail because it went
            first = min(failed, key=lambda c: (exited_at[c.index], c.index))
            elapsed = exited_at[first.index] - start
            if first.proc.returncode == WATCHDOG_EXIT:  # the others' watchdogs fire now too
                wait_for_exits(children, FAIL_GRACE_S)
            stop_all(children, grace=FAIL_GRACE_S)
            stuck, where = stopped_first(children)
            if stuck is not None and stuck is not first:
                first, elapsed = stuck, time.monotonic() - start
            # those that ended on their own (the rest were stopped here)
            others = [c for c in children if (c.proc.returncode or 0) > 0 and c is not first]
            also = "".join(
                f"; process {c.index} also {exit_text(c.proc.returncode)}" for c in others
            )
            last = first.last_lines()
            hint = (
                " (it could not reach the coordinator in time: is the port free, and is "
                "process 0 running?)"
                if "RegisterTask" in last or "could not initialise" in last
                else ""
            )
            if stuck is first:
                hint += f" (it stopped in {where}; the others waited for it in a collective)"
            usage = first.proc.returncode == 2  # `bench run` refused its arguments
            if usage:
                hint += " (the run refused its arguments: see its message below)"
            print(
                f"error: process {first.index} {exit_text(first.proc.returncode)} after "
                f"{elapsed:.1f} s{also}{hint}; stopped the other processes. "
                f"Last lines of process {first.index}:\n{last}",
                file=sys.stderr,
                flush=True,
            )
            return 2 if usage else 1
        elif all(code == 0 for code in codes):
            for c in children:
                c.finish_output()
            print(
                f"launch: all {len(children)} processes finished; results in {out}", file=sys.stderr
            )
            return 0
        elif time.monotonic() - start > timeout:
            stop_all(children, grace=FAIL_GRACE_S)
            lines = "\n".join(c.last_lines() for c in children)
            print(
                f"error: the run took longer than --timeout {timeout:.0f} s; stopped all "
                f"{len(children)} processes. Last lines:\n{lines}",
                file=sys.stderr,
                flush=True,
            )
            return 1
        time.sleep(0.05)
