"""Speech in a stream of audio blocks: the speech detector's regions cut into model windows or
encoder pieces as they close, the level scan of a long file, and pooling frames per time span.

Used by :mod:`ser_core.inference.predictor` to read files of any length in bounded memory."""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from ser_core.inference.audio import AudioError
from ser_core.inference.params import EmbeddingParams, FeatureParams
from ser_core.inference.speech import StreamingSpeechDetector

__all__ = ["JOIN_FADE_SECONDS", "JOIN_GAP_SECONDS", "LoudFrames", "SpanPool", "SpeechPieces", "SpeechWindows",
           "stream_to_input", "window_spans"]

# Silence put between two speech regions when they are joined for the model: a natural short
# pause instead of a splice click, while long silences no longer dilute the answer.
JOIN_GAP_SECONDS = 0.1
JOIN_FADE_SECONDS = 0.01


class SpeechWindows:
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


class SpeechPieces(SpeechWindows):
    """The same joined speech, cut at fixed joined-stream positions (``bounds``) instead of windows.

    The Whisper path of a long file reads it three times
    (:meth:`ser_core.inference.whisper_head_front.WhisperHeadFront._hear_long`);
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


class LoudFrames:
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


class SpanPool:
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


def window_spans(total: int, size: int) -> list[tuple[int, int]]:
    """The timeline's windows over ``total`` joined-speech samples: 50 % overlap, the last aligned to the end."""
    if total <= size:
        return [(0, total)]
    starts = list(range(0, total - size + 1, size // 2))
    if starts[-1] + size < total:
        starts.append(total - size)
    return [(a, a + size) for a in starts]


def stream_to_input(position: int, placed: list[tuple[int, int, int, int]], side: str) -> int:
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
