"""The frozen Whisper encoder's frames of whole corpora, cached on disk in float16.

What the tuned model's CPU route (``training.whisper_keras.build_tuned_model``) trains on: for each
clip, the frames of the chosen encoder layers exactly as the shipped front end computes them
(``inference.embedding``: VAD, speech level, segments of at most ``max_segment_seconds``, the numpy
encoder unpadded), one ``.npy`` of shape ``(frames, len(layers), width)`` per clip. The segments'
frames are concatenated in order (clips of the corpora at hand are one segment each).

The folder key changes with the weights' SHA-256, every ``EmbeddingParams`` field, the front end's
source (``embedding_cache.FRONT_END_CODE``), this module's source and the layers; each clip's file is
named by the SHA-1 of its audio file's bytes, as in the embedding cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from ser_core.data.dataset import source_fingerprint
from ser_core.data.embedding_cache import FRONT_END_CODE, _limit_blas_threads, cached_file
from ser_core.inference import artifacts, embedding
from ser_core.inference.audio import load_audio
from ser_core.inference.params import EmbeddingParams

__all__ = ["DEFAULT_FRAME_CACHE", "cached_frames", "frames_key", "speech_frames"]

log = logging.getLogger(__name__)

DEFAULT_FRAME_CACHE = Path("data_cache/frames")
_CODE = source_fingerprint(__file__)


def frames_key(params: EmbeddingParams, layers: Sequence[int]) -> str:
    """Name of the cache folder of one front end and choice of layers."""
    identity = [params.to_dict(), FRONT_END_CODE, _CODE, [int(layer) for layer in layers]]
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def speech_segments(wave: np.ndarray, params: EmbeddingParams) -> list[np.ndarray]:
    """The waveforms the encoder hears for ``wave``: ``inference.embedding.embed_waveform``'s steps."""
    wave = np.asarray(wave, np.float32)
    kept, level_samples, _ = embedding.speech_part(wave, params)
    kept = embedding.level_normalise(kept, level_samples, params)
    minimum = int(params.min_segment_seconds * params.sample_rate)
    if len(kept) < minimum:
        extra = minimum - len(kept)
        kept = np.pad(kept, (extra // 2, extra - extra // 2))
    return embedding._segments(kept, params)


def speech_frames(wave: np.ndarray, params: EmbeddingParams, layers: Sequence[int], *, encoder=None) -> np.ndarray:
    """float16 ``(frames, len(layers), width)``: the chosen layers' frames of every segment, in order."""
    encoder = encoder or embedding.load_encoder(params.model, params.weights_sha256)
    parts = []
    for segment in speech_segments(wave, params):
        hidden = encoder.encode(segment, sr=params.sample_rate).hidden_states
        parts.append(np.transpose(hidden[list(layers)], (1, 0, 2)))
    return np.concatenate(parts).astype(np.float16)


def _frames_one(job: tuple[str, EmbeddingParams, tuple[int, ...], str]) -> str | None:
    path, params, layers, folder = job
    try:
        cached = cached_file(folder, path)
        if not cached.is_file():
            artifacts.save_array(cached, speech_frames(load_audio(path, params.sample_rate), params, layers))
        return None
    except Exception as error:  # every failure goes back to the caller
        return f"{type(error).__name__}: {error}"


def cached_frames(paths: Sequence[str | Path], params: EmbeddingParams = EmbeddingParams(),
                  layers: Sequence[int] = (1, 2, 3, 4), *, cache_dir: str | Path = DEFAULT_FRAME_CACHE,
                  workers: int = 1, desc: str = "frames") -> tuple[list[np.ndarray | None], list[tuple[str, str]]]:
    """The frames of audio files (memory-mapped float16), computed where not yet cached.

    Returns
    -------
    frames : list
        Per path, ``(frames, len(layers), width)`` float16 (memory-mapped), or None where it failed.
    failures : list of (path, reason)
    """
    layers = tuple(int(layer) for layer in layers)
    folder = Path(cache_dir) / frames_key(params, layers)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "front_end.json").write_text(json.dumps({"params": params.to_dict(), "code": FRONT_END_CODE,
                                                       "layers": list(layers)}, indent=1))
    jobs = [(str(path), params, layers, str(folder)) for path in paths]
    if workers > 1 and len(jobs) > 20:
        with ProcessPoolExecutor(workers, initializer=_limit_blas_threads) as pool:
            errors = list(tqdm(pool.map(_frames_one, jobs, chunksize=4), total=len(jobs), desc=desc, unit="clip"))
    else:
        _limit_blas_threads()
        errors = [_frames_one(job) for job in tqdm(jobs, desc=desc, unit="clip")]
    frames: list[np.ndarray | None] = []
    failures = []
    for job, error in zip(jobs, errors):
        if error is None:
            frames.append(np.load(cached_file(folder, job[0]), mmap_mode="r", allow_pickle=False))
        else:
            frames.append(None)
            failures.append((job[0], error))
            log.warning("no frames for %s (%s)", job[0], error)
    return frames, failures
