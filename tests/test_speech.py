"""Tests for ser_core/inference/speech.py, the speech detector (fast: the whole file runs in a few seconds on one CPU)."""

from __future__ import annotations

import glob
import os
import threading

import numpy as np
import pytest

from ser_core.inference import speech
from ser_core.inference.speech import (
    MIN_SPEECH_SECONDS,
    SAMPLE_RATE,
    SpeechRegions,
    StreamingSpeechDetector,
    detect_speech,
    keep_speech,
)

DATA = os.environ.get("SER_DATA", os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "shared", "data"))
RAVDESS_CLIP = os.path.join(DATA, "ravdess", "Actor_01", "03-01-01-01-01-01-01.flac")
TESS_CLIP = os.path.join(DATA, "tess", "YAF_sad")

needs_data = pytest.mark.skipif(not os.path.exists(RAVDESS_CLIP), reason="corpus audio not available")


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE


def _read(path: str) -> np.ndarray:
    sf = pytest.importorskip("soundfile")
    x, sr = sf.read(path, dtype="float32")
    assert sr == SAMPLE_RATE
    return x


@pytest.fixture(scope="module")
def ravdess() -> np.ndarray:
    return _read(RAVDESS_CLIP)


@pytest.mark.parametrize("freq", [100, 440, 1000, 3000])
def test_tone_is_no_speech(freq: int) -> None:
    r = detect_speech((0.5 * np.sin(2 * np.pi * freq * _t(3))).astype(np.float32))
    assert r.status == "no_speech"
    assert r.regions == () and r.speech_seconds == 0.0
    assert r.total_seconds == pytest.approx(3.0)


@pytest.mark.parametrize("level", [0.003, 0.05, 0.3])
def test_noise_is_no_speech(level: float) -> None:
    rng = np.random.default_rng(0)
    r = detect_speech((level * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32))
    assert r.status == "no_speech"


def test_silence_is_no_speech() -> None:
    r = detect_speech(np.zeros(2 * SAMPLE_RATE, np.float32))
    assert r.status == "no_speech" and not r.has_speech
    assert "No speech" in r.describe()


def test_empty_and_tiny_inputs() -> None:
    assert detect_speech(np.zeros(0, np.float32)).status == "no_speech"
    assert detect_speech(np.zeros(7, np.float32)).total_seconds == pytest.approx(7 / SAMPLE_RATE)


def test_blip_is_not_an_answer() -> None:
    blip = (0.5 * np.sin(2 * np.pi * 1000 * _t(0.05))).astype(np.float32)
    r = detect_speech(blip)
    assert r.status in ("no_speech", "too_little_speech")
    assert not r.has_enough_speech


@needs_data
def test_speech_snippet_is_too_little(ravdess: np.ndarray) -> None:
    r_full = detect_speech(ravdess)
    start = r_full.regions[0][0] + int(0.1 * SAMPLE_RATE)
    snippet = ravdess[start : start + int(0.15 * SAMPLE_RATE)]
    r = detect_speech(np.concatenate([np.zeros(8000, np.float32), snippet, np.zeros(8000, np.float32)]))
    assert r.status == "too_little_speech", r
    msg = r.describe()
    assert f"{MIN_SPEECH_SECONDS:.1f} s" in msg and "heard" in msg


@needs_data
def test_real_clip_is_speech(ravdess: np.ndarray) -> None:
    r = detect_speech(ravdess)
    assert r.status == "speech" and r.has_enough_speech
    # RAVDESS: ~1 s lead-in silence, ~1.5 s utterance, trailing silence
    assert 1.0 <= r.speech_seconds <= r.total_seconds - 1.0
    # regions cover most of the loud part of the clip
    frame = 512
    k = len(ravdess) // frame
    db = 10 * np.log10(np.mean(ravdess[: k * frame].reshape(k, frame) ** 2, axis=1) + 1e-10)
    loud = np.repeat(db > db.max() - 25, frame)
    mask = np.zeros(k * frame, bool)
    for a, b in r.regions:
        mask[a:b] = True
    assert (mask & loud).sum() / loud.sum() > 0.9
    assert mask.mean() < 0.8  # and it did not just take the whole clip


@needs_data
def test_soft_sad_speech_is_speech() -> None:
    files = sorted(glob.glob(os.path.join(TESS_CLIP, "*.flac")))[:3]
    if not files:
        pytest.skip("TESS not available")
    for f in files:
        assert detect_speech(_read(f)).status == "speech", f


