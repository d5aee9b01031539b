"""Speech activity detection for the emotion-recognition inference path.

The detector is Silero VAD v6 (MIT licence), run through ``onnxruntime`` from
the ONNX file that ``faster-whisper`` ships as package data
(``faster_whisper/assets/silero_vad_v6.onnx``). The file is located with
:mod:`importlib.resources` and pinned by SHA-256, so a silently changed
model (a ``faster-whisper`` upgrade that swaps the file) fails loudly instead
of shifting every threshold below.

The model scores 32 ms windows (512 samples at 16 kHz, each preceded by the
previous window's last 64 samples as context) with a recurrent state carried
from window to window. One ``InferenceSession.run`` call scores a whole batch
of consecutive windows, so a clip of any length costs one call, and a long
recording can be scored chunk by chunk with the state carried over:
:class:`StreamingSpeechDetector` does that and gives *exactly* the same
regions as :func:`detect_speech` on the whole wave.

Three outcomes for a clip (see :attr:`SpeechRegions.status`):

``"speech"``
    at least :data:`MIN_SPEECH_SECONDS` of speech: give an emotion, computed on
    :func:`keep_speech` of the wave (speech regions only).
``"too_little_speech"``
    some speech, but less than :data:`MIN_SPEECH_SECONDS`; say how much was
    heard and how much is needed (:meth:`SpeechRegions.describe`).
``"no_speech"``
    nothing that the detector calls speech (tones, music, noise, silence).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Iterable, Iterator, Literal

import numpy as np

__all__ = [
    "SAMPLE_RATE",
    "THRESHOLD",
    "NEG_THRESHOLD",
    "MIN_REGION_SECONDS",
    "MIN_SILENCE_SECONDS",
    "PAD_SECONDS",
    "MIN_SPEECH_SECONDS",
    "MODEL_SHA256",
    "ModelFileError",
    "SpeechRegions",
    "StreamingSpeechDetector",
    "detect_speech",
    "keep_speech",
    "speech_probabilities",
]

#: Sample rate the detector works at (Hz). Callers resample before calling.
SAMPLE_RATE: int = 16000
#: Samples per scored window (32 ms at 16 kHz), fixed by the model.
WINDOW_SAMPLES: int = 512
#: Samples of the previous window the model sees as context, fixed by the model.
CONTEXT_SAMPLES: int = 64

#: A region starts at the first window whose speech probability is >= this.
THRESHOLD: float = 0.4
#: Inside a region, windows below this count as silence, and any window at or
#: above it resets the silence count (hysteresis, ``THRESHOLD - 0.15`` as in
#: Silero's own ``get_speech_timestamps``).
NEG_THRESHOLD: float = 0.25
#: Regions shorter than this (before padding) are dropped as clicks/blips.
MIN_REGION_SECONDS: float = 0.128
#: A region ends only after this much continuous silence; shorter pauses stay
#: inside the region. Must be >= 2 * PAD_SECONDS so padded regions never overlap.
MIN_SILENCE_SECONDS: float = 0.3
#: Each region is widened by this on both sides (clipped to the wave) so word
#: onsets and releases that score low are kept.
PAD_SECONDS: float = 0.1
#: Least detected speech (unpadded) for an emotion answer. The shortest
#: utterances in the corpora are TurEV isolated words (files of about 1 s) with
#: 0.34 s (1st percentile) / 0.58 s (median) of detected speech, so 0.5 s would
#: refuse about a quarter of single words; 0.3 s keeps every measured word and
#: still refuses blips, clicks and cut-off fragments. See NOTES.md.
MIN_SPEECH_SECONDS: float = 0.3

#: SHA-256 of ``faster_whisper/assets/silero_vad_v6.onnx`` (faster-whisper 1.2.1).
MODEL_SHA256: str = "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2"
_MODEL_PACKAGE = "faster_whisper"
_MODEL_RESOURCE = ("assets", "silero_vad_v6.onnx")

Status = Literal["speech", "too_little_speech", "no_speech"]


class ModelFileError(RuntimeError):
    """The packaged VAD model file is missing or is not the pinned one."""


# ----------------------------------------------------------------------------
# Model session (loaded once per process, shared by all threads)
# ----------------------------------------------------------------------------

_session_lock = threading.Lock()
_session = None


def _model_bytes() -> bytes:
    try:
        resource = files(_MODEL_PACKAGE).joinpath(*_MODEL_RESOURCE)
        data = resource.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ModelFileError(
            f"Speech detection needs the Silero VAD model shipped in the "
            f"'{_MODEL_PACKAGE}' package ({'/'.join(_MODEL_RESOURCE)}); it was not "
            f"found. Install faster-whisper==1.2.1."
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise ModelFileError(
            f"The VAD model {_MODEL_PACKAGE}/{'/'.join(_MODEL_RESOURCE)} has SHA-256 "
            f"{digest}, expected {MODEL_SHA256}. The installed faster-whisper ships a "
            f"different model: pin faster-whisper==1.2.1, or re-measure the VAD "
            f"thresholds (benchmarks/vad.py) and update MODEL_SHA256."
        )
    return data


def _get_session():
    """Return the process-wide ``onnxruntime.InferenceSession`` (thread-safe).

    ``InferenceSession.run`` may be called from several threads at once; all
    recurrent state is passed in and out explicitly, never kept in the session.
    """
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                import onnxruntime

                opts = onnxruntime.SessionOptions()
                opts.intra_op_num_threads = 1
                opts.inter_op_num_threads = 1
                opts.log_severity_level = 3
                _session = onnxruntime.InferenceSession(
                    _model_bytes(), sess_options=opts, providers=["CPUExecutionProvider"]
                )
    return _session


def _zero_state() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32)


#: The recurrent state is primed with this much digital silence before the
#: first sample. From a cold (zero) state the model needs several windows to
#: respond, so a short soft word at the very start of a clip scored < 0.4;
#: priming recovered 4 of the 7 TurEV words otherwise called "no speech".
LEAD_IN_SECONDS: float = 0.5
_warm: tuple[np.ndarray, np.ndarray] | None = None


def _warm_state() -> tuple[np.ndarray, np.ndarray]:
    """State after LEAD_IN_SECONDS of zeros (deterministic, computed once)."""
    global _warm
    if _warm is None:
        n = int(LEAD_IN_SECONDS * SAMPLE_RATE) // WINDOW_SAMPLES
        h, c = _zero_state()
        if n:
            _, h, c = _get_session().run(
                None, {"input": np.zeros((n, CONTEXT_SAMPLES + WINDOW_SAMPLES), np.float32), "h": h, "c": c}
            )
        _warm = (h, c)
    return _warm[0].copy(), _warm[1].copy()


def _as_wave(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"speech detection needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"speech detection needs mono 1-D audio, got shape {wave.shape}")
    if not np.issubdtype(wave.dtype, np.floating):
        raise TypeError(f"speech detection needs float audio in [-1, 1], got {wave.dtype}")
    wave = wave.astype(np.float32, copy=False)
    if not np.all(np.isfinite(wave)):
        wave = np.nan_to_num(wave, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(wave, -1.0, 1.0)


# ----------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechRegions:
    """Speech found in one wave.

    Attributes
    ----------
    regions : tuple of (int, int)
        ``(start, end)`` sample indices (end exclusive) of speech regions, padded
        by :data:`PAD_SECONDS`, sorted and non-overlapping.
    sample_rate : int
        Sample rate of the wave the indices refer to.
    speech_seconds : float
        Detected speech, *without* padding (what the minimum is checked on).
    total_seconds : float
        Length of the wave.
    min_speech_seconds : float
        The amount needed for an answer (normally :data:`MIN_SPEECH_SECONDS`).
    """

    regions: tuple[tuple[int, int], ...]
    sample_rate: int
    speech_seconds: float
    total_seconds: float
    min_speech_seconds: float = MIN_SPEECH_SECONDS

    @property
    def has_speech(self) -> bool:
        """True when any speech region was found."""
        return bool(self.regions)

    @property
    def has_enough_speech(self) -> bool:
        """True when at least ``min_speech_seconds`` of speech was found."""
        return self.speech_seconds >= self.min_speech_seconds

    @property
    def status(self) -> Status:
        """``"speech"``, ``"too_little_speech"`` or ``"no_speech"``."""
        if not self.has_speech:
            return "no_speech"
        return "speech" if self.has_enough_speech else "too_little_speech"

    @property
    def padded_seconds(self) -> float:
        """Total length of the padded regions (what :func:`keep_speech` keeps)."""
        return sum(e - s for s, e in self.regions) / self.sample_rate

    def describe(self) -> str:
        """One sentence for the user interface."""
        if self.status == "no_speech":
            return f"No speech detected in {self.total_seconds:.1f} s of audio."
        if self.status == "too_little_speech":
            return (
                f"Too little speech: heard {self.speech_seconds:.1f} s, "
                f"need at least {self.min_speech_seconds:.1f} s."
            )
        return f"{self.speech_seconds:.1f} s of speech in {self.total_seconds:.1f} s of audio."


# ----------------------------------------------------------------------------
# Region logic (hysteresis over window probabilities)
# ----------------------------------------------------------------------------


@dataclass
class _RegionTracker:
    """Turn a stream of per-frame speech probabilities into regions.

    Works on any frame size (the benchmark reuses it for webrtcvad frames).
    Regions are emitted only once they are final, so it can run on a stream.
    """

    frame_samples: int
    threshold: float = THRESHOLD
    neg_threshold: float = NEG_THRESHOLD
    min_region_samples: int = int(MIN_REGION_SECONDS * SAMPLE_RATE)
    min_silence_samples: int = int(MIN_SILENCE_SECONDS * SAMPLE_RATE)
    pad_samples: int = int(PAD_SECONDS * SAMPLE_RATE)
    reset_on_neg: bool = True  # a window >= neg_threshold ends a silence run
    frame_index: int = 0
    start: int | None = None  # sample where the open region started
    silence_from: int | None = None  # sample where the current silence run started
    speech_samples: int = 0
    done: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.min_silence_samples < 2 * self.pad_samples:
            raise ValueError("min silence must be at least twice the padding")

    def _close(self, end: int) -> tuple[int, int] | None:
        start, self.start, self.silence_from = self.start, None, None
        if start is None or end - start < self.min_region_samples:
            return None
        self.speech_samples += end - start
        region = (max(0, start - self.pad_samples), end + self.pad_samples)
        self.done.append(region)
        return region

    def push(self, probs: Iterable[float]) -> list[tuple[int, int]]:
        """Feed the next frames' probabilities; return regions that became final."""
        out = []
        n = self.frame_samples
        for p in probs:
            pos = self.frame_index * n
            self.frame_index += 1
            if self.start is None:
                if p >= self.threshold:
                    self.start = pos
                continue
            if p >= (self.neg_threshold if self.reset_on_neg else self.threshold):
                self.silence_from = None
            elif p < self.neg_threshold:
                if self.silence_from is None:
                    self.silence_from = pos
                elif pos + n - self.silence_from >= self.min_silence_samples:
                    region = self._close(self.silence_from)
                    if region is not None:
                        out.append(region)
        return out

    def finish(self, total_samples: int) -> list[tuple[int, int]]:
        """Close the open region at the end of the stream; clip all to the wave."""
        out = []
        if self.start is not None:
            end = self.silence_from if self.silence_from is not None else total_samples
            region = self._close(min(end, total_samples))
            if region is not None:
                out.append(region)
        self.done = [(s, min(e, total_samples)) for s, e in self.done]
        return [(s, min(e, total_samples)) for s, e in out]


