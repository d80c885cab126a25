"""The worker protocol: what the parent (:mod:`bench.runner.pool`) and a worker process
(:mod:`bench.measure.worker`) say to each other. Both sides import this module; neither imports
the other.

The parent writes one JSON request per line to the worker's stdin; the worker answers on stdout
with lines that start with :data:`PREFIX` (anything else on stdout, a library's chatter, is
ignored)::

    {"op": "hello"}                                   -> {"event": "hello", "protocol": 1}
    {"op": "init", "dataset": ..., "data_dir": ..., "n_examples": 32768,
     "settings": {...TimingSettings...}}               -> {"event": "ready", "dataset": {...}}
    {"op": "probe", "backends": ["cpu", "gpu"]}        -> {"event": "probe", "backends": {...}}
    {"op": "peaks", "backend": "cpu", "keys": ["float32", ...], "quick": false,
     "thin_batches": [128, ...]}

                                                       -> {"event": "peaks", "peaks": {...}}
    {"op": "measure", "spec": {...}, "config_id": ...} -> {"event": "start", ...}
                                                          then {"event": "row", "row": {...}}
    {"op": "exit"}

A request the worker cannot carry out exactly as asked is answered ``{"event": "error",
"error": ...}``, never measured in some other way: a spec or settings field it does not know, an
option its variant does not take. ``bench ab`` runs another commit's worker, which may speak an
older version of this protocol: the parent asks first (``hello``; a worker older than version 1
answers it with an error) and :func:`for_worker` refuses, with the reason, to send that worker a
request it would misread.

Version history:

- 0: ``python -m bench.worker`` (before the layered layout). It ignores fields it does not know.
- 1: ``python -m bench.measure.worker``; ``hello``; refuses unknown fields; the timing setting
  ``slow_call_s``; the spec fields ``precision`` and ``grad_layout`` (a protocol-0 worker gets a
  spec without them when they name the arithmetic it always used, and none otherwise).
- 2: the spec field ``slowdown`` (``bench validate``'s injected regression); ``work_scale`` (its old
  hook, more examples a step under the same configuration) is gone.
- 3: the timing setting ``compile_repeats`` (cold compiles per configuration). An older worker
  compiles once: it is sent the rest of the settings, and its rows say so (``n_compiles`` 1).
  The spec field ``compile_options`` (a named set of XLA options; a worker of an older version
  is sent ``standard`` as no field, and refuses any other). The spec field ``cached_compile`` (time the executable loaded from the persistent cache, in
  fresh processes); an older worker is sent the spec without it, and its row has no such
  figures.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from . import catalog

PROTOCOL_VERSION = 3
PREFIX = "@@bench "

#: test hook: ``KIND:VARIANT`` makes a worker's configurations of that variant ``raise``,
#: ``crash`` (the process dies) or ``hang``, so the recovery of every command can be tested.
FAULT_ENV = "MNIST_BENCH_INJECT_FAULT"
#: with :data:`FAULT_ENV` in a distributed run, only this process id injects the fault.
ENV_FAULT_PROCESS = "MNIST_BENCH_INJECT_FAULT_PROCESS"

#: The environment of each process of a ``jax.distributed`` run (``bench launch`` sets them):
#: JAX reads the coordinator itself; the process count and id are this tool's (JAX has no
#: variables for them).
ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"
#: seconds ``jax.distributed.initialize`` waits for the coordinator and the other processes.
ENV_INIT_TIMEOUT = "MNIST_BENCH_INIT_TIMEOUT"

#: the module a tree's worker runs as, by protocol version (found by :func:`worker_module`).
WORKER_MODULES = {
    3: "bench.measure.worker",
    2: "bench.measure.worker",
    1: "bench.measure.worker",
    0: "bench.worker",
}

#: fields of a measure request's spec that each protocol version honours.
SPEC_FIELDS: dict[int, frozenset[str]] = {
    0: frozenset(
        {
            "framework",
            "variant",
            "kernel",
            "layer_sizes",
            "batch_size",
            "dtype",
            "n_devices",
            "n_processes",
            "backend",
            "device_kind",
            "lr",
            "options",
            "grid",
            "config_id",
            "work_scale",  # protocols 0-1: bench validate's old hook, more examples a step
        }
    ),
}
#: version 1 adds the arithmetic: float32 matmul precision, weight-gradient layout
SPEC_FIELDS[1] = SPEC_FIELDS[0] | {"precision", "grad_layout"}
#: version 2: "slowdown": s >= 1 calls a JAX kernel s times per timed step on average (every
#: step once, and one in 1 / (s - 1) steps once more): a regression of exactly x s, at any size
#: (bench validate's detection trials)
SPEC_FIELDS[2] = (SPEC_FIELDS[1] - {"work_scale"}) | {"slowdown"}
SPEC_FIELDS[3] = SPEC_FIELDS[2] | {"cached_compile", "compile_options"}
#: spec fields that ask for an extra measurement beside the step time: an older worker is sent
#: the spec without them (what it measures is measured as asked; the extra is missing)
OPTIONAL_SPEC_FIELDS = frozenset({"cached_compile"})


class ProtocolError(ValueError):
    """A request one side cannot honour; the message says which field and why."""


@dataclasses.dataclass(frozen=True)
class TimingSettings:
    """How the steady state is timed (all seconds except the counts).

    ``slow_call_s``: a warm-up call at least this long ends the warm-up (compiled code is warm
    after one call); lock-step runs set it to infinity so that every process makes the same calls.
    """

    warmup_calls: int = 2
    min_sample_s: float = 0.005
    budget_s: float = 0.2
    #: 6: the fewest whose interval of the median covers 95% (bench.stats.MIN_SAMPLES_95)
    min_samples: int = 6
    max_samples: int = 200
    sync_budget_s: float = 0.07
    min_sync_samples: int = 3
    max_sync_samples: int = 100
    slow_call_s: float = 0.05
    #: cold compiles (caches cleared before each) timed per configuration. The default sweep's
    #: 6 minutes on 2 cores allow 2 (each costs ~35 s over its ~250 JAX rows; their range
    #: covers the median with 50%); --full takes 11 (an interval of 98.8%). compare judges
    #: compile time over passes (processes), not over these.
    compile_repeats: int = 2

    @classmethod
    def preset(cls, name: str) -> TimingSettings:
        if name == "quick":
            return cls(budget_s=0.12, sync_budget_s=0.05, min_sync_samples=3, compile_repeats=2)
        if name == "regress":
            # its passes (3 a side, 16 more for a suspect) are its compile samples, process
            # by process; more compiles in a pass would cost the step-time check its minutes
            return cls(budget_s=0.12, sync_budget_s=0.05, min_sync_samples=3, compile_repeats=1)
        if name == "full":
            return cls(
                warmup_calls=3,
                min_sample_s=0.02,
                budget_s=2.0,
                min_samples=15,
                sync_budget_s=1.0,
                min_sync_samples=10,
                compile_repeats=11,
            )
        return cls()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> TimingSettings:
        """Settings from a request; :class:`ProtocolError` for a field this version lacks."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ProtocolError(
                f"timing settings {unknown} are not known to this worker (protocol "
                f"{PROTOCOL_VERSION}); it would time differently from what was asked"
            )
        return cls(**fields)


