"""The parent's side of the worker protocol against real processes: a fake worker that speaks
protocol 0 (the layout before ``bench.measure``, as ``bench ab`` meets it in an older commit)
and this tree's own worker. Every request either reaches the worker in a form it honours or is
refused with the reason; nothing is measured differently from what was asked."""

from __future__ import annotations

import json
import math
import textwrap
import types
from pathlib import Path
from typing import ClassVar

import pytest

from bench import protocol, selection
from bench.protocol import TimingSettings
from bench.results.machine import ROOT
from bench.runner.loop import Arm
from bench.runner.pool import WorkerMeasurer, WorkerProcess, worker_env

#: a protocol-0 worker: answers init and measure, an error for anything else (``hello``
#: included), and logs every request it reads.
V0_WORKER = textwrap.dedent(
    """
    import json, os, sys
    PREFIX = "@@bench "
    log = open(os.environ["FAKE_WORKER_LOG"], "a")

    def emit(event):
        sys.stdout.write(PREFIX + json.dumps(event) + "\\n")
        sys.stdout.flush()

    print("some library chatter on stdout")
    for line in sys.stdin:
        req = json.loads(line)
        log.write(line)
        log.flush()
        op = req.get("op")
        if op == "init":
            emit({"event": "ready", "dataset": {"name": "synthetic", "real": False}})
        elif op == "measure":
            spec = req["spec"]
            emit({"event": "start", "config_id": req.get("config_id")})
            row = {k: spec[k] for k in ("variant", "kernel", "backend", "dtype", "batch_size")}
            row.update(status="ok", step_median_s=0.001, samples_s=[0.001] * 5)
            emit({"event": "row", "row": row})
        elif op == "exit":
            break
        else:
            emit({"event": "error", "error": f"unknown op {op!r}"})
    """
)


@pytest.fixture
def v0_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tree = tmp_path / "old"
    (tree / "bench").mkdir(parents=True)
    (tree / "bench" / "__init__.py").write_text("")
    (tree / "bench" / "worker.py").write_text(V0_WORKER)
    monkeypatch.setenv("FAKE_WORKER_LOG", str(tmp_path / "requests.jsonl"))
    return tree


def spec(**extra) -> dict:
    grid = selection.Grid("t", ("jit",), ("update",), ((784, 10),), (32,))
    backends = {"cpu": {"device_kind": "cpu", "device_count": 1}}
    (s,) = selection.expand([grid], backends=backends)[0]
    return {**s, **extra}


def requests(tmp_path: Path) -> list[dict]:
    path = tmp_path / "requests.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


def test_an_older_worker_is_recognised_and_sent_what_it_reads(v0_tree, tmp_path):
    init = protocol.init("synthetic", None, 64, TimingSettings())
    measurer = WorkerMeasurer(init, tmp_path / "logs")
    arm = Arm("base", None, "run", tree=v0_tree)
    measurer.start(arm, "cpu", 1)
    row = measurer.measure(arm, spec())
    assert row["status"] == "ok" and row["step_median_s"] == 0.001
    assert measurer.workers["base"].version == 0
    # arithmetic protocol 0 cannot be asked for, and a field it would ignore: refused, not sent
    refused = measurer.measure(arm, spec(precision="default"))
    assert refused["status"] == "error" and "not measured" in refused["error"]
    assert "precision='default'" in refused["error"] and refused["variant"] == "jit"
    refused = measurer.measure(arm, spec(future_knob=1))
    assert "not measured" in refused["error"] and "['future_knob']" in refused["error"]
    measurer.stop(arm)
    sent = requests(tmp_path)
    assert [r["op"] for r in sent] == ["hello", "init", "measure", "exit"]
    assert "slow_call_s" not in sent[1]["settings"] and "protocol" not in sent[1]
    # the arithmetic it always used (float32, highest, tuned) goes without the new fields
    assert "precision" not in sent[2]["spec"] and "grad_layout" not in sent[2]["spec"]


