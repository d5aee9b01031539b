"""Feature extraction for whole corpora: parallel, with an on-disk cache, and the tf.data pipelines."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ser_core.inference import artifacts, audio, features
from ser_core.inference.audio import AudioError, load_audio
from ser_core.data.corpora import Clip
from ser_core.inference.features import clip_features, is_silent
from ser_core.inference.params import EMOTIONS, TRAINING_LABELS, FeatureParams

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(".cache/features")


class CacheWriteError(RuntimeError):
    """A feature or embedding could not be written to its cache (a full disk, a read-only folder).

    An error of the run, not of the clip: the run stops rather than train without the clip."""


def write_to_cache(path: Path, array: np.ndarray, what: str = "feature") -> None:
    """``artifacts.save_array``, an ``OSError`` raised as :class:`CacheWriteError` naming the folder."""
    try:
        artifacts.save_array(path, array)
    except OSError as error:
        raise CacheWriteError(f"cannot write the {what} cache in {Path(path).parent} ({error.strerror or error}); "
                              "the run stopped and nothing was replaced. Free some space there or give another "
                              "--cache-dir") from None


def ignore_interrupts_in_worker() -> None:
    """Pool initialiser: Ctrl-C is the parent's to handle (it cancels the pool); a worker that
    also received it would print a KeyboardInterrupt traceback of its own."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start_worker(initializer=None) -> None:
    ignore_interrupts_in_worker()
    if initializer is not None:
        initializer()


def map_in_pool(function, jobs: list, workers: int, chunksize: int, progress: dict, initializer=None) -> list:
    """``pool.map`` in ``workers`` processes with a progress bar; on an error or Ctrl-C the jobs not
    started are cancelled (the ones running finish their chunk) and the exception goes on."""
    pool = ProcessPoolExecutor(workers, initializer=functools.partial(_start_worker, initializer))
    try:
        results = list(tqdm(pool.map(function, jobs, chunksize=chunksize), total=len(jobs), **progress))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results


def source_fingerprint(*paths: str | Path) -> str:
    """SHA-1 of these files' bytes, in order."""
    return hashlib.sha1(b"".join(Path(path).read_bytes() for path in paths)).hexdigest()


# The source of the modules that decode audio and compute features is part of every cache key:
# editing either invalidates the cache, so a changed feature function never trains on stale features.
FEATURE_CODE = source_fingerprint(audio.__file__, features.__file__)


def audio_digest(path: str | Path) -> str:
    """SHA-1 of an audio file's bytes: what the caches key a clip by.

    The bytes, not the path or modification time, so a corpus moved, copied or downloaded again keeps
    its cache, and a file changed in any way does not. (Hashing costs about 1 s for the 228 MB of the
    seven corpora, against minutes of features.)"""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha1").hexdigest()


def cache_key(path: str, params: FeatureParams, feature_code: str = FEATURE_CODE) -> str:
    """Changes when the file's bytes, any feature parameter or the feature code changes."""
    identity = [audio_digest(path), params.to_dict(), feature_code]
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _extract_one(job: tuple[str, FeatureParams, str]) -> tuple[np.ndarray | None, str | None]:
    path, params, cache_dir = job
    try:
        cached = Path(cache_dir) / f"{cache_key(path, params)}.npy"
        if cached.is_file():
            return np.load(cached, allow_pickle=False), None
        wave = load_audio(path, params.sample_rate)
        if is_silent(wave):
            raise AudioError("silent")
        features, _ = clip_features(wave, params)
        write_to_cache(cached, features)
        return features, None
    except CacheWriteError:
        raise  # the run's fault, not the clip's
    except Exception as error:  # every failure is reported by the caller, never silently dropped
        return None, f"{type(error).__name__}: {error}"


def extract_features(
    clips: list[Clip], params: FeatureParams, cache_dir: Path = DEFAULT_CACHE_DIR, workers: int | None = None
) -> tuple[list[np.ndarray | None], list[tuple[str, str]]]:
    """Log-mel windows for every clip (None where it failed) and the list of ``(path, reason)`` failures."""
    try:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CacheWriteError(f"cannot create the feature cache {cache_dir} ({error.strerror or error})") from None
    jobs = [(clip.path, params, str(cache_dir)) for clip in clips]
    workers = workers or min(8, os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 50:
        results = map_in_pool(_extract_one, jobs, workers, 16, dict(desc="features", unit="clip"))
    else:
        results = [_extract_one(job) for job in tqdm(jobs, desc="features", unit="clip")]
    failures = [(clip.path, error) for clip, (_, error) in zip(clips, results) if error]
    for path, error in failures:
        log.warning("skipped unreadable clip %s (%s)", path, error)
    return [features for features, _ in results], failures


@dataclass
class WindowSet:
    """Windows of a set of clips: ``x [n, mels, frames]``, ``labels [n]``, ``clip_index [n]``.

    Labels index ``params.TRAINING_LABELS``: the six emotions first, then the auxiliary ones."""

    x: np.ndarray
    labels: np.ndarray
    clip_index: np.ndarray
    clips: list[Clip]

    @property
    def clip_labels(self) -> np.ndarray:
        return np.array([TRAINING_LABELS.index(clip.emotion) for clip in self.clips])


def window_set(clips: list[Clip], features: list[np.ndarray]) -> WindowSet:
    x = np.concatenate(features).astype(np.float32)
    counts = [len(f) for f in features]
    clip_index = np.repeat(np.arange(len(clips)), counts)
    labels = np.array([TRAINING_LABELS.index(clip.emotion) for clip in clips])[clip_index]
    return WindowSet(x, labels, clip_index, clips)


def balanced_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices with every class repeated up to the largest class's count, shuffled."""
    indices = []
    largest = np.bincount(labels).max()
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        repeats = int(np.ceil(largest / len(members)))
        indices.append(np.tile(members, repeats)[:largest])
    order = np.concatenate(indices)
    rng.shuffle(order)
    return order


def epoch_size(labels: np.ndarray) -> int:
    """Windows in one epoch: the largest of the six emotions' counts, times the six emotions present.

    Auxiliary classes share these draws rather than add to them, so they cost no training time."""
    counts = np.bincount(labels, minlength=len(TRAINING_LABELS))[: len(EMOTIONS)]
    return int(counts.max() * np.count_nonzero(counts))


def training_dataset(windows: WindowSet, batch_size: int, augment, seed: int, n_classes: int = len(EMOTIONS)):
    """An endless, class-balanced, and shuffled tf.data pipeline with ``augment`` applied, labels
    one-hot over ``n_classes`` (more than the six when the windows include auxiliary emotions)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    size = epoch_size(windows.labels)

    def epoch_order():  # called again on every repetition: a fresh balanced order each epoch
        yield balanced_order(windows.labels, rng)[:size]

    x = tf.constant(windows.x)
    y = tf.one_hot(windows.labels, n_classes)
    dataset = (
        tf.data.Dataset.from_generator(epoch_order, output_signature=tf.TensorSpec([size], tf.int64))
        .repeat()
        .unbatch()
    )
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(lambda index: (tf.gather(x, index), tf.gather(y, index)))
    if augment is not None:
        dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(lambda xb, yb: (xb[..., None], yb))
    return dataset.prefetch(tf.data.AUTOTUNE), max(1, size // batch_size)  # (dataset, steps per epoch)


def evaluation_dataset(windows: WindowSet, batch_size: int, n_classes: int = len(EMOTIONS)):
    import tensorflow as tf

    y = tf.one_hot(windows.labels, n_classes)
    return tf.data.Dataset.from_tensor_slices((windows.x[..., None], y)).batch(batch_size)