#: timing settings each protocol version honours (version 0 had no ``slow_call_s``, versions
#: before 3 no ``compile_repeats``).
SETTINGS_FIELDS = {3: frozenset(f.name for f in dataclasses.fields(TimingSettings))}
SETTINGS_FIELDS[2] = SETTINGS_FIELDS[1] = SETTINGS_FIELDS[3] - {"compile_repeats"}
SETTINGS_FIELDS[0] = SETTINGS_FIELDS[1] - {"slow_call_s"}
#: settings an older worker may go without: they add compile samples and leave the step time
#: as it is measured (the row's ``n_compiles`` says how many it took)
OPTIONAL_SETTINGS = frozenset({"compile_repeats"})


# --- the wire -------------------------------------------------------------------------------


def encode(event: dict[str, Any]) -> str:
    """One answer line (the worker's side), NaN written as null."""
    from .results.schema import jsonable

    return PREFIX + json.dumps(jsonable(event)) + "\n"


def decode(line: str) -> dict[str, Any] | None:
    """The answer on one line of a worker's stdout, or None for a line that is not one."""
    if not line.startswith(PREFIX):
        return None
    try:
        return json.loads(line[len(PREFIX) :])
    except json.JSONDecodeError:
        return None


def hello() -> dict[str, Any]:
    return {"op": "hello", "protocol": PROTOCOL_VERSION}


def init(
    dataset: str, data_dir: str | None, n_examples: int, settings: TimingSettings
) -> dict[str, Any]:
    return {
        "op": "init",
        "dataset": dataset,
        "data_dir": data_dir,
        "n_examples": int(n_examples),
        "settings": settings.to_json(),
    }


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    return {"op": "measure", "spec": spec, "config_id": spec.get("config_id")}


