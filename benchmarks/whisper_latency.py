"""End-to-end latency of the embedding model on a 3 s clip: VAD, level, Whisper encoder, head.

    python -m benchmarks.whisper_latency [--clip PATH] [--runs 15] [--layers 2,3,4]

The head is a one-Dense Keras model of the shipped size (weights random: its cost does not depend
on them). Prints the median and minimum of ``--runs`` calls, the front end alone, and the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import soundfile

from ser_core.inference.embedding import embed_waveform, load_encoder
from ser_core.inference.embedding_head import head_input
from ser_core.inference.params import EMOTIONS, EmbeddingParams


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clip", type=Path,
                        default=Path("../shared/data/ravdess/Actor_01/03-01-05-02-01-01-01.flac"))
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--layers", default="2,3,4")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    from ser_core.training.embedding_model import logistic_as_keras

    wave, rate = soundfile.read(args.clip, dtype="float32")
    wave = wave[: 3 * rate]
    params = EmbeddingParams()
    layers = tuple(int(v) for v in args.layers.split(","))
    load_encoder(params.model, params.weights_sha256)
    pooled = embed_waveform(wave, params).pooled
    n_features = head_input(pooled, layers).shape[0]
    rng = np.random.default_rng(0)
    head = logistic_as_keras(rng.normal(0, 0.01, (len(EMOTIONS), n_features)), np.zeros(len(EMOTIONS)), range(6))
    mean, std = np.zeros(n_features, np.float32), np.ones(n_features, np.float32)

    def answer() -> np.ndarray:
        features = (head_input(embed_waveform(wave, params).pooled, layers) - mean) / std
        return np.asarray(head(features[None].astype(np.float32), training=False))

    answer()
    totals, fronts = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        embed_waveform(wave, params)
        fronts.append(time.perf_counter() - start)
        start = time.perf_counter()
        answer()
        totals.append(time.perf_counter() - start)
    print(f"3 s clip end to end: median {1000 * np.median(totals):.0f} ms, min {1000 * min(totals):.0f} ms; "
          f"front end alone median {1000 * np.median(fronts):.0f} ms; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
