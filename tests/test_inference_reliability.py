"""Issue 15, inference and command line: speech, not sound; messages that name the file; long
recordings in bounded memory; thresholds checked; unmeasured emotions; a damaged model named as such.

``docs/reliability.md`` (## Inference and command line) lists each fault with the test here that covers it.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import audio_factory
import numpy as np
import pytest
from audio_factory import emotional_speech, speech_like, tone, with_silence, write_audio

from ser_core.evaluation import evaluate_cli
from ser_core.evaluation.metrics import classification_report
from ser_core.inference import predict_cli
from ser_core.inference.audio import AudioError

SR = 16_000


def _speech(seconds: float, seed: int = 0, emotion: str = "neutral") -> np.ndarray:
    return emotional_speech(emotion, seconds, SR, seed=seed)


# ------------------------------------------------------------------ 3. speech, not sound


@pytest.mark.parametrize("signal", ["tone_440", "tone_1000_quiet", "noise", "blip_0.05s"])
def test_sounds_that_are_not_speech_get_no_emotion(tiny_predictor, signal):
    from ser_core.predictor import NotEnoughSpeech

    wave = {"tone_440": tone(440.0, 3.0), "tone_1000_quiet": tone(1000.0, 3.0, amplitude=0.01),
            "noise": audio_factory.noise(3.0, amplitude=0.1), "blip_0.05s": tone(440.0, 0.05)}[signal]
    with pytest.raises(NotEnoughSpeech) as caught:
        tiny_predictor.predict_wave(wave, SR)
    error = caught.value
    assert error.kind == "no_speech" and error.speech_seconds == 0.0
    assert error.needed_seconds == pytest.approx(0.3)
    assert "No speech found" in str(error) and "Record someone speaking" in str(error)
    assert isinstance(error, AudioError)  # existing "bad audio" handlers still catch it


def test_too_little_speech_says_how_much_was_heard_and_needed(tiny_predictor):
    from ser_core.inference.speech import NotEnoughSpeech

    wave = with_silence(_speech(0.2, seed=0), 1.0, 1.0)
    with pytest.raises(NotEnoughSpeech) as caught:
        tiny_predictor.predict_wave(wave, SR)
    error = caught.value
    assert error.kind == "too_little_speech"
    assert 0.0 < error.speech_seconds < error.needed_seconds == pytest.approx(0.3)
    assert f"heard {math.floor(error.speech_seconds * 100) / 100:.2f} s" in str(error)
    assert "at least 0.3 s" in str(error)


def test_silence_is_a_case_of_no_speech(tiny_predictor):
    from ser_core.inference.speech import NotEnoughSpeech

    with pytest.raises(NotEnoughSpeech, match="silent") as caught:
        tiny_predictor.predict_wave(np.zeros(2 * SR, np.float32), SR)
    assert caught.value.kind == "no_speech"


def test_a_file_without_speech_is_named_in_the_message(tiny_predictor, tmp_path):
    from ser_core.inference.speech import NotEnoughSpeech

    path = write_audio(tmp_path / "beep.flac", tone(440.0, 2.0), SR)
    with pytest.raises(NotEnoughSpeech, match="beep.flac"):
        tiny_predictor.predict_file(path)


def test_long_silences_and_pauses_do_not_dilute_the_answer(tiny_predictor):
    """The model sees the speech only: 20 s of silence between two phrases changes nothing."""
    first, second = _speech(2.0, seed=1, emotion="angry"), _speech(2.0, seed=2, emotion="angry")
    # Room noise far below the speech, as in any recording: after 20 s of exact digital zeros the
    # detector hears this synthetic voice less well (real speech it still finds; see test_speech.py).
    gap = audio_factory.noise(0.5, amplitude=1e-4, seed=1)
    joined = tiny_predictor.predict_wave(np.concatenate([gap, first, gap, second, gap]), SR)
    apart = tiny_predictor.predict_wave(
        np.concatenate([gap, first, audio_factory.noise(20.0, amplitude=1e-4, seed=2), second, gap]), SR)
    assert len(apart.windows) == len(joined.windows) <= 3  # not ~17 windows of mostly silence
    assert apart.probabilities == pytest.approx(joined.probabilities, abs=0.02)
    assert apart.speech_seconds > 1.0
    before = [segment for segment in apart.segments if segment.end_s < 3.0]
    after = [segment for segment in apart.segments if segment.start_s > 22.0]
    assert before and after and len(before) + len(after) == len(apart.segments)  # none in the silence
    assert before[0].start_s == pytest.approx(0.5, abs=0.2) and after[-1].end_s <= apart.duration_s
    for window in apart.windows:  # window times are times in the recording
        assert 0.0 <= window.start_s < window.end_s <= apart.duration_s


def test_the_model_sees_exactly_the_joined_speech_windows(tiny_predictor):
    """The block-by-block path gives the windows of keep_speech + split_windows on the whole wave,
    whatever the block size."""
    from ser_core.inference.features import split_windows
    from ser_core.inference.speech import detect_speech, keep_speech
    from ser_core.inference.speech_stream import SpeechWindows

    parts = []
    for index in range(4):
        parts += [_speech(1.5 + index, seed=index), np.zeros(int((0.2 + 1.3 * index) * SR), np.float32)]
    wave = np.concatenate(parts)
    regions = detect_speech(wave)
    expected, _ = split_windows(keep_speech(wave, regions), tiny_predictor.params)
    for block in (wave.size, 7_777, SR):
        speech = SpeechWindows(tiny_predictor.params)
        got = []
        for start in range(0, wave.size, block):
            got += speech.feed(wave[start : start + block])
        got += speech.finish()
        assert np.allclose(np.stack([samples for _, samples in got]), expected, atol=1e-6)
        assert [tuple(region[:2]) for region in speech.regions] == list(regions.regions)


def test_continuous_speech_is_held_in_bounded_memory(tiny_predictor):
    """Speech without a 0.3 s pause keeps the detector's region open for as long as it lasts: the
    audio held must not grow with it. (A stand-in detector hears one endless region, since what
    Silero calls speech in a synthetic signal is its own business.)"""
    from ser_core.inference.speech_stream import SpeechWindows

    class EndlessSpeech:
        total = 0

        def feed(self, block):
            self.total += block.size
            return []

        def open_region(self):
            return 0, self.total

        def undecided_from(self):
            return 0

    speech = SpeechWindows(tiny_predictor.params, detector=EndlessSpeech())
    held, made = [], 0
    for seed in range(600):  # 10 minutes in 1 s blocks
        made += len(speech.feed(_speech(1.0, seed=seed % 7, emotion="happy")))
        held.append(speech.audio.size + speech.stream.size)
    assert made == (600 - 3) // 1.5 + 1  # every window of the joined stream, as it came
    assert max(held) < 5 * SR  # about a block and a window, not 10 minutes
    assert len(speech.pieces) == 1 and len(speech.regions) == 1


def test_the_synthetic_test_speech_counts_as_speech():
    """Fixtures' clips (audio_factory) must be speech to the detector, in every emotion style."""
    from ser_core.inference.speech import detect_speech

    for emotion in audio_factory.SIX_EMOTIONS:
        for seed in range(4):
            for shift in (0.85, 1.15):
                wave = emotional_speech(emotion, 1.2, SR, seed=seed, speaker_shift=shift)
                assert detect_speech(wave).status == "speech", (emotion, seed, shift)