@needs_data
def test_keep_speech_removes_inserted_silence(ravdess: np.ndarray) -> None:
    r0 = detect_speech(ravdess)
    (a, b), *_ = r0.regions
    mid = (a + b) // 2
    gap = np.zeros(3 * SAMPLE_RATE, np.float32)
    x = np.concatenate([ravdess[:mid], gap, ravdess[mid:]])
    r = detect_speech(x)
    assert len(r.regions) >= 2
    kept = keep_speech(x, r)
    # the 3 s gap is gone (at most padding + a 0.1 s joint remain of it) ...
    assert len(kept) < len(x) - 2.5 * SAMPLE_RATE
    # ... and the speech stays: about the same as without the inserted gap
    assert abs(len(kept) - len(keep_speech(ravdess, r0))) < 0.5 * SAMPLE_RATE
    # no run of >= 0.3 s of exact zeros is left in the output
    z = np.flatnonzero(np.diff(np.concatenate([[0], (kept == 0).astype(int), [0]])))
    runs = z[1::2] - z[0::2]
    assert runs.size == 0 or runs.max() < 0.3 * SAMPLE_RATE
    assert kept.dtype == np.float32 and np.abs(kept).max() <= 1.0


def test_keep_speech_edges() -> None:
    x = np.ones(1000, np.float32)
    assert keep_speech(x, []).size == 0
    out = keep_speech(x, [(0, 100), (500, 600)], gap_seconds=0.0, fade_seconds=0.001)
    assert out.size == 200
    assert out[0] == 1.0  # no fade at the wave's own start
    assert out[99] < 0.1 and out[100] < 0.1  # faded at the cut


@needs_data
def test_chunked_equals_unchunked(ravdess: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    pieces = []
    for _ in range(6):  # ~40 s: speech, silences of random length, low noise
        pieces += [ravdess, np.zeros(int(rng.integers(0, 3 * SAMPLE_RATE)), np.float32)]
    x = np.concatenate(pieces) + (1e-3 * rng.standard_normal(sum(map(len, pieces)))).astype(np.float32)
    whole = detect_speech(x)
    for sizes in ([SAMPLE_RATE * 7], [1000, 333, 16000, 77777], [511, 513]):
        det = StreamingSpeechDetector()
        got, i, k = [], 0, 0
        while i < len(x):
            n = sizes[k % len(sizes)]
            got += det.feed(x[i : i + n])
            # every region emitted so far is final and lies inside the audio fed
            assert all(e <= i + n for _, e in got)
            i, k = i + n, k + 1
        got += det.finish()
        assert tuple(got) == whole.regions
        assert det.result() == whole
    assert len(whole.regions) >= 6
    # detect_speech's own internal chunking does not change the answer either
    assert detect_speech(x, chunk_seconds=1.0) == whole


def test_thread_safe() -> None:
    rng = np.random.default_rng(2)
    waves = [(0.1 * rng.standard_normal(SAMPLE_RATE * 2)).astype(np.float32) for _ in range(4)]
    expected = [detect_speech(w) for w in waves]
    results: list = [None] * 8
    def work(i: int) -> None:
        results[i] = detect_speech(waves[i % 4])
    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected + expected


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        detect_speech(np.zeros(16000, np.float32), sample_rate=44100)
    with pytest.raises(ValueError):
        detect_speech(np.zeros((2, 16000), np.float32))
    with pytest.raises(TypeError):
        detect_speech(np.zeros(16000, np.int16))
    # NaN / out-of-range values are cleaned, not propagated
    x = np.full(16000, np.nan, np.float32)
    assert detect_speech(x).status == "no_speech"


def test_model_is_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(speech._model_bytes()) > 100_000  # found through importlib, hash matches
    monkeypatch.setattr(speech, "MODEL_SHA256", "0" * 64)
    with pytest.raises(speech.ModelFileError, match="SHA-256"):
        speech._model_bytes()


def test_regions_dataclass() -> None:
    r = SpeechRegions(regions=((0, 8000),), sample_rate=16000, speech_seconds=0.2, total_seconds=1.0)
    assert r.has_speech and not r.has_enough_speech and r.status == "too_little_speech"
    assert r.padded_seconds == 0.5
    with pytest.raises(Exception):
        r.speech_seconds = 1.0  # frozen


@needs_data
def test_speech_after_a_long_digital_silence_is_found(ravdess: np.ndarray) -> None:
    """Long files hold long silences: the detector's state must not go deaf after them."""
    for gap_seconds in (20, 60):
        x = np.concatenate([ravdess, np.zeros(gap_seconds * SAMPLE_RATE, np.float32), ravdess])
        r = detect_speech(x)
        assert len(r.regions) == 2
        assert r.regions[1][0] > (len(ravdess) + gap_seconds * SAMPLE_RATE) - SAMPLE_RATE
