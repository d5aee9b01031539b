"""Issue 23, item 6: sounds that the speech detector calls speech but are not a voice (a tone near a
voice's pitch, a siren, plucked notes, a held melody) get no emotion and never enter an adaptation.

The Whisper model is the tiny one of ``test_whisper_predictor`` (fake encoder, real speech detector).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import audio_factory
from ser_core.inference.speech import NotEnoughSpeech
from ser_core.inference.voice_check import NotSpeech, voice_evidence
from test_whisper_predictor import encoder, predictor, whisper_model  # noqa: F401  (fixtures)

SR = 16_000
DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _siren(seconds: float = 4.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * np.cumsum(200 + 100 * np.sin(2 * np.pi * 1.5 * t)) / SR)).astype(np.float32)


def _plucked_melody(seconds: float = 4.0, notes_per_second: int = 4, seed: int = 0) -> np.ndarray:
    """Karplus-Strong plucked notes on a scale: what the detector heard as 0.35 s of speech."""
    rng = np.random.default_rng(seed)
    scale = (196.0, 220.0, 246.9, 261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3)
    out = []
    for frequency in rng.choice(scale, int(seconds * notes_per_second)):
        period = int(round(SR / frequency))
        line = rng.uniform(-1, 1, period)
        note = np.empty(SR // notes_per_second)
        for i in range(note.size):
            note[i] = line[i % period]
            line[i % period] = 0.996 * 0.5 * (line[i % period] + line[i % period - 1])
        out.append(note)
    wave = np.concatenate(out)
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


NOT_A_VOICE = {
    "tone 200 Hz": lambda: audio_factory.tone(200.0, 3.0),
    "tone 220 Hz": lambda: audio_factory.tone(220.0, 3.0),
    "tone 240 Hz": lambda: audio_factory.tone(240.0, 3.0),
    "tone 255 Hz": lambda: audio_factory.tone(255.0, 3.0),
    "tone 220 Hz, quiet": lambda: audio_factory.tone(220.0, 3.0, amplitude=0.01),
    "siren 100-300 Hz": _siren,
    "plucked melody": _plucked_melody,
}


@pytest.mark.parametrize("signal", list(NOT_A_VOICE))
def test_sounds_the_detector_takes_for_speech_get_no_emotion(predictor, signal):  # noqa: F811
    with pytest.raises(NotEnoughSpeech) as caught:
        predictor.predict_wave(NOT_A_VOICE[signal](), SR)
    assert caught.value.kind == "no_speech"
    assert "not a voice" in str(caught.value) and "Record someone speaking" in str(caught.value)


@pytest.mark.parametrize("signal", ["tone 220 Hz", "plucked melody"])
def test_they_never_enter_an_adaptation(predictor, signal):  # noqa: F811
    """The Adapt page and Live's learning both take clips through adaptation_sample."""
    with pytest.raises(NotEnoughSpeech):
        predictor.adaptation_sample(NOT_A_VOICE[signal](), SR)


def test_a_file_is_refused_too_and_named(predictor, tmp_path):  # noqa: F811
    path = audio_factory.write_audio(tmp_path / "hum.wav", audio_factory.tone(230.0, 2.0))
    with pytest.raises(NotSpeech, match="hum.wav"):
        predictor.predict_file(path)


def test_a_long_tone_read_block_by_block_is_refused(predictor, tmp_path):  # noqa: F811
    """Over a minute, without kept features, the Whisper path reads the file three times in blocks."""
    wave = np.concatenate([audio_factory.tone(220.0, 2.0), np.zeros(SR, np.float32)] * 25)  # 75 s
    path = audio_factory.write_audio(tmp_path / "long_hum.wav", wave)
    with pytest.raises(NotEnoughSpeech) as caught:
        predictor.predict_file(path, max_seconds=None, keep_features=False)
    assert caught.value.kind == "no_speech"


def test_the_log_mel_model_refuses_a_siren_too(tiny_predictor):
    """The log-mel CNN's own detector hears 3.5 s of "speech" in the siren; the voice check does not."""
    with pytest.raises(NotSpeech) as caught:
        tiny_predictor.predict_wave(_siren(), SR)
    assert caught.value.kind == "no_speech"


@pytest.mark.parametrize("emotion", sorted(audio_factory.EMOTION_STYLE))
def test_the_synthetic_voice_is_still_a_voice(predictor, emotion):  # noqa: F811
    for seed in range(3):
        assert predictor.predict_wave(audio_factory.emotional_speech(emotion, 2.0, seed=seed), SR).windows


@pytest.mark.parametrize("corpus", ["ravdess", "tess", "nemo", "turev", "ased", "casia", "banglaser_ext"])
def test_real_speech_passes_the_second_opinion(corpus):
    """Ten clips of each corpus (the benchmark measures many more: benchmarks/non_speech.py)."""
    from ser_core.inference import embedding, speech
    from ser_core.inference.audio import load_audio
    from ser_core.inference.params import EmbeddingParams

    files = sorted(p for p in (DATA / corpus).rglob("*") if p.suffix in (".flac", ".opus"))[::97][:10]
    if not files:
        pytest.skip(f"no {corpus} clips under {DATA}")
    for path in files:
        wave = load_audio(path, SR)
        regions = speech.detect_speech(embedding._vad_input(wave, EmbeddingParams()), SR)
        if regions.status == "speech":
            evidence = voice_evidence(wave, regions)
            assert evidence.is_voice, (path, evidence)
