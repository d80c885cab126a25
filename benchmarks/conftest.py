"""pytest-benchmark suite for the kernel variants; not part of the default test run.

Run it explicitly (``testpaths`` in pyproject.toml only names ``tests/``)::

    pytest benchmarks/                                    # table in the terminal
    pytest benchmarks/ --benchmark-autosave               # saves .benchmarks/<machine>/0001_*.json
    pytest benchmarks/ --benchmark-compare=0001 --benchmark-compare-fail=median:10%
    pytest-benchmark compare 0001 0002                    # pytest-benchmark's own comparison
    python -m bench compare OLD.json NEW.json             # bench's statistics on the same files

Add ``--benchmark-save-data`` to keep every round's time in the JSON: ``bench compare`` then
applies its significance test instead of the ratio alone.

Each benchmark is ``benchmark.pedantic`` over a fixed number of rounds (50, or
``--benchmark-min-rounds`` when larger), after the kernel has been compiled and warmed up, so
the suite takes well under two minutes on a laptop CPU and ``--benchmark-max-time`` does not
apply. Like ``tests/``, the CPU backend gets 4 fake devices so that the multi-device variants
run anywhere; this has to happen before JAX creates its backends, hence here.
"""

import jax

jax.config.update("jax_num_cpu_devices", 4)
