"""The parent process: the orchestration loop every command shares (:mod:`.loop`), the worker
processes it measures in (:mod:`.pool`), the sweep (:mod:`.sweep`), interleaved A/B
(:mod:`.ab`), the machine's probe and peaks (:mod:`.probe`), local multi-process launches
(:mod:`.launcher`). Nothing here imports JAX (a test holds it to that)."""
