"""A simulated browser-on-a-laptop channel: cheap microphone, room, noise, automatic gain, Opus in WebM.

Used twice: as a fixed evaluation channel (``Channel.opus(kbps)``: only the codec round trip, every
clip the same way) and as training augmentation (``Channel.browser()``: every stage drawn at random
per clip). A ``Channel`` is a frozen record, so it can be part of the embedding cache key
(``embedding_cache.front_end_key``).
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import butter, sosfilt

from ser_core.data.corrupt import add_noise, reverberate

__all__ = ["Channel", "automatic_gain", "band_limit", "encode", "opus_round_trip", "pink_noise"]


def encode(wave: np.ndarray, sample_rate: int, container_format: str, codec: str, *,
           bit_rate: int | None = None) -> bytes:
    """Audio encoded with PyAV as a browser or phone would send it (``"webm"``/``"libopus"``, ...).

    Parameters
    ----------
    wave : np.ndarray
        float32 ``[n]`` (mono) or ``[n, 2]`` (stereo).
    sample_rate : int
        Its rate; Opus encodes at 48 kHz, other codecs at ``sample_rate``.
    container_format, codec : str
        PyAV names, e.g. ``"webm"`` and ``"libopus"``, ``"mp4"`` and ``"aac"``.
    bit_rate : int, optional
        Target bits per second (the codec's default otherwise).

    Returns
    -------
    bytes
        The encoded file.
    """
    import av

    channels = 1 if wave.ndim == 1 else wave.shape[1]
    layout = "mono" if channels == 1 else "stereo"
    rate = 48_000 if "opus" in codec else sample_rate
    planar = np.asarray(wave, np.float32).reshape(-1, channels).T.copy()  # [channels, n]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = layout
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        resampler = av.AudioResampler(format=stream.format.name, layout=layout, rate=rate)
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        for chunk in resampler.resample(frame) + resampler.resample(None):
            chunk.pts = None
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def opus_round_trip(wave: np.ndarray, sample_rate: int, kbps: float) -> np.ndarray:
    """Encode to Opus in WebM at ``kbps`` (as a browser's MediaRecorder does) and decode back.

    Parameters
    ----------
    wave : np.ndarray
        Mono float32 audio.
    sample_rate : int
        Its rate; Opus runs at 48 kHz and the result is resampled back.
    kbps : float
        Target bit rate (browsers use 24-64; 12 is a poor connection).

    Returns
    -------
    np.ndarray
        float32 audio at ``sample_rate``, the same length as ``wave`` (codec delay trimmed or padded).
    """
    import av

    buffer = io.BytesIO(encode(wave, sample_rate, "webm", "libopus", bit_rate=int(kbps * 1000)))
    decoded = []
    with av.open(buffer, mode="r") as container:
        back = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        for frame in container.decode(audio=0):
            decoded += [chunk.to_ndarray().reshape(-1) for chunk in back.resample(frame)]
        decoded += [chunk.to_ndarray().reshape(-1) for chunk in back.resample(None)]
    out = np.concatenate(decoded).astype(np.float32) if decoded else np.zeros(0, np.float32)
    if len(out) < len(wave):
        out = np.pad(out, (0, len(wave) - len(out)))
    return out[: len(wave)]


def band_limit(wave: np.ndarray, sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """A cheap microphone's pass band: 4th-order Butterworth high-pass at ``low_hz``, low-pass at ``high_hz``."""
    sos = butter(4, [low_hz, min(high_hz, 0.45 * sample_rate)], btype="bandpass", fs=sample_rate, output="sos")
    return sosfilt(sos, wave).astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance 1/f noise (white noise shaped in the frequency domain)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
    noise = np.fft.irfft(spectrum, n)
    return (noise / (noise.std() + 1e-12)).astype(np.float32)


def automatic_gain(wave: np.ndarray, sample_rate: int, strength: float, target_dbfs: float = -20.0) -> np.ndarray:
    """A slow automatic gain control: the envelope (0.5 s RMS) is pulled towards ``target_dbfs``.

    ``strength`` 0 leaves the wave alone, 1 flattens the envelope completely; browsers' AGC sits in
    between and also pumps up pauses, which this reproduces.
    """
    window = int(0.5 * sample_rate)
    cumulative = np.concatenate([[0.0], np.cumsum(np.square(wave, dtype=np.float64))])
    start = np.clip(np.arange(len(wave)) - window // 2, 0, len(wave))
    end = np.clip(np.arange(len(wave)) + window // 2, 0, len(wave))
    power = (cumulative[end] - cumulative[start]) / np.maximum(end - start, 1)
    level_db = 10 * np.log10(np.maximum(power, 1e-8))
    gain_db = np.clip(strength * (target_dbfs - level_db), -20.0, 30.0)
    return (wave * 10 ** (gain_db / 20)).astype(np.float32)


@dataclass(frozen=True)
class Channel:
    """One channel simulation; each stage is skipped when its setting is None (or 0 for probabilities).

    Ranges are drawn uniformly per clip from the generator the caller passes.
    """

    band_low_hz: tuple[float, float] | None = None  # high-pass corner range
    band_high_hz: tuple[float, float] | None = None  # low-pass corner range
    reverb_probability: float = 0.0
    rt60_s: tuple[float, float] = (0.2, 0.6)
    noise_probability: float = 0.0
    snr_db: tuple[float, float] = (10.0, 30.0)
    agc_strength: tuple[float, float] | None = None
    opus_kbps: tuple[float, float] | None = None
    sample_rate: int = 16_000

    @classmethod
    def opus(cls, kbps: float) -> "Channel":
        """Only the Opus/WebM round trip at a fixed bit rate: the evaluation channel."""
        return cls(opus_kbps=(kbps, kbps))

    @classmethod
    def browser(cls) -> "Channel":
        """A random laptop-browser chain for training augmentation."""
        return cls(band_low_hz=(80.0, 300.0), band_high_hz=(3_400.0, 7_500.0), reverb_probability=0.5,
                   noise_probability=0.6, agc_strength=(0.0, 0.7), opus_kbps=(12.0, 32.0))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        sr = self.sample_rate
        wave = np.asarray(wave, np.float32)
        if self.reverb_probability and rng.random() < self.reverb_probability:
            wave = reverberate(wave, rng.uniform(*self.rt60_s), sr, rng)
        if self.band_low_hz and self.band_high_hz:
            wave = band_limit(wave, sr, rng.uniform(*self.band_low_hz), rng.uniform(*self.band_high_hz))
        if self.noise_probability and rng.random() < self.noise_probability:
            snr = rng.uniform(*self.snr_db)
            if rng.random() < 0.5:
                wave = add_noise(wave, snr, rng)
            else:
                # add_noise measures the speech power; reuse it by scaling its white noise's share
                white = add_noise(wave, snr, rng) - wave
                wave = (wave + pink_noise(len(wave), rng) * white.std()).astype(np.float32)
        if self.agc_strength:
            wave = automatic_gain(wave, sr, rng.uniform(*self.agc_strength))
        if self.opus_kbps:
            wave = opus_round_trip(np.clip(wave, -1.0, 1.0), sr, rng.uniform(*self.opus_kbps))
        return wave
