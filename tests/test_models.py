"""What the input normalisation of the CNNs makes them indifferent to, and how TensorFlow runs them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ser_core.training.models import build_model

SHAPE = (64, 101, 1)


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return np.random.default_rng(0).uniform(-50, 0, (3, *SHAPE)).astype("float32")


@pytest.mark.parametrize("arch", ["ser_cnn", "ser_cnn_fast", "ser_cnn_lite", "ser_cnn_wide", "ser_tdnn", "ser_crnn"])
def test_ser_cnn_ignores_the_level(windows, arch):
    model = build_model(arch, SHAPE, 6)
    np.testing.assert_allclose(model.predict(windows + 7.0, verbose=0), model.predict(windows, verbose=0),
                               atol=1e-4)


def test_ser_cnn_fast_has_the_same_weights_and_steps_over_time_in_pairs(windows):
    import keras

    fast, plain = build_model("ser_cnn_fast", SHAPE, 6), build_model("ser_cnn", SHAPE, 6)
    assert fast.count_params() == plain.count_params()

    def first_conv_frames(model) -> int:
        return next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)).output.shape[2]

    assert (first_conv_frames(plain), first_conv_frames(fast)) == (101, 51)
    fast.set_weights(plain.get_weights())  # same layers, same shapes: only the stride differs
    assert not np.allclose(fast.predict(windows, verbose=0), plain.predict(windows, verbose=0), atol=1e-4)


def test_ser_cnn_lite_pools_first_which_changes_nothing_while_batchnorm_scales_are_positive(windows):
    import keras

    from ser_core.training.models import ser_cnn

    lite, pool_after = build_model("ser_cnn_lite", SHAPE, 6), ser_cnn(SHAPE, 6, width=16)
    assert lite.count_params() == pool_after.count_params() == 130_134
    lite.set_weights(pool_after.get_weights())  # the same layers in another order
    np.testing.assert_allclose(lite.predict(windows, verbose=0), pool_after.predict(windows, verbose=0), atol=1e-5)

    # A negative scale (set in both) turns a channel's max into a min: then the order matters.
    for model in (lite, pool_after):
        first_norm = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
        gamma, *rest = first_norm.get_weights()
        first_norm.set_weights([-gamma, *rest])
    assert not np.allclose(lite.predict(windows, verbose=0), pool_after.predict(windows, verbose=0), atol=1e-5)


def test_band_norm_also_ignores_each_band_s_colour(windows):
    colour = np.linspace(-6, 6, SHAPE[0], dtype="float32")[None, :, None, None]  # a tilt across bands
    band_norm, plain = build_model("ser_cnn_band_norm", SHAPE, 6), build_model("ser_cnn", SHAPE, 6)
    np.testing.assert_allclose(band_norm.predict(windows + colour, verbose=0), band_norm.predict(windows, verbose=0),
                               atol=1e-4)
    assert not np.allclose(plain.predict(windows + colour, verbose=0), plain.predict(windows, verbose=0), atol=1e-4)


def test_ser_core_turns_on_tensorflows_onednn_kernels_unless_told_not_to():
    import subprocess
    import sys

    code = "import os, ser_core; print(os.environ['TF_ENABLE_ONEDNN_OPTS'])"
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    def setting(extra: dict[str, str]) -> str:
        return subprocess.run([sys.executable, "-c", code], env={**env, **extra}, capture_output=True, text=True,
                              check=True, cwd=Path(__file__).resolve().parents[1]).stdout.strip()

    assert setting({}) == "1"
    assert setting({"TF_ENABLE_ONEDNN_OPTS": "0"}) == "0"


def test_dropping_the_auxiliary_outputs_keeps_the_six_emotions_logits(windows, tmp_path):
    from ser_core.inference import artifacts
    from ser_core.training.models import without_auxiliary_outputs

    trained_with_eight = build_model("ser_cnn_lite", SHAPE, 8)
    six = without_auxiliary_outputs(trained_with_eight, 6)
    assert six.output_shape == (None, 6) and six.name == "ser_cnn_lite"
    assert trained_with_eight.count_params() - six.count_params() == 2 * (256 + 1)  # two rows of the last layer
    np.testing.assert_allclose(six.predict(windows, verbose=0),
                               trained_with_eight.predict(windows, verbose=0)[:, :6], atol=1e-5)
    assert without_auxiliary_outputs(six, 6) is six
    artifacts.save_model(six, tmp_path / "six.keras")  # a plain functional model: saves and loads in safe mode
    np.testing.assert_allclose(artifacts.load_model(tmp_path / "six.keras").predict(windows, verbose=0),
                               six.predict(windows, verbose=0), atol=1e-6)
