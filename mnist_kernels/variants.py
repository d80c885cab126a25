"""The kernel variants that get timed: the one model under different transformations.

Each variant wraps :func:`mnist_kernels.model.predict`, :func:`~mnist_kernels.model.loss` and
:func:`~mnist_kernels.model.update`; they differ only in transformation (``jit``, ``vmap``,
``pmap``, ``shard_map``, ``lax.scan``) and placement (one device, replicated or sharded
``NamedSharding``), and they all give the same numbers.

>>> from mnist_kernels import variants, init_params
>>> kernel = variants.get("sharded", devices=4)
>>> params, batch = kernel.place(init_params([784, 10]), (images, labels))
>>> params = kernel.update(params, batch)        # old params are donated
>>> kernel.to_host(params)                       # list of (w, b) NumPy arrays

``dtype="bfloat16"`` keeps parameters (and the SGD update) in float32 and runs the matmuls
with bfloat16 operands, accumulating in float32.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from . import catalog, compat, model, placement
from .catalog import is_multi_device as is_multi_device
from .matmul import Compute
from .model import Batch, Params

_REGISTRY: dict[str, Callable[..., Kernel]] = {}


@dataclasses.dataclass
class Kernel:
    """One variant, built for a set of devices and an arithmetic.

    Attributes:
      name: the variant's registry name.
      devices: the devices it runs on.
      compute: how its matmuls compute (dtype, precision, weight-gradient layout).
      lr: SGD learning rate.
      place: ``(params, batch) -> (params, batch)`` put where the variant wants them. The only
        place host-to-device copies happen.
      update: ``(params, batch) -> params``; one SGD step (``steps_per_call`` for ``scan``),
        donating the old params where the backend supports donation.
      predict: ``(params, inputs) -> (B, 10)`` log-probabilities (``(K, B, 10)`` for ``ensemble``).
      to_host: placed params -> list of ``(w, b)`` NumPy arrays in the model's layout.
      update_fn: the ``jax.jit`` (or ``jax.pmap``) object behind ``update``, for AOT
        ``trace``/``lower``/``compile`` and ``cost_analysis``.
      predict_fn: the same for ``predict``; it takes the inputs as ``place`` left them.
      steps_per_call: SGD steps one ``update`` call makes (``scan``: S).
      work_multiplier: independent models per call (``ensemble``: K).
      options: variant-specific settings (mesh shape, S, K...), recorded in results.
    """

    name: str
    devices: list[Any]
    compute: Compute
    lr: float | tuple[float, ...]
    place: Callable[[Params, Batch], tuple[Any, Any]]
    update: Callable[[Any, Any], Any]
    predict: Callable[[Any, Any], jax.Array]
    to_host: Callable[[Any], list[tuple[np.ndarray, np.ndarray]]]
    update_fn: Any
    predict_fn: Any
    steps_per_call: int = 1
    work_multiplier: int = 1
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    @property
    def dtype(self) -> str:
        return self.compute.dtype

    def describe(self) -> dict[str, Any]:
        """What a results row needs to know about this kernel."""
        return {
            "variant": self.name,
            "n_devices": self.n_devices,
            "dtype": self.dtype,
            "precision": self.compute.precision,
            "grad_layout": self.compute.layout,
            "backend": self.devices[0].platform,
            "device_kind": self.devices[0].device_kind,
            "steps_per_call": self.steps_per_call,
            "work_multiplier": self.work_multiplier,
            "options": dict(self.options),
        }

    def place_inputs(self, inputs: Any) -> Any:
        """Place predict inputs ``(B, 784)`` the way :attr:`predict_fn` wants them."""
        n_classes = model.NUM_CLASSES
        dummy = np.zeros((np.shape(inputs)[0], n_classes), np.float32)
        if self.name == "scan":  # predict is the plain jit one
            return jax.device_put(inputs, self.devices[0])
        _, (placed, _) = self.place(None, (inputs, dummy))
        return placed


#: the XLA compile options every ``jax.jit`` of the variant being built gets (``get``'s
#: ``compiler_options``): per compile, for its ahead-of-time compile and its calls alike
_COMPILER_OPTIONS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "compiler_options", default=None
)
#: variants whose functions are not ``jax.jit``: they take no per-compile options
_NO_COMPILER_OPTIONS = frozenset({"pmap"})


def _with_options(fun: Callable[..., Any], **kwargs: Any) -> Any:
    """``jax.jit`` with the compile options of the variant being built."""
    return jax.jit(fun, compiler_options=_COMPILER_OPTIONS.get(), **kwargs)


@contextlib.contextmanager
def _compiling_with(options: dict[str, Any] | None):
    token = _COMPILER_OPTIONS.set(dict(options) if options else None)
    try:
        yield
    finally:
        _COMPILER_OPTIONS.reset(token)


def register(name: str) -> Callable[[Callable[..., Kernel]], Callable[..., Kernel]]:
    """Register the builder of the variant ``name``, which :mod:`mnist_kernels.catalog` lists."""
    catalog.variant(name)  # a builder for a variant the catalogue does not describe: refused

    def deco(builder: Callable[..., Kernel]) -> Callable[..., Kernel]:
        _REGISTRY[name] = builder
        return builder

    return deco


def names() -> list[str]:
    """The registered variant names, in the catalogue's order."""
    return [n for n in catalog.VARIANTS if n in _REGISTRY]


