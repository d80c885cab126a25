"""The results format: the schema (:mod:`.schema`), the run directory that reads and writes it
(:mod:`.rundir`), rows and their derived columns (:mod:`.rows`, :mod:`.samples`), the machine's
metadata (:mod:`.machine`), and the two other files a comparison reads (:mod:`.baseline`,
:mod:`.pytest_benchmark`). No JAX."""
