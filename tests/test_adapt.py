"""Adapt to my voice: the session's statistics (ser_core.app.adapt) and the pages that use them,
with a stand-in Whisper-type predictor (no encoder weights needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app_helpers import APP_FILE, fake_reports, speech_like, wav_bytes
from ser_core.app import adapt, support
from ser_core.inference.adaptation import Adaptation, AdaptationSample
from ser_core.inference.params import FeatureParams
from ser_core.inference.predictor import Prediction
from ser_core.inference.speech import NotEnoughSpeech

TIMEOUT = 60


class WhisperLikePredictor:
    """What the pages use of a Whisper predictor: a clip's features are its RMS, repeated."""

    supports_adaptation = True
    threshold = 0.55  # the "uncertain" cut-off the pages keep in the JSON result

    def __init__(self) -> None:
        self.params = FeatureParams(n_mels=80, win_length=400, hop_length=160, n_fft=400, fmin=0.0,
                                    fmax=8000.0, clip_seconds=3.0, top_db=80.0)
        self.config = {"kind": "whisper_embedding_head", "model_name": "whisper test", "emotions": ["a"]}
        self.emotions = ("angry", "disgust", "fear", "happy", "neutral", "sad")
        self.samples = 0
        self.adaptations: list = []

    def adaptation_sample(self, wave, sample_rate):
        self.samples += 1
        seconds = len(wave) / sample_rate
        if float(np.max(np.abs(wave))) < 1e-3:
            raise NotEnoughSpeech("no_speech", 0.0, 1.0, seconds)
        rms = float(np.sqrt(np.mean(np.square(wave))))
        return AdaptationSample(np.full(4, rms), seconds, "test-key")

    def probabilities_of(self, sample, adaptation=None):
        self.adaptations.append(adaptation)
        return dict(zip(self.emotions, [0.6, 0.1, 0.1, 0.1, 0.05, 0.05]))

    def predict_wave(self, wave, sample_rate, threshold=None, *, max_seconds=None, adaptation=None):
        self.adaptations.append(adaptation)
        probabilities = dict(zip(self.emotions, [0.5, 0.1, 0.1, 0.1, 0.1, 0.1]))
        use = adaptation is not None and adaptation.ready
        return Prediction(probabilities=probabilities, top_emotion="angry", confidence=0.5,
                          uncertain=0.5 < (threshold or 0.55), threshold=threshold or 0.55,
                          duration_s=len(wave) / sample_rate, features=np.zeros((1, 80, 300), np.float32),
                          window_starts=np.array([0.0]), windows=[], speech_seconds=len(wave) / sample_rate,
                          adapted=use, adaptation_clips=adaptation.n_clips if use else 0)


def test_the_statistics_pool_the_clips_with_the_models_defaults() -> None:
    from ser_core.inference.adaptation import PRIOR_CLIPS, PRIOR_CLIPS_MEAN

    rng = np.random.default_rng(0)
    clips = rng.normal(3.0, 2.0, (4, 5))
    adaptation = Adaptation.empty()
    for row in clips:
        adaptation = adaptation.add(AdaptationSample(row, 1.0, "key"))
    default_mean, default_std = np.zeros(5), np.ones(5)
    mean, std = adaptation.statistics(default_std, default_mean)
    n = len(clips)
    np.testing.assert_allclose(mean, n * clips.mean(axis=0) / (n + PRIOR_CLIPS_MEAN))
    np.testing.assert_allclose(std, np.sqrt((n * clips.var(axis=0) + PRIOR_CLIPS) / (n + PRIOR_CLIPS)))
    own_mean, same_std = adaptation.statistics(default_std)  # without the default mean: the clips' own
    np.testing.assert_allclose(own_mean, clips.mean(axis=0))
    np.testing.assert_allclose(same_std, std)
    # the pull towards the default fades as clips accumulate
    for row in rng.normal(3.0, 2.0, (200, 5)):
        adaptation = adaptation.add(AdaptationSample(row, 1.0, "key"))
    many_mean, _ = adaptation.statistics(default_std, default_mean)
    assert np.abs(many_mean - 3.0).max() < np.abs(mean - 3.0).max()


def test_statistics_live_in_the_session_and_each_clip_counts_once() -> None:
    session: dict = {}
    predictor = WhisperLikePredictor()
    assert adapt.supported(predictor) and adapt.current(session).n_clips == 0
    wave = speech_like(8.0)
    first = adapt.add_clip(predictor, wave, 16_000, clip_id=b"clip one", session=session)
    again = adapt.add_clip(predictor, wave, 16_000, clip_id=b"clip one", session=session)
    assert first.added and not again.added and predictor.samples == 1
    assert not again.duplicate  # a rerun of the same upload: nothing to say
    assert json.loads(json.dumps(session[adapt.ADAPTATION_KEY]))["n_clips"] == 1  # JSON-safe
    assert adapt.in_use(predictor, session) is None  # one clip of 8 s is not enough
    adapt.add_clip(predictor, wave, 16_000, clip_id=b"clip two", session=session)
    adaptation = adapt.in_use(predictor, session)
    assert adaptation is not None and adaptation.n_clips == 2 and adaptation.speech_seconds == pytest.approx(16.0)
    assert adapt.status_text(adaptation) == "Adapted to your voice: 16 s of speech from 2 recordings."
    session[adapt.ON_KEY] = False
    assert adapt.in_use(predictor, session) is None
    assert "switched off (16 s of speech from 2 recordings kept)" in adapt.status_text(adaptation, on=False)
    adapt.clear(session)
    assert adapt.current(session).n_clips == 0 and adapt.CLIPS_KEY not in session


