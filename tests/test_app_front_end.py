"""The app's view of either front end (log-mel CNN, Whisper embedding model): which one a config
names, the spectrogram panels for a prediction, and the Training curves page without epochs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app_helpers import APP_FILE, fake_reports
from ser_core.app import front_end, plots
from ser_core.inference.params import FeatureParams

# What the Whisper predictor reports as its params: Whisper's log-mel (80 bands, 10 ms, 0-8 kHz).
WHISPER_PARAMS = FeatureParams(n_mels=80, win_length=400, hop_length=160, n_fft=400, fmin=0.0,
                               fmax=8_000.0, clip_seconds=3.0, top_db=80.0)


def whisper_config() -> dict:
    """A Whisper-type config as train.py writes it (no epochs, no history)."""
    config = dict(fake_reports()["config.json"])
    config.update(kind="whisper_embedding_head", front_end="whisper_embedding",
                  embedding_params={"model": "base", "sample_rate": 16000, "vad": True},
                  recipe={"layers": [2, 3, 4], "statistics": "mean_std", "head": "lr", "C": 0.1},
                  model_name="whisper-base + logistic head")
    config["feature_params"] = WHISPER_PARAMS.to_dict()
    return config


@pytest.mark.parametrize("config, expected", [
    ({"kind": "whisper_embedding_head", "front_end": {"model": "base"}}, front_end.WHISPER),
    ({"front_end": "whisper_embedding"}, front_end.WHISPER),
    (fake_reports()["config.json"], front_end.LOG_MEL),
    (None, front_end.LOG_MEL),
])
def test_model_front_end(config, expected: str) -> None:
    assert front_end.model_front_end(config) == expected


def test_whisper_log_mel_becomes_db_below_the_loudest_bin() -> None:
    scaled = np.array([[1.5, 1.25], [-0.5, 0.5]], np.float32)  # (log10 + 4) / 4; clamp at max - 2
    db = front_end.whisper_to_db(scaled)
    np.testing.assert_allclose(db, [[0.0, -10.0], [-80.0, -40.0]])


def test_whisper_panels_follow_the_windows_or_the_segments_of_the_speech() -> None:
    windows = np.zeros((3, 80, 300), np.float32)
    timed = [SimpleNamespace(end_s=end) for end in (3.0, 4.5, 7.6)]  # the last spans a 0.6 s pause
    by_window = front_end.spectrogram_panels(
        SimpleNamespace(features=windows, window_starts=np.array([0.0, 1.5, 4.0]), windows=timed),
        WHISPER_PARAMS, front_end.WHISPER)
    assert [p.label for p in by_window] == ["1: 0.0–3.0 s", "2: 1.5–4.5 s", "3: 4.0–7.6 s"]
    assert by_window[2].x_label == "Time in the clip (s; pauses cut out)"
    segments = [np.zeros((80, 300), np.float32), np.ones((80, 150), np.float32)]
    prediction = SimpleNamespace(features=segments, window_starts=np.array([0.0, 1.5, 3.0]))
    panels = front_end.spectrogram_panels(prediction, WHISPER_PARAMS, front_end.WHISPER)
    assert [p.start_s for p in panels] == pytest.approx([0.0, 3.0])
    assert panels[1].label == "segment 2: 3.0–4.5 s of speech"
    assert "speech the model heard" in panels[0].x_label
    single = front_end.spectrogram_panels(SimpleNamespace(features=np.zeros((1, 80, 200)), window_starts=[]),
                                          WHISPER_PARAMS, front_end.WHISPER)
    assert [p.label for p in single] == ["all the speech"]
    figure = plots.spectrogram_figure(single[0].db, WHISPER_PARAMS, x_label=single[0].x_label, floor_db=80.0)
    assert "Hz" in figure.axes[0].get_ylabel() and "dB" in figure.axes[1].get_ylabel()
    assert "Whisper" in front_end.caption(WHISPER_PARAMS, front_end.WHISPER)


def test_a_short_clips_picture_ends_where_its_speech_ends() -> None:
    """A 1.2 s clip is held in a 3 s window filled out with the floor; the model heard 1.2 s, and the
    picture's time axis said 3 s (the last 1.8 s black)."""
    speech = np.random.default_rng(0).uniform(-1.0, 1.0, (80, 120)).astype(np.float32)
    window = np.full((1, 80, 300), speech.min() - 0.5, np.float32)  # _window_mels fills with the floor
    window[0, :, :120] = speech
    (panel,) = front_end.spectrogram_panels(SimpleNamespace(features=window, window_starts=[]), WHISPER_PARAMS,
                                            front_end.WHISPER)
    assert panel.db.shape == (80, 120)


