"""The log-mel CNN's front end: audio at the model's rate -> speech detector -> the speech regions
only, joined by short pauses -> 3 s windows -> log-mel -> CNN -> window probabilities. The clip's
answer is their mean; each speech segment's, the windows that hold it weighted by how much of it
they hold. Audio is read block by block, so a recording of any length fits in memory.

One of the predictor's front ends (:mod:`ser_core.inference.front_ends`)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from ser_core.inference.adaptation import Adaptation, AdaptationSample
from ser_core.inference.features import SILENCE_PEAK, log_mel
from ser_core.inference.front_ends import FileReading, Heard, temperatures
from ser_core.inference.params import FeatureParams
from ser_core.inference.scoring import softmax
from ser_core.inference.speech import MIN_SPEECH_SECONDS, NotEnoughSpeech, StreamingSpeechDetector
from ser_core.inference.speech_stream import SpeechWindows
from ser_core.inference.voice_check import VoiceCheck, refuse_if_not_voice

__all__ = ["WINDOWS_PER_BATCH", "LogMelWindowsFront"]

WINDOWS_PER_BATCH = 16  # 16 x 3 s windows per model call: ~1 MB of features


class LogMelWindowsFront:
    """Log-mel windows of the joined speech, the CNN per window, averaged after the head.

    Parameters
    ----------
    model : keras.Model
        Log-mels ``[n, n_mels, n_frames, 1]`` to emotion logits ``[n, n_emotions]``.
    config : dict
        ``config.json`` with ``feature_params`` and optional ``temperature``.
    """

    kind = "log_mel"
    head_kind = "cnn"
    supports_adaptation = False
    adaptation_key = None

    def __init__(self, model, config: dict[str, Any]) -> None:
        self.model = model
        self.params = FeatureParams.from_dict(config["feature_params"])
        self.temperature = temperatures(config)[0]
        self._lock = threading.Lock()

    @staticmethod
    def serving_options(config: dict[str, Any]) -> dict[str, Any]:
        return {}  # nothing beside the model

    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """Log-mels ``[n, n_mels, n_frames]`` to logits ``[n, n_emotions]``."""
        with self._lock:  # predict_on_batch runs a compiled graph: ~5x faster than an eager call
            return np.asarray(self.model.predict_on_batch(inputs[..., None]), dtype=np.float64)

    def warm_up(self) -> None:
        # Builds the mel filters, traces the predict graph and loads the speech detector now, not
        # on a user's first clip.
        silence = np.zeros((1, self.params.clip_samples), np.float32)
        self.logits(log_mel(silence, self.params))
        StreamingSpeechDetector(self.params.sample_rate)

    def hear_wave(self, wave: np.ndarray, *, keep_features: bool, name: str | None,
                  adaptation: Adaptation | None) -> Heard:
        return self._hear_blocks([wave], keep_features, name)

    def hear_file(self, reading: FileReading, *, keep_features: bool, adaptation: Adaptation | None) -> Heard:
        return self._hear_blocks(reading.blocks(), keep_features, reading.stream.name)

    def adaptation_sample(self, wave: np.ndarray) -> AdaptationSample:
        raise ValueError("this model does not support adaptation (it is not a Whisper embedding model)")

    def _hear_blocks(self, blocks: Iterable[np.ndarray], keep_features: bool, name: str | None) -> Heard:
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
            logits = self.logits(np.concatenate([features, filler]))[: len(windows)]
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
            raise NotEnoughSpeech("no_speech", 0.0, MIN_SPEECH_SECONDS, speech.total / rate, name, silent=True)
        if result.status != "speech":
            raise NotEnoughSpeech(result.status, result.speech_seconds, result.min_speech_seconds,
                                  result.total_seconds, name)
        if voice is not None:
            refuse_if_not_voice(voice.evidence(result), result.total_seconds, name)
        if waiting:
            classify(waiting)
        window_probabilities = np.concatenate(probabilities)
        spans = [speech.window_span(start) for start in starts]
        windows = [(speech.to_input(a, "start") / rate, speech.to_input(b, "end") / rate, p)
                   for (a, b), p in zip(spans, window_probabilities)]
        shape = (0, *self.params.input_shape[:2])
        return Heard(
            clip=window_probabilities.mean(axis=0), windows=windows,
            segments=_segments(speech, spans, window_probabilities),
            duration_s=speech.total / rate, speech_seconds=result.speech_seconds,
            features=np.concatenate(kept) if kept else np.zeros(shape, np.float32),
        )


def _segments(speech: SpeechWindows, spans: list[tuple[int, int]],
              window_probabilities: np.ndarray) -> list[tuple[float, float, np.ndarray]]:
    """Each speech region's probabilities: the windows over it, weighted by how much of it they hold."""
    segments = []
    window_starts = np.array([a for a, _ in spans])
    window_ends = np.array([b for _, b in spans])
    for input_start, input_end, stream_start, stream_end in speech.regions:
        overlap = np.minimum(window_ends, stream_end) - np.maximum(window_starts, stream_start)
        overlap = np.clip(overlap, 0, None).astype(np.float64)
        if overlap.sum() <= 0:
            continue
        segments.append((input_start / speech.rate, input_end / speech.rate,
                         overlap @ window_probabilities / overlap.sum()))
    return segments
