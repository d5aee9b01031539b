"""What the input normalisation of the CNNs makes them indifferent to."""

from __future__ import annotations

import numpy as np
import pytest

from ser_core.models import build_model

SHAPE = (64, 101, 1)


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    return np.random.default_rng(0).uniform(-50, 0, (3, *SHAPE)).astype("float32")


def test_ser_cnn_ignores_the_level(windows):
    model = build_model("ser_cnn", SHAPE, 6)
    np.testing.assert_allclose(model.predict(windows + 7.0, verbose=0), model.predict(windows, verbose=0),
                               atol=1e-4)


def test_band_norm_also_ignores_each_band_s_colour(windows):
    colour = np.linspace(-6, 6, SHAPE[0], dtype="float32")[None, :, None, None]  # a tilt across bands
    band_norm, plain = build_model("ser_cnn_band_norm", SHAPE, 6), build_model("ser_cnn", SHAPE, 6)
    np.testing.assert_allclose(band_norm.predict(windows + colour, verbose=0), band_norm.predict(windows, verbose=0),
                               atol=1e-4)
    assert not np.allclose(plain.predict(windows + colour, verbose=0), plain.predict(windows, verbose=0), atol=1e-4)
