"""A run directory: the one place results are read and written.

:class:`RunDir` owns the files of :mod:`bench.results.schema`: rows are appended to
``results.jsonl`` (every pass to ``repeats.jsonl``) and flushed to disk one line at a time, so a
kill loses at most the row in flight; a line a kill left half-written is cut before anything is
appended after it; ``metadata.json`` is replaced atomically; ``results.csv`` is written from the
rows at the end. :func:`load` and :func:`load_metadata` read a run as pandas and a dict.

One writer at a time: a process that writes a run directory first takes its lock
(:meth:`RunDir.lock`, an advisory ``flock`` on ``.lock`` held for the process's life; the OS
drops it when the process dies, so a kill -9 never leaves it stuck); a second writer is refused
with the PID of the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from . import rows as rows_mod
from . import schema

RESULTS, REPEATS, METADATA, CSV = "results.jsonl", "repeats.jsonl", "metadata.json", "results.csv"
LOCK = ".lock"


class RunDirBusy(RuntimeError):
    """Another live process is writing this run directory."""


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``results.jsonl`` file, last one per ``config_id``; a torn last line is skipped.

    Raises:
      schema.SchemaError: a line that is not JSON (but the last), or of another schema version.
    """
    path = Path(path)
    found: dict[str, dict[str, Any]] = {}
    with path.open() as f:
        lines = f.readlines()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if lineno == len(lines):  # a write cut off by a kill
                continue
            raise schema.SchemaError(f"{path}:{lineno}: not valid JSON ({e})") from e
        schema.check_version(row.get("schema_version"), f"{path}:{lineno}")
        found[row.get("config_id") or schema.config_id(row)] = row
    return list(found.values())


def frame(records: list[dict[str, Any]] | pd.DataFrame, *, samples: bool = True) -> pd.DataFrame:
    """Rows as the tidy table: every column of the schema (missing ones empty) in the schema's
    order, then any others; the raw-sample lists last, or dropped when ``samples`` is false."""
    df = records if isinstance(records, pd.DataFrame) else pd.DataFrame(records)
    for col in schema.COLUMNS:
        if col not in df.columns:
            df[col] = None
    extra = [c for c in df.columns if c not in schema.COLUMNS and c not in schema.SAMPLE_COLUMNS]
    cols = list(schema.COLUMNS) + extra
    if samples:
        cols += [c for c in schema.SAMPLE_COLUMNS if c in df.columns]
    return df[cols].reset_index(drop=True)


def load_metadata(run_dir: str | Path) -> dict[str, Any]:
    """``metadata.json`` of a run directory.

    Raises:
      FileNotFoundError: there is none.
      schema.SchemaError: not JSON, no ``run_id``, or of a schema version this tool does not
        read.
    """
    path = Path(run_dir) / METADATA
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; is {run_dir} a run directory?")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise schema.SchemaError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise schema.SchemaError(f"{path}: not a metadata object (a JSON {type(meta).__name__})")
    schema.check_version(meta.get("schema_version"), str(path))
    if not isinstance(meta.get("run_id"), str) or not meta["run_id"]:
        raise schema.SchemaError(f"{path}: no run_id; it was not written by bench run")
    return meta


def load(run_dir: str | Path, *, samples: bool = False) -> pd.DataFrame:
    """The results of a run as a tidy DataFrame, one row per configuration.

    Args:
      run_dir: a directory written by ``python -m bench run``.
      samples: keep the raw-sample list columns (``samples_s``, ``sync_samples_s``).

    Raises:
      FileNotFoundError: no ``results.jsonl`` there.
      SchemaError: written with a schema version this tool does not read.
    """
    path = Path(run_dir) / RESULTS
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; pass a directory written by `python -m bench run`"
        )
    return frame(read_rows(path), samples=samples)


