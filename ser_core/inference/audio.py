"""Decoding audio from files, bytes or arrays into mono float32 at the model's sample rate."""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile
import soxr

AudioSource = Union[str, Path, bytes, BinaryIO]

__all__ = [
    "FORMATS_TEXT", "SUPPORTED_EXTENSIONS", "AudioError", "AudioSource", "AudioStream", "about_file",
    "interleaved_to_mono", "load_audio", "open_audio_stream", "resample", "to_mono",
]

# Ogg Opus (.opus, .oga) is what many phones send as voice notes; libsndfile reads it like Ogg Vorbis.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".oga", ".m4a", ".webm")
# "wav, flac, ..., m4a or webm": how messages name them
FORMATS_TEXT = ", ".join(extension.lstrip(".") for extension in SUPPORTED_EXTENSIONS[:-1]) + (
    f" or {SUPPORTED_EXTENSIONS[-1].lstrip('.')}"
)


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
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    data = source.read()
    if hasattr(source, "seek"):
        source.seek(0)
    return data


_FILE_KINDS = ((stat.S_ISFIFO, "a pipe (FIFO)"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
               (stat.S_ISSOCK, "a socket"))


def _checked_path(path: Path, name: str) -> int:
    """The size of ``path``, refusing what is not a regular, readable file (before opening it).

    Opening a pipe would wait forever for a writer, and ``/dev/zero`` never ends: both are refused
    from what ``stat`` says, never read.
    """
    try:
        info = path.stat()
    except FileNotFoundError as error:
        if path.is_symlink():
            raise AudioError(f"{name} is a link to {os.readlink(path)}, which does not exist.") from error
        raise AudioError(f"{name}: no such file.") from error
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise AudioError(f"{name} is a symbolic link that leads back to itself (a loop), "
                             "not an audio file.") from error
        raise AudioError(f"{name}: cannot be read ({error.strerror}).") from error
    if stat.S_ISDIR(info.st_mode):
        raise AudioError(f"{name} is a folder, not an audio file.")
    if not stat.S_ISREG(info.st_mode):
        kind = next((words for test, words in _FILE_KINDS if test(info.st_mode)), "not a regular file")
        raise AudioError(f"{name} is {kind}, not an audio file: give the path of a recording.")
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise AudioError(f"{name}: cannot be read ({error.strerror}).") from error
    return info.st_size


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
    corrupt, not a regular file or longer than ``max_seconds``. Silence decodes fine; the
    predictor refuses it.

    Decoding goes block by block (:func:`open_audio_stream`) and stops as soon as the decoded
    samples pass ``max_seconds``: a small file that holds hours of audio and no length in its
    header is never decoded whole. A file cut short gives the audio before the cut.
    """
    stream = open_audio_stream(source, sample_rate, max_seconds=max_seconds, name=_source_name(source))
    blocks = [np.asarray(block, np.float32) for block in stream]
    return np.concatenate(blocks) if len(blocks) != 1 else blocks[0]


# ------------------------------------------------------------------------------ streaming decode


def _too_long(name: str, duration: float, max_seconds: float) -> AudioError:
    return AudioError(
        f"{name} is {duration:.0f} s long; the limit is {max_seconds:.0f} s. Trim it and try again."
    )


def _undecodable(name: str) -> AudioError:
    return AudioError(
        f"{name} could not be decoded as audio; use {FORMATS_TEXT}."
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
    cut_short : bool
        The file stopped decoding before its end (damaged or cut): the blocks hold what came before.
    """

    name: str
    duration_s: float | None
    _blocks: Iterator[np.ndarray]
    decoded_s: float = 0.0
    cut_short: bool = False

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._blocks


def open_audio_stream(source: AudioSource, sample_rate: int, *, block_seconds: float = 30.0,
                      max_seconds: float | None = None, name: str | None = None) -> AudioStream:
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
        Refuse longer audio: from the header before decoding when it says, and in any case while
        decoding, as soon as the decoded samples pass it (a header can lie or be missing). None:
        any length.
    name : str, optional
        How messages name the input (default: a path as given, else the file object's name).

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
    if name is None:
        name = str(source) if isinstance(source, (str, Path)) else _source_name(source)
    if isinstance(source, (str, Path)):
        size = _checked_path(Path(source), name)
        handle_source: Union[str, BinaryIO] = str(source)
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
        if max_seconds is not None and stream.decoded_s > max_seconds:  # stop here, whatever the header said
            raise AudioError(f"{stream.name} is more than {max_seconds:.0f} s long; the limit is "
                             f"{max_seconds:.0f} s. Trim it and try again.")
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

    def salvage(position: int) -> np.ndarray:
        """The block that failed, read again from ``position`` in 0.1 s pieces up to the damage.

        A file cut short (a FLAC whose last frame is half there) fails on the whole block that holds
        the cut; the audio before the cut is kept, as libsndfile does by itself for a cut wav.
        """
        pieces = []
        try:
            sound.seek(position)
            while True:
                piece = sound.read(max(1, int(0.1 * sound.samplerate)), dtype="float32", always_2d=True)
                if not len(piece):
                    break
                pieces.append(piece)
        except (soundfile.LibsndfileError, RuntimeError):
            pass
        return np.concatenate(pieces) if pieces else np.zeros((0, sound.channels), np.float32)

    def raw() -> Iterator[tuple[np.ndarray, int]]:
        position = 0
        with sound:
            # libsndfile applies an Ogg Opus file's pre-skip only on a seek: read from a fresh open,
            # the blocks start 312 samples (at 48 kHz) early and disagree with soundfile.read.
            if sound.seekable():
                try:
                    sound.seek(0)
                except (soundfile.LibsndfileError, RuntimeError):
                    pass  # a damaged file may not seek; its blocks are read (or refused) below as before
            while True:
                try:
                    block = sound.read(frames, dtype="float32", always_2d=True)
                except (soundfile.LibsndfileError, RuntimeError) as error:
                    block = salvage(position)
                    if position == 0 and not len(block):
                        raise _undecodable(stream.name) from error
                    stream.cut_short = True  # analyse what decoded, as for a cut wav
                    if len(block):
                        yield block, int(sound.samplerate)
                    return
                if not len(block):
                    return
                position += len(block)
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
                stream.cut_short = True  # a file cut short: analyse what decoded
        if pending:
            yield np.concatenate(pending).astype(np.float32), rate

    stream._blocks = _finish_blocks(raw(), stream, sample_rate, max_seconds)
    return stream
