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

import bisect
import hashlib
import json
import math
import numbers
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser_core.inference import artifacts
from ser_core.inference.adaptation import Adaptation, AdaptationSample
from ser_core.inference.audio import AudioError, AudioSource, open_audio_stream, resample, to_mono
from ser_core.inference.embedding_head import head_input, standardise
from ser_core.inference.features import SILENCE_PEAK, log_mel
from ser_core.inference.params import EmbeddingParams, FeatureParams
from ser_core.inference.scoring import softmax
from ser_core.inference.speech import MIN_SPEECH_SECONDS, NotEnoughSpeech, StreamingSpeechDetector

__all__ = [
    "DEFAULT_THRESHOLD", "MAX_AUDIO_SECONDS", "UNCERTAIN", "WHISPER_KIND", "WHISPER_LOG_MEL", "ModelDamagedError",
    "ModelNotFoundError", "NotEnoughSpeech",
    "Prediction", "Predictor", "SpeechSegment", "WindowPrediction", "check_threshold",
]

DEFAULT_THRESHOLD = 0.55
# Default length limit of predict_file (the app's uploads); the command-line tools pass None.
MAX_AUDIO_SECONDS = 60.0
UNCERTAIN = "uncertain"
# Silence put between two speech regions when they are joined for the model: a natural short
# pause instead of a splice click, while long silences no longer dilute the answer.
JOIN_GAP_SECONDS = 0.1
JOIN_FADE_SECONDS = 0.01
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


