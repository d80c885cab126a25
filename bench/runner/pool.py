"""The parent's side of the worker protocol (:mod:`bench.protocol`): start a worker process of a
source tree with its environment, learn its protocol version, send it requests it can honour and
read its answers with a timeout; and :class:`WorkerMeasurer`, which measures specs in such
workers for :class:`bench.runner.loop.Runner`, turning a crash or a hang into a failure row.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .. import protocol
from ..protocol import ProtocolError
from ..results import rows
from ..results.machine import ROOT
from . import load

STARTUP_TIMEOUT_S = 180.0
DEFAULT_TIMEOUT_S = 300.0
#: backends whose devices one process owns (a Cloud TPU's chips): one worker at a time there
EXCLUSIVE_BACKENDS = frozenset({"tpu"})


class WorkerDied(RuntimeError):
    pass


class WorkerTimeout(RuntimeError):
    pass


#: what a failed request raises (a refusal by the protocol, a crash, a hang, an error answer).
WORKER_ERRORS = (WorkerDied, WorkerTimeout, ProtocolError, RuntimeError)


class WorkerProcess:
    """One worker child of the source tree ``tree`` and a thread reading its answers.

    The first request is always ``hello`` (sent at once): :meth:`handshake` waits for its
    answer, and from then on every request is adapted to the worker's protocol version or
    refused (:func:`bench.protocol.for_worker`).
    """

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        *,
        tree: Path = ROOT,
        python: str = sys.executable,
    ) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self.version: int | None = None
        self._log = log_path.open("a")
        self.proc = subprocess.Popen(
            [python, "-m", protocol.worker_module(tree)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
            cwd=str(tree),
            start_new_session=True,  # a Ctrl-C reaches the parent, which ends the worker
        )
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._write(protocol.hello())

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = protocol.decode(line)
            if event is not None:
                self.events.put(event)
        self.events.put(None)  # end of stream: the process exited

    def _write(self, request: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise WorkerDied(self.why_dead()) from e

    def handshake(self, timeout: float = STARTUP_TIMEOUT_S) -> int:
        """The worker's protocol version (waits for its answer to ``hello`` once)."""
        if self.version is None:
            answer = self._next({"hello", "error"}, timeout)
            self.version = protocol.version_of(answer)
        return self.version

    def send(self, request: dict[str, Any]) -> None:
        """Send ``request`` as this worker's protocol reads it; :class:`ProtocolError` if it
        would misread it."""
        self._write(protocol.for_worker(request, self.handshake()))

    def _next(self, kinds: set[str], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerTimeout(f"no answer within {timeout:.0f} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event is None:
                raise WorkerDied(self.why_dead())
            if event.get("event") in kinds:
                return event

    def wait_for(self, kinds: set[str], timeout: float) -> dict[str, Any]:
        """The next answer of one of ``kinds``; an error answer raises ``RuntimeError``."""
        event = self._next(kinds | {"error"}, timeout)
        if event.get("event") == "error" and "error" not in kinds:
            raise RuntimeError(event.get("error", "worker error"))
        return event

    def request(self, request: dict[str, Any], kind: str, timeout: float) -> dict[str, Any]:
        self.send(request)
        return self.wait_for({kind}, timeout)

    def why_dead(self) -> str:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            what = f"worker killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
        else:
            what = f"worker exited with code {code}"
        tail = self.log_tail()
        return f"{what}; last log lines: {tail}" if tail else what

    def log_tail(self, n: int = 6) -> str:
        try:
            self._log.flush()
            lines = [ln for ln in self.log_path.read_text(errors="replace").splitlines() if ln]
        except OSError:
            return ""
        return " | ".join(lines[-n:])[-1500:]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._write({"op": "exit"})
                self.proc.wait(timeout=5)
            except (WorkerDied, subprocess.TimeoutExpired):
                self.kill()
        self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
            self.proc.wait()
        self._log.close()


def worker_env(
    backend: str, n_devices: int, base: dict[str, str] | None = None, *, root: Path | None = None
) -> dict[str, str]:
    """Environment of a worker: on CPU, ``n_devices`` fake devices; persistent cache off; on an
    accelerator no up-front grab of most of its memory (JAX takes 75% of a GPU's at start by
    default), so that ``bench ab``'s two workers and a probe share one GPU; a user's own
    ``XLA_PYTHON_CLIENT_PREALLOCATE`` or ``..._MEM_FRACTION`` stands.

    ``root`` is the source tree the worker imports (``bench ab`` runs two trees).
    """
    env = dict(os.environ if base is None else base)
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend != "cpu" and "XLA_PYTHON_CLIENT_MEM_FRACTION" not in env:
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if backend == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
        flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", env.get("XLA_FLAGS", ""))
        env["XLA_FLAGS"] = (
            f"{flags.strip()} --xla_force_host_platform_device_count={n_devices}".strip()
        )
    root = str(root or ROOT)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def one_request(
    tree: Path, log: Path, request: dict[str, Any], kind: str, *, backend: str = "any"
) -> dict[str, Any]:
    """``request`` answered by a fresh one-device worker of ``tree`` (a probe, the peaks)."""
    w = WorkerProcess(worker_env(backend, 1, root=tree), log, tree=tree)
    try:
        return w.request(request, kind, STARTUP_TIMEOUT_S)
    finally:
        w.close()


class WorkerMeasurer:
    """Measures specs in worker processes, one per arm, for :class:`bench.runner.loop.Runner`.

    :meth:`start` spawns an arm's worker for a group of specs; :meth:`measure` returns the row
    of one spec: the worker's, or a failure row when the worker did not start, crashed, hung
    past ``timeout`` (it is killed) or could not honour the request. The next spec after a
    failure gets a fresh worker. With ``track_load`` every row carries ``foreign_load``: the
    share of the CPUs other processes used while it was measured. On an exclusive backend
    (:data:`EXCLUSIVE_BACKENDS`) an arm's worker starts only once the other arms' have ended,
    so the arms of an A/B take turns with the chips: a fresh worker per measurement there.
    """

    def __init__(
        self,
        init: dict[str, Any],
        log_dir: Path,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        track_load: bool = False,
    ) -> None:
        self.init, self.log_dir, self.timeout = init, log_dir, timeout
        self.track_load = track_load
        self.workers: dict[str, WorkerProcess | None] = {}
        self.ready: dict[str, bool] = {}
        self.group: tuple[str, int] = ("cpu", 1)

    @property
    def exclusive(self) -> bool:
        return self.group[0] in EXCLUSIVE_BACKENDS

    def start(self, arm: Any, backend: str, n_devices: int) -> None:
        """Spawn ``arm``'s worker for specs on ``backend`` with ``n_devices`` (no wait); on an
        exclusive backend, only note the group (the worker starts when it measures)."""
        self.group = (backend, n_devices)
        self.ready[arm.name] = False
        if self.exclusive:
            self.workers[arm.name] = None
            return
        self._spawn(arm)

    def _spawn(self, arm: Any) -> None:
        backend, n_devices = self.group
        if self.exclusive:  # the chips are free only once every other worker has ended
            for other in [name for name, w in self.workers.items() if w and name != arm.name]:
                self._stop(other)
        name = (
            f"worker-{arm.name}-{backend}-{n_devices}"
            if arm.name
            else f"worker-{backend}-{n_devices}"
        )
        env = worker_env(backend, max(n_devices, 1), root=arm.tree)
        self.workers[arm.name] = WorkerProcess(env, self.log_dir / f"{name}.log", tree=arm.tree)
        self.ready[arm.name] = False

    def prepare(self, arm: Any) -> None:
        """Wait until ``arm``'s worker is initialised, so that no worker is still starting up
        (importing JAX, loading data) beside a measurement; a failure shows at the first
        measurement. Nothing to do on an exclusive backend (workers start as they measure)."""
        if self.exclusive:
            return
        with contextlib.suppress(WorkerDied):
            self._ready(arm)

    def _ready(self, arm: Any) -> WorkerProcess:
        """``arm``'s worker, initialised; a fresh one if the last one failed."""
        if self.workers.get(arm.name) is None:
            self._spawn(arm)
        w = self.workers[arm.name]
        assert w is not None
        if not self.ready[arm.name]:
            try:
                ready = w.request(self.init, "ready", STARTUP_TIMEOUT_S)
            except WORKER_ERRORS as e:
                self.stop(arm, kill=True)
                raise WorkerDied(f"worker did not start: {e}") from None
            arm.dataset = ready.get("dataset") or arm.dataset
            self.ready[arm.name] = True
        return w

    def measure(self, arm: Any, spec: dict[str, Any]) -> dict[str, Any]:
        try:
            w = self._ready(arm)
        except WorkerDied as e:
            return rows.failed(spec, "error", str(e), arm.dataset)
        sent = arm.transform(dict(spec)) if arm.transform else spec
        pids = [os.getpid(), w.proc.pid]
        before = load.cpu_ticks(pids) if self.track_load else None
        try:
            row = w.request(protocol.measure(sent), "row", self.timeout)["row"]
        except ProtocolError as e:  # this worker would measure something else: not asked
            return rows.failed(spec, "error", f"not measured: {e}", arm.dataset)
        except WorkerTimeout:
            why = f"no result within --timeout {self.timeout:.0f} s; the worker was killed"
            self.stop(arm, kill=True)
            return rows.failed(spec, "timeout", why, arm.dataset)
        except WORKER_ERRORS as e:
            self.stop(arm, kill=True)
            return rows.failed(spec, "error", str(e), arm.dataset)
        if self.track_load:
            row["foreign_load"] = load.foreign_load(before, pids)
        return row

    def stop(self, arm: Any, kill: bool = False) -> None:
        self._stop(arm.name, kill)

    def _stop(self, name: str, kill: bool = False) -> None:
        w = self.workers.pop(name, None)
        self.ready[name] = False
        if w is not None:
            w.kill() if kill else w.close()
