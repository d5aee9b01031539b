"""Inference: one predictor, loaded once, shared by the app and the command line."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser_core.inference import artifacts
from ser_core.inference.audio import AudioError, AudioSource, load_audio, resample, to_mono
from ser_core.inference.scoring import clip_probabilities, softmax
from ser_core.inference.features import clip_features, is_silent
from ser_core.inference.params import FeatureParams

DEFAULT_THRESHOLD = 0.55
MAX_AUDIO_SECONDS = 60.0
UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class WindowPrediction:
    start_s: float
    end_s: float
    probabilities: dict[str, float]


@dataclass
class Prediction:
    probabilities: dict[str, float]
    top_emotion: str
    confidence: float
    uncertain: bool
    threshold: float
    duration_s: float
    features: np.ndarray = field(repr=False)  # [n_windows, n_mels, n_frames], the model's input
    window_starts: np.ndarray = field(repr=False)
    windows: list[WindowPrediction] = field(default_factory=list)

    @property
    def label(self) -> str:
        return UNCERTAIN if self.uncertain else self.top_emotion

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "top_emotion": self.top_emotion,
            "confidence": self.confidence,
            "uncertain": self.uncertain,
            "threshold": self.threshold,
            "duration_s": self.duration_s,
            "probabilities": self.probabilities,
            "windows": [
                {"start_s": w.start_s, "end_s": w.end_s, "probabilities": w.probabilities}
                for w in self.windows
            ],
        }


class Predictor:
    """Loads ``model.keras`` and ``config.json`` once; classifies files and waveforms."""

    def __init__(self, model, config: dict[str, Any]):
        self.model = model
        self.config = config
        self.params = FeatureParams.from_dict(config["feature_params"])
        self.emotions: tuple[str, ...] = tuple(config["emotions"])
        self.temperature = float(config.get("temperature", 1.0))
        self.threshold = float(config.get("threshold", DEFAULT_THRESHOLD))
        self._lock = threading.Lock()

    @classmethod
    def from_artifacts(cls, directory: str | Path | None = None) -> "Predictor":
        directory = Path(directory or artifacts.artifacts_dir())
        model_path = directory / artifacts.MODEL_FILE
        config = artifacts.read_json_artifact(artifacts.CONFIG_FILE, directory)
        if not model_path.is_file() or config is None:
            raise ModelNotFoundError(
                f"No trained model in {directory}. Train one with: {artifacts.TRAIN_COMMAND}"
            )
        try:
            model = artifacts.load_model(model_path)
        except Exception as error:
            raise ModelNotFoundError(
                f"The model in {directory} could not be loaded ({error}). "
                f"Train a new one with: {artifacts.TRAIN_COMMAND}"
            ) from error
        predictor = cls(model, config)
        # Warm-up: builds the mel filters and traces the predict graph now, not on a user's first clip.
        predictor.predict_wave(np.zeros(predictor.params.sample_rate, np.float32) + 1e-3, predictor.params.sample_rate)
        return predictor

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Raw model outputs for a batch of log-mels ``[n, n_mels, n_frames]``."""
        with self._lock:  # predict_on_batch runs a compiled graph: ~5x faster than an eager call
            return np.asarray(self.model.predict_on_batch(features[..., None]), dtype=np.float64)

    def predict_file(self, source: AudioSource, threshold: float | None = None) -> Prediction:
        wave = load_audio(source, self.params.sample_rate, max_seconds=MAX_AUDIO_SECONDS)
        return self.predict_wave(wave, self.params.sample_rate, threshold)

    def predict_wave(
        self, wave: np.ndarray, sample_rate: int, threshold: float | None = None
    ) -> Prediction:
        wave = resample(to_mono(wave), sample_rate, self.params.sample_rate)
        if is_silent(wave):
            raise AudioError("The audio is silent: there is no speech to classify.")
        threshold = self.threshold if threshold is None else float(threshold)
        features, starts = clip_features(wave, self.params)
        logits = self.logits(features)
        window_probabilities = softmax(logits, self.temperature)
        mean = clip_probabilities(logits, np.zeros(len(logits), dtype=int), self.temperature)[0]
        top = int(np.argmax(mean))
        duration = wave.size / self.params.sample_rate
        windows = [
            WindowPrediction(
                float(start), float(min(start + self.params.clip_seconds, duration)),
                self._named(probabilities),
            )
            for start, probabilities in zip(starts, window_probabilities)
        ]
        return Prediction(
            probabilities=self._named(mean),
            top_emotion=self.emotions[top],
            confidence=float(mean[top]),
            uncertain=bool(mean[top] < threshold),
            threshold=threshold,
            duration_s=duration,
            features=features,
            window_starts=starts,
            windows=windows,
        )

    def _named(self, probabilities: np.ndarray) -> dict[str, float]:
        return {emotion: float(p) for emotion, p in zip(self.emotions, probabilities)}


ModelNotFoundError = artifacts.ModelNotFoundError