def test_the_page_says_how_the_clips_sound_and_nudges_when_they_all_sound_alike() -> None:
    predictor, session = WhisperLikePredictor(), {}
    assert adapt.moods_text(session) is None
    for seed in (1, 2):
        adapt.add_clip(predictor, speech_like(6.0, seed=seed), 16_000, clip_id=f"clip{seed}", session=session)
    assert adapt.moods_text(session) == "To the model, before adapting, your clips sound: angry ×2."
    assert predictor.adaptations[-1] is None  # judged without any adaptation
    adapt.add_clip(predictor, speech_like(6.0, seed=3), 16_000, clip_id="clip3", session=session)
    assert "They all sound angry: add a clip or two in another mood" in adapt.moods_text(session)
    predictor.probabilities_of = lambda sample, adaptation=None: dict(zip(predictor.emotions, [0, 0, 0, 0, 0, 1.0]))
    adapt.add_clip(predictor, speech_like(6.0, seed=4), 16_000, clip_id="clip4", session=session)
    assert adapt.moods_text(session) == "To the model, before adapting, your clips sound: angry ×3, sad ×1."
    adapt.clear(session)
    assert adapt.moods_text(session) is None


def test_a_clip_without_speech_is_refused_once_and_leaves_the_statistics_alone() -> None:
    session: dict = {}
    predictor = WhisperLikePredictor()
    silence = np.zeros(16_000 * 3, np.float32)
    for _ in range(2):
        with pytest.raises(NotEnoughSpeech):
            adapt.add_clip(predictor, silence, 16_000, clip_id=b"silence", session=session)
    assert predictor.samples == 1 and adapt.current(session).n_clips == 0


def test_statistics_of_another_model_start_again() -> None:
    session = {adapt.ADAPTATION_KEY: Adaptation.empty().add(AdaptationSample(np.ones(4), 5.0, "old")).to_dict()}
    result = adapt.add_clip(WhisperLikePredictor(), speech_like(4.0), 16_000, session=session)
    assert result.adaptation.n_clips == 1 and result.adaptation.model_key == "test-key"
    session[adapt.ADAPTATION_KEY] = {"n_clips": 3}  # damaged: no sums
    assert adapt.current(session).n_clips == 0


def test_progress_and_note() -> None:
    adaptation = Adaptation.empty()
    assert adapt.progress(adaptation) == 0.0
    adaptation = adaptation.add(AdaptationSample(np.ones(4), 6.0, "k"))
    assert 0 < adapt.progress(adaptation) < 1
    for _ in range(4):
        adaptation = adaptation.add(AdaptationSample(np.ones(4), 6.0, "k"))
    assert adaptation.ready and adapt.progress(adaptation) == 1.0
    prediction = WhisperLikePredictor().predict_wave(speech_like(2.0), 16_000, adaptation=adaptation)
    assert adapt.adapted_note(prediction, adaptation) == "Adapted to your voice (5 recordings, 30 s of speech)."
    assert adapt.adapted_note(WhisperLikePredictor().predict_wave(speech_like(2.0), 16_000), None) is None


def test_live_windows_feed_the_adaptation_back_to_back_with_one_encoder_pass() -> None:
    session: dict = {}
    predictor = WhisperLikePredictor()
    wave = speech_like(3.0)
    added = []
    for second in range(1, 16):  # once a second, the last 3 s
        answer = adapt.classify_live(predictor, wave, 16_000, 0.55, collect=True, stream_seconds=float(second),
                                     window_seconds=3.0, session=session)
        added.append(answer.collected)
    assert added == [True, False, False] * 5  # seconds 1, 4, 7, 10, 13: no second counted twice
    assert predictor.samples == 15  # one measurement per update, nothing else
    assert adapt.current(session).n_clips == 5 and adapt.current(session).speech_seconds == pytest.approx(15.0)
    assert answer.adapted and answer.adaptation_clips == 5 and answer.top_emotion == "angry"
    assert adapt.live_window_due(0.5, 3.0, session)  # a new stream starts again from 0 s
    quiet = adapt.classify_live(predictor, wave, 16_000, 0.55, collect=False, stream_seconds=16.0,
                                window_seconds=3.0, session=session)
    assert quiet.adapted and predictor.samples == 15  # not collecting: predict_wave, adapted
    with pytest.raises(NotEnoughSpeech):
        adapt.classify_live(predictor, np.zeros(48_000, np.float32), 16_000, 0.55, collect=True,
                            stream_seconds=20.0, window_seconds=3.0, session=session)
    assert adapt.current(session).n_clips == 5


