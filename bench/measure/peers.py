"""Peers: the same MLP and SGD step in PyTorch and NumPy, timed by the same code as the JAX kernels.

A peer is a *variant* of its own framework; the sweep treats it like a JAX variant and the
worker calls :func:`measure` for it. The math is :mod:`mnist_kernels.model`'s, written again in
each framework: tanh hidden layers ``tanh(x @ w + b)``, a linear last layer, log-softmax
``z - logsumexp(z)``, loss ``-mean(sum(logp * onehot))`` and plain SGD ``w - lr * dw``.

- ``torch-eager``: PyTorch autograd. Parameters are leaf tensors with ``requires_grad``; one step
  is ``torch.autograd.grad`` of the loss, then ``p.sub_(dp, alpha=lr)`` under ``no_grad`` (in
  place, like ``torch.optim.SGD``: the returned params are the same tensors). ``predict`` runs
  the forward under ``torch.inference_mode()``. Hidden layers use ``torch.addmm`` (what
  ``nn.Linear`` runs).
- ``torch-compile``: the whole step (forward, ``torch.func.grad``, SGD) in one
  ``torch.compile(fullgraph=True, dynamic=False)`` graph that returns new tensors, as the JAX
  ``jit`` step does. (``torch.autograd.grad`` would break the graph unless dynamo's
  experimental ``trace_autograd_ops`` is on; ``torch.func.grad`` traces in full.) ``predict`` is
  the compiled forward. Compiling happens on the first call: :func:`measure` clears dynamo's
  state and turns the on-disk caches off for it (``force_disable_caches``), so the first call is a
  cold compile, and reports ``compile_s = first_call_s - step_median_s`` (the first call's time
  less one steady step; never below zero). Dynamo's ``unique_graphs`` counter during the steady
  state is ``recompiles``. A compile that fails here is reported as unavailable, with the reason.
- ``numpy``: forward and backward written by hand in float32 NumPy; SGD in place.

dtypes: ``bfloat16`` keeps float32 parameters and runs each matmul on bfloat16 operands,
``(x.bfloat16() @ w.bfloat16()).float() + b``; autograd runs the backward matmuls on bfloat16
too. PyTorch's bfloat16 matmul accumulates in float32 and rounds its output to bfloat16, which
is what the JAX variants do (:mod:`mnist_kernels.matmul`). NumPy has no bfloat16: unavailable.

Precision of float32 matmuls: ``highest`` turns TF32 off (``torch.backends.cuda.matmul.
allow_tf32 = False``, ``torch.set_float32_matmul_precision("highest")``), ``tf32`` on (``"high"``);
``default`` leaves PyTorch's defaults, which are full float32 (JAX's default on an NVIDIA GPU is
TF32: ``default`` rows are not compared across frameworks). Set when a step is built.

Backends and synchronisation: ``gpu`` is CUDA (``torch.cuda.is_available()``); its ``sync`` is
``torch.cuda.synchronize()``, so every timed sample waits for the device. PyTorch's CPU ops and
NumPy return when their work is done, so on ``cpu`` ``sync`` is a no-op. Threads: PyTorch keeps
its default intra-op thread count (``torch.get_num_threads()``: the physical cores) and NumPy its
BLAS default (all cores), as a user of either would run them.

Inputs are copied to the device before timing; parameters come from
:func:`mnist_kernels.model.init_params`, the JAX kernels' initial values.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from mnist_kernels import model

from .. import catalog
from ..protocol import TimingSettings
from . import timing

PEERS = catalog.PEER_VARIANTS
BACKENDS = ("cpu", "gpu")
INSTALL_HINT = "PyTorch is not installed: pip install '.[peers]'"


class PeerUnavailable(Exception):
    """Reason the peer cannot run here (``str(e)`` is the reason shown in results)."""


def _import_torch():
    """``torch``, or :class:`PeerUnavailable` with the reason it cannot be imported."""
    try:
        import torch
    except ImportError:
        raise PeerUnavailable(INSTALL_HINT) from None
    except Exception as e:  # a broken install: say so rather than crash the sweep
        raise PeerUnavailable(f"PyTorch failed to import: {type(e).__name__}: {e}") from None
    return torch


def unavailable_reason(
    variant: str, backend: str = "cpu", dtype: str = "float32", precision: str = "highest"
) -> str | None:
    """Why ``variant`` cannot run on ``backend`` in ``dtype`` at ``precision`` here, or
    ``None`` when it can.

    Cheap checks only (imports, devices, a C++ compiler for ``torch.compile``); a compile that
    fails anyway is reported by :func:`measure` as :class:`PeerUnavailable`.
    """
    if variant not in PEERS:
        raise ValueError(f"unknown peer {variant!r}; pick from {', '.join(PEERS)}")
    if dtype not in model.DTYPES:
        return f"dtype {dtype!r} is not one of {', '.join(model.DTYPES)}"
    if backend not in BACKENDS:
        return f"{variant} runs on {' or '.join(BACKENDS)}, not {backend!r}"
    if precision == "tf32" and backend != "gpu":
        return f"TF32 is an NVIDIA GPU precision; {backend} float32 matmuls have none"
    if catalog.framework(variant) == "numpy":
        if backend != "cpu":
            return "NumPy runs on the CPU only"
        if dtype == "bfloat16":
            return "NumPy has no bfloat16 dtype"
        return None
    try:
        torch = _import_torch()
    except PeerUnavailable as e:
        return str(e)
    if backend == "gpu" and not torch.cuda.is_available():
        if torch.version.cuda is None:
            return f"this PyTorch build ({torch.__version__}) has no CUDA support"
        return "PyTorch sees no CUDA device"
    if variant == "torch-compile":
        return _compile_reason(torch, backend)
    return None


def _compile_reason(torch: Any, backend: str) -> str | None:
    try:
        from torch._dynamo.eval_frame import is_dynamo_supported

        if not is_dynamo_supported():
            return f"torch.compile does not support this platform or Python ({torch.__version__})"
    except Exception as e:
        return f"torch.compile is not usable here: {type(e).__name__}: {e}"
    if backend == "gpu":
        if importlib.util.find_spec("triton") is None:
            return "torch.compile on CUDA needs Triton, which is not installed"
        return None
    cxx = os.environ.get("CXX") or "g++"
    if shutil.which(cxx) is None:
        return f"torch.compile's CPU backend (inductor) needs a C++ compiler; {cxx} is not on PATH"
    return None


def _device_name(backend: str) -> str:
    return "cuda" if backend == "gpu" else "cpu"


class TorchStep:
    """One PyTorch peer: ``update``, ``predict`` and the conversions around them."""

    def __init__(
        self,
        variant: str,
        layer_sizes: Sequence[int],
        lr: float,
        dtype: str,
        backend: str,
        precision: str = "highest",
    ) -> None:
        torch = _import_torch()
        self.torch = torch
        _set_precision(torch, precision)
        self.variant = variant
        self.layer_sizes = [int(s) for s in layer_sizes]
        self.lr = float(lr)
        self.bf16 = dtype == "bfloat16"
        self.device = torch.device(_device_name(backend))
        self.compiled = variant == "torch-compile"
        if self.compiled:
            self._update = torch.compile(self._step, fullgraph=True, dynamic=False)
            self._predict = torch.compile(self._forward, fullgraph=True, dynamic=False)

    # the model, once, in torch ops
    def _affine(self, a: Any, w: Any, b: Any) -> Any:
        torch = self.torch
        if self.bf16:
            return torch.matmul(a.to(torch.bfloat16), w.to(torch.bfloat16)).float() + b
        return torch.addmm(b, a, w)

    def _forward(self, params: list[tuple[Any, Any]], x: Any) -> Any:
        a = x
        for w, b in params[:-1]:
            a = self.torch.tanh(self._affine(a, w, b))
        w, b = params[-1]
        z = self._affine(a, w, b)
        return z - self.torch.logsumexp(z, dim=1, keepdim=True)

    def _loss(self, params: list[tuple[Any, Any]], x: Any, t: Any) -> Any:
        return -(self._forward(params, x) * t).sum(dim=1).mean()

    def _step(self, params: list[tuple[Any, Any]], x: Any, t: Any) -> list[tuple[Any, Any]]:
        grads = self.torch.func.grad(self._loss)(params, x, t)
        lr = self.lr
        return [(w - lr * dw, b - lr * db) for (w, b), (dw, db) in zip(params, grads, strict=True)]

    # the kernels
    def update(self, params: list[tuple[Any, Any]], x: Any, t: Any) -> list[tuple[Any, Any]]:
        """One SGD step. Eager: in place, returns ``params``; compiled: new tensors."""
        if self.compiled:
            return self._update(params, x, t)
        torch = self.torch
        flat = [p for wb in params for p in wb]
        with torch.enable_grad():
            loss = self._loss(params, x, t)
        grads = torch.autograd.grad(loss, flat)
        with torch.no_grad():
            for p, g in zip(flat, grads, strict=True):
                p.sub_(g, alpha=self.lr)
        return params

    def predict(self, params: list[tuple[Any, Any]], x: Any) -> Any:
        """Log-probabilities ``(B, 10)``."""
        if self.compiled:
            with self.torch.no_grad():
                return self._predict(params, x)
        with self.torch.inference_mode():
            return self._forward(params, x)

    # conversions
    def params_from_numpy(self, params: Sequence[tuple[np.ndarray, np.ndarray]]) -> list:
        """Copies on the device (float32; eager: leaves that require grad)."""
        grad = not self.compiled
        return [
            (self.to_device(w).requires_grad_(grad), self.to_device(b).requires_grad_(grad))
            for w, b in params
        ]

    def params_to_numpy(self, params: list[tuple[Any, Any]]) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(self.to_numpy(w), self.to_numpy(b)) for w, b in params]

    def to_device(self, array: np.ndarray) -> Any:
        """A float32 copy of ``array`` on this peer's device."""
        return self.torch.tensor(np.asarray(array, dtype=np.float32), device=self.device)

    def to_numpy(self, tensor: Any) -> np.ndarray:
        return tensor.detach().to("cpu").numpy().copy()

    def sync(self, _: Any = None) -> None:
        """Wait for the device: ``torch.cuda.synchronize()``; a no-op on the CPU."""
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def device_kind(self) -> str:
        if self.device.type == "cuda":
            return self.torch.cuda.get_device_name(self.device)
        return "cpu"


