"""The output folder of a batch job: Parquet parts, each written under a temporary name and renamed.

    OUT/job.json                 what the job is (model hash, threshold, segments, adaptation)
    OUT/files/part-*.parquet     one row per file
    OUT/segments/part-*.parquet  one row per speech segment (``--segments``), same part names
    OUT/measured/part-*.parquet  adapted jobs: each file's measurement, before the answers

A part appears whole or not at all (``os.replace`` of a dot-named temporary file, which Parquet
readers skip), so a job killed at any moment leaves only whole parts, and the files in them are
done. A segments part is written before the files part of the same name, and a segments part
without its files part (killed between the two) is deleted when the job starts again.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["JobMismatch", "Output", "read_table"]

FILES, SEGMENTS, MEASURED = "files", "segments", "measured"

# Column types fixed up front, so every part has the same schema whatever its rows hold.
_TYPES = {
    "path": "string", "speaker": "string", "status": "string", "error": "string", "duration_s": "float64",
    "speech_seconds": "float64", "label": "string", "top_emotion": "string", "confidence": "float64",
    "uncertain": "bool", "threshold": "float64", "n_segments": "int64", "adapted": "bool",
    "adaptation_clips": "int64", "model_hash": "string", "segment": "int64", "start_s": "float64",
    "end_s": "float64", "features": "list<float64>",
}
_FIRST = ["path", "speaker", "status", "error", "duration_s", "speech_seconds", "label", "top_emotion", "confidence",
          "uncertain", "threshold"]


class JobMismatch(ValueError):
    """The output folder holds another job's results (another model or other settings)."""


def _arrow_type(name: str, values: list[Any]):
    import pyarrow as pa

    known = _TYPES.get(name)
    if known == "list<float64>":
        return pa.list_(pa.float64())
    if known is not None:
        return pa.type_for_alias(known)
    if name.startswith("p_"):
        return pa.float64()
    sample = next((value for value in values if value is not None), None)
    if isinstance(sample, list):
        return pa.list_(pa.string())
    if isinstance(sample, bool):
        return pa.bool_()
    if isinstance(sample, int):
        return pa.int64()
    if isinstance(sample, float):
        return pa.float64()
    return pa.string()


def _table(rows: list[dict[str, Any]]):
    import pyarrow as pa

    names: list[str] = []
    for row in rows:
        names.extend(name for name in row if name not in names)
    names.sort(key=lambda name: (_FIRST.index(name) if name in _FIRST else len(_FIRST), name.startswith("p_")))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        kind = _arrow_type(name, values)
        if pa.types.is_list(kind) and pa.types.is_string(kind.value_type):
            values = [None if value is None else [str(item) for item in value] for value in values]
        columns[name] = pa.array(values, type=kind)
    return pa.table(columns)


def read_table(folder: str | Path, columns: list[str] | None = None):
    """Every part of one kind (``OUT/files``, ``OUT/segments``) as one Arrow table, schemas unified."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = sorted(Path(folder).glob("part-*.parquet"))
    if not parts:
        return pa.table({name: pa.array([], pa.string()) for name in (columns or ["path"])})
    tables = [pq.read_table(part, columns=[c for c in columns if c in pq.read_schema(part).names] if columns else None)
              for part in parts]
    return pa.concat_tables(tables, promote_options="default")


class Output:
    """An output folder, for one job.

    Parameters
    ----------
    root : path
        Created when missing.
    job : dict
        What the rows depend on (model hash, threshold, segments, adaptation). A folder that holds
        another job's results raises :class:`JobMismatch` on :meth:`open`.
    """

    def __init__(self, root: str | Path, job: dict[str, Any]) -> None:
        self.root = Path(root)
        self.job = job
        self._stamp = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
        self._count = 0

    def open(self, resume: bool) -> None:
        """Prepare the folder: check it holds this job, or empty it (``resume=False``); tidy what a kill left."""
        job_file = self.root / "job.json"
        if not resume:
            for kind in (FILES, SEGMENTS, MEASURED):
                for part in (self.root / kind).glob("*part-*"):
                    part.unlink()
        elif job_file.is_file():
            before = json.loads(job_file.read_text())
            different = {key: (before.get(key), value) for key, value in self.job.items() if before.get(key) != value}
            if different and (any((self.root / FILES).glob("part-*.parquet")) or any((self.root / MEASURED).glob("part-*.parquet"))):
                changes = "; ".join(f"{key} was {old!r}, now {new!r}" for key, (old, new) in different.items())
                raise JobMismatch(f"{self.root} holds the results of another job ({changes}). Give another "
                                  "--output, or --no-resume to replace them.")
        for kind in (FILES, SEGMENTS, MEASURED):
            (self.root / kind).mkdir(parents=True, exist_ok=True)
            for leftover in (self.root / kind).glob(".part-*.tmp"):
                leftover.unlink()
        written = {part.name for part in (self.root / FILES).glob("part-*.parquet")}
        for orphan in (self.root / SEGMENTS).glob("part-*.parquet"):
            if orphan.name not in written:
                orphan.unlink()
        tmp = self.root / ".job.json.tmp"
        tmp.write_text(json.dumps(self.job, indent=1))
        os.replace(tmp, job_file)

    def done(self, kind: str = FILES) -> set[str]:
        """The paths that already have a row of this kind."""
        return set(read_table(self.root / kind, ["path"]).column("path").to_pylist())

    def write(self, rows: list[dict[str, Any]], segments: list[dict[str, Any]] | None = None, kind: str = FILES) -> None:
        """One part (and its segments part first), each atomically renamed into place."""
        import pyarrow.parquet as pq

        if not rows:
            return
        self._count += 1
        name = f"part-{self._stamp}-{self._count:05d}.parquet"
        pairs = [(SEGMENTS, segments)] if segments else []
        for folder, content in pairs + [(kind, rows)]:
            tmp = self.root / folder / f".{name}.tmp"
            pq.write_table(_table(content), tmp)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, self.root / folder / name)
