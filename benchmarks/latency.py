"""Time the inference path on this machine: decode + features + model for a 3 s clip.

    python -m benchmarks.latency [--artifacts DIR] [--repeats 50]

Prints the median and 90th percentile of each stage and of the whole predict_file call.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import soundfile

from ser_core.inference.audio import load_audio
from ser_core.inference.features import clip_features
from ser_core.inference.predictor import Predictor


def speech_like(seconds: float, sample_rate: int) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 3.5 * t)) ** 2
    return (0.2 * voiced * envelope).astype(np.float32)


def timed(function, repeats: int) -> np.ndarray:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return np.array(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--artifacts")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()

    start = time.perf_counter()
    predictor = Predictor.from_artifacts(args.artifacts)
    print(f"model load (once per process): {time.perf_counter() - start:.2f} s, "
          f"{predictor.model.count_params():,} parameters")
    params = predictor.params
    buffer = io.BytesIO()
    soundfile.write(buffer, speech_like(3.0, params.sample_rate), params.sample_rate, format="WAV")
    clip = buffer.getvalue()
    wave = load_audio(clip, params.sample_rate)
    features, _ = clip_features(wave, params)

    stages = {
        "decode (3 s wav)": lambda: load_audio(clip, params.sample_rate),
        "features": lambda: clip_features(wave, params),
        "model": lambda: predictor.logits(features),
        "predict_file total": lambda: predictor.predict_file(clip),
    }
    print(f"{'stage':<20} {'median ms':>10} {'p90 ms':>8}")
    for name, function in stages.items():
        times = timed(function, args.repeats)
        print(f"{name:<20} {np.median(times):10.2f} {np.percentile(times, 90):8.2f}")


if __name__ == "__main__":
    main()
