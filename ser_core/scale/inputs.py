"""What a batch job reads: a folder, a glob or a manifest, as a list of files (and speakers).

Local paths or any ``fsspec`` URL whose filesystem is installed (``s3://`` needs ``s3fs``, and so
on). A manifest is a CSV or Parquet table with a ``path`` column and optionally ``speaker``;
relative paths in it are read from the manifest's own folder.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AUDIO_SUFFIXES", "InputFile", "is_url", "list_inputs", "read_bytes"]

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm", ".aac", ".aiff", ".aif")
MANIFEST_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class InputFile:
    path: str
    speaker: str | None = None


def is_url(path: str) -> bool:
    """True for ``scheme://...`` other than ``file://`` (read through fsspec, not the local filesystem)."""
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


def read_bytes(url: str) -> bytes:
    """The whole file at an fsspec URL (remote files are read whole; local ones are streamed by the decoder)."""
    import fsspec

    with fsspec.open(url, "rb") as handle:
        return handle.read()


def _audio(names: list[str]) -> list[str]:
    return sorted(name for name in names if name.lower().endswith(AUDIO_SUFFIXES))


def _manifest(source: str) -> list[InputFile]:
    import pandas as pd

    if source.lower().endswith(".csv"):
        table = pd.read_csv(source, dtype=str, keep_default_na=False)
    else:
        table = pd.read_parquet(source)
    if "path" not in table.columns:
        raise ValueError(f"the manifest {source} has no 'path' column (its columns: {', '.join(map(str, table.columns))})")
    base = posixpath.dirname(source) if is_url(source) else os.path.dirname(os.path.abspath(_local(source)))
    files = []
    for row in table.itertuples(index=False):
        path = str(row.path)
        if not path:
            continue
        if not is_url(path) and not Path(_local(path)).is_absolute():
            path = posixpath.join(base, path) if is_url(base) else str(Path(base) / path)
        speaker = getattr(row, "speaker", None) if "speaker" in table.columns else None
        files.append(InputFile(path, None if speaker is None or speaker == "" else str(speaker)))
    return files


def list_inputs(sources: list[str]) -> list[InputFile]:
    """Every audio file the sources name, each once (first mention kept), in a stable order.

    Parameters
    ----------
    sources : list of str
        Folders (searched recursively for audio), globs (``"calls/**/*.wav"``), manifests
        (``.csv``/``.parquet``) or single files; local or fsspec URLs.

    Raises
    ------
    ValueError
        A source that names nothing: the message says which.
    """
    found: dict[str, InputFile] = {}
    for source in sources:
        files = _expand(source)
        if not files:
            raise ValueError(f"no audio files found in {source}")
        for item in files:
            found.setdefault(item.path, item)
    return list(found.values())


def _expand(source: str) -> list[InputFile]:
    if source.lower().endswith(MANIFEST_SUFFIXES):
        return _manifest(source)
    if is_url(source):
        import fsspec

        fs, _, _ = fsspec.get_fs_token_paths(source)
        if any(char in source for char in "*?["):
            names = fs.glob(source)
        elif fs.isdir(source):
            names = fs.find(source)
        else:
            return [InputFile(source)]
        return [InputFile(name if "://" in name else fs.unstrip_protocol(name)) for name in _audio(names)]
    local = _local(source)
    if any(char in local for char in "*?["):
        import glob

        return [InputFile(os.path.abspath(name)) for name in _audio(glob.glob(local, recursive=True))]
    path = Path(local)
    if path.is_dir():
        return [InputFile(os.path.abspath(name)) for name in _audio([str(p) for p in path.rglob("*") if p.is_file()])]
    if path.is_file():
        return [InputFile(os.path.abspath(path))]
    raise ValueError(f"{source} does not exist")
