"""The results history (``python -m bench history``): runs filed by machine and commit
(:mod:`.store`), step detection over each configuration's series (:mod:`.steps`), the changes
and the CI check (:mod:`.changes`), and the trend page (:mod:`.page`)."""
