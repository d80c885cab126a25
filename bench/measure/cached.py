"""What a user's next start waits for: the executable loaded from JAX's persistent compilation
cache in a fresh process, beside the compile that filled it.

For a configuration that asks (spec field ``cached_compile``), the worker runs this module
twice as a child process (``python -m bench.measure.cached``) on one new, empty cache
directory. Each child turns the persistent cache on for that directory with no minimum compile
time or entry size (JAX's defaults skip compiles under a second, and small entries on some
file systems), pays the same one-time costs (a warm-up compile that is not written to the
cache, so both children do the same work before the timed one), then times the configuration's
trace, lower and compile, and its first call:

- the first child finds the cache empty: a cold compile in a fresh process, which also writes
  the entry (``fresh_compile_s``; the entry's size, ``cache_entry_bytes``);
- the second child, a fresh process like a user's next start, loads it (``cached_compile_s``,
  ``cached_first_call_s``).

Each child says what the cache did (JAX's ``/jax/compilation_cache/cache_hits`` and
``cache_misses`` events); a load that was not a hit, or a fill that wrote nothing, is an error,
never a figure. The children inherit the worker's environment (its device count).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

#: JAX's events that say what the persistent cache did during a compile
HIT_EVENT = "/jax/compilation_cache/cache_hits"
MISS_EVENT = "/jax/compilation_cache/cache_misses"
#: seconds a child may take (Python, JAX, a warm-up and one compile)
CHILD_TIMEOUT_S = 600.0
PREFIX = "@@cached "


def measure_cached(spec: dict[str, Any]) -> dict[str, Any]:
    """The cached-compile columns of ``spec``'s row (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="bench-compile-cache-") as cache_dir:
        fill = _child(spec, cache_dir)
        if fill["misses"] < 1 or fill["hits"] or not fill["entry_bytes"]:
            raise RuntimeError(
                f"the persistent cache was not filled as expected (hits {fill['hits']}, "
                f"misses {fill['misses']}, {fill['entry_bytes']} bytes written)"
            )
        hit = _child(spec, cache_dir)
        if hit["hits"] < 1 or hit["misses"]:
            raise RuntimeError(
                f"a fresh process did not load the executable from the persistent cache "
                f"(hits {hit['hits']}, misses {hit['misses']}): its key differs between "
                "processes, so nothing here is a cache hit"
            )
    return {
        "fresh_compile_s": fill["compile_total_s"],
        "cached_compile_s": hit["compile_total_s"],
        "cached_first_call_s": hit["first_call_s"],
        "cache_entry_bytes": fill["entry_bytes"],
    }


def _child(spec: dict[str, Any], cache_dir: str) -> dict[str, Any]:
    request = json.dumps({"spec": spec, "cache_dir": cache_dir})
    done = subprocess.run(
        [sys.executable, "-m", __name__],
        input=request,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        env=os.environ.copy(),
    )
    for line in done.stdout.splitlines():
        if line.startswith(PREFIX):
            return json.loads(line[len(PREFIX) :])
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    raise RuntimeError(
        f"the cached-compile child process exited {done.returncode}: " + " | ".join(tail)
    )


def _files(path: str) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in Path(path).rglob("*") if p.is_file()}


def run(spec: dict[str, Any], cache_dir: str) -> dict[str, Any]:
    """One child's work (in a fresh process; see the module docstring)."""
    import jax

    from . import timing
    from .kernels import compile_cold, devices_for, prepare, warm_compile

    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # no size limit
    # the warm-up is looked up (the cache starts) and not written: the same in both children
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1e9)
    warm_compile(spec["backend"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)

    counts = {HIT_EVENT: 0, MISS_EVENT: 0}

    def listen(event: str, **_: Any) -> None:
        if event in counts:
            counts[event] += 1

    jax.monitoring.register_event_listener(listen)
    devices = devices_for(spec)
    rng = np.random.RandomState(0)
    need = int(spec["batch_size"])  # batch_arrays repeats them for the steps of a call
    images = rng.rand(need, 784).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.randint(0, 10, need)]
    _, fn, params, batch, _ = prepare(spec, images, labels, devices)
    before = _files(cache_dir)
    compiled, phases = compile_cold(fn, (params, batch))
    t0 = timing.clock()
    jax.block_until_ready(compiled(params, batch))
    first_call_s = timing.clock() - t0
    written = {k: v for k, v in _files(cache_dir).items() if before.get(k) != v}
    return {
        "compile_total_s": sum(v or 0.0 for v in phases.values()),
        "first_call_s": first_call_s,
        "hits": counts[HIT_EVENT],
        "misses": counts[MISS_EVENT],
        "entry_bytes": sum(written.values()),
    }


def main() -> int:
    request = json.loads(sys.stdin.read())
    out = run(request["spec"], request["cache_dir"])
    sys.stdout.write(PREFIX + json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
