"""Live microphone audio: a thread-safe ring buffer fed from the WebRTC audio callback.

The WebRTC callback runs on a worker thread, never on Streamlit's script thread. It only downmixes
each frame and appends it to an :class:`AudioRingBuffer`; the page reads the last window from the
script thread, resamples it to the model's rate and classifies it. Nothing here imports Streamlit.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ser_core.inference.audio import interleaved_to_mono, resample


@dataclass(frozen=True)
class BufferStats:
    """What the ring buffer has seen: counts since the last :meth:`AudioRingBuffer.clear`."""

    frames: int
    samples: int
    sample_rate: int | None
    seconds_buffered: float
    last_push_monotonic: float | None

    def seconds_since_last_push(self, now: float | None = None) -> float | None:
        if self.last_push_monotonic is None:
            return None
        return (time.monotonic() if now is None else now) - self.last_push_monotonic


class AudioRingBuffer:
    """Keeps the most recent ``capacity_seconds`` of mono float32 audio; safe across threads.

    The sample rate is taken from the first push (WebRTC delivers 48 kHz, but nothing is assumed);
    a push at a different rate drops what was buffered, so a window never mixes two rates.
    """

    def __init__(self, capacity_seconds: float = 10.0) -> None:
        if capacity_seconds <= 0:
            raise ValueError("capacity_seconds must be positive")
        self.capacity_seconds = float(capacity_seconds)
        self._lock = threading.Lock()
        self._data = np.zeros(0, dtype=np.float32)
        self._write = 0  # next write position in _data
        self._filled = 0  # valid samples in _data (<= len(_data))
        self._sample_rate: int | None = None
        self._frames = 0
        self._samples = 0
        self._last_push: float | None = None

    def _reset_locked(self, sample_rate: int) -> None:
        capacity = max(1, int(round(self.capacity_seconds * sample_rate)))
        self._data = np.zeros(capacity, dtype=np.float32)
        self._write = 0
        self._filled = 0
        self._sample_rate = sample_rate

    def push(self, samples: np.ndarray, sample_rate: int) -> None:
        """Append mono samples recorded at ``sample_rate``."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        sample_rate = int(sample_rate)
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        with self._lock:
            if sample_rate != self._sample_rate:
                self._reset_locked(sample_rate)
            capacity = self._data.size
            if samples.size >= capacity:
                self._data[:] = samples[-capacity:]
                self._write = 0
                self._filled = capacity
            else:
                end = self._write + samples.size
                if end <= capacity:
                    self._data[self._write : end] = samples
                else:
                    split = capacity - self._write
                    self._data[self._write :] = samples[:split]
                    self._data[: end - capacity] = samples[split:]
                self._write = end % capacity
                self._filled = min(capacity, self._filled + samples.size)
            self._frames += 1
            self._samples += samples.size
            self._last_push = time.monotonic()

    def push_interleaved(self, samples: np.ndarray, channels: int, sample_rate: int) -> None:
        """Append interleaved PCM (``L R L R ...``, any integer or float dtype), downmixed to mono."""
        self.push(interleaved_to_mono(samples, channels), sample_rate)

    def latest(self, seconds: float | None = None) -> tuple[np.ndarray, int | None]:
        """The last ``seconds`` of audio (all of it when None), oldest first, and its sample rate."""
        with self._lock:
            rate = self._sample_rate
            if rate is None or self._filled == 0:
                return np.zeros(0, dtype=np.float32), rate
            wanted = self._filled if seconds is None else min(self._filled, int(round(seconds * rate)))
            start = (self._write - wanted) % self._data.size
            if start + wanted <= self._data.size:
                out = self._data[start : start + wanted].copy()
            else:
                out = np.concatenate((self._data[start:], self._data[: self._write]))
            return out, rate

    def latest_at(self, seconds: float, target_rate: int) -> np.ndarray:
        """The last ``seconds`` of audio resampled to ``target_rate`` (empty when nothing arrived)."""
        wave, rate = self.latest(seconds)
        if rate is None or wave.size == 0:
            return np.zeros(0, dtype=np.float32)
        return resample(wave, rate, target_rate)

    def stats(self) -> BufferStats:
        with self._lock:
            rate = self._sample_rate
            return BufferStats(
                frames=self._frames,
                samples=self._samples,
                sample_rate=rate,
                seconds_buffered=self._filled / rate if rate else 0.0,
                last_push_monotonic=self._last_push,
            )

    def clear(self) -> None:
        with self._lock:
            self._data = np.zeros(0, dtype=np.float32)
            self._write = 0
            self._filled = 0
            self._sample_rate = None
            self._frames = 0
            self._samples = 0
            self._last_push = None


def frame_to_interleaved(frame: Any) -> tuple[np.ndarray, int, int]:
    """``(samples, channels, sample_rate)`` from an ``av.AudioFrame``.

    Packed formats such as ``s16`` (what WebRTC delivers) come out of ``to_ndarray`` as one row of
    interleaved samples; planar formats (``fltp``...) as one row per channel, which is interleaved
    here so both reach :func:`~ser_core.inference.audio.interleaved_to_mono` the same way.
    """
    array = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar and array.ndim == 2 and array.shape[0] == channels:
        array = array.T  # [samples, channels] reads back as interleaved
    return np.ascontiguousarray(array).reshape(-1), channels, int(frame.sample_rate)


def make_audio_frame_callback(buffer: AudioRingBuffer) -> Callable[[Any], Any]:
    """A ``webrtc_streamer`` ``audio_frame_callback`` that feeds ``buffer``.

    It runs on a WebRTC worker thread: it touches only the buffer (never ``st.*``), swallows its own
    errors so a bad frame cannot end the stream, and returns the frame unchanged.
    """

    def callback(frame: Any) -> Any:
        try:
            samples, channels, rate = frame_to_interleaved(frame)
            buffer.push_interleaved(samples, channels, rate)
        except Exception:  # never let one frame kill the WebRTC track
            import logging

            logging.getLogger(__name__).exception("dropping an audio frame that could not be read")
        return frame

    return callback


class RollingTimeline:
    """The live page's recent predictions: ``(seconds since start, probabilities)``, bounded."""

    def __init__(self, max_points: int = 120) -> None:
        self.max_points = max_points
        self._lock = threading.Lock()
        self._points: list[tuple[float, dict[str, float]]] = []
        self._answers: list[list[str]] = []
        self._origin: float | None = None

    def add(self, probabilities: dict[str, float], at: float | None = None, emotions: list[str] | None = None) -> None:
        """One update: its probabilities and, when given, its answer (the set of emotions)."""
        at = time.monotonic() if at is None else at
        with self._lock:
            if self._origin is None:
                self._origin = at
            self._points.append((at - self._origin, dict(probabilities)))
            self._answers.append(list(emotions or [max(probabilities, key=probabilities.get)]))
            del self._points[: -self.max_points]
            del self._answers[: -self.max_points]

    def points(self) -> list[tuple[float, dict[str, float]]]:
        with self._lock:
            return list(self._points)

    def bands(self) -> list[tuple[float, float, list[str]]]:
        """``(start s, end s, answer)`` per update: each answer holds until the next one (the last for a second)."""
        with self._lock:
            times = [t for t, _ in self._points]
            ends = [*times[1:], times[-1] + 1.0] if times else []
            return [(start, end, list(answer)) for start, end, answer in zip(times, ends, self._answers)]

    def clear(self) -> None:
        with self._lock:
            self._points.clear()
            self._answers.clear()
            self._origin = None
