"""Audio decoding: every format, mono downmix, resampling to 16 kHz, and clear errors for bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest

import audio_factory
from audio_factory import dominant_frequency, encode, tone, write_audio
from ser_core.inference.audio import SUPPORTED_EXTENSIONS, AudioError, interleaved_to_mono, load_audio, resample, to_mono

SR = 16_000
ALL_FORMATS = (".wav", ".flac", ".ogg", ".opus", ".oga", ".m4a", ".webm", ".mp3")


def test_every_supported_extension_is_tested():
    assert set(SUPPORTED_EXTENSIONS) == set(ALL_FORMATS)


@pytest.mark.parametrize("suffix", ALL_FORMATS)
@pytest.mark.parametrize("source_rate", [16_000, 44_100, 48_000])
def test_formats_decode_to_16k_mono_and_keep_the_pitch(tmp_path, suffix, source_rate):
    wave = tone(440.0, 1.5, source_rate, amplitude=0.5)
    path = write_audio(tmp_path / f"tone{suffix}", wave, source_rate)
    decoded = load_audio(path, SR)
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    if suffix in (".wav", ".flac"):
        assert decoded.size == int(1.5 * SR)
    else:  # lossy codecs add encoder priming/padding (AAC: up to ~100 ms at 16 kHz)
        assert decoded.size == pytest.approx(1.5 * SR, abs=0.12 * SR)
    assert dominant_frequency(decoded, SR) == pytest.approx(440.0, abs=3.0)
    assert 0.3 < np.max(np.abs(decoded)) < 1.0


@pytest.mark.parametrize("suffix", ALL_FORMATS)
def test_stereo_becomes_mono(tmp_path, suffix):
    left, right = tone(440.0, 1.0, 44_100, 0.5), tone(1000.0, 1.0, 44_100, 0.5)
    path = write_audio(tmp_path / f"stereo{suffix}", np.stack([left, right], axis=1), 44_100)
    decoded = load_audio(path, SR)
    assert decoded.ndim == 1
    assert decoded.size == pytest.approx(SR, abs=0.12 * SR)
    spectrum = np.abs(np.fft.rfft(decoded * np.hanning(decoded.size)))
    freqs = np.fft.rfftfreq(decoded.size, 1 / SR)

    def level(f):
        return spectrum[np.abs(freqs - f) < 10].max()

    assert level(440) > 0.5 * level(1000) and level(1000) > 0.5 * level(440)  # both channels kept


def test_lossless_stereo_is_the_average_of_the_channels(tmp_path):
    left, right = tone(440.0, 1.0, SR, 0.5), audio_factory.noise(1.0, SR, 0.1, seed=1)
    path = write_audio(tmp_path / "stereo.flac", np.stack([left, right], axis=1), SR)
    assert np.allclose(load_audio(path, SR), (left + right) / 2, atol=1e-3)


def test_every_source_kind_decodes_the_same(tmp_path):
    wave = tone(300.0, 0.5, 22_050)
    path = write_audio(tmp_path / "clip.wav", wave, 22_050)
    data = path.read_bytes()
    from_path = load_audio(path, SR)
    from_str = load_audio(str(path), SR)
    from_bytes = load_audio(data, SR)
    handle = io.BytesIO(data)
    from_handle = load_audio(handle, SR)
    assert handle.tell() == 0  # rewound for whoever reads it next
    for other in (from_str, from_bytes, from_handle):
        np.testing.assert_array_equal(from_path, other)


def test_resample_keeps_a_tone(tmp_path):
    wave = tone(1234.0, 1.0, 44_100)
    out = resample(wave, 44_100, SR)
    assert out.dtype == np.float32 and out.size == SR
    assert dominant_frequency(out, SR) == pytest.approx(1234.0, abs=2.0)
    assert resample(wave, 44_100, 44_100) is not None and resample(wave, 44_100, 44_100).size == wave.size


def test_to_mono():
    stereo = np.stack([np.ones(10), -np.ones(10) * 0.5])  # [channels, n]
    assert np.allclose(to_mono(stereo), 0.25)
    assert to_mono(np.arange(5.0)).shape == (5,)


def test_interleaved_stereo_48k_halves_the_length():
    """WebRTC delivers interleaved s16 stereo; reading it as mono would double the length."""
    left = tone(440.0, 0.5, 48_000, 0.5)
    right = tone(440.0, 0.5, 48_000, 0.5)
    interleaved = (np.stack([left, right], axis=1).reshape(-1) * 32767).astype(np.int16)  # L R L R ...
    assert interleaved.size == 48_000
    mono = interleaved_to_mono(interleaved, channels=2)
    assert mono.dtype == np.float32 and mono.size == 24_000  # 0.5 s at 48 kHz, not 1 s
    assert np.allclose(mono, left, atol=1e-3)
    assert dominant_frequency(mono, 48_000) == pytest.approx(440.0, abs=2.0)
    # Different channels average, and integer input is scaled into [-1, 1].
    mixed = interleaved_to_mono(np.array([[32767, -32768], [16384, 0]], dtype=np.int16), channels=2)
    assert np.allclose(mixed, [0.0, 0.25], atol=1e-4)
    # Frames shaped [1, n] (as PyAV's to_ndarray gives packed s16) are handled too.
    assert interleaved_to_mono(interleaved[None, :], channels=2).size == 24_000
    assert np.allclose(interleaved_to_mono(np.array([0.5, 0.5], np.float32), 1), [0.5, 0.5])


# -------------------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nothing.wav", SR)


@pytest.mark.parametrize("source", ["path", "bytes"])
def test_empty_input(tmp_path, source):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(path if source == "path" else b"", SR)


@pytest.mark.parametrize("data", [b"this is plainly not audio " * 100, bytes(range(256)) * 40,
                                  b"%PDF-1.4\n" + b"\x00" * 2000])
def test_non_audio_bytes(tmp_path, data):
    path = tmp_path / "notes.mp3"
    path.write_bytes(data)
    with pytest.raises(AudioError) as caught:
        load_audio(path, SR)
    assert "notes.mp3" in str(caught.value) and "could not be decoded" in str(caught.value)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".m4a", ".webm", ".mp3"])
def test_header_only_file(tmp_path, suffix):
    data = encode(tone(440, 1.0, SR), SR, suffix)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[:40])
    with pytest.raises(AudioError):
        load_audio(path, SR)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".m4a", ".webm", ".mp3"])
def test_truncated_file_decodes_what_is_there_or_fails_clearly(tmp_path, suffix):
    """A download cut short: either the intact prefix decodes, or an AudioError says why; never a crash."""
    data = encode(tone(440, 2.0, SR), SR, suffix)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    try:
        decoded = load_audio(path, SR)
    except AudioError as error:
        assert str(error)
    else:
        assert 0 < decoded.size <= 2.05 * SR
        assert np.all(np.isfinite(decoded))


def test_corrupted_payload_still_yields_finite_audio_or_an_error(tmp_path):
    data = bytearray(encode(tone(440, 1.0, SR), SR, ".flac"))
    rng = np.random.default_rng(0)
    positions = rng.integers(100, len(data), 200)
    for position in positions:
        data[position] ^= 0xFF
    try:
        decoded = load_audio(bytes(data), SR)
    except AudioError:
        return
    assert np.all(np.isfinite(decoded))


def test_non_finite_samples_are_refused(tmp_path):
    import soundfile

    wave = tone(440, 0.5, SR)
    wave[100] = np.nan
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, SR, format="WAV", subtype="FLOAT")
    with pytest.raises(AudioError, match="non-finite"):
        load_audio(buffer.getvalue(), SR)


def test_audio_without_samples(tmp_path):
    path = write_audio(tmp_path / "nothing.wav", np.zeros(0, np.float32), SR)
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(path, SR)


def test_too_long_audio(tmp_path):
    path = write_audio(tmp_path / "long.flac", audio_factory.noise(12.0, 8_000, 0.1), 8_000)
    with pytest.raises(AudioError) as caught:
        load_audio(path, SR, max_seconds=10)
    message = str(caught.value)
    assert "long.flac" in message and "12 s" in message and "10 s" in message
    assert load_audio(path, SR, max_seconds=13).size == 12 * SR
    assert load_audio(path, SR).size == 12 * SR  # no limit by default


def test_silent_file_is_refused_by_the_predictor_path(tmp_path):
    """What the user sees for a silent upload: the features module flags it as silent."""
    from ser_core.inference.features import is_silent

    path = write_audio(tmp_path / "silence.wav", np.zeros(SR, np.float32), SR)
    assert is_silent(load_audio(path, SR))
    assert not is_silent(load_audio(write_audio(tmp_path / "tone.wav", tone(440, 1.0), SR), SR))
