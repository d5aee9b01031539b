"""The live page's audio path: WebRTC frames -> ring buffer -> the model's window, off the main thread."""

from __future__ import annotations

import threading

import av
import numpy as np
import pytest

from ser_core.app.live_audio import (
    AudioRingBuffer, RollingTimeline, frame_to_interleaved, make_audio_frame_callback,
)


def stereo_s16_frame(left: np.ndarray, right: np.ndarray, rate: int = 48_000) -> av.AudioFrame:
    """A packed stereo s16 frame, the way aiortc hands WebRTC audio to the callback."""
    interleaved = np.empty(left.size * 2, dtype=np.int16)
    interleaved[0::2] = np.round(left * 32767).astype(np.int16)
    interleaved[1::2] = np.round(right * 32767).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(interleaved[None, :], format="s16", layout="stereo")
    frame.sample_rate = rate
    return frame


def tone(frequency: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def dominant_frequency(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.argmax(spectrum) * rate / wave.size)


def test_push_and_latest_keep_order_across_wraparound() -> None:
    buffer = AudioRingBuffer(capacity_seconds=1.0)
    data = np.arange(25, dtype=np.float32)
    for chunk in np.array_split(data, 7):
        buffer.push(chunk, sample_rate=10)  # capacity 10 samples
    wave, rate = buffer.latest()
    assert rate == 10
    np.testing.assert_array_equal(wave, data[-10:])
    np.testing.assert_array_equal(buffer.latest(0.4)[0], data[-4:])


def test_chunk_longer_than_capacity_keeps_its_tail() -> None:
    buffer = AudioRingBuffer(capacity_seconds=1.0)
    buffer.push(np.arange(3, dtype=np.float32), 10)
    buffer.push(np.arange(100, 125, dtype=np.float32), 10)
    np.testing.assert_array_equal(buffer.latest()[0], np.arange(115, 125))


def test_empty_buffer_and_clear() -> None:
    buffer = AudioRingBuffer(2.0)
    wave, rate = buffer.latest(1.0)
    assert wave.size == 0 and rate is None
    assert buffer.latest_at(1.0, 16_000).size == 0
    buffer.push(np.ones(100, np.float32), 16_000)
    assert buffer.stats().frames == 1
    buffer.clear()
    stats = buffer.stats()
    assert (stats.frames, stats.samples, stats.sample_rate, stats.seconds_buffered) == (0, 0, None, 0.0)
    assert stats.seconds_since_last_push() is None


def test_rate_change_starts_over() -> None:
    buffer = AudioRingBuffer(1.0)
    buffer.push(np.ones(480, np.float32), 48_000)
    buffer.push(np.full(160, 2.0, np.float32), 16_000)
    wave, rate = buffer.latest()
    assert rate == 16_000
    np.testing.assert_array_equal(wave, np.full(160, 2.0))


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        AudioRingBuffer(0)
    with pytest.raises(ValueError):
        AudioRingBuffer(1.0).push(np.zeros(4, np.float32), 0)


def test_webrtc_frames_are_downmixed_not_read_as_mono() -> None:
    """3 s of 48 kHz interleaved stereo in 20 ms frames -> 3 s (not 6 s) of the right tone at 16 kHz."""
    rate, frame_samples = 48_000, 960
    left, right = tone(440.0, 3.0, rate), tone(440.0, 3.0, rate)
    buffer = AudioRingBuffer(10.0)
    callback = make_audio_frame_callback(buffer)
    for start in range(0, left.size, frame_samples):
        frame = stereo_s16_frame(left[start : start + frame_samples], right[start : start + frame_samples])
        assert callback(frame) is frame  # the frame goes back to WebRTC unchanged
    stats = buffer.stats()
    assert stats.frames == 150  # 50 frames per second
    assert stats.sample_rate == rate
    assert stats.seconds_buffered == pytest.approx(3.0, abs=1e-3)
    window = buffer.latest_at(3.0, 16_000)
    assert window.size == pytest.approx(48_000, abs=2)
    assert dominant_frequency(window, 16_000) == pytest.approx(440.0, abs=3.0)
    assert np.max(np.abs(window)) == pytest.approx(0.5, abs=0.02)


def test_downmix_averages_channels() -> None:
    rate = 48_000
    left, right = tone(300.0, 0.02, rate), np.zeros(960, np.float32)
    samples, channels, frame_rate = frame_to_interleaved(stereo_s16_frame(left, right))
    assert (channels, frame_rate, samples.size) == (2, rate, 1920)
    buffer = AudioRingBuffer(1.0)
    buffer.push_interleaved(samples, channels, frame_rate)
    np.testing.assert_allclose(buffer.latest()[0], left / 2, atol=1e-4)


def test_planar_frames_are_interleaved_first() -> None:
    left, right = np.full(480, 0.5, np.float32), np.full(480, -0.25, np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([left, right]), format="fltp", layout="stereo")
    frame.sample_rate = 48_000
    samples, channels, _ = frame_to_interleaved(frame)
    np.testing.assert_allclose(samples[:4], [0.5, -0.25, 0.5, -0.25])


def test_callback_survives_a_bad_frame() -> None:
    buffer = AudioRingBuffer(1.0)
    callback = make_audio_frame_callback(buffer)
    assert callback("not a frame") == "not a frame"
    assert buffer.stats().frames == 0


def test_concurrent_writer_and_reader() -> None:
    """A writer thread (the WebRTC callback) and a reader (the page) never see torn windows."""
    buffer = AudioRingBuffer(0.5)
    rate, chunk = 16_000, 320
    stop = threading.Event()
    errors: list[str] = []

    def write() -> None:
        value = 0
        while not stop.is_set() and value < 8_000_000:
            buffer.push(np.arange(value, value + chunk, dtype=np.float32), rate)
            value += chunk

    def read() -> None:
        for _ in range(2_000):
            wave, _ = buffer.latest(0.25)
            if wave.size > 1 and not np.all(np.diff(wave) == 1):
                errors.append("window not contiguous")
                return

    writer = threading.Thread(target=write)
    readers = [threading.Thread(target=read) for _ in range(2)]
    writer.start()
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    stop.set()
    writer.join()
    assert not errors


def test_rolling_timeline_is_bounded_and_relative() -> None:
    timeline = RollingTimeline(max_points=3)
    for second in range(5):
        timeline.add({"angry": 0.1 * second}, at=100.0 + second)
    points = timeline.points()
    assert [t for t, _ in points] == [2.0, 3.0, 4.0]
    assert points[-1][1]["angry"] == pytest.approx(0.4)
    timeline.clear()
    assert timeline.points() == []
