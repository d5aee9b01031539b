"""Inference: one predictor, loaded once, shared by the app, the Live page and the command line.

The predictor never asks which kind of model it holds: ``config.json`` picks one front end
(:mod:`ser_core.inference.front_ends`), which turns audio into the timeline's probabilities through
its own features and head:

- the Whisper embedding model (``"whisper_embedding_head"``, the default since issue 14):
  :class:`~ser_core.inference.whisper_head_front.WhisperHeadFront`, encoder frames pooled per clip,
  window and speech segment, standardised (the user's own statistics when adapted), one head;
- the log-mel CNN ensemble: :class:`~ser_core.inference.log_mel_front.LogMelWindowsFront`, 3 s
  windows of the joined speech, the CNN per window, averaged after the head.

Written once here: checking the input, opening a file (decoded whole up to
:data:`WHOLE_FILE_SECONDS`; longer files, without kept features, in bounded memory), the answer's set
of emotions, the labels and the timeline of the :class:`Prediction`, and the batch verbs of an
adaptable model. Audio without enough speech raises :class:`NotEnoughSpeech` instead of an answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ser_core.inference import artifacts
from ser_core.inference.adaptation import Adaptation, AdaptationSample
from ser_core.inference.audio import AudioError, AudioSource, open_audio_stream, resample, to_mono
from ser_core.inference.embedding_head import standardise
from ser_core.inference.emotion_sets import DEFAULT_COVERAGE, EmotionSets, check_coverage
from ser_core.inference.front_ends import FileReading, FrontEnd, Heard, front_end_class, temperatures
from ser_core.inference.linear_head import LinearHead
from ser_core.inference.prediction import (
    DEFAULT_THRESHOLD,
    UNCERTAIN,
    Prediction,
    SpeechSegment,
    WindowPrediction,
    check_threshold,
)
from ser_core.inference.scoring import softmax
from ser_core.inference.self_training import MIN_SELF_TRAINING_CLIPS, SELF_TRAINING_HEADS, self_train as self_train_head
from ser_core.inference.speech import NotEnoughSpeech
from ser_core.inference.whisper_head_front import WHISPER_LOG_MEL

__all__ = [
    "DEFAULT_THRESHOLD", "MAX_AUDIO_SECONDS", "UNCERTAIN", "WHISPER_KIND", "WHISPER_LOG_MEL", "ModelDamagedError",
    "ModelNotFoundError", "NotEnoughSpeech",
    "Prediction", "Predictor", "SpeechSegment", "WindowPrediction", "check_threshold",
]

# Default length limit of predict_file (the app's uploads); the command-line tools pass None.
MAX_AUDIO_SECONDS = 60.0
BLOCK_SECONDS = 30.0  # decoded per block when a file is read block by block
# Files up to this long may be decoded whole (one reading, the training computation as is); a front
# end reads longer ones, without kept features, in memory that does not grow with them.
WHOLE_FILE_SECONDS = 60.0
WHISPER_KIND = artifacts.WHISPER_KIND


class Predictor:
    """Loads ``model.keras`` and ``config.json`` once; classifies files and waveforms.

    Parameters
    ----------
    model : keras.Model
        Log-mel CNN: log-mels ``[n, n_mels, n_frames, 1]`` to emotion logits ``[n, n_emotions]``.
        Whisper head: standardised features ``[n, d]`` to logits ``[n, n_emotions]``.
    config : dict
        ``artifacts/config.json``: ``emotions``, optional ``temperature`` (``temperature_adapted`` once a
            user's adaptation applies) and ``threshold``; the CNN's
        ``feature_params``, or a Whisper model's ``kind``, ``front_end``, ``recipe`` and
        ``standardisation``.
    encoder : WhisperEncoder, optional
        Whisper models only: the encoder to use (default: the pinned weights, loaded once per process).

    Attributes
    ----------
    model_front : FrontEnd
        The model kind's front end and head (:mod:`ser_core.inference.front_ends`).

    Examples
    --------
    >>> predictor = Predictor.from_artifacts()
    >>> result = predictor.predict_file("clip.wav")
    >>> result.label, result.confidence, [s.label for s in result.segments]
    """

    def __init__(self, model, config: dict[str, Any], *, encoder=None):
        self.model = model
        self.config = config
        options = {} if encoder is None else {"encoder": encoder}
        self.model_front: FrontEnd = front_end_class(config)(model, config, **options)
        self.kind: str = self.model_front.kind
        self.params = self.model_front.params
        self.head_kind: str = self.model_front.head_kind
        self.adaptation_key: str | None = self.model_front.adaptation_key
        self.emotions: tuple[str, ...] = tuple(config["emotions"])
        self.temperature, self.temperature_adapted, self.temperature_self_trained = temperatures(config)
        self.threshold = check_threshold(config.get("threshold", DEFAULT_THRESHOLD))
        # The answer as a set of emotions with a stated coverage, calibrated by train.py (inference.emotion_sets)
        self.emotion_sets = EmotionSets.from_config(config)

    # A Whisper model's front-end record, layers, statistics and encoder, read where they always were.
    front_end = property(lambda self: self.model_front.front_end)
    layers = property(lambda self: self.model_front.layers)
    statistics = property(lambda self: self.model_front.statistics)
    _encoder = property(lambda self: self.model_front.encoder)

    @classmethod
    def from_artifacts(cls, directory: str | Path | None = None) -> "Predictor":
        """Load the model folder (default: :func:`ser_core.inference.artifacts.artifacts_dir`).

        Raises
        ------
        ModelNotFoundError
            No model there, or a Whisper model without its encoder weights (the message says what to do).
        ModelDamagedError
            The model or its config is there but cannot be read (a subclass of
            :class:`ModelNotFoundError`, so existing handlers still catch it).

        Notes
        -----
        Loading a Whisper model limits numpy's BLAS to one thread for the whole process.
        """
        directory = Path(directory or artifacts.artifacts_dir())
        model, config = artifacts.load_model_and_config(directory)
        predictor = cls(model, config, **front_end_class(config).serving_options(config))
        predictor.model_front.warm_up()  # graphs, speech detector, encoder: now, not on a user's first clip
        return predictor

    @property
    def supports_adaptation(self) -> bool:
        """True for models that can use a user's :class:`~ser_core.inference.adaptation.Adaptation`."""
        return self.model_front.supports_adaptation

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Raw model outputs: for log-mels ``[n, n_mels, n_frames]``, or standardised Whisper features ``[n, d]``."""
        return self.model_front.logits(features)

    def adaptation_sample(self, wave: np.ndarray, sample_rate: int) -> AdaptationSample:
        """One adaptation clip: what :meth:`Adaptation.add <ser_core.inference.adaptation.Adaptation.add>` takes.

        Parameters
        ----------
        wave : np.ndarray
            ``[n]``, ``[channels, n]`` or ``[n, channels]`` samples in [-1, 1]; any emotion, any words.
        sample_rate : int
            Its rate, Hz.

        Returns
        -------
        AdaptationSample

        Raises
        ------
        NotEnoughSpeech
            As for a prediction: silence, no speech or too little speech.
        AudioError
            Non-finite samples.
        ValueError
            The model does not support adaptation (:attr:`supports_adaptation` is False).
        """
        if not self.supports_adaptation:
            raise ValueError("this model does not support adaptation (it is not a Whisper embedding model)")
        wave = self._checked_wave(wave, sample_rate, None)
        return self.model_front.adaptation_sample(wave)

    def probabilities_of(self, sample: AdaptationSample, adaptation: Adaptation | None = None) -> dict[str, float]:
        """A clip's emotion probabilities from its :meth:`adaptation_sample`: the clip answer of a prediction.

        Lets ``evaluate --adapt`` embed each file once: first every clip into the folder's
        adaptation, then each clip's answer with it.
        """
        if sample.model_key != self.adaptation_key:
            raise ValueError("this clip was measured for another model")
        use, mean, std = self.model_front.standardisation(adaptation)
        return self._named(self.model_front.head_probabilities(standardise(sample.features[None], mean, std), use)[0])

    @property
    def supports_self_training(self) -> bool:
        """True when the head can re-fit itself on a batch (:meth:`batch_probabilities`): a head scored on the
        least-squares +-1 scale (the ridge, alone or with its logistic member), read as weights."""
        return (self.supports_adaptation and self.head_kind in SELF_TRAINING_HEADS
                and isinstance(self.model, LinearHead))

    def self_trains(self, n_clips: int) -> bool:
        """Whether :meth:`batch_probabilities` with ``self_train`` re-fits the head for a batch of ``n_clips``."""
        return self.supports_self_training and n_clips >= MIN_SELF_TRAINING_CLIPS

    def batch_probabilities(self, samples: list[AdaptationSample],
                            adaptation: Adaptation | list[Adaptation | None] | None = None, *,
                            self_train: bool = False) -> list[dict[str, float]]:
        """Every clip's probabilities, as :meth:`probabilities_of`; with ``self_train`` the head first learns the batch.

        ``adaptation`` is one for the whole batch (a folder's statistics), or one per sample (each
        speaker's own). ``self_train`` (:func:`ser_core.inference.self_training.self_train`) then
        re-fits the head towards its surest answers on these clips: for a batch of at least
        ``MIN_SELF_TRAINING_CLIPS`` clips of one setup that holds several emotions. A smaller batch, or
        a model that cannot (:attr:`supports_self_training`), is scored without it.
        """
        if any(sample.model_key != self.adaptation_key for sample in samples):
            raise ValueError("a clip was measured for another model")
        if not samples:
            return []
        per_sample = adaptation if isinstance(adaptation, list) else [adaptation] * len(samples)
        if len(per_sample) != len(samples):
            raise ValueError(f"{len(per_sample)} adaptations for {len(samples)} clips")
        rows, used = [], []
        for sample, own in zip(samples, per_sample):
            use, mean, std = self.model_front.standardisation(own)
            rows.append(standardise(sample.features, mean, std))
            used.append(use)
        rows = np.stack(rows)
        if self_train and self.self_trains(len(samples)):
            logits = self_train_head(self.model, rows).predict_on_batch(rows).astype(np.float64)
            probabilities = softmax(logits, self.temperature_self_trained)
        else:
            used = np.array(used)
            probabilities = np.empty((len(rows), len(self.emotions)))
            for flag in (False, True):
                if (used == flag).any():
                    probabilities[used == flag] = self.model_front.head_probabilities(rows[used == flag], flag)
        return [self._named(row) for row in probabilities]

    def predict_file(self, source: AudioSource, threshold: float | None = None, *,
                     max_seconds: float | None = MAX_AUDIO_SECONDS, keep_features: bool = True,
                     progress: Callable[[float, float | None], None] | None = None,
                     adaptation: Adaptation | None = None, coverage: float | None = None) -> Prediction:
        """Classify an audio file (path, bytes or file object), decoding it block by block.

        Parameters
        ----------
        source : str, Path, bytes or binary file object
            wav, flac, mp3, ogg, m4a or webm, any rate and channel count.
        threshold : float, optional
            Confidence in [0, 1] below which the answer is "uncertain" (default: the model's).
        max_seconds : float or None
            Refuse longer audio before decoding it; None classifies any length.
        keep_features : bool
            Keep the model's input in :attr:`Prediction.features` (False for long files).
        progress : callable, optional
            Called after each block with ``(seconds decoded, total seconds or None)``.
        adaptation : Adaptation, optional
            The user's clips; used when ready and made for this model (``Prediction.adapted`` says).
        coverage : float, optional
            How often the answer's set of emotions should hold the true one (default 0.9; the model
            is calibrated for 0.8, 0.9 and 0.95: :attr:`emotion_sets`).

        Returns
        -------
        Prediction

        Raises
        ------
        NotEnoughSpeech
            Silence, no speech, or too little speech; the message names the file.
        AudioError
            Missing, empty, undecodable, damaged or too long; the message names the file.
        ValueError
            ``threshold`` outside [0, 1].
        """
        threshold = self.threshold if threshold is None else check_threshold(threshold)
        coverage = DEFAULT_COVERAGE if coverage is None else check_coverage(coverage)
        rate = self.params.sample_rate
        stream = open_audio_stream(source, rate, block_seconds=BLOCK_SECONDS, max_seconds=max_seconds)
        reading = FileReading(
            stream, lambda: open_audio_stream(source, rate, block_seconds=BLOCK_SECONDS, max_seconds=max_seconds),
            progress, short=stream.duration_s is not None and stream.duration_s <= WHOLE_FILE_SECONDS)
        heard = self.model_front.hear_file(reading, keep_features=keep_features, adaptation=adaptation)
        result = self._answer(heard, threshold)
        return self.with_coverage(result, coverage)

    def predict_wave(self, wave: np.ndarray, sample_rate: int, threshold: float | None = None, *,
                     max_seconds: float | None = None, adaptation: Adaptation | None = None,
                     coverage: float | None = None) -> Prediction:
        """Classify a waveform.

        Parameters
        ----------
        wave : np.ndarray
            ``[n]``, ``[channels, n]`` or ``[n, channels]`` samples in [-1, 1].
        sample_rate : int
            Its rate, Hz (resampled to the model's).
        threshold : float, optional
            Confidence in [0, 1] below which the answer is "uncertain" (default: the model's).
        max_seconds : float or None
            Refuse longer audio (None: any length).
        adaptation : Adaptation, optional
            The user's clips; used when ready and made for this model (``Prediction.adapted`` says).
        coverage : float, optional
            As for :meth:`predict_file`.

        Returns
        -------
        Prediction

        Raises
        ------
        NotEnoughSpeech
            Silence, no speech, or too little speech.
        AudioError
            Longer than ``max_seconds``, or non-finite samples.
        ValueError
            ``threshold`` outside [0, 1].
        """
        threshold = self.threshold if threshold is None else check_threshold(threshold)
        coverage = DEFAULT_COVERAGE if coverage is None else check_coverage(coverage)
        wave = self._checked_wave(wave, sample_rate, max_seconds)
        heard = self.model_front.hear_wave(wave, keep_features=True, name=None, adaptation=adaptation)
        return self.with_coverage(self._answer(heard, threshold), coverage)

    def emotion_set(self, probabilities: dict[str, float], *, adapted: bool = False,
                    coverage: float = DEFAULT_COVERAGE) -> list[str]:
        """The set of emotions for one answer's probabilities (most likely first), as in :attr:`Prediction.emotions`.

        ``adapted``: the probabilities came from a user's adaptation (its own calibration). For the
        answers of :meth:`probabilities_of` and :meth:`batch_probabilities`.
        """
        values = np.array([probabilities[emotion] for emotion in self.emotions], np.float64)
        return self.emotion_sets.names(values, self.emotions, coverage, adapted)

    def with_coverage(self, result: Prediction, coverage: float) -> Prediction:
        """A copy of ``result`` whose sets (the clip's, each speech segment's and each window's, one calibration)
        are made for ``coverage``: another setting without running the model again."""
        coverage = check_coverage(coverage)

        def named(probabilities: dict[str, float]) -> list[str]:
            return self.emotion_set(probabilities, adapted=result.adapted, coverage=coverage)

        return dataclasses.replace(
            result, emotions=named(result.probabilities), coverage=coverage,
            segments=[dataclasses.replace(s, emotions=named(s.probabilities)) for s in result.segments],
            windows=[dataclasses.replace(w, emotions=named(w.probabilities)) for w in result.windows])

    # ------------------------------------------------------------------ internals
    def _checked_wave(self, wave: np.ndarray, sample_rate: int, max_seconds: float | None) -> np.ndarray:
        wave = to_mono(wave)
        if max_seconds is not None and wave.size / sample_rate > max_seconds:
            raise AudioError(f"The audio is {wave.size / sample_rate:.0f} s long; the limit is "
                             f"{max_seconds:.0f} s. Trim it and try again.")
        if not np.all(np.isfinite(wave)):
            raise AudioError("The audio contains invalid (non-finite) samples.")
        return resample(wave, sample_rate, self.params.sample_rate)

    def _answer(self, heard: Heard, threshold: float) -> Prediction:
        """The :class:`Prediction` of what a front end heard: the clip's answer and the timeline, labelled."""
        clip = heard.clip
        top = int(np.argmax(clip))
        windows = [WindowPrediction(start, end, self._named(p)) for start, end, p in heard.windows]
        return Prediction(
            probabilities=self._named(clip),
            top_emotion=self.emotions[top],
            confidence=float(clip[top]),
            uncertain=bool(clip[top] < threshold),
            threshold=threshold,
            duration_s=heard.duration_s,
            features=heard.features,
            window_starts=np.array([w.start_s for w in windows]),
            windows=windows,
            speech_seconds=heard.speech_seconds,
            segments=[self._segment(start, end, p, threshold) for start, end, p in heard.segments],
            adapted=heard.adapted,
            adaptation_clips=heard.adaptation_clips,
        )

    def _segment(self, start_s: float, end_s: float, probabilities: np.ndarray, threshold: float) -> SpeechSegment:
        """One speech segment's answer from its emotion probabilities ("uncertain" below ``threshold``)."""
        top = int(np.argmax(probabilities))
        return SpeechSegment(
            start_s=start_s, end_s=end_s,
            label=UNCERTAIN if probabilities[top] < threshold else self.emotions[top],
            top_emotion=self.emotions[top], confidence=float(probabilities[top]),
            probabilities=self._named(probabilities),
        )

    def _named(self, probabilities: np.ndarray) -> dict[str, float]:
        return {emotion: float(p) for emotion, p in zip(self.emotions, probabilities)}


ModelNotFoundError = artifacts.ModelNotFoundError
ModelDamagedError = artifacts.ModelDamagedError
