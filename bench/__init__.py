"""bench: time the mnist_kernels variants and report on the results.

``python -m bench run`` measures; ``bench.load(run_dir)`` returns the results as a pandas
DataFrame (schema in :mod:`bench.results.schema` and the README). The packages, by layer:
``commands`` (one module per subcommand) → ``runner`` (the parent process: the orchestration
loop, worker processes) → ``measure`` (the worker process: JAX, timing) and, shared by both,
``protocol``, ``selection``, ``catalog`` and ``results`` (schema, run directory); then
``regression`` (comparisons) and ``report`` (tables, plots), which only read results.
"""

from .results.rundir import RunDir as RunDir
from .results.rundir import load as load
from .results.rundir import load_metadata as load_metadata
from .results.schema import COLUMNS as COLUMNS
from .results.schema import SCHEMA_VERSION as SCHEMA_VERSION
from .results.schema import SchemaError as SchemaError
