"""Diagnostic: Whisper's encoder on unpadded speech (the shipped front end) against the 30 s padded input.

    python -m benchmarks.whisper_padding [--every 8] [--workers 2]

On every ``--every``-th clip of each shared corpus, the same speech (VAD + level, as
``embedding.embed_waveform``) goes through the encoder once padded to 30 s (frame means over the
speech frames only), and the unpadded means come from the embedding cache. Both are scored with the
chosen head (blocks 1-4, means, logistic regression) in leave-one-corpus-out on that subset.
Padding costs about 1.2 s a clip, so it is a diagnostic, not a front end the latency allows.
"""

from __future__ import annotations

import argparse
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from benchmarks.whisper_screen import load_set
from ser_core.evaluation import embedding_protocols as protocols
from ser_core.inference import embedding
from ser_core.inference.audio import load_audio
from ser_core.inference.embedding_head import head_input
from ser_core.inference.params import EmbeddingParams
from ser_core.training.embedding_heads import logistic_head

LAYERS = (1, 2, 3, 4)


def _padded_means(path: str) -> np.ndarray:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    params = EmbeddingParams()
    wave = load_audio(path, params.sample_rate)
    kept, level_samples, _ = embedding.speech_part(wave, params)
    kept = embedding.level_normalise(kept, level_samples, params)[: 30 * params.sample_rate]
    hidden = embedding.load_encoder(params.model, params.weights_sha256).encode(kept, pad_to_30s=True).hidden_states
    valid = max(1, math.ceil(len(kept) / 320))
    return hidden[:, :valid].mean(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--every", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("data_cache/padded_means.npz"))
    args = parser.parse_args()
    data, _ = load_set(args.data_root)
    subset = np.zeros(len(data), bool)
    for name in np.unique(data.corpus):
        subset[np.flatnonzero(data.corpus == name)[:: args.every]] = True
    data = data.subset(subset)
    if args.out.is_file():
        padded = np.load(args.out, allow_pickle=False)["means"]
    else:
        start = time.perf_counter()
        with ProcessPoolExecutor(args.workers) as pool:
            padded = np.stack(list(tqdm(pool.map(_padded_means, data.path, chunksize=4), total=len(data))))
        np.savez(args.out, means=padded, paths=data.path)
        print(f"padded encoder: {len(data)} clips in {time.perf_counter() - start:.0f} s")
    unpadded = head_input(data.embeddings, LAYERS, "mean")
    padded_features = padded[:, list(LAYERS)].reshape(len(data), -1)
    for name, features in (("unpadded", unpadded), ("padded 30 s", padded_features)):
        for norm in ("global", "per_corpus", "adapted"):
            results = protocols.leave_one_corpus_out(features, data.labels, data.corpus, logistic_head(C=0.1),
                                                     normalisation=norm)
            summary = protocols.summarise(results)
            print(f"{name:12s} loco/{norm:10s} mean UAR {100 * summary['mean_uar']:.1f}  " +
                  " ".join(f"{c} {100 * u:.1f}" for c, u in summary["uar"].items()), flush=True)


if __name__ == "__main__":
    main()
