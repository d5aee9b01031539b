"""Log-mel features, trimming and windowing, the parameter record, and the on-disk feature cache."""

from __future__ import annotations

import json
import os

import librosa
import numpy as np
import pytest

import audio_factory
from audio_factory import emotional_speech, tone, with_silence, write_audio
from ser_core.data import dataset
from ser_core.data.corpora import Clip
from ser_core.data.dataset import FEATURE_CODE, cache_key, extract_features, source_fingerprint, window_set
from ser_core.inference.features import clip_features, is_silent, log_mel, mel_frequencies, split_windows, trim_bounds
from ser_core.inference.params import EMOTIONS, FeatureParams

P = FeatureParams()
SR = P.sample_rate


def speech(seconds=2.0, seed=0, emotion="happy"):
    return emotional_speech(emotion, seconds, SR, seed=seed)


# ------------------------------------------------------------------------------------ parameters


def test_derived_sizes():
    assert P.clip_samples == 48_000
    assert P.n_frames == 301
    assert P.input_shape == (64, 301, 1)
    shorter = FeatureParams(clip_seconds=2.0, hop_length=320, n_mels=40)
    assert shorter.n_frames == 1 + 32_000 // 320 and shorter.input_shape == (40, 101, 1)


def test_params_json_round_trip():
    params = FeatureParams(n_mels=40, fmin=60.0, clip_seconds=2.5, top_db=70.0)
    restored = FeatureParams.from_dict(json.loads(json.dumps(params.to_dict())))
    assert restored == params
    assert hash(restored) == hash(params)
    # Unknown keys (from a newer config) are ignored; missing keys take the defaults.
    assert FeatureParams.from_dict({**params.to_dict(), "future_option": 1}) == params
    assert FeatureParams.from_dict({"n_mels": 32}) == FeatureParams(n_mels=32)


# -------------------------------------------------------------------------------------- log-mel


@pytest.mark.parametrize("params", [P, FeatureParams(n_mels=40, fmin=20.0, top_db=60.0)])
def test_log_mel_shape(params):
    windows = np.stack([speech(params.clip_seconds, seed=s)[: params.clip_samples] for s in range(3)])
    out = log_mel(windows, params)
    assert out.shape == (3, params.n_mels, params.n_frames)
    assert out.dtype == np.float32
    assert log_mel(windows[0], params).shape == (params.n_mels, params.n_frames)


@pytest.mark.parametrize("signal", ["speech", "tone", "noise"])
def test_log_mel_matches_librosa(signal):
    wave = {"speech": speech(3.0), "tone": tone(440, 3.0, SR),
            "noise": audio_factory.noise(3.0, SR, 0.2)}[signal]
    ours = log_mel(wave[None, :], P)[0]
    power = librosa.feature.melspectrogram(
        y=wave.astype(np.float64), sr=SR, n_fft=P.n_fft, hop_length=P.hop_length, win_length=P.win_length,
        window="hann", center=True, pad_mode="constant", power=2.0, n_mels=P.n_mels, fmin=P.fmin, fmax=P.fmax,
    )
    reference = librosa.power_to_db(power, ref=np.max, amin=1e-10, top_db=P.top_db)
    assert ours.shape == reference.shape
    assert ours.max() == pytest.approx(0.0, abs=1e-5)
    assert ours.min() >= -P.top_db
    np.testing.assert_allclose(ours, reference, atol=0.05)


def test_tone_peaks_in_the_right_mel_band():
    features = log_mel(tone(1000.0, 3.0, SR)[None, :], P)[0]
    band = int(np.argmax(features.mean(axis=1)))
    centres = mel_frequencies(P)
    assert abs(centres[band] - 1000.0) < 80.0


def test_level_invariance():
    wave = speech(3.0)
    loud, quiet = log_mel(wave[None, :], P), log_mel(0.1 * wave[None, :], P)
    np.testing.assert_allclose(loud, quiet, atol=1e-3)
    a, _ = clip_features(wave, P)
    b, _ = clip_features(0.1 * wave, P)
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_each_window_is_referenced_to_its_own_maximum():
    windows = np.stack([speech(3.0, seed=1), 0.01 * speech(3.0, seed=2)])
    out = log_mel(windows, P)
    assert np.allclose(out.max(axis=(1, 2)), 0.0, atol=1e-5)