# ----------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------


class StreamingSpeechDetector:
    """Detect speech in a long recording fed chunk by chunk, in bounded memory.

    Carries the model's recurrent state, the 64-sample context and the < 512
    leftover samples from one chunk to the next, so the result is identical to
    :func:`detect_speech` on the whole recording, whatever the chunk sizes.
    Memory is O(chunk) plus the list of regions.

    Examples
    --------
    >>> det = StreamingSpeechDetector()
    >>> for block in soundfile.blocks("talk.flac", blocksize=16000 * 30, dtype="float32"):
    ...     for start, end in det.feed(block):     # regions final so far
    ...         handle(start, end)                 # absolute sample indices
    >>> for start, end in det.finish():            # the last open region, if any
    ...     handle(start, end)
    >>> det.result()                               # SpeechRegions for the whole file

    One instance per recording; an instance is not thread-safe, but any number
    of instances may run in parallel threads (they share one model session).
    A region is returned by ``feed`` only once it is final, i.e. after
    ``MIN_SILENCE_SECONDS`` of silence has followed it; since that is at least
    twice ``PAD_SECONDS``, its padded end never lies beyond the samples fed.
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        *,
        threshold: float = THRESHOLD,
        neg_threshold: float = NEG_THRESHOLD,
        min_region_seconds: float = MIN_REGION_SECONDS,
        min_silence_seconds: float = MIN_SILENCE_SECONDS,
        pad_seconds: float = PAD_SECONDS,
        min_speech_seconds: float = MIN_SPEECH_SECONDS,
    ) -> None:
        _as_wave(np.zeros(0, np.float32), sample_rate)
        self.sample_rate = sample_rate
        self.min_speech_seconds = min_speech_seconds
        self._tracker = _RegionTracker(
            frame_samples=WINDOW_SAMPLES,
            threshold=threshold,
            neg_threshold=neg_threshold,
            min_region_samples=round(min_region_seconds * sample_rate),
            min_silence_samples=round(min_silence_seconds * sample_rate),
            pad_samples=round(pad_seconds * sample_rate),
        )
        self._h, self._c = _warm_state()
        self._context = np.zeros(CONTEXT_SAMPLES, np.float32)
        self._pending = np.zeros(0, np.float32)
        self._total = 0
        self._finished = False

    def _score(self, wave: np.ndarray) -> np.ndarray:
        """Score whole windows of ``wave`` (length multiple of 512), carrying state."""
        windows = wave.reshape(-1, WINDOW_SAMPLES)
        if len(windows) == 0:
            return np.zeros(0, np.float32)
        context = np.empty((len(windows), CONTEXT_SAMPLES), np.float32)
        context[0] = self._context
        context[1:] = windows[:-1, -CONTEXT_SAMPLES:]
        batch = np.concatenate([context, windows], axis=1)
        probs, self._h, self._c = _get_session().run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = windows[-1, -CONTEXT_SAMPLES:].copy()
        return np.asarray(probs, np.float32).reshape(-1)

    def feed_probabilities(self, chunk: np.ndarray) -> np.ndarray:
        """Score the next chunk; return probabilities of the windows it completed."""
        if self._finished:
            raise RuntimeError("feed() after finish(): use a new detector per recording")
        chunk = _as_wave(chunk, self.sample_rate)
        self._total += len(chunk)
        data = np.concatenate([self._pending, chunk]) if len(self._pending) else chunk
        whole = len(data) // WINDOW_SAMPLES * WINDOW_SAMPLES
        self._pending = data[whole:].copy()
        return self._score(data[:whole])

    def feed(self, chunk: np.ndarray) -> list[tuple[int, int]]:
        """Feed the next chunk (any length); return the regions that became final.

        Parameters
        ----------
        chunk : np.ndarray
            Next samples of the recording, float mono at ``sample_rate`` in [-1, 1].

        Returns
        -------
        list of (int, int)
            Final, padded speech regions in absolute sample indices.
        """
        return self._tracker.push(self.feed_probabilities(chunk).tolist())

    def finish(self) -> list[tuple[int, int]]:
        """Score the last partial window (zero-padded); return the remaining regions."""
        if self._finished:
            return []
        self._finished = True
        out = []
        if len(self._pending):
            last = np.zeros(WINDOW_SAMPLES, np.float32)
            last[: len(self._pending)] = self._pending
            self._pending = np.zeros(0, np.float32)
            out = self._tracker.push(self._score(last).tolist())
        out = [(s, min(e, self._total)) for s, e in out]
        return out + self._tracker.finish(self._total)

    def result(self) -> SpeechRegions:
        """All regions of the recording (call after :meth:`finish`)."""
        if not self._finished:
            raise RuntimeError("call finish() first")
        return SpeechRegions(
            regions=tuple(self._tracker.done),
            sample_rate=self.sample_rate,
            speech_seconds=self._tracker.speech_samples / self.sample_rate,
            total_seconds=self._total / self.sample_rate,
            min_speech_seconds=self.min_speech_seconds,
        )


def speech_probabilities(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Per-window (32 ms) speech probabilities of a whole wave.

    Parameters
    ----------
    wave : np.ndarray
        Float mono audio at 16 kHz in [-1, 1].
    sample_rate : int
        Must be 16000.

    Returns
    -------
    np.ndarray
        float32 probabilities, one per 512 samples (last window zero-padded).
    """
    det = StreamingSpeechDetector(sample_rate)
    probs = det.feed_probabilities(wave)
    if len(det._pending):
        last = np.zeros(WINDOW_SAMPLES, np.float32)
        last[: len(det._pending)] = det._pending
        probs = np.concatenate([probs, det._score(last)])
    return probs


