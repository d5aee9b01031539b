"""The Whisper embedding model's front end: audio -> speech detector -> the speech regions joined,
level-normalised -> Whisper encoder (one pass, up to the head's highest layer) -> frame means (and
standard deviations) of the chosen layers, pooled over the whole clip, each ~3 s window and each
speech segment -> standardised (the training default, or the user's own statistics:
:mod:`ser_core.inference.adaptation`) -> head -> temperature softmax.

The clip's row is exactly the training feature (:mod:`ser_core.inference.whisper_front`). Files
up to the predictor's whole-file length are decoded whole; longer ones (without kept features) are
read block by block three times in bounded memory, with the same answer.

One of the predictor's front ends (:mod:`ser_core.inference.front_ends`)."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from typing import Any

import numpy as np

from ser_core.inference.adaptation import Adaptation, AdaptationSample
from ser_core.inference.artifacts import WHISPER_KIND
from ser_core.inference.embedding_head import head_input, standardise
from ser_core.inference.features import SILENCE_PEAK
from ser_core.inference.front_ends import FileReading, Heard, temperatures
from ser_core.inference.params import EmbeddingParams, FeatureParams
from ser_core.inference.scoring import softmax
from ser_core.inference.speech import MIN_SPEECH_SECONDS, NotEnoughSpeech
from ser_core.inference.speech_stream import LoudFrames, SpanPool, SpeechPieces, stream_to_input, window_spans
from ser_core.inference.voice_check import VoiceCheck, refuse_if_not_voice, voice_evidence

__all__ = ["ROWS_PER_BATCH", "WHISPER_LOG_MEL", "WhisperHeadFront"]

ROWS_PER_BATCH = 32  # pooled rows per head call on a long file
# Share of a long file's progress bar per reading: level scan, speech detection, encoder.
_READING_SHARES = (0.05, 0.15, 0.80)
# The Whisper log-mel the page shows for a Whisper model (80 bands, 25 ms windows, 10 ms hop, 0-8 kHz).
WHISPER_LOG_MEL = FeatureParams(n_mels=80, win_length=400, hop_length=160, n_fft=400, fmin=0.0, fmax=8_000.0,
                                clip_seconds=3.0, top_db=80.0)


class WhisperHeadFront:
    """Pooled Whisper encoder frames and the head that reads them.

    Parameters
    ----------
    model : keras.Model or LinearHead
        Standardised features ``[n, d]`` to logits ``[n, n_emotions]``.
    config : dict
        ``config.json``: ``front_end`` (:class:`EmbeddingParams`), ``recipe`` (``layers``,
        ``statistics``, ``head``), ``standardisation``, temperatures.
    encoder : WhisperEncoder, optional
        The encoder to use (default: the pinned weights, loaded once per process).
    """

    kind = WHISPER_KIND
    supports_adaptation = True

    def __init__(self, model, config: dict[str, Any], *, encoder=None) -> None:
        self.model = model
        self.front_end = EmbeddingParams.from_dict(config["front_end"])
        recipe = config["recipe"]
        self.layers: tuple[int, ...] = tuple(int(layer) for layer in recipe["layers"])
        self.statistics: str = recipe["statistics"]
        self.head_kind: str = recipe.get("head", "lr")
        default = config["standardisation"]["default"]
        self.mean = np.asarray(default["mean"], np.float64)
        self.std = np.asarray(default["std"], np.float64)
        self.params = FeatureParams.from_dict(config.get("feature_params") or WHISPER_LOG_MEL.to_dict())
        identity = [self.front_end.to_dict(), list(self.layers), self.statistics]
        self.adaptation_key = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        self.encoder = encoder
        self.temperature, self.temperature_adapted, _ = temperatures(config)
        self._lock = threading.Lock()

    @staticmethod
    def serving_options(config: dict[str, Any]) -> dict[str, Any]:
        """What :meth:`Predictor.from_artifacts` passes beside the model: the encoder, loaded once."""
        from threadpoolctl import threadpool_limits

        from ser_core.inference import artifacts

        # One BLAS thread for the numpy encoder, for the whole process: on the shared 2-core machine a
        # 3 s clip's front end took 89 ms median (p90 133) with one, 476 ms (p90 2,000) with two at
        # load 4.5, the threads fighting the other processes (benchmarks/latency.py).
        threadpool_limits(limits=1, user_api="blas")
        return {"encoder": artifacts.load_whisper_encoder(config)}

    # ------------------------------------------------------------------ the head
    def logits(self, inputs: np.ndarray) -> np.ndarray:
        """Standardised rows ``[n, d]`` to logits ``[n, n_emotions]``."""
        with self._lock:  # predict_on_batch runs a compiled graph: ~5x faster than an eager call
            return np.asarray(self.model.predict_on_batch(inputs), dtype=np.float64)

    def warm_up(self) -> None:
        # Traces the head's graph, loads the speech detector and touches the encoder.
        noise = np.random.default_rng(0).normal(0, 0.01, 16_000).astype(np.float32)
        self.embed(noise)
        self.logits(np.zeros((1, self.mean.size), np.float32))

    def standardisation(self, adaptation: Adaptation | None) -> tuple[bool, np.ndarray, np.ndarray]:
        """Whether ``adaptation`` applies (ready, made for this model), and the mean and std to standardise with."""
        use = adaptation is not None and adaptation.ready and adaptation.model_key == self.adaptation_key
        mean, std = adaptation.statistics(self.std, self.mean) if use else (self.mean, self.std)
        return use, mean, std

    def head_probabilities(self, features: np.ndarray, adapted: bool) -> np.ndarray:
        """Temperature softmax of standardised rows ``[n, d]``, batches padded to powers of two (one graph each)."""
        batch = 1 << (len(features) - 1).bit_length()
        padded = np.concatenate([features, np.zeros((batch - len(features), features.shape[1]), np.float32)])
        return softmax(self.logits(padded)[: len(features)], self.temperature_adapted if adapted else self.temperature)

    # ------------------------------------------------------------------ a whole wave
    def embed(self, wave: np.ndarray):
        from ser_core.inference.whisper_front import embed_speech

        return embed_speech(wave, self.front_end, self.layers, squares=self.statistics != "mean", encoder=self.encoder)

    def embed_or_refuse(self, wave: np.ndarray, name: str | None):
        rate = self.front_end.sample_rate
        peak = float(np.max(np.abs(wave))) if wave.size else 0.0
        if peak < SILENCE_PEAK:
            raise NotEnoughSpeech("no_speech", 0.0, MIN_SPEECH_SECONDS, wave.size / rate, name, silent=True)
        if wave.size < rate // 10:
            raise NotEnoughSpeech("too_little_speech", 0.0, MIN_SPEECH_SECONDS, wave.size / rate, name)
        embedded = self.embed(wave)
        regions = embedded.regions
        if self.front_end.vad and regions.status != "speech":
            raise NotEnoughSpeech(regions.status, regions.speech_seconds, regions.min_speech_seconds,
                                  regions.total_seconds, name)
        refuse_if_not_voice(voice_evidence(wave, regions), wave.size / rate, name)  # a tone, a tune, reversed speech
        return embedded

    def adaptation_sample(self, wave: np.ndarray) -> AdaptationSample:
        embedded = self.embed_or_refuse(wave, None)
        features = head_input(embedded.pooled, self.layers, self.statistics).astype(np.float64)
        return AdaptationSample(features, float(embedded.regions.speech_seconds), self.adaptation_key)

    def hear_wave(self, wave: np.ndarray, *, keep_features: bool, name: str | None,
                  adaptation: Adaptation | None) -> Heard:
        rate = self.front_end.sample_rate
        embedded = self.embed_or_refuse(wave, name)
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
        use, mean, std = self.standardisation(adaptation)
        probabilities = self.head_probabilities(standardise(np.stack(rows), mean, std), use)
        clip, window_p, segment_p = probabilities[0], probabilities[1 : 1 + len(spans)], probabilities[1 + len(spans):]
        to_input = lambda position, side: stream_to_input(position, embedded.stream_regions, side) / rate  # noqa: E731
        shape = (0, self.params.n_mels, self.params.n_frames)
        return Heard(
            clip=clip,
            windows=[(to_input(a, "start"), to_input(b, "end"), p) for (a, b), p in zip(spans, window_p)],
            segments=[(start / rate, end / rate, p) for (start, end), p in zip(segment_spans, segment_p)],
            duration_s=wave.size / rate,
            speech_seconds=float(embedded.regions.speech_seconds),
            features=self._window_mels(embedded.log_mel, spans) if keep_features else np.zeros(shape, np.float32),
            adapted=use,
            adaptation_clips=adaptation.n_clips if use else 0,
        )

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

    # ------------------------------------------------------------------ a file
    def hear_file(self, reading: FileReading, *, keep_features: bool, adaptation: Adaptation | None) -> Heard:
        if keep_features or reading.short or not self.front_end.vad:
            blocks = reading.blocks()
            wave = np.concatenate([np.asarray(block, np.float32) for block in blocks] or [np.zeros(0, np.float32)])
            return self.hear_wave(wave, keep_features=keep_features, name=reading.stream.name, adaptation=adaptation)
        return self._hear_long(reading, adaptation)

    def _hear_long(self, reading: FileReading, adaptation: Adaptation | None) -> Heard:
        """:meth:`hear_wave` for a file of any length, in memory that does not grow with it.

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

        params, name, rate = self.front_end, reading.stream.name, self.front_end.sample_rate
        progress = reading.progress

        def read(step: int):
            current = reading.stream if step == 0 else reading.reopen()
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
        for block in read(0):
            loud.feed(block)
        if loud.peak < SILENCE_PEAK:
            raise NotEnoughSpeech("no_speech", 0.0, MIN_SPEECH_SECONDS, loud.total / rate, name, silent=True)
        if loud.total < rate // 10:
            raise NotEnoughSpeech("too_little_speech", 0.0, MIN_SPEECH_SECONDS, loud.total / rate, name)
        vad_gain = loud.vad_gain(params)
        # 2. the speech: where, how loud, how long once joined
        measured = SpeechPieces(self.params, vad_gain=vad_gain)
        voice = VoiceCheck()
        for block in read(1):
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
            wave = np.concatenate(list(read(2)))
            return self.hear_wave(wave, keep_features=False, name=name, adaptation=adaptation)
        rms = math.sqrt(measured.speech_squares / max(measured.speech_samples, 1))
        level_db = min(params.speech_level_dbfs - 20.0 * math.log10(max(rms, 1e-10)), params.max_gain_db)
        level = np.float32(10.0 ** (level_db / 20.0))  # embedding.level_normalise's gain
        limit = int(params.max_segment_seconds * rate)
        bounds = np.linspace(0, length, max(1, math.ceil(length / limit)) + 1).astype(int).tolist()
        placed = [tuple(region) for region in measured.regions]
        # 3. encode the segments as they close, pooling as we go
        use, mean, std = self.standardisation(adaptation)
        windows = SpanPool(window_spans(length, self.params.clip_samples))
        segments = SpanPool([(s, e) for _, _, s, e in placed])
        answers: dict[str, list[tuple[int, np.ndarray]]] = {"windows": [], "segments": []}
        waiting: list[tuple[str, int, np.ndarray]] = []

        def classify(rows: list[tuple[str, int, np.ndarray]]) -> None:
            features = standardise(np.stack([row for _, _, row in rows]), mean, std)
            for (kind, index, _), p in zip(rows, self.head_probabilities(features, use)):
                answers[kind].append((index, p))

        def collect(until: int | None) -> None:
            for kind, pool in (("windows", windows), ("segments", segments)):
                waiting.extend((kind, index, self._row(sums, squares, n))
                               for index, sums, squares, n in pool.close(until))
            while len(waiting) >= ROWS_PER_BATCH:
                classify(waiting[:ROWS_PER_BATCH])
                del waiting[:ROWS_PER_BATCH]

        encoder = self.encoder or load_encoder(params.model, params.weights_sha256)
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

        for block in read(2):
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
        to_input = lambda position, side: stream_to_input(position, placed, side) / rate  # noqa: E731
        return Heard(
            clip=answers["clip"][0][1],
            windows=[(to_input(windows.spans[i][0], "start"), to_input(windows.spans[i][1], "end"), p)
                     for i, p in sorted(answers["windows"], key=lambda a: a[0])],
            segments=[(placed[index][0] / rate, placed[index][1] / rate, p)
                      for index, p in sorted(answers["segments"], key=lambda a: a[0])],
            duration_s=pieces.total / rate,
            speech_seconds=float(regions.speech_seconds),
            features=np.zeros((0, self.params.n_mels, self.params.n_frames), np.float32),
            adapted=use,
            adaptation_clips=adaptation.n_clips if use else 0,
        )
