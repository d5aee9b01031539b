"""Decoding audio from files, bytes or arrays into mono float32 at the model's sample rate."""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile
import soxr

AudioSource = Union[str, Path, bytes, BinaryIO]

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".webm")


class AudioError(ValueError):
    """A user-facing problem with an audio input; the message is safe to show as it is."""


def _source_name(source: AudioSource) -> str:
    if isinstance(source, (str, Path)):
        return Path(source).name
    return getattr(source, "name", None) or "the audio"


def _read_bytes(source: AudioSource) -> bytes:
    if isinstance(source, (str, Path)):
        try:
            return Path(source).read_bytes()
        except FileNotFoundError as error:
            raise AudioError(f"{source}: no such file.") from error
        except OSError as error:
            raise AudioError(f"{source}: cannot be read ({error.strerror}).") from error
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    data = source.read()
    if hasattr(source, "seek"):
        source.seek(0)
    return data


def _decode_with_soundfile(data: bytes) -> tuple[np.ndarray, int]:
    samples, sample_rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples.T, int(sample_rate)


def _decode_with_pyav(data: bytes) -> tuple[np.ndarray, int]:
    """Containers libsndfile does not read (m4a, webm, some mp3), through FFmpeg's decoders."""
    import av  # imported lazily: only needed for compressed containers

    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.audio:
            raise AudioError("the file holds no audio stream.")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=stream.rate or 48_000)
        chunks = []
        for frame in container.decode(stream):
            for resampled in resampler.resample(frame):
                chunks.append(resampled.to_ndarray())
        for resampled in resampler.resample(None):
            chunks.append(resampled.to_ndarray())
        sample_rate = resampler.rate
    if not chunks:
        return np.zeros((1, 0), dtype=np.float32), int(sample_rate)
    return np.concatenate(chunks, axis=1).astype(np.float32), int(sample_rate)


def to_mono(samples: np.ndarray, channel_axis: int | None = None) -> np.ndarray:
    """Average a ``(channels, n)``, ``(n, channels)`` or ``(n,)`` array to mono float32.

    Without ``channel_axis``, the shorter axis of a 2-D array is taken as the channels.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1:
        return samples
    if samples.ndim != 2:
        raise AudioError(f"expected mono or multi-channel audio, got an array of shape {samples.shape}.")
    if channel_axis is None:
        channel_axis = 0 if samples.shape[0] <= samples.shape[1] else 1
    return samples.mean(axis=channel_axis)


def resample(wave: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate:
        return np.ascontiguousarray(wave, dtype=np.float32)
    return soxr.resample(wave, source_rate, target_rate, quality="HQ").astype(np.float32)


def interleaved_to_mono(samples: np.ndarray, channels: int) -> np.ndarray:
    """Downmix interleaved PCM (L R L R ...), as WebRTC frames deliver it, to mono float32 in [-1, 1]."""
    samples = np.asarray(samples).reshape(-1)
    if np.issubdtype(samples.dtype, np.integer):
        scale = float(np.iinfo(samples.dtype).max) + 1.0
        samples = samples.astype(np.float32) / scale
    return samples.astype(np.float32).reshape(-1, channels).mean(axis=1)


def load_audio(
    source: AudioSource, sample_rate: int, max_seconds: float | None = None
) -> np.ndarray:
    """Decode ``source`` (path, bytes or file object of any supported format) to mono float32.

    Raises :class:`AudioError` with a message fit for a user when the input is empty, not audio,
    corrupt or longer than ``max_seconds``. Silence decodes fine; the predictor refuses it.
    """
    name = _source_name(source)
    data = _read_bytes(source)
    if not data:
        raise AudioError(f"{name} is empty.")
    try:
        samples, source_rate = _decode_with_soundfile(data)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        try:
            samples, source_rate = _decode_with_pyav(data)
        except AudioError as error:
            raise AudioError(f"{name}: {error}") from error
        except Exception as error:  # FFmpeg raises many kinds; all mean "not decodable audio"
            raise AudioError(
                f"{name} could not be decoded as audio; use wav, flac, mp3, ogg, m4a or webm."
            ) from error
    wave = to_mono(samples, channel_axis=0)
    if wave.size == 0:
        raise AudioError(f"{name} contains no audio samples.")
    duration = wave.size / source_rate
    if max_seconds is not None and duration > max_seconds:
        raise AudioError(
            f"{name} is {duration:.0f} s long; the limit is {max_seconds:.0f} s. Trim it and try again."
        )
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{name} contains invalid (non-finite) samples.")
    return resample(wave, source_rate, sample_rate)