def test_settings_an_older_worker_would_ignore_keep_it_from_starting(v0_tree, tmp_path):
    init = protocol.init("synthetic", None, 64, TimingSettings(slow_call_s=math.inf))
    measurer = WorkerMeasurer(init, tmp_path / "logs")
    arm = Arm("base", None, "run", tree=v0_tree)
    measurer.start(arm, "cpu", 1)
    row = measurer.measure(arm, spec())
    assert row["status"] == "error" and "worker did not start" in row["error"]
    assert "slow_call_s=inf" in row["error"]
    assert [r["op"] for r in requests(tmp_path)] == ["hello"]  # init never sent


def test_this_trees_worker_refuses_what_it_does_not_know(tmp_path):
    w = WorkerProcess(worker_env("cpu", 1), tmp_path / "w.log", tree=ROOT)
    try:
        assert w.handshake() == protocol.PROTOCOL_VERSION
        w.send(protocol.init("synthetic", None, 64, TimingSettings.preset("quick")))
        assert w.wait_for({"ready"}, 120)["event"] == "ready"
        w.send(protocol.measure(spec(future_knob="x")))
        with pytest.raises(RuntimeError, match=r"spec fields \['future_knob'\]"):
            w.wait_for({"row"}, 120)
        w.send(protocol.measure(spec(options={"steps": 2})))  # jit takes no steps
        with pytest.raises(RuntimeError, match="no option 'steps'"):
            w.wait_for({"row"}, 120)
    finally:
        w.close()


class FakeWorker:
    """A worker process that only counts how many of its kind are alive at once."""

    alive: ClassVar[set[int]] = set()
    most = 0
    started = 0

    def __init__(self, env, log_path, *, tree=ROOT, python=None):
        FakeWorker.started += 1
        self.id = FakeWorker.started
        self.env = env
        self.proc = types.SimpleNamespace(pid=0)
        FakeWorker.alive.add(self.id)
        FakeWorker.most = max(FakeWorker.most, len(FakeWorker.alive))

    def request(self, request, kind, timeout):
        assert self.id in FakeWorker.alive
        if kind == "ready":
            return {"dataset": {"name": "synthetic", "real": False}}
        return {"row": {"status": "ok", "worker": self.id}}

    def close(self):
        FakeWorker.alive.discard(self.id)

    kill = close


@pytest.mark.parametrize(("backend", "most"), [("cpu", 2), ("gpu", 2), ("tpu", 1)])
def test_on_a_tpu_the_two_sides_of_an_ab_take_turns(monkeypatch, tmp_path, backend, most):
    """One process owns a TPU's chips: there the base's worker ends before the head's starts
    (a fresh worker per measurement); elsewhere both stay up for the whole pass."""
    monkeypatch.setattr("bench.runner.pool.WorkerProcess", FakeWorker)
    FakeWorker.alive, FakeWorker.most, FakeWorker.started = set(), 0, 0
    arms = [Arm("base", None, "b", tree=ROOT), Arm("head", None, "h", tree=ROOT)]
    m = WorkerMeasurer({"op": "init"}, tmp_path)
    for arm in arms:
        m.start(arm, backend, 1)
    for arm in arms:
        m.prepare(arm)
    workers = [m.measure(arm, {"variant": "jit"})["worker"] for _ in range(3) for arm in arms]
    for arm in arms:
        m.stop(arm)
    assert FakeWorker.most == most
    assert FakeWorker.alive == set()
    assert len(set(workers)) == (2 if most == 2 else 6)


def test_workers_on_an_accelerator_do_not_grab_its_memory(monkeypatch):
    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    monkeypatch.delenv("XLA_PYTHON_CLIENT_MEM_FRACTION", raising=False)
    assert worker_env("gpu", 1)["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert worker_env("any", 1)["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in worker_env("cpu", 1)
    monkeypatch.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.3")  # the user's own choice stands
    assert "XLA_PYTHON_CLIENT_PREALLOCATE" not in worker_env("gpu", 1)
