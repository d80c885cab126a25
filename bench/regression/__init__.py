"""Is one run slower than another? Sides read and matched (:mod:`.sides`), verdicts by the
statistics of :mod:`bench.stats` (:mod:`.verdicts`), their renderings (:mod:`.render`), and the
false-alarm and detection rates of ``bench validate`` (:mod:`.validation`)."""
