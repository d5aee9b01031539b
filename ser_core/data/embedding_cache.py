"""Whisper embeddings of whole corpora, cached on disk so that a second run computes nothing.

One ``.npy`` file per clip and front end, under ``<cache_dir>/<front-end key>/``. The front-end key
changes with the weights' SHA-256, every ``EmbeddingParams`` field, the source of the front-end
modules (embedding, Whisper encoder, VAD) and the channel simulation, if any; the file key adds the
audio file's path, size and modification time. Editing the front end therefore never trains on
stale embeddings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
from tqdm import tqdm

from ser_core.data.dataset import source_fingerprint
from ser_core.inference import embedding, speech, whisper_encoder
from ser_core.inference.audio import load_audio
from ser_core.inference.params import EmbeddingParams

__all__ = ["DEFAULT_EMBEDDING_CACHE", "FRONT_END_CODE", "WaveTransform", "embed_files", "front_end_key"]

log = logging.getLogger(__name__)

DEFAULT_EMBEDDING_CACHE = Path("data_cache/embeddings")
FRONT_END_CODE = source_fingerprint(embedding.__file__, whisper_encoder.__file__, speech.__file__)


class WaveTransform(Protocol):
    """A seeded waveform corruption (e.g. ``ser_core.data.channel.Channel``) applied before the front end."""

    def to_dict(self) -> dict[str, Any]: ...

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


def front_end_key(params: EmbeddingParams, transform: WaveTransform | None = None) -> str:
    """Name of the cache folder of one front end (and channel simulation)."""
    identity: list[Any] = [params.to_dict(), FRONT_END_CODE]
    if transform is not None:
        identity += [transform.to_dict(), source_fingerprint(__import__(type(transform).__module__,
                                                                        fromlist=["_"]).__file__)]
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def _file_key(path: str) -> str:
    stat = os.stat(path)
    identity = [os.path.abspath(path), stat.st_size, stat.st_mtime_ns]
    return hashlib.sha1(json.dumps(identity).encode()).hexdigest()


def _limit_blas_threads() -> None:
    # Two processes with one BLAS thread each are steadier than one with two on a shared machine
    # (whisper NOTES: 95-140 ms against 110-550 ms per 3 s clip under load).
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def _embed_one(job: tuple[str, EmbeddingParams, str, WaveTransform | None]) -> tuple[np.ndarray | None, str | None]:
    path, params, folder, transform = job
    try:
        cached = Path(folder) / f"{_file_key(path)}.npy"
        if cached.is_file():
            return np.load(cached, allow_pickle=False), None
        wave = load_audio(path, params.sample_rate)
        if transform is not None:
            # Seeded by the file name, so a re-run draws the same corruption for the same clip.
            rng = np.random.default_rng(zlib.crc32(os.path.basename(path).encode()))
            wave = transform(wave, rng)
        pooled = embedding.embed_waveform(wave, params).pooled
        temporary = cached.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(temporary, pooled, allow_pickle=False)
        os.replace(temporary, cached)
        return pooled, None
    except Exception as error:  # every failure is returned to the caller, never silently dropped
        return None, f"{type(error).__name__}: {error}"


def embed_files(
    paths: Sequence[str | Path],
    params: EmbeddingParams = EmbeddingParams(),
    *,
    cache_dir: str | Path = DEFAULT_EMBEDDING_CACHE,
    transform: WaveTransform | None = None,
    workers: int = 1,
    desc: str = "embeddings",
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Pooled embeddings of audio files, from the cache where present.

    Parameters
    ----------
    paths : sequence of path
        Audio files (any format ``load_audio`` decodes).
    params : EmbeddingParams
        The front end.
    cache_dir : path
        Root of the embedding cache (git-ignored ``data_cache/embeddings`` by default).
    transform : WaveTransform, optional
        Channel simulation applied to each decoded wave, seeded per file name.
    workers : int
        Processes; each uses one BLAS thread.
    desc : str
        Label of the progress bar.

    Returns
    -------
    embeddings : np.ndarray
        float32, shape ``(len(paths), n_layers + 1, 2 * width)``; rows of failed files are NaN.
    failures : list of (path, reason)
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    folder = Path(cache_dir) / front_end_key(params, transform)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "front_end.json").write_text(json.dumps(
        {"params": params.to_dict(), "code": FRONT_END_CODE,
         "transform": transform.to_dict() if transform is not None else None}, indent=1))
    jobs = [(str(path), params, str(folder), transform) for path in paths]
    if workers > 1 and len(jobs) > 20:
        with ProcessPoolExecutor(workers, initializer=_limit_blas_threads) as pool:
            results = list(tqdm(pool.map(_embed_one, jobs, chunksize=8), total=len(jobs), desc=desc, unit="clip"))
    else:
        _limit_blas_threads()
        results = [_embed_one(job) for job in tqdm(jobs, desc=desc, unit="clip")]
    shape = next((pooled.shape for pooled, _ in results if pooled is not None), (0, 0))
    out = np.full((len(jobs), *shape), np.nan, np.float32)
    failures = []
    for row, (job, (pooled, error)) in enumerate(zip(jobs, results)):
        if pooled is None:
            failures.append((job[0], error or "unknown"))
            log.warning("no embedding for %s (%s)", job[0], error)
        else:
            out[row] = pooled
    return out, failures
