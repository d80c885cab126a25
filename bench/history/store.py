"""The results history: runs filed by machine and commit in a plain directory (``bench history``).

A store is a directory that can live on its own git branch (as asv's ``results/`` and
github-action-benchmark's ``gh-pages`` data do)::

    STORE/
      history.json                       {"kind": "mnist-kernels-bench history", "history_version": 1}
      <machine>/
        <commit, 12 hex digits>/
          <run_id>.json                  one run: a header, then one configuration a line

``<machine>`` is a label the user picks (``--machine``; by default the run's hardware fingerprint).
Hosted CI runners change CPU model from run to run, so a label such as ``gha-ubuntu-2core`` keeps
their history together. A run file holds what the trend needs of each configuration (step-time
median and interval, cold-compile median and interval, how many samples and passes) and the commit's
time and branch, which order a machine's runs; not the raw samples, so that a store of hundreds of
runs stays a few megabytes.

Filing the same run twice is a no-op (a run is known by its ``run_id`` anywhere in the store); a
run with a results schema this tool does not read is refused; a file in the store that cannot be
read, or that another version of the history format wrote, is reported and skipped by
:func:`load`, never fatal to the rest.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..results import rundir, schema

KIND = "mnist-kernels-bench history"
RUN_KIND = "mnist-kernels-bench history run"
HISTORY_VERSION = 1
MARKER = "history.json"
#: each configuration's figures a run file keeps, besides the key columns and ``config_id``.
ROW_COLUMNS = (
    "status",
    "error",
    "n_samples",
    "repeats",
    "step_median_s",
    "step_ci_low_s",
    "step_ci_high_s",
    "cold_compile_s",
    "cold_compile_ci_low_s",
    "cold_compile_ci_high_s",
    "n_compiles",
    "xla_flops",
)
#: the run-level columns of :func:`load`'s table, before the row columns.
RUN_COLUMNS = (
    "machine",
    "branch",
    "commit",
    "commit_time",
    "dirty",
    "run_id",
    "start_time",
    "fingerprint",
    "path",
)


class HistoryError(ValueError):
    """A run that cannot be filed; the message says what to do."""


@dataclass(frozen=True)
class Added:
    """What :func:`add` did: ``path`` is the run's file, ``added`` False when it was there."""

    path: Path
    added: bool
    machine: str


@dataclass
class History:
    """A store's runs as one tidy table (a row per run and configuration) and what was skipped."""

    rows: pd.DataFrame
    problems: list[str] = field(default_factory=list)


def safe_label(label: str) -> str:
    """A machine label as a directory name (anything but ``[A-Za-z0-9._-]`` becomes ``_``)."""
    out = re.sub(r"[^A-Za-z0-9._-]", "_", str(label)).strip(".")
    return out or "_"


def _git(args: list[str], cwd: Path | None) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _commit(meta: dict[str, Any], run_dir: Path, override: dict[str, Any]) -> dict[str, Any]:
    """The run's commit, commit time, branch and dirtiness: the metadata's, unless given."""
    git = dict(meta.get("git") or {})
    git.update({k: v for k, v in override.items() if v is not None})
    commit = git.get("commit")
    if not commit or not re.fullmatch(r"[0-9a-fA-F]{7,64}", str(commit)):
        raise HistoryError(
            f"{run_dir}: the run records no git commit ({commit!r}), so it cannot be placed in "
            "the history; pass --commit SHA (and --commit-time) for a run made outside a checkout"
        )
    if not git.get("commit_time"):
        # runs written before the commit time was recorded: ask the repository here
        git["commit_time"] = _git(["show", "-s", "--format=%cI", str(commit)], None)
    if not git.get("commit_time"):
        raise HistoryError(
            f"{run_dir}: no commit time for {commit} in its metadata and this directory's git "
            "does not know the commit; run `bench history add` inside the repository, or pass "
            "--commit-time ISO8601"
        )
    return git


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    df = rundir.load(run_dir)
    out = []
    for rec in df.to_dict(orient="records"):
        row = {k: schema.clean(rec.get(k)) for k in schema.KEY_COLUMNS}
        row["config_id"] = schema.clean(rec.get("config_id")) or schema.config_id(rec)
        row.update({k: schema.jsonable(rec.get(k)) for k in ROW_COLUMNS})
        out.append(row)
    return out


