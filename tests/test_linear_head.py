"""The Whisper model's one-layer head, read from its .keras file without TensorFlow."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ser_core.inference import artifacts
from ser_core.inference.linear_head import LinearHead, read_linear_head

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def linear_keras(tmp_path_factory) -> Path:
    from ser_core.training.embedding_model import logistic_as_keras

    rng = np.random.default_rng(0)
    model = logistic_as_keras(rng.normal(size=(4, 32)), rng.normal(size=4), classes=[0, 2, 3, 5])
    path = tmp_path_factory.mktemp("head") / "model.keras"
    artifacts.save_model(model, path)
    return path


def test_the_read_head_gives_keras_logits(linear_keras):
    import keras

    head = read_linear_head(linear_keras)
    assert isinstance(head, LinearHead) and head.kernel.shape == (32, 6)
    assert (head.input_shape, head.output_shape) == ((None, 32), (None, 6))  # as Keras reports them
    rows = np.random.default_rng(1).normal(size=(7, 32)).astype(np.float32)
    expected = keras.saving.load_model(linear_keras, safe_mode=True).predict_on_batch(rows)
    np.testing.assert_allclose(head.predict_on_batch(rows), expected, rtol=1e-5, atol=1e-4)
    assert (head.predict_on_batch(rows)[:, [1, 4]] < -1e3).all()  # emotions the data lacked stay out
    with pytest.raises(ValueError, match=r"\[n, 32\]"):
        head.predict_on_batch(rows[:, :10])


def test_other_architectures_are_left_to_keras(tiny_artifacts, tmp_path):
    assert read_linear_head(tiny_artifacts / "model.keras") is None  # the log-mel CNN
    # A linear head with an activation is not a logistic regression's logits either.
    import keras

    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(inputs))
    artifacts.save_model(model, tmp_path / "softmax.keras")
    assert read_linear_head(tmp_path / "softmax.keras") is None


def test_a_damaged_head_is_an_error_not_a_fallback(linear_keras, tmp_path):
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(linear_keras.read_bytes()[:2000])
    with pytest.raises(zipfile.BadZipFile):
        read_linear_head(truncated)
    no_weights = tmp_path / "no_weights.keras"
    with zipfile.ZipFile(linear_keras) as source, zipfile.ZipFile(no_weights, "w") as target:
        target.writestr("config.json", source.read("config.json"))
    with pytest.raises(KeyError):
        read_linear_head(no_weights)


def test_the_shipped_model_answers_without_tensorflow():
    """A cold start of the served Whisper model: 3.2-3.4 s and 700 MiB less without TensorFlow."""
    if not (REPO_ROOT / "artifacts" / "config.json").is_file():
        pytest.skip("no shipped model in artifacts/")
    code = ("import sys, numpy as np\n"
            "from ser_core.inference.predictor import Predictor\n"
            "from ser_core.inference.whisper_weights import WhisperWeightsError\n"
            "try:\n"
            "    predictor = Predictor.from_artifacts()\n"
            "except Exception as error:\n"
            "    print('SKIP', error); sys.exit(0)\n"
            "assert predictor.kind == 'whisper_embedding_head', predictor.kind\n"
            "print(predictor.logits(np.zeros((2, predictor.model.kernel.shape[0]), np.float32)).shape)\n"
            "print('tensorflow' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    if done.stdout.startswith("SKIP"):
        pytest.skip(done.stdout)
    assert done.stdout.split() == ["(2,", "6)", "False"], done.stdout


def test_a_damaged_whisper_model_is_still_called_damaged(tmp_path):
    folder = tmp_path / "artifacts"
    shipped = REPO_ROOT / "artifacts"
    if not (shipped / "config.json").is_file():
        pytest.skip("no shipped model in artifacts/")
    folder.mkdir()
    shutil.copy(shipped / "config.json", folder / "config.json")
    (folder / "model.keras").write_bytes((shipped / "model.keras").read_bytes()[:5000])
    with pytest.raises(artifacts.ModelDamagedError, match="model.keras"):
        artifacts.load_model_and_config(folder)
