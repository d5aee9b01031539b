"""A CPU-only machine runs the commands without TensorFlow's "failed call to cuInit" error line.

TensorFlow logs that line (``E0000 ... cuda_platform.cc ... CUDA error: Failed call to cuInit``)
when it looks for a GPU on a machine without the NVIDIA driver; ``ser_core`` silences it before
TensorFlow is imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HAS_NVIDIA_DRIVER = Path("/proc/driver/nvidia").exists()

pytestmark = pytest.mark.skipif(HAS_NVIDIA_DRIVER, reason="this machine has the NVIDIA driver")


def _run(*arguments: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, *arguments], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


def test_looking_for_a_gpu_prints_no_cuinit_error():
    done = _run("-c", "import ser_core, tensorflow as tf; print(tf.config.list_physical_devices('GPU'))")
    assert done.returncode == 0, done.stderr
    assert "cuInit" not in done.stderr and "E0000" not in done.stderr, done.stderr


def test_tensorflow_starts_without_its_native_start_up_lines():
    done = _run("-c", "import ser_core; ser_core.import_tensorflow_quietly(); import keras; "
                      "import sys; print('after', file=sys.stderr)")
    assert done.returncode == 0, done.stderr
    assert "I0000" not in done.stderr and "cuda drivers" not in done.stderr, done.stderr
    assert done.stderr.strip().endswith("after"), "standard error must work again after the import"


@pytest.mark.slow
def test_predict_prints_no_cuinit_error(tiny_artifacts, tmp_path):
    import audio_factory

    clip = audio_factory.write_audio(tmp_path / "clip.wav", audio_factory.emotional_speech("sad", 2.0, 16_000),
                                     16_000)
    done = _run("-m", "ser_core.predict", str(clip), "--artifacts", str(tiny_artifacts))
    assert done.returncode == 0, done.stderr
    assert "cuInit" not in done.stderr and "E0000" not in done.stderr, done.stderr
    assert "I0000" not in done.stderr, done.stderr