def test_silence_gives_a_flat_finite_image_and_is_flagged():
    out = log_mel(np.zeros((1, P.clip_samples), np.float32), P)
    assert np.all(np.isfinite(out)) and np.ptp(out) == 0.0  # nothing to see: callers check is_silent
    assert is_silent(np.zeros(100)) and is_silent(np.zeros(0)) and is_silent(np.full(100, 5e-5))
    assert not is_silent(np.full(100, 1e-3))


# ------------------------------------------------------------------------------- trim and windows


def test_trim_drops_leading_and_trailing_silence():
    core = speech(1.0)
    padded = with_silence(core, 0.7, 1.1, SR) + audio_factory.noise(2.8, SR, 1e-5)[: core.size + int(1.8 * SR)]
    start, end = trim_bounds(padded, P)
    lead = int(0.7 * SR)
    assert lead - 0.06 * SR <= start <= lead + 0.15 * SR
    assert lead + core.size - 0.15 * SR <= end <= lead + core.size + 0.06 * SR


def test_trim_keeps_pauses_inside_the_speech():
    wave = np.concatenate([speech(0.5, seed=1), np.zeros(SR, np.float32), speech(0.5, seed=2)])
    start, end = trim_bounds(wave, P)
    assert end - start > 1.8 * SR


def test_trim_leaves_silent_and_tiny_input_alone():
    assert trim_bounds(np.zeros(SR, np.float32), P) == (0, SR)
    assert trim_bounds(np.ones(100, np.float32), P) == (0, 100)


def test_clip_features_start_times_count_the_trimmed_lead():
    wave = with_silence(speech(1.0), 1.0, 0.5, SR)
    features, starts = clip_features(wave, P)
    assert features.shape == (1, P.n_mels, P.n_frames)
    assert 0.9 <= starts[0] <= 1.15


def test_short_audio_is_centred_in_one_window():
    wave = tone(440, 1.0, SR)
    windows, starts = split_windows(wave, P)
    assert windows.shape == (1, P.clip_samples) and list(starts) == [0.0]
    offset = (P.clip_samples - wave.size) // 2
    np.testing.assert_array_equal(windows[0, offset: offset + wave.size], wave)
    assert not windows[0, :offset].any() and not windows[0, offset + wave.size:].any()


def test_exactly_one_window():
    windows, starts = split_windows(speech(3.0), P)
    assert windows.shape == (1, P.clip_samples) and list(starts) == [0.0]


@pytest.mark.parametrize("seconds, expected_starts", [
    (4.5, [0.0, 1.5]),               # fits 50 % overlap exactly: no extra window
    (5.0, [0.0, 1.5, 2.0]),          # the last window is aligned to the end
    (10.0, [0.0, 1.5, 3.0, 4.5, 6.0, 7.0]),
])
def test_long_audio_windows(seconds, expected_starts):
    wave = np.arange(int(seconds * SR), dtype=np.float32)
    windows, starts = split_windows(wave, P)
    assert np.allclose(starts, expected_starts)
    assert windows.shape == (len(expected_starts), P.clip_samples)
    for window, start in zip(windows, starts):  # each window is the audio from its start time
        assert window[0] == int(round(start * SR))
    assert windows[-1, -1] == wave[-1]  # nothing at the end is lost


def test_clip_features_of_long_audio():
    wave = np.concatenate([speech(2.5, seed=i) for i in range(4)])
    features, starts = clip_features(wave, P)
    assert features.shape[0] == len(starts) >= 4
    assert features.shape[1:] == (P.n_mels, P.n_frames)
    assert np.all(np.diff(starts) > 0)
    assert starts[-1] + P.clip_seconds <= wave.size / SR + 1e-6


# ---------------------------------------------------------------------------------- feature cache


def _clips(paths, emotion="angry"):
    return [Clip(str(p), "ravdess", "ravdess_01", "male", emotion) for p in paths]


