"""The Whisper front end as the predictor needs it: the training embedding, plus where it came from.

:func:`embed_speech` computes exactly what :func:`ser_core.inference.embedding.embed_waveform`
computes for training (the same VAD, level, segments and pooling, built from the same helpers;
``tests/test_whisper_predictor.py`` checks the two agree), and keeps from the same encoder pass what
the page shows: the encoder frames of the chosen layers (pooled again per ~3 s window and per
speech region for the timeline, no second pass) and the Whisper log-mel of the speech the model
heard. The frames are kept summed over bins of :data:`BIN_FRAMES` (0.1 s), which is all the
timeline needs and a fifth of the memory. It lives apart from ``embedding`` because that module's
source is part of the embedding cache key.

The encoder stops after the highest layer the head reads (:func:`serving_encoder`): the blocks
above it cannot change the layers below, so the answer is the same for less work; the pooled
embedding then has rows ``0..max(layers)`` only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ser_core.inference import embedding, speech
from ser_core.inference.params import EmbeddingParams
from ser_core.inference.whisper_encoder import WhisperEncoder

__all__ = ["BIN_FRAMES", "DEFAULT_SERVING_PRECISION", "FRAME_SAMPLES", "EmbeddedSpeech", "embed_speech",
           "front_end_encoder", "model_encoder", "pooled_statistics", "segment_frames", "serving_encoder",
           "serving_precision"]

log = logging.getLogger(__name__)

# One encoder output frame: two 10 ms mel hops (the encoder's second convolution has stride 2).
FRAME_SAMPLES = 320
BIN_FRAMES = 5  # 0.1 s: the timeline's resolution
# A model whose config does not say how to serve its encoder runs the blocks in int8 (its training
# embeddings may be float32): the shipped recipe's leave-one-corpus-out UAR moved by -0.03 points
# strict and -0.47 adapted with the held-out corpus embedded in int8, the RAVDESS cross-validation's
# by -0.10 (docs/experiments.md, S9), and a 3 s clip's encoder pass took a quarter of the float32
# time (benchmarks/latency.py).
DEFAULT_SERVING_PRECISION = "int8"


@dataclass(frozen=True)
class EmbeddedSpeech:
    """One recording through the Whisper front end.

    Attributes
    ----------
    pooled : np.ndarray
        ``(n_blocks + 1, 2 * width)``: the first ``n_blocks + 1`` rows of
        ``embed_waveform(wave, params).pooled``, ``n_blocks`` the blocks the encoder ran
        (``max(layers)`` with the default encoder).
    bin_sums : np.ndarray
        float32 ``(n_bins, len(layers), width)``: the chosen layers' encoder frames summed per bin of
        :data:`BIN_FRAMES` frames, in order (a segment's last bin may hold fewer).
    bin_squares : np.ndarray or None
        The same for the frames' squares (None unless asked for: mean-only heads do not need them).
    bin_counts : np.ndarray
        int ``(n_bins,)``: frames in each bin.
    bin_starts : np.ndarray
        int ``(n_bins,)``: sample of the joined-speech stream where each bin starts.
    log_mel : list of np.ndarray
        Whisper log-mel ``(n_mels, n_mel_frames)`` of each encoder segment (the model's input).
    regions : speech.SpeechRegions
        What the speech detector found in the input.
    stream_regions : list of (int, int, int, int)
        Each kept region: input start, input end, joined-stream start, joined-stream end (samples).
    stream_samples : int
        Length of the joined, level-normalised speech the encoder heard.
    """

    pooled: np.ndarray
    bin_sums: np.ndarray
    bin_squares: np.ndarray | None
    bin_counts: np.ndarray
    bin_starts: np.ndarray
    log_mel: list[np.ndarray]
    regions: speech.SpeechRegions
    stream_regions: list[tuple[int, int, int, int]]
    stream_samples: int


@lru_cache(maxsize=4)
def front_end_encoder(params: EmbeddingParams) -> WhisperEncoder:
    """The encoder ``params`` names, all its blocks, in ``params.encoder_precision``: what training embeds with.

    Use it as ``embed_waveform(wave, params, encoder=front_end_encoder(params))``; loaded once per process.
    """
    full = embedding.load_encoder(params.model, params.weights_sha256)
    return full if params.encoder_precision == "float32" else full.variant(precision=params.encoder_precision)


def serving_precision(config: dict) -> str:
    """How a Whisper model's config says to run its encoder's blocks: "float32" or "int8".

    ``config["serving"]["encoder_precision"]`` when set (``"float32"`` turns int8 off); else "int8"
    for a model trained on int8 embeddings (``front_end.encoder_precision``); else
    :data:`DEFAULT_SERVING_PRECISION`.
    """
    chosen = (config.get("serving") or {}).get("encoder_precision")
    if chosen is None:
        trained = (config.get("front_end") or {}).get("encoder_precision", "float32")
        chosen = "int8" if trained == "int8" else DEFAULT_SERVING_PRECISION
    if chosen not in ("float32", "int8"):
        raise ValueError(f"serving.encoder_precision must be 'float32' or 'int8', got {chosen!r}")
    return chosen


@lru_cache(maxsize=4)
def serving_encoder(params: EmbeddingParams, layers: tuple[int, ...], precision: str | None = None) -> WhisperEncoder:
    """The encoder a head reading ``layers`` needs: stopping after ``max(layers)``, in ``precision``.

    Parameters
    ----------
    params : EmbeddingParams
        The model's front end (its ``config.json``).
    layers : tuple of int
        The head's ``recipe.layers`` (0 = the convolutional stem, 1..n = blocks).
    precision : {"float32", "int8"}, optional
        Default ``params.encoder_precision`` (a model's config chooses with :func:`serving_precision`).

    Returns
    -------
    WhisperEncoder
        In float32 its hidden states equal :func:`front_end_encoder`'s first ``max(layers) + 1`` bit
        for bit; loaded once per process.
    """
    full = embedding.load_encoder(params.model, params.weights_sha256)
    n_blocks = max(1, max(layers))
    if n_blocks > full.n_layers:
        raise ValueError(f"layers {layers} outside 0..{full.n_layers} of Whisper {params.model}")
    return full.variant(n_blocks=n_blocks, precision=precision or params.encoder_precision)


def model_encoder(config: dict) -> WhisperEncoder:
    """The encoder a Whisper model's ``config.json`` is served with: stopping after the highest of its
    ``recipe.layers``, in :func:`serving_precision`. If the int8 graph cannot be built or loaded
    here, the float32 blocks serve instead (the same model, slower), with a warning in the log.

    Raises
    ------
    WhisperWeightsError, ValueError, OSError
        No usable weights, or a config value out of range.
    """
    params = EmbeddingParams.from_dict(config["front_end"])
    layers = tuple(int(layer) for layer in config["recipe"]["layers"])
    precision = serving_precision(config)
    float32 = serving_encoder(params, layers, "float32")
    if precision == "float32":
        return float32
    try:
        return serving_encoder(params, layers, precision)
    except Exception as error:  # noqa: BLE001 - onnx, onnxruntime or the disk: float32 is a full answer
        log.warning("the int8 Whisper encoder is not usable here (%s: %s); serving float32",
                    type(error).__name__, error)
        return float32


def _stream_regions(regions: speech.SpeechRegions, total: int, gap: int) -> list[tuple[int, int, int, int]]:
    """Where each region lands in ``speech.keep_speech``'s output (regions joined by ``gap`` samples)."""
    out, cursor = [], 0
    for start, end in regions.regions:
        start, end = max(0, int(start)), min(total, int(end))
        if end <= start:
            continue
        if out:
            cursor += gap
        out.append((start, end, cursor, cursor + end - start))
        cursor += end - start
    return out


def _binned(values: np.ndarray) -> np.ndarray:
    """``(frames, ...)`` summed over consecutive groups of :data:`BIN_FRAMES` frames."""
    n_bins = -(-len(values) // BIN_FRAMES)
    padded = np.zeros((n_bins * BIN_FRAMES, *values.shape[1:]), np.float32)
    padded[: len(values)] = values
    return padded.reshape(n_bins, BIN_FRAMES, *values.shape[1:]).sum(axis=1)


def segment_frames(hidden: np.ndarray, layers: tuple[int, ...], offset: int, squares: bool):
    """One encoder segment's share: its frames' sums and sums of squares per layer (float64, for the
    pooled embedding), and the chosen layers' frames binned: sums, squares (None unless ``squares``),
    frames per bin and each bin's start in the joined-speech stream (the segment starts at ``offset``)."""
    wide = hidden.astype(np.float64)
    chosen = np.transpose(hidden[list(layers)], (1, 0, 2))
    bin_sums = _binned(chosen)
    n_bins = len(bin_sums)
    return (wide.sum(axis=1), np.square(wide).sum(axis=1), bin_sums,
            _binned(np.square(chosen)) if squares else None,
            np.minimum(BIN_FRAMES, hidden.shape[1] - BIN_FRAMES * np.arange(n_bins)),
            offset + FRAME_SAMPLES * BIN_FRAMES * np.arange(n_bins))


def pooled_statistics(total: np.ndarray, total_sq: np.ndarray, n_frames: int) -> np.ndarray:
    """``(n_layers + 1, 2 * width)`` float32: frame mean and standard deviation per layer, from their sums."""
    mean = total / n_frames
    std = np.sqrt(np.maximum(total_sq / n_frames - np.square(mean), 0.0))
    return np.concatenate([mean, std], axis=1).astype(np.float32)


def embed_speech(wave: np.ndarray, params: EmbeddingParams, layers: tuple[int, ...], *, squares: bool = True,
                 encoder=None) -> EmbeddedSpeech:
    """The training embedding of ``wave`` and the frames and log-mel behind it.

    Parameters
    ----------
    wave : np.ndarray
        Mono float32 audio at ``params.sample_rate`` (16 kHz), at least 0.1 s.
    params : EmbeddingParams
        The front end the model was trained with (its ``config.json``).
    layers : tuple of int
        Encoder layers whose frames to keep (the head's ``recipe.layers``).
    squares : bool
        Also keep the binned squares (for heads that read frame standard deviations).
    encoder : WhisperEncoder, optional
        Anything with ``log_mel(audio, sr)`` and ``forward(mel, n_blocks)``; default
        :func:`serving_encoder` of ``params`` and ``layers``. It runs ``max(layers)`` blocks (at least 1).

    Returns
    -------
    EmbeddedSpeech
        With too little or no speech the whole wave was embedded, as in training; the caller
        decides from ``regions.status`` whether to answer.

    Examples
    --------
    >>> result = embed_speech(wave, EmbeddingParams(), (1, 2, 3, 4))  # doctest: +SKIP
    >>> result.pooled.shape, result.bin_sums.shape[1:]  # doctest: +SKIP
    ((5, 1024), (4, 512))
    """
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"expected a mono waveform (1-D), got shape {wave.shape}")
    if len(wave) < params.sample_rate // 10:
        raise ValueError(f"need at least 0.1 s of audio, got {len(wave) / params.sample_rate:.3f} s")
    encoder = encoder or serving_encoder(params, tuple(layers))
    n_blocks = max(1, max(layers))
    # embedding.speech_part, step by step, keeping the regions for the timeline.
    if params.vad:
        regions = speech.detect_speech(embedding._vad_input(wave, params), params.sample_rate)
    else:
        regions = speech.SpeechRegions(((0, len(wave)),), params.sample_rate, len(wave) / params.sample_rate,
                                       len(wave) / params.sample_rate)
    if params.vad and regions.regions:
        kept = speech.keep_speech(wave, regions)
        level = np.concatenate([wave[max(0, a):b] for a, b in regions.regions])
        placed = _stream_regions(regions, len(wave), int(round(0.1 * params.sample_rate)))
    else:
        kept, level = wave, wave
        placed = [(0, len(wave), 0, len(wave))]
    kept = embedding.level_normalise(kept, level, params)
    minimum = int(params.min_segment_seconds * params.sample_rate)
    if len(kept) < minimum:
        extra = minimum - len(kept)
        kept = np.pad(kept, (extra // 2, extra - extra // 2))
        placed = [(a, b, s + extra // 2, e + extra // 2) for a, b, s, e in placed]
    total = total_sq = None
    n_frames, offset = 0, 0
    sums, squared, counts, starts, mels = [], [], [], [], []
    for segment in embedding._segments(kept, params):
        mel = encoder.log_mel(segment, sr=params.sample_rate)
        hidden = encoder.forward(mel, n_blocks).hidden_states
        layer_sums, layer_squares, bin_sums, bin_squares, bin_counts, bin_starts = segment_frames(
            hidden, layers, offset, squares)
        total = layer_sums if total is None else total + layer_sums
        total_sq = layer_squares if total_sq is None else total_sq + layer_squares
        n_frames += hidden.shape[1]
        sums.append(bin_sums)
        if squares:
            squared.append(bin_squares)
        counts.append(bin_counts)
        starts.append(bin_starts)
        mels.append(np.asarray(mel, np.float32))
        offset += len(segment)
    return EmbeddedSpeech(
        pooled=pooled_statistics(total, total_sq, n_frames),
        bin_sums=np.concatenate(sums), bin_squares=np.concatenate(squared) if squares else None,
        bin_counts=np.concatenate(counts), bin_starts=np.concatenate(starts), log_mel=mels,
        regions=regions, stream_regions=placed, stream_samples=len(kept),
    )
