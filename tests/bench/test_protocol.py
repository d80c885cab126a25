"""The worker protocol, both sides of it: what a worker refuses, what the parent will not send
to an older worker, and where a tree's worker is."""

from __future__ import annotations

import math

import pytest

from bench import protocol
from bench.protocol import ProtocolError, TimingSettings

SPEC = {
    "framework": "jax",
    "variant": "scan",
    "kernel": "update",
    "layer_sizes": [784, 10],
    "batch_size": 32,
    "dtype": "float32",
    "n_devices": 1,
    "n_processes": 1,
    "backend": "cpu",
    "device_kind": "cpu",
    "lr": 0.001,
    "options": {"steps": 4},
    "grid": "batch",
    "config_id": "abc",
}


def test_a_worker_refuses_fields_and_options_it_does_not_know():
    protocol.check_request(protocol.measure(SPEC))
    with pytest.raises(ProtocolError, match=r"spec fields \['future'\]"):
        protocol.check_request(protocol.measure({**SPEC, "future": "tf32"}))
    with pytest.raises(ProtocolError, match="no option 'members'"):
        protocol.check_spec({**SPEC, "options": {"members": 2}})
    with pytest.raises(ProtocolError, match="steps=0"):
        protocol.check_spec({**SPEC, "options": {"steps": 0}})
    with pytest.raises(ProtocolError, match="takes no options"):
        protocol.check_spec({**SPEC, "variant": "numpy", "options": {"steps": 2}})
    init = protocol.init("synthetic", None, 64, TimingSettings())
    protocol.check_request(init)
    with pytest.raises(ProtocolError, match="timing settings"):
        protocol.check_request({**init, "settings": {**init["settings"], "new_knob": 1}})


def test_an_older_worker_gets_only_what_it_honours():
    init = protocol.init("synthetic", None, 64, TimingSettings())
    old = protocol.for_worker(init, 0)
    assert (
        "slow_call_s" not in old["settings"]
        and old["settings"]["budget_s"] == TimingSettings().budget_s
    )
    assert protocol.for_worker(init, protocol.PROTOCOL_VERSION) == init  # as it is
    # an older worker compiles once: the step time is timed as asked, the row says n_compiles 1
    regress = protocol.init("synthetic", None, 64, TimingSettings.preset("quick"))
    for version in (0, 1, 2):
        assert "compile_repeats" not in protocol.for_worker(regress, version)["settings"]
    assert protocol.for_worker(regress, 3)["settings"]["compile_repeats"] == 2
    lockstep = protocol.init("synthetic", None, 64, TimingSettings(slow_call_s=math.inf))
    with pytest.raises(ProtocolError, match="slow_call_s=inf is not known to a protocol-0"):
        protocol.for_worker(lockstep, 0)
    assert protocol.for_worker(protocol.measure(SPEC), 0)["spec"] == SPEC
    usual = {**SPEC, "precision": "highest", "grad_layout": "tuned"}
    assert protocol.for_worker(protocol.measure(usual), 0)["spec"] == SPEC  # what it always did
    with pytest.raises(ProtocolError, match=r"stock.*protocol-0 worker computes 'tuned'"):
        protocol.for_worker(protocol.measure({**usual, "grad_layout": "stock"}), 0)
    bf16 = {**SPEC, "dtype": "bfloat16", "precision": "bf16"}  # protocol 0: float32 backward
    with pytest.raises(ProtocolError, match="computes 'bf16-forward'"):
        protocol.for_worker(protocol.measure(bf16), 0)
    with pytest.raises(ProtocolError, match=r"spec fields \['future'\].*protocol-0"):
        protocol.for_worker(protocol.measure({**SPEC, "future": 1}), 0)
    # bench validate's injected slowdown: a protocol-1 worker would not slow anything
    slowed = protocol.measure({**usual, "slowdown": 1.2})
    assert protocol.for_worker(slowed, 2) == slowed
    with pytest.raises(ProtocolError, match=r"spec fields \['slowdown'\].*protocol-1"):
        protocol.for_worker(slowed, 1)
    with pytest.raises(ProtocolError, match=r"spec fields \['work_scale'\]"):
        protocol.check_spec({**SPEC, "work_scale": 1.2})  # the old hook: gone


def test_the_wire_and_the_version_handshake():
    line = protocol.encode({"event": "row", "row": {"x": math.nan, "y": [1.5]}})
    assert line.startswith(protocol.PREFIX) and line.endswith("\n")
    assert protocol.decode(line) == {"event": "row", "row": {"x": None, "y": [1.5]}}
    assert protocol.decode("chatter from a library\n") is None
    assert protocol.decode(protocol.PREFIX + "{not json\n") is None
    assert protocol.version_of({"event": "hello", "protocol": 1}) == 1
    assert protocol.version_of({"event": "error", "error": "unknown op 'hello'"}) == 0


def test_a_tree_names_its_worker(tmp_path):
    assert protocol.worker_module(protocol_root()) == "bench.measure.worker"
    (tmp_path / "bench").mkdir()
    with pytest.raises(ProtocolError, match="predates the worker protocol"):
        protocol.worker_module(tmp_path)
    (tmp_path / "bench" / "worker.py").write_text("")
    assert protocol.worker_module(tmp_path) == "bench.worker"


def test_timing_settings_round_trip():
    s = TimingSettings.preset("full")
    assert TimingSettings.from_json(s.to_json()) == s
    assert TimingSettings.preset("quick").budget_s < TimingSettings().budget_s < s.budget_s


def protocol_root():
    from bench.results.machine import ROOT

    return ROOT
