"""bfloat16 means bfloat16 in every matmul, forward and backward, on both sides of a
comparison: read in the optimized HLO of every variant's compiled update and predict (what
the benchmark compiles and times), and in the matmuls PyTorch's bfloat16 step dispatches."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bench.measure import hlo
from mnist_kernels import catalog, model, variants
from mnist_kernels.matmul import Compute
from tests.helpers import require_torch

SIZES = [784, 64, 32, 10]
BATCH = 32


def compiled_dots(name: str, dtype: str, kernel: str, **kw) -> list[dict]:
    n = 2 if catalog.is_multi_device(name) else 1
    opts = {"steps": 2} if name == "scan" else {}
    k = variants.get(name, devices=n, dtype=dtype, **opts, **kw)
    rng = np.random.RandomState(0)
    x = rng.rand(BATCH, 784).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.randint(0, 10, BATCH)]
    if name == "scan":
        x, y = x.reshape(2, BATCH // 2, 784), y.reshape(2, BATCH // 2, 10)
    params, batch = k.place(model.init_params(SIZES), (x, y))
    if kernel == "update":
        text = k.update_fn.lower(params, batch).compile().as_text()
    else:
        inputs = k.place_inputs(x if name != "scan" else x.reshape(BATCH, 784))
        text = k.predict_fn.lower(params, inputs).compile().as_text()
    return hlo.dots(text)


@pytest.mark.parametrize("kernel", ["update", "predict"])
@pytest.mark.parametrize("name", variants.names())
def test_every_matmul_of_a_bfloat16_kernel_takes_bfloat16_operands(name, kernel):
    found = compiled_dots(name, "bfloat16", kernel)
    layers = len(SIZES) - 1
    # predict: a dot per layer; update: also each layer's weight gradient and the input
    # gradient of every layer but the first (vmap's per-example weight gradients are products,
    # not dots)
    expected = layers if kernel == "predict" else 3 * layers - 1
    if name == "vmap" and kernel == "update":
        expected = 2 * layers - 1
    assert len(found) == expected, found
    f32 = [d for d in found if not all(d["low"])]
    assert not f32, f"{name} {kernel}: dots on float32 values: {f32}"
    assert all(d["out"] == "f32" for d in found)  # float32 accumulation


@pytest.mark.parametrize("layout", ["tuned", "stock"])
def test_the_check_sees_float32_matmuls(layout):
    """A float32 kernel has no bfloat16 operand; nor does the backward of the cast-outside-the-
    product form (the forward's bfloat16 dot differentiated: float32 cotangents)."""
    assert not any(any(d["low"]) for d in compiled_dots("jit", "float32", "update", layout=layout))

    def cast_outside(params, batch):
        def affine(x, w, b):
            xb, wb = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
            return jnp.dot(xb, wb, preferred_element_type=jnp.float32) + b[None, :]

        def loss(p):
            a = batch[0]
            for w, b in p[:-1]:
                a = jnp.tanh(affine(a, w, b))
            z = affine(a, *p[-1])
            return -jnp.mean(jnp.sum(jax.nn.log_softmax(z) * batch[1], -1))

        return jax.grad(loss)(params)

    x = np.ones((BATCH, 784), np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(BATCH) % 10]
    text = jax.jit(cast_outside).lower(model.init_params(SIZES), (x, y)).compile().as_text()
    found = hlo.dots(text)
    assert sum(all(d["low"]) for d in found) == len(SIZES) - 1  # the forward dots only
    assert sum(not all(d["low"]) for d in found) == 2 * (len(SIZES) - 1) - 1


def widened(found: list[dict]) -> int:
    """Dots whose operands XLA stores as float32 (bfloat16 values widened for the dot)."""
    return sum("f32" in d["operands"] for d in found)


@pytest.mark.parametrize("name", ["jit", "vmap", "scan", "ensemble"])
def test_the_packed_layout_runs_every_bfloat16_dot_on_bfloat16_operands(name):
    """What ``packed`` is for: XLA:CPU widens a bfloat16 dot with a transposed operand to a
    float32 dot of the bfloat16 values; the packed layout's written-out transposes keep every
    dot of the update, forward and backward, on operands stored as bfloat16 (``ensemble``'s
    batched dots: all but the two input gradients). The tuned layout widens more: the check is
    not vacuous."""
    packed = compiled_dots(name, "bfloat16", "update", layout="packed")
    tuned = compiled_dots(name, "bfloat16", "update", layout="tuned")
    layers = len(SIZES) - 1
    assert len(packed) == (2 * layers - 1 if name == "vmap" else 3 * layers - 1), packed
    assert widened(packed) == (2 if name == "ensemble" else 0), packed
    assert widened(tuned) > widened(packed), tuned


def test_a_bfloat16_step_is_close_to_float32s_and_its_layouts_agree():
    """One bfloat16 SGD step: the tuned and the stock layout give the same values; the step is
    close to float32's and not equal to it (the matmuls really ran on bfloat16)."""
    rng = np.random.RandomState(3)
    x = rng.rand(BATCH, 784).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.randint(0, 10, BATCH)]
    params = model.init_params(SIZES)
    got = jax.jit(functools.partial(model.update, lr=0.1, compute=Compute("bfloat16")))(
        params, (x, y)
    )
    stock = jax.jit(
        functools.partial(model.update, lr=0.1, compute=Compute("bfloat16", layout="stock"))
    )(params, (x, y))
    f32 = jax.jit(functools.partial(model.update, lr=0.1))(params, (x, y))
    for (w, b), (ws, bs), (wf, _bf), (w0, _) in zip(got, stock, f32, params, strict=True):
        np.testing.assert_allclose(w, ws, rtol=0, atol=1e-6)  # tuned = stock
        np.testing.assert_allclose(b, bs, rtol=0, atol=1e-6)
        step, step_f32 = np.asarray(w) - w0, np.asarray(wf) - w0
        # bfloat16 arithmetic: close to float32's step, but not equal to it
        assert 0 < np.abs(step - step_f32).max() < 0.05 * np.abs(step_f32).max()