def detect_speech(
    wave: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    *,
    chunk_seconds: float = 600.0,
    **settings: float,
) -> SpeechRegions:
    """Find the speech regions of a wave.

    Parameters
    ----------
    wave : np.ndarray
        Float mono audio at 16 kHz, values in [-1, 1] (others are clipped).
    sample_rate : int
        Must be 16000 (resample first).
    chunk_seconds : float
        Score this much audio per model call (bounds the model's working
        memory; the result does not depend on it).
    **settings
        Override ``threshold``, ``neg_threshold``, ``min_region_seconds``,
        ``min_silence_seconds``, ``pad_seconds`` or ``min_speech_seconds``
        (for measurement; the app uses the module constants).

    Returns
    -------
    SpeechRegions
        Padded regions, unpadded speech seconds, and the clip's status.

    Notes
    -----
    Thread-safe: each call has its own state; the model session is shared.
    """
    det = StreamingSpeechDetector(sample_rate, **settings)
    step = max(WINDOW_SAMPLES, int(chunk_seconds * sample_rate) // WINDOW_SAMPLES * WINDOW_SAMPLES)
    wave = np.asarray(wave)
    for i in range(0, len(wave), step):
        det.feed(wave[i : i + step])
    det.finish()
    return det.result()


def keep_speech(
    wave: np.ndarray,
    regions: SpeechRegions | Iterable[tuple[int, int]],
    gap_seconds: float = 0.1,
    fade_seconds: float = 0.01,
    sample_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Concatenate the speech regions so the emotion model sees speech only.

    Each region gets a short raised-cosine fade in/out where it was cut out of
    surrounding audio (not at the wave's own ends), and regions are joined with
    ``gap_seconds`` of silence, which keeps a natural short pause instead of a
    splice click, while long silences no longer dilute the answer.

    Parameters
    ----------
    wave : np.ndarray
        The wave the regions were detected on.
    regions : SpeechRegions or iterable of (start, end)
        Sample-index regions (end exclusive).
    gap_seconds : float
        Silence inserted between consecutive regions.
    fade_seconds : float
        Fade length at each cut edge.
    sample_rate : int
        Sample rate of ``wave`` (used for the gap and fade lengths).

    Returns
    -------
    np.ndarray
        float32 audio; empty when there are no regions.
    """
    wave = np.asarray(wave, dtype=np.float32)
    spans = regions.regions if isinstance(regions, SpeechRegions) else tuple(regions)
    if isinstance(regions, SpeechRegions):
        sample_rate = regions.sample_rate
    if not spans:
        return np.zeros(0, np.float32)
    gap = np.zeros(int(round(gap_seconds * sample_rate)), np.float32)
    nfade = int(round(fade_seconds * sample_rate))
    parts: list[np.ndarray] = []
    for k, (start, end) in enumerate(spans):
        start, end = max(0, int(start)), min(len(wave), int(end))
        if end <= start:
            continue
        piece = wave[start:end].copy()
        f = min(nfade, len(piece) // 2)
        if f > 0:
            ramp = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, f, dtype=np.float32))).astype(np.float32)
            if start > 0:
                piece[:f] *= ramp
            if end < len(wave):
                piece[-f:] *= ramp[::-1]
        if parts and len(gap):
            parts.append(gap)
        parts.append(piece)
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def iter_speech_chunks(
    blocks: Iterable[np.ndarray], sample_rate: int = SAMPLE_RATE
) -> Iterator[tuple[int, int]]:
    """Yield final speech regions of a recording given as consecutive blocks.

    Convenience wrapper over :class:`StreamingSpeechDetector`, e.g.
    ``iter_speech_chunks(soundfile.blocks(path, blocksize=480000, dtype="float32"))``.
    """
    det = StreamingSpeechDetector(sample_rate)
    for block in blocks:
        yield from det.feed(block)
    yield from det.finish()
