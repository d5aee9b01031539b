"""Decoding audio from files, bytes or arrays into mono float32 at the model's sample rate."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile
import soxr

AudioSource = Union[str, Path, bytes, BinaryIO]

__all__ = [
    "SUPPORTED_EXTENSIONS", "AudioError", "AudioSource", "AudioStream", "about_file",
    "interleaved_to_mono", "load_audio", "open_audio_stream", "resample", "to_mono",
]

# Ogg Opus (.opus, .oga) is what many phones send as voice notes; libsndfile reads it like Ogg Vorbis.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".oga", ".m4a", ".webm")


class AudioError(ValueError):
    """A user-facing problem with an audio input; the message is safe to show as it is."""


def about_file(path: str | Path, error: Exception) -> str:
    """``error``'s message, starting with ``path`` unless the message already names the file.

    Every message the command-line tools print about a file goes through this, so a user running
    ``predict a.wav b.wav c.wav`` always knows which file a message is about.
    """
    message = str(error)
    if str(path) in message or Path(path).name in message:
        return message
    return f"{path}: {message}"


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


# ------------------------------------------------------------------------------ streaming decode


def _too_long(name: str, duration: float, max_seconds: float) -> AudioError:
    return AudioError(
        f"{name} is {duration:.0f} s long; the limit is {max_seconds:.0f} s. Trim it and try again."
    )


def _undecodable(name: str) -> AudioError:
    return AudioError(
        f"{name} could not be decoded as audio; use wav, flac, mp3, ogg, m4a or webm."
    )


@dataclass
class AudioStream:
    """A decoder that yields an audio file as consecutive mono float32 blocks at ``sample_rate``.

    Made by :func:`open_audio_stream`; iterate it once. Memory stays in proportion to one block
    whatever the file's length: libsndfile reads wav/flac/ogg/mp3 ``block_seconds`` at a time,
    FFmpeg (through PyAV) decodes other containers frame by frame, and soxr's streaming
    resampler carries its filter state from block to block.

    Attributes
    ----------
    name : str
        The file's name, for messages.
    duration_s : float or None
        Length from the file's header, when the header says (checked against ``max_seconds``
        before any decoding).
    decoded_s : float
        Seconds decoded so far (at the source rate), for progress reports.
    """

    name: str
    duration_s: float | None
    _blocks: Iterator[np.ndarray]
    decoded_s: float = 0.0

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._blocks


def open_audio_stream(source: AudioSource, sample_rate: int, *, block_seconds: float = 30.0,
                      max_seconds: float | None = None) -> AudioStream:
    """Open ``source`` (path, bytes or file object) for decoding block by block.

    Parameters
    ----------
    source : str, Path, bytes or binary file object
        The audio, in any format :func:`load_audio` reads.
    sample_rate : int
        Rate of the yielded blocks, Hz.
    block_seconds : float
        About this much audio per block.
    max_seconds : float or None
        Refuse longer audio (checked from the header before decoding, and while decoding when the
        header does not say). None: any length.

    Returns
    -------
    AudioStream
        Iterate it for ``[n]`` float32 blocks. Every problem is an :class:`AudioError` whose
        message names the file: missing, empty, not audio, damaged, too long, non-finite samples,
        no samples at all.

    Examples
    --------
    >>> stream = open_audio_stream("talk.m4a", 16_000)
    >>> seconds = sum(block.size for block in stream) / 16_000
    """
    # A path is named as the caller gave it: of several files called a.wav, the message says which.
    name = str(source) if isinstance(source, (str, Path)) else _source_name(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise AudioError(f"{source}: no such file.")
        if path.is_dir():
            raise AudioError(f"{source} is a folder, not an audio file.")
        try:
            size = path.stat().st_size
            with open(path, "rb"):
                pass
        except OSError as error:
            raise AudioError(f"{source}: cannot be read ({error.strerror}).") from error
        handle_source: Union[str, BinaryIO] = str(path)
    else:
        data = _read_bytes(source)
        size = len(data)
        handle_source = io.BytesIO(data)
    if size == 0:
        raise AudioError(f"{name} is empty.")
    try:
        sound = soundfile.SoundFile(handle_source)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        if isinstance(handle_source, io.BytesIO):
            handle_source.seek(0)
        return _pyav_stream(handle_source, name, sample_rate, block_seconds, max_seconds)
    duration = sound.frames / sound.samplerate if sound.frames > 0 else None
    if max_seconds is not None and duration is not None and duration > max_seconds:
        sound.close()
        raise _too_long(name, duration, max_seconds)
    stream = AudioStream(name, duration, iter(()))
    stream._blocks = _soundfile_blocks(sound, stream, sample_rate, block_seconds, max_seconds)
    return stream


def _finish_blocks(raw: Iterator[tuple[np.ndarray, int]], stream: AudioStream, sample_rate: int,
                   max_seconds: float | None) -> Iterator[np.ndarray]:
    """Check, downmix and resample ``(samples [n, channels], source_rate)`` blocks."""
    resampler = None
    total = 0
    for samples, source_rate in raw:
        mono = samples.mean(axis=1, dtype=np.float32) if samples.ndim == 2 else samples
        if not np.all(np.isfinite(mono)):
            raise AudioError(f"{stream.name} contains invalid (non-finite) samples.")
        total += mono.size
        stream.decoded_s = total / source_rate
        if max_seconds is not None and stream.decoded_s > max_seconds:
            raise _too_long(stream.name, stream.decoded_s, max_seconds)
        if source_rate == sample_rate:
            yield np.ascontiguousarray(mono, dtype=np.float32)
            continue
        if resampler is None:
            resampler = (soxr.ResampleStream(source_rate, sample_rate, 1, dtype="float32",
                                             quality="HQ"), source_rate)
        out = resampler[0].resample_chunk(np.ascontiguousarray(mono, dtype=np.float32))
        if out.size:
            yield out
    if total == 0:
        raise AudioError(f"{stream.name} contains no audio samples.")
    if resampler is not None:
        tail = resampler[0].resample_chunk(np.zeros(0, np.float32), last=True)
        if tail.size:
            yield tail


def _soundfile_blocks(sound: soundfile.SoundFile, stream: AudioStream, sample_rate: int,
                      block_seconds: float, max_seconds: float | None) -> Iterator[np.ndarray]:
    frames = max(1, int(block_seconds * sound.samplerate))

    def raw() -> Iterator[tuple[np.ndarray, int]]:
        with sound:
            while True:
                try:
                    block = sound.read(frames, dtype="float32", always_2d=True)
                except (soundfile.LibsndfileError, RuntimeError) as error:
                    raise AudioError(
                        f"{stream.name} could not be read to the end (it stops at about "
                        f"{stream.decoded_s:.1f} s); the file may be damaged."
                    ) from error
                if not len(block):
                    return
                yield block, int(sound.samplerate)

    return _finish_blocks(raw(), stream, sample_rate, max_seconds)


def _pyav_stream(handle_source: Union[str, BinaryIO], name: str, sample_rate: int,
                 block_seconds: float, max_seconds: float | None) -> AudioStream:
    import av  # imported lazily: only needed for compressed containers

    try:
        container = av.open(handle_source, mode="r")
    except Exception as error:  # FFmpeg raises many kinds; all mean "not decodable audio"
        raise _undecodable(name) from error
    if not container.streams.audio:
        container.close()
        raise AudioError(f"{name}: the file holds no audio stream.")
    audio = container.streams.audio[0]
    duration = None
    if audio.duration is not None and audio.time_base is not None:
        duration = float(audio.duration * audio.time_base)
    elif container.duration:
        duration = container.duration / 1_000_000  # microseconds (av.time_base)
    if max_seconds is not None and duration is not None and duration > max_seconds:
        container.close()
        raise _too_long(name, duration, max_seconds)
    stream = AudioStream(name, duration, iter(()))

    def raw() -> Iterator[tuple[np.ndarray, int]]:
        rate = audio.rate or 48_000
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        target = int(block_seconds * rate)
        pending: list[np.ndarray] = []
        held = 0
        with container:
            try:
                for frame in container.decode(audio):
                    for resampled in resampler.resample(frame):
                        pending.append(resampled.to_ndarray()[0])
                        held += pending[-1].size
                    if held >= target:
                        yield np.concatenate(pending).astype(np.float32), rate
                        pending, held = [], 0
                for resampled in resampler.resample(None):
                    pending.append(resampled.to_ndarray()[0])
            except Exception as error:
                if stream.decoded_s == 0 and not pending:
                    raise _undecodable(name) from error
                raise AudioError(
                    f"{name} could not be decoded to the end (it stops at about "
                    f"{stream.decoded_s + sum(p.size for p in pending) / rate:.1f} s); "
                    f"the file may be damaged."
                ) from error
        if pending:
            yield np.concatenate(pending).astype(np.float32), rate

    stream._blocks = _finish_blocks(raw(), stream, sample_rate, max_seconds)
    return stream
