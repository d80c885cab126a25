"""What the CI workflows do beyond running nox (``python -m bench ci``): the sticky pull-request
comment (:mod:`.comment`, over the small GitHub REST client in :mod:`.github`) and the push of a
run to the results-history data branch under concurrent pushers (:mod:`.datapush`).

Standard library only (urllib, subprocess, git): the commenting workflow runs it with the
default branch's code and the PR's results as data, and needs nothing measured.
"""