def build(
    run_dir: str | Path,
    *,
    machine: str | None = None,
    allow_dirty: bool = False,
    git: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The history document of a run directory.

    Args:
      run_dir: a directory written by ``python -m bench run``.
      machine: the label to file it under (default: its hardware fingerprint).
      allow_dirty: file a run of a checkout with uncommitted changes (refused by default: its
        commit does not describe the code that ran).
      git: overrides of the metadata's ``git`` entry (``commit``, ``commit_time``, ``branch``).

    Raises:
      FileNotFoundError, schema.SchemaError: not a run directory this tool reads.
      HistoryError: no machine, commit or commit time, or a dirty tree.
    """
    run_dir = Path(run_dir)
    meta = rundir.load_metadata(run_dir)
    label = machine or meta.get("hardware_fingerprint")
    if not label:
        raise HistoryError(
            f"{run_dir}: no hardware fingerprint in its metadata; pass --machine LABEL"
        )
    info = _commit(meta, run_dir, git or {})
    if info.get("dirty") and not allow_dirty:
        raise HistoryError(
            f"{run_dir}: measured from a checkout with uncommitted changes to {info['commit'][:12]}"
            "; commit them and run again, or pass --allow-dirty to file it anyway (marked dirty)"
        )
    cpu = meta.get("cpu") or {}
    return {
        "kind": RUN_KIND,
        "history_version": HISTORY_VERSION,
        "schema_version": schema.SCHEMA_VERSION,
        "machine": safe_label(label),
        "fingerprint": meta.get("hardware_fingerprint"),
        "run_id": meta["run_id"],
        "commit": str(info["commit"]),
        "commit_time": info["commit_time"],
        "branch": info.get("branch"),
        "dirty": bool(info.get("dirty")),
        "start_time": meta.get("start_time"),
        "added": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "source": str(run_dir),
        "preset": meta.get("preset"),
        "host": meta.get("host"),
        "cpu": cpu.get("model"),
        "jax": meta.get("jax"),
        "rows": _rows(run_dir),
    }


def dumps(doc: dict[str, Any]) -> str:
    """A run file's text: the header keys one a line, then one configuration a line."""
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in doc.items() if k != "rows"]
    lines.append('  "rows": [')
    lines.append(",\n".join("    " + json.dumps(r) for r in doc.get("rows", [])))
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def init(store: str | Path) -> Path:
    """Create ``store`` (or check it is a history store); returns its path.

    Raises:
      HistoryError: the directory holds files but no ``history.json``, or another version's.
    """
    store = Path(store)
    marker = store / MARKER
    if marker.exists():
        try:
            doc = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise HistoryError(f"{marker}: unreadable ({e}); restore it from git") from e
        if doc.get("kind") != KIND or doc.get("history_version") != HISTORY_VERSION:
            raise HistoryError(
                f"{marker}: history version {doc.get('history_version')!r}, this tool writes "
                f"{HISTORY_VERSION}; use a new store directory, or the version that made it"
            )
        return store
    if store.exists() and any(store.iterdir()):
        raise HistoryError(
            f"{store} is not empty and not a results history (no {MARKER}); pick an empty or "
            "new directory for --store"
        )
    store.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"kind": KIND, "history_version": HISTORY_VERSION}) + "\n")
    return store


def find_run(store: str | Path, run_id: str) -> Path | None:
    """The file of run ``run_id`` anywhere in ``store``, or None."""
    name = f"{safe_label(run_id)}.json"
    return next(iter(sorted(Path(store).glob(f"*/*/{name}"))), None)


def add(
    store: str | Path,
    run_dir: str | Path,
    *,
    machine: str | None = None,
    allow_dirty: bool = False,
    git: dict[str, Any] | None = None,
) -> Added:
    """File ``run_dir`` in ``store`` (created if missing); a run already there is left as is.

    Raises what :func:`build` and :func:`init` raise.
    """
    store = init(store)
    doc = build(run_dir, machine=machine, allow_dirty=allow_dirty, git=git)
    there = find_run(store, doc["run_id"])
    if there is not None:
        return Added(path=there, added=False, machine=there.parent.parent.name)
    out = store / doc["machine"] / doc["commit"][:12] / f"{safe_label(doc['run_id'])}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(dumps(doc))
    tmp.replace(out)
    return Added(path=out, added=True, machine=doc["machine"])


def _read(path: Path) -> dict[str, Any]:
    """One run file, checked; raises ValueError saying what is wrong."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not readable JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("kind") != RUN_KIND:
        raise ValueError("not a history run file")
    if doc.get("history_version") != HISTORY_VERSION:
        raise ValueError(
            f"history version {doc.get('history_version')!r}; this tool reads {HISTORY_VERSION}"
        )
    if doc.get("schema_version") not in schema.READABLE_VERSIONS:
        raise ValueError(f"results schema version {doc.get('schema_version')!r}")
    missing = [k for k in ("machine", "commit", "commit_time", "run_id") if not doc.get(k)]
    if missing or not isinstance(doc.get("rows"), list):
        raise ValueError(f"missing {', '.join(missing) or 'rows'}")
    return doc


def load(store: str | Path) -> History:
    """Every run in ``store`` as a table: :data:`RUN_COLUMNS`, the key columns, ``config_id``
    and :data:`ROW_COLUMNS`; unreadable files are listed in ``problems`` and skipped.

    Raises:
      FileNotFoundError: ``store`` does not exist.
    """
    store = Path(store)
    if not store.is_dir():
        raise FileNotFoundError(
            f"{store} does not exist; file a run with `python -m bench history add RUN_DIR "
            f"--store {store}`"
        )
    records, problems = [], []
    for path in sorted(store.glob("*/*/*.json")):
        try:
            doc = _read(path)
        except ValueError as e:
            problems.append(f"{path}: {e}; skipped")
            continue
        run = {k: doc.get(k) for k in RUN_COLUMNS if k != "path"}
        run["machine"] = path.parent.parent.name
        run["path"] = str(path)
        records += [{**run, **row} for row in doc["rows"] if isinstance(row, dict)]
    columns = [*RUN_COLUMNS, *schema.KEY_COLUMNS, "config_id", *ROW_COLUMNS]
    df = pd.DataFrame.from_records(records, columns=columns)
    if len(df):
        df["commit_time"] = pd.to_datetime(df["commit_time"], utc=True, errors="coerce")
        df["start_time"] = pd.to_datetime(df["start_time"], utc=True, errors="coerce")
    return History(rows=df, problems=problems)
