"""The report: tables (:mod:`.tables`; comparisons, :mod:`.versus`), plots (:mod:`.plots`) and
the performance targets (:mod:`.targets`) of one or more runs, built into Markdown and HTML
(:mod:`.build`, :mod:`.render`). Everything here reads the results table; nothing measures."""

from .build import build_report as build_report
