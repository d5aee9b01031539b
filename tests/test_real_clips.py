"""A few real RAVDESS clips from ../shared/data/ravdess (skipped cleanly when the folder is absent),
and the shipped model in artifacts/ (skipped when it has not been trained yet)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT
from ser_core.inference.audio import load_audio
from ser_core.data.corpora import scan_ravdess
from ser_core.inference.features import clip_features, is_silent
from ser_core.inference.params import EMOTIONS, FeatureParams

pytestmark = pytest.mark.real_data

SHIPPED = REPO_ROOT / "artifacts"


@pytest.fixture(scope="module")
def real_scan(real_ravdess):
    return scan_ravdess(real_ravdess)


def test_scan_finds_880_six_emotion_clips_from_20_actors(real_scan):
    clips, report = real_scan
    assert len(clips) == report.kept == 880
    assert report.other_emotions == 320  # calm and surprised
    assert report.unparsed == [] and report.duplicates == 0
    speakers = {c.speaker for c in clips}
    assert len(speakers) == 20
    assert Counter(c.gender for c in {(c.speaker, c.gender): c for c in clips}.values()) == {"male": 10, "female": 10}
    counts = Counter(c.emotion for c in clips)
    assert set(counts) == set(EMOTIONS)
    assert counts["neutral"] == 80 and all(counts[e] == 160 for e in EMOTIONS if e != "neutral")


def test_features_of_a_real_clip(real_scan):
    clips, _ = real_scan
    params = FeatureParams()
    clip = next(c for c in clips if c.emotion == "angry")
    wave = load_audio(clip.path, params.sample_rate)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 2.5 < wave.size / params.sample_rate < 6.0  # RAVDESS utterances last ~3-5 s
    assert not is_silent(wave)
    features, starts = clip_features(wave, params)
    assert features.shape[1:] == (params.n_mels, params.n_frames)
    assert 1 <= len(features) <= 3
    assert starts[0] > 0.2  # RAVDESS clips start with silence, which is trimmed
    assert features.max() == pytest.approx(0.0, abs=1e-4) and features.min() >= -params.top_db
    assert (features > -params.top_db + 1).mean() > 0.3  # real content, not a flat image


@pytest.fixture(scope="module")
def shipped_predictor():
    if not (SHIPPED / "model.keras").is_file():
        pytest.skip("no shipped model in artifacts/ (train one with train.py)")
    from ser_core.inference.predictor import ModelNotFoundError, Predictor

    try:
        return Predictor.from_artifacts(SHIPPED)
    except ModelNotFoundError as error:  # a Whisper model without the encoder weights on this machine
        pytest.skip(str(error))


def test_shipped_artifacts_are_consistent(shipped_predictor):
    config = json.loads((SHIPPED / "config.json").read_text())
    assert config["emotions"] == list(EMOTIONS)
    assert shipped_predictor.params == FeatureParams.from_dict(config["feature_params"])
    if config.get("kind") == "whisper_embedding_head":  # the head reads the standardised embedding
        assert shipped_predictor.model.input_shape[1:] == (len(config["standardisation"]["default"]["mean"]),)
        assert shipped_predictor.supports_adaptation
    else:
        assert shipped_predictor.model.input_shape[1:] == shipped_predictor.params.input_shape


def test_shipped_model_beats_chance_on_real_clips(shipped_predictor, real_scan):
    clips, _ = real_scan
    rng = np.random.default_rng(0)
    chosen = [clips[i] for e in EMOTIONS
              for i in rng.choice([j for j, c in enumerate(clips) if c.emotion == e], 4, replace=False)]
    correct = 0
    for clip in chosen:
        prediction = shipped_predictor.predict_file(Path(clip.path))
        values = np.array(list(prediction.probabilities.values()))
        assert list(prediction.probabilities) == list(EMOTIONS)
        assert np.all(values >= 0) and values.sum() == pytest.approx(1.0, abs=1e-6)
        correct += prediction.top_emotion == clip.emotion
    # 24 clips, chance is 4 right; a working model gets far more (a loose bound, not a benchmark).
    assert correct >= 8, f"{correct}/24 right"