def check_threshold(threshold: Any) -> float:
    """Return ``threshold`` as a float after checking it is a confidence in [0, 1].

    Parameters
    ----------
    threshold : float
        Confidence below which an answer is "uncertain".

    Returns
    -------
    float

    Raises
    ------
    ValueError
        When it is not a number, not finite, or outside [0, 1]; the message names the value.

    Examples
    --------
    >>> check_threshold(0.6)
    0.6
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (numbers.Real, str)):
        raise ValueError(f"the threshold must be a number from 0 to 1, got {threshold!r}")
    try:
        value = float(threshold)
    except ValueError:
        raise ValueError(f"the threshold must be a number from 0 to 1, got {threshold!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(
            f"the threshold must be a number from 0 to 1 (a confidence), got {threshold}"
        )
    return value


@dataclass(frozen=True)
class WindowPrediction:
    """One 3 s model window. ``start_s``/``end_s`` are times in the original audio (a window of
    joined speech can span a pause that was cut out)."""

    start_s: float
    end_s: float
    probabilities: dict[str, float]


@dataclass(frozen=True)
class SpeechSegment:
    """One stretch of speech found by the detector, with its own answer.

    ``probabilities`` average the windows that hold this segment, each weighted by how much of
    the segment it holds; ``label`` is the top emotion, or "uncertain" below the threshold.
    """

    start_s: float
    end_s: float
    label: str
    top_emotion: str
    confidence: float
    probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"start_s": self.start_s, "end_s": self.end_s, "label": self.label,
                "top_emotion": self.top_emotion, "confidence": self.confidence,
                "probabilities": self.probabilities}


@dataclass
class Prediction:
    """The answer for one clip or file.

    Attributes
    ----------
    probabilities : dict of str to float
        Whole-audio probability of each emotion (mean over the speech windows).
    top_emotion, confidence, uncertain, threshold
        The most likely emotion, its probability, whether that is below ``threshold``.
    duration_s : float
        Length of the audio, seconds.
    speech_seconds : float
        Speech the detector heard, seconds.
    features : np.ndarray
        ``[n_windows, n_mels, n_frames]``: the CNN's input, or for a Whisper model the Whisper
        log-mel (80 bands) of each window of the speech the encoder heard; empty
        ``[0, n_mels, n_frames]`` when not kept (long files on the command line).
    window_starts : np.ndarray
        Start of each window in the original audio, seconds.
    windows : list of WindowPrediction
    segments : list of SpeechSegment
        The timeline: one answer per speech segment, in time order.
    adapted : bool
        The answer used the user's adaptation statistics (:mod:`ser_core.inference.adaptation`).
    adaptation_clips : int
        How many adaptation clips those statistics came from (0 when not adapted).
    """

    probabilities: dict[str, float]
    top_emotion: str
    confidence: float
    uncertain: bool
    threshold: float
    duration_s: float
    features: np.ndarray = field(repr=False)
    window_starts: np.ndarray = field(repr=False)
    windows: list[WindowPrediction] = field(default_factory=list)
    speech_seconds: float = 0.0
    segments: list[SpeechSegment] = field(default_factory=list)
    adapted: bool = False
    adaptation_clips: int = 0

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
            "speech_seconds": self.speech_seconds,
            "adapted": self.adapted,
            "adaptation_clips": self.adaptation_clips,
            "probabilities": self.probabilities,
            "segments": [segment.to_dict() for segment in self.segments],
            "windows": [
                {"start_s": w.start_s, "end_s": w.end_s, "probabilities": w.probabilities}
                for w in self.windows
            ],
        }


class _SpeechWindows:
    """Audio in, model windows of speech out, block by block.

    Feeds the audio to the speech detector, passes the speech regions on as one stream (regions
    faded at their cut edges and joined by :data:`JOIN_GAP_SECONDS` of silence, as
    :func:`ser_core.inference.speech.keep_speech` does for a whole wave) and cuts that stream
    into windows exactly as :func:`ser_core.inference.features.split_windows` would: 50 %
    overlap, the last one aligned to the end, a short stream centred in one padded window. Only
    the undecided tail of the audio and the last window of speech are held.
    """

    def __init__(self, params: FeatureParams,
                 detector: StreamingSpeechDetector | None = None, *, vad_gain: float | None = None) -> None:
        self.rate = params.sample_rate
        self.size = params.clip_samples
        # The detector hears the input times this gain (clipped to [-1, 1]), as the Whisper front end's
        # VAD does; the speech passed on is the input itself.
        self.vad_gain = vad_gain
        self.speech_squares = 0.0  # sum of squares of the speech samples passed on (before fades)
        self.speech_samples = 0
        self.hop = self.size // 2
        self.detector = detector or StreamingSpeechDetector(self.rate)
        self.gap = np.zeros(int(round(JOIN_GAP_SECONDS * self.rate)), np.float32)
        self.fade = int(round(JOIN_FADE_SECONDS * self.rate))
        self.audio = np.zeros(0, np.float32)  # the input from sample ``audio_start`` on
        self.audio_start = 0
        self.total = 0
        self.peak = 0.0
        self.open_start: int | None = None  # padded start of the region being passed on
        self.passed_until = 0  # input sample up to which that region has been passed on
        self.stream = np.zeros(0, np.float32)  # joined speech from ``stream_start`` on
        self.stream_start = 0
        self.stream_total = 0
        self.next_window = 0
        self.windows_made = 0
        # Where each stretch of passed-on speech came from: stream start, input start, length.
        self.pieces: list[tuple[int, int, int]] = []
        self._piece_starts: list[int] = []
        # Each region: input (start, end) and joined-stream (start, end).
        self.regions: list[list[int]] = []

    # ------------------------------------------------------------------ speech
    def _pass(self, start: int, end: int, first: bool, last: bool) -> None:
        piece = self.audio[start - self.audio_start : end - self.audio_start].copy()
        self.speech_squares += float(np.sum(np.square(piece, dtype=np.float64)))
        self.speech_samples += piece.size
        fade = min(self.fade, piece.size // 2)
        if fade > 0:
            ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade, dtype=np.float32))
            if first and start > 0:
                piece[:fade] *= ramp
            if last and end < self.total:
                piece[-fade:] *= ramp[::-1]
        if first:
            if self.regions and self.gap.size:
                self._append(self.gap)
            self.regions.append([start, end, self.stream_total, self.stream_total])
        previous = self.pieces[-1] if self.pieces else None
        ends_at = previous and (previous[0] + previous[2], previous[1] + previous[2])
        if not first and ends_at == (self.stream_total, start):  # the same region, continued
            self.pieces[-1] = (previous[0], previous[1], previous[2] + piece.size)
        else:
            self.pieces.append((self.stream_total, start, piece.size))
        self._append(piece)
        self.regions[-1][1], self.regions[-1][3] = end, self.stream_total
        self.passed_until = end

    def _take(self, finished: list[tuple[int, int]], total_known: bool) -> None:
        for start, end in finished:
            continuing = self.open_start == start
            self._pass(self.passed_until if continuing else start, end, not continuing, True)
            self.open_start = None
        region = None if total_known else self.detector.open_region()
        if region is not None:
            start, certain_end = region
            if self.open_start != start:
                self.open_start = start
                self._pass(start, certain_end, True, False)
            elif certain_end > self.passed_until:
                self._pass(self.passed_until, certain_end, False, False)
        if self.open_start is not None:
            keep_from = self.passed_until
        else:
            keep_from = self.detector.undecided_from()
        drop = min(keep_from, self.total) - self.audio_start
        if drop > 0:
            self.audio = self.audio[drop:]
            self.audio_start += drop

    def feed(self, block: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Next input samples in; the windows they completed out, as ``(stream start, samples)``."""
        block = np.asarray(block, dtype=np.float32)
        if block.size:
            self.peak = max(self.peak, float(np.max(np.abs(block))))
        self.audio = np.concatenate([self.audio, block])
        self.total += block.size
        heard = block if self.vad_gain is None else np.clip(block * np.float32(self.vad_gain), -1.0, 1.0)
        self._take(self.detector.feed(heard), total_known=False)
        return self._cut()

    def finish(self) -> list[tuple[int, np.ndarray]]:
        self._take(self.detector.finish(), total_known=True)
        windows = self._cut()
        if self.windows_made == 0 and self.stream_total:
            padded = np.zeros(self.size, np.float32)  # short speech: centred in one window
            offset = (self.size - self.stream_total) // 2
            padded[offset : offset + self.stream_total] = self.stream
            windows.append((0, padded))
            self.windows_made += 1
        elif self.windows_made and self.next_window - self.hop + self.size < self.stream_total:
            start = self.stream_total - self.size  # the last window, aligned to the end
            windows.append((start, self.stream[start - self.stream_start :].copy()))
            self.windows_made += 1
        return windows

    # ------------------------------------------------------------------ windows
    def _append(self, samples: np.ndarray) -> None:
        self.stream = np.concatenate([self.stream, samples])
        self.stream_total += samples.size

    def _cut(self) -> list[tuple[int, np.ndarray]]:
        windows = []
        while self.next_window + self.size <= self.stream_total:
            offset = self.next_window - self.stream_start
            windows.append((self.next_window, self.stream[offset : offset + self.size].copy()))
            self.windows_made += 1
            self.next_window += self.hop
        # Keep what the next window, or an end-aligned last window, may still need.
        keep_from = max(0, min(self.next_window, self.stream_total - self.size))
        if keep_from > self.stream_start:
            self.stream = self.stream[keep_from - self.stream_start :]
            self.stream_start = keep_from
        return windows

    # ------------------------------------------------------------------ times
    def window_span(self, stream_start: int) -> tuple[int, int]:
        """Joined-stream span of the window starting at ``stream_start``."""
        if self.stream_total <= self.size:
            return 0, self.stream_total
        return stream_start, stream_start + self.size

    def to_input(self, position: int, side: str) -> int:
        """Input sample of a joined-stream position (a position in a pause maps to its edge)."""
        if not self.pieces:
            return 0
        if len(self._piece_starts) != len(self.pieces):  # pieces only grow (or extend the last)
            self._piece_starts = [piece[0] for piece in self.pieces]
        starts = self._piece_starts
        if side == "start":
            index = bisect.bisect_right(starts, position) - 1
            stream_at, input_at, length = self.pieces[max(index, 0)]
            if index < 0:
                return input_at
            if position >= stream_at + length and index + 1 < len(self.pieces):
                return self.pieces[index + 1][1]
            return input_at + min(max(position - stream_at, 0), length)
        index = max(bisect.bisect_left(starts, position) - 1, 0)
        stream_at, input_at, length = self.pieces[index]
        return input_at + min(max(position - stream_at, 0), length)


