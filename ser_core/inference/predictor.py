"""Inference: one predictor, loaded once, shared by the app, the Live page and the command line.

Two kinds of model, told apart by ``config.json`` (``"kind"``):

- the Whisper embedding model (``"whisper_embedding_head"``, the default since issue 14): audio ->
  speech detector -> the speech regions joined, level-normalised -> Whisper encoder (one pass) ->
  frame means of the chosen layers -> standardised (the training default, or the user's own
  statistics: :mod:`ser_core.inference.adaptation`) -> head -> temperature softmax. The clip's
  answer comes from all its frames, exactly the training feature
  (:mod:`ser_core.inference.whisper_front`); the timeline pools the same frames per ~3 s window and
  per speech segment. Files up to :data:`WHOLE_FILE_SECONDS` are decoded whole; longer ones (without
  kept features) are read block by block three times in bounded memory, with the same answer.
- the log-mel CNN ensemble: audio at the model's rate -> speech detector
  (:mod:`ser_core.inference.speech`) -> the speech regions only, joined by short pauses -> 3 s
  windows -> model -> window probabilities -> the clip's answer (their mean) and one answer per
  speech segment. Files are decoded and classified block by block, so a recording of any length
  fits in memory.

Audio without enough speech raises :class:`NotEnoughSpeech` instead of an answer, for both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ser_core.inference import artifacts
from ser_core.inference.adaptation import Adaptation, AdaptationSample
from ser_core.inference.audio import (
    AudioError,
    AudioSource,
    open_audio_stream,
    resample,
    to_mono,
)
from ser_core.inference.embedding_head import head_input, standardise
from ser_core.inference.emotion_sets import DEFAULT_COVERAGE, EmotionSets, check_coverage
from ser_core.inference.features import SILENCE_PEAK, log_mel
from ser_core.inference.linear_head import LinearHead
from ser_core.inference.params import EmbeddingParams, FeatureParams
from ser_core.inference.prediction import (
    DEFAULT_THRESHOLD,
    UNCERTAIN,
    Prediction,
    SpeechSegment,
    WindowPrediction,
    check_threshold,
)
from ser_core.inference.scoring import softmax
from ser_core.inference.self_training import MIN_SELF_TRAINING_CLIPS, self_train as self_train_head
from ser_core.inference.speech import (
    MIN_SPEECH_SECONDS,
    NotEnoughSpeech,
    StreamingSpeechDetector,
)
from ser_core.inference.speech_stream import (
    LoudFrames,
    SpanPool,
    SpeechPieces,
    SpeechWindows,
    stream_to_input,
    window_spans,
)
from ser_core.inference.voice_check import VoiceCheck, refuse_if_not_voice, voice_evidence

__all__ = [
    "DEFAULT_THRESHOLD", "MAX_AUDIO_SECONDS", "UNCERTAIN", "WHISPER_KIND", "WHISPER_LOG_MEL", "ModelDamagedError",
    "ModelNotFoundError", "NotEnoughSpeech",
    "Prediction", "Predictor", "SpeechSegment", "WindowPrediction", "check_threshold",
]

# Default length limit of predict_file (the app's uploads); the command-line tools pass None.
MAX_AUDIO_SECONDS = 60.0
WINDOWS_PER_BATCH = 16  # 16 x 3 s windows per model call: ~1 MB of features
BLOCK_SECONDS = 30.0  # decoded per block when a file is read block by block
# A Whisper model decodes files up to this long whole (one reading, the training computation as
# is); longer ones, without kept features, are read three times block by block in bounded memory
# (Predictor._predict_whisper_long), with the same answer.
WHOLE_FILE_SECONDS = 60.0
ROWS_PER_BATCH = 32  # pooled rows per head call on a long file
# Share of a long Whisper file's progress bar per reading: level scan, speech detection, encoder.
_READING_SHARES = (0.05, 0.15, 0.80)
WHISPER_KIND = artifacts.WHISPER_KIND
# The Whisper log-mel the page shows for a Whisper model (80 bands, 25 ms windows, 10 ms hop, 0-8 kHz).
WHISPER_LOG_MEL = FeatureParams(n_mels=80, win_length=400, hop_length=160, n_fft=400, fmin=0.0, fmax=8_000.0,
                                clip_seconds=3.0, top_db=80.0)



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

    Examples
    --------
    >>> predictor = Predictor.from_artifacts()
    >>> result = predictor.predict_file("clip.wav")
    >>> result.label, result.confidence, [s.label for s in result.segments]
    """

    def __init__(self, model, config: dict[str, Any], *, encoder=None):
        self.model = model
        self.config = config
        self.kind = WHISPER_KIND if config.get("kind") == WHISPER_KIND else "log_mel"
        self.emotions: tuple[str, ...] = tuple(config["emotions"])
        self.temperature = float(config.get("temperature", 1.0))
        # Adapted to a user's voice, the head's answers are sharper; older configs have one temperature.
        self.temperature_adapted = float(config.get("temperature_adapted", self.temperature))
        # A head re-fitted on a batch's own answers is sharper still (docs/experiments.md, self-training).
        self.temperature_self_trained = float(config.get("temperature_self_trained", self.temperature_adapted))
        self.threshold = check_threshold(config.get("threshold", DEFAULT_THRESHOLD))
        # The answer as a set of emotions with a stated coverage, calibrated by train.py (inference.emotion_sets)
        self.emotion_sets = EmotionSets.from_config(config)
        self._lock = threading.Lock()
        if self.kind == WHISPER_KIND:
            self.front_end = EmbeddingParams.from_dict(config["front_end"])
            recipe = config["recipe"]
            self.layers: tuple[int, ...] = tuple(int(layer) for layer in recipe["layers"])
            self.statistics: str = recipe["statistics"]
            self.head_kind: str = recipe.get("head", "lr")
            default = config["standardisation"]["default"]
            self._mean = np.asarray(default["mean"], np.float64)
            self._std = np.asarray(default["std"], np.float64)
            self.params = FeatureParams.from_dict(config.get("feature_params") or WHISPER_LOG_MEL.to_dict())
            identity = [self.front_end.to_dict(), list(self.layers), self.statistics]
            self.adaptation_key = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
            self._encoder = encoder
        else:
            self.params = FeatureParams.from_dict(config["feature_params"])
            self.adaptation_key = None
            self.head_kind = "cnn"

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
        if config.get("kind") == WHISPER_KIND:
            from threadpoolctl import threadpool_limits

            # One BLAS thread for the numpy encoder, for the whole process: on the shared 2-core machine a
            # 3 s clip's front end took 89 ms median (p90 133) with one, 476 ms (p90 2,000) with two at
            # load 4.5, the threads fighting the other processes (benchmarks/latency.py).
            threadpool_limits(limits=1, user_api="blas")
            predictor = cls(model, config, encoder=artifacts.load_whisper_encoder(config))
            # Warm-up: traces the head's graph, loads the speech detector and touches the encoder.
            noise = np.random.default_rng(0).normal(0, 0.01, 16_000).astype(np.float32)
            predictor._embed(noise)
            predictor.logits(np.zeros((1, predictor._mean.size), np.float32))
            return predictor
        predictor = cls(model, config)
        # Warm-up: builds the mel filters, traces the predict graph and loads the speech detector
        # now, not on a user's first clip.
        silence = np.zeros((1, predictor.params.clip_samples), np.float32)
        predictor.logits(log_mel(silence, predictor.params))
        StreamingSpeechDetector(predictor.params.sample_rate)
        return predictor

    @property
    def supports_adaptation(self) -> bool:
        """True for models that can use a user's :class:`~ser_core.inference.adaptation.Adaptation`."""
        return self.kind == WHISPER_KIND

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Raw model outputs: for log-mels ``[n, n_mels, n_frames]``, or standardised Whisper features ``[n, d]``."""
        inputs = features if self.kind == WHISPER_KIND else features[..., None]
        with self._lock:  # predict_on_batch runs a compiled graph: ~5x faster than an eager call
            return np.asarray(self.model.predict_on_batch(inputs), dtype=np.float64)

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
        embedded = self._embed_or_refuse(wave, None)
        features = head_input(embedded.pooled, self.layers, self.statistics).astype(np.float64)
        return AdaptationSample(features, float(embedded.regions.speech_seconds), self.adaptation_key)

    def probabilities_of(self, sample: AdaptationSample, adaptation: Adaptation | None = None) -> dict[str, float]:
        """A clip's emotion probabilities from its :meth:`adaptation_sample`: the clip answer of a prediction.

        Lets ``evaluate --adapt`` embed each file once: first every clip into the folder's
        adaptation, then each clip's answer with it.
        """
        if sample.model_key != self.adaptation_key:
            raise ValueError("this clip was measured for another model")
        use, mean, std = self._standardisation(adaptation)
        return self._named(self._head_probabilities(standardise(sample.features[None], mean, std), use)[0])

    @property
    def supports_self_training(self) -> bool:
        """True when the head can re-fit itself on a batch (:meth:`batch_probabilities`): a least-squares head read as weights."""
        return self.supports_adaptation and self.head_kind == "ridge" and isinstance(self.model, LinearHead)

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
            use, mean, std = self._standardisation(own)
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
                    probabilities[used == flag] = self._head_probabilities(rows[used == flag], flag)
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
        stream = open_audio_stream(source, self.params.sample_rate, block_seconds=BLOCK_SECONDS,
                                   max_seconds=max_seconds)
        if self.kind == WHISPER_KIND:
            short = stream.duration_s is not None and stream.duration_s <= WHOLE_FILE_SECONDS
            if keep_features or short or not self.front_end.vad:
                blocks = self._with_progress(stream, progress)
                wave = np.concatenate([np.asarray(block, np.float32) for block in blocks] or [np.zeros(0, np.float32)])
                result = self._predict_whisper(wave, threshold, keep_features, stream.name, adaptation)
            else:
                result = self._predict_whisper_long(source, stream, threshold, max_seconds, progress, adaptation)
        else:
            result = self._predict_blocks(self._with_progress(stream, progress), threshold, keep_features, stream.name)
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
        if self.kind == WHISPER_KIND:
            return self.with_coverage(self._predict_whisper(wave, threshold, True, None, adaptation), coverage)
        return self.with_coverage(self._predict_blocks([wave], threshold, True, None), coverage)

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

    # ------------------------------------------------------------------ Whisper model
    def _embed(self, wave: np.ndarray):
        from ser_core.inference.whisper_front import embed_speech

        return embed_speech(wave, self.front_end, self.layers, squares=self.statistics != "mean", encoder=self._encoder)

    def _embed_or_refuse(self, wave: np.ndarray, name: str | None):
        rate = self.front_end.sample_rate
        peak = float(np.max(np.abs(wave))) if wave.size else 0.0
        if peak < SILENCE_PEAK:
            raise NotEnoughSpeech("no_speech", 0.0, MIN_SPEECH_SECONDS, wave.size / rate, name, silent=True)
        if wave.size < rate // 10:
            raise NotEnoughSpeech("too_little_speech", 0.0, MIN_SPEECH_SECONDS, wave.size / rate, name)
        embedded = self._embed(wave)
        regions = embedded.regions
        if self.front_end.vad and regions.status != "speech":
            raise NotEnoughSpeech(regions.status, regions.speech_seconds, regions.min_speech_seconds,
                                  regions.total_seconds, name)
        refuse_if_not_voice(voice_evidence(wave, regions), wave.size / rate, name)  # a tone, a tune, reversed speech
        return embedded

    def _pooled_rows(self, embedded, inside: np.ndarray) -> np.ndarray:
        """:func:`head_input` of the binned frames under ``inside``, pooled like the training embedding."""
        squares = None if self.statistics == "mean" else embedded.bin_squares[inside].sum(axis=0, dtype=np.float64)
        return self._row(embedded.bin_sums[inside].sum(axis=0, dtype=np.float64), squares,
                         embedded.bin_counts[inside].sum())

    def _standardisation(self, adaptation: Adaptation | None) -> tuple[bool, np.ndarray, np.ndarray]:
        """Whether ``adaptation`` applies (ready, made for this model), and the mean and std to standardise with."""
        use = adaptation is not None and adaptation.ready and adaptation.model_key == self.adaptation_key
        mean, std = adaptation.statistics(self._std, self._mean) if use else (self._mean, self._std)
        return use, mean, std

    def _head_probabilities(self, features: np.ndarray, adapted: bool) -> np.ndarray:
        """Temperature softmax of standardised rows ``[n, d]``, batches padded to powers of two (one graph each)."""
        batch = 1 << (len(features) - 1).bit_length()
        padded = np.concatenate([features, np.zeros((batch - len(features), features.shape[1]), np.float32)])
        return softmax(self.logits(padded)[: len(features)], self.temperature_adapted if adapted else self.temperature)

    def _row(self, sums: np.ndarray, squares: np.ndarray | None, n: int) -> np.ndarray:
        """:func:`head_input` of frames given as their sums (and sums of squares) over ``n`` frames."""
        mean = sums / n
        if self.statistics == "mean":
            return mean.reshape(-1)
        std = np.sqrt(np.maximum(squares / n - np.square(mean), 0.0))
        return np.concatenate([mean, std], axis=1).reshape(-1)

    def _predict_whisper(self, wave: np.ndarray, threshold: float, keep_features: bool, name: str | None,
                         adaptation: Adaptation | None) -> Prediction:
        rate = self.front_end.sample_rate
        embedded = self._embed_or_refuse(wave, name)
        spans = window_spans(embedded.stream_samples, self.params.clip_samples)
        bin_starts = embedded.bin_starts
        rows = [head_input(embedded.pooled, self.layers, self.statistics).astype(np.float64)]
        for a, b in spans:
            inside = (bin_starts >= a) & (bin_starts < b)
            if not inside.any():  # a window shorter than a bin: the bin it falls in
                inside = np.arange(len(bin_starts)) == max(np.searchsorted(bin_starts, a, side="right") - 1, 0)
            rows.append(self._pooled_rows(embedded, inside))
        segment_spans = []
        for input_start, input_end, stream_start, stream_end in embedded.stream_regions:
            inside = (bin_starts >= stream_start) & (bin_starts < stream_end)
            if inside.any():
                segment_spans.append((input_start, input_end))
                rows.append(self._pooled_rows(embedded, inside))
        use, mean, std = self._standardisation(adaptation)
        probabilities = self._head_probabilities(standardise(np.stack(rows), mean, std), use)
        clip, window_p, segment_p = probabilities[0], probabilities[1 : 1 + len(spans)], probabilities[1 + len(spans):]
        to_input = lambda position, side: stream_to_input(position, embedded.stream_regions, side) / rate  # noqa: E731
        windows = [WindowPrediction(to_input(a, "start"), to_input(b, "end"), self._named(p))
                   for (a, b), p in zip(spans, window_p)]
        segments = [self._segment(start / rate, end / rate, p, threshold)
                    for (start, end), p in zip(segment_spans, segment_p)]
        top = int(np.argmax(clip))
        shape = (0, self.params.n_mels, self.params.n_frames)
        return Prediction(
            probabilities=self._named(clip),
            top_emotion=self.emotions[top],
            confidence=float(clip[top]),
            uncertain=bool(clip[top] < threshold),
            threshold=threshold,
            duration_s=wave.size / rate,
            features=self._window_mels(embedded.log_mel, spans) if keep_features else np.zeros(shape, np.float32),
            window_starts=np.array([w.start_s for w in windows]),
            windows=windows,
            speech_seconds=float(embedded.regions.speech_seconds),
            segments=segments,
            adapted=use,
            adaptation_clips=adaptation.n_clips if use else 0,
        )

    def _predict_whisper_long(self, source: AudioSource, stream, threshold: float, max_seconds: float | None,
                              progress: Callable[[float, float | None], None] | None,
                              adaptation: Adaptation | None) -> Prediction:
        """:meth:`_predict_whisper` for a file of any length, in memory that does not grow with it.

        The front end needs three things of the whole file before its first encoder segment: the
        level its speech detector hears (the 5th-loudest 20 ms frame), the level of its speech and
        the length of the joined speech (the segments are equal parts of it). So the file is read
        three times block by block (decoding is cheap beside the encoder): 1. the loud frames;
        2. the speech detector, measuring the speech; 3. the detector again (it is deterministic),
        now cutting the joined speech into the encoder segments, each encoded as soon as the speech
        reaches its end. Frame sums (and sums of squares) accumulate for the whole-file answer, and
        per window and per speech region for the timeline, whose rows go to the head in batches as
        they close. The answer equals the whole-file computation to float rounding.
        """
        from ser_core.inference import whisper_front
        from ser_core.inference.embedding import load_encoder

        params, name, rate = self.front_end, stream.name, self.front_end.sample_rate

        def reading(step: int):
            current = stream if step == 0 else open_audio_stream(source, rate, block_seconds=BLOCK_SECONDS,
                                                                 max_seconds=max_seconds)
            before = sum(_READING_SHARES[:step])
            for block in current:
                yield np.asarray(block, np.float32)
                if progress is not None and current.duration_s:
                    done = min(current.decoded_s / current.duration_s, 1.0)
                    progress(current.duration_s * (before + _READING_SHARES[step] * done), current.duration_s)
                elif progress is not None and step == 2:
                    progress(current.decoded_s, None)

        # 1. the level the speech detector hears
        loud = LoudFrames()
        for block in reading(0):
            loud.feed(block)
        if loud.peak < SILENCE_PEAK:
            raise NotEnoughSpeech("no_speech", 0.0, MIN_SPEECH_SECONDS, loud.total / rate, name, silent=True)
        if loud.total < rate // 10:
            raise NotEnoughSpeech("too_little_speech", 0.0, MIN_SPEECH_SECONDS, loud.total / rate, name)
        vad_gain = loud.vad_gain(params)
        # 2. the speech: where, how loud, how long once joined
        measured = SpeechPieces(self.params, vad_gain=vad_gain)
        voice = VoiceCheck()
        for block in reading(1):
            measured.feed(block)
            voice.feed(block)
        measured.finish()
        regions = measured.detector.result()
        if regions.status != "speech":
            raise NotEnoughSpeech(regions.status, regions.speech_seconds, regions.min_speech_seconds,
                                  regions.total_seconds, name)
        refuse_if_not_voice(voice.evidence(regions), regions.total_seconds, name)
        length = measured.stream_total
        if length < int(params.min_segment_seconds * rate):  # padded speech: not a long-file case
            wave = np.concatenate(list(reading(2)))
            return self._predict_whisper(wave, threshold, False, name, adaptation)
        rms = math.sqrt(measured.speech_squares / max(measured.speech_samples, 1))
        level_db = min(params.speech_level_dbfs - 20.0 * math.log10(max(rms, 1e-10)), params.max_gain_db)
        level = np.float32(10.0 ** (level_db / 20.0))  # embedding.level_normalise's gain
        limit = int(params.max_segment_seconds * rate)
        bounds = np.linspace(0, length, max(1, math.ceil(length / limit)) + 1).astype(int).tolist()
        placed = [tuple(region) for region in measured.regions]
        # 3. encode the segments as they close, pooling as we go
        use, mean, std = self._standardisation(adaptation)
        windows = SpanPool(window_spans(length, self.params.clip_samples))
        segments = SpanPool([(s, e) for _, _, s, e in placed])
        answers: dict[str, list[tuple[int, np.ndarray]]] = {"windows": [], "segments": []}
        waiting: list[tuple[str, int, np.ndarray]] = []

        def classify(rows: list[tuple[str, int, np.ndarray]]) -> None:
            features = standardise(np.stack([row for _, _, row in rows]), mean, std)
            for (kind, index, _), p in zip(rows, self._head_probabilities(features, use)):
                answers[kind].append((index, p))

        def collect(until: int | None) -> None:
            for kind, pool in (("windows", windows), ("segments", segments)):
                waiting.extend((kind, index, self._row(sums, squares, n))
                               for index, sums, squares, n in pool.close(until))
            while len(waiting) >= ROWS_PER_BATCH:
                classify(waiting[:ROWS_PER_BATCH])
                del waiting[:ROWS_PER_BATCH]

        encoder = self._encoder or load_encoder(params.model, params.weights_sha256)
        squares = self.statistics != "mean"
        pieces = SpeechPieces(self.params, bounds, vad_gain=vad_gain)
        total = total_sq = None
        n_frames = 0

        def encode(offset: int, segment: np.ndarray) -> None:
            nonlocal total, total_sq, n_frames
            hidden = encoder.forward(encoder.log_mel((segment * level).astype(np.float32), sr=rate)).hidden_states
            layer_sums, layer_squares, sums, binned_sq, counts, starts = whisper_front.segment_frames(
                hidden, self.layers, offset, squares)
            total = layer_sums if total is None else total + layer_sums
            total_sq = layer_squares if total_sq is None else total_sq + layer_squares
            n_frames += hidden.shape[1]
            windows.add(starts, sums, binned_sq, counts)
            segments.add(starts, sums, binned_sq, counts)
            collect(offset + len(segment))

        for block in reading(2):
            for offset, segment in pieces.feed(block):
                encode(offset, segment)
        for offset, segment in pieces.finish():
            encode(offset, segment)
        collect(None)
        pooled = whisper_front.pooled_statistics(total, total_sq, n_frames)  # embed_speech's pooled
        waiting.insert(0, ("clip", 0, head_input(pooled, self.layers, self.statistics).astype(np.float64)))
        answers["clip"] = []
        for start in range(0, len(waiting), ROWS_PER_BATCH):
            classify(waiting[start : start + ROWS_PER_BATCH])
        clip = answers["clip"][0][1]
        to_input = lambda position, side: stream_to_input(position, placed, side) / rate  # noqa: E731
        window_list = [WindowPrediction(to_input(windows.spans[i][0], "start"), to_input(windows.spans[i][1], "end"),
                                        self._named(p)) for i, p in sorted(answers["windows"], key=lambda a: a[0])]
        segment_list = [self._segment(placed[index][0] / rate, placed[index][1] / rate, p, threshold)
                        for index, p in sorted(answers["segments"], key=lambda a: a[0])]
        top = int(np.argmax(clip))
        return Prediction(
            probabilities=self._named(clip), top_emotion=self.emotions[top], confidence=float(clip[top]),
            uncertain=bool(clip[top] < threshold), threshold=threshold, duration_s=pieces.total / rate,
            features=np.zeros((0, self.params.n_mels, self.params.n_frames), np.float32),
            window_starts=np.array([w.start_s for w in window_list]), windows=window_list,
            speech_seconds=float(regions.speech_seconds), segments=segment_list,
            adapted=use, adaptation_clips=adaptation.n_clips if use else 0,
        )

    def _window_mels(self, log_mels: list[np.ndarray], spans: list[tuple[int, int]]) -> np.ndarray:
        """The Whisper log-mel of each window ``[n_windows, n_mels, n_frames]`` (short ones padded with the floor)."""
        mel = np.concatenate(log_mels, axis=1)
        hop, n_frames = self.params.hop_length, self.params.n_frames
        floor = float(mel.min()) if mel.size else 0.0
        out = np.full((len(spans), mel.shape[0], n_frames), floor, np.float32)
        for index, (a, _) in enumerate(spans):
            piece = mel[:, a // hop : a // hop + n_frames]
            out[index, :, : piece.shape[1]] = piece
        return out

    # ------------------------------------------------------------------ log-mel CNN
    @staticmethod
    def _with_progress(stream, progress):
        for block in stream:
            yield block
            if progress is not None:
                progress(stream.decoded_s, stream.duration_s)

    def _predict_blocks(self, blocks: Iterable[np.ndarray], threshold: float, keep_features: bool,
                        name: str | None) -> Prediction:
        speech = SpeechWindows(self.params)
        voice = VoiceCheck() if self.params.sample_rate == 16_000 else None
        starts: list[int] = []
        probabilities: list[np.ndarray] = []
        kept: list[np.ndarray] = []
        waiting: list[tuple[int, np.ndarray]] = []

        def classify(windows: list[tuple[int, np.ndarray]]) -> None:
            features = log_mel(np.stack([samples for _, samples in windows]), self.params)
            # Batches padded to 1, 2, 4, 8 or 16 windows: Keras traces its predict graph once per
            # batch shape, and a long file would otherwise bring every size from 1 to 16.
            batch = min(1 << (len(windows) - 1).bit_length(), max(WINDOWS_PER_BATCH, len(windows)))
            filler = np.zeros((batch - len(windows), *features.shape[1:]), np.float32)
            padded = np.concatenate([features, filler])
            logits = self.logits(padded)[: len(windows)]
            probabilities.append(softmax(logits, self.temperature))
            starts.extend(start for start, _ in windows)
            if keep_features:
                kept.append(features)

        for block in blocks:
            waiting += speech.feed(block)
            if voice is not None:
                voice.feed(block)
            while len(waiting) >= WINDOWS_PER_BATCH:
                classify(waiting[:WINDOWS_PER_BATCH])
                waiting = waiting[WINDOWS_PER_BATCH:]
        waiting += speech.finish()
        result = speech.detector.result()
        rate = self.params.sample_rate
        if speech.peak < SILENCE_PEAK:
            raise NotEnoughSpeech("no_speech", 0.0, MIN_SPEECH_SECONDS, speech.total / rate, name,
                                  silent=True)
        if result.status != "speech":
            raise NotEnoughSpeech(result.status, result.speech_seconds, result.min_speech_seconds,
                                  result.total_seconds, name)
        if voice is not None:
            refuse_if_not_voice(voice.evidence(result), result.total_seconds, name)
        if waiting:
            classify(waiting)
        window_probabilities = np.concatenate(probabilities)
        mean = window_probabilities.mean(axis=0)
        top = int(np.argmax(mean))
        duration = speech.total / rate
        spans = [speech.window_span(start) for start in starts]
        windows = [
            WindowPrediction(speech.to_input(a, "start") / rate, speech.to_input(b, "end") / rate,
                             self._named(p))
            for (a, b), p in zip(spans, window_probabilities)
        ]
        shape = (0, *self.params.input_shape[:2])
        return Prediction(
            probabilities=self._named(mean),
            top_emotion=self.emotions[top],
            confidence=float(mean[top]),
            uncertain=bool(mean[top] < threshold),
            threshold=threshold,
            duration_s=duration,
            features=np.concatenate(kept) if kept else np.zeros(shape, np.float32),
            window_starts=np.array([w.start_s for w in windows]),
            windows=windows,
            speech_seconds=result.speech_seconds,
            segments=self._segments(speech, spans, window_probabilities, threshold),
        )

    def _segments(self, speech: SpeechWindows, spans: list[tuple[int, int]],
                  window_probabilities: np.ndarray, threshold: float) -> list[SpeechSegment]:
        segments = []
        window_starts = np.array([a for a, _ in spans])
        window_ends = np.array([b for _, b in spans])
        for input_start, input_end, stream_start, stream_end in speech.regions:
            overlap = np.minimum(window_ends, stream_end) - np.maximum(window_starts, stream_start)
            overlap = np.clip(overlap, 0, None).astype(np.float64)
            if overlap.sum() <= 0:
                continue
            mean = overlap @ window_probabilities / overlap.sum()
            segments.append(self._segment(input_start / speech.rate, input_end / speech.rate, mean, threshold))
        return segments

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