def test_cnn_panels_are_its_windows() -> None:
    params = FeatureParams()
    windows = np.zeros((3, params.n_mels, params.n_frames), np.float32)
    prediction = SimpleNamespace(features=windows, window_starts=np.array([0.0, 1.5, 3.0]))
    panels = front_end.spectrogram_panels(prediction, params, front_end.LOG_MEL)
    assert [p.label for p in panels] == ["1: 0.0–3.0 s", "2: 1.5–4.5 s", "3: 3.0–6.0 s"]
    short = front_end.spectrogram_panels(SimpleNamespace(features=windows[:1], window_starts=np.array([0.0])),
                                         params, front_end.LOG_MEL)
    assert short[0].x_label == "Time in the model's 3 s window (s)"
    empty = SimpleNamespace(features=np.zeros((0, params.n_mels, params.n_frames)), window_starts=np.array([]))
    assert front_end.spectrogram_panels(empty, params, front_end.LOG_MEL) == []


def test_training_curves_page_explains_a_head_without_epochs(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(whisper_config()))
    (tmp_path / "model.keras").write_bytes(b"")  # present (the page only reads the reports)
    monkeypatch.setenv("SER_ARTIFACTS_DIR", str(tmp_path))
    app = AppTest.from_file(str(APP_FILE), default_timeout=60).run()
    app.switch_page("pages/training_curves.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("no training curves, and that is expected" in i.value for i in app.info)
    assert any("logistic regression (C = 0.1)" in m.value and "layers 2, 3, 4" in m.value for m in app.markdown)
    assert not app.get("imgs") and not any("No training history" in i.value for i in app.info)


def test_the_ridge_heads_recipe_in_words() -> None:
    from ser_core.app import words

    text = words.head_recipe({"layers": [1, 2, 3, 4], "head": "ridge", "alpha": 3000.0, "train_norm": "speaker"})
    assert "ridge regression (α = 3000)" in text and "layers 1, 2, 3, 4" in text
    assert "each speaker's clips were standardised with that speaker's own statistics" in text


def test_the_ridge_and_logistic_head_in_words() -> None:
    from ser_core.app import words

    text = words.head_recipe({"layers": [1, 2, 3, 4], "head": "ridge+lr", "alpha": 10000.0, "lr_weight": 0.2,
                              "train_norm": "speaker"})
    assert "sums two linear models: a ridge regression" in text
    assert "a logistic regression (all clips standardised together), which gives 20% of the score" in text
    assert "small network" not in text and text.count("standardised on their own") + text.count("own statistics") == 1


def test_the_adapt_page_quotes_the_shipped_models_own_gain() -> None:
    from ser_core.app import words

    text = words.adapt_how_much({"strict_uar": 0.503, "by_clips": {"5": 0.574, "10": 0.598, "20": 0.613}})
    assert "from 50% to 57%, and 20 clips to 61%. " in text and "calm" not in text.split("Which speech")[0]
    text = words.adapt_how_much({"strict_uar": 0.503, "by_clips": {"5": 0.574, "10": 0.598, "20": 0.613},
                                 "by_calm_clips": {"5": 0.553, "10": 0.567, "20": 0.561}})
    assert "from 50% to 57%, and 20 clips to 61%; 5 calm clips only to 55%." in text
    assert "seldom come out as neutral" in text and "recognised calm speech as neutral" not in text
    text = words.adapt_how_much({"strict_uar": 0.503, "by_clips": {"5": 0.574, "10": 0.598, "20": 0.613},
                                 "neutral_recall": {"strict": 0.32, "by_clips": 0.53, "by_calm_clips": 0.17}})
    assert "recognised calm speech as neutral 17% of the time, against 32% without adapting." in text
    plain = words.adapt_how_much(None)  # an older model: no figures rather than another model's
    assert "%" not in plain.replace("15–30", "") and "15–30 seconds of speech" in plain


def test_the_coverage_line_gives_the_hardest_corpus_to_the_half() -> None:
    from ser_core.app import words

    config = {"emotion_sets": {"method": "lac", "held_out_coverages": {"strict": {"0.9": {
        "a": {"coverage": 0.755, "mean_set_size": 3.0, "single_rate": 0.1},
        "b": {"coverage": 0.97, "mean_set_size": 3.0, "single_rate": 0.1}}}}}}
    assert "it was only 7½ in 10." in words.coverage_line(0.9, config)