class _SpeechPieces(_SpeechWindows):
    """The same joined speech, cut at fixed joined-stream positions (``bounds``) instead of windows.

    The Whisper path of a long file reads it three times (:meth:`Predictor._predict_whisper_long`);
    with ``bounds=None`` nothing of the speech is kept (the pass that only measures its level and
    length), with the bounds the encoder segments come out as soon as the speech reaches their end.
    """

    def __init__(self, params: FeatureParams, bounds: list[int] | None = None, *,
                 vad_gain: float | None = None) -> None:
        super().__init__(params, vad_gain=vad_gain)
        self.bounds = bounds
        self.next_piece = 0

    def _cut(self) -> list[tuple[int, np.ndarray]]:
        pieces = []
        bounds = self.bounds or []
        while self.next_piece + 1 < len(bounds) and bounds[self.next_piece + 1] <= self.stream_total:
            a, b = bounds[self.next_piece], bounds[self.next_piece + 1]
            pieces.append((a, self.stream[a - self.stream_start : b - self.stream_start].copy()))
            self.next_piece += 1
        keep_from = bounds[self.next_piece] if self.next_piece + 1 < len(bounds) else self.stream_total
        if keep_from > self.stream_start:
            self.stream = self.stream[keep_from - self.stream_start :]
            self.stream_start = keep_from
        return pieces

    def finish(self) -> list[tuple[int, np.ndarray]]:
        self._take(self.detector.finish(), total_known=True)
        pieces = self._cut()
        if self.bounds is not None and self.next_piece + 1 != len(self.bounds):
            raise AudioError("The audio changed between two readings of it; classify it again.")
        return pieces


