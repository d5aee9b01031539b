"""The Whisper front end (ser_core.inference.embedding) and its cache (ser_core.data.embedding_cache)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

import audio_factory
from ser_core.inference.params import EmbeddingParams

CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "ravdess" / "Actor_01" / "03-01-05-02-01-01-01.flac"


@pytest.fixture(scope="module")
def encoder():
    from ser_core.inference.embedding import load_encoder
    from ser_core.inference.whisper_weights import WhisperWeightsNotFoundError

    try:
        return load_encoder("base", EmbeddingParams().weights_sha256)
    except WhisperWeightsNotFoundError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def speech_clip() -> np.ndarray:
    if not CLIP.is_file():
        pytest.skip(f"{CLIP} not available")
    wave, rate = soundfile.read(CLIP, dtype="float32")
    assert rate == 16_000
    return wave


def _relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_params_check_their_values() -> None:
    with pytest.raises(ValueError, match="44100"):
        EmbeddingParams(sample_rate=44_100)
    with pytest.raises(ValueError, match="45"):
        EmbeddingParams(max_segment_seconds=45)
    with pytest.raises(ValueError, match="bogus"):
        EmbeddingParams.from_dict({"bogus": 1})
    assert EmbeddingParams.from_dict(EmbeddingParams().to_dict()) == EmbeddingParams()


def test_level_normalise_sets_speech_rms_not_peak() -> None:
    from ser_core.inference.embedding import level_normalise

    params = EmbeddingParams(speech_level_dbfs=-20.0)
    wave = audio_factory.tone(200.0, 1.0, amplitude=0.01)
    wave[100] = 0.9  # a click sets the peak, not the level
    out = level_normalise(wave, wave, params)
    rms_db = 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    assert rms_db == pytest.approx(-20.0, abs=0.01)
    silent = level_normalise(np.full(1000, 1e-9, np.float32), np.full(1000, 1e-9, np.float32), params)
    assert np.abs(silent).max() <= 1e-9 * 10 ** (params.max_gain_db / 20) * 1.001


def test_embedding_shape_and_speech(encoder, speech_clip) -> None:
    from ser_core.inference.embedding import embed_waveform

    result = embed_waveform(speech_clip, encoder=encoder)
    assert result.pooled.shape == (encoder.n_layers + 1, 2 * encoder.width)
    assert result.pooled.dtype == np.float32 and np.isfinite(result.pooled).all()
    assert result.speech_status == "speech"
    assert result.speech_seconds < len(speech_clip) / 16_000  # silence was cut


def test_embedding_ignores_gain_and_added_silence(encoder, speech_clip) -> None:
    from ser_core.inference.embedding import embed_waveform

    reference = embed_waveform(speech_clip, encoder=encoder).pooled
    quieter = embed_waveform(speech_clip * 0.05, encoder=encoder).pooled
    assert _relative_difference(quieter, reference) < 0.02
    # Silence changes Silero's state, so the cut moves by a few tenths of a second. Layers 0-3 barely
    # notice; layers 4-6 react strongly to where the speech starts (0.3 s moved them by 50-90 %),
    # one reason the heads weight the middle layers.
    padded = embed_waveform(audio_factory.with_silence(speech_clip, 1.5, 2.0), encoder=encoder)
    assert padded.speech_seconds == pytest.approx(embed_waveform(speech_clip, encoder=encoder).speech_seconds, abs=0.5)
    assert _relative_difference(padded.pooled[:4], reference[:4]) < 0.15


def test_long_recording_is_segmented(encoder, speech_clip) -> None:
    from ser_core.inference.embedding import embed_waveform

    long_wave = np.tile(speech_clip, 9)  # ~37 s, over Whisper's 30 s window
    params = EmbeddingParams(vad=False, max_segment_seconds=20.0)
    result = embed_waveform(long_wave, params, encoder=encoder)
    assert result.speech_status == "not_checked"
    assert result.pooled.shape == (encoder.n_layers + 1, 2 * encoder.width)
    assert result.speech_seconds == pytest.approx(len(long_wave) / 16_000)


def test_no_speech_still_embeds_and_says_so(encoder) -> None:
    from ser_core.inference.embedding import embed_waveform

    result = embed_waveform(audio_factory.tone(440.0, 1.0), encoder=encoder)
    assert result.speech_status == "no_speech"
    assert np.isfinite(result.pooled).all()
    with pytest.raises(ValueError, match="0.050"):
        embed_waveform(np.zeros(800, np.float32), encoder=encoder)


def test_cache_reuses_and_separates_front_ends(encoder, tmp_path, monkeypatch) -> None:
    from ser_core.data import embedding_cache
    from ser_core.inference import embedding

    paths = [audio_factory.write_audio(tmp_path / f"clip{i}.wav", audio_factory.emotional_speech("happy", 1.0, seed=i))
             for i in range(2)]
    cache = tmp_path / "cache"
    first, failures = embedding_cache.embed_files(paths, cache_dir=cache)
    assert failures == [] and first.shape == (2, encoder.n_layers + 1, 2 * encoder.width)

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a cached embedding")

    monkeypatch.setattr(embedding, "embed_waveform", fail)
    again, _ = embedding_cache.embed_files(paths, cache_dir=cache)
    np.testing.assert_array_equal(again, first)
    other, failures = embedding_cache.embed_files(paths, EmbeddingParams(speech_level_dbfs=-30.0), cache_dir=cache)
    assert len(failures) == 2 and np.isnan(other).all()  # a new front end is computed, not reused


def test_a_corpus_copied_elsewhere_keeps_its_cached_embeddings(encoder, tmp_path, monkeypatch) -> None:
    """Re-downloading or moving a corpus gives new paths and file times, not new audio: nothing is recomputed.
    A file whose bytes change is."""
    import shutil

    from ser_core.data import embedding_cache
    from ser_core.inference import embedding

    first_copy = tmp_path / "corpus"
    paths = [audio_factory.write_audio(first_copy / f"clip{i}.wav", audio_factory.emotional_speech("sad", 1.0, seed=i))
             for i in range(2)]
    cache = tmp_path / "cache"
    first, failures = embedding_cache.embed_files(paths, cache_dir=cache)
    assert failures == []
    second_copy = tmp_path / "downloaded_again"
    shutil.copytree(first_copy, second_copy)  # new path, new modification times
    moved = [second_copy / Path(path).name for path in paths]
    for path in moved:
        os.utime(path, ns=(10**18, 10**18))

    calls = []
    real_embed = embedding.embed_waveform
    monkeypatch.setattr(embedding, "embed_waveform", lambda *a, **k: calls.append(1) or real_embed(*a, **k))
    again, _ = embedding_cache.embed_files(moved, cache_dir=cache)
    np.testing.assert_array_equal(again, first)
    assert calls == []
    audio_factory.write_audio(moved[0], audio_factory.emotional_speech("angry", 1.0, seed=7))
    changed, _ = embedding_cache.embed_files(moved, cache_dir=cache)
    assert calls == [1] and not np.allclose(changed[0], first[0])
    np.testing.assert_array_equal(changed[1], first[1])


def test_folders_of_older_front_end_code_are_named_with_their_size(tmp_path, caplog) -> None:
    """Each change to the front-end code starts a new cache folder (about 245 MB for the seven corpora); train.py
    says which ones this code never reads again and how to free them, and deletes nothing itself."""
    import json
    import logging

    from ser_core.data import embedding_cache
    from ser_core.training import whisper_run

    current = embedding_cache.cache_folder(EmbeddingParams(), tmp_path)
    (current / "a.npy").write_bytes(b"0" * 100)
    old = tmp_path / "0123456789abcdef0123"
    old.mkdir()
    (old / "front_end.json").write_text(json.dumps({"params": {}, "code": "older", "transform": None}))
    (old / "b.npy").write_bytes(b"0" * 5000)
    (tmp_path / "not_ours").mkdir()  # no front_end.json: left alone
    stale = embedding_cache.stale_folders(tmp_path)
    assert [folder for folder, _ in stale] == [old] and stale[0][1] > 5000
    with caplog.at_level(logging.INFO, logger="train"):
        whisper_run.mention_stale_cache(tmp_path)
    assert f"rm -r {old}" in caplog.text and str(current) not in caplog.text
    assert old.is_dir() and (old / "b.npy").is_file()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="train"):
        whisper_run.mention_stale_cache(tmp_path / "no_cache_yet")
    assert caplog.text == ""
