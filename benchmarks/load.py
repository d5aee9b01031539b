"""Time a cold start of the served model and its peak memory: what the app pays once per process.

    python -m benchmarks.load [--artifacts DIR]

Run it in a fresh process (it is one): it prints the seconds to import ``ser_core``, to load the
model (``Predictor.from_artifacts``: the Whisper encoder's weights and the head; TensorFlow too for
a model that needs Keras, the log-mel CNNs), and to make the first prediction of a 3 s clip (graph
tracing for a Keras model), with the process's peak resident memory after each step, and whether
TensorFlow was loaded.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time


def peak_mib() -> float:
    """The process's peak resident memory so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--artifacts", help="model folder (default: the served artifacts/)")
    args = parser.parse_args()
    print(f"{'step':<28} {'seconds':>8} {'peak MiB':>9}")
    baseline = peak_mib()
    print(f"{'python started':<28} {'':>8} {baseline:9.0f}")

    start = time.perf_counter()
    from benchmarks.latency import speech_clip
    from ser_core.inference.predictor import Predictor
    print(f"{'import ser_core':<28} {time.perf_counter() - start:8.2f} {peak_mib():9.0f}")

    start = time.perf_counter()
    predictor = Predictor.from_artifacts(args.artifacts)
    print(f"{'load model':<28} {time.perf_counter() - start:8.2f} {peak_mib():9.0f}")

    wave = speech_clip(3.0, predictor.params.sample_rate)
    start = time.perf_counter()
    predictor.predict_wave(wave, predictor.params.sample_rate)
    print(f"{'first prediction (3 s)':<28} {time.perf_counter() - start:8.2f} {peak_mib():9.0f}")
    print(f"TensorFlow loaded: {'yes' if 'tensorflow' in sys.modules else 'no'}")


if __name__ == "__main__":
    main()
