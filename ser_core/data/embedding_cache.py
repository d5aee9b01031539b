"""Whisper embeddings of whole corpora, cached on disk so that a second run computes nothing.

One ``.npy`` file per clip and front end, under ``<cache_dir>/<front-end key>/``. The front-end key
changes with the weights' SHA-256, every ``EmbeddingParams`` field, the source of the front-end
modules (embedding, Whisper encoder, VAD) and the channel simulation, if any; each clip's file is
named by the SHA-1 of the audio file's bytes (``dataset.audio_digest``), so moving or re-downloading
a corpus keeps its cache. Editing the front end therefore never trains on stale embeddings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
from tqdm import tqdm

from ser_core.data.corpora import Clip
from ser_core.data.dataset import (
    CacheWriteError,
    audio_digest,
    map_in_pool,
    source_fingerprint,
    write_to_cache,
)
from ser_core.inference import (
    artifacts,
    embedding,
    speech,
    whisper_encoder,
    whisper_front,
    whisper_int8,
)
from ser_core.inference.audio import load_audio
from ser_core.inference.params import EMOTIONS, EmbeddingParams

__all__ = ["DEFAULT_EMBEDDING_CACHE", "FRONT_END_CODE", "EmbeddingSet", "WaveTransform", "cache_folder", "cached_file",
           "clip_embeddings", "embed_files", "front_end_key", "stale_folders"]

log = logging.getLogger(__name__)

DEFAULT_EMBEDDING_CACHE = Path("data_cache/embeddings")
FRONT_END_CODE = source_fingerprint(embedding.__file__, whisper_encoder.__file__, speech.__file__, whisper_int8.__file__)


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


def cache_folder(params: EmbeddingParams, cache_dir: str | Path = DEFAULT_EMBEDDING_CACHE,
                 transform: WaveTransform | None = None) -> Path:
    """The cache folder of one front end (and channel simulation), created with its ``front_end.json``."""
    folder = Path(cache_dir) / front_end_key(params, transform)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        artifacts.write_text(folder / "front_end.json", json.dumps(
            {"params": params.to_dict(), "code": FRONT_END_CODE,
             "transform": transform.to_dict() if transform is not None else None}, indent=1))
    except OSError as error:
        raise CacheWriteError(f"cannot write the embedding cache in {folder} ({error.strerror or error})") from None
    return folder


def stale_folders(cache_dir: str | Path = DEFAULT_EMBEDDING_CACHE) -> list[tuple[Path, int]]:
    """The folders of ``cache_dir`` written by another version of the front-end code (their
    ``front_end.json`` names other code), with their size in bytes: this code never reads them again.

    Folders of this code with other settings or a channel simulation are kept; so is anything without
    a readable ``front_end.json``, which this module did not write."""
    stale = []
    root = Path(cache_dir)
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            code = json.loads((folder / "front_end.json").read_text())["code"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if code != FRONT_END_CODE:
            stale.append((folder, sum(f.stat().st_size for f in folder.iterdir() if f.is_file())))
    return stale


def cached_file(folder: str | Path, path: str | Path) -> Path:
    """Where the embedding of the audio file ``path`` is kept in ``folder`` (a :func:`cache_folder`);
    ``ser_core.scale.embedding`` fills the same files from a Ray cluster."""
    return Path(folder) / f"{audio_digest(path)}.npy"


def _limit_blas_threads() -> None:
    # Two processes with one BLAS thread each are steadier than one with two on a shared machine
    # (whisper NOTES: 95-140 ms against 110-550 ms per 3 s clip under load).
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def _embed_one(job: tuple[str, EmbeddingParams, str, WaveTransform | None]) -> tuple[np.ndarray | None, str | None]:
    path, params, folder, transform = job
    try:
        digest = audio_digest(path)
        cached = Path(folder) / f"{digest}.npy"  # as cached_file(folder, path), hashing the file once
        if cached.is_file():
            return np.load(cached, allow_pickle=False), None
        wave = load_audio(path, params.sample_rate)
        if transform is not None:
            # Seeded by the file's bytes, as the cache file is named: a re-run, or another copy of the
            # same clip, draws the same corruption.
            rng = np.random.default_rng(int(digest[:16], 16))
            wave = transform(wave, rng)
        pooled = embedding.embed_waveform(wave, params, encoder=whisper_front.front_end_encoder(params)).pooled
        write_to_cache(cached, pooled, "embedding")
        return pooled, None
    except CacheWriteError:
        raise  # the run's fault (a full disk), not the clip's: never a skipped clip
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
        Channel simulation applied to each decoded wave, seeded by the file's bytes (a copy of a clip
        draws the same corruption).
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
    folder = cache_folder(params, cache_dir, transform)
    jobs = [(str(path), params, str(folder), transform) for path in paths]
    if workers > 1 and len(jobs) > 20:
        results = map_in_pool(_embed_one, jobs, workers, 8, dict(desc=desc, unit="clip"),
                              initializer=_limit_blas_threads)
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


@dataclass(frozen=True)
class EmbeddingSet:
    """Embeddings of labelled clips and what the protocols group them by (one row per clip).

    Attributes
    ----------
    embeddings : np.ndarray
        float32, ``(n, n_layers + 1, 2 * width)``.
    labels : np.ndarray
        int, index into ``EMOTIONS``.
    corpus, speaker, source_emotion, path : np.ndarray
        str; ``source_emotion`` is the corpus's own label (TurEV's "calm" kept as neutral).
    gender : np.ndarray
        str ("male", "female" or "").
    """

    embeddings: np.ndarray
    labels: np.ndarray
    corpus: np.ndarray
    speaker: np.ndarray
    gender: np.ndarray
    source_emotion: np.ndarray
    path: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> "EmbeddingSet":
        """The rows where ``mask`` is true (or the rows of an index array)."""
        return EmbeddingSet(*(getattr(self, field.name)[mask] for field in dataclasses.fields(self)))

    @classmethod
    def concatenate(cls, parts: Sequence["EmbeddingSet"]) -> "EmbeddingSet":
        return cls(*(np.concatenate([getattr(part, field.name) for part in parts])
                     for field in dataclasses.fields(cls)))


def clip_embeddings(
    clips: Sequence[Clip],
    params: EmbeddingParams = EmbeddingParams(),
    *,
    cache_dir: str | Path = DEFAULT_EMBEDDING_CACHE,
    transform: WaveTransform | None = None,
    workers: int = 1,
    desc: str = "embeddings",
) -> EmbeddingSet:
    """:func:`embed_files` of labelled clips (from ``registry.gather_corpora`` or ``labelled_clips``).

    Clips whose audio failed are left out and logged.
    """
    embeddings, failures = embed_files([clip.path for clip in clips], params, cache_dir=cache_dir,
                                       transform=transform, workers=workers, desc=desc)
    failed = {path for path, _ in failures}
    keep = np.array([clip.path not in failed for clip in clips], bool)
    as_array = lambda values: np.array(list(values), dtype=str)  # noqa: E731
    return EmbeddingSet(
        embeddings=embeddings[keep],
        labels=np.array([EMOTIONS.index(clip.emotion) for clip in clips], int)[keep],
        corpus=as_array(clip.corpus for clip in clips)[keep],
        speaker=as_array(clip.speaker for clip in clips)[keep],
        gender=as_array(clip.gender or "" for clip in clips)[keep],
        source_emotion=as_array(clip.source_emotion or clip.emotion for clip in clips)[keep],
        path=as_array(clip.path for clip in clips)[keep],
    )