# ------------------------------------------------------------------ 4. messages name the file


@pytest.fixture
def three_files(tmp_path) -> list[Path]:
    return [write_audio(tmp_path / "a.wav", _speech(2.0, seed=1), SR),
            write_audio(tmp_path / "silence.wav", np.zeros(SR, np.float32), SR),
            write_audio(tmp_path / "b.wav", _speech(2.0, seed=2), SR)]


def test_predict_names_the_file_each_message_is_about(tiny_artifacts, three_files, capsys):
    status = predict_cli.main([*map(str, three_files), "--artifacts", str(tiny_artifacts)])
    out, err = capsys.readouterr()
    assert status == 1
    assert [line.split(":")[0] for line in out.splitlines()] == [str(three_files[0]), str(three_files[2])]
    assert err.strip().splitlines() == [f"error: {three_files[1]} is silent: there is no speech to classify."]


def test_evaluate_names_the_files_it_skips_and_counts_those_without_speech(tiny_artifacts, tmp_path, capsys):
    root = tmp_path / "labelled"
    write_audio(root / "angry" / "shout.wav", _speech(1.5, seed=3, emotion="angry"), SR)
    write_audio(root / "sad" / "hum.wav", tone(440.0, 2.0), SR)
    write_audio(root / "sad" / "quiet.wav", np.zeros(SR, np.float32), SR)
    status = evaluate_cli.main(["--data", str(root), "--json", "--artifacts", str(tiny_artifacts)])
    out, err = capsys.readouterr()
    assert status == 0
    skipped = [line for line in err.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 2 and "hum.wav" in skipped[0] + skipped[1] and "quiet.wav" in skipped[0] + skipped[1]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["refused_for_speech"] == {"no_speech": 2, "too_little_speech": 0}
    assert report["n"] == 1


# ------------------------------------------------------------------ 5. long recordings


def test_predict_classifies_a_recording_longer_than_a_minute(tiny_artifacts, tmp_path, capsys):
    parts = []
    for index in range(14):  # ~75 s: 3.5 s phrases and 2 s pauses
        parts += [_speech(3.5, seed=index, emotion=("angry", "sad")[index % 2]), np.zeros(2 * SR, np.float32)]
    path = write_audio(tmp_path / "meeting.flac", np.concatenate(parts), SR)
    status = predict_cli.main([str(path), "--json", "--artifacts", str(tiny_artifacts)])
    out, err = capsys.readouterr()
    assert status == 0, err
    result = json.loads(out)
    assert result["duration_s"] == pytest.approx(77.0, abs=0.1)
    assert result["label"] in (*audio_factory.SIX_EMOTIONS, "uncertain")
    assert sum(result["probabilities"].values()) == pytest.approx(1.0)
    segments = result["segments"]
    starts = [segment["start_s"] for segment in segments]
    assert starts == sorted(starts)
    phrases = [(5.5 * index, 5.5 * index + 3.5) for index in range(14)]
    for segment in segments:  # in a phrase (give or take the 0.1 s padding), never in a pause
        assert any(a - 0.3 <= segment["start_s"] < segment["end_s"] <= b + 0.3 for a, b in phrases), segment
        assert segment["label"] in (*audio_factory.SIX_EMOTIONS, "uncertain")
        assert sum(segment["probabilities"].values()) == pytest.approx(1.0)
    heard = {index for index, (a, b) in enumerate(phrases)
             for segment in segments if a - 0.15 <= segment["start_s"] <= b}
    assert len(heard) >= 12  # (the detector may miss a synthetic phrase or two)
    assert "%|" not in err  # no progress bar when stdout is not a terminal


def test_the_length_limit_is_a_parameter_checked_before_decoding(tiny_predictor, tmp_path):
    from ser_core.inference.audio import open_audio_stream

    path = write_audio(tmp_path / "long.wav", audio_factory.noise(61.0, amplitude=0.01), SR)
    with pytest.raises(AudioError, match=r"long.wav is 61 s long; the limit is 60 s"):
        open_audio_stream(path, SR, max_seconds=60.0)  # raised on opening: nothing decoded yet
    with pytest.raises(AudioError, match="limit is 60 s"):
        tiny_predictor.predict_file(path)  # the app's default
    with pytest.raises(AudioError, match="limit is 30 s"):
        tiny_predictor.predict_file(path, max_seconds=30.0)
    with pytest.raises(AudioError, match="limit is 30 s"):
        tiny_predictor.predict_wave(np.zeros(31 * SR, np.float32), SR, max_seconds=30.0)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".m4a", ".webm", ".mp3"])