class NumpyStep:
    """The NumPy peer: forward and backward by hand, float32, SGD in place."""

    def __init__(self, layer_sizes: Sequence[int], lr: float) -> None:
        self.layer_sizes = [int(s) for s in layer_sizes]
        self.lr = np.float32(lr)

    @staticmethod
    def _hidden(params: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> list[np.ndarray]:
        acts = [x]
        for w, b in params[:-1]:
            acts.append(np.tanh(acts[-1] @ w + b))
        return acts

    def predict(self, params: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
        w, b = params[-1]
        z = self._hidden(params, x)[-1] @ w + b
        m = z.max(axis=1, keepdims=True)
        return z - (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))

    def update(
        self, params: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, t: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """One SGD step in place; returns ``params``."""
        acts = self._hidden(params, x)
        w, b = params[-1]
        z = acts[-1] @ w + b
        e = np.exp(z - z.max(axis=1, keepdims=True))
        softmax = e / e.sum(axis=1, keepdims=True)
        # loss = -mean(sum(logp * t)): dloss/dlogp = -t / B; through log-softmax:
        dlogp = t * np.float32(-1.0 / x.shape[0])
        dz = dlogp - softmax * dlogp.sum(axis=1, keepdims=True)
        for i in range(len(params) - 1, -1, -1):
            w, b = params[i]
            a = acts[i]
            dw = a.T @ dz
            db = dz.sum(axis=0)
            if i > 0:  # the input gradient, with the pre-update w; the data needs none
                dz = (dz @ w.T) * (np.float32(1.0) - a * a)
            w -= self.lr * dw
            b -= self.lr * db
        return params

    def params_from_numpy(self, params: Sequence[tuple[np.ndarray, np.ndarray]]) -> list:
        return [(self.to_device(w), self.to_device(b)) for w, b in params]

    def params_to_numpy(self, params: list[tuple[np.ndarray, np.ndarray]]) -> list:
        return [(w.copy(), b.copy()) for w, b in params]

    def to_device(self, array: np.ndarray) -> np.ndarray:
        """A contiguous float32 copy (updates are in place: never alias the caller's arrays)."""
        return np.array(array, dtype=np.float32, order="C", copy=True)

    def to_numpy(self, array: np.ndarray) -> np.ndarray:
        return np.array(array, copy=True)

    def sync(self, _: Any = None) -> None:
        """NumPy returns when its work is done."""

    def device_kind(self) -> str:
        return "cpu"


def _set_precision(torch: Any, precision: str) -> None:
    """Float32 matmuls at ``precision`` (see the module docstring)."""
    if precision == "default":
        torch.backends.cuda.matmul.allow_tf32 = False  # PyTorch's own defaults
        torch.set_float32_matmul_precision("highest")
        return
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


def make_step(
    variant: str,
    layer_sizes: Sequence[int],
    *,
    lr: float = 0.001,
    dtype: str = "float32",
    backend: str = "cpu",
    precision: str = "highest",
) -> TorchStep | NumpyStep:
    """The peer ``variant`` for this model; :class:`PeerUnavailable` when it cannot run here."""
    reason = unavailable_reason(variant, backend, dtype, precision)
    if reason is not None:
        raise PeerUnavailable(reason)
    if catalog.framework(variant) == "numpy":
        return NumpyStep(layer_sizes, lr)
    return TorchStep(variant, layer_sizes, lr, dtype, backend, precision)


def batch_of(spec: dict[str, Any], images: np.ndarray, labels: np.ndarray):
    """The first ``batch_size`` examples (repeated when there are fewer), as the JAX side does."""
    b = int(spec["batch_size"])
    if b > images.shape[0]:
        reps = -(-b // images.shape[0])
        images, labels = np.concatenate([images] * reps), np.concatenate([labels] * reps)
    return images[:b], labels[:b]


def _graph_count(step: Any) -> int | None:
    if not getattr(step, "compiled", False):
        return None
    with contextlib.suppress(Exception):
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])
    return None


@contextlib.contextmanager
def _cold_compile(step: Any):
    """Dynamo reset and inductor's on-disk caches off, so the first call compiles from scratch."""
    if not getattr(step, "compiled", False):
        yield
        return
    import torch._dynamo
    import torch._inductor.config as inductor_config

    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*force_disable_caches.*")
        with inductor_config.patch(force_disable_caches=True):
            yield


def _first_call(step: Any, call: Any, state: Any) -> tuple[float, Any]:
    """The first call, synced, timed: a cold compile for ``torch-compile``, which is reported
    as unavailable (with the reason) when it fails here."""
    try:
        with _cold_compile(step):
            t0 = timing.clock()
            state = call(state)
            step.sync(state)
            return timing.clock() - t0, state
    except Exception as e:
        if not getattr(step, "compiled", False):
            raise
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise PeerUnavailable(f"torch.compile failed here: {type(e).__name__}: {first}") from e


def measure(
    spec: dict[str, Any], images: np.ndarray, labels: np.ndarray, settings: TimingSettings
) -> dict[str, Any]:
    """Measure one peer configuration; the columns :func:`bench.measure.kernels.measure`
    returns."""
    variant, kernel = spec["variant"], spec["kernel"]
    backend = spec.get("backend", "cpu")
    if kernel not in catalog.kernels_of(variant):
        raise ValueError(f"kernel {kernel!r}: pick {' or '.join(catalog.kernels_of(variant))}")
    if int(spec.get("n_devices", 1)) != 1:
        raise PeerUnavailable(f"{variant} runs on one device, not {spec['n_devices']}")
    sizes = [int(s) for s in spec["layer_sizes"]]
    lr, dtype = float(spec.get("lr", 0.001)), spec.get("dtype", "float32")
    precision = spec.get("precision") or "highest"
    precision = precision if precision in catalog.PRECISIONS else "highest"  # bf16: no knob
    step = make_step(variant, sizes, lr=lr, dtype=dtype, backend=backend, precision=precision)
    x_np, y_np = batch_of(spec, images, labels)
    params = step.params_from_numpy(model.init_params(sizes))
    x, y = step.to_device(x_np), step.to_device(y_np)
    step.sync()
    cuda = isinstance(step, TorchStep) and step.device.type == "cuda"
    if cuda:
        step.torch.cuda.reset_peak_memory_stats(step.device)
    if kernel == "update":
        state, call = params, lambda p: step.update(p, x, y)
    else:
        state, call = None, lambda _: step.predict(params, x)

    first_call_s, state = _first_call(step, call, state)
    graphs_before = _graph_count(step)
    figures, state = timing.steady_state(call, step.sync, state, settings)
    step.sync(state)
    graphs_after = _graph_count(step)
    steps = timing.per_step(figures, 1)
    count = catalog.flops_update if kernel == "update" else catalog.flops_forward
    peak = int(step.torch.cuda.max_memory_allocated(step.device)) if cuda else None
    compiled = getattr(step, "compiled", False)
    return {
        "backend": backend,
        "device_kind": step.device_kind(),
        "trace_s": None,
        "lower_s": None,
        "compile_s": max(first_call_s - steps["step_median_s"], 0.0) if compiled else None,
        "first_call_s": first_call_s,
        **steps,
        "steps_per_call": 1,
        "work_multiplier": 1,
        "flops": float(count(sizes, len(x_np))),
        "xla_flops": None,
        "bytes_accessed": None,
        "peak_memory_bytes": peak,
        "device_peak_bytes_in_use": peak,
        "hlo_ops": None,
        "hlo_fusions": None,
        "launches_per_call": None,
        "recompiles": (
            graphs_after - graphs_before
            if graphs_before is not None and graphs_after is not None
            else None
        ),
        "options": {},
    }