def _append_line(path: Path, row: dict[str, Any]) -> None:
    line = json.dumps(schema.jsonable(row), default=str)
    with path.open("a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _drop_torn_tail(path: Path) -> None:
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


class RunDir:
    """One run directory, for reading and writing (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._checked: set[Path] = set()
        self._lock: Any = None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    @property
    def results(self) -> Path:
        return self.path / RESULTS

    @property
    def repeats(self) -> Path:
        return self.path / REPEATS

    # reading
    def has_results(self) -> bool:
        return self.results.exists()

    def metadata(self) -> dict[str, Any]:
        return load_metadata(self.path)

    def rows(self) -> list[dict[str, Any]]:
        """The rows of ``results.jsonl`` (none when there is no such file)."""
        return read_rows(self.results) if self.results.exists() else []

    def frame(self, *, samples: bool = False) -> pd.DataFrame:
        return load(self.path, samples=samples)

    def passes(self) -> dict[str, dict[int, dict[str, Any]]]:
        """Every pass in ``repeats.jsonl``: ``config_id -> {pass: row}`` (a pass written twice:
        the last; a torn last line is skipped)."""
        out: dict[str, dict[int, dict[str, Any]]] = {}
        if not self.repeats.exists():
            return out
        for line in self.repeats.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line a kill tore: that pass is measured again
            if isinstance(row, dict) and isinstance(row.get(schema.PASS_COLUMN), int):
                out.setdefault(str(row.get("config_id")), {})[row[schema.PASS_COLUMN]] = row
        return out

    def done(self, *, ok_only: bool = False) -> set[str]:
        """The ``config_id`` of every row written (only those ``ok`` with ``ok_only``)."""
        return {r.get("config_id") for r in self.rows() if not ok_only or r.get("status") == "ok"}

    # writing
    def create(self) -> RunDir:
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def lock(self) -> RunDir:
        """Create the directory and become its one writer until :meth:`unlock` or this process
        ends (the OS releases the lock of a dead process, kill -9 included).

        Raises:
          RunDirBusy: another live process holds it; the message names its PID.
        """
        if self._lock is not None:
            return self
        self.create()
        f = (self.path / LOCK).open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise RunDirBusy(
                f"{self.path} is being written by another run (PID {holder}); wait for it to "
                f"finish, or write to another --out"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._lock = f
        return self

    def unlock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _append(self, path: Path, row: dict[str, Any]) -> None:
        if path not in self._checked:  # once per file: what a kill left is cut before we add
            self.create()
            _drop_torn_tail(path)
            self._checked.add(path)
        _append_line(path, row)

    def append(self, row: dict[str, Any]) -> None:
        """Append one finished row to ``results.jsonl``, flushed to disk at once."""
        self._append(self.results, row)

    def append_pass(self, row: dict[str, Any], index: int) -> None:
        """Append one pass of a configuration, as measured, to ``repeats.jsonl``."""
        self._append(self.repeats, {**row, schema.PASS_COLUMN: int(index)})

    def drop_torn_tail(self) -> None:
        """Cut a last line a kill left half-written, in every file rows are appended to."""
        for path in (self.results, self.repeats):
            _drop_torn_tail(path)
            self._checked.add(path)

    def write_location(self, file: str | Path) -> None:
        """Write this directory's absolute path into ``file`` (how ``nox -s bench`` learns
        where the run went)."""
        Path(file).write_text(str(self.path.resolve()) + "\n")

    def write_metadata(self, meta: dict[str, Any]) -> None:
        """Replace ``metadata.json`` atomically (a kill leaves the old file or the new one)."""
        tmp = self.path / (METADATA + ".tmp")
        try:
            tmp.write_text(json.dumps(schema.jsonable(meta), indent=1, default=str))
            tmp.replace(self.path / METADATA)
        except BaseException:  # a full disk, a kill: the old file stays, no half-written copy
            tmp.unlink(missing_ok=True)
            raise

    def write_csv(self) -> Path | None:
        """``results.csv`` from ``results.jsonl`` (no raw samples, no tracebacks)."""
        if not self.results.exists():
            return None
        df = self.frame()
        df = df.drop(columns=[c for c in ("traceback",) if c in df.columns])
        if "options" in df.columns:
            df["options"] = df["options"].map(lambda v: json.dumps(v) if isinstance(v, dict) else v)
        out = self.path / CSV
        df.to_csv(out, index=False)
        return out

    def rederive(self, peaks: dict[str, Any]) -> None:
        """Recompute the peak-derived columns of every row, in both row files, atomically."""
        for path in (self.results, self.repeats):
            if not path.exists():
                continue
            _drop_torn_tail(path)
            tmp = path.with_suffix(".jsonl.tmp")
            with tmp.open("w") as f:
                for line in path.read_text().splitlines():
                    if line.strip():
                        row = rows_mod.derive(json.loads(line), peaks)
                        f.write(json.dumps(schema.jsonable(row), default=str) + "\n")
            tmp.replace(path)
