"""The simulated browser channel (ser_core.data.channel)."""

from __future__ import annotations

import numpy as np
import pytest

import audio_factory
from ser_core.data.channel import Channel, automatic_gain, band_limit, opus_round_trip


def test_opus_round_trip_keeps_length_and_timing():
    pytest.importorskip("av")
    wave = audio_factory.emotional_speech("angry", 1.5, seed=1) * 0.3
    out = opus_round_trip(wave, 16_000, 16)
    assert out.shape == wave.shape and out.dtype == np.float32
    assert np.corrcoef(out, wave)[0, 1] > 0.8  # no codec delay left in


def test_band_limit_removes_what_a_cheap_microphone_cannot_hear():
    low = audio_factory.tone(60.0, 1.0)
    mid = audio_factory.tone(1000.0, 1.0)
    assert np.std(band_limit(low, 16_000, 200.0, 4000.0)) < 0.05 * np.std(low)
    assert np.std(band_limit(mid, 16_000, 200.0, 4000.0)) > 0.8 * np.std(mid)


def test_automatic_gain_pulls_quiet_speech_up():
    quiet = audio_factory.tone(200.0, 2.0, amplitude=0.003)
    assert np.std(automatic_gain(quiet, 16_000, 0.7)) > 5 * np.std(quiet)
    np.testing.assert_allclose(automatic_gain(quiet, 16_000, 0.0), quiet)


def test_browser_channel_is_seeded_and_finite():
    pytest.importorskip("av")
    wave = audio_factory.emotional_speech("sad", 1.0, seed=2) * 0.3
    channel = Channel.browser()
    first = channel(wave, np.random.default_rng(5))
    again = channel(wave, np.random.default_rng(5))
    np.testing.assert_array_equal(first, again)
    assert first.shape == wave.shape and np.isfinite(first).all()