class _LoudFrames:
    """Block by block, the level the Whisper front end's speech detector is set by: the 5th-loudest
    20 ms frame of the whole input (``embedding._vad_input``)."""

    def __init__(self) -> None:
        self.rest = np.zeros(0, np.float32)
        self.loudest = np.zeros(0)  # at most the 5 largest frame RMS values, ascending
        self.total = 0
        self.peak = 0.0

    def feed(self, block: np.ndarray) -> None:
        from ser_core.inference.embedding import _VAD_FRAME, _VAD_LOUD_FRAMES

        self.total += block.size
        if block.size:
            self.peak = max(self.peak, float(np.max(np.abs(block))))
        samples = np.concatenate([self.rest, block])
        n = samples.size // _VAD_FRAME * _VAD_FRAME
        rms = np.sqrt(np.mean(np.square(samples[:n].reshape(-1, _VAD_FRAME), dtype=np.float64), axis=1))
        self.loudest = np.sort(np.concatenate([self.loudest, rms]))[-_VAD_LOUD_FRAMES:]
        self.rest = samples[n:]

    def vad_gain(self, params: EmbeddingParams) -> float:
        from ser_core.inference.embedding import _VAD_LEVEL_DBFS

        if self.loudest.size:
            loud = float(self.loudest[0])
        else:  # under one frame: the whole input is the frame
            loud = float(np.sqrt(np.mean(np.square(self.rest, dtype=np.float64))))
        gain_db = min(_VAD_LEVEL_DBFS - 20.0 * math.log10(max(loud, 1e-10)), params.max_gain_db)
        return float(np.float32(10.0 ** (gain_db / 20.0)))


