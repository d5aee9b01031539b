"""Time the Whisper embeddings of every clip of the four shared corpora, from scratch or cached.

    python -m benchmarks.embedding_extraction [--data-root ../shared/data] [--workers 2] [--fresh]

Lists every audio file under ``ravdess/``, ``tess/``, ``nemo/`` and ``turev/`` (labels do not
matter for the timing) and fills the embedding cache; ``--fresh`` uses an empty cache folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from ser_core.data.embedding_cache import DEFAULT_EMBEDDING_CACHE, embed_files
from ser_core.inference.params import EmbeddingParams

CORPORA = ("ravdess", "tess", "nemo", "turev")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fresh", action="store_true", help="time from scratch in a temporary cache")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_EMBEDDING_CACHE)
    args = parser.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="emb_")) if args.fresh else args.cache_dir
    total_clips, start = 0, time.perf_counter()
    for corpus in CORPORA:
        paths = sorted(str(p) for p in (args.data_root / corpus).rglob("*.flac"))
        t0 = time.perf_counter()
        _, failures = embed_files(paths, EmbeddingParams(), cache_dir=cache, workers=args.workers, desc=corpus)
        total_clips += len(paths)
        print(f"{corpus}: {len(paths)} clips, {len(failures)} failures, {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"all: {total_clips} clips in {time.perf_counter() - start:.0f} s ({args.workers} workers)")


if __name__ == "__main__":
    main()
