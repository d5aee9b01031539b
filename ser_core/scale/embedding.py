"""``train.py``'s embedding cache filled on Ray: a corpus embedded on a cluster, then trained on locally.

The workers compute each missing clip's pooled Whisper embedding
(:func:`ser_core.inference.embedding.embed_waveform`, exactly what
:func:`ser_core.data.embedding_cache.embed_files` computes) and send it back; the driver writes it
where the cache keeps it (:func:`ser_core.data.embedding_cache.cached_file`), so the usual cached
read that follows finds every clip. On a cluster the clips' paths must be readable on every node
(a shared filesystem, or fsspec URLs).
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ser_core.data.embedding_cache import DEFAULT_EMBEDDING_CACHE, cache_folder, cached_file
from ser_core.inference import artifacts
from ser_core.inference.params import EmbeddingParams
from ser_core.scale.workers import EmbeddingWorker

__all__ = ["embed_on_ray"]

log = logging.getLogger(__name__)


def embed_on_ray(paths: Sequence[str | Path], params: EmbeddingParams = EmbeddingParams(), *,
                 cache_dir: str | Path = DEFAULT_EMBEDDING_CACHE, workers: int | None = None,
                 address: str | None = None, batch_files: int = 8, progress: bool | None = None,
                 ) -> tuple[int, list[tuple[str, str]]]:
    """Fill the embedding cache for ``paths`` on Ray; the clips already cached are not sent.

    Parameters
    ----------
    workers : int, optional
        A local Ray with this many CPUs (default: all); ignored with ``address``.
    address : str, optional
        An existing Ray cluster (``auto``, ``ray://HOST:10001``).

    Returns
    -------
    computed : int
        Clips embedded now.
    failures : list of (path, reason)
        Clips that could not be embedded (the cached read that follows leaves them out and logs them).
    """
    from tqdm import tqdm

    from ser_core.scale.cluster import start_ray
    from ser_core.scale.jobs import stream

    folder = cache_folder(params, cache_dir)
    missing = sorted({str(path) for path in paths if not cached_file(folder, path).is_file()})
    if not missing:
        return 0, []
    start = time.perf_counter()
    import ray as ray_module

    started_here = not ray_module.is_initialized()
    ray = start_ray(workers, address)
    pool = max(1, min(workers or 10**6, int(ray.cluster_resources().get("CPU", 1)), len(missing)))
    failures: list[tuple[str, str]] = []
    computed = 0
    with tqdm(total=len(missing), desc="Whisper embeddings on Ray", unit="clip", disable=None if progress is None
              else not progress) as bar:
        for batch in stream(ray, [{"path": path} for path in missing], EmbeddingWorker, {"params": params}, pool,
                            batch_files):
            for path, data, error in zip(batch["path"], batch["array"], batch["error"]):
                if error:
                    failures.append((str(path), str(error)))
                    log.warning("no embedding for %s (%s)", path, error)
                    continue
                artifacts.save_array(cached_file(folder, str(path)), np.load(io.BytesIO(data), allow_pickle=False))
                computed += 1
            bar.update(len(batch["path"]))
    if started_here:  # the workers' memory is free again before training
        ray.shutdown()
    log.info("%d clips embedded on Ray (%d workers) in %.0f s", computed, pool, time.perf_counter() - start)
    return computed, failures