def test_block_decoding_gives_the_same_audio_as_whole_decoding(suffix):
    from ser_core.inference.audio import load_audio, open_audio_stream

    data = audio_factory.encode(speech_like(5.0, 44_100, seed=4), 44_100, suffix)
    stream = open_audio_stream(data, SR, block_seconds=0.7)
    blocks = list(stream)
    assert len(blocks) > 3
    whole = load_audio(data, SR)
    assert np.concatenate(blocks) == pytest.approx(whole, abs=1e-5)
    assert stream.decoded_s == pytest.approx(whole.size / SR, abs=0.05)


# ------------------------------------------------------------------ 8. threshold


@pytest.mark.parametrize("value", ["5", "inf", "nan", "-0.1", "1.5", "high"])
def test_predict_rejects_a_threshold_outside_0_1_naming_it(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        predict_cli.main([str(tmp_path / "a.wav"), "--threshold", value])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "threshold" in err and value in err and "0 to 1" in err


@pytest.mark.parametrize("value", [5.0, float("inf"), float("nan"), -0.1, "0.5x", True])
def test_the_predictor_rejects_a_bad_threshold(tiny_predictor, value):
    with pytest.raises(ValueError, match="threshold"):
        tiny_predictor.predict_wave(_speech(2.0), SR, threshold=value)


def test_thresholds_at_the_ends_are_accepted(tiny_predictor):
    wave = _speech(2.0, seed=6)
    assert not tiny_predictor.predict_wave(wave, SR, threshold=0.0).uncertain
    assert tiny_predictor.predict_wave(wave, SR, threshold=1.0).uncertain


# ------------------------------------------------------------------ 9. emotions without clips


def test_emotions_without_clips_are_not_measured():
    labels = np.array([0, 0, 5, 5])
    predicted = np.array([0, 0, 5, 3])  # one answer "happy", which has no clips
    report = classification_report(labels, predicted)
    for emotion in ("disgust", "fear", "neutral"):
        assert report["per_class"][emotion] == {"precision": None, "recall": None, "f1": None,
                                                "support": 0, "predicted": 0}
    assert report["per_class"]["happy"]["precision"] is None and report["per_class"]["happy"]["predicted"] == 1
    assert report["macro_f1"] == pytest.approx((1.0 + 2 / 3) / 2)  # angry and sad only
    assert report["uar"] == pytest.approx((1.0 + 0.5) / 2)
    assert json.loads(json.dumps(report))["per_class"]["fear"]["recall"] is None
    text = evaluate_cli.format_report(report)
    fear_line = next(line for line in text.splitlines() if line.startswith("fear"))
    assert "not measured" in fear_line and "0.000" not in fear_line
    assert "predicted 1 time" in next(line for line in text.splitlines() if line.startswith("happy"))


# ------------------------------------------------------------------ 10. damaged model


def test_a_truncated_model_is_called_damaged_not_missing(tiny_artifacts, tmp_path):
    from ser_core.predictor import ModelDamagedError, ModelNotFoundError, Predictor

    folder = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    model = folder / "model.keras"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    with pytest.raises(ModelDamagedError) as caught:
        Predictor.from_artifacts(folder)
    message = str(caught.value)
    assert str(model) in message and "exists" in message and "not found" not in message.lower()
    assert "train" in message and "restore" in message.lower()
    assert caught.value.kind == "damaged" and caught.value.path == model
    assert isinstance(caught.value, ModelNotFoundError)  # old handlers still catch it

    (folder / "config.json").write_text("{ not json")
    shutil.copy(tiny_artifacts / "model.keras", model)
    with pytest.raises(ModelDamagedError, match="config.json"):
        Predictor.from_artifacts(folder)


def test_a_missing_model_is_called_missing(tmp_path):
    from ser_core.predictor import ModelDamagedError, ModelNotFoundError, Predictor

    with pytest.raises(ModelNotFoundError) as caught:
        Predictor.from_artifacts(tmp_path)
    assert not isinstance(caught.value, ModelDamagedError) and caught.value.kind == "missing"
    assert "model.keras is missing" in str(caught.value) and "train.py" in str(caught.value)


def test_predict_with_a_damaged_model_says_so(tiny_artifacts, tmp_path, capsys):
    folder = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    (folder / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    assert predict_cli.main([str(tmp_path / "a.wav"), "--artifacts", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "model.keras exists but could not be loaded" in err and "File not found" not in err


@pytest.mark.slow
def test_predict_shows_a_progress_bar_on_a_terminal(tiny_artifacts, tmp_path):
    """Under a pseudo-terminal the per-file progress bar appears; piped, it does not (above)."""
    pty = pytest.importorskip("pty")
    import os

    path = write_audio(tmp_path / "talk.wav", np.concatenate([_speech(3.0, seed=s) for s in range(25)]), SR)
    command = [sys.executable, "-m", "ser_core.predict", str(path), "--artifacts", str(tiny_artifacts)]
    leader, follower = pty.openpty()
    done = subprocess.run(command, stdout=follower, stderr=subprocess.PIPE, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    os.close(follower)
    os.close(leader)
    assert done.returncode == 0
    assert "talk.wav" in done.stderr and "%|" in done.stderr
