"""Time the inference path on this machine: decode + speech detection + features + model for a 3 s clip.

For a Whisper model "features" is the whole front end (speech detection, level, Whisper log-mel and
encoder: ``whisper_front.embed_speech``) and "model" the head on one standardised embedding.

    python -m benchmarks.latency [--artifacts DIR] [--repeats 50]

Prints the model load time (and, for a Whisper model, a cold load in a fresh process serving
float32 and int8), the median and 90th percentile of each stage and of the whole
``predict_file`` call. For a Whisper model it then times three ways of running the encoder side by
side, each a whole ``predict_file`` of the same 3 s clip and the encoder pass alone:

- ``all blocks float32``: the path before issue 21, all six blocks in numpy float32;
- ``stop float32``: numpy float32, stopping after the highest layer the head reads;
- ``stop int8``: the same blocks as an int8 onnxruntime graph (``whisper_int8``).

The variants run interleaved in one loop (each repeat runs every variant once, in a shuffled
order), so load from other processes falls on all of them alike. One thread throughout: BLAS is
limited to one thread when the model loads, and the onnxruntime sessions use one.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
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


class _AllBlocks:
    """The encoder as it ran before issue 21: every block, whatever the head reads."""

    def __init__(self, encoder) -> None:
        self._encoder = encoder

    def log_mel(self, audio, sr):
        return self._encoder.log_mel(audio, sr=sr)

    def forward(self, mel, n_blocks=None):
        return self._encoder.forward(mel)


def _load_times(predictor: Predictor) -> None:
    """How long the encoder variants take to load, measured fresh in this process."""
    from ser_core.inference import whisper_int8
    from ser_core.inference.whisper_encoder import WhisperEncoder
    from ser_core.inference.whisper_weights import resolve_weights

    params, n_blocks = predictor.front_end, max(predictor.layers)
    start = time.perf_counter()
    weights = resolve_weights(params.model, allow_download=False)
    full = WhisperEncoder.from_model_bin(weights.files)
    print(f"  float32 encoder from model.bin (hash check cached): {time.perf_counter() - start:.2f} s")
    whisper_int8._LOADED.clear()
    start = time.perf_counter()
    full.variant(n_blocks=n_blocks, precision="int8")
    print(f"  + int8 graph of {n_blocks} blocks, from the disk cache: {time.perf_counter() - start:.2f} s")
    whisper_int8._LOADED.clear()
    with tempfile.TemporaryDirectory() as empty:
        start = time.perf_counter()
        full.variant(n_blocks=n_blocks, precision="int8", cache_dir=empty)
        print(f"  + int8 graph of {n_blocks} blocks, first build (no disk cache): {time.perf_counter() - start:.2f} s")


_COLD_LOAD = """
import sys, time
start = time.perf_counter()
from ser_core.inference.predictor import Predictor
imported = time.perf_counter()
Predictor.from_artifacts(sys.argv[1])
print(imported - start, time.perf_counter() - imported)
"""


def cold_loads(artifacts_dir: Path, repeats: int = 3) -> None:
    """``Predictor.from_artifacts`` in a fresh process, the config serving float32 and int8 in turn
    (the int8 graph read from the disk cache, as on every start after the first)."""
    times: dict[str, list[tuple[float, float]]] = {"float32": [], "int8": []}
    with tempfile.TemporaryDirectory() as scratch:
        folders = {}
        for precision in times:
            folder = Path(scratch) / precision
            shutil.copytree(artifacts_dir, folder, ignore=shutil.ignore_patterns("previous"))
            config = json.loads((folder / "config.json").read_text())
            config["serving"] = {"encoder_precision": precision}
            (folder / "config.json").write_text(json.dumps(config))
            folders[precision] = folder
        for _ in range(repeats):
            for precision, folder in folders.items():
                done = subprocess.run([sys.executable, "-c", _COLD_LOAD, str(folder)], capture_output=True,
                                      text=True, check=True, cwd=Path(__file__).resolve().parents[1])
                imported, loaded = (float(value) for value in done.stdout.split()[-2:])
                times[precision].append((imported, loaded))
    print(f"\nmodel load in a fresh process, {repeats} interleaved runs each (median)")
    for precision, runs in times.items():
        imports, loads = np.median(np.array(runs), axis=0)
        print(f"  serving {precision}: import {imports:.2f} s, Predictor.from_artifacts {loads:.2f} s")


def compare_encoders(predictor: Predictor, clip: bytes, wave: np.ndarray, repeats: int) -> None:
    """The three encoder variants, interleaved, end to end and encoder alone."""
    from ser_core.inference import whisper_front
    from ser_core.inference.embedding import load_encoder

    params, layers = predictor.front_end, predictor.layers
    full = load_encoder(params.model, params.weights_sha256)
    n_blocks = max(1, max(layers))
    encoders = {
        f"all {full.n_layers} blocks float32 (before)": _AllBlocks(full),
        f"stop after {n_blocks} float32": full.variant(n_blocks=n_blocks),
        f"stop after {n_blocks} int8": full.variant(n_blocks=n_blocks, precision="int8"),
    }
    predictors = {name: Predictor(predictor.model, predictor.config, encoder=encoder)
                  for name, encoder in encoders.items()}
    # The encoder's input: the joined, level-normalised speech of the clip, as the front end feeds it.
    embedded = whisper_front.embed_speech(wave, params, layers, encoder=full)
    mels = embedded.log_mel
    answers = {name: p.predict_file(clip).probabilities for name, p in predictors.items()}  # warm-up too
    for encoder in encoders.values():
        for mel in mels:
            encoder.forward(mel, n_blocks)
    end_to_end = {name: [] for name in encoders}
    encoder_only = {name: [] for name in encoders}
    rng = np.random.default_rng(0)
    for _ in range(repeats):
        for name in rng.permutation(list(encoders)):
            start = time.perf_counter()
            predictors[name].predict_file(clip)
            end_to_end[name].append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            for mel in mels:
                encoders[name].forward(mel, n_blocks)
            encoder_only[name].append((time.perf_counter() - start) * 1000)
    print(f"\nencoder variants, {repeats} interleaved repeats, one thread, 3 s clip "
          f"({sum(m.shape[1] for m in mels)} mel frames of speech)")
    print(f"{'variant':<28} {'end to end median':>18} {'p90':>7} {'encoder median':>15} {'p90':>7}")
    for name in encoders:
        e2e, enc = np.array(end_to_end[name]), np.array(encoder_only[name])
        print(f"{name:<28} {np.median(e2e):15.1f} ms {np.percentile(e2e, 90):7.1f} "
              f"{np.median(enc):12.1f} ms {np.percentile(enc, 90):7.1f}")
    reference = answers[next(iter(answers))]
    for name, probabilities in answers.items():
        gap = max(abs(probabilities[e] - reference[e]) for e in reference)
        print(f"  {name}: largest probability change against the first variant {gap:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--artifacts")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")

    start = time.perf_counter()
    predictor = Predictor.from_artifacts(args.artifacts)
    seconds = time.perf_counter() - start
    model = predictor.model
    n_parameters = model.count_params() if hasattr(model, "count_params") else model.kernel.size + model.bias.size
    print(f"model load (once per process): {seconds:.2f} s, {n_parameters:,} head parameters")
    params = predictor.params
    clip = soundfile_bytes(speech_clip(3.0, params.sample_rate), params.sample_rate)
    wave = load_audio(clip, params.sample_rate)
    if predictor.kind == WHISPER_KIND:
        from ser_core.inference.whisper_front import embed_speech

        print(f"  encoder as configured: {predictor._encoder.precision} blocks, "
              f"stopping after block {predictor._encoder.n_blocks}")
        _load_times(predictor)
        front_end = lambda: embed_speech(wave, predictor.front_end, predictor.layers,  # noqa: E731
                                         encoder=predictor._encoder)
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
    print(f"\nthe model as configured, stage by stage\n{'stage':<20} {'median ms':>10} {'p90 ms':>8}")
    for name, function in stages.items():
        times = timed(function, args.repeats)
        print(f"{name:<20} {np.median(times):10.2f} {np.percentile(times, 90):8.2f}")
    if predictor.kind == WHISPER_KIND:
        compare_encoders(predictor, clip, wave, args.repeats)
        from ser_core.inference import artifacts

        cold_loads(Path(args.artifacts or artifacts.artifacts_dir()))


if __name__ == "__main__":
    main()
