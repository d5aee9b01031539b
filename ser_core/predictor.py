"""``from ser_core.predictor import Predictor``: kept at its published path; the class lives in
``ser_core.inference.predictor``."""

from ser_core.inference.predictor import (
    DEFAULT_THRESHOLD, MAX_AUDIO_SECONDS, UNCERTAIN, ModelDamagedError, ModelNotFoundError,
    NotEnoughSpeech, Prediction, Predictor, SpeechSegment, WindowPrediction, check_threshold,
)

__all__ = [
    "DEFAULT_THRESHOLD", "MAX_AUDIO_SECONDS", "UNCERTAIN", "ModelDamagedError",
    "ModelNotFoundError", "NotEnoughSpeech", "Prediction", "Predictor", "SpeechSegment",
    "WindowPrediction", "check_threshold",
]
