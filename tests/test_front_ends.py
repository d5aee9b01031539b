"""The predictor through its one front-end interface (ser_core.inference.front_ends).

The predictor must not care which kind of model it holds: a front end that is neither Whisper nor
the CNN (here a stand-in that "hears" a fixed timeline) gets the same labels, sets, thresholds and
Prediction as the real kinds. No model weights or TensorFlow needed.
"""

from __future__ import annotations

import numpy as np
import pytest

from ser_core.inference.front_ends import FileReading, Heard, front_end_class, temperatures
from ser_core.inference.log_mel_front import LogMelWindowsFront
from ser_core.inference.params import EMOTIONS, FeatureParams
from ser_core.inference.predictor import UNCERTAIN, Predictor
from ser_core.inference.whisper_head_front import WhisperHeadFront


class HeardFront:
    """A front end of a new kind: whatever audio it gets, this timeline."""

    kind = "stand_in"
    head_kind = "stand_in"
    supports_adaptation = False
    adaptation_key = None

    def __init__(self, heard: Heard) -> None:
        self.params = FeatureParams()
        self.heard = heard
        self.calls: list[str] = []

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        return np.zeros((len(inputs), len(EMOTIONS)))

    def hear_wave(self, wave, *, keep_features, name, adaptation) -> Heard:
        self.calls.append(f"wave {wave.size} keep={keep_features}")
        return self.heard

    def hear_file(self, reading: FileReading, *, keep_features, adaptation) -> Heard:
        wave = np.concatenate(list(reading.blocks()))
        self.calls.append(f"file {wave.size} short={reading.short} keep={keep_features}")
        return self.heard


def _one_hot(index: int, sure: float) -> np.ndarray:
    p = np.full(len(EMOTIONS), (1 - sure) / (len(EMOTIONS) - 1))
    p[index] = sure
    return p


@pytest.fixture
def stand_in() -> tuple[Predictor, HeardFront]:
    config = {"emotions": list(EMOTIONS), "feature_params": FeatureParams().to_dict(), "threshold": 0.5}
    predictor = Predictor(None, config)  # a CNN config: nothing is loaded until a clip is heard
    heard = Heard(clip=_one_hot(2, 0.9), windows=[(0.0, 3.0, _one_hot(2, 0.9)), (1.5, 4.5, _one_hot(0, 0.3))],
                  segments=[(0.2, 4.4, _one_hot(4, 0.4))], duration_s=5.0, speech_seconds=4.2,
                  features=np.zeros((0, 40, 10), np.float32))
    predictor.model_front = HeardFront(heard)
    return predictor, predictor.model_front


def test_the_predictor_labels_whatever_front_end_it_holds(stand_in) -> None:
    predictor, front = stand_in
    result = predictor.predict_wave(np.zeros(8_000, np.float32), 8_000)
    assert front.calls == [f"wave {predictor.params.sample_rate} keep=True"]  # resampled to the model's rate
    assert result.top_emotion == EMOTIONS[2] and result.label == EMOTIONS[2] and result.confidence == pytest.approx(0.9)
    assert result.duration_s == 5.0 and result.speech_seconds == 4.2 and not result.adapted
    assert [w.start_s for w in result.windows] == [0.0, 1.5] and list(result.window_starts) == [0.0, 1.5]
    assert [(s.start_s, s.end_s, s.label, s.top_emotion) for s in result.segments] == [
        (0.2, 4.4, UNCERTAIN, EMOTIONS[4])]  # 0.4 is below the model's threshold
    assert result.coverage == 0.9 and result.emotions and all(w.emotions for w in result.windows)
    assert predictor.predict_wave(np.zeros(100), 16_000, threshold=0.95).label == UNCERTAIN


def test_files_reach_the_front_end_as_a_reading(stand_in, tmp_path) -> None:
    import soundfile

    predictor, front = stand_in
    path = tmp_path / "a.wav"
    soundfile.write(path, np.zeros(16_000, np.float32), 16_000)
    seen: list[float] = []
    result = predictor.predict_file(str(path), keep_features=False, progress=lambda done, total: seen.append(done))
    assert front.calls == ["file 16000 short=True keep=False"] and seen == [1.0]
    assert result.top_emotion == EMOTIONS[2]


def test_config_kind_picks_the_front_end_and_temperatures_default_in_order() -> None:
    assert front_end_class({"kind": "whisper_embedding_head"}) is WhisperHeadFront
    assert front_end_class({"feature_params": {}}) is LogMelWindowsFront
    assert temperatures({}) == (1.0, 1.0, 1.0)
    assert temperatures({"temperature": 2.0}) == (2.0, 2.0, 2.0)
    assert temperatures({"temperature": 2.0, "temperature_adapted": 1.5}) == (2.0, 1.5, 1.5)


def test_a_model_without_adaptation_refuses_its_verbs(stand_in) -> None:
    predictor, _ = stand_in
    assert not predictor.supports_adaptation and not predictor.supports_self_training
    with pytest.raises(ValueError, match="does not support adaptation"):
        predictor.adaptation_sample(np.zeros(16_000), 16_000)
