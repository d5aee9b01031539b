"""Time the inference path on this machine: decode + speech detection + features + model for a 3 s clip.

For a Whisper model "features" is the whole front end (speech detection, level, Whisper log-mel and
encoder: ``whisper_front.embed_speech``) and "model" the head on one standardised embedding.

    python -m benchmarks.latency [--artifacts DIR] [--repeats 50]

Prints the median and 90th percentile of each stage and of the whole predict_file call.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import soundfile

from ser_core.inference.audio import load_audio
from ser_core.inference.features import clip_features
from ser_core.inference.predictor import WHISPER_KIND, Predictor
from ser_core.inference.speech import detect_speech


REAL_CLIP = (Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess" / "Actor_01"
             / "03-01-05-02-01-01-01.flac")


def speech_clip(seconds: float, sample_rate: int) -> np.ndarray:
    """A real RAVDESS clip cut or looped to ``seconds`` (synthetic speech without the shared data):
    the predictor answers for speech only, and plain harmonics are not speech to its detector."""
    if REAL_CLIP.is_file():
        wave, rate = soundfile.read(REAL_CLIP, dtype="float32")
        wave = load_audio(soundfile_bytes(wave, rate), sample_rate)
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        import audio_factory

        wave = audio_factory.speech_like(seconds, sample_rate)
    return np.resize(wave, int(seconds * sample_rate)).astype(np.float32)


def soundfile_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, sample_rate, format="WAV")
    return buffer.getvalue()


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
    print(f"load average {' '.join(f'{v:.1f}' for v in __import__('os').getloadavg())}")

    start = time.perf_counter()
    predictor = Predictor.from_artifacts(args.artifacts)
    print(f"model load (once per process): {time.perf_counter() - start:.2f} s, "
          f"{predictor.model.count_params():,} parameters")
    params = predictor.params
    clip = soundfile_bytes(speech_clip(3.0, params.sample_rate), params.sample_rate)
    wave = load_audio(clip, params.sample_rate)
    if predictor.kind == WHISPER_KIND:
        from ser_core.inference.whisper_front import embed_speech

        front_end = lambda: embed_speech(wave, predictor.front_end, predictor.layers)  # noqa: E731
        features = np.zeros((1, len(predictor.config["standardisation"]["default"]["mean"])), np.float32)
    else:
        front_end = lambda: clip_features(wave, params)  # noqa: E731
        features, _ = clip_features(wave, params)

    stages = {
        "decode (3 s wav)": lambda: load_audio(clip, params.sample_rate),
        "speech detection": lambda: detect_speech(wave),
        "features": front_end,
        "model": lambda: predictor.logits(features),
        "predict_file total": lambda: predictor.predict_file(clip),
    }
    print(f"{'stage':<20} {'median ms':>10} {'p90 ms':>8}")
    for name, function in stages.items():
        times = timed(function, args.repeats)
        print(f"{name:<20} {np.median(times):10.2f} {np.percentile(times, 90):8.2f}")


if __name__ == "__main__":
    main()
