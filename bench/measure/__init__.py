"""The worker process: it imports JAX and measures. :mod:`.worker` answers the parent's
requests; :mod:`.kernels`, :mod:`.epoch` and :mod:`.peers` measure a configuration, with the
timing core of :mod:`.timing`; :mod:`.probe` and :mod:`.peaks` describe the machine;
:mod:`.distributed` is one process of a ``jax.distributed`` run."""