def get(
    name: str,
    *,
    lr: float | Sequence[float] = 0.001,
    devices: int | Sequence[Any] | None = None,
    dtype: str = "float32",
    precision: str = "highest",
    layout: str | None = None,
    compiler_options: dict[str, Any] | None = None,
    **options: Any,
) -> Kernel:
    """Build the kernel ``name``.

    Args:
      name: one of :func:`names`.
      lr: SGD learning rate (``ensemble``: one per member).
      devices: ``None`` for all local devices of the default backend (multi-device variants)
        or one device (the rest); an int count; or a list of devices.
      dtype: ``"float32"`` or ``"bfloat16"`` (float32 params, every matmul on bfloat16
        operands).
      precision: float32 matmuls: ``"highest"``, ``"tf32"`` or ``"default"``.
      layout: the weight gradient's, ``"tuned"`` or ``"stock"`` (default: the variant's first,
        ``tuned``; ``notebook`` runs ``stock`` only).
      compiler_options: XLA options every compile of the kernel's functions gets (``jax.jit``'s
        ``compiler_options``, like ``{"xla_backend_optimization_level": 0}``); not for
        ``pmap``, which has none.
      **options: variant settings: ``steps`` (scan, default 8), ``members`` (ensemble,
        default 4), ``model_parallel`` (sharded_tp, default 2 when the device count is even).

    Raises:
      ValueError: unknown name, dtype, precision or layout, a layout the variant does not run,
        or more devices than exist.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown variant {name!r}; known variants: {', '.join(names())}")
    info = catalog.variant(name)
    layout = layout or info.layouts[0]
    if layout not in info.layouts:
        raise ValueError(
            f"variant {name!r} runs the {' or '.join(info.layouts)} layout, not {layout!r}"
        )
    compute = Compute(dtype, precision, layout)
    options = info.check_options(options)
    devs = _resolve_devices(name, devices)
    if not is_multi_device(name) and len(devs) != 1:
        multi = sorted(v for v in catalog.VARIANTS if is_multi_device(v))
        raise ValueError(
            f"variant {name!r} runs on one device, got {len(devs)}; pass devices=1 or use one "
            f"of the multi-device variants {multi}"
        )
    if compiler_options and name in _NO_COMPILER_OPTIONS:
        raise ValueError(f"{name} takes no per-compile compiler options (jax.pmap has none)")
    with _compiling_with(compiler_options):
        return _REGISTRY[name](devices=devs, lr=lr, compute=compute, **options)


def _resolve_devices(name: str, devices: int | Sequence[Any] | None) -> list[Any]:
    available = jax.local_devices()
    if devices is None:
        return list(available) if is_multi_device(name) else [available[0]]
    if isinstance(devices, int):
        if devices < 1 or devices > len(available):
            raise ValueError(
                f"{devices} devices asked for but {len(available)} "
                f"{available[0].platform} device(s) exist; ask for at most {len(available)}, or "
                "on CPU start with XLA_FLAGS=--xla_force_host_platform_device_count=N "
                "(bench does this itself)"
            )
        return list(available[:devices])
    devs = list(devices)
    if not devs:
        raise ValueError("devices is an empty list; pass None, a count or a list of devices")
    return devs


def _check_params(params: Params, batch: Batch) -> None:
    if params is None:
        return
    inputs, targets = batch
    sizes = model.layer_sizes_of(params)
    if np.shape(inputs)[-1] != sizes[0]:
        raise ValueError(
            f"params take inputs of width {sizes[0]} (layer_sizes {sizes}) but the batch's "
            f"inputs have shape {tuple(np.shape(inputs))}; flatten images to (B, {sizes[0]})"
        )
    for i, (w, b) in enumerate(params):
        if np.ndim(w) != 2 or np.shape(b) != (np.shape(w)[1],):
            raise ValueError(
                f"layer {i}: w {np.shape(w)} and b {np.shape(b)} do not fit; expected w (m, n) "
                "and b (n,)"
            )
    if np.ndim(targets) == np.ndim(inputs) and np.shape(targets)[-1] != sizes[-1]:
        raise ValueError(
            f"targets have shape {tuple(np.shape(targets))} but params output {sizes[-1]} "
            f"classes (layer_sizes {sizes})"
        )
    if np.shape(inputs)[:-1] != np.shape(targets)[: np.ndim(inputs) - 1]:
        raise ValueError(
            f"inputs {tuple(np.shape(inputs))} and targets {tuple(np.shape(targets))} disagree "
            "on the batch size"
        )


def _check_divisible(batch_size: int, n: int, what: str = "devices") -> None:
    if batch_size % n:
        lower = batch_size - batch_size % n
        raise ValueError(
            f"batch_size {batch_size} is not divisible by {n} {what}; pick a multiple of {n} "
            f"(for example {lower or n} or {lower + n}) or use fewer devices"
        )


def _compiled(
    name: str,
    devices: list[Any],
    compute: Compute,
    lr: Any,
    place: Callable[[Params, Batch], tuple[Any, Any]],
    update_fn: Any,
    predict_fn: Any,
    **fields: Any,
) -> Kernel:
    """A :class:`Kernel` whose ``update`` and ``predict`` are the compiled functions themselves
    (``fields`` overrides any attribute, e.g. a ``predict`` that reshapes)."""
    attrs = {"update": update_fn, "predict": predict_fn, "to_host": placement.to_host, **fields}
    return Kernel(
        name, devices, compute, lr, place, update_fn=update_fn, predict_fn=predict_fn, **attrs
    )


def _on_one_device(dev: Any) -> Callable[[Params, Batch], tuple[Any, Any]]:
    """``place`` for a one-device variant: params (if given) and batch put on ``dev``."""

    def place(params: Params, batch: Batch) -> tuple[Any, Any]:
        _check_params(params, batch)
        placed = None if params is None else jax.device_put(placement.host_params(params), dev)
        return placed, jax.device_put(batch, dev)

    return place


# --------------------------------------------------------------------------- single device


@register("notebook")
def _notebook(*, devices: list[Any], lr: float, compute: Compute) -> Kernel:
    """The seed notebook's step: the model's update under ``jax.jit`` with stock ``jax.grad``,
    no donation, and the batch handed over as host NumPy arrays at every call, as its data
    stream does (``place`` leaves it on the host: each call copies it to the device)."""
    dev = devices[0]
    update_fn = _with_options(functools.partial(model.update, lr=lr, compute=compute))
    predict_fn = _with_options(functools.partial(model.predict, compute=compute))

    def place(params: Params, batch: Batch) -> tuple[Any, Any]:
        _check_params(params, batch)
        placed = None if params is None else jax.device_put(placement.host_params(params), dev)
        return placed, tuple(np.asarray(a) for a in batch)

    return _compiled("notebook", devices, compute, lr, place, update_fn, predict_fn)


@register("jit")
def _jit(*, devices: list[Any], lr: float, compute: Compute) -> Kernel:
    cd = compute
    update_fn = _with_options(functools.partial(model.update, lr=lr, compute=cd), donate_argnums=0)
    predict_fn = _with_options(functools.partial(model.predict, compute=cd))
    return _compiled("jit", devices, compute, lr, _on_one_device(devices[0]), update_fn, predict_fn)


def per_example_grads(params: Params, batch: Batch, compute: Compute | None = None) -> Params:
    """Gradients of the loss for each example: leaves shaped ``(B, *param.shape)``.

    ``vmap`` of the single-example gradient; what differential privacy (per-example clipping)
    and influence functions need.
    """

    def one(p: Params, x: jax.Array, y: jax.Array) -> Params:
        return jax.grad(model.loss)(p, (x, y), compute)

    inputs, targets = batch
    return jax.vmap(one, in_axes=(None, 0, 0))(params, inputs, targets)


@register("vmap")
def _vmap(*, devices: list[Any], lr: float, compute: Compute) -> Kernel:
    cd = compute

    def step(params: Params, batch: Batch) -> Params:
        grads = jax.tree.map(lambda g: jnp.mean(g, axis=0), per_example_grads(params, batch, cd))
        return model.sgd(params, grads, lr)

    def batched_predict(params: Params, inputs: jax.Array) -> jax.Array:
        return jax.vmap(functools.partial(model.predict, compute=cd), in_axes=(None, 0))(
            params, inputs
        )

    update_fn = _with_options(step, donate_argnums=0)
    predict_fn = _with_options(batched_predict)
    return _compiled(
        "vmap", devices, compute, lr, _on_one_device(devices[0]), update_fn, predict_fn
    )


# --------------------------------------------------------------------------- data parallel


@register("pmap")
def _pmap(*, devices: list[Any], lr: float, compute: Compute) -> Kernel:
    cd = compute
    n = len(devices)

    def step(params: Params, batch: Batch) -> Params:
        grads = jax.grad(model.loss)(params, batch, cd)
        grads = lax.pmean(grads, axis_name="batch")
        return model.sgd(params, grads, lr)

    update_fn = jax.pmap(step, axis_name="batch", devices=devices, donate_argnums=0)
    predict_fn = jax.pmap(
        functools.partial(model.predict, compute=cd), axis_name="batch", devices=devices
    )

    # pmap takes arrays with a leading device axis; shard that axis over the devices so the
    # call finds every slice where it runs.
    leading = NamedSharding(jax.sharding.Mesh(np.array(devices), ("batch",)), P("batch"))

    def place(params: Params, batch: Batch) -> tuple[Any, Any]:
        _check_params(params, batch)
        _check_divisible(np.shape(batch[0])[0], n)
        split = jax.tree.map(lambda a: np.reshape(a, (n, -1, *np.shape(a)[1:])), batch)
        placed_batch = placement.put(split, leading)
        if params is None:
            return None, placed_batch
        stacked = [(np.stack([w] * n), np.stack([b] * n)) for w, b in placement.host_params(params)]
        return placement.put(stacked, leading), placed_batch

    def predict(params: Any, inputs: Any) -> jax.Array:
        out = predict_fn(params, inputs)
        return out.reshape(-1, out.shape[-1])

    def to_host(params: Any) -> list[tuple[np.ndarray, np.ndarray]]:
        if any(placement.spans_processes(a) for a in jax.tree.leaves(params)):
            # every device holds a replica: this process's first one
            first = [
                (w.addressable_shards[0].data, b.addressable_shards[0].data) for w, b in params
            ]
            return [(np.asarray(w)[0], np.asarray(b)[0]) for w, b in first]
        return [(np.asarray(w[0]), np.asarray(b[0])) for w, b in jax.device_get(params)]

    return _compiled(
        "pmap", devices, compute, lr, place, update_fn, predict_fn, predict=predict, to_host=to_host
    )


def _batch_mesh(devices: list[Any]) -> jax.sharding.Mesh:
    return compat.make_mesh((len(devices),), ("batch",), devices=devices)


def _data_parallel(
    name: str, mesh: jax.sharding.Mesh, compute: Compute, lr: Any, update_fn: Any, predict_fn: Any
) -> Kernel:
    """A data-parallel kernel over ``mesh`` (one axis, ``batch``): the batch split over its
    devices, the params replicated on every one."""
    devices = list(mesh.devices.flat)

    def place(params: Params, batch: Batch) -> tuple[Any, Any]:
        _check_params(params, batch)
        _check_divisible(np.shape(batch[0])[0], len(devices))
        placed_batch = placement.put(batch, NamedSharding(mesh, P("batch")))
        if params is None:
            return None, placed_batch
        return placement.put(placement.host_params(params), NamedSharding(mesh, P())), placed_batch

    options = {"mesh": {"batch": len(devices)}}
    return _compiled(name, devices, compute, lr, place, update_fn, predict_fn, options=options)


@register("sharded")
def _sharded(*, devices: list[Any], lr: float, compute: Compute) -> Kernel:
    cd = compute
    mesh = _batch_mesh(devices)
    replicated = NamedSharding(mesh, P())
    update_fn = _with_options(
        functools.partial(model.update, lr=lr, compute=cd),
        donate_argnums=0,
        out_shardings=replicated,
    )
    predict_fn = _with_options(functools.partial(model.predict, compute=cd))
    return _data_parallel("sharded", mesh, compute, lr, update_fn, predict_fn)


@register("shard_map")
def _shard_map(*, devices: list[Any], lr: float, compute: Compute) -> Kernel:
    cd = compute
    mesh = _batch_mesh(devices)

    def local_loss(params: Params, batch: Batch) -> jax.Array:
        # With check_vma=True the gradient of a replicated parameter is already summed over
        # the devices, so average the *loss* and differentiate that: pmean(grad) would be
        # n times too large.
        return lax.pmean(model.loss(params, batch, cd), axis_name="batch")

    def local_step(params: Params, batch: Batch) -> Params:
        return model.sgd(params, jax.grad(local_loss)(params, batch), lr)

    step = jax.shard_map(local_step, mesh=mesh, in_specs=(P(), P("batch")), out_specs=P())
    local_predict = jax.shard_map(
        functools.partial(model.predict, compute=cd),
        mesh=mesh,
        in_specs=(P(), P("batch")),
        out_specs=P("batch"),
    )
    update_fn = _with_options(step, donate_argnums=0)
    predict_fn = _with_options(local_predict)
    return _data_parallel("shard_map", mesh, compute, lr, update_fn, predict_fn)


# --------------------------------------------------------------------------- fused steps


@register("scan")
def _scan(*, devices: list[Any], lr: float, compute: Compute, steps: int = 8) -> Kernel:
    cd = compute
    dev = devices[0]

    def multi_step(params: Params, batches: Batch) -> Params:
        def body(p: Params, batch: Batch) -> tuple[Params, None]:
            return model.update(p, batch, lr, cd), None

        return lax.scan(body, params, batches)[0]

    update_fn = _with_options(multi_step, donate_argnums=0)
    predict_fn = _with_options(functools.partial(model.predict, compute=cd))

    def place(params: Params, batches: Batch) -> tuple[Any, Any]:
        inputs, targets = batches
        if np.ndim(inputs) != 3 or np.shape(inputs)[0] != steps:
            raise ValueError(
                f"scan takes a stack of {steps} batches shaped ({steps}, B, 784); got inputs of "
                f"shape {tuple(np.shape(inputs))}. Reshape with x.reshape({steps}, -1, 784) or "
                "build the kernel with steps=S"
            )
        if params is not None:
            _check_params(params, (inputs[0], targets[0]))
        placed = None if params is None else jax.device_put(placement.host_params(params), dev)
        return placed, jax.device_put(batches, dev)

    options = {"steps": steps}
    return _compiled(
        "scan",
        devices,
        compute,
        lr,
        place,
        update_fn,
        predict_fn,
        steps_per_call=steps,
        options=options,
    )


# --------------------------------------------------------------------------- beyond the basics


def _tp_specs(layer_sizes: list[int]) -> list[tuple[P, P]]:
    """Megatron-style layout: layers alternate column- and row-parallel over "model".

    A column-parallel layer shards its output units (w ``P(None, "model")``, b ``P("model")``);
    the next, row-parallel layer shards its input units (w ``P("model", None)``), and its
    partial sums are all-reduced. The output layer is column-parallel only if its width
    divides, else replicated.
    """
    specs = []
    n_layers = len(layer_sizes) - 1
    for i in range(n_layers):
        last = i == n_layers - 1
        if i % 2 == 0 and not last:
            specs.append((P(None, "model"), P("model")))
        elif i % 2 == 1:
            specs.append((P("model", None), P()))
        else:
            specs.append((P(), P()))
    return specs


@register("sharded_tp")
def _sharded_tp(
    *, devices: list[Any], lr: float, compute: Compute, model_parallel: int | None = None
) -> Kernel:
    cd = compute
    n = len(devices)
    mp = catalog.model_parallel(n, model_parallel)
    if mp < 1 or n % mp:
        raise ValueError(
            f"model_parallel {mp} must divide the device count {n}; pick one of "
            f"{[d for d in range(1, n + 1) if n % d == 0]}"
        )
    # Auto axes: the compiler (GSPMD) places the all-reduces of the row-parallel matmuls;
    # Explicit axes would make every contraction over "model" spell out its output sharding.
    mesh = compat.make_mesh(
        (n // mp, mp), ("batch", "model"), (AxisType.Auto, AxisType.Auto), devices=devices
    )

    def shardings(sizes: list[int]) -> list[tuple[NamedSharding, NamedSharding]]:
        for hidden in sizes[1:-1]:
            if hidden % mp:
                raise ValueError(
                    f"hidden width {hidden} (layer_sizes {sizes}) is not divisible by "
                    f"model_parallel {mp}; use widths that are multiples of {mp}"
                )
        return [(NamedSharding(mesh, w), NamedSharding(mesh, b)) for w, b in _tp_specs(sizes)]

    # Output shardings follow the placed params: the update is elementwise on each leaf.
    update_fn = _with_options(functools.partial(model.update, lr=lr, compute=cd), donate_argnums=0)
    predict_fn = _with_options(functools.partial(model.predict, compute=cd))

    def place(params: Params, batch: Batch) -> tuple[Any, Any]:
        _check_params(params, batch)
        _check_divisible(np.shape(batch[0])[0], n // mp, "data-parallel groups")
        placed_batch = placement.put(batch, NamedSharding(mesh, P("batch")))
        if params is None:
            return None, placed_batch
        host = placement.host_params(params)
        return placement.put(host, shardings(model.layer_sizes_of(host))), placed_batch

    options = {"mesh": {"batch": n // mp, "model": mp}}
    return _compiled(
        "sharded_tp", devices, compute, lr, place, update_fn, predict_fn, options=options
    )


@register("ensemble")
def _ensemble(
    *, devices: list[Any], lr: float | Sequence[float], compute: Compute, members: int | None = None
) -> Kernel:
    cd = compute
    dev = devices[0]
    lrs = tuple(float(x) for x in lr) if isinstance(lr, Sequence) else None
    k = len(lrs) if lrs is not None else (members or 4)
    if members is not None and lrs is not None and members != len(lrs):
        raise ValueError(f"members {members} but {len(lrs)} learning rates; give one per member")
    lr_vec = np.asarray(lrs if lrs is not None else [float(lr)] * k, np.float32)

    def one(params: Params, batch: Batch, member_lr: jax.Array) -> Params:
        return model.update(params, batch, member_lr, cd)

    def step(params: Params, batch: Batch) -> Params:
        return jax.vmap(one, in_axes=(0, None, 0))(params, batch, jnp.asarray(lr_vec))

    update_fn = _with_options(step, donate_argnums=0)
    predict_fn = _with_options(
        jax.vmap(functools.partial(model.predict, compute=cd), in_axes=(0, None))
    )

    def place(params: Params, batch: Batch) -> tuple[Any, Any]:
        placed_batch = jax.device_put(batch, dev)
        if params is None:
            return None, placed_batch
        host = placement.host_params(params)
        if host[0][0].ndim == 2:  # one model: every member starts from it
            _check_params(host, batch)
            host = [(np.stack([w] * k), np.stack([b] * k)) for w, b in host]
        elif host[0][0].shape[0] != k:
            raise ValueError(f"stacked params have {host[0][0].shape[0]} members, kernel has {k}")
        return jax.device_put(host, dev), placed_batch

    lrs = tuple(float(x) for x in lr_vec)
    extra = {"work_multiplier": k, "options": {"members": k}}
    return _compiled("ensemble", devices, compute, lrs, place, update_fn, predict_fn, **extra)
