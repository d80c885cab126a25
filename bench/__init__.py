"""bench: time the mnist_kernels variants and report on the results.

``python -m bench run`` measures; ``bench.load(run_dir)`` returns the results as a pandas
DataFrame (schema in :mod:`bench.schema` and the README).
"""

from .schema import COLUMNS as COLUMNS
from .schema import SCHEMA_VERSION as SCHEMA_VERSION
from .schema import SchemaError as SchemaError
from .schema import load as load
from .schema import load_metadata as load_metadata