def test_cnn_predictor_does_not_adapt() -> None:
    class Cnn:
        supports_adaptation = False

    assert not adapt.supported(Cnn()) and not adapt.supported(object())
    assert adapt.in_use(Cnn(), {}) is None


@pytest.fixture
def whisper_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The app over a Whisper-type config, with the stand-in predictor."""
    config = dict(fake_reports()["config.json"], kind="whisper_embedding_head", model_name="whisper test")
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "model.keras").write_bytes(b"")
    monkeypatch.setenv("SER_ARTIFACTS_DIR", str(tmp_path))
    predictor = WhisperLikePredictor()
    monkeypatch.setattr(support, "get_predictor", lambda: predictor)
    return predictor


def test_adapt_page_collects_clips_and_analyse_says_adapted(whisper_app: WhisperLikePredictor) -> None:
    app = AppTest.from_file(str(APP_FILE), default_timeout=TIMEOUT).run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("Not adapted to your voice yet" in m.value for m in app.markdown)
    app.switch_page("pages/adapt.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("15–30 seconds of speech" in m.value for m in app.markdown)
    assert any("Nothing is stored on disk" in c.value for c in app.caption)
    clips = [("one.wav", wav_bytes(speech_like(9.0, seed=1)), "audio/wav"),
             ("two.wav", wav_bytes(speech_like(9.0, seed=2)), "audio/wav"),
             ("quiet.wav", wav_bytes(np.zeros(32_000)), "audio/wav")]
    app.file_uploader[0].set_value(clips).run()
    assert not app.exception, [e.value for e in app.exception]
    shown = {m.label: m.value for m in app.main.metric}
    assert shown == {"Recordings": "2", "Speech": "18 s", "In use": "yes"}
    assert any("No speech heard" in i.value for i in app.info)  # the silent clip: the honest state
    assert any("Adapted to your voice: 18 s of speech from 2 recordings." in m.value for m in app.markdown)
    assert any("your clips sound: angry ×2." in c.value for c in app.caption)

    app.switch_page("pages/analyse.py").run()
    app.file_uploader[0].set_value(("me.wav", wav_bytes(speech_like(3.0)), "audio/wav")).run()
    assert not app.exception, [e.value for e in app.exception]
    assert whisper_app.adaptations[-1] is not None and whisper_app.adaptations[-1].n_clips == 2
    assert any("Adapted to your voice (2 recordings, 18 s of speech)." in c.value for c in app.caption)

    app.toggle(key="analyse_adapt_switch").set_value(False).run()  # off: the same clip, not adapted
    assert whisper_app.adaptations[-1] is None
    assert not any("Adapted to your voice (" in c.value for c in app.caption)
    app.switch_page("pages/adapt.py").run()
    assert app.toggle(key="adapt_page_switch").value is False  # one setting across the pages
    app.button[0].click().run()  # Clear
    assert {m.label: m.value for m in app.main.metric}["Recordings"] == "0"


def test_adapt_page_with_the_cnn_says_it_cannot_adapt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Cnn(WhisperLikePredictor):
        supports_adaptation = False

    (tmp_path / "config.json").write_text(json.dumps(fake_reports()["config.json"]))
    monkeypatch.setenv("SER_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.setattr(support, "get_predictor", lambda: Cnn())
    app = AppTest.from_file(str(APP_FILE), default_timeout=TIMEOUT).run()
    assert not app.exception, [e.value for e in app.exception]
    assert not any("adapted" in m.value.lower() for m in app.markdown)  # no status line
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app.switch_page("pages/adapt.py")  # not in the navigation for the CNN


def test_adapt_page_says_so_when_the_model_cannot_adapt(monkeypatch: pytest.MonkeyPatch,
                                                        whisper_app: WhisperLikePredictor) -> None:
    whisper_app.supports_adaptation = False  # a Whisper-type config, a predictor without adaptation
    app = AppTest.from_file(str(APP_FILE), default_timeout=TIMEOUT).run()
    app.switch_page("pages/adapt.py").run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("cannot adapt" in i.value for i in app.info)


def test_a_second_copy_of_the_same_audio_is_reported_not_counted() -> None:
    session: dict = {}
    predictor = WhisperLikePredictor()
    wave = speech_like(6.0)
    first = adapt.add_clip(predictor, wave, 16_000, clip_id=b"same bytes", session=session, source_id="upload-1")
    rerun = adapt.add_clip(predictor, wave, 16_000, clip_id=b"same bytes", session=session, source_id="upload-1")
    copy = adapt.add_clip(predictor, wave, 16_000, clip_id=b"same bytes", session=session, source_id="upload-2")
    assert first.added and not rerun.added and not rerun.duplicate
    assert not copy.added and copy.duplicate and copy.adaptation.n_clips == 1 and predictor.samples == 1
    again = adapt.add_clip(predictor, wave, 16_000, clip_id=b"same bytes", session=session, source_id="upload-2")
    assert not again.duplicate  # the page reruns: said once per copy, not on every rerun
    adapt.clear(session)
    assert adapt.SOURCES_KEY not in session
