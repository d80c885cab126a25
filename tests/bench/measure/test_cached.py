"""The cached compile (bench.measure.cached): two fresh processes on one empty persistent
cache, the second loading what the first compiled; a load that is not a cache hit is an error,
never a figure."""

from __future__ import annotations

import pytest

from bench import selection
from bench.measure import cached
from bench.protocol import for_worker, measure

SPEC = {
    "framework": "jax",
    "variant": "jit",
    "kernel": "update",
    "layer_sizes": [784, 16, 10],
    "batch_size": 8,
    "dtype": "float32",
    "n_devices": 1,
    "backend": "cpu",
    "lr": 0.001,
    "options": {},
}


def test_the_next_fresh_process_loads_the_executable_from_the_cache():
    cols = cached.measure_cached(SPEC)  # the children check the hit and the miss themselves
    assert set(cols) == {
        "fresh_compile_s",
        "cached_compile_s",
        "cached_first_call_s",
        "cache_entry_bytes",
    }
    assert cols["cache_entry_bytes"] > 1000  # an executable, not an empty file
    assert cols["fresh_compile_s"] > 0 and cols["cached_compile_s"] > 0
    assert cols["cached_first_call_s"] > 0


def test_a_load_that_missed_the_cache_is_an_error(monkeypatch):
    answers = iter(
        [
            {
                "compile_total_s": 0.2,
                "first_call_s": 0.01,
                "hits": 0,
                "misses": 1,
                "entry_bytes": 9,
            },
            {
                "compile_total_s": 0.2,
                "first_call_s": 0.01,
                "hits": 0,
                "misses": 1,
                "entry_bytes": 0,
            },
        ]
    )
    monkeypatch.setattr(cached, "_child", lambda spec, cache_dir: next(answers))
    with pytest.raises(RuntimeError, match="did not load the executable from the persistent"):
        cached.measure_cached(SPEC)
    nothing_written = {"compile_total_s": 0.2, "first_call_s": 0.01, "hits": 0, "misses": 1}
    monkeypatch.setattr(
        cached, "_child", lambda spec, cache_dir: {**nothing_written, "entry_bytes": 0}
    )
    with pytest.raises(RuntimeError, match="was not filled"):
        cached.measure_cached(SPEC)


def test_which_configurations_time_the_cached_compile():
    cpu = {"cpu": {"device_kind": "cpu", "device_count": 4}}
    specs, _ = selection.expand(selection.preset("default"), backends=cpu)
    asked = {
        (
            s["variant"],
            s["kernel"],
            s["batch_size"],
            s["depth"] if "depth" in s else len(s["layer_sizes"]) - 2,
        )
        for s in specs
        if s.get("cached_compile")
    }
    # the depth sweep of jit and scan: 4 depths each, whichever grid measured the row first
    assert asked == {(v, "update", 128, d) for v in ("jit", "scan") for d in (1, 8)}
    everything = [
        selection.Grid(
            "g",
            selection.ALL_VARIANTS,
            ("update", "predict", "epoch"),
            ((784, 10),),
            (128,),
            cached_compile=True,
        )
    ]
    specs, _ = selection.expand(everything, backends=cpu)
    for s in specs:  # JAX updates and predicts only: not the peers, not the epoch kernel
        jax_step = s["framework"] == "jax" and s["kernel"] != "epoch"
        assert bool(s.get("cached_compile")) == jax_step, s
    # an older worker gets the spec without it (the step time is measured as asked)
    old = for_worker(measure({**SPEC, "cached_compile": True}), 2)
    assert "cached_compile" not in old["spec"]