class _SpanPool:
    """Encoder bins pooled over fixed joined-stream spans (windows or speech regions) as they arrive.

    ``spans`` are sorted by start and by end; a span is handed back by :meth:`close` once every bin
    that starts inside it has arrived.
    """

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.spans = spans
        self.first = 0  # the first span not yet closed
        self.pooled: dict[int, list] = {}  # span index -> [sums, squares, frame count]

    def add(self, starts: np.ndarray, sums: np.ndarray, squares: np.ndarray | None, counts: np.ndarray) -> None:
        index = self.first
        while index < len(self.spans) and len(starts) and self.spans[index][0] <= starts[-1]:
            a, b = self.spans[index]
            lo, hi = np.searchsorted(starts, a), np.searchsorted(starts, b)
            if hi > lo:
                pooled = self.pooled.setdefault(index, [0.0, 0.0, 0])
                pooled[0] = pooled[0] + sums[lo:hi].sum(axis=0, dtype=np.float64)
                if squares is not None:
                    pooled[1] = pooled[1] + squares[lo:hi].sum(axis=0, dtype=np.float64)
                pooled[2] += int(counts[lo:hi].sum())
            index += 1

    def close(self, until: int | None = None) -> list[tuple[int, np.ndarray, Any, int]]:
        """Spans ending at or before joined-stream sample ``until`` (all with None): index, sums, squares, frames."""
        closed = []
        while self.first < len(self.spans) and (until is None or self.spans[self.first][1] <= until):
            pooled = self.pooled.pop(self.first, None)
            if pooled is not None:  # a span without a bin has no answer (as in the whole-file path)
                closed.append((self.first, *pooled))
            self.first += 1
        return closed