@pytest.fixture
def three_clips(tmp_path):
    paths = [write_audio(tmp_path / "audio" / f"03-01-05-01-01-0{i}-01.wav", speech(1.5 + i, seed=i), SR)
             for i in range(1, 4)]
    return _clips(paths)


def test_extraction_and_cache_hit(three_clips, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first, failures = extract_features(three_clips, P, cache, workers=1)
    assert failures == []
    assert [f.shape for f in first] == [(1, 64, 301), (2, 64, 301), (2, 64, 301)]
    assert len(list(cache.glob("*.npy"))) == 3
    expected, _ = clip_features(load_audio_for(three_clips[1]), P)
    np.testing.assert_allclose(first[1], expected, atol=1e-5)

    def no_recompute(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(dataset, "load_audio", no_recompute)
    monkeypatch.setattr(dataset, "clip_features", no_recompute)
    second, failures = extract_features(three_clips, P, cache, workers=1)
    assert failures == []
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def load_audio_for(clip):
    from ser_core.inference.audio import load_audio

    return load_audio(clip.path, SR)


def test_cache_key_changes_with_params_and_content(three_clips, tmp_path):
    path = three_clips[0].path
    key = cache_key(path, P)
    assert cache_key(path, P) == key
    assert cache_key(path, FeatureParams(n_mels=40)) != key
    assert cache_key(path, FeatureParams(top_db=70.0)) != key
    assert cache_key(three_clips[1].path, P) != key
    before = os.stat(path).st_mtime_ns
    write_audio(path, speech(1.5, seed=99), SR)  # same length, new content
    os.utime(path, ns=(before + 10**9, before + 10**9))  # as any later write would have
    assert cache_key(path, P) != key


def test_cache_key_follows_the_bytes_not_the_path_or_time(three_clips, tmp_path):
    import shutil

    path = three_clips[0].path
    copy = tmp_path / "elsewhere" / "copy.wav"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    os.utime(copy, ns=(10**18, 10**18))
    assert cache_key(str(copy), P) == cache_key(path, P)


def test_cache_key_changes_with_the_feature_code(three_clips, tmp_path):
    import ser_core.inference.audio
    import ser_core.inference.features

    module = tmp_path / "features.py"
    module.write_text("def log_mel(): return 1\n")
    fingerprint = source_fingerprint(module)
    module.write_text("def log_mel(): return 2\n")
    assert source_fingerprint(module) != fingerprint
    assert FEATURE_CODE == source_fingerprint(ser_core.inference.audio.__file__, ser_core.inference.features.__file__)
    path = three_clips[0].path
    assert cache_key(path, P, feature_code=fingerprint) != cache_key(path, P)


def test_changed_file_is_recomputed(three_clips, tmp_path):
    cache = tmp_path / "cache"
    before, _ = extract_features(three_clips[:1], P, cache, workers=1)
    stamp = os.stat(three_clips[0].path).st_mtime_ns
    write_audio(three_clips[0].path, tone(440, 1.5, SR), SR)
    os.utime(three_clips[0].path, ns=(stamp + 10**9, stamp + 10**9))
    after, _ = extract_features(three_clips[:1], P, cache, workers=1)
    assert not np.allclose(before[0], after[0])
    expected, _ = clip_features(load_audio_for(three_clips[0]), P)
    np.testing.assert_allclose(after[0], expected, atol=1e-4)


def test_unreadable_files_are_reported_not_dropped(three_clips, tmp_path):
    bad = tmp_path / "audio" / "03-01-05-01-01-01-02.wav"
    bad.write_bytes(b"not audio at all" * 50)
    silent = write_audio(tmp_path / "audio" / "03-01-05-01-02-01-02.wav", np.zeros(SR, np.float32), SR)
    missing = tmp_path / "audio" / "03-01-05-01-02-02-02.wav"
    clips = three_clips + _clips([bad, silent, missing])
    features, failures = extract_features(clips, P, tmp_path / "cache", workers=1)
    assert len(features) == len(clips)  # aligned with the clips, None where extraction failed
    assert [f is None for f in features] == [False, False, False, True, True, True]
    assert [path for path, _ in failures] == [str(bad), str(silent), str(missing)]
    reasons = dict(failures)
    assert "AudioError" in reasons[str(bad)]
    assert "silent" in reasons[str(silent)]
    assert "FileNotFoundError" in reasons[str(missing)] or "no such file" in reasons[str(missing)]


def test_parallel_extraction_matches_serial(tmp_path):
    paths = [write_audio(tmp_path / "a" / f"c{i:02d}.wav", speech(0.6, seed=i), SR) for i in range(52)]
    clips = _clips(paths)
    serial, _ = extract_features(clips, P, tmp_path / "serial", workers=1)
    parallel, failures = extract_features(clips, P, tmp_path / "parallel", workers=2)
    assert failures == []
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


# -------------------------------------------------------------------------------- window sets / tf.data


def test_window_set_labels_follow_the_clips():
    clips = [Clip(f"/x/{i}.wav", "ravdess", "ravdess_01", "male", e) for i, e in enumerate(("sad", "angry"))]
    windows = window_set(clips, [np.zeros((3, 64, 301)), np.ones((1, 64, 301))])
    assert windows.x.shape == (4, 64, 301) and windows.x.dtype == np.float32
    assert list(windows.clip_index) == [0, 0, 0, 1]
    assert list(windows.labels) == [EMOTIONS.index("sad")] * 3 + [EMOTIONS.index("angry")]
    assert list(windows.clip_labels) == [EMOTIONS.index("sad"), EMOTIONS.index("angry")]


def test_balanced_order_repeats_small_classes():
    labels = np.array([0] * 6 + [1] * 2 + [2] * 3)
    order = dataset.balanced_order(labels, np.random.default_rng(0))
    assert np.bincount(labels[order]).tolist() == [6, 6, 6]
    assert set(order[labels[order] == 1]) == {6, 7}


def _tiny_window_set(n_per_class: int) -> dataset.WindowSet:
    clips = [Clip(f"/x/{e}{i}.wav", "ravdess", "ravdess_01", "male", e) for e in EMOTIONS for i in range(n_per_class)]
    rng = np.random.default_rng(0)
    return window_set(clips, [rng.uniform(-80, 0, (1, 8, 12)).astype(np.float32) for _ in clips])


def test_training_dataset_batches():
    windows = _tiny_window_set(4)  # 24 windows
    data, steps = dataset.training_dataset(windows, 8, None, seed=0)
    assert steps == 3
    for x, y in data.take(4):  # endless: more batches than one epoch
        assert x.shape == (8, 8, 12, 1) and y.shape == (8, len(EMOTIONS))
        assert np.allclose(np.asarray(y).sum(axis=1), 1.0)


def test_auxiliary_emotions_share_an_epoch_with_the_six_and_add_no_steps():
    from ser_core.inference.params import TRAINING_LABELS

    six = _tiny_window_set(4)  # 24 windows
    extra = [Clip(f"/x/{e}{i}.wav", "ravdess", "ravdess_01", "male", e) for e in ("calm", "surprised") for i in range(4)]
    rng = np.random.default_rng(1)
    with_auxiliary = window_set(six.clips + extra, [six.x[i:i + 1] for i in range(len(six.x))]
                                + [rng.uniform(-80, 0, (1, 8, 12)).astype(np.float32) for _ in extra])
    assert sorted(set(with_auxiliary.labels)) == list(range(len(TRAINING_LABELS)))  # calm 6, surprised 7
    assert dataset.epoch_size(with_auxiliary.labels) == dataset.epoch_size(six.labels) == 24
    data, steps = dataset.training_dataset(with_auxiliary, 8, None, seed=0, n_classes=len(TRAINING_LABELS))
    assert steps == 3
    targets = [np.asarray(y) for _, y in data.take(3 * 20)]  # 20 epochs
    assert {target.shape for target in targets} == {(8, len(TRAINING_LABELS))}
    seen = np.concatenate([target.argmax(axis=1) for target in targets])
    counts = np.bincount(seen, minlength=len(TRAINING_LABELS))
    assert counts.min() > 0.8 * counts.mean()  # still balanced over all eight classes


def test_fewer_windows_than_a_batch_still_gives_one_step():
    data, steps = dataset.training_dataset(_tiny_window_set(4), 32, None, seed=0)
    assert steps >= 1
