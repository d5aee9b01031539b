"""Waveform corruptions for robustness measurements: additive noise at a set SNR, and reverberation."""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise so that speech power / noise power = ``snr_db``.

    Speech power is measured over the samples within 40 dB of the peak frame, not over silence.
    """
    frames = wave[: wave.size // 400 * 400].reshape(-1, 400)
    frame_power = np.mean(frames**2, axis=1)
    active = frame_power > frame_power.max() * 1e-4
    speech_power = float(np.mean(frame_power[active]))
    noise = rng.standard_normal(wave.size).astype(np.float32)
    noise *= np.sqrt(speech_power / 10 ** (snr_db / 10.0))
    return (wave + noise).astype(np.float32)


def synthetic_room_impulse(rt60_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Exponentially decaying noise with a direct-path spike: a simple diffuse-room impulse response."""
    length = int(rt60_s * sample_rate)
    t = np.arange(length) / sample_rate
    impulse = rng.standard_normal(length) * np.exp(-6.9 * t / rt60_s)
    impulse[0] = np.sqrt(np.sum(impulse[1:] ** 2))  # direct path as strong as the whole tail (0 dB DRR)
    return (impulse / np.max(np.abs(impulse))).astype(np.float32)


def reverberate(wave: np.ndarray, rt60_s: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    wet = fftconvolve(wave, synthetic_room_impulse(rt60_s, sample_rate, rng))[: wave.size]
    return (wet * (np.max(np.abs(wave)) / max(np.max(np.abs(wet)), 1e-9))).astype(np.float32)
