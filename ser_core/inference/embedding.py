"""The Whisper front end: a 16 kHz waveform in, one pooled embedding per encoder layer out.

The one feature function of the embedding model, used by training (through the cache in
``ser_core.data.embedding_cache``) and by inference alike. Steps, in order:

1. Silero VAD (``speech.detect_speech``) keeps the speech regions, joined by short pauses;
2. the RMS of the speech samples is brought to ``EmbeddingParams.speech_level_dbfs``;
3. speech longer than ``max_segment_seconds`` is cut into equal segments (Whisper sees at most 30 s);
4. each segment goes through Whisper's log-mel and the frozen encoder, unpadded;
5. every layer's frames (the convolutional stem and each transformer block) are pooled into
   their mean and standard deviation over all frames of all segments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ser_core.inference import speech
from ser_core.inference.params import EmbeddingParams
from ser_core.inference.whisper_encoder import WhisperEncoder

__all__ = ["Embedding", "embed_waveform", "level_normalise", "load_encoder", "speech_part"]


@dataclass(frozen=True)
class Embedding:
    """One clip's pooled encoder outputs.

    Attributes
    ----------
    pooled : np.ndarray
        float32, shape ``(n_layers + 1, 2 * width)``: per layer, the frame mean then the frame
        standard deviation (``(7, 1024)`` for Whisper base).
    speech_status : str
        ``speech.SpeechRegions.status`` of the input ("speech", "too_little", "no_speech"), or
        "not_checked" with VAD off. With too little or no speech the whole wave was embedded.
    speech_seconds : float
        Seconds of audio that reached the encoder.
    """

    pooled: np.ndarray
    speech_status: str
    speech_seconds: float


@lru_cache(maxsize=2)
def load_encoder(model: str = "base", weights_sha256: str | None = None) -> WhisperEncoder:
    """The frozen encoder, loaded once per process and checked against ``weights_sha256``.

    Parameters
    ----------
    model : str
        Whisper model name known to ``whisper_weights`` ("base", "tiny.en").
    weights_sha256 : str, optional
        The SHA-256 the model.bin must have; None accepts the source chain's own pin.

    Returns
    -------
    WhisperEncoder
    """
    from ser_core.inference.whisper_weights import resolve_weights

    weights = resolve_weights(model, allow_download=False)
    if weights_sha256 is not None and weights.sha256 is not None and weights.sha256 != weights_sha256:
        raise ValueError(
            f"Whisper {model} weights at {weights.files[0]} have SHA-256 {weights.sha256}, "
            f"the front end was built for {weights_sha256}"
        )
    return WhisperEncoder.from_model_bin(weights.files)


# Silero's probabilities depend on the input level: a RAVDESS clip 26 dB quieter lost 0.7 s of its
# onset. The VAD therefore hears the wave scaled so that its loud frames sit at a fixed level, which
# makes the whole front end independent of the microphone gain.
_VAD_FRAME = 320  # 20 ms
_VAD_LOUD_FRAMES = 5  # the 5th-loudest frame: one click does not set it, added silence does not move it
_VAD_LEVEL_DBFS = -15.0


def _vad_input(wave: np.ndarray, params: EmbeddingParams) -> np.ndarray:
    n = len(wave) // _VAD_FRAME * _VAD_FRAME
    frames = wave[:n].reshape(-1, _VAD_FRAME) if n else wave[None, :]
    rms = np.sort(np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1)))
    loud = float(rms[-min(_VAD_LOUD_FRAMES, len(rms))])
    gain_db = min(_VAD_LEVEL_DBFS - 20.0 * math.log10(max(loud, 1e-10)), params.max_gain_db)
    return np.clip(wave * np.float32(10.0 ** (gain_db / 20.0)), -1.0, 1.0)


def speech_part(wave: np.ndarray, params: EmbeddingParams) -> tuple[np.ndarray, np.ndarray, str]:
    """The audio the encoder will see and the samples whose RMS sets its level.

    Returns
    -------
    kept : np.ndarray
        Speech regions joined by ``speech.keep_speech`` (the whole wave without VAD or speech).
    level_samples : np.ndarray
        The speech samples themselves (no inserted pauses), for the level measurement.
    status : str
        The VAD's verdict, or "not_checked".
    """
    if not params.vad:
        return wave, wave, "not_checked"
    regions = speech.detect_speech(_vad_input(wave, params), params.sample_rate)
    if not regions.regions:
        return wave, wave, regions.status
    kept = speech.keep_speech(wave, regions)
    level = np.concatenate([wave[max(0, a):b] for a, b in regions.regions])
    return kept, level, regions.status


def level_normalise(wave: np.ndarray, level_samples: np.ndarray, params: EmbeddingParams) -> np.ndarray:
    """Scale ``wave`` so that ``level_samples`` has RMS ``params.speech_level_dbfs`` (gain capped).

    Not clipped: the encoder's log-mel takes any float amplitude, and clipping would add distortion
    that no microphone in the training corpora had.
    """
    rms = float(np.sqrt(np.mean(np.square(level_samples, dtype=np.float64)))) if level_samples.size else 0.0
    gain_db = params.speech_level_dbfs - 20.0 * math.log10(max(rms, 1e-10))
    gain_db = min(gain_db, params.max_gain_db)
    return (wave * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


def _segments(wave: np.ndarray, params: EmbeddingParams) -> list[np.ndarray]:
    limit = int(params.max_segment_seconds * params.sample_rate)
    n_segments = max(1, math.ceil(len(wave) / limit))
    bounds = np.linspace(0, len(wave), n_segments + 1).astype(int)
    return [wave[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def embed_waveform(
    wave: np.ndarray, params: EmbeddingParams = EmbeddingParams(), *, encoder: WhisperEncoder | None = None
) -> Embedding:
    """Pooled Whisper-encoder embedding of one recording.

    Parameters
    ----------
    wave : np.ndarray
        Mono float audio at ``params.sample_rate`` (16 kHz), any length of at least 0.1 s.
    params : EmbeddingParams
        The front-end record saved with the model.
    encoder : WhisperEncoder, optional
        Defaults to ``load_encoder(params.model, params.weights_sha256)`` (cached per process).

    Returns
    -------
    Embedding
        ``pooled`` of shape ``(n_layers + 1, 2 * width)``.

    Examples
    --------
    >>> wave = np.random.default_rng(0).normal(0, 0.05, 48_000).astype(np.float32)
    >>> embed_waveform(wave).pooled.shape  # doctest: +SKIP
    (7, 1024)
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono waveform (1-D), got shape {wave.shape}")
    if len(wave) < params.sample_rate // 10:
        raise ValueError(f"need at least 0.1 s of audio, got {len(wave) / params.sample_rate:.3f} s")
    encoder = encoder or load_encoder(params.model, params.weights_sha256)
    kept, level_samples, status = speech_part(wave, params)
    kept = level_normalise(kept, level_samples, params)
    minimum = int(params.min_segment_seconds * params.sample_rate)
    if len(kept) < minimum:
        extra = minimum - len(kept)
        kept = np.pad(kept, (extra // 2, extra - extra // 2))
    # Pool over the frames of all segments together (frame-weighted), as if one long pass.
    total = total_sq = None
    n_frames = 0
    for segment in _segments(kept, params):
        hidden = encoder.encode(segment, sr=params.sample_rate).hidden_states.astype(np.float64)
        sums, squares = hidden.sum(axis=1), np.square(hidden).sum(axis=1)
        total = sums if total is None else total + sums
        total_sq = squares if total_sq is None else total_sq + squares
        n_frames += hidden.shape[1]
    mean = total / n_frames
    std = np.sqrt(np.maximum(total_sq / n_frames - np.square(mean), 0.0))
    pooled = np.concatenate([mean, std], axis=1).astype(np.float32)
    return Embedding(pooled=pooled, speech_status=status, speech_seconds=len(kept) / params.sample_rate)
