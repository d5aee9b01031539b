"""Peak memory and time of classifying long recordings, as ``python -m ser_core.predict`` does.

    python -m benchmarks.long_recording [--minutes 10 60] [--artifacts DIR] [--data ../shared/data]

Runs the shipped model (the Whisper one); ``--artifacts`` names another model folder, e.g. the log-mel
CNN ensemble checked out of git (``git archive 70b5af1 artifacts | tar -x -C /tmp/cnn``).

Builds each recording in a temporary folder from real RAVDESS clips (speech with its own leading
and trailing silence) joined by pauses of 0.5-4 s, written block by block as 16 kHz FLAC, then
classifies it in a fresh child process with ``Predictor.predict_file(max_seconds=None,
keep_features=False)`` and prints, per file: length, wall time, speed (audio seconds per second),
the child's peak resident memory (``resource.getrusage``) before and after, and the peak of
Python/numpy allocations during the call (``tracemalloc``). Without the RAVDESS folder the speech
is synthetic (``tests/audio_factory.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 16_000

# Run in the child process: load the model, then measure one predict_file call.
_CHILD = r"""
import json, os, resource, sys, time, tracemalloc
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from ser_core.inference.predictor import Predictor
predictor = Predictor.from_artifacts(sys.argv[2] or None)
rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
tracemalloc.start()
start = time.perf_counter()
result = predictor.predict_file(sys.argv[1], max_seconds=None, keep_features=False)
seconds = time.perf_counter() - start
_, traced_peak = tracemalloc.get_traced_memory()
print(json.dumps({"seconds": seconds, "rss_loaded_mb": rss_loaded,
                  "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "traced_peak_mb": traced_peak / 2**20, "duration_s": result.duration_s,
                  "speech_s": result.speech_seconds, "segments": len(result.segments),
                  "windows": len(result.windows), "label": result.label,
                  "model": predictor.config.get("model_name", predictor.kind)}))
"""


def _clips(data: Path) -> list[Path]:
    return sorted((data / "ravdess").glob("Actor_*/*.flac"))


def write_recording(path: Path, minutes: float, data: Path, seed: int = 0) -> None:
    """Speech clips and pauses, written block by block (the generator holds one clip at a time)."""
    rng = np.random.default_rng(seed)
    clips = _clips(data)
    target = int(minutes * 60 * SAMPLE_RATE)
    written = 0
    with soundfile.SoundFile(path, "w", SAMPLE_RATE, 1, format="FLAC", subtype="PCM_16") as out:
        while written < target:
            if clips:
                wave, rate = soundfile.read(clips[int(rng.integers(len(clips)))], dtype="float32")
                assert rate == SAMPLE_RATE
            else:
                sys.path.insert(0, str(REPO_ROOT / "tests"))
                import audio_factory

                wave = audio_factory.speech_like(float(rng.uniform(1.5, 4.0)), seed=int(rng.integers(1 << 30)))
            pause = np.zeros(int(rng.uniform(0.5, 4.0) * SAMPLE_RATE), np.float32)
            block = np.concatenate([wave, pause])[: target - written]
            out.write(block)
            written += block.size


def measure(path: Path, artifacts: str) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), artifacts], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 60.0])
    parser.add_argument("--artifacts", default="", help="model folder (default: artifacts/)")
    parser.add_argument("--data", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    args = parser.parse_args(argv)

    source = "RAVDESS clips" if _clips(args.data) else "synthetic speech"
    print(f"recordings of {source} and 0.5-4 s pauses, 16 kHz FLAC; cpu count {os.cpu_count()}")
    print(f"{'length':>8} {'file MB':>8} {'time s':>8} {'x real time':>11} {'RSS loaded MB':>13} "
          f"{'RSS peak MB':>11} {'traced peak MB':>14} {'speech min':>10} {'segments':>8} {'windows':>7}")
    model = None
    with tempfile.TemporaryDirectory() as folder:
        for minutes in args.minutes:
            path = Path(folder) / f"recording_{minutes:g}min.flac"
            started = time.perf_counter()
            write_recording(path, minutes, args.data)
            built = time.perf_counter() - started
            figures = measure(path, args.artifacts)
            if model is None:
                model = figures["model"]
                print(f"model: {model}; load average {os.getloadavg()[0]:.1f}", flush=True)
            print(f"{minutes:>6g} m {path.stat().st_size / 2**20:8.1f} {figures['seconds']:8.1f} "
                  f"{figures['duration_s'] / figures['seconds']:11.1f} {figures['rss_loaded_mb']:13.0f} "
                  f"{figures['rss_peak_mb']:11.0f} {figures['traced_peak_mb']:14.1f} "
                  f"{figures['speech_s'] / 60:10.1f} {figures['segments']:8d} {figures['windows']:7d}"
                  f"   (built in {built:.0f} s)", flush=True)
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