def _window_spans(total: int, size: int) -> list[tuple[int, int]]:
    """The timeline's windows over ``total`` joined-speech samples: 50 % overlap, the last aligned to the end."""
    if total <= size:
        return [(0, total)]
    starts = list(range(0, total - size + 1, size // 2))
    if starts[-1] + size < total:
        starts.append(total - size)
    return [(a, a + size) for a in starts]


class Predictor:
    """Loads ``model.keras`` and ``config.json`` once; classifies files and waveforms.

    Parameters
    ----------
    model : keras.Model
        Log-mel CNN: log-mels ``[n, n_mels, n_frames, 1]`` to emotion logits ``[n, n_emotions]``.
        Whisper head: standardised features ``[n, d]`` to logits ``[n, n_emotions]``.
    config : dict
        ``artifacts/config.json``: ``emotions``, optional ``temperature`` and ``threshold``; the CNN's
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
        self.threshold = check_threshold(config.get("threshold", DEFAULT_THRESHOLD))
        self._lock = threading.Lock()
        if self.kind == WHISPER_KIND:
            self.front_end = EmbeddingParams.from_dict(config["front_end"])
            recipe = config["recipe"]
            self.layers: tuple[int, ...] = tuple(int(layer) for layer in recipe["layers"])
            self.statistics: str = recipe["statistics"]
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
        use = adaptation is not None and adaptation.ready and adaptation.model_key == self.adaptation_key
        mean, std = adaptation.statistics(self._std) if use else (self._mean, self._std)
        logits = self.logits(standardise(sample.features[None], mean, std))
        return self._named(softmax(logits, self.temperature)[0])

    def predict_file(self, source: AudioSource, threshold: float | None = None, *,
                     max_seconds: float | None = MAX_AUDIO_SECONDS, keep_features: bool = True,
                     progress: Callable[[float, float | None], None] | None = None,
                     adaptation: Adaptation | None = None) -> Prediction:
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
        stream = open_audio_stream(source, self.params.sample_rate, block_seconds=BLOCK_SECONDS,
                                   max_seconds=max_seconds)
        if self.kind == WHISPER_KIND:
            short = stream.duration_s is not None and stream.duration_s <= WHOLE_FILE_SECONDS
            if keep_features or short or not self.front_end.vad:
                blocks = self._with_progress(stream, progress)
                wave = np.concatenate([np.asarray(block, np.float32) for block in blocks] or [np.zeros(0, np.float32)])
                return self._predict_whisper(wave, threshold, keep_features, stream.name, adaptation)
            return self._predict_whisper_long(source, stream, threshold, max_seconds, progress, adaptation)
        return self._predict_blocks(self._with_progress(stream, progress), threshold, keep_features, stream.name)

    def predict_wave(self, wave: np.ndarray, sample_rate: int, threshold: float | None = None, *,
                     max_seconds: float | None = None, adaptation: Adaptation | None = None) -> Prediction:
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
        wave = self._checked_wave(wave, sample_rate, max_seconds)
        if self.kind == WHISPER_KIND:
            return self._predict_whisper(wave, threshold, True, None, adaptation)
        return self._predict_blocks([wave], threshold, True, None)

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
        return embedded

    def _pooled_rows(self, embedded, inside: np.ndarray) -> np.ndarray:
        """:func:`head_input` of the binned frames under ``inside``, pooled like the training embedding."""
        squares = None if self.statistics == "mean" else embedded.bin_squares[inside].sum(axis=0, dtype=np.float64)
        return self._row(embedded.bin_sums[inside].sum(axis=0, dtype=np.float64), squares,
                         embedded.bin_counts[inside].sum())

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
        spans = _window_spans(embedded.stream_samples, self.params.clip_samples)
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
        use = adaptation is not None and adaptation.ready and adaptation.model_key == self.adaptation_key
        mean, std = adaptation.statistics(self._std) if use else (self._mean, self._std)
        features = standardise(np.stack(rows), mean, std)
        batch = 1 << (len(features) - 1).bit_length()  # one traced graph per power of two
        padded = np.concatenate([features, np.zeros((batch - len(features), features.shape[1]), np.float32)])
        probabilities = softmax(self.logits(padded)[: len(features)], self.temperature)
        clip, window_p, segment_p = probabilities[0], probabilities[1 : 1 + len(spans)], probabilities[1 + len(spans):]
        to_input = lambda position, side: _stream_to_input(position, embedded.stream_regions, side) / rate  # noqa: E731
        windows = [WindowPrediction(to_input(a, "start"), to_input(b, "end"), self._named(p))
                   for (a, b), p in zip(spans, window_p)]
        segments = []
        for (start, end), p in zip(segment_spans, segment_p):
            top = int(np.argmax(p))
            segments.append(SpeechSegment(
                start_s=start / rate, end_s=end / rate, label=UNCERTAIN if p[top] < threshold else self.emotions[top],
                top_emotion=self.emotions[top], confidence=float(p[top]), probabilities=self._named(p)))
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
        loud = _LoudFrames()
        for block in reading(0):
            loud.feed(block)
        if loud.peak < SILENCE_PEAK:
            raise NotEnoughSpeech("no_speech", 0.0, MIN_SPEECH_SECONDS, loud.total / rate, name, silent=True)
        if loud.total < rate // 10:
            raise NotEnoughSpeech("too_little_speech", 0.0, MIN_SPEECH_SECONDS, loud.total / rate, name)
        vad_gain = loud.vad_gain(params)
        # 2. the speech: where, how loud, how long once joined
        measured = _SpeechPieces(self.params, vad_gain=vad_gain)
        for block in reading(1):
            measured.feed(block)
        measured.finish()
        regions = measured.detector.result()
        if regions.status != "speech":
            raise NotEnoughSpeech(regions.status, regions.speech_seconds, regions.min_speech_seconds,
                                  regions.total_seconds, name)
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
        use = adaptation is not None and adaptation.ready and adaptation.model_key == self.adaptation_key
        mean, std = adaptation.statistics(self._std) if use else (self._mean, self._std)
        windows = _SpanPool(_window_spans(length, self.params.clip_samples))
        segments = _SpanPool([(s, e) for _, _, s, e in placed])
        answers: dict[str, list[tuple[int, np.ndarray]]] = {"windows": [], "segments": []}
        waiting: list[tuple[str, int, np.ndarray]] = []

        def classify(rows: list[tuple[str, int, np.ndarray]]) -> None:
            features = standardise(np.stack([row for _, _, row in rows]), mean, std)
            batch = 1 << (len(features) - 1).bit_length()
            padded = np.concatenate([features, np.zeros((batch - len(features), features.shape[1]), np.float32)])
            for (kind, index, _), p in zip(rows, softmax(self.logits(padded)[: len(features)], self.temperature)):
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
        pieces = _SpeechPieces(self.params, bounds, vad_gain=vad_gain)
        total = total_sq = None
        n_frames = 0

        def encode(offset: int, segment: np.ndarray) -> None:
            nonlocal total, total_sq, n_frames
            hidden = encoder.forward(encoder.log_mel((segment * level).astype(np.float32), sr=rate)).hidden_states
            wide = hidden.astype(np.float64)
            total = wide.sum(axis=1) if total is None else total + wide.sum(axis=1)
            total_sq = np.square(wide).sum(axis=1) if total_sq is None else total_sq + np.square(wide).sum(axis=1)
            n_frames += hidden.shape[1]
            chosen = np.transpose(hidden[list(self.layers)], (1, 0, 2))
            sums = whisper_front._binned(chosen)
            binned_sq = whisper_front._binned(np.square(chosen)) if squares else None
            n_bins = len(sums)
            bin_frames = whisper_front.BIN_FRAMES
            counts = np.minimum(bin_frames, hidden.shape[1] - bin_frames * np.arange(n_bins))
            starts = offset + whisper_front.FRAME_SAMPLES * whisper_front.BIN_FRAMES * np.arange(n_bins)
            windows.add(starts, sums, binned_sq, counts)
            segments.add(starts, sums, binned_sq, counts)
            collect(offset + len(segment))

        for block in reading(2):
            for offset, segment in pieces.feed(block):
                encode(offset, segment)
        for offset, segment in pieces.finish():
            encode(offset, segment)
        collect(None)
        mean_all = total / n_frames
        std_all = np.sqrt(np.maximum(total_sq / n_frames - np.square(mean_all), 0.0))
        pooled = np.concatenate([mean_all, std_all], axis=1).astype(np.float32)  # embed_speech's pooled
        waiting.insert(0, ("clip", 0, head_input(pooled, self.layers, self.statistics).astype(np.float64)))
        answers["clip"] = []
        for start in range(0, len(waiting), ROWS_PER_BATCH):
            classify(waiting[start : start + ROWS_PER_BATCH])
        clip = answers["clip"][0][1]
        to_input = lambda position, side: _stream_to_input(position, placed, side) / rate  # noqa: E731
        window_list = [WindowPrediction(to_input(windows.spans[i][0], "start"), to_input(windows.spans[i][1], "end"),
                                        self._named(p)) for i, p in sorted(answers["windows"], key=lambda a: a[0])]
        segment_list = []
        for index, p in sorted(answers["segments"], key=lambda a: a[0]):
            top = int(np.argmax(p))
            segment_list.append(SpeechSegment(
                start_s=placed[index][0] / rate, end_s=placed[index][1] / rate,
                label=UNCERTAIN if p[top] < threshold else self.emotions[top], top_emotion=self.emotions[top],
                confidence=float(p[top]), probabilities=self._named(p)))
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
        speech = _SpeechWindows(self.params)
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

    def _segments(self, speech: _SpeechWindows, spans: list[tuple[int, int]],
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
            top = int(np.argmax(mean))
            segments.append(SpeechSegment(
                start_s=input_start / speech.rate, end_s=input_end / speech.rate,
                label=UNCERTAIN if mean[top] < threshold else self.emotions[top],
                top_emotion=self.emotions[top], confidence=float(mean[top]),
                probabilities=self._named(mean),
            ))
        return segments

    def _named(self, probabilities: np.ndarray) -> dict[str, float]:
        return {emotion: float(p) for emotion, p in zip(self.emotions, probabilities)}


def _stream_to_input(position: int, placed: list[tuple[int, int, int, int]], side: str) -> int:
    """Input sample of a joined-speech position; one in a pause maps to the next region's start
    (``side="start"``) or the previous region's end (``side="end"``)."""
    previous_end = placed[0][0] if placed else 0
    for input_start, input_end, stream_start, stream_end in placed:
        if position < stream_start:
            return input_start if side == "start" else previous_end
        if position < stream_end or (side == "end" and position == stream_end):
            return input_start + position - stream_start
        previous_end = input_end
    return previous_end


ModelNotFoundError = artifacts.ModelNotFoundError
ModelDamagedError = artifacts.ModelDamagedError
