"""A long file through the Whisper model, read block by block: the same answer as the whole file.

The fake encoder and tiny head of ``test_whisper_predictor`` stand in for Whisper (no weights); the
real speech detector runs. The long path is forced on a ~50 s file by lowering the whole-file limit
and the block size.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile

from ser_core.inference import predictor as predictor_module
from ser_core.inference.predictor import NotEnoughSpeech, Predictor
from ser_core.inference.whisper_head_front import WhisperHeadFront
from test_whisper_predictor import _clip, encoder, whisper_model  # noqa: F401  (fixtures)


class _CountingEncoder:
    """The fake encoder, noting the length of every segment it is given."""

    def __init__(self, inner) -> None:
        self.inner, self.lengths = inner, []

    def log_mel(self, audio, sr=16_000):
        self.lengths.append(len(audio))
        return self.inner.log_mel(audio, sr=sr)

    def forward(self, mel, n_blocks=None):
        return self.inner.forward(mel, n_blocks)


def _long_wave() -> np.ndarray:
    rng = np.random.default_rng(3)
    parts = []
    for seed in range(16):
        parts += [_clip(("angry", "neutral", "sad")[seed % 3], seed, gain=float(rng.uniform(0.5, 1.5))),
                  np.zeros(int(rng.uniform(0.6, 2.5) * 16_000), np.float32)]
    return np.concatenate(parts)


@pytest.fixture()
def long_path(monkeypatch):
    monkeypatch.setattr(predictor_module, "WHOLE_FILE_SECONDS", 5.0)
    monkeypatch.setattr(predictor_module, "BLOCK_SECONDS", 4.0)


@pytest.mark.parametrize("statistics", ["mean", "mean_std"])
def test_a_long_file_read_in_blocks_gets_the_whole_file_answer(
        whisper_model, encoder, long_path, statistics):  # noqa: F811
    model, config = whisper_model
    if statistics == "mean_std":  # a head on means and stds: the same fitted weights cannot read it, so refit
        from sklearn.linear_model import LogisticRegression

        from ser_core.training.embedding_model import logistic_as_keras

        width = 2 * len(config["recipe"]["layers"]) * 8
        rng = np.random.default_rng(0)
        fitted = LogisticRegression(max_iter=200).fit(rng.normal(size=(30, width)), np.arange(30) % 3)
        model = logistic_as_keras(fitted.coef_, fitted.intercept_, np.array([0, 4, 5]))
        config = {**config, "recipe": {**config["recipe"], "statistics": "mean_std"},
                  "standardisation": {"default": {"mean": [0.0] * width, "std": [1.0] * width}, "per_corpus": {}}}
    counting = _CountingEncoder(encoder)
    predictor = Predictor(model, config, encoder=counting)
    wave = _long_wave()
    whole = predictor.predict_wave(wave, 16_000)
    whole_lengths, counting.lengths = counting.lengths, []
    data = io.BytesIO()
    soundfile.write(data, wave, 16_000, format="WAV", subtype="FLOAT")
    reports = []
    long = predictor.predict_file(data.getvalue(), max_seconds=None, keep_features=False,
                                  progress=lambda done, total: reports.append((done, total)))

    assert len(whole_lengths) >= 2 and counting.lengths == whole_lengths  # the same encoder segments, ≤ 20 s
    assert max(counting.lengths) <= 20 * 16_000
    for emotion, p in whole.probabilities.items():
        assert long.probabilities[emotion] == pytest.approx(p, abs=1e-5)
    assert long.label == whole.label and long.speech_seconds == pytest.approx(whole.speech_seconds)
    assert long.duration_s == pytest.approx(whole.duration_s)
    assert len(long.segments) == len(whole.segments) >= 10
    for a, b in zip(long.segments, whole.segments):
        assert (a.start_s, a.end_s, a.label) == (b.start_s, b.end_s, b.label)
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-5)
    assert len(long.windows) == len(whole.windows)
    for a, b in zip(long.windows, whole.windows):
        assert (a.start_s, a.end_s) == pytest.approx((b.start_s, b.end_s))
        np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-5)
    assert long.features.shape[0] == 0
    # progress: three readings in one bar that only goes forward and ends at the length
    done = [d for d, _ in reports]
    assert done == sorted(done) and done[-1] == pytest.approx(whole.duration_s) and len(done) > 3 * 3
    assert pytest.approx(0.2 * whole.duration_s) in done  # the end of the second reading: the long path ran
    long.to_dict()


def test_a_long_silent_file_is_refused_without_encoding(whisper_model, encoder, long_path):  # noqa: F811
    model, config = whisper_model
    counting = _CountingEncoder(encoder)
    predictor = Predictor(model, config, encoder=counting)
    data = io.BytesIO()
    soundfile.write(data, np.zeros(16_000 * 12, np.float32), 16_000, format="WAV")
    with pytest.raises(NotEnoughSpeech) as refused:
        predictor.predict_file(data.getvalue(), max_seconds=None, keep_features=False)
    assert refused.value.kind == "no_speech" and counting.lengths == []


def test_short_files_and_kept_features_still_take_the_whole_file_path(
        whisper_model, encoder, monkeypatch):  # noqa: F811
    model, config = whisper_model
    predictor = Predictor(model, config, encoder=encoder)
    monkeypatch.setattr(WhisperHeadFront, "_hear_long", lambda *a, **k: pytest.fail("long path"))
    data = io.BytesIO()
    soundfile.write(data, _long_wave()[: 16_000 * 20], 16_000, format="WAV")
    assert predictor.predict_file(data.getvalue(), max_seconds=None, keep_features=False).windows