def torch_matmuls(variant: str) -> list[list]:
    """The operand dtypes of every matmul one bfloat16 update of the PyTorch peer runs."""
    torch = require_torch()
    from torch.utils._python_dispatch import TorchDispatchMode

    from bench.measure import peers

    aten = torch.ops.aten
    matmuls = {aten.mm, aten.addmm, aten.bmm, aten.matmul, aten.linear}
    step = peers.make_step(variant, SIZES, dtype="bfloat16")
    params = step.params_from_numpy(model.init_params(SIZES))
    x = step.to_device(np.random.RandomState(0).rand(BATCH, 784))
    y = step.to_device(np.eye(10)[np.arange(BATCH) % 10])
    seen: list[list] = []
    if variant == "torch-eager":

        class Record(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if func.overloadpacket in matmuls:
                    seen.append([a.dtype for a in args if isinstance(a, torch.Tensor)])
                return func(*args, **(kwargs or {}))

        with Record():
            step.update(params, x, y)
        return seen
    # torch.compile: the forward and backward graphs it compiles, read before inductor lowers
    from torch._functorch.aot_autograd import aot_module_simplified

    def record(graph, inputs):
        for node in graph.graph.nodes:
            if (
                node.op == "call_function"
                and getattr(node.target, "overloadpacket", None) in matmuls
            ):
                seen.append([a.meta["val"].dtype for a in node.args if hasattr(a, "meta")])
        return graph.forward

    def backend(gm, example_inputs):
        return aot_module_simplified(gm, example_inputs, fw_compiler=record, bw_compiler=record)

    step._update = torch.compile(step._step, fullgraph=True, dynamic=False, backend=backend)
    step.update(params, x, y)
    return seen


@pytest.mark.parametrize("variant", ["torch-eager", "torch-compile"])
def test_the_pytorch_bfloat16_step_does_the_same_matmuls(variant):
    seen = torch_matmuls(variant)
    import torch

    assert len(seen) == 3 * (len(SIZES) - 1) - 1  # as many as JAX's
    assert all(dtypes == [torch.bfloat16, torch.bfloat16] for dtypes in seen), seen


def test_numpy_has_no_bfloat16():
    from bench.measure import peers

    assert peers.unavailable_reason("numpy", "cpu", "bfloat16") == "NumPy has no bfloat16 dtype"
