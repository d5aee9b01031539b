"""On-the-fly augmentation of log-mel batches (ser_core.training.augment)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from audio_factory import emotional_speech  # noqa: E402
from ser_core.training import augment as aug  # noqa: E402
from ser_core.training.augment import AugmentConfig, make_augmenter, to_db  # noqa: E402
from ser_core.inference.features import log_mel, mel_frequencies  # noqa: E402
from ser_core.inference.params import EMOTIONS, FeatureParams  # noqa: E402

P = FeatureParams()
OFF = AugmentConfig(shift_fraction=0.0, warp=0.0, noise_probability=0.0, reverb_probability=0.0,
                    band_limit_probability=0.0, freq_masks=0, time_masks=0, mixup_probability=0.0)


@pytest.fixture(scope="module")
def batch():
    """Eight real log-mel windows of synthetic speech and their one-hot labels."""
    emotions = ["angry", "sad", "happy", "neutral", "fear", "disgust", "angry", "sad"]
    waves = np.stack([emotional_speech(e, P.clip_seconds, P.sample_rate, seed=i) for i, e in enumerate(emotions)])
    x = log_mel(waves, P)
    y = np.eye(len(EMOTIONS), dtype=np.float32)[[EMOTIONS.index(e) for e in emotions]]
    return tf.constant(x), tf.constant(y)


def _floor_share(x: np.ndarray) -> float:
    return float(np.mean(x <= -P.top_db + 1e-3))


def test_default_augmenter_shapes_range_and_labels(batch):
    tf.random.set_seed(0)
    augment = make_augmenter(P)
    for _ in range(3):
        x, y = augment(*batch)
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == tuple(batch[0].shape) and x.dtype == np.float32
        assert y.shape == tuple(batch[1].shape)
        assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))
        assert x.min() >= -P.top_db - 1e-3 and x.max() <= 1e-3
        np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)  # mixup keeps a distribution
        assert np.all(y >= 0)


def test_augmenter_is_random(batch):
    augment = make_augmenter(P)
    first, second = augment(*batch)[0], augment(*batch)[0]
    assert not np.allclose(first, second)
    assert not np.allclose(first, batch[0])


def test_everything_off_is_almost_identity(batch):
    x, y = make_augmenter(P, OFF)(*batch)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(batch[1]))
    original, x = np.asarray(batch[0]), np.asarray(x)
    for i in range(len(original)):
        # time_shift(0.0) may still roll by one frame (see test_zero_time_shift_leaves_time_alone), and
        # the FFT convolution of the (unchosen) reverb perturbs a few bins near the -80 dB floor.
        close = max(np.mean(np.abs(x[i] - np.roll(original[i], s, axis=-1)) < 0.5) for s in (0, -1, 1))
        assert close > 0.98


def test_works_inside_tf_data(batch):
    data = tf.data.Dataset.from_tensor_slices(batch).batch(4).map(make_augmenter(P))
    shapes = [tuple(x.shape) for x, _ in data]
    assert shapes == [(4, 64, 301), (4, 64, 301)]


def test_to_db_inverts_power_like_log_mel(batch):
    x = batch[0]
    power = tf.pow(10.0, x / 10.0)
    np.testing.assert_allclose(np.asarray(to_db(power, P.top_db)), np.asarray(x), atol=1e-3)
    # Any level: dB re each window's maximum.
    np.testing.assert_allclose(np.asarray(to_db(power * 100.0, P.top_db)), np.asarray(x), atol=1e-3)
    # And on raw mel power, the same as features.log_mel's mapping.
    raw = tf.constant(np.random.default_rng(0).uniform(0, 5, (2, 64, 301)) ** 6, tf.float32)
    expected = 10 * np.log10(np.maximum(np.asarray(raw, np.float64), 1e-10))
    expected = np.maximum(expected - expected.max(axis=(1, 2), keepdims=True), -P.top_db)
    np.testing.assert_allclose(np.asarray(to_db(raw, P.top_db)), expected, atol=1e-3)


def test_noise_lowers_the_dynamic_range(batch):
    noisy = AugmentConfig(**{**OFF.__dict__, "noise_probability": 1.0, "snr_db": (0.0, 0.0)})
    x, _ = make_augmenter(P, noisy)(*batch)
    clean, x = np.asarray(batch[0]), np.asarray(x)
    assert _floor_share(x) < _floor_share(clean)
    for i in range(len(clean)):  # the quiet bins rise towards the loudest: less dynamic range
        assert np.percentile(x[i], 10) > np.percentile(clean[i], 10) + 5.0
        assert x[i].max() == pytest.approx(0.0, abs=1e-3)


def test_band_limit_attenuates_the_edges(batch):
    limited = AugmentConfig(**{**OFF.__dict__, "band_limit_probability": 1.0})
    x, _ = make_augmenter(P, limited)(*batch)
    top_before = np.asarray(batch[0])[:, -3:, :].mean()
    top_after = np.asarray(x)[:, -3:, :].mean()  # the highest bands (> 7 kHz) are always above the cut
    assert top_before > -P.top_db + 3.0
    assert top_after == pytest.approx(-P.top_db, abs=1.0)  # 40 dB down: at the floor


def test_reverb_smears_energy_into_later_frames():
    x = np.full((2, 64, 301), -P.top_db, np.float32)
    x[:, :, 100] = 0.0  # one click
    power = tf.pow(10.0, x / 10.0) * tf.cast(x > -P.top_db, tf.float32)
    wet = aug.reverberate(power, 0.01, (0.5, 0.5), tf.ones([2]))
    wet = np.asarray(wet)
    assert np.all(wet[:, :, :100] < 1e-6)  # causal
    assert np.all(wet[:, :, 105] > 1e-4)  # a decaying tail after the click
    assert np.all(wet[:, :, 101] > wet[:, :, 150])


@pytest.mark.parametrize("axis", [1, 2])
def test_masks_flatten_whole_bands(batch, axis):
    tf.random.set_seed(1)
    x = np.asarray(aug.mask(batch[0], axis, count=2, max_width=20))
    original = np.asarray(batch[0])
    changed = 0
    for i in range(len(x)):
        lines = x[i] if axis == 1 else x[i].T  # one line per mel band (axis 1) or per frame (axis 2)
        before = original[i] if axis == 1 else original[i].T
        flat = [j for j, line in enumerate(lines) if np.ptp(line) < 1e-5 and np.ptp(before[j]) > 1e-3]
        changed += bool(flat)
        mean = original[i].mean()
        for j in flat:
            assert np.allclose(lines[j], mean, atol=1e-3)  # masked with the window's mean
        assert len(flat) <= 2 * 20
    assert changed >= len(x) // 2


def test_mixup_labels_and_images_are_convex_combinations():
    tf.random.set_seed(2)
    x = tf.constant(np.stack([np.full((4, 5), -float(i)) for i in range(16)]), tf.float32)
    y = tf.one_hot(np.arange(16) % 6, 6)
    mixed_x, mixed_y = aug.mixup(x, y, alpha=0.4, probability=1.0)
    mixed_x, mixed_y = np.asarray(mixed_x), np.asarray(mixed_y)
    np.testing.assert_allclose(mixed_y.sum(axis=1), 1.0, atol=1e-6)
    assert mixed_y.max(axis=1).min() >= 0.5 - 1e-6  # the own example keeps the larger weight
    assert np.all(mixed_x <= 0) and np.all(mixed_x >= -15)
    assert np.all(np.ptp(mixed_x, axis=(1, 2)) < 1e-5)  # each image is still a constant mix
    untouched_x, untouched_y = aug.mixup(x, y, alpha=0.4, probability=0.0)
    np.testing.assert_array_equal(np.asarray(untouched_y), np.asarray(y))
    np.testing.assert_array_equal(np.asarray(untouched_x), np.asarray(x))


def test_time_shift_rolls_each_example():
    tf.random.set_seed(3)
    ramp = np.arange(50, dtype=np.float32)
    x = tf.constant(np.tile(ramp, (16, 3, 1)))
    shifted = np.asarray(aug.time_shift(x, 0.2))
    shifts = []
    for example in shifted:
        found = [s for s in range(-25, 25) if np.array_equal(example[0], np.roll(ramp, s))]
        assert len(found) == 1  # a circular shift, nothing lost
        shifts.append(found[0])
        assert np.array_equal(example[0], example[2])  # all bands shift together
    assert max(abs(s) for s in shifts) <= 11  # within 20 % of 50 frames (+1)
    assert len(set(shifts)) > 1  # each example its own shift


def test_zero_time_shift_leaves_time_alone():
    x = tf.constant(np.tile(np.arange(50, dtype=np.float32), (64, 2, 1)))
    np.testing.assert_array_equal(np.asarray(aug.time_shift(x, 0.0)), np.asarray(x))


def test_warp_keeps_shape_and_floor():
    tf.random.set_seed(4)
    x = tf.constant(np.random.default_rng(0).uniform(-80, 0, (2, 64, 301)), tf.float32)
    out = np.asarray(aug.warp(x, 0.12, -80.0))
    assert out.shape == (2, 64, 301)
    assert out.min() >= -80.0 - 1e-3 and out.max() <= 1e-3
    np.testing.assert_allclose(np.asarray(aug.warp(x, 0.0, -80.0)), np.asarray(x), atol=1e-4)


PRESETS = {name: config for name, config in getattr(aug, "PRESETS", {}).items() if config is not None}


@pytest.mark.skipif(not PRESETS, reason="ser_core.training.augment defines no PRESETS")
@pytest.mark.parametrize("name", sorted(PRESETS) or ["-"])
def test_every_preset_gives_valid_batches(batch, name):
    config = PRESETS[name]  # "none" (no augmentation) is left out: train.py skips the augmenter
    x, y = make_augmenter(P, config)(*batch)
    x, y = np.asarray(x), np.asarray(y)
    assert x.shape == tuple(batch[0].shape) and np.all(np.isfinite(x))
    assert x.min() >= -P.top_db - 1e-3 and x.max() <= 1e-3
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)


def test_vocal_tract_warp_moves_a_formant_by_the_factor():
    params = FeatureParams()
    mel_hz = mel_frequencies(params)
    x = np.full((3, params.n_mels, 12), -params.top_db, np.float32)
    x[:, 20:45, :] = np.linspace(-40.0, 0.0, 25)[None, :, None]  # a ramp rising to a plateau from band 44
    x[:, 45:50, :] = 0.0
    factors = tf.constant([1.0, 1.1, 0.9])
    out = aug.vocal_tract_warp(tf.constant(x), tf.constant(mel_hz, tf.float32), factors, -params.top_db).numpy()
    np.testing.assert_allclose(out[0], x[0], atol=1e-4)  # factor 1 is the identity
    peak_hz = [mel_hz[np.argmax(out[i, :, 0] > -1e-3)] for i in range(3)]  # lowest band at the peak
    assert peak_hz[1] == pytest.approx(mel_hz[44] * 1.1, rel=0.05)
    assert peak_hz[2] == pytest.approx(mel_hz[44] * 0.9, rel=0.05)
    assert out.min() >= -params.top_db - 1e-4 and out.max() <= 1e-4
    assert np.all(out[2, -3:, :] == -params.top_db)  # shrinking leaves the top bands at the floor


def test_tempo_change_squeezes_or_stretches_time_about_the_centre():
    x = np.full((3, 4, 41), -50.0, np.float32)
    x[:, :, 20] = 0.0  # the centre frame
    x[:, :, 30] = -10.0  # a marker 10 frames after it
    out = aug.change_tempo(tf.constant(x), tf.constant([1.0, 2.0, 0.5]), -50.0).numpy()
    np.testing.assert_allclose(out[0], x[0])  # rate 1 is the identity
    assert np.argmax(out[1, 0] == -10.0) == 25  # twice as fast: the marker comes 5 frames after the centre
    assert np.all(out[1, :, :10] == -50.0) and np.all(out[1, :, 31:] == -50.0)  # squeezed: floor at the ends
    assert out[2, 0, 20] == 0.0 and out[2, 0, 40] == -10.0  # half as fast: 20 frames after it
    assert out.shape == x.shape
