"""Test setup: 4 fake CPU devices before JAX starts, JAX warnings as errors (pyproject)."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"

import jax

jax.config.update("jax_num_cpu_devices", 4)
jax.config.update("jax_numpy_rank_promotion", "raise")

#: the test modules CI runs on its second Python with the newest JAX (``-m compat``): every
#: variant against the model, the arithmetic each compiles to, the worker's kernels and timing,
#: the sweep end to end, compare, the report, the doctor and the JAX-version module
COMPAT_MODULES = (
    "tests/mnist_kernels/test_compat.py",
    "tests/mnist_kernels/test_model.py",
    "tests/mnist_kernels/test_matmul.py",
    "tests/mnist_kernels/test_variants.py",
    "tests/bench/measure/test_arithmetic.py",
    "tests/bench/measure/test_kernels.py",
    "tests/bench/measure/test_timing.py",
    "tests/bench/measure/test_cached.py",
    "tests/bench/test_compile_options.py",
    "tests/bench/commands/test_run.py",
    "tests/bench/commands/test_compare.py",
    "tests/bench/commands/test_doctor.py",
    "tests/bench/report/test_report.py",
    "tests/bench/report/test_examples.py",
)


def pytest_collection_modifyitems(config, items):
    import pytest

    root = config.rootpath
    for item in items:
        if str(item.path.relative_to(root)) in COMPAT_MODULES:
            item.add_marker(pytest.mark.compat)