def probe(backends: list[str]) -> dict[str, Any]:
    return {"op": "probe", "backends": list(backends)}


def peaks(
    backend: str, keys: list[str], quick: bool, thin_batches: list[int] = ()
) -> dict[str, Any]:
    """Measure the peaks of ``keys`` (:func:`bench.results.rows.peak_key`) on ``backend``, and
    the ``[784, 10]`` step's dot ceilings at ``thin_batches``."""
    return {
        "op": "peaks",
        "backend": backend,
        "keys": list(keys),
        "quick": bool(quick),
        "thin_batches": [int(b) for b in thin_batches],
    }


def version_of(answer: dict[str, Any]) -> int:
    """A worker's protocol version from its answer to :func:`hello` (an error: version 0)."""
    if answer.get("event") == "hello":
        return int(answer.get("protocol", 0))
    return 0


# --- checks ---------------------------------------------------------------------------------


def check_spec(spec: dict[str, Any], version: int = PROTOCOL_VERSION) -> None:
    """:class:`ProtocolError` when ``spec`` holds a field the protocol ``version`` does not
    honour, or an option its variant does not take."""
    unknown = sorted(set(spec) - SPEC_FIELDS[version])
    if unknown:
        raise ProtocolError(
            f"spec fields {unknown} are not known to a protocol-{version} worker: it would "
            "measure something other than asked"
        )
    variant = catalog.MODEL_VARIANTS.get(spec.get("variant", ""))
    options = spec.get("options") or {}
    if variant is not None:
        try:
            variant.check_options(options)
        except ValueError as e:
            raise ProtocolError(str(e)) from None
    elif options:
        raise ProtocolError(f"{spec.get('variant')} takes no options, got {sorted(options)}")


def check_request(req: dict[str, Any]) -> None:
    """The worker's check of a request (this version): :class:`ProtocolError` if it cannot be
    carried out exactly as asked."""
    if req.get("op") == "measure":
        check_spec(req.get("spec") or {})
    if req.get("op") == "init":
        TimingSettings.from_json(req.get("settings") or {})


def for_worker(req: dict[str, Any], version: int) -> dict[str, Any]:
    """``req`` as a worker speaking protocol ``version`` reads it; :class:`ProtocolError` when
    it holds something that worker would ignore (and so measure differently)."""
    if version >= PROTOCOL_VERSION:
        return req
    out = {k: v for k, v in req.items() if k != "protocol"}
    if req.get("op") == "measure":
        out["spec"] = _older_spec(req["spec"], version)
        check_spec(out["spec"], version)
    if req.get("op") == "init":
        default = TimingSettings().to_json()
        settings = dict(req.get("settings") or {})
        for name in sorted(set(settings) - SETTINGS_FIELDS[version]):
            if settings[name] != default[name] and name not in OPTIONAL_SETTINGS:
                raise ProtocolError(
                    f"timing setting {name}={settings[name]!r} is not known to a "
                    f"protocol-{version} worker, which would time with {default[name]!r}"
                )
            del settings[name]
        out["settings"] = settings
    return out


def _older_spec(spec: dict[str, Any], version: int) -> dict[str, Any]:
    """``spec`` without the fields protocol ``version`` lacks, where the worker would measure
    them as they are anyway (the arithmetic it always used); refused otherwise."""
    from .results.schema import legacy_arithmetic

    legacy = legacy_arithmetic(spec)
    out = dict(spec)
    for name in sorted(set(spec) - SPEC_FIELDS[version]):
        if name in OPTIONAL_SPEC_FIELDS or (name in legacy and spec[name] == legacy[name]):
            del out[name]
        elif name in legacy:
            raise ProtocolError(
                f"{name}={spec[name]!r}: a protocol-{version} worker computes "
                f"{legacy[name]!r} there and cannot be asked otherwise"
            )
    return out


def worker_module(tree: Path) -> str:
    """The module to run as a worker of the source tree ``tree`` (its protocol version is
    asked with :func:`hello` once it runs).

    ``bench ab`` measures an older commit with that commit's own worker, so this looks at the
    files rather than importing anything. :class:`ProtocolError` when ``tree`` has none.
    """
    for _version, module in sorted(WORKER_MODULES.items(), reverse=True):
        if (tree / (module.replace(".", "/") + ".py")).exists():
            return module
    raise ProtocolError(
        f"{tree} has no benchmark worker ({' or '.join(WORKER_MODULES.values())}): "
        "it predates the worker protocol"
    )
