"""The log-mel feature function: the only place where audio becomes model input.

Training (through the feature cache) and inference both call :func:`clip_features`, with the
:class:`~ser_core.inference.params.FeatureParams` saved in the artifacts.
"""

from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np

from ser_core.inference.params import FeatureParams

SILENCE_PEAK = 1e-4  # peak amplitude below which a clip holds nothing to classify


@lru_cache(maxsize=8)
def _mel_basis(params: FeatureParams) -> np.ndarray:
    return librosa.filters.mel(
        sr=params.sample_rate, n_fft=params.n_fft, n_mels=params.n_mels,
        fmin=params.fmin, fmax=params.fmax,
    ).astype(np.float32)


@lru_cache(maxsize=8)
def _window(params: FeatureParams) -> np.ndarray:
    window = np.zeros(params.n_fft, dtype=np.float32)
    offset = (params.n_fft - params.win_length) // 2
    window[offset : offset + params.win_length] = np.hanning(params.win_length + 1)[:-1]
    return window


def mel_frequencies(params: FeatureParams) -> np.ndarray:
    """Centre frequency in Hz of each mel band."""
    return librosa.mel_frequencies(n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax)


def is_silent(wave: np.ndarray) -> bool:
    return wave.size == 0 or float(np.max(np.abs(wave))) < SILENCE_PEAK


def trim_bounds(wave: np.ndarray, params: FeatureParams) -> tuple[int, int]:
    """Sample range left after dropping leading and trailing audio whose frame RMS lies more than
    ``params.trim_db`` below the loudest frame."""
    if is_silent(wave) or wave.size < params.win_length:
        return 0, wave.size
    frames = np.lib.stride_tricks.sliding_window_view(wave, params.win_length)[:: params.hop_length]
    rms_db = 10.0 * np.log10(np.maximum(np.mean(frames**2, axis=-1), 1e-20))
    loud = np.flatnonzero(rms_db > rms_db.max() - params.trim_db)
    return int(loud[0] * params.hop_length), int(loud[-1] * params.hop_length + params.win_length)


def split_windows(wave: np.ndarray, params: FeatureParams) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``wave`` into fixed windows of ``params.clip_samples``.

    Short audio is centred in one zero-padded window; longer audio gets windows with 50% overlap,
    the last one aligned to the end. Returns ``(windows [n, clip_samples], start_seconds [n])``.
    """
    size = params.clip_samples
    if wave.size <= size:
        padded = np.zeros(size, dtype=np.float32)
        offset = (size - wave.size) // 2
        padded[offset : offset + wave.size] = wave
        return padded[None, :], np.zeros(1)
    hop = size // 2
    starts = list(range(0, wave.size - size + 1, hop))
    if starts[-1] + size < wave.size:
        starts.append(wave.size - size)
    windows = np.stack([wave[start : start + size] for start in starts]).astype(np.float32)
    return windows, np.asarray(starts) / params.sample_rate


def log_mel(windows: np.ndarray, params: FeatureParams) -> np.ndarray:
    """Log-mel spectrogram in dB relative to each window's loudest bin, floored at ``-top_db``.

    ``windows`` is ``[..., n_samples]``; the result is ``[..., n_mels, n_frames]`` float32. Referencing
    each window to its own maximum makes the features independent of recording level.
    """
    windows = np.asarray(windows, dtype=np.float32)
    pad = params.n_fft // 2
    padded = np.pad(windows, [(0, 0)] * (windows.ndim - 1) + [(pad, pad)], mode="constant")
    frames = np.lib.stride_tricks.sliding_window_view(padded, params.n_fft, axis=-1)
    frames = frames[..., :: params.hop_length, :]
    spectrum = np.fft.rfft(frames * _window(params), axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    mel_power = np.einsum("...tf,mf->...mt", power.astype(np.float32), _mel_basis(params))
    db = 10.0 * np.log10(np.maximum(mel_power, 1e-10))
    db -= db.max(axis=(-2, -1), keepdims=True)
    return np.maximum(db, -params.top_db).astype(np.float32)


def clip_features(wave: np.ndarray, params: FeatureParams) -> tuple[np.ndarray, np.ndarray]:
    """Trim, window and transform a mono waveform at ``params.sample_rate``.

    Returns ``(features [n_windows, n_mels, n_frames], start_seconds [n_windows])``, the starts
    measured from the beginning of ``wave``.
    """
    start, end = trim_bounds(wave, params)
    windows, starts = split_windows(wave[start:end], params)
    return log_mel(windows, params), starts + start / params.sample_rate
